"""ConversationRunner end to end on a `SimulatedCall`: turn-taking, barge-in, DTMF, actions, errors.

Time here is call time: each `step()` is one 20 ms frame in and one out, so every threshold is
checked in audio milliseconds. The scripted VAD (no script) counts loud 32 ms windows as speech,
like Silero's window size; `tone()` is loud, silence is not. The scripted TTS speaks every text as
`ms_per_char` ms of a 440 Hz tone, so what was heard can be computed from the text.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest

from voxgate.agent.flow import FlowResponder
from voxgate.agent.flow_config import FlowConfig
from voxgate.agent.llm_responder import LLMResponder
from voxgate.agent.responder import (
    Conversation,
    EndCall,
    ResponseItem,
    SendDtmf,
    Transfer,
    UserInput,
)
from voxgate.agent.runner import ConversationRunner, RunnerOptions
from voxgate.agent.turns import BargeInOptions, TurnOptions
from voxgate.providers.base import ChatMessage, LLMDone, LLMEvent, ProviderError, TextDelta, ToolCallEvent
from voxgate.testing import Reply, ScriptedLLM, ScriptedSTT, ScriptedTTS, ScriptedVAD
from voxgate.testing.harness import SimulatedCall, tone

FRAME = 20  # ms per step
WINDOW = 32  # ms per ScriptedVAD window (256 samples at 8 kHz)
MS_PER_CHAR = 10.0
ENDPOINT_MS = 512  # 500 ms of endpointing silence, rounded up to whole 32 ms windows

LONG = (
    "Our opening hours are nine to five on weekdays. "
    "On Saturdays we open at ten and close at two in the afternoon. "
    "We are closed on Sundays and on public holidays."
)
LONG_SENTENCES = [
    "Our opening hours are nine to five on weekdays.",
    "On Saturdays we open at ten and close at two in the afternoon.",
    "We are closed on Sundays and on public holidays.",
]


# --- helpers ---------------------------------------------------------------------------------


class ScriptResponder:
    """Replies with scripted items (text pieces and actions), one list per turn; records turns."""

    name = "script"

    def __init__(self, replies: Sequence[Sequence[ResponseItem] | str] = (), greeting: str | None = None):
        self.replies = [[r] if isinstance(r, str) else list(r) for r in replies]
        self._greeting = greeting
        self.turns: list[UserInput] = []
        self.turn_times: list[float] = []
        self.call: SimulatedCall | None = None

    def greeting(self) -> str | None:
        return self._greeting

    async def respond(self, turn: UserInput, conversation: Conversation) -> AsyncIterator[ResponseItem]:
        self.turns.append(turn)
        if self.call is not None:
            self.turn_times.append(self.call.now_ms)
        conversation.add_user(turn.as_message_text())
        items = self.replies.pop(0) if self.replies else ["Okay then."]
        said: list[str] = []
        try:
            for item in items:
                if isinstance(item, str):
                    said.append(item)
                yield item
        finally:
            conversation.add_assistant("".join(said))


def runner_for(
    call: SimulatedCall,
    responder: Any,
    stt: ScriptedSTT,
    tts: ScriptedTTS | None = None,
    *,
    barge_in: BargeInOptions | None = None,
    turn: TurnOptions | None = None,
    conversation: Conversation | None = None,
    **options: Any,
) -> ConversationRunner:
    options.setdefault("hangup_delay_ms", 0)
    options.setdefault("silence_reprompt_ms", None)
    if isinstance(responder, ScriptResponder):
        responder.call = call
    return ConversationRunner(
        call,
        responder=responder,
        stt=stt,
        tts=tts or ScriptedTTS(ms_per_char=MS_PER_CHAR),
        vad=ScriptedVAD(),
        turn=turn,
        barge_in=barge_in,
        options=RunnerOptions(**options),
        conversation=conversation,
    )


async def start(runner: ConversationRunner) -> asyncio.Task[None]:
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0)
    return task


async def finish(call: SimulatedCall, task: asyncio.Task[None], within: float = 5.0) -> None:
    """The caller hangs up (if the agent has not) and the runner returns."""
    call.end()
    await asyncio.wait_for(task, within)


async def speak(call: SimulatedCall, ms: float) -> None:
    await call.say(tone(ms))


def audio_frames_since(call: SimulatedCall, since_ms: float) -> int:
    return sum(1 for t, audio in call.sent if audio and t >= since_ms)


def spans(call: SimulatedCall) -> list[tuple[float, float]]:
    """[start, end) call-time spans of continuous agent audio."""
    out: list[tuple[float, float]] = []
    for t, audio in call.sent:
        if not audio:
            continue
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], t + FRAME)
        else:
            out.append((t, t + FRAME))
    return out


def events(runner: ConversationRunner, name: str | None = None) -> list[Any]:
    return [e for e in runner.record.entries if e.role == "event" and (name is None or e.text == name)]


def said(runner: ConversationRunner, role: str) -> list[Any]:
    return [e for e in runner.record.entries if e.role == role]


def heard_words(sentences: Sequence[str], tts: ScriptedTTS, heard_ms: float) -> str:
    """What a caller heard of `sentences` after `heard_ms` of their audio: whole sentences, then
    the played share of the cut one in whole words (rounded down)."""
    out: list[str] = []
    at = 0.0
    for sentence in sentences:
        length = tts.duration_ms(sentence)
        if at + length <= heard_ms:
            out.append(sentence)
            at += length
            continue
        words = sentence.split()
        n = math.floor(len(words) * (heard_ms - at) / length) if heard_ms > at else 0
        if n:
            out.append(" ".join(words[:n]))
        break
    return " ".join(out)


async def until_talking(call: SimulatedCall, within_ms: float = 2000) -> float:
    return await call.until(call.agent_talking, within_ms)


async def until_quiet(call: SimulatedCall, within_ms: float = 10_000) -> float:
    return await call.until(lambda: not call.agent_talking(), within_ms)


def assistant_texts(messages: Sequence[ChatMessage]) -> list[str]:
    return [m.content for m in messages if m.role == "assistant"]


# --- greeting and a plain turn ---------------------------------------------------------------


async def test_greeting_waits_for_the_first_caller_frame_then_plays_in_full() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    greeting = "Hello, thanks for calling. How can I help?"
    runner = runner_for(call, ScriptResponder(greeting=greeting), ScriptedSTT(), tts)
    task = await start(runner)
    for _ in range(20):
        await asyncio.sleep(0)
    assert tts.texts == []
    assert call.output.queued_ms == 0

    await call.step()  # the first caller frame fixes the format: the greeting starts
    assert tts.texts[:1] == ["Hello, thanks for calling."]
    await until_talking(call, 100)
    await until_quiet(call)
    assert tts.texts == ["Hello, thanks for calling.", "How can I help?"]
    [(begin, end)] = spans(call)  # one stretch of audio, the whole greeting
    assert end - begin == sum(tts.duration_ms(t) for t in tts.texts)
    assert begin <= FRAME  # its first frame went out with the first or second tick
    assert [(e.text, e.heard, e.interrupted) for e in said(runner, "agent")] == [(greeting, greeting, False)]
    assert runner.conversation.messages == [ChatMessage.assistant(greeting)]
    await finish(call, task)


async def test_no_greeting_means_no_audio_until_the_caller_speaks() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, ScriptResponder(), ScriptedSTT(), tts)
    task = await start(runner)
    await call.silence(1000)
    assert call.agent_audio_ms == 0 and tts.texts == []
    await finish(call, task)


async def test_a_turn_is_transcribed_answered_and_timed() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["what are your hours"])
    llm = ScriptedLLM(["We are open nine to five. Anything else?"])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, LLMResponder(llm), stt, tts)
    task = await start(runner)
    await call.silence(200)
    speech_start = call.now_ms
    await speak(call, 600)
    speech_end = call.now_ms
    took = await until_talking(call, 1500)
    # The turn ends after the endpointing silence (whole VAD windows), and the reply is out on the
    # very next frame: the scripted providers answer at once.
    assert ENDPOINT_MS - WINDOW <= took <= ENDPOINT_MS + WINDOW + FRAME
    await until_quiet(call)

    assert stt.heard and len(stt.heard) == 1
    # STT got all of the utterance (with its prefix padding).
    assert len(stt.heard[0]) // 16 >= speech_end - speech_start
    assert llm.calls[0][-1] == ChatMessage.user("what are your hours")
    assert tts.texts == ["We are open nine to five.", "Anything else?"]
    assert call.agent_audio_ms == sum(tts.duration_ms(t) for t in tts.texts)
    assert [(e.role, e.text) for e in runner.record.entries if e.role != "event"] == [
        ("caller", "what are your hours"),
        ("agent", "We are open nine to five. Anything else?"),
    ]

    [timing] = runner.record.timings
    assert timing.source == "speech" and timing.turn == 1
    assert timing.endpointing_ms == ENDPOINT_MS
    stages = [timing.stt_ms, timing.llm_first_token_ms, timing.tts_first_audio_ms, timing.first_frame_out_ms]
    assert all(s is not None for s in stages), timing
    assert stages == sorted(stages), timing  # each stage after the one before
    assert timing.voice_to_voice_ms == timing.endpointing_ms + timing.first_frame_out_ms
    assert timing.as_dict()["voice_to_voice_ms"] == round(timing.voice_to_voice_ms, 2)
    await finish(call, task)
    assert runner.record.end_reason == "caller hung up"


async def test_sentences_are_spoken_while_the_llm_is_still_writing() -> None:
    call = SimulatedCall()
    text = "Sure, I can help with that. Let me look up the details of your booking now. One moment."
    llm = ScriptedLLM([text], token_delay=0.01)  # ~17 tokens: ~0.16 s of real time to write
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    started: list[tuple[str, int]] = []  # (text, LLM streams open) when each TTS request starts
    synthesize = tts.synthesize

    def spy(t: str) -> AsyncIterator[Any]:
        started.append((t, llm.active))
        return synthesize(t)

    tts.synthesize = spy  # type: ignore[method-assign]
    runner = runner_for(call, LLMResponder(llm), ScriptedSTT(["help me"]), tts)
    task = await start(runner)
    await speak(call, 400)
    async with asyncio.timeout(5):
        while not call.agent_talking():  # the LLM writes in real time: let it, a frame at a time
            await call.step()
            await asyncio.sleep(0.001)
    assert llm.active == 1, "the first audio should go out before the LLM has finished"
    assert started[0] == ("Sure, I can help with that.", 1)
    while llm.active:  # let the LLM finish in real time while the call goes on
        await call.step()
        await asyncio.sleep(0.002)
    await until_quiet(call, 20_000)
    assert [t for t, _ in started] == [
        "Sure, I can help with that.",
        "Let me look up the details of your booking now.",
        "One moment.",
    ]
    assert started[-1][1] == 0  # the last sentence is known only once the LLM is done
    assert len(spans(call)) >= 1
    assert call.agent_audio_ms == sum(tts.duration_ms(t) for t, _ in started)
    await finish(call, task)


# --- barge-in --------------------------------------------------------------------------------


async def barge_in(call: SimulatedCall, ms: float) -> tuple[float | None, float | None]:
    """The caller talks over the agent for `ms`; returns (when the agent's audio stopped, when
    the output was paused) in call ms from the onset of the caller's speech."""
    onset = call.now_ms
    stopped = paused = None
    pcm = tone(ms)
    n = call.format.frame_bytes(FRAME)
    for i in range(0, len(pcm), n):
        await call.step(pcm[i : i + n])
        if stopped is None and not call.agent_talking():
            stopped = call.sent[-1][0] - onset
        if paused is None and call.output.paused:
            paused = call.sent[-1][0] - onset
    return stopped, paused


