"""Speech-to-speech agents: a realtime session (OpenAI Realtime, Deepgram Voice Agent) on a call,
with the agent's pipeline as the fallback.

`RealtimeBridge` joins one call to one `RealtimeSession`:
- caller audio → the session, converted once to the session's `input_format` (none at all when
  the provider speaks the call's own G.711 or slin rate);
- the session's audio → the call's pacer, which converts it to the wire format;
- `UserSpeechStarted` → barge-in: the pacer is cleared at once, and the session is told how much
  of the agent's current item the caller heard (`interrupted(played_ms)`, so OpenAI truncates its
  memory to that);
- `ToolCall` → the same tools as the pipeline: `end_call`, `transfer_call`, `send_dtmf` (done
  after the words before them are heard) and the agent's user tools; every call gets a result;
- transcripts of both sides go into the call record as they arrive.

`RealtimeAgent` runs the bridge, and when the session cannot start or dies mid-call (a fatal
error, a closed socket, a stall its watchdog caught) hands the call to its `PipelineAgent`: mid-
call the pipeline opens with a short apology instead of the greeting, so the caller is never
left in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from voxgate.agent.actions import hang_up, play_out, run_tool, send_dtmf
from voxgate.agent.record import CallRecord, TurnEntry
from voxgate.agent.responder import EndCall, SendDtmf, Transfer
from voxgate.agent.tools import Tool, ToolContext, builtin_tool_specs
from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFrame
from voxgate.log import call_logger
from voxgate.providers.base import ProviderError, ToolCallEvent
from voxgate.providers.realtime import (
    AgentAudio,
    AgentAudioDone,
    RealtimeConfig,
    RealtimeProvider,
    RealtimeSession,
    ResponseDone,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
)
from voxgate.transports.base import CallAudio, Dtmf

log = logging.getLogger("voxgate.agent.realtime")

KEYS_PAUSE_S = 1.5  # keys typed this far apart are one entry


class RealtimeBridge:
    """One call on one session; `run()` returns "ended" (the call is over) or "failed"."""

    def __init__(
        self,
        call: CallAudio,
        session: RealtimeSession,
        *,
        tools: Sequence[Tool] = (),
        builtin_tools: Sequence[str] = ("end_call", "transfer_call", "send_dtmf"),
        transfer_targets: Sequence[str] | None = None,
        record: CallRecord | None = None,
        hangup_delay_ms: float = 200.0,
    ) -> None:
        self.call = call
        self.hangup_delay_s = hangup_delay_ms / 1000
        self.session = session
        self.tools = {t.name: t for t in tools}
        self.builtin = frozenset(builtin_tools)
        self.transfer_targets = transfer_targets
        self.log = call_logger(log.name, call.call_id)
        self.record = record or CallRecord(call.call_id, getattr(session, "name", "realtime"), self.log)
        self.tool_context = ToolContext(call_id=call.call_id)
        self._item: str | int | None = None  # the assistant item playing (Deepgram: the reply's number)
        self._item_start_ms = 0.0  # where that item starts in the call's played audio
        self._item_written_ms = 0.0
        self._replies = 0  # replies finished: names the items of providers that name none
        self._ending = False
        self.failure: str | None = None
        self.barge_ins = 0
        self._keys = ""
        self._keys_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    async def run(self) -> str:
        inbound = asyncio.create_task(self._inbound(), name=f"realtime-in-{self.call.call_id}")
        events = asyncio.create_task(self._events(), name=f"realtime-out-{self.call.call_id}")
        try:
            done, _ = await asyncio.wait({inbound, events}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self._keys_timer is not None:
                self._keys_timer.cancel()
            for task in (inbound, events, *self._tasks):
                task.cancel()
            await asyncio.gather(inbound, events, *self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.session.aclose()
        for task in done:
            if not task.cancelled() and (exc := task.exception()) is not None:
                self.log.error("realtime bridge failed", exc_info=exc)
                self.failure = self.failure or f"bridge error: {type(exc).__name__}"
                return "failed"
        if inbound in done or self._ending:
            return "ended"
        return "failed"

    # -- caller → session ----------------------------------------------------------------------
    async def _inbound(self) -> None:
        push, fmt = self.session.push_audio, self.session.input_format
        src = fmt  # the format of the frames coming in, as last seen
        convert: AudioConverter | None = None  # src → fmt, when they differ
        async for event in self.call:
            if isinstance(event, Dtmf):
                self._key(event.digit)
                continue
            if event.format is not src:  # a cheap identity check per frame; equality on a change
                src = event.format
                if src == fmt:
                    convert = None
                elif convert is None or convert.src != src:
                    convert = AudioConverter(src, fmt)
            if convert is None:
                push(event)
            elif data := convert.convert(event.data):
                push(AudioFrame(data, fmt))

    def _key(self, digit: str) -> None:
        """Keys go to the model as text once the caller stops typing (`#` ends an entry at once):
        "The caller typed 1234#" rather than a reply per key."""
        self._keys += digit
        if self._keys_timer is not None:
            self._keys_timer.cancel()
        if digit == "#":
            self._keys_timer = None
            self._spawn(self._send_keys())
        else:
            loop = asyncio.get_running_loop()
            self._keys_timer = loop.call_later(KEYS_PAUSE_S, lambda: self._spawn(self._send_keys()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_keys(self) -> None:
        keys, self._keys = self._keys, ""
        if not keys:
            return
        self.record.add(TurnEntry("caller", keys, meta={"dtmf": True}))
        send = getattr(self.session, "send_user_text", None)
        if send is None:
            return
        try:
            await send(f"(The caller typed {keys} on the phone keypad.)")
        except (ProviderError, ConnectionError) as exc:
            self.log.warning("could not pass the keys to the session: %s", exc)

    # -- session → caller ----------------------------------------------------------------------
    async def _events(self) -> None:
        out = self.call.output
        async for event in self.session:
            if isinstance(event, AgentAudio):
                item = event.item_id or self._replies  # Deepgram names no items: the reply's number
                if item != self._item:
                    self._item = item
                    self._item_start_ms = out.played_ms + out.queued_ms
                    self._item_written_ms = 0.0
                out.write(event.frame)
                self._item_written_ms += event.frame.duration_ms
            elif isinstance(event, AgentAudioDone):
                self._replies += 1
            elif isinstance(event, UserSpeechStarted):
                await self._barge_in()
            elif isinstance(event, Transcript):
                if event.final and event.text.strip():
                    role = "caller" if event.role == "user" else "agent"
                    self.record.add(TurnEntry(role, event.text.strip()))
            elif isinstance(event, ToolCall):
                await self._tool(event)
                if self._ending:
                    return
            elif isinstance(event, ResponseDone):
                self._replies += 1
                if event.status == "completed":
                    out.flush()
            elif isinstance(event, SessionError):
                if event.fatal:
                    self.failure = event.message
                    self.log.warning("realtime session failed: %s", event.message)
                    return
                self.log.warning("realtime session error: %s", event.message)
        self.failure = self.failure or "session closed"

    async def _barge_in(self) -> None:
        out = self.call.output
        dropped = out.clear()
        played = max(0.0, min(out.played_ms - self._item_start_ms, self._item_written_ms))
        if not dropped and (self._item is None or played >= self._item_written_ms):
            # The caller speaks after the reply was heard to its end: a new turn, not a barge-in;
            # truncating would only delete the model's memory of what it said.
            self._item = None
            return
        self.barge_ins += 1
        self.record.event("barge_in", heard_ms=round(played), dropped_ms=round(dropped))
        try:
            await self.session.interrupted(played)
        except ProviderError as exc:
            self.log.warning("could not tell the session about the interruption: %s", exc)
        self._item = None

    # -- tools ---------------------------------------------------------------------------------
    async def _tool(self, call: ToolCall) -> None:
        event = ToolCallEvent(call.id, call.name, dict(call.arguments))
        result, action = await run_tool(
            event,
            builtin=self.builtin,
            tools=self.tools,
            context=self.tool_context,
            transfer_targets=self.transfer_targets,
        )
        self.record.event("tool", tool=call.name, result=result[:200])
        if isinstance(action, EndCall | Transfer):
            # Let the words before it be heard; the session's reply to the result is not needed.
            self._ending = True
            await play_out(self.call.output, self.hangup_delay_s)
            await hang_up(self.call, self.record, action, self.log)
            return
        if isinstance(action, SendDtmf):
            await send_dtmf(self.call, self.record, action.digits)
        await self.session.send_tool_result(call.id, call.name, result)


def tool_specs(config: Any, tools: Sequence[Tool]) -> list[Any]:
    return [
        *builtin_tool_specs(config.builtin_tools, transfer_targets=config.transfer_targets),
        *(t.spec for t in tools),
    ]


class RealtimeAgent:
    """A speech-to-speech agent; see the module docstring. `providers` are tried in order at the
    start of a call; `fallback` (a PipelineAgent) takes the call when none starts or one dies."""

    def __init__(self, config: Any, providers: Sequence[RealtimeProvider], fallback: Any | None) -> None:
        self.config = config
        self.name = config.name
        self.providers = list(providers)
        self.fallback = fallback
        self.tools: list[Tool] = list(getattr(fallback, "tools", []) or [])
        self.records: list[CallRecord] = []

    async def prepare(self) -> None:
        if self.fallback is not None and (prepare := getattr(self.fallback, "prepare", None)) is not None:
            await prepare()

    def _session_config(self, call: CallAudio) -> RealtimeConfig:
        return RealtimeConfig(
            instructions=self.config.prompt,
            telephony_format=call.inbound_format,
            tools=tool_specs(self.config, self.tools),
            greeting=self.config.greeting,
            voice=self.config.voice,
            call_id=call.call_id,
        )

    async def handle(self, call: CallAudio) -> None:
        clog = call_logger(log.name, call.call_id)
        session = await self._start_session(call, clog)
        if session is None:
            await self._fall_back(call, clog, mid_call=False)
            return
        bridge = RealtimeBridge(
            call,
            session,
            tools=self.tools,
            builtin_tools=self.config.builtin_tools,
            transfer_targets=self.config.transfer_targets,
            hangup_delay_ms=self.config.call.hangup_delay_ms,
        )
        self.records.append(bridge.record)
        outcome = await bridge.run()
        if outcome == "failed" and getattr(call, "end_cause", None) is None:
            clog.warning("realtime session ended mid-call (%s): the pipeline takes over", bridge.failure)
            await self._fall_back(call, clog, mid_call=True)

    async def _start_session(
        self, call: CallAudio, clog: logging.LoggerAdapter[Any]
    ) -> RealtimeSession | None:
        config = self._session_config(call)
        for provider in self.providers:
            session = provider.session(config)
            try:
                await session.start()
            except (ProviderError, OSError, TimeoutError) as exc:
                clog.warning("realtime provider %s did not start: %s", getattr(provider, "name", "?"), exc)
                with contextlib.suppress(Exception):
                    await session.aclose()
                continue
            clog.info("realtime session on %s", getattr(provider, "name", "?"))
            return session
        return None

    async def _fall_back(self, call: CallAudio, clog: logging.LoggerAdapter[Any], *, mid_call: bool) -> None:
        if self.fallback is None:
            clog.error("no pipeline to fall back on: hanging up")
            await call.hangup("realtime failed")
            return
        call.output.clear()
        greeting = self.config.realtime_apology if mid_call else None
        await self.fallback.handle(call, greeting=greeting)
