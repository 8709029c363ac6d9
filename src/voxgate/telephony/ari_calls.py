"""Answer calls that enter `Stasis(APP)`: bridge the caller with a media leg to us.

Per call (ari.md §5, audiosocket.md §7 option 2): answer → mixing bridge → add the caller →
`externalMedia(channelId=<uuid>)` (AudioSocket by default, or RTP or chan_websocket, see
`ari_media`) → the media channel's StasisStart → add it to the bridge. On the AudioSocket path
Asterisk connects to our listener with that UUID and the agent runs on it as on any AudioSocket
call; for RTP and WebSocket the router opens the leg itself and runs the agent (`run_call`) once
the leg is in the bridge, so the greeting is not spoken into a channel nobody hears yet.

Outbound calls (`ari_outbound`) come here too: their channel enters Stasis when answered.
After the events socket reconnects, calls whose caller vanished while it was down are ended.

Caller leaves → hang up the media channel, destroy the bridge. Media leg ends first (the agent
hung up or transferred) → hang up the caller, or for a transfer `continue` it to
(transfer_context or its own context, target, 1), or `redirect` it when the target is an
endpoint (`PJSIP/200`). ARI errors are logged with the call id and the call is cleaned up.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voxgate.audio.pacer import MediaClock
from voxgate.log import call_logger
from voxgate.transports.base import run_agent_on

from .ari import (
    AriClient,
    AriError,
    AriEvents,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEvent,
    ChannelHangupRequest,
    StasisEnd,
    StasisStart,
)
from .ari_media import MEDIA_CHANNEL_PREFIXES, MediaCall, MediaKind, MediaSettings, open_media

log = logging.getLogger("voxgate.ari.calls")

VANISHED = -1  # an originated channel gone while the events socket was down: no cause known
MEDIA_GRACE_S = 1.0  # wait this long for the AudioSocket connection of a media channel that ended
RunCall = Callable[[Any], Awaitable[None]]


@dataclass
class CallContext:
    """One ARI call: the caller's channel, our bridge, and who called whom."""

    uuid: str  # AudioSocket UUID = media channel id
    caller_channel_id: str
    caller_number: str = ""
    exten: str = ""
    context: str = ""
    args: tuple[str, ...] = ()
    bridge_id: str | None = None
    media: MediaKind | None = None  # set when externalMedia is asked for
    media_in_stasis: bool = False
    media_bridged: bool = False
    agent_started: bool = False
    ended: bool = False
    media_call: MediaCall | None = None
    outbound: Any = None  # the OutboundRequest of a call we placed
    amd: str | None = None  # AMD() result of an outbound call: human / machine / notsure
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    log: Any = field(default=None, repr=False)  # LoggerAdapter carrying call_id=uuid

    @property
    def direction(self) -> str:
        return "outbound" if self.outbound is not None else "inbound"

    @property
    def leg(self) -> Any:
        """The RTP / WebSocket leg voxgate opened (None on the AudioSocket path)."""
        return self.media_call if self.media in ("rtp", "websocket") else None


@dataclass
class _Dialing:
    """An outbound channel we originated that has not entered Stasis yet."""

    request: Any
    answered: asyncio.Future[CallContext | tuple[int, str]]  # the context, or (cause, last state)
    amd: bool = False