async def test_barge_in_stops_the_agent_cuts_the_context_and_closes_the_streams() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["tell me your hours", "actually I want to book an appointment"])
    # The LLM writes the three sentences, starts a fourth and then hangs: still streaming when
    # the caller cuts in, so cancelling the reply must close it.
    llm = ScriptedLLM([LONG + " And one more thing.", "Sure, what day works for you?"])
    llm.stall_after = len(LONG.split()) + 1
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, LLMResponder(llm), stt, tts, conversation=Conversation("Be brief."))
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    reply_start = call.sent[-1][0]
    await call.silence(700)
    assert llm.active == 1 and tts.texts == LONG_SENTENCES

    stopped, paused = await barge_in(call, 800)
    assert stopped is not None and paused is not None
    # Paused once barge_in.min_speech_ms of speech were heard (whole 32 ms VAD windows; the
    # onset window may start up to a window before the speech frame, and `stopped` is the start
    # of the step that stopped) and silent from that very frame on.
    assert stopped == paused
    min_speech = BargeInOptions().min_speech_ms
    assert min_speech - WINDOW - FRAME <= stopped <= 250, stopped
    assert events(runner, "paused") and not events(runner, "interrupted")  # not committed yet
    heard_ms = audio_frames_since(call, reply_start) * FRAME
    assert heard_ms == events(runner, "paused")[0].meta["played_ms"]  # no audio before this reply

    # The transcript arrives after the endpointing silence: that commits the interruption.
    await call.until(lambda: bool(events(runner, "interrupted")), 1500)
    [interrupted] = events(runner, "interrupted")
    assert interrupted.meta["why"] == "caller spoke" and interrupted.meta["heard_ms"] == heard_ms
    await until_talking(call, 1500)
    assert llm.closed >= 1 and len(llm.calls) == 2  # the hanging stream was closed, a new one opened

    expected = heard_words(LONG_SENTENCES, tts, heard_ms)
    assert expected.startswith(LONG_SENTENCES[0] + " On")  # the cut fell inside sentence 2
    assert expected != LONG_SENTENCES[0] + " " + LONG_SENTENCES[1]
    first_agent = said(runner, "agent")[0]
    assert first_agent.interrupted and first_agent.heard == expected
    assert first_agent.text == " ".join(LONG_SENTENCES)  # what it meant to say
    # The LLM's second call sees what the caller heard, not what the agent meant to say.
    assert llm.calls[1] == [
        ChatMessage.system("Be brief."),
        ChatMessage.user("tell me your hours"),
        ChatMessage.assistant(expected),
        ChatMessage.user("actually I want to book an appointment"),
    ]
    await until_quiet(call)
    assert llm.active == 0 and tts.active == 0 and stt.active == 0
    assert runner.conversation.messages[-1] == ChatMessage.assistant("Sure, what day works for you?")
    assert [e.text for e in said(runner, "caller")] == [
        "tell me your hours",
        "actually I want to book an appointment",
    ]
    await finish(call, task)


