"""ConversationRunner with a streaming STT (`streams_during_speech`): audio goes out while the
caller speaks, `end_input()` comes at the endpoint, and a failing stream falls back to the
whole-utterance path. Time is call time on a `SimulatedCall`, as in test_runner.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from fake_deepgram_listen import FakeDeepgramListen, results
from voxgate.agent.responder import Conversation, ResponseItem, UserInput
from voxgate.agent.runner import ConversationRunner, RunnerOptions
from voxgate.agent.stt_stream import streams_during_speech
from voxgate.audio.format import SLIN8, AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import STT, ProviderError, SpeechEvent
from voxgate.providers.batch_stt import BatchSTTAdapter
from voxgate.providers.fallback import FallbackSTT
from voxgate.providers.stt.deepgram import DeepgramSTT
from voxgate.testing import ScriptedSTT, ScriptedTTS, ScriptedVAD
from voxgate.testing.harness import SimulatedCall, tone

FRAME = 20
WINDOW = 32
ENDPOINT_MS = 512
MS_PER_CHAR = 10.0
LONG = "Our opening hours are nine to five on weekdays. On Saturdays we open at ten and close at two."


# --- a scripted streaming STT ------------------------------------------------------------------


class LiveSTT:
    """A streaming STT on the call's clock: records each stream's pushes (call ms, bytes), when
    its events started being read and when `end_input()` came; answers each ended stream with
    the next transcript (a string, or a sequence of finals).

    `fail_open`: that many `stream()` calls raise. `fail_push_at`: the n-th push of the first
    stream raises. `break_after`: the first stream's events fail once that many pushes came.
    `hang`: no answer after `end_input()`.
    """

    streams_during_speech = True

    def __init__(
        self,
        transcripts: Sequence[str | Sequence[str]],
        clock: Callable[[], float],
        *,
        input_format: AudioFormat = SLIN8,
        fail_open: int = 0,
        fail_push_at: int | None = None,
        break_after: int | None = None,
        hang: bool = False,
    ) -> None:
        self.name = "live-stt"
        self.input_format = input_format
        self.transcripts = [[t] if isinstance(t, str) else list(t) for t in transcripts]
        self.clock = clock
        self.fail_open = fail_open
        self.fail_push_at = fail_push_at
        self.break_after = break_after
        self.hang = hang  # never answer after end_input()
        self.streams: list[LiveStream] = []

    def stream(self) -> LiveStream:
        if self.fail_open:
            self.fail_open -= 1
            raise ProviderError(self.name, "cannot connect (scripted)")
        s = LiveStream(self, first=not self.streams)
        self.streams.append(s)
        return s

    @property
    def open_streams(self) -> int:
        return sum(1 for s in self.streams if not s.closed)

    def take(self) -> list[str]:
        if not self.transcripts:
            raise ProviderError(self.name, "no transcript left", retryable=False)
        return self.transcripts.pop(0)


class LiveStream:
    def __init__(self, stt: LiveSTT, *, first: bool) -> None:
        self._stt = stt
        self._first = first
        self.pushes: list[tuple[float, int]] = []
        self.audio = bytearray()
        self.read_at: float | None = None
        self.ended_at: float | None = None
        self.closed = False
        self._wake = asyncio.Event()

    def push_audio(self, frame: AudioFrame) -> None:
        stt = self._stt
        assert frame.format == stt.input_format
        assert self.ended_at is None, "push after end_input"
        if self._first and stt.fail_push_at == len(self.pushes) + 1:
            raise ProviderError(stt.name, "the socket is gone (scripted)")
        self.pushes.append((stt.clock(), len(frame.data)))
        self.audio += frame.data
        self._wake.set()

    def end_input(self) -> None:
        self.ended_at = self._stt.clock()
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SpeechEvent]:
        stt = self._stt
        self.read_at = stt.clock()
        while self.ended_at is None and not self.closed:
            if self._first and stt.break_after is not None and len(self.pushes) >= stt.break_after:
                raise ProviderError(stt.name, "the server closed the stream (scripted)")
            self._wake.clear()
            await self._wake.wait()
        if self.closed:
            return
        if stt.hang:
            await asyncio.Event().wait()
        for text in stt.take():
            yield SpeechEvent("final", text, confidence=1.0, is_endpoint=True)

    async def aclose(self) -> None:
        self.closed = True
        self._wake.set()


# --- helpers ---------------------------------------------------------------------------------


class ScriptResponder:
    name = "script"

    def __init__(self, replies: Sequence[str] = ()) -> None:
        self.replies = list(replies)
        self.turns: list[UserInput] = []

    def greeting(self) -> str | None:
        return None

    async def respond(self, turn: UserInput, conversation: Conversation) -> AsyncIterator[ResponseItem]:
        self.turns.append(turn)
        conversation.add_user(turn.as_message_text())
        text = self.replies.pop(0) if self.replies else "Okay then."
        try:
            yield text
        finally:
            conversation.add_assistant(text)


def runner_for(
    call: SimulatedCall, responder: ScriptResponder, stt: STT, **options: Any
) -> ConversationRunner:
    options.setdefault("hangup_delay_ms", 0)
    options.setdefault("silence_reprompt_ms", None)
    return ConversationRunner(
        call,
        responder=responder,
        stt=stt,
        tts=ScriptedTTS(ms_per_char=MS_PER_CHAR),
        vad=ScriptedVAD(),
        options=RunnerOptions(**options),
    )


async def start(runner: ConversationRunner) -> asyncio.Task[None]:
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0)
    return task


async def finish(call: SimulatedCall, task: asyncio.Task[None]) -> None:
    call.end()
    await asyncio.wait_for(task, 5)


def events(runner: ConversationRunner, name: str) -> list[Any]:
    return [e for e in runner.record.entries if e.role == "event" and e.text == name]


def caller_texts(runner: ConversationRunner) -> list[str]:
    return [e.text for e in runner.record.entries if e.role == "caller"]


async def one_turn(
    stt: STT, call: SimulatedCall, **options: Any
) -> tuple[ConversationRunner, dict[str, float]]:
    """200 ms of silence, 800 ms of speech, then until the agent answers and is quiet again."""
    responder = ScriptResponder(["Nine to five."])
    runner = runner_for(call, responder, stt, **options)
    task = await start(runner)
    await call.silence(200)
    t = {"speech_start": call.now_ms}
    await call.say(tone(800))
    t["speech_end"] = call.now_ms
    t["answered"] = t["speech_end"] + await call.until(call.agent_talking, 1500)
    await call.until(lambda: not call.agent_talking(), 3000)
    await finish(call, task)
    return runner, t


# --- tests -----------------------------------------------------------------------------------


def test_which_providers_stream_during_speech() -> None:
    live = LiveSTT([], lambda: 0.0)
    assert DeepgramSTT.streams_during_speech is True
    assert streams_during_speech(live) and streams_during_speech(FallbackSTT([live, ScriptedSTT()]))
    assert not streams_during_speech(ScriptedSTT())
    assert not streams_during_speech(BatchSTTAdapter(ScriptedSTT()))  # type: ignore[arg-type]
    assert not streams_during_speech(FallbackSTT([ScriptedSTT(), live]))


async def test_audio_goes_out_while_the_caller_speaks_and_the_transcript_drives_the_reply() -> None:
    call = SimulatedCall()
    stt = LiveSTT([("what are", "your hours")], lambda: call.now_ms)
    runner, t = await one_turn(stt, call)

    [stream] = stt.streams  # one stream for the turn: no early transcription on the side
    assert stream.read_at is not None and stream.read_at < t["speech_start"] + 200  # read from the start
    during = [at for at, _ in stream.pushes if at < t["speech_end"]]
    assert stream.pushes[0][0] < t["speech_start"] + 200  # the prefix went out at the speech start
    assert len(during) >= (t["speech_end"] - t["speech_start"] - 200) // WINDOW  # then window by window
    assert stream.ended_at is not None
    assert (
        t["speech_end"] + ENDPOINT_MS - 2 * WINDOW
        <= stream.ended_at
        <= t["speech_end"] + ENDPOINT_MS + WINDOW
    )
    assert t["answered"] - stream.ended_at <= FRAME  # the transcript was there at once
    assert caller_texts(runner) == ["what are your hours"]  # the finals, joined
    assert stream.closed and stt.open_streams == 0
    assert not events(runner, "stt_stream_failed") and not events(runner, "stt_failed")
    [timing] = runner.record.timings
    assert timing.source == "speech" and not timing.early_stt and timing.endpointing_ms == ENDPOINT_MS


async def test_the_stream_gets_exactly_the_audio_the_whole_utterance_path_would() -> None:
    batch_call = SimulatedCall()
    batch = ScriptedSTT(["what are your hours"])
    await one_turn(batch, batch_call, early_stt_ms=None)
    call = SimulatedCall()
    stt = LiveSTT(["what are your hours"], lambda: call.now_ms)
    await one_turn(stt, call)
    assert bytes(stt.streams[0].audio) == batch.heard[0]


async def test_audio_is_converted_to_the_stt_s_format_as_it_goes() -> None:
    batch_call = SimulatedCall()
    batch = ScriptedSTT(["what are your hours"])
    await one_turn(batch, batch_call, early_stt_ms=None)
    call = SimulatedCall()
    stt = LiveSTT(
        ["what are your hours"], lambda: call.now_ms, input_format=AudioFormat(Encoding.PCM16, 16000)
    )
    runner, _ = await one_turn(stt, call)
    assert abs(len(stt.streams[0].audio) - 2 * len(batch.heard[0])) <= 4  # 8 kHz → 16 kHz, whole
    assert caller_texts(runner) == ["what are your hours"]


async def test_a_short_burst_with_no_words_closes_its_stream_and_gets_no_reply() -> None:
    call = SimulatedCall()
    stt = LiveSTT([""], lambda: call.now_ms)
    responder = ScriptResponder()
    runner = runner_for(call, responder, stt)
    task = await start(runner)
    await call.say(tone(160))  # long enough to be a turn, too short to be words
    await call.silence(ENDPOINT_MS + 200)
    [stream] = stt.streams
    assert stream.ended_at is not None and stream.closed
    assert responder.turns == [] and caller_texts(runner) == [] and call.agent_audio_ms == 0
    await finish(call, task)


async def test_a_backchannel_while_the_agent_talks_is_ignored_and_its_stream_closed() -> None:
    call = SimulatedCall()
    stt = LiveSTT(["tell me your hours", "mhm"], lambda: call.now_ms)
    responder = ScriptResponder([LONG])
    runner = runner_for(call, responder, stt)
    task = await start(runner)
    await call.say(tone(400))
    await call.until(call.agent_talking, 1500)
    await call.silence(300)
    await call.say(tone(300))
    await call.until(lambda: bool(events(runner, "resumed")), 1500)
    assert events(runner, "resumed")[0].meta["why"] == "backchannel"
    assert len(responder.turns) == 1 and len(stt.streams) == 2
    assert stt.open_streams == 0
    await finish(call, task)


async def test_a_caller_who_hangs_up_mid_turn_is_transcribed_and_the_stream_closed() -> None:
    call = SimulatedCall()
    stt = LiveSTT(["and cancel my order"], lambda: call.now_ms)
    responder = ScriptResponder()
    runner = runner_for(call, responder, stt)
    task = await start(runner)
    await call.silence(100)
    await call.say(tone(600))  # no endpointing silence: the caller is gone mid-turn
    await finish(call, task)
    [stream] = stt.streams
    assert stream.ended_at is not None and stream.closed
    assert caller_texts(runner) == ["and cancel my order"] and responder.turns == []


async def test_a_runner_cancelled_mid_turn_closes_the_open_stream() -> None:
    call = SimulatedCall()
    stt = LiveSTT(["never heard"], lambda: call.now_ms)
    runner = runner_for(call, ScriptResponder(), stt)
    task = await start(runner)
    await call.say(tone(400))
    [stream] = stt.streams
    assert stream.pushes and not stream.closed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert stream.closed and stream.ended_at is None


async def test_a_stream_that_fails_on_push_falls_back_to_the_whole_utterance(
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch_call = SimulatedCall()
    batch = ScriptedSTT(["what are your hours"])
    await one_turn(batch, batch_call, early_stt_ms=None)
    call = SimulatedCall()
    stt = LiveSTT(["what are your hours"], lambda: call.now_ms, fail_push_at=3)
    with caplog.at_level(logging.WARNING, logger="voxgate.agent"):
        runner, _ = await one_turn(stt, call)
    failed, whole = stt.streams
    assert failed.closed and failed.ended_at is None and len(failed.pushes) == 2
    assert len(whole.pushes) == 1 and bytes(whole.audio) == batch.heard[0]  # at the endpoint, in one go
    assert whole.closed and caller_texts(runner) == ["what are your hours"]
    assert len(events(runner, "stt_stream_failed")) == 1
    assert len([r for r in caplog.records if "streaming STT" in r.getMessage()]) == 1  # logged once


async def test_a_stream_that_cannot_be_opened_falls_back_to_the_whole_utterance() -> None:
    call = SimulatedCall()
    stt = LiveSTT(["what are your hours"], lambda: call.now_ms, fail_open=1)
    runner, t = await one_turn(stt, call)
    [whole] = stt.streams
    assert len(whole.pushes) == 1 and whole.pushes[0][0] >= t["speech_end"] + ENDPOINT_MS - 2 * WINDOW
    assert caller_texts(runner) == ["what are your hours"]
    assert len(events(runner, "stt_stream_failed")) == 1 and stt.open_streams == 0


async def test_a_stream_that_breaks_mid_turn_falls_back_to_the_whole_utterance() -> None:
    call = SimulatedCall()
    stt = LiveSTT(["what are your hours"], lambda: call.now_ms, break_after=4)
    runner, _ = await one_turn(stt, call)
    broken, whole = stt.streams
    assert broken.closed and broken.ended_at is None
    assert len(whole.pushes) == 1 and caller_texts(runner) == ["what are your hours"]
    assert len(events(runner, "stt_stream_failed")) == 1 and stt.open_streams == 0


async def test_a_fallback_stt_over_a_streaming_stt_streams_to_it_during_speech() -> None:
    call = SimulatedCall()
    live = LiveSTT(["what are your hours"], lambda: call.now_ms)
    runner, t = await one_turn(FallbackSTT([live]), call)
    [stream] = live.streams
    assert sum(1 for at, _ in stream.pushes if at < t["speech_end"]) > 5  # reached it while speaking
    assert caller_texts(runner) == ["what are your hours"] and stream.closed


async def test_a_batch_stt_is_still_transcribed_whole_and_early() -> None:
    call = SimulatedCall()
    batch = ScriptedSTT(["what are your hours"])
    runner, _ = await one_turn(FallbackSTT([batch]), call)
    assert len(batch.heard) == 1 and caller_texts(runner) == ["what are your hours"]
    [timing] = runner.record.timings
    assert timing.early_stt  # today's path: transcribed after 200 ms of silence
    assert batch.active == 0 and not events(runner, "stt_stream_failed")


async def test_the_transcript_timeout_starts_at_the_endpoint_not_at_the_speech_start() -> None:
    call = SimulatedCall()
    stt = LiveSTT(["what are your hours"], lambda: call.now_ms)
    responder = ScriptResponder()
    runner = runner_for(call, responder, stt, stt_timeout_s=0.1)
    task = await start(runner)
    pcm = tone(600)
    n = call.format.frame_bytes(FRAME)
    for i in range(0, len(pcm), n):  # a turn that takes longer than the timeout in real time
        await call.step(pcm[i : i + n])
        await asyncio.sleep(0.01)
    await call.until(call.agent_talking, 1500)
    assert responder.turns == [UserInput("what are your hours")]
    assert not events(runner, "stt_stream_failed") and not events(runner, "stt_failed")
    await finish(call, task)


async def test_a_stream_that_never_answers_times_out_is_closed_and_apologised_for() -> None:
    call = SimulatedCall()
    stt = LiveSTT(["unused"], lambda: call.now_ms, hang=True)
    responder = ScriptResponder()
    runner = runner_for(call, responder, stt, stt_timeout_s=0.05, error_message="Sorry?")
    task = await start(runner)
    await call.say(tone(600))
    await call.silence(ENDPOINT_MS + FRAME)
    [stream] = stt.streams
    assert stream.ended_at is not None
    await asyncio.sleep(0.1)
    await call.until(call.agent_talking, 500)
    assert events(runner, "stt_failed") and responder.turns == [] and stream.closed
    assert len(stt.streams) == 1  # a failure after the endpoint is not retried whole
    await finish(call, task)


async def test_deepgram_behind_a_fallback_hears_the_caller_as_they_speak() -> None:
    """The real provider on a loopback fake of its WebSocket: audio goes out during speech,
    Finalize/CloseStream at the endpoint, and the final answers the turn."""
    fake = await FakeDeepgramListen().start()
    deepgram = DeepgramSTT(url=fake.url, api_key=fake.api_key, encoding="mulaw")
    try:
        fake.on_finalize = [results("what are your hours", is_final=True, from_finalize=True)]
        call = SimulatedCall()
        responder = ScriptResponder(["Nine to five."])
        runner = runner_for(call, responder, FallbackSTT([deepgram]))
        task = await start(runner)
        pcm = tone(800)
        n = call.format.frame_bytes(FRAME)
        for i in range(0, len(pcm), n):
            await call.step(pcm[i : i + n])
            await asyncio.sleep(0.002)  # real time for the socket
        await fake.wait_for(lambda: bool(fake.connections) and fake.connections[0].count("audio") > 0)
        conn = fake.connections[0]
        assert "Finalize" not in conn.order  # connected and fed while the caller is still in their turn
        for _ in range(100):
            if responder.turns:
                break
            await call.step()
            await asyncio.sleep(0.002)
        assert responder.turns == [UserInput("what are your hours")]
        assert conn.order[-2:] == ["Finalize", "CloseStream"] and len(fake.connections) == 1
        assert not events(runner, "stt_stream_failed")
        await finish(call, task)
    finally:
        await deepgram.aclose()
        await fake.stop()
