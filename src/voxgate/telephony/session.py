"""`CallSession`: a scriptable handle on one call — say, play, listen, collect keys, run an agent.

One pump task consumes the call's inbound stream, feeding `listen` and `listen_dtmf`; `run_agent`
stops it, lets the agent consume the stream itself, then starts it again. Timeouts count inbound
audio time (deterministic in simulated calls), bounded by the wall clock (+`WALL_SLACK_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxgate.agent.base import Agent, load_agent
from voxgate.agent.turns import SpeechEnded, TurnDetector, TurnEvent, TurnOptions
from voxgate.audio.dtmf import dtmf_tones
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.audio.wav import read_wav
from voxgate.providers.base import STT, TTS, VAD
from voxgate.providers.batch_stt import transcribe_utterance
from voxgate.transports.base import CallAudio
from voxgate.transports.base import Dtmf as InboundDtmf

WALL_SLACK_S = 2.0


class NotSupported(RuntimeError):
    """The operation needs something this call does not have (usually an ARI call)."""


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    caller: str
    dialed: str


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """`answer()` went through (ARI calls; the router answers inbound calls before media)."""


@dataclass(frozen=True, slots=True)
class MediaStarted:
    """The call's audio flows: `format` is what the caller's side sends (e.g. "slin16@16000")."""

    format: str


@dataclass(frozen=True, slots=True)
class MediaStopped:
    reason: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str


@dataclass(frozen=True, slots=True)
class AgentResponse:
    text: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    reason: str


SessionEvent = (
    CallStarted | CallAnswered | MediaStarted | Dtmf | Transcript | AgentResponse | MediaStopped | CallEnded
)


class CallSession:
    """See the module docstring. `context` is an ARI call context (`CallContext`) when known."""

    turn_options = TurnOptions()  # how `listen` finds the caller's turn

    def __init__(
        self,
        call: CallAudio,
        *,
        tts: TTS | None,
        stt: STT | None,
        vad_factory: Callable[[], VAD] | None,
        context: Any = None,
        agents: Callable[[str], Agent] | None = None,
        ari: Any = None,
    ) -> None:
        self.call, self.context, self.ari = call, context, ari
        self.tts, self.stt, self.vad_factory = tts, stt, vad_factory
        self._agents = agents or load_agent
        self.call_id: str = call.call_id
        self.caller: str = getattr(context, "caller_number", "") or ""
        self.dialed: str = getattr(context, "exten", "") or ""
        self.args: tuple[str, ...] = tuple(getattr(context, "args", ()) or ())
        self.events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self.ended = False
        self._audio_ms = 0.0  # inbound audio time
        self._digits: deque[str] = deque()
        self._on_audio: Callable[[AudioFrame], None] | None = None
        self._agent: Agent | None = None  # running on the call: it owns the inbound stream
        self._waiters: list[asyncio.Future[None]] = []
        self._pump: asyncio.Task[None] | None = None
        self._recording: str | None = None

    def start(self) -> None:
        self.events.put_nowait(CallStarted(self.call_id, self.caller, self.dialed))
        self.events.put_nowait(MediaStarted(str(self.call.inbound_format)))
        self._start_pump()

    async def run(self, body: Callable[[CallSession], Awaitable[Any]], done_reason: str) -> None:
        """Start the session, run `body(self)`, then hang up (`done_reason`) if the call is still
        up, and close."""
        self.start()
        try:
            await body(self)
        finally:
            if not self.ended:
                await self.hangup(done_reason)
            await self.close()

    def _start_pump(self) -> None:
        self._pump = asyncio.create_task(self._run_pump(), name=f"session-pump-{self.call_id}")

    async def _stop_pump(self) -> None:
        # The pump only ever waits inside the stream's __anext__: no event is lost by cancelling.
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._pump = None

    async def close(self) -> None:
        await self._stop_pump()
        self._mark_ended("closed")

    async def _run_pump(self) -> None:
        async for event in self.call:
            if isinstance(event, InboundDtmf):
                self.events.put_nowait(Dtmf(event.digit))
                self._digits.append(event.digit)
            else:
                self._audio_ms += event.duration_ms
                if self._on_audio is not None:
                    self._on_audio(event)
            self._notify()
        self._mark_ended("caller hung up")

    def _mark_ended(self, reason: str) -> None:
        if not self.ended:
            self.ended = True
            self.events.put_nowait(MediaStopped(reason))
            self.events.put_nowait(CallEnded(reason))
        self._notify()

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until `done()`; False on timeout (audio time, or wall clock + slack) or call end."""
        loop = asyncio.get_running_loop()
        deadline_ms = self._audio_ms + timeout_s * 1000
        wall_deadline = loop.time() + timeout_s + WALL_SLACK_S
        while not done():
            remaining = wall_deadline - loop.time()
            if self.ended or self._audio_ms >= deadline_ms or remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            await asyncio.wait({fut}, timeout=remaining)
        return True

    async def _play(self, frame: AudioFrame | None) -> None:
        if frame is not None:
            self.call.output.write(frame)
        self.call.output.flush()
        await self.call.output.when_played_out()

    async def say(self, text: str) -> None:
        """Speak `text` with the session's TTS; returns once it has been played out."""
        if self.tts is None:
            raise NotSupported("say() needs a TTS: give the VoiceApp a tts (or a PipelineAgent)")
        self.events.put_nowait(AgentResponse(text))
        async for frame in self.tts.synthesize(text):
            self.call.output.write(frame)
        await self._play(None)

    async def play_file(self, path: str | Path) -> None:
        """Play a 16-bit PCM WAV file (any rate; the pacer converts it); returns when played out."""
        pcm, fmt = read_wav(path)
        await self._play(AudioFrame(pcm, fmt))

    async def send_dtmf(self, digits: str) -> None:
        """Send keys: the call's own `send_dtmf`, else ARI's on an ARI call, else in-band tones."""
        if (own := getattr(self.call, "send_dtmf", None)) is not None:
            return await own(digits)
        if self.ari is not None and getattr(self.context, "caller_channel_id", None):
            return await self._ari("send_dtmf", "send_dtmf", digits)  # Asterisk sends RFC 4733
        await self._play(AudioFrame(dtmf_tones(digits, rate=8000), AudioFormat(Encoding.PCM16, 8000)))

    async def listen(self, timeout_s: float = 5.0, stt_timeout_s: float = 10.0) -> str:
        """The caller's next utterance (VAD turn, then STT); "" if no speech starts within
        `timeout_s` or the call ends. Once speech starts, waits for the turn to end; the STT gets
        `stt_timeout_s` for the transcript (`TimeoutError` past it)."""
        if self.stt is None or self.vad_factory is None:
            raise NotSupported("listen() needs an STT and a VAD: give the VoiceApp stt and vad_factory")
        self._check_free("listen")
        detector = TurnDetector(self.vad_factory(), self.turn_options)
        turn: list[TurnEvent] = []  # SpeechStarted, then SpeechEnded
        self._on_audio = lambda frame: turn.extend(detector.push(frame) if len(turn) < 2 else ())
        max_s = self.turn_options.max_utterance_ms / 1000 + 1
        try:
            if not (
                await self._until(lambda: bool(turn), timeout_s)
                and await self._until(lambda: len(turn) >= 2, max_s)
            ):
                return ""
        finally:
            self._on_audio = None
        ended = turn[1]
        assert isinstance(ended, SpeechEnded)
        text = await transcribe_utterance(self.stt, ended.audio, detector.format, timeout_s=stt_timeout_s)
        self.events.put_nowait(Transcript(text))
        return text

    async def listen_dtmf(self, timeout_s: float = 5.0, digits: int = 1, terminator: str | None = "#") -> str:
        """Up to `digits` keys (keys pressed earlier count: type-ahead); `terminator` ends early
        and is not returned. On timeout or call end, returns what was collected so far."""
        self._check_free("listen_dtmf")
        got: list[str] = []  # "" stands for the terminator

        def collect() -> bool:
            while self._digits and "" not in got and len(got) < digits:
                key = self._digits.popleft()
                got.append("" if key == terminator else key)
            return "" in got or len(got) >= digits

        await self._until(collect, timeout_s)
        return "".join(got)

    def _check_free(self, what: str) -> None:
        if self._agent is not None:
            raise RuntimeError(f"{what}() while an agent runs on the call: the agent owns the stream")

    async def hangup(self, reason: str = "app") -> None:
        await self.call.hangup(reason)
        self._mark_ended(reason)

    async def transfer_to(self, target: str) -> None:
        if (transfer := getattr(self.call, "transfer", None)) is None:
            kind = type(self.call).__name__
            raise NotSupported(f"transfer_to({target!r}): this call ({kind}) cannot transfer")
        await transfer(target)
        self._mark_ended(f"transfer:{target}")

    async def run_agent(self, agent: str | Agent) -> None:
        """Hand the call itself to `agent` (a name or an Agent) until its `handle()` returns; it
        consumes the inbound stream meanwhile (no `events`; unread typed-ahead keys are dropped)."""
        if isinstance(agent, str):
            agent = self._agents(agent)
        self._check_free("run_agent")
        if self.ended:
            return
        running = self._pump is not None
        await self._stop_pump()
        self._agent, self._on_audio = agent, None
        self._digits.clear()
        try:
            await agent.handle(self.call)
        finally:
            self._agent = None
            if running:
                self._start_pump()  # ends at once (CallEnded) if the call ended meanwhile

    # --- ARI-only: need the call's ARI context (caller channel) and an AriClient -------------

    async def _ari(self, operation: str, method: str, *args: Any, on: str = "channel", **kw: Any) -> Any:
        # ari.method(target, *args): target is the caller channel, the call's bridge or recording
        ctx = self.context
        if self.ari is None or not getattr(ctx, "caller_channel_id", None):
            why = f"call {self.call_id} is a plain AudioSocket call"
            raise NotSupported(f"{operation}() needs an ARI call (Stasis + Asterisk REST Interface); {why}")
        target = {"bridge": getattr(ctx, "bridge_id", None), "recording": self._recording}.get(
            on, ctx.caller_channel_id
        )
        if not target:
            raise NotSupported(f"{operation}(): call {self.call_id} has no {on} to act on (yet)")
        return await getattr(self.ari, method)(target, *args, **kw)

    async def answer(self) -> None:
        await self._ari("answer", "answer")
        self.events.put_nowait(CallAnswered())

    async def hold(self) -> None:
        await self._ari("hold", "hold")

    async def unhold(self) -> None:
        await self._ari("unhold", "unhold")

    async def record_start(self, name: str, format: str = "wav", **options: Any) -> None:
        """Record the caller's channel in Asterisk (ARI live recording `name`)."""
        await self._ari("record_start", "record", name, format, **options)
        self._recording = name

    async def record_stop(self) -> None:
        """Stop (and keep) the recording `record_start` began."""
        await self._ari("record_stop", "stop_live_recording", on="recording")
        self._recording = None

    async def bridge_with(self, channel_id: str) -> None:
        """Add another channel to this call's mixing bridge (caller, agent and that channel)."""
        await self._ari("bridge_with", "add_channel", channel_id, on="bridge")