async def test_barge_in_closes_a_tts_stream_still_in_flight() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["read me the terms", "stop"])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR, stall_after=30)  # hangs after 600 ms of a sentence
    responder = ScriptResponder([LONG, "Okay, stopping."])
    runner = runner_for(call, responder, stt, tts)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    await call.silence(1000)
    assert tts.active == 1 and tts.texts == LONG_SENTENCES[:2]  # sentence 2 hangs after 600 ms
    await barge_in(call, 400)
    await call.until(lambda: bool(events(runner, "interrupted")), 1500)
    await until_talking(call, 1000)
    await until_quiet(call)
    # Cancelling the reply closed the hung stream; the new reply's (short) one ran to its end.
    assert tts.texts == [*LONG_SENTENCES[:2], "Okay, stopping."]
    assert tts.active == 0 and tts.closed == 3
    assert [t.text for t in responder.turns] == ["read me the terms", "stop"]
    await finish(call, task)


async def test_a_short_burst_with_no_words_is_a_false_interruption_and_the_reply_resumes() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["tell me your hours", ""])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder([LONG])
    runner = runner_for(call, responder, stt, tts)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    await call.silence(300)
    stopped, _ = await barge_in(call, 220)  # a cough: long enough to pause the agent
    assert stopped is not None
    await until_talking(call, 1500)  # resumes once the empty transcript is in
    assert events(runner, "resumed")[0].meta["why"] == "no words"
    await until_quiet(call)

    full = sum(tts.duration_ms(s) for s in LONG_SENTENCES)
    assert call.agent_audio_ms == full  # every frame played: nothing dropped, nothing repeated
    assert len(spans(call)) == 2  # one gap: the pause
    assert not events(runner, "interrupted")
    [agent] = said(runner, "agent")
    assert not agent.interrupted and agent.heard == LONG
    assert assistant_texts(runner.conversation.messages) == [LONG]
    assert len(responder.turns) == 1  # the cough was not a turn
    await finish(call, task)


async def test_a_backchannel_resumes_the_agent_and_is_not_answered() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["tell me your hours", "mhm"])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder([LONG])
    runner = runner_for(call, responder, stt, tts)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    await call.silence(300)
    await barge_in(call, 300)
    await call.until(lambda: bool(events(runner, "resumed")), 1500)
    await until_quiet(call)
    assert events(runner, "resumed")[0].meta["why"] == "backchannel"
    assert call.agent_audio_ms == sum(tts.duration_ms(s) for s in LONG_SENTENCES)
    assert len(responder.turns) == 1 and tts.texts == LONG_SENTENCES
    caller = said(runner, "caller")
    assert [(e.text, e.meta) for e in caller] == [("tell me your hours", {}), ("mhm", {"backchannel": True})]
    assert not said(runner, "agent")[0].interrupted
    assert runner.conversation.messages == [
        ChatMessage.user("tell me your hours"),
        ChatMessage.assistant(LONG),
    ]
    await finish(call, task)


