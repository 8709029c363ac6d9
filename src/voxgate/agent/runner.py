"""The conversation runner: one per call, the cascaded pipeline VAD → STT → responder → TTS.

Three kinds of work run at once on a call:
- the inbound loop (this task): every caller frame goes through the `TurnDetector`; it pauses
  the agent the moment the caller has talked over it for `barge_in.min_speech_ms`, and it
  counts audio time for key-press and silence timeouts;
- the turn worker: takes each finished caller turn (speech or keys) in order, transcribes it,
  and decides whether it interrupts the agent, is a backchannel to ignore, or starts a reply;
- the reply: the responder's text is cut into sentences, each spoken as soon as it is complete,
  with actions (end call, transfer, DTMF) in order after the words before them.

Interruption is cancellation: the reply task is cancelled (LLM and TTS streams close), the
outbound queue is cleared, and the assistant turn in the context is cut to what the caller
heard, from the pacer's count of audio actually sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from voxgate.agent.actions import hang_up, play_out, send_dtmf
from voxgate.agent.record import CallRecord, TurnEntry, TurnTiming
from voxgate.agent.responder import (
    Action,
    Conversation,
    EndCall,
    Responder,
    ResponseItem,
    SendDtmf,
    UserInput,
)
from voxgate.agent.sentences import SentenceSplitter, for_speech
from voxgate.agent.stt_stream import LiveTranscriber, streams_during_speech
from voxgate.agent.turns import BargeInOptions, SpeechEnded, SpeechStarted, TurnDetector, TurnOptions
from voxgate.audio.format import AudioFrame
from voxgate.providers.base import STT, TTS, VAD, ProviderError
from voxgate.providers.batch_stt import transcribe_utterance
from voxgate.transports.base import CallAudio, Dtmf

log = logging.getLogger("voxgate.agent")


class RunnerOptions(BaseModel):
    """Call-level behaviour around the conversation: timeouts, re-prompts, what to say on errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    early_stt_ms: int | None = Field(
        200,
        ge=0,
        description="Start transcribing after this much caller silence, before the turn is over; if "
        "the caller stays silent until the endpoint, that transcript is used at once. None: off",
    )
    silence_reprompt_ms: int | None = Field(
        8000, ge=1000, description="Caller silence after the agent finished talking before a re-prompt"
    )
    max_reprompts: int = Field(2, ge=0, description="Re-prompts in a row before the agent hangs up")
    silence_goodbye: str = Field(
        "I haven't heard anything, so I'll hang up now. Goodbye.",
        description="Said before hanging up on a silent caller",
    )
    max_call_s: int = Field(1800, ge=10, description="The call is ended (politely) after this long")
    max_call_goodbye: str = Field(
        "We've reached the time limit for this call. Goodbye.",
        description="Said when max_call_s is reached",
    )
    dtmf_timeout_ms: int = Field(
        1500, ge=100, description="Keys pressed are delivered after this long without another key"
    )
    dtmf_terminator: str = Field("#", max_length=1, description="A key that delivers the keys at once")
    stt_timeout_s: float = Field(10.0, gt=0, description="Longest wait for a transcript")
    error_message: str = Field(
        "Sorry, I'm having trouble right now. Could you say that again?",
        description="Said when the responder or a provider fails, so the call is never silent",
    )
    hangup_delay_ms: int = Field(
        200, ge=0, description="Pause after the last words before hanging up, so they are not clipped"
    )


@dataclass(frozen=True, slots=True)
class _CallerTurn:
    """A finished stretch of caller speech and when the turn detector decided it was over."""

    speech: SpeechEnded
    decided_at: float
    early: asyncio.Task[str] | None = None  # transcription started before the endpoint
    live: asyncio.Task[str] | None = None  # a streaming STT's transcript, fed while they spoke


@dataclass
class _Segment:
    text: str
    start_ms: float
    end_ms: float


