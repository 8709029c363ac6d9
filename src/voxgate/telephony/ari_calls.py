"""Answer calls that enter `Stasis(APP)`: bridge the caller with an AudioSocket media leg to us.

Per call (ari.md §5, audiosocket.md §7 option 2): answer → mixing bridge → add the caller →
`externalMedia(encapsulation=audiosocket, transport=tcp, data=<uuid>, channelId=<uuid>)`; the
media channel's StasisStart (args `[uuid]`) → add it to the bridge. Asterisk connects to our
AudioSocket server with that UUID and the agent runs on it as on any AudioSocket call.

Caller leaves → hang up the media channel, destroy the bridge. Media leg ends first (the agent
hung up or transferred) → hang up the caller, or for a transfer `continue` it to
(transfer_context or its own context, target, 1), or `redirect` it when the target is an
endpoint (`PJSIP/200`). ARI errors are logged with the call id and the call is cleaned up.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from voxgate.log import call_logger

from .ari import (
    AriClient,
    AriError,
    AriEvents,
    ChannelDestroyed,
    ChannelEvent,
    ChannelHangupRequest,
    StasisEnd,
    StasisStart,
)

log = logging.getLogger("voxgate.ari.calls")

MEDIA_PREFIX = "AudioSocket/"
MEDIA_GRACE_S = 1.0  # wait this long for the AudioSocket connection of a media channel that ended


class MediaCall(Protocol):  # what the router needs of an `AudioSocketCall`
    call_id: str
    outcome: str | None
    end_cause: str | None

    async def wait_ended(self) -> None: ...
    async def hangup(self, reason: str = ...) -> None: ...


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
    media_created: bool = False
    media_in_stasis: bool = False
    ended: bool = False
    media_call: MediaCall | None = None
    log: Any = field(default=None, repr=False)  # LoggerAdapter carrying call_id=uuid


class AriCallRouter:
    """Routes Stasis calls to AudioSocket media legs; see the module docstring."""

    def __init__(
        self,
        client: AriClient,
        events: AriEvents,
        *,
        app: str,
        media_host_port: str,
        format: str = "slin16",
        transfer_context: str | None = None,
    ) -> None:
        self.client = client
        self.events = events
        self.app = app
        self.media_host_port = media_host_port
        self.format = format
        self.transfer_context = transfer_context
        self.calls: dict[str, CallContext] = {}  # uuid → context
        self._by_caller: dict[str, str] = {}  # caller channel id → uuid
        self._media: dict[str, MediaCall] = {}  # live AudioSocket calls by UUID
        self._tasks: set[asyncio.Task[None]] = set()
        events.on(StasisStart, self._on_stasis_start)
        for kind in (ChannelHangupRequest, StasisEnd, ChannelDestroyed):
            events.on(kind, self._on_channel_gone)

    # -- public -----------------------------------------------------------------------------
    def attach_media(self, call: MediaCall) -> None:
        """An AudioSocket call started: watch it; if it is an ARI call's media leg, its end
        ends the caller's call. Calls without a context (dialplan `AudioSocket()`) are untouched;
        the context is looked up when the call ends, so the order of arrival does not matter."""
        self._media[call.call_id] = call
        ctx = self.calls.get(call.call_id)
        if ctx is not None:
            ctx.media_call = call
        self._spawn(self._watch_media(call))

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
        if channel.name.startswith(MEDIA_PREFIX):
            log.debug("StasisStart of a media channel we do not know: %s", channel.name)
            return
        if channel.id in self._by_caller:
            return  # a second StasisStart for a caller we already handle
        call_uuid = str(uuidlib.uuid4())
        ctx = CallContext(
            uuid=call_uuid,
            caller_channel_id=channel.id,
            caller_number=channel.caller_number,
            exten=channel.exten,
            context=channel.context,
            args=event.args,
            log=call_logger(log.name, call_uuid),
        )
        # Known before externalMedia is even asked for: its StasisStart and the AudioSocket
        # connection may both arrive before the REST answer does.
        self.calls[call_uuid] = ctx
        self._by_caller[channel.id] = call_uuid
        info = (ctx.caller_number, ctx.exten, channel.id, list(event.args))
        ctx.log.info("ARI call from %r to %r on channel %s (args %s)", *info)
        self._spawn(self._setup(ctx, answered=channel.state == "Up"))

    def _on_channel_gone(self, event: ChannelEvent) -> None:
        channel_id = event.channel.id
        call_uuid = self._by_caller.get(channel_id)
        if call_uuid is not None:
            ctx = self.calls.get(call_uuid)
            if ctx is not None and not ctx.ended:
                ctx.log.info("caller left (%s): ending the media leg", event.type)
                self._spawn(self._end(ctx, hang_caller=None))
            return
        ctx = self.calls.get(channel_id)
        if ctx is not None and not ctx.ended and ctx.uuid not in self._media and ctx.media_call is None:
            # The media channel died and Asterisk never connected to us (connect failed):
            # give the connection a moment, then hang the caller up.
            self._spawn(self._media_gone_unconnected(ctx))

    # -- call flow --------------------------------------------------------------------------
    async def _setup(self, ctx: CallContext, *, answered: bool) -> None:
        ari, caller = self.client, ctx.caller_channel_id
        step = "answer"
        try:
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
            step = "externalMedia"
            ctx.media_created = True
            await ari.external_media(
                self.format,
                app=self.app,
                external_host=self.media_host_port,
                encapsulation="audiosocket",
                transport="tcp",
                data=ctx.uuid,
                channel_id=ctx.uuid,
            )
            if ctx.ended:  # too late for the ending to see it: hang it up here
                await ari.hangup(ctx.uuid, missing_ok=True)
        except AriError as exc:
            ctx.log.warning("ARI call setup failed at %s: %s; cleaning up", step, exc)
            await self._end(ctx, hang_caller="failure")

    async def _media_entered(self, ctx: CallContext, channel_id: str) -> None:
        if ctx.ended or ctx.media_in_stasis:
            return
        ctx.media_in_stasis = True
        try:
            assert ctx.bridge_id is not None  # externalMedia comes after the bridge
            await self.client.add_channel(ctx.bridge_id, channel_id)
            ctx.log.info("media channel %s bridged with caller %s", channel_id, ctx.caller_channel_id)
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
        if ctx.ended or ctx.media_call is not None or ctx.uuid in self._media:
            return
        ctx.log.warning(
            "media channel %s ended before Asterisk connected to our AudioSocket at %s; "
            "hanging up the caller",
            ctx.uuid,
            self.media_host_port,
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
        if ctx.media_created:
            await self._ari_quietly(ctx, ari.hangup(ctx.uuid, missing_ok=True))
        if ctx.bridge_id is not None:
            await self._ari_quietly(ctx, ari.destroy_bridge(ctx.bridge_id, missing_ok=True))
        media = ctx.media_call or self._media.get(ctx.uuid)
        if media is not None and media.end_cause is None:
            # Asterisk closes the socket once the media channel is gone; don't wait on it.
            if media.outcome is None:
                media.outcome = "caller-hangup"
            await media.hangup("caller hung up (ARI)")
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