@pytest.mark.parametrize(
    "policy",
    [BargeInOptions(enabled=False), BargeInOptions(allow_interrupt_greeting=False)],
    ids=["barge-in off", "greeting not interruptible"],
)
async def test_an_uninterruptible_greeting_plays_to_the_end_then_the_caller_is_answered(
    policy: BargeInOptions,
) -> None:
    call = SimulatedCall()
    greeting = "Welcome to the demo line. Calls are recorded for quality and training purposes."
    tts = ScriptedTTS(ms_per_char=25)  # a 2 s greeting
    responder = ScriptResponder(["You want a callback, sure."], greeting=greeting)
    runner = runner_for(call, responder, ScriptedSTT(["I want a callback"]), tts, barge_in=policy)
    task = await start(runner)
    await call.step()
    await call.silence(100)
    await speak(call, 500)  # talks over the greeting; the turn ends well before it does
    await call.silence(ENDPOINT_MS + 100)
    assert call.agent_talking() and not responder.turns
    await until_quiet(call, 4000)

    greeting_ms = sum(tts.duration_ms(t) for t in tts.texts[:2])
    reply_ms = tts.duration_ms("You want a callback, sure.")
    assert tts.texts[2:] == ["You want a callback, sure."]
    # All of the greeting, and the answer right after its last frame (one stretch of audio).
    assert spans(call) == [(0, greeting_ms + reply_ms)]
    assert greeting_ms - FRAME <= responder.turn_times[0] <= greeting_ms
    assert [t.text for t in responder.turns] == ["I want a callback"]
    assert not events(runner, "paused") and not events(runner, "interrupted")
    assert [e.interrupted for e in said(runner, "agent")] == [False, False]
    await finish(call, task)


async def test_the_greeting_is_interruptible_by_default() -> None:
    call = SimulatedCall()
    greeting = "Welcome to the demo line. Calls are recorded for quality and training purposes."
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder(["Sure."], greeting=greeting)
    runner = runner_for(call, responder, ScriptedSTT(["operator please"]), tts)
    task = await start(runner)
    await call.step()
    await call.silence(100)
    stopped, _ = await barge_in(call, 400)
    assert stopped is not None and stopped <= 250
    heard_ms = audio_frames_since(call, 0) * FRAME  # paused: no more audio until the commit
    await call.until(lambda: bool(responder.turns), 1500)
    [greeted] = [e for e in said(runner, "agent") if e.text == greeting]
    assert greeted.interrupted and greeted.heard == heard_words(tts.texts[:2], tts, heard_ms)
    assert greeted.heard.startswith("Welcome to the")
    await finish(call, task)


async def test_without_a_false_interruption_timeout_the_agent_is_interrupted_at_once() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["tell me your hours", ""])  # the interruption yields no words...
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder([LONG])
    policy = BargeInOptions(false_interruption_timeout_ms=None)
    runner = runner_for(call, responder, stt, tts, barge_in=policy)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    reply_start = call.sent[-1][0]
    await call.silence(600)
    stopped, _ = await barge_in(call, 220)
    assert stopped is not None and stopped <= 250
    assert not events(runner, "paused")
    [interrupted] = events(runner, "interrupted")  # committed before any transcript
    assert interrupted.meta["why"] == "caller spoke" and call.output.queued_ms == 0
    assert len(stt.heard) == 1
    heard_ms = audio_frames_since(call, reply_start) * FRAME
    await call.silence(2000)  # ...and still the agent does not go on
    assert audio_frames_since(call, reply_start) * FRAME == heard_ms
    assert len(stt.heard) == 2 and len(responder.turns) == 1
    [agent] = said(runner, "agent")
    assert agent.interrupted and agent.heard == heard_words(LONG_SENTENCES, tts, heard_ms)
    assert assistant_texts(runner.conversation.messages) == [agent.heard]
    await finish(call, task)


async def test_a_caller_who_keeps_talking_past_the_timeout_takes_the_turn() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["tell me your hours", "wait wait I need to change my booking"])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder([LONG, "Of course."])
    policy = BargeInOptions(false_interruption_timeout_ms=300)
    runner = runner_for(call, responder, stt, tts, barge_in=policy)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    await call.silence(300)
    onset = call.now_ms
    committed_at = None
    pcm = tone(1500)
    n = call.format.frame_bytes(FRAME)
    for i in range(0, len(pcm), n):
        await call.step(pcm[i : i + n])
        if committed_at is None and events(runner, "interrupted"):
            committed_at = call.now_ms - onset
    assert committed_at is not None
    paused_at = 160  # 150 ms of speech in whole windows, give or take the onset window
    # Committed while the caller was still talking, once the pause had lasted the timeout.
    assert paused_at + 300 - WINDOW <= committed_at <= paused_at + 300 + WINDOW + FRAME
    assert events(runner, "interrupted")[0].meta["why"] == "caller kept talking"
    assert call.output.queued_ms == 0 and len(stt.heard) == 1  # before any transcript
    await call.until(lambda: len(responder.turns) == 2, 1500)
    assert responder.turns[1].text == "wait wait I need to change my booking"
    assert said(runner, "agent")[0].interrupted
    await finish(call, task)


# --- keys ------------------------------------------------------------------------------------