class AriCallRouter:
    """Routes Stasis calls to media legs; see the module docstring."""

    def __init__(
        self,
        client: AriClient,
        events: AriEvents,
        *,
        app: str,
        media: MediaSettings,
        transfer_context: str | None = None,
        clock: MediaClock | None = None,
        run_call: RunCall | None = None,
        media_for: Callable[[CallContext], MediaKind | None] | None = None,
        admit: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.events = events
        self.app = app
        self.media = media
        self.transfer_context = transfer_context
        self.clock = clock or MediaClock()
        self.run_call = run_call  # runs the agent on RTP / WebSocket legs
        self.media_for = media_for  # a route's choice of media kind, if any
        self.admit = admit  # False when voxgate is at capacity: inbound calls go back to the dialplan
        self.refused = 0
        self.calls: dict[str, CallContext] = {}  # uuid → context
        self._by_caller: dict[str, str] = {}  # caller channel id → uuid
        self._media: dict[str, MediaCall] = {}  # live media legs by UUID
        self._dialing: dict[str, _Dialing] = {}  # originated channel id → pending outcome
        self._tasks: set[asyncio.Task[None]] = set()
        events.on(StasisStart, self._on_stasis_start)
        events.on(ChannelDtmfReceived, self._on_dtmf)
        for kind in (ChannelHangupRequest, StasisEnd, ChannelDestroyed):
            events.on(kind, self._on_channel_gone)
        events.reconnect_listeners.append(lambda: self._spawn(self.reconcile()))

    # -- public -----------------------------------------------------------------------------
    def attach_media(self, call: MediaCall) -> None:
        """An AudioSocket call started: watch it; if it is an ARI call's media leg, its end
        ends the caller's call. Calls without a context (dialplan `AudioSocket()`) are untouched;
        the context is looked up when the call ends, so the order of arrival does not matter."""
        self._media[call.call_id] = call
        ctx = self.calls.get(call.call_id)
        if ctx is not None:
            ctx.media_call = call
            call.context = ctx  # type: ignore[attr-defined]
            if getattr(call, "send_dtmf", None) is None:  # keys go out through Asterisk (RFC 4733)
                call.send_dtmf = functools.partial(self.client.send_dtmf, ctx.caller_channel_id)  # type: ignore[attr-defined]
        self._spawn(self._watch_media(call))

    def expect_answer(
        self, channel_id: str, request: Any, *, amd: bool = False
    ) -> asyncio.Future[CallContext | tuple[int, str]]:
        """An outbound channel is about to be originated with this id: its StasisStart makes it a
        call with `request` (the future gets its context); a hangup before that gives the cause."""
        future: asyncio.Future[CallContext | tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._dialing[channel_id] = _Dialing(request, future, amd)
        return future

    def forget_dialing(self, channel_id: str) -> None:
        self._dialing.pop(channel_id, None)

    async def end_call(self, ctx: CallContext, reason: str = "normal") -> None:
        """Hang the call up (caller, media, bridge)."""
        await self._end(ctx, hang_caller=reason)

    async def reconcile(self) -> None:
        """After a reconnect: end calls whose caller channel is gone (its StasisEnd was sent
        while the socket was down); fail originations whose channel vanished the same way."""
        try:
            live = {c.id for c in await self.client.list_channels()}
        except AriError as exc:
            log.warning("ARI reconnect: cannot list channels to reconcile calls: %s", exc)
            return
        stale = [
            ctx for ctx in list(self.calls.values()) if not ctx.ended and ctx.caller_channel_id not in live
        ]
        for ctx in stale:
            ctx.log.info(
                "caller channel %s vanished while the events socket was down: ending", ctx.caller_channel_id
            )
            self._spawn(self._end(ctx, hang_caller=None))
        for channel_id, dialing in list(self._dialing.items()):
            if channel_id not in live and not dialing.answered.done():
                dialing.answered.set_result((VANISHED, ""))
                self._dialing.pop(channel_id, None)
        if stale:
            log.info("ARI reconnect: ended %d calls whose caller left while disconnected", len(stale))

    async def close(self, grace: float = 2.0) -> None:
        """Let running teardowns finish (up to `grace` s), then cancel what is left."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- events -----------------------------------------------------------------------------
    def _on_stasis_start(self, event: StasisStart) -> None:
        channel = event.channel
        ctx = self.calls.get(channel.id) or (self.calls.get(event.args[0]) if event.args else None)
        if ctx is not None:
            self._spawn(self._media_entered(ctx, channel.id))
            return
        if channel.name.startswith(MEDIA_CHANNEL_PREFIXES):
            log.debug("StasisStart of a media channel we do not know: %s", channel.name)
            return
        if channel.id in self._by_caller:
            return  # a second StasisStart for a caller we already handle
        dialing = self._dialing.pop(channel.id, None)
        if dialing is None and self.admit is not None and not self.admit():
            self.refused += 1
            log.warning(
                "at capacity: call on channel %s goes back to the dialplan (next priority)", channel.id
            )
            self._spawn(self._refuse(channel.id))
            return
        call_uuid = str(uuidlib.uuid4())
        ctx = CallContext(
            uuid=call_uuid,
            caller_channel_id=channel.id,
            caller_number=channel.caller_number,
            exten=channel.exten,
            context=channel.context,
            args=event.args,
            outbound=dialing.request if dialing is not None else None,
            log=call_logger(log.name, call_uuid),
        )
        # Known before externalMedia is even asked for: its StasisStart and the AudioSocket
        # connection may both arrive before the REST answer does.
        self.calls[call_uuid] = ctx
        self._by_caller[channel.id] = call_uuid
        if dialing is not None:
            ctx.log.info(
                "outbound call to %s answered on channel %s", getattr(dialing.request, "to", "?"), channel.id
            )
        else:
            info = (ctx.caller_number, ctx.exten, channel.id, list(event.args))
            ctx.log.info("ARI call from %r to %r on channel %s (args %s)", *info)
        self._spawn(self._setup(ctx, answered=channel.state == "Up", dialing=dialing))

    async def _refuse(self, channel_id: str) -> None:
        try:
            await self.client.continue_in_dialplan(channel_id)
        except AriError as exc:
            log.warning("could not send channel %s back to the dialplan: %s; hanging up", channel_id, exc)
            try:
                await self.client.hangup(channel_id, "congestion", missing_ok=True)
            except AriError as exc2:
                log.warning("could not hang up channel %s: %s", channel_id, exc2)

    @property
    def own_legs(self) -> int:
        """Live RTP / WebSocket legs (AudioSocket legs are counted by the AudioSocket server)."""
        return sum(1 for ctx in self.calls.values() if ctx.leg is not None and not ctx.ended)

    def _on_dtmf(self, event: ChannelDtmfReceived) -> None:
        """RTP legs take the caller's keys from ARI (AudioSocket and WebSocket carry their own)."""
        call_uuid = self._by_caller.get(event.channel.id)
        ctx = self.calls.get(call_uuid) if call_uuid is not None else None
        if ctx is not None and ctx.media == "rtp" and ctx.leg is not None:
            ctx.leg.receive_dtmf(event.digit)

    def _on_channel_gone(self, event: ChannelEvent) -> None:
        channel_id = event.channel.id
        dialing = self._dialing.get(channel_id)
        if dialing is not None and isinstance(event, ChannelDestroyed):
            self._dialing.pop(channel_id, None)
            if not dialing.answered.done():
                dialing.answered.set_result((event.cause, event.channel.state))
            return
        call_uuid = self._by_caller.get(channel_id)
        if call_uuid is not None:
            ctx = self.calls.get(call_uuid)
            if ctx is not None and not ctx.ended:
                ctx.log.info("caller left (%s): ending the media leg", event.type)
                self._spawn(self._end(ctx, hang_caller=None))
            return
        ctx = self.calls.get(channel_id)
        if ctx is not None and not ctx.ended and ctx.media_call is None:
            # The media channel died and Asterisk never connected to us (connect failed):
            # give the connection a moment, then hang the caller up.
            self._spawn(self._media_gone_unconnected(ctx))

    # -- call flow --------------------------------------------------------------------------
    async def _setup(self, ctx: CallContext, *, answered: bool, dialing: _Dialing | None = None) -> None:
        ari, caller = self.client, ctx.caller_channel_id
        step = "answer"
        try:
            if dialing is not None:
                step = "read AMD result"
                if dialing.amd:
                    ctx.amd = await self._read_amd(ctx)
                if not dialing.answered.done():
                    dialing.answered.set_result(ctx)
                step = "answer"
            if not answered:
                await ari.answer(caller)
            if ctx.ended:
                return
            step = "create bridge"
            bridge = await ari.create_bridge("mixing")
            ctx.bridge_id = bridge.id
            if ctx.ended:  # the caller left while we asked: the ending missed this bridge
                await ari.destroy_bridge(bridge.id, missing_ok=True)
                return
            step = "add caller to bridge"
            await ari.add_channel(bridge.id, caller)
            if ctx.ended:
                return
            ctx.media = (self.media_for(ctx) if self.media_for is not None else None) or self.media.kind
            step = f"externalMedia ({ctx.media})"
            leg = await open_media(ari, self.media, ctx.media, ctx.uuid, clock=self.clock, app=self.app)
            if leg is not None:
                self.attach_media(leg)
            if ctx.ended:  # too late for the ending to see it: hang it up here
                await ari.hangup(ctx.uuid, missing_ok=True)
                if leg is not None:
                    await leg.hangup("caller hung up (ARI)")
                return
            self._maybe_start(ctx)
        except AriError as exc:
            ctx.log.warning("ARI call setup failed at %s: %s; cleaning up", step, exc)
            await self._end(ctx, hang_caller="failure")
        except (OSError, TimeoutError, ValueError) as exc:  # our side of an RTP / WebSocket leg
            ctx.log.warning("media leg setup failed at %s: %s; cleaning up", step, exc)
            await self._end(ctx, hang_caller="failure")

    async def _read_amd(self, ctx: CallContext) -> str | None:
        """AMD() ran in the dialplan before Stasis: its AMDSTATUS (and AMDCAUSE, for the log)."""
        from voxgate.telephony.outbound import amd_result

        values: dict[str, str] = {}
        for name in ("AMDSTATUS", "AMDCAUSE"):
            try:
                values[name] = await self.client.get_channel_var(ctx.caller_channel_id, name)
            except AriError as exc:
                ctx.log.info("outbound call: %s not readable (%s); treating as a person", name, exc)
        result = amd_result(values)
        ctx.log.info(
            "outbound call: AMD says %s (%s)",
            values.get("AMDSTATUS") or "nothing",
            values.get("AMDCAUSE") or "-",
        )
        return result

    def _maybe_start(self, ctx: CallContext) -> None:
        """Run the agent on a leg we opened once it is in the bridge (both orders happen)."""
        if ctx.ended or ctx.agent_started or ctx.leg is None or not ctx.media_bridged:
            return
        ctx.agent_started = True
        self._spawn(self._run_leg(ctx, ctx.leg))

    async def _run_leg(self, ctx: CallContext, leg: Any) -> None:
        if self.run_call is None:
            ctx.log.warning("no agent to run on the %s media leg; hanging up", ctx.media)
            await leg.hangup("no agent")
            return
        await run_agent_on(leg, self.run_call, ctx.log)

    async def _media_entered(self, ctx: CallContext, channel_id: str) -> None:
        if ctx.ended or ctx.media_in_stasis:
            return
        ctx.media_in_stasis = True
        try:
            assert ctx.bridge_id is not None  # externalMedia comes after the bridge
            await self.client.add_channel(ctx.bridge_id, channel_id)
            ctx.log.info("media channel %s bridged with caller %s", channel_id, ctx.caller_channel_id)
            ctx.media_bridged = True
            self._maybe_start(ctx)
        except AriError as exc:
            ctx.log.warning("could not bridge the media channel: %s; ending the call", exc)
            await self._end(ctx, hang_caller="failure")

    async def _watch_media(self, call: MediaCall) -> None:
        try:
            await call.wait_ended()
        finally:
            self._media.pop(call.call_id, None)
        ctx = self.calls.get(call.call_id)
        if ctx is None or ctx.ended:
            return
        outcome = call.outcome or ""
        if outcome.startswith("transfer:"):
            await self._transfer(ctx, outcome[len("transfer:") :])
            return
        cause = call.end_cause or ""
        reason = "failure" if cause.startswith(("error:", "connection lost")) else "normal"
        ctx.log.info("media leg ended (%s): hanging up the caller (reason=%s)", cause or "?", reason)
        await self._end(ctx, hang_caller=reason)

    async def _media_gone_unconnected(self, ctx: CallContext) -> None:
        await asyncio.sleep(MEDIA_GRACE_S)
        if ctx.ended or ctx.media_call is not None:
            return
        ctx.log.warning(
            "media channel %s ended before Asterisk connected to our AudioSocket at %s; "
            "hanging up the caller",
            ctx.uuid,
            self.media.audiosocket_host_port,
        )
        await self._end(ctx, hang_caller="failure")

    async def _transfer(self, ctx: CallContext, target: str) -> None:
        """The agent asked for a transfer: take the caller out of our bridge and send it on."""
        await self._end(ctx, hang_caller=None)
        try:
            if "/" in target:  # an endpoint, e.g. PJSIP/200
                ctx.log.info("transfer: redirecting caller %s to %s", ctx.caller_channel_id, target)
                await self.client.redirect(ctx.caller_channel_id, target)
            else:
                context = self.transfer_context or ctx.context or None
                ctx.log.info(
                    "transfer: caller %s continues in dialplan at %s,%s,1",
                    ctx.caller_channel_id,
                    context,
                    target,
                )
                await self.client.continue_in_dialplan(
                    ctx.caller_channel_id, context=context, extension=target, priority=1
                )
        except AriError as exc:
            ctx.log.warning("transfer to %s failed: %s; hanging up the caller", target, exc)
            await self._ari_quietly(
                ctx, self.client.hangup(ctx.caller_channel_id, "failure", missing_ok=True)
            )

    async def _end(self, ctx: CallContext, *, hang_caller: str | None) -> None:
        """Tear the call down once: media channel, bridge, and the caller when `hang_caller`
        names a hangup reason. Every step tolerates what has already vanished."""
        if ctx.ended:
            return
        ctx.ended = True
        self.calls.pop(ctx.uuid, None)
        self._by_caller.pop(ctx.caller_channel_id, None)
        ari = self.client
        if hang_caller is not None:
            await self._ari_quietly(ctx, ari.hangup(ctx.caller_channel_id, hang_caller, missing_ok=True))
        if ctx.media is not None:  # externalMedia was asked for
            await self._ari_quietly(ctx, ari.hangup(ctx.uuid, missing_ok=True))
        if ctx.bridge_id is not None:
            await self._ari_quietly(ctx, ari.destroy_bridge(ctx.bridge_id, missing_ok=True))
        media = ctx.media_call or self._media.get(ctx.uuid)
        if media is not None and media.end_cause is None:
            # Asterisk closes the socket once the media channel is gone; don't wait on it.
            if media.outcome is None:
                media.outcome = "caller-hangup"
            await media.hangup("caller hung up (ARI)")
        ctx.done.set()
        ctx.log.info("ARI call ended")

    async def _ari_quietly(self, ctx: CallContext, request: Any) -> None:
        try:
            await request
        except AriError as exc:
            ctx.log.warning("ARI cleanup request failed: %s", exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("ARI call task failed", exc_info=exc)