@dataclass
class _Reply:
    """One agent reply in flight, and what is needed to know what of it was heard."""

    timing: TurnTiming
    mark: int
    base_ms: float  # pacer.played_ms + queued at the start: this reply's audio starts there
    interruptible: bool
    task: asyncio.Task[None] | None = None
    segments: list[_Segment] = field(default_factory=list)
    written_ms: float = 0.0
    interrupted: bool = False
    heard: str | None = None
    first_audio: asyncio.Future[float] | None = None
    entry: TurnEntry | None = None

    def heard_text(self, heard_ms: float) -> str:
        """The words the caller heard: whole sentences played, and the played share of the
        sentence that was cut, in whole words."""
        out: list[str] = []
        for seg in self.segments:
            if seg.end_ms <= heard_ms:
                out.append(seg.text)
                continue
            if heard_ms > seg.start_ms and seg.end_ms > seg.start_ms:
                words = seg.text.split()
                share = (heard_ms - seg.start_ms) / (seg.end_ms - seg.start_ms)
                if n := int(len(words) * share):
                    out.append(" ".join(words[:n]))
            break
        return " ".join(out)


_FLUSH = object()


class ConversationRunner:
    """Runs one call to the end. Build it per call; `await run()`."""

    def __init__(
        self,
        call: CallAudio,
        *,
        responder: Responder,
        stt: STT,
        tts: TTS,
        vad: VAD,
        turn: TurnOptions | None = None,
        barge_in: BargeInOptions | None = None,
        options: RunnerOptions | None = None,
        conversation: Conversation | None = None,
        agent_name: str = "agent",
    ) -> None:
        self.call = call
        self.responder = responder
        self.stt = stt
        self.tts = tts
        self.turns = TurnDetector(vad, turn)
        self.barge_in = barge_in or BargeInOptions()
        self.options = options or RunnerOptions()
        self.conversation = conversation or Conversation()
        self.log = logging.LoggerAdapter(log, {"call_id": call.call_id})
        self.record = CallRecord(call.call_id, agent_name, self.log)
        self._out = call.output
        self._inputs: asyncio.Queue[_CallerTurn | UserInput | EndCall] = asyncio.Queue()
        self._reply: _Reply | None = None
        self._turn_no = 0
        self._paused_at: float | None = None  # audio time (ms) the agent was paused for barge-in
        self._digits = ""
        self._digits_quiet_ms = 0.0
        self._quiet_ms = 0.0
        self._reprompts = 0
        self._call_ms = 0.0
        self._ending = False
        self._caller_gone = False  # the inbound stream ended: nothing can be played any more
        self._busy = False  # the worker is handling an input
        self._early_stt_ms = self.options.early_stt_ms
        self._early: tuple[float, asyncio.Task[str]] | None = None  # (speech end it covers, task)
        self._live: LiveTranscriber | None = None  # a streaming STT hears each turn as it is spoken
        if streams_during_speech(stt):
            self._early_stt_ms = None
            self._live = LiveTranscriber(
                stt, self.turns.format, timeout_s=self.options.stt_timeout_s, log=self.log, record=self.record
            )

    # --- public ------------------------------------------------------------------------------

    async def run(self) -> None:
        worker = asyncio.create_task(self._worker(), name=f"turns-{self.call.call_id}")
        greeted = False
        try:
            async for event in self.call:
                if isinstance(event, AudioFrame):
                    if not greeted:  # the first frame fixes the call's audio format
                        greeted = True
                        self._greet()
                    self._on_audio(event)
                elif isinstance(event, Dtmf):
                    self._on_dtmf(event.digit)
                if worker.done():
                    break
            for ev in self.turns.flush():
                if isinstance(ev, SpeechEnded):  # what the caller said as they hung up is kept
                    self._inputs.put_nowait(self._caller_turn(ev))
        finally:
            if self._early is not None:
                self._early[1].cancel()
                self._early = None
            await self._drain_caller_input(worker)
            if self._live is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._live.aclose()
            if self._reply is not None and self._reply.task is not None:
                self._reply.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reply.task
            self.record.ended_at = time.time()
            self.record.end_reason = self.record.end_reason or "caller hung up"
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # a cancel that came during the clean-up is not swallowed

    async def _drain_caller_input(self, worker: asyncio.Task[None]) -> None:
        """After hangup: transcribe and record what the caller still said, but reply to nothing."""
        self._ending = True
        self._caller_gone = True
        self._out.clear()  # no one hears it now; and no wait for it to play out (`_settle_reply`)
        if not worker.done():
            self._inputs.put_nowait(EndCall("caller hung up"))
            with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
                async with asyncio.timeout(self.options.stt_timeout_s):
                    await worker
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await worker
            except Exception:
                self.log.exception("conversation failed")

    # --- inbound -----------------------------------------------------------------------------

    def _on_audio(self, frame: AudioFrame) -> None:
        ms = frame.duration_ms
        self._call_ms += ms
        for ev in self.turns.push(frame):
            if isinstance(ev, SpeechStarted):
                self._quiet_ms = 0.0
                if self._live is not None:
                    self._live.start()
            else:
                self._inputs.put_nowait(self._caller_turn(ev))
        if self._live is not None:
            self._live.feed(self.turns)
        if self._early_stt_ms is not None and self.turns.speaking:
            self._maybe_transcribe_early()
        reply = self._reply
        if (
            self.turns.speaking
            and reply is not None
            and self._paused_at is None
            and reply.interruptible
            and self.barge_in.enabled
            and self._speaking()
            and self.turns.speech_ms >= self.barge_in.min_speech_ms
        ):
            self._pause_for_caller()
        elif self._paused_at is not None and self._interruption_timed_out():
            self._interrupt("caller kept talking")
        self._count_quiet(ms)

    def _maybe_transcribe_early(self) -> None:
        """Once the caller has been silent `early_stt_ms`, transcribe what they said so far."""
        turns = self.turns
        early = self._early
        if early is not None and early[0] != turns.speech_end_ms:  # they talked on: start over
            early[1].cancel()
            self._early = early = None
        if early is None and turns.silence_ms >= self._early_stt_ms:  # type: ignore[operator]
            task = asyncio.create_task(self._recognize(turns.utterance_so_far()))
            task.add_done_callback(_consume)
            self._early = (turns.speech_end_ms, task)

    def _caller_turn(self, ev: SpeechEnded) -> _CallerTurn:
        live = self._live.end(ev.audio) if self._live is not None else None
        return _CallerTurn(ev, time.monotonic(), self._take_early(ev), live)

    def _take_early(self, ev: SpeechEnded) -> asyncio.Task[str] | None:
        early, self._early = self._early, None
        if early is None:
            return None
        if early[0] == ev.at_ms and ev.reason in ("silence", "flush"):  # silent since: the same words
            return early[1]
        early[1].cancel()
        return None

    def _count_quiet(self, ms: float) -> None:
        opts = self.options
        if self._digits:
            self._digits_quiet_ms += ms
            if self._digits_quiet_ms >= opts.dtmf_timeout_ms:
                self._deliver_digits()
        if self._call_ms >= opts.max_call_s * 1000 and not self._ending:
            self._ending = True
            self._inputs.put_nowait(EndCall("max call duration"))
        if self.turns.speaking or self._busy or self._speaking() or not self._inputs.empty():
            self._quiet_ms = 0.0
            return
        self._quiet_ms += ms
        if opts.silence_reprompt_ms is not None and self._quiet_ms >= opts.silence_reprompt_ms:
            self._quiet_ms = 0.0
            self._reprompts += 1
            if self._reprompts > opts.max_reprompts:
                self._inputs.put_nowait(EndCall("caller silent"))
            else:
                self._inputs.put_nowait(UserInput(silence_ms=opts.silence_reprompt_ms))

    def _on_dtmf(self, digit: str) -> None:
        self.record.event("dtmf", digit=digit)
        self._quiet_ms = 0.0
        reply = self._reply
        if reply is not None and reply.interruptible and self._speaking():
            self._interrupt("caller pressed a key")  # a key press is deliberate: no pause-and-see
        self._digits += digit
        self._digits_quiet_ms = 0.0
        if digit == self.options.dtmf_terminator:
            self._deliver_digits()

    def _deliver_digits(self) -> None:
        digits, self._digits = self._digits, ""
        self._inputs.put_nowait(UserInput(dtmf=digits))

    # --- barge-in ----------------------------------------------------------------------------

    def _speaking(self) -> bool:
        """True while a reply is being produced or its audio is still queued."""
        reply = self._reply
        if reply is None:
            return False
        if reply.task is not None and not reply.task.done():
            return True
        return self._out.queued_ms > 0

    def _pause_for_caller(self) -> None:
        """Stop the agent's audio from the next frame; the reply keeps being prepared until we
        know whether the caller really took the turn."""
        if self.barge_in.false_interruption_timeout_ms is None:
            self._interrupt("caller spoke")
            return
        self._out.pause()
        self._paused_at = self.turns.now_ms
        self.record.event("paused", played_ms=self._out.played_ms)

    def _interruption_timed_out(self) -> bool:
        timeout = self.barge_in.false_interruption_timeout_ms
        assert self._paused_at is not None and timeout is not None
        return self.turns.speaking and self.turns.now_ms - self._paused_at >= timeout

    def _resume(self, why: str) -> None:
        self._paused_at = None
        self._out.resume()
        self.record.event("resumed", why=why)

    def _interrupt(self, why: str) -> None:
        """The caller took the turn: drop the agent's audio, cancel the reply, note what was heard."""
        reply = self._reply
        self._paused_at = None
        if reply is None or reply.interrupted:
            self._out.resume()
            return
        reply.interrupted = True
        heard_ms = max(0.0, self._out.played_ms - reply.base_ms)
        dropped = self._out.clear()
        self._out.resume()
        reply.heard = reply.heard_text(heard_ms)
        if reply.task is not None and not reply.task.done():
            reply.task.cancel()  # its end (`_finish_reply`) cuts the context to what was heard
        else:  # all of it was produced and queued: cut the context now
            self.conversation.truncate_reply(reply.mark, reply.heard)
            if reply.entry is not None:
                reply.entry.heard = reply.heard
                reply.entry.interrupted = True
        self.record.event("interrupted", why=why, heard_ms=round(heard_ms), dropped_ms=round(dropped))

    # --- turn worker -------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            item = await self._inputs.get()
            self._busy = True
            try:
                if isinstance(item, EndCall):
                    await self._end_from_runner(item)
                    if self._ending:
                        return
                    continue
                if isinstance(item, _CallerTurn):
                    turn, timing = await self._transcribe(item)
                    if turn is None:  # recognition failed: say so rather than stay silent
                        if not self._ending:
                            reply = self._reply  # the caller said something: they took the turn
                            if reply is not None and reply.interruptible and self.barge_in.enabled:
                                if self._speaking():
                                    self._interrupt("caller spoke (not understood)")
                            await self._settle_reply()
                            self._start_reply(
                                _fixed(self.options.error_message, self.conversation),
                                timing,
                                interruptible=True,
                            )
                        continue
                else:
                    timing = self._new_timing("dtmf" if item.dtmf else "silence")
                    turn = item
                await self._take_turn(turn, timing, speech=isinstance(item, _CallerTurn))
            finally:
                self._busy = False

    def _new_timing(self, source: str, endpointing_ms: float = 0.0) -> TurnTiming:
        self._turn_no += 1
        return TurnTiming(
            self._turn_no,
            time.monotonic(),
            endpointing_ms=endpointing_ms,
            source=source,  # type: ignore[arg-type]
        )

    async def _transcribe(self, heard: _CallerTurn) -> tuple[UserInput | None, TurnTiming]:
        ev = heard.speech
        timing = self._new_timing("speech", endpointing_ms=ev.detected_at_ms - ev.at_ms)
        timing.decided_at = heard.decided_at
        text = ""
        failed = False
        try:
            if heard.early is not None:
                text = await heard.early
                timing.early_stt = True
            elif heard.live is not None:
                text = await heard.live
            else:
                text = await self._recognize(ev.audio)
        except Exception as exc:  # any STT failure: apologise rather than let the call go dead
            if not isinstance(exc, ProviderError | TimeoutError):
                self.log.exception("speech recognition raised")
            self.log.warning("speech recognition failed: %s", exc)
            self.record.event("stt_failed", error=str(exc), speech_ms=round(ev.duration_ms))
            failed = ev.duration_ms >= 300  # a real utterance, not a click
        timing.mark("stt_ms")
        return (None if failed else UserInput(text=text)), timing

    async def _recognize(self, pcm: bytes) -> str:
        """The final transcript of one utterance (pcm16 at the turn detector's rate)."""
        return await transcribe_utterance(
            self.stt, pcm, self.turns.format, timeout_s=self.options.stt_timeout_s
        )

    async def _take_turn(self, turn: UserInput, timing: TurnTiming, *, speech: bool) -> None:
        if self._ending:  # recorded, not answered
            if turn.text or turn.dtmf:
                self.record.add(TurnEntry("caller", turn.text or f"[keys {turn.dtmf}]"))
            return
        if speech and not turn.text and not turn.silence_ms:
            if self._paused_at is not None:
                self._resume("no words")
            return
        reply = self._reply
        if speech and turn.text and self._speaking() and reply is not None:
            if self.barge_in.is_backchannel(turn.text):
                self.record.add(TurnEntry("caller", turn.text, meta={"backchannel": True}))
                if self._paused_at is not None:
                    self._resume("backchannel")
                return
            if reply.interruptible and self.barge_in.enabled:
                self._interrupt("caller spoke")
        if not turn.silence_ms:
            self._reprompts = 0
        if turn.text:
            self.record.add(TurnEntry("caller", turn.text))
        elif turn.dtmf:
            self.record.add(TurnEntry("caller", f"[keys {turn.dtmf}]", meta={"dtmf": turn.dtmf}))
        await self._settle_reply()
        self._start_reply(self.responder.respond(turn, self.conversation), timing, interruptible=True)

    async def _settle_reply(self) -> None:
        """Wait until the previous reply is over: finished playing, or cancelled and recorded."""
        reply = self._reply
        if reply is None:
            return
        if reply.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(asyncio.wait([reply.task]))
        if not reply.interrupted and self._out.queued_ms > 0:
            await self._out.when_played_out()

    def _greet(self) -> None:
        text = self.responder.greeting()
        if not text:
            return
        self._start_reply(
            _fixed(text, self.conversation),
            self._new_timing("greeting"),
            interruptible=self.barge_in.allow_interrupt_greeting,
        )

    async def _end_from_runner(self, item: EndCall) -> None:
        """Hang up for the runner's own reasons (silence, time limit), saying goodbye first."""
        if item.reason == "caller hung up":
            self._ending = True
            return
        await self._settle_reply()
        text = (
            self.options.silence_goodbye if item.reason == "caller silent" else self.options.max_call_goodbye
        )
        self._start_reply(
            _fixed(text, self.conversation, item), self._new_timing("silence"), interruptible=False
        )
        await self._settle_reply()
        self._ending = True

    # --- replies -----------------------------------------------------------------------------

    def _start_reply(
        self, items: AsyncIterator[ResponseItem], timing: TurnTiming, *, interruptible: bool
    ) -> None:
        if self._caller_gone:  # a turn that was waiting when the caller hung up: no reply
            return
        reply = _Reply(
            timing=timing,
            mark=self.conversation.mark(),
            base_ms=self._out.played_ms + self._out.queued_ms,
            interruptible=interruptible,
        )
        self._reply = reply
        self._paused_at = None
        self._out.resume()
        reply.task = asyncio.create_task(self._run_reply(reply, items), name=f"reply-{self.call.call_id}")

    async def _run_reply(self, reply: _Reply, items: AsyncIterator[ResponseItem]) -> None:
        queue: asyncio.Queue[object] = asyncio.Queue()
        speaker = asyncio.create_task(self._speak(reply, queue))
        try:
            await self._generate(reply, items, queue)
            await speaker
        finally:
            if not speaker.done():
                speaker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await speaker
            self._finish_reply(reply)

    async def _generate(
        self, reply: _Reply, items: AsyncIterator[ResponseItem], queue: asyncio.Queue[object]
    ) -> None:
        splitter = SentenceSplitter()
        wrote = False  # text came: it is spoken (below), so no apology on a failure
        try:
            async with aclosing(items):
                async for item in items:
                    if isinstance(item, str):
                        if not item:
                            continue
                        wrote = wrote or bool(item.strip())
                        reply.timing.mark("llm_first_token_ms")
                        for sentence in splitter.push(item):
                            queue.put_nowait(sentence)
                    else:
                        for sentence in splitter.flush():
                            queue.put_nowait(sentence)
                        queue.put_nowait(item)
        except Exception as exc:  # a provider failure, or a bug in the responder: never silence
            self.log.warning("reply failed: %s", exc, exc_info=not isinstance(exc, ProviderError))
            self.record.event("reply_failed", error=str(exc))
            if not wrote:
                queue.put_nowait(self.options.error_message)
        for sentence in splitter.flush():
            queue.put_nowait(sentence)
        queue.put_nowait(_FLUSH)

    async def _speak(self, reply: _Reply, queue: asyncio.Queue[object]) -> None:
        while (item := await queue.get()) is not _FLUSH:
            if isinstance(item, str):
                await self._say(reply, item)
            else:
                await self._act(reply, item)  # type: ignore[arg-type]
        self._out.flush()

    async def _say(self, reply: _Reply, sentence: str) -> None:
        text = for_speech(sentence)
        if not text:
            return
        segment = _Segment(sentence, reply.written_ms, reply.written_ms)
        reply.segments.append(segment)
        out = self._out
        async with aclosing(self.tts.synthesize(text)) as frames:
            async for frame in frames:
                if reply.first_audio is None:
                    reply.timing.mark("tts_first_audio_ms")
                    reply.first_audio = out.when_sent(out.audio_frames_sent + out.queued_frames + 1)
                    reply.first_audio.add_done_callback(lambda f, r=reply: self._first_frame_out(r, f))
                out.write(frame)
                reply.written_ms += frame.duration_ms
                segment.end_ms = reply.written_ms

    def _first_frame_out(self, reply: _Reply, fut: asyncio.Future[float]) -> None:
        if reply.interrupted or fut.cancelled():
            return
        reply.timing.first_frame_out_ms = (fut.result() - reply.timing.decided_at) * 1000

    async def _act(self, reply: _Reply, action: Action) -> None:
        if isinstance(action, SendDtmf):
            # in-band tones are part of the reply: the words after them start later
            reply.written_ms += await send_dtmf(self.call, self.record, action.digits)
            return
        await play_out(self._out, self.options.hangup_delay_ms / 1000)
        self._ending = True
        await hang_up(self.call, self.record, action, self.log)

    def _finish_reply(self, reply: _Reply) -> None:
        said = " ".join(seg.text for seg in reply.segments)
        if reply.interrupted:
            self.conversation.truncate_reply(reply.mark, reply.heard or "")
        if said:
            reply.entry = self.record.add(
                TurnEntry(
                    "agent",
                    said,
                    heard=reply.heard if reply.interrupted else said,
                    interrupted=reply.interrupted,
                    timing=reply.timing,
                )
            )
        if reply.first_audio is not None and not reply.first_audio.done():
            reply.first_audio.add_done_callback(lambda _f: self.record.log_timing(reply.timing))
        elif said or reply.timing.source != "greeting":
            self.record.log_timing(reply.timing)


async def _fixed(
    text: str, conversation: Conversation, then: Action | None = None
) -> AsyncIterator[ResponseItem]:
    """A reply that is known in advance (greeting, goodbye, apology), recorded like any other."""
    try:
        yield text
        if then is not None:
            yield then
    finally:
        conversation.add_assistant(text)


def _consume(task: asyncio.Task[str]) -> None:
    """Retrieve an early transcription's outcome so an unused failure is not reported as lost."""
    if not task.cancelled():
        task.exception()