async def test_keys_are_delivered_after_the_timeout_or_at_the_terminator() -> None:
    call = SimulatedCall()
    responder = ScriptResponder(["Got it.", "Thanks."])
    runner = runner_for(call, responder, ScriptedSTT(), dtmf_timeout_ms=300)
    task = await start(runner)
    await call.silence(100)
    await call.press("12")
    last_key = call.now_ms - FRAME  # the start of the frame the key came with
    await call.until(lambda: bool(responder.turns), 1000)
    assert responder.turns[0] == UserInput(dtmf="12")
    delivered = responder.turn_times[0] + FRAME  # the end of the frame that delivered them
    assert 300 <= delivered - last_key < 300 + FRAME  # 300 ms of audio time after the last key
    await until_quiet(call)

    await call.press("34#")
    at_hash = call.now_ms - FRAME
    await call.until(lambda: len(responder.turns) == 2, 200)
    assert responder.turns[1] == UserInput(dtmf="34#")
    assert responder.turn_times[1] - at_hash <= FRAME  # at once
    keys = [(e.text, e.meta) for e in said(runner, "caller")]
    assert keys == [("[keys 12]", {"dtmf": "12"}), ("[keys 34#]", {"dtmf": "34#"})]
    assert runner.conversation.messages[0] == ChatMessage.user("[pressed keys: 12]")
    await finish(call, task)


async def test_a_key_press_interrupts_the_agent_at_once() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder([LONG, "Connecting you to sales."])
    runner = runner_for(call, responder, ScriptedSTT(["menu"]), tts, dtmf_timeout_ms=200)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    reply_start = call.sent[-1][0]
    await call.silence(500)
    await call.press("2")
    assert not call.agent_talking()  # the frame of the same tick is already silence
    heard_ms = audio_frames_since(call, reply_start) * FRAME
    [interrupted] = events(runner, "interrupted")
    assert interrupted.meta["why"] == "caller pressed a key" and interrupted.meta["heard_ms"] == heard_ms
    await call.until(lambda: len(responder.turns) == 2, 500)
    assert responder.turns[1] == UserInput(dtmf="2")
    assert said(runner, "agent")[0].heard == heard_words(LONG_SENTENCES, tts, heard_ms)
    assert assistant_texts(runner.conversation.messages)[0] == heard_words(LONG_SENTENCES, tts, heard_ms)
    await until_talking(call, 500)
    await until_quiet(call)
    assert tts.texts[-1] == "Connecting you to sales."
    await finish(call, task)


# --- actions ---------------------------------------------------------------------------------


async def run_until_hangup(call: SimulatedCall, within_ms: float = 5000) -> list[tuple[float, bool]]:
    """Step until the agent hangs up; returns the frames sent up to then."""
    await call.until(lambda: call.hung_up is not None, within_ms)
    return list(call.sent)


async def test_end_call_tool_hangs_up_only_after_the_goodbye_has_played() -> None:
    call = SimulatedCall()
    goodbye = "Thanks for calling, goodbye."
    llm = ScriptedLLM(
        [Reply(goodbye, tool_calls=[ToolCallEvent("call-1", "end_call", {"reason": "caller done"})])]
    )
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, LLMResponder(llm), ScriptedSTT(["that's all, bye"]), tts)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    talk_start = call.sent[-1][0]
    sent = await run_until_hangup(call)
    last_audio = max(t for t, audio in sent if audio)
    assert call.hung_up == "caller done"
    assert tts.texts == [goodbye]
    assert audio_frames_since(call, talk_start) * FRAME == tts.duration_ms(goodbye)
    assert sent[-1][0] >= last_audio  # hung up after (never before) the last frame went out
    assert call.output.queued_ms == 0
    await asyncio.wait_for(task, 2)  # the runner ends with the call
    assert runner.record.end_reason == "caller done"
    assert events(runner, "end_call")[0].meta == {"reason": "caller done"}
    assert len(llm.calls) == 1  # an end_call is not followed by another LLM round


async def test_hangup_waits_for_the_goodbye_in_real_time_too() -> None:
    """With the default hangup delay the agent waits a little after its last frame."""
    call = SimulatedCall()
    responder = ScriptResponder([["Goodbye now.", EndCall("done")]])
    runner = runner_for(call, responder, ScriptedSTT(["bye"]), hangup_delay_ms=50)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert call.hung_up is None  # the 50 ms delay is wall-clock time: not over yet
    await asyncio.sleep(0.08)
    await call.step()
    assert call.hung_up == "done"
    await asyncio.wait_for(task, 2)


async def test_end_call_marker_is_not_spoken_and_hangs_up() -> None:
    call = SimulatedCall()
    llm = ScriptedLLM(["Alright, have a lovely day. [END_CALL]"])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, LLMResponder(llm), ScriptedSTT(["no that's everything"]), tts)
    task = await start(runner)
    await speak(call, 400)
    await run_until_hangup(call)
    assert tts.texts == ["Alright, have a lovely day."]
    assert call.agent_audio_ms == tts.duration_ms("Alright, have a lovely day.")
    assert call.hung_up == "agent ended the call"
    assert assistant_texts(runner.conversation.messages) == ["Alright, have a lovely day. "]
    await asyncio.wait_for(task, 2)


async def test_transfer_without_a_transfer_method_hangs_up_naming_the_target() -> None:
    call = SimulatedCall()
    responder = ScriptResponder([["Putting you through to sales.", Transfer("sales-queue")]])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, responder, ScriptedSTT(["sales please"]), tts)
    task = await start(runner)
    await speak(call, 400)
    await run_until_hangup(call)
    assert call.hung_up is not None and "sales-queue" in call.hung_up
    assert call.agent_audio_ms == tts.duration_ms("Putting you through to sales.")
    assert runner.record.end_reason == "transferred to sales-queue"
    assert events(runner, "transfer")[0].meta == {"target": "sales-queue"}
    await asyncio.wait_for(task, 2)


class TransferringCall(SimulatedCall):
    """A transport that can redirect the caller itself (e.g. ARI)."""

    async def transfer(self, target: str) -> None:
        self.transfers.append(target)
        self.agent_ms_at_transfer = self.agent_audio_ms


async def test_a_call_with_a_transfer_method_is_transferred_by_it() -> None:
    call = TransferringCall()
    llm = ScriptedLLM(
        [
            Reply(
                "One moment, I'll connect you.",
                tool_calls=[ToolCallEvent("t1", "transfer_call", {"target": "1000"})],
            )
        ]
    )
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, LLMResponder(llm), ScriptedSTT(["a person please"]), tts)
    task = await start(runner)
    await speak(call, 400)
    await call.until(lambda: bool(call.transfers), 3000)
    assert call.transfers == ["1000"]
    assert call.agent_ms_at_transfer == tts.duration_ms("One moment, I'll connect you.")  # after the words
    assert call.hung_up is None  # the transport moved the caller; the runner did not hang up
    assert runner.record.end_reason == "transferred to 1000"
    await finish(call, task)
    assert runner.record.end_reason == "transferred to 1000"


def band_energy(pcm: bytes, rate: int, hz: float, width: float = 20.0) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[(freqs > hz - width) & (freqs < hz + width)].sum())


async def test_send_dtmf_plays_in_band_tones_when_the_call_cannot_send_keys() -> None:
    call = SimulatedCall()
    llm = ScriptedLLM(
        [Reply("", tool_calls=[ToolCallEvent("d1", "send_dtmf", {"digits": "9"})]), Reply("Done.")]
    )
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR, tone_hz=440.0)
    runner = runner_for(call, LLMResponder(llm), ScriptedSTT(["press nine for me"]), tts)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert events(runner, "send_dtmf")[0].meta == {"digits": "9"}
    assert tts.texts == ["Done."]
    # The tone (100 ms) and its gap (100 ms) come first, then the 440 Hz words.
    tone_pcm = bytes(call.agent_audio[: call.format.frame_bytes(100)])
    total = band_energy(tone_pcm, 8000, 4000, width=4000)
    for hz in (852.0, 1477.0):  # Q.23: key 9 is row 852 Hz + column 1477 Hz
        assert band_energy(tone_pcm, 8000, hz) > 0.3 * total, hz
    for hz in (697.0, 770.0, 941.0, 1209.0, 1336.0, 1633.0, 440.0):
        assert band_energy(tone_pcm, 8000, hz) < 0.01 * total, hz
    assert call.agent_audio_ms == 200 + tts.duration_ms("Done.")
    # The tool result went back to the LLM, which then spoke.
    assert llm.calls[1][-1] == ChatMessage.tool_result("d1", "done")
    await finish(call, task)


class KeySendingCall(SimulatedCall):
    """A transport that sends keys out of band (RFC 4733 / SIP INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_sent: list[str] = []

    async def send_dtmf(self, digits: str) -> None:
        self.keys_sent.append(digits)


async def test_send_dtmf_uses_the_call_s_own_send_dtmf_when_it_has_one() -> None:
    call = KeySendingCall()
    responder = ScriptResponder([["Pressing one.", SendDtmf("1"), " Now waiting."]])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, responder, ScriptedSTT(["press one"]), tts)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert call.keys_sent == ["1"]
    assert call.agent_audio_ms == sum(tts.duration_ms(t) for t in tts.texts)  # no tones in the audio
    assert tts.texts == ["Pressing one.", "Now waiting."]
    await finish(call, task)


async def test_what_was_heard_after_in_band_tones_accounts_for_the_tones() -> None:
    call = SimulatedCall()
    first, second = "Pressing nine now.", "Please hold while I connect you to the billing department today."
    responder = ScriptResponder([[first, SendDtmf("9"), " " + second], "Okay."])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, responder, ScriptedSTT(["pay my bill", "hang on"]), tts)
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    reply_start = call.sent[-1][0]
    # Cut in about a quarter of the way into the second sentence.
    await call.silence(tts.duration_ms(first) + 200 + 100)
    await barge_in(call, 400)
    heard_ms = audio_frames_since(call, reply_start) * FRAME
    await call.until(lambda: bool(events(runner, "interrupted")), 1500)
    heard_of_second = heard_ms - tts.duration_ms(first) - 200  # the tone and its gap are no words
    words = second.split()
    expected = " ".join([first, *words[: int(len(words) * heard_of_second / tts.duration_ms(second))]])
    assert said(runner, "agent")[0].heard == expected
    await finish(call, task)


# --- silence and time limits -----------------------------------------------------------------


async def test_silence_gets_a_reprompt_then_a_goodbye_and_a_hangup() -> None:
    call = SimulatedCall()
    greeting = "Hello, how can I help?"
    responder = ScriptResponder(["Are you still there?"], greeting=greeting)
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(
        call,
        responder,
        ScriptedSTT(),
        tts,
        silence_reprompt_ms=1000,
        max_reprompts=1,
        silence_goodbye="I will hang up now, goodbye.",
    )
    task = await start(runner)
    await call.step()
    await until_talking(call, 100)
    await until_quiet(call)
    greeting_end = call.now_ms - FRAME  # the end of the last greeting frame
    await call.until(lambda: bool(responder.turns), 1500)
    assert responder.turns == [UserInput(silence_ms=1000)]
    assert 1000 <= responder.turn_times[0] + FRAME - greeting_end < 1000 + 2 * FRAME
    assert runner.conversation.messages[1] == ChatMessage.user("[caller silent for 1 s]")
    await until_talking(call, 100)
    await until_quiet(call)
    reprompt_end = call.now_ms - FRAME
    await run_until_hangup(call, 2000)
    (_, _), (_, _), (bye_start, bye_end) = spans(call)
    assert 1000 <= bye_start - reprompt_end < 1000 + 3 * FRAME
    assert bye_end - bye_start == tts.duration_ms("I will hang up now, goodbye.")
    assert call.hung_up == "caller silent" and tts.texts[-1] == "I will hang up now, goodbye."
    assert len(responder.turns) == 1  # the goodbye is the runner's own, not a turn
    await asyncio.wait_for(task, 2)
    assert runner.record.end_reason == "caller silent"


async def test_a_caller_who_speaks_resets_the_reprompt_count() -> None:
    call = SimulatedCall()
    responder = ScriptResponder(["Still there?", "Go on.", "Still there?"], greeting="Hi there, go ahead.")
    runner = runner_for(
        call, responder, ScriptedSTT(["hmm let me think"]), silence_reprompt_ms=1000, max_reprompts=1
    )
    task = await start(runner)
    await call.step()
    await call.until(lambda: len(responder.turns) == 1, 3000)  # re-prompt 1 (the maximum)
    await until_talking(call, 100)
    await until_quiet(call)
    await speak(call, 400)
    await call.until(lambda: len(responder.turns) == 2, 1500)
    await until_talking(call, 100)
    await until_quiet(call)
    await call.until(lambda: len(responder.turns) == 3, 1500)  # a re-prompt again, not the hangup
    assert responder.turns[2] == UserInput(silence_ms=1000)
    assert call.hung_up is None
    await finish(call, task)


async def test_max_call_time_says_goodbye_and_hangs_up() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(
        call, ScriptResponder(), ScriptedSTT(), tts, max_call_s=10, max_call_goodbye="Time's up."
    )
    task = await start(runner)
    await call.silence(9_900)
    assert call.agent_audio_ms == 0
    await run_until_hangup(call, 1000)
    assert tts.texts == ["Time's up."] and call.hung_up == "max call duration"
    assert spans(call)[0][0] == 10_000 - FRAME or spans(call)[0][0] == 10_000
    await asyncio.wait_for(task, 2)
    assert runner.record.end_reason == "max call duration"


# --- failures --------------------------------------------------------------------------------


async def test_speech_recognition_failure_is_met_with_an_apology() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder()
    runner = runner_for(call, responder, ScriptedSTT(broken=True), tts, error_message="Sorry, say again?")
    task = await start(runner)
    await speak(call, 600)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert tts.texts == ["Sorry, say again?"] and responder.turns == []
    assert events(runner, "stt_failed")
    assert not said(runner, "caller")
    await finish(call, task)


async def test_a_failed_transcript_of_a_click_is_not_apologised_for() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    runner = runner_for(call, ScriptResponder(), ScriptedSTT(broken=True), tts)
    task = await start(runner)
    await speak(call, 160)  # long enough to be a turn, too short to be words
    await call.silence(1500)
    assert events(runner, "stt_failed") and tts.texts == []
    await finish(call, task)


FLOW = FlowConfig.model_validate(
    {
        "intents": {
            "hours": {
                "examples": ["what are your opening hours", "when are you open"],
                "say": "We're open nine to five.",
            }
        },
        "anything_else": None,
    }
)


async def test_llm_failure_with_a_flow_fallback_is_answered_by_the_flow() -> None:
    call = SimulatedCall()
    llm = ScriptedLLM(["never used"], broken=True)
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = LLMResponder(llm, fallback=FlowResponder(FLOW))
    runner = runner_for(call, responder, ScriptedSTT(["what are your opening hours"]), tts)
    task = await start(runner)
    await speak(call, 600)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert llm.attempts == 1 and llm.active == 0
    assert tts.texts == ["We're open nine to five."]
    assert [(e.role, e.text) for e in runner.record.entries if e.role != "event"] == [
        ("caller", "what are your opening hours"),
        ("agent", "We're open nine to five."),
    ]
    await finish(call, task)


async def test_llm_failure_without_a_fallback_speaks_the_error_message() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = LLMResponder(ScriptedLLM(broken=True))
    runner = runner_for(call, responder, ScriptedSTT(["hello"]), tts, error_message="Sorry, one moment.")
    task = await start(runner)
    await speak(call, 600)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert tts.texts == ["Sorry, one moment."]
    assert events(runner, "reply_failed")
    await finish(call, task)


class FailingMidway:
    """An LLM that writes `text` word by word and then fails."""

    name = "failing"

    def __init__(self, text: str) -> None:
        self.text = text

    async def chat(self, messages: list[ChatMessage], tools: Sequence[Any] = ()) -> AsyncIterator[LLMEvent]:
        for word in self.text.split(" "):
            yield TextDelta(word + " ")
        raise ProviderError(self.name, "connection lost", retryable=False)
        yield LLMDone()  # pragma: no cover


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # the words after the last full sentence are still spoken
        (
            "Let me check that for you. The next free slot is",
            ["Let me check that for you.", "The next free slot is"],
        ),
        # a sentence queued but not yet spoken when the LLM failed still counts as said
        ("Let me check that for you.", ["Let me check that for you."]),
    ],
)
async def test_an_llm_failing_after_some_words_speaks_them_and_no_apology(
    text: str, spoken: list[str]
) -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = LLMResponder(FailingMidway(text))
    runner = runner_for(call, responder, ScriptedSTT(["any free slots"]), tts, error_message="Sorry!")
    task = await start(runner)
    await speak(call, 600)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert tts.texts == spoken
    assert events(runner, "reply_failed")
    await finish(call, task)


async def test_what_the_caller_says_while_hanging_up_is_transcribed_and_recorded() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["and cancel my order"])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder()
    runner = runner_for(call, responder, stt, tts)
    task = await start(runner)
    await call.silence(100)
    await speak(call, 600)  # no endpointing silence: the caller is gone mid-turn
    await finish(call, task)
    assert len(stt.heard) == 1 and stt.active == 0
    assert [e.text for e in said(runner, "caller")] == ["and cancel my order"]
    assert responder.turns == [] and tts.texts == []  # recorded, not answered
    assert runner.record.end_reason == "caller hung up" and runner.record.ended_at is not None


async def test_speech_not_understood_while_the_agent_talks_stops_it_for_the_apology() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["tell me your hours"])
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = ScriptResponder([LONG])
    runner = runner_for(call, responder, stt, tts, error_message="Sorry, say again?")
    task = await start(runner)
    await speak(call, 400)
    await until_talking(call, 1500)
    reply_start = call.sent[-1][0]
    await call.silence(300)
    stt.broken = True
    await barge_in(call, 600)
    heard_ms = audio_frames_since(call, reply_start) * FRAME
    await until_talking(call, 1500)
    await until_quiet(call)
    # The caller said something (not understood): the rest of the reply is dropped, not played
    # before the apology, and the record and context say what was heard.
    assert audio_frames_since(call, reply_start) * FRAME == heard_ms + tts.duration_ms("Sorry, say again?")
    first = said(runner, "agent")[0]
    assert first.interrupted and first.heard == heard_words(LONG_SENTENCES, tts, heard_ms)
    assert assistant_texts(runner.conversation.messages) == [first.heard, "Sorry, say again?"]
    await finish(call, task)


async def test_hanging_up_while_a_turn_waits_for_the_greeting_ends_the_call_promptly() -> None:
    call = SimulatedCall()
    greeting = "Welcome to the demo line. Calls are recorded for quality and training purposes."
    responder = ScriptResponder(["Sure."], greeting=greeting)
    runner = runner_for(
        call,
        responder,
        ScriptedSTT(["I want a callback"]),
        ScriptedTTS(ms_per_char=25),
        barge_in=BargeInOptions(allow_interrupt_greeting=False),
    )
    task = await start(runner)
    await call.step()
    await speak(call, 400)
    await call.silence(600)  # the turn is in, waiting for the greeting to finish
    assert call.agent_talking() and [e.text for e in said(runner, "caller")] == ["I want a callback"]
    await finish(call, task, within=1.0)  # not the 10 s STT timeout
    assert responder.turns == []  # no reply is started for a caller who left


async def test_cancelling_the_runner_during_its_clean_up_is_not_swallowed() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["one last thing"], delay=30.0)  # a transcript that takes its time
    runner = runner_for(call, ScriptResponder(), stt)
    task = await start(runner)
    await speak(call, 600)
    call.end()  # mid-turn: the clean-up waits for that transcript
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done() and stt.active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert stt.active == 0  # and the STT stream was closed on the way out
    assert runner.record.ended_at is not None


class BrokenResponder(ScriptResponder):
    """A responder with a bug: it raises something other than a ProviderError."""

    async def respond(self, turn: UserInput, conversation: Conversation) -> AsyncIterator[ResponseItem]:
        self.turns.append(turn)
        raise KeyError("slot")
        yield ""  # pragma: no cover


async def test_a_responder_bug_is_met_with_the_error_message_not_silence() -> None:
    call = SimulatedCall()
    tts = ScriptedTTS(ms_per_char=MS_PER_CHAR)
    responder = BrokenResponder()
    runner = runner_for(call, responder, ScriptedSTT(["hello", "hello again"]), tts, error_message="Sorry!")
    task = await start(runner)
    await speak(call, 600)
    await until_talking(call, 1500)
    await until_quiet(call)
    assert tts.texts == ["Sorry!"] and events(runner, "reply_failed")
    await speak(call, 600)  # and the call goes on
    await until_talking(call, 1500)
    assert len(responder.turns) == 2
    await finish(call, task)


async def test_an_early_transcript_is_used_for_what_the_caller_said_as_they_hung_up() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["and cancel my order"], delay=0.05)  # real-time: still running at the hangup
    runner = runner_for(call, ScriptResponder(), stt, early_stt_ms=200)
    task = await start(runner)
    await speak(call, 600)
    await call.silence(300)  # silent long enough for the early transcription to start
    assert stt.active == 1
    await finish(call, task)
    assert [e.text for e in said(runner, "caller")] == ["and cancel my order"]
    assert not events(runner, "stt_failed")
    assert stt.active == 0 and len(stt.heard) == 1  # transcribed once, nothing left running


async def test_a_transcript_started_early_is_used_at_the_endpoint() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["what are your hours"])
    responder = ScriptResponder(["Nine to five."])
    runner = runner_for(call, responder, stt, early_stt_ms=200)
    task = await start(runner)
    await speak(call, 600)
    await call.silence(300)
    assert len(stt.heard) == 1 and not responder.turns  # transcribed, but the turn is not over yet
    await until_talking(call, 500)
    assert responder.turns == [UserInput("what are your hours")] and len(stt.heard) == 1
    await until_quiet(call)
    [timing] = runner.record.timings
    assert timing.early_stt and timing.endpointing_ms == ENDPOINT_MS
    await finish(call, task)


async def test_an_early_transcript_is_dropped_when_the_caller_talks_on() -> None:
    call = SimulatedCall()
    stt = ScriptedSTT(["I would like", "I would like to book a table"])
    responder = ScriptResponder(["For how many?"])
    runner = runner_for(call, responder, stt, early_stt_ms=200)
    task = await start(runner)
    await speak(call, 500)
    await call.silence(300)  # a pause shorter than the endpoint: transcribed early...
    await speak(call, 500)  # ...but the caller goes on
    await until_talking(call, 1000)
    assert responder.turns == [UserInput("I would like to book a table")]
    assert len(stt.heard[1]) > len(stt.heard[0])  # the second transcription had all of it
    await finish(call, task)
