"""Fallback wrappers: move on before the first item, cool-down skips then retries, all causes named."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from voxgate.audio.format import SLIN8, SLIN16, AudioFrame
from voxgate.providers import (
    ChatMessage,
    ConnectOptions,
    FallbackError,
    FallbackLLM,
    FallbackSTT,
    FallbackTTS,
    ProviderError,
    ProviderTimeout,
    TextDelta,
)
from voxgate.providers.base import SpeechEvent
from voxgate.testing.fakes import ScriptedLLM, ScriptedSTT, ScriptedTTS

NO_RETRY = ConnectOptions(max_retries=0, first_item_timeout=1.0, idle_timeout=1.0)
HELLO = [ChatMessage.user("hello")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def reply_text(llm: FallbackLLM) -> str:
    return "".join([e.text async for e in llm.chat(HELLO) if isinstance(e, TextDelta)])


async def test_moves_to_the_next_provider_and_logs_who_served(caplog: pytest.LogCaptureFixture) -> None:
    a = ScriptedLLM(["from a"], name="a", broken=True)
    b = ScriptedLLM(["from b"], name="b")
    llm = FallbackLLM([a, b], options=NO_RETRY)
    with caplog.at_level(logging.INFO, logger="voxgate.providers"):
        assert await reply_text(llm) == "from b"
    assert a.attempts == 1
    served = [
        r for r in caplog.records if getattr(r, "provider_kind", None) == "llm" and "served" in r.message
    ]
    assert [(r.provider, r.fallback_position) for r in served] == [("b", 1)]  # type: ignore[attr-defined]
    assert a.active == b.active == 0


async def test_cooldown_skips_a_failed_provider_then_tries_it_again() -> None:
    clock = Clock()
    a = ScriptedLLM(["a1", "a2"], name="a", broken=True)
    b = ScriptedLLM(["b1", "b2", "b3"], name="b")
    llm = FallbackLLM([a, b], options=NO_RETRY, cooldown=10.0, clock=clock)

    assert await reply_text(llm) == "b1"
    assert a.attempts == 1
    a.broken = False  # it recovers, but we do not know yet
    clock.now += 9.0
    assert await reply_text(llm) == "b2"
    assert a.attempts == 1  # skipped while cooling down
    clock.now += 1.5
    assert await reply_text(llm) == "a1"  # cool-down over: back to the first choice
    assert a.attempts == 2


async def test_providers_cooling_down_are_still_tried_last() -> None:
    clock = Clock()
    a = ScriptedLLM(["a1"], name="a", fail_times=1)
    b = ScriptedLLM(["b1"], name="b", broken=True)
    llm = FallbackLLM([a, b], options=NO_RETRY, cooldown=60.0, clock=clock)
    with pytest.raises(FallbackError):
        await reply_text(llm)
    # Both are cooling down; rather than failing without trying, try them in order.
    assert await reply_text(llm) == "a1"


async def test_error_names_every_cause() -> None:
    a = ScriptedLLM(["x"], name="alpha", broken=True)
    b = ScriptedLLM(["y"], name="beta", first_token_delay=5.0)
    llm = FallbackLLM([a, b], options=ConnectOptions(max_retries=0, first_item_timeout=0.05))
    with pytest.raises(FallbackError) as info:
        await reply_text(llm)
    err = info.value
    assert isinstance(err, ProviderError)
    assert [c.provider for c in err.causes] == ["alpha", "beta"]
    assert isinstance(err.causes[1], ProviderTimeout)
    assert "[alpha] scripted failure" in str(err)
    assert "[beta] no first item within 0.05 s" in str(err)
    assert a.active == b.active == 0  # the slow one was closed, not left running


async def test_a_provider_that_times_out_hands_over_quickly() -> None:
    a = ScriptedLLM(["slow"], name="a", first_token_delay=5.0)
    b = ScriptedLLM(["fast"], name="b")
    llm = FallbackLLM([a, b], options=ConnectOptions(max_retries=0, first_item_timeout=0.1))
    start = time.monotonic()
    assert await reply_text(llm) == "fast"
    assert time.monotonic() - start < 0.25
    assert a.active == 0


async def test_failure_after_the_first_item_is_raised_and_cools_the_provider_down() -> None:
    a = ScriptedLLM(["one two three", "again"], name="a", stall_after=1)
    b = ScriptedLLM(["from b"], name="b")
    llm = FallbackLLM([a, b], options=ConnectOptions(max_retries=0, idle_timeout=0.1))
    got: list[str] = []
    with pytest.raises(ProviderTimeout):
        async for event in llm.chat(HELLO):
            if isinstance(event, TextDelta):
                got.append(event.text)
    assert got == ["one"]  # not replayed on b: the caller already heard "one"
    assert b.attempts == 0
    assert await reply_text(llm) == "from b"  # a is cooling down now
    assert a.active == 0


async def test_fallback_tts_converts_to_the_first_providers_format() -> None:
    a = ScriptedTTS(name="a", output_format=SLIN8, broken=True)
    b = ScriptedTTS(name="b", output_format=SLIN16)
    tts = FallbackTTS([a, b], options=NO_RETRY)
    assert tts.output_format == SLIN8
    frames = [f async for f in tts.synthesize("hello there")]
    assert {f.format for f in frames} == {SLIN8}
    total_ms = sum(f.duration_ms for f in frames)
    assert abs(total_ms - b.duration_ms("hello there")) <= 1.0
    assert b.texts == ["hello there"]


async def test_fallback_stt_replays_the_utterance_to_the_next_provider() -> None:
    a = ScriptedSTT(["from a"], name="a", broken=True)
    b = ScriptedSTT(["from b"], name="b", input_format=SLIN16)
    stt = FallbackSTT([a, b], options=NO_RETRY)
    stream = stt.stream()
    for _ in range(10):
        stream.push_audio(AudioFrame(bytes(320), SLIN8))  # 200 ms
    stream.end_input()
    events = [e async for e in stream]
    await stream.aclose()
    assert [(e.kind, e.text) for e in events] == [("final", "from b")]
    assert abs(len(b.heard[0]) - 2 * 3200) <= 4  # the whole 200 ms, at 16 kHz
    assert a.active == b.active == 0
    with pytest.raises(ValueError, match="pcm16@8000"):
        stt.stream().push_audio(AudioFrame(bytes(640), SLIN16))


class _QuietUntilEnd:
    """A streaming STT that says nothing while the caller talks, and its final after end_input."""

    name = "quiet"
    input_format = SLIN16

    def __init__(self, answer_after_end: bool = True) -> None:
        self.answer_after_end = answer_after_end

    def stream(self) -> object:
        outer = self

        class Stream:
            def __init__(self) -> None:
                self.ended = asyncio.Event()

            def push_audio(self, frame: object) -> None:
                pass

            def end_input(self) -> None:
                self.ended.set()

            async def __aiter__(self):  # type: ignore[no-untyped-def]
                await self.ended.wait()
                if outer.answer_after_end:
                    yield SpeechEvent("final", "hello there", is_endpoint=True)
                else:
                    await asyncio.sleep(3600)

            async def aclose(self) -> None:
                pass

        return Stream()


async def test_stt_timeouts_start_at_the_end_of_the_turn_not_while_the_caller_talks() -> None:
    options = ConnectOptions(max_retries=0, first_item_timeout=0.1, idle_timeout=0.1)
    stream = FallbackSTT([_QuietUntilEnd()], options=options).stream()
    events = aiter(stream)
    first = asyncio.ensure_future(anext(events))
    for _ in range(15):  # 0.3 s of talking: three times the first-item timeout
        stream.push_audio(AudioFrame(bytes(640), SLIN16))
        await asyncio.sleep(0.02)
    assert not first.done()
    stream.end_input()
    assert (await asyncio.wait_for(first, 1.0)).text == "hello there"
    await stream.aclose()

    silent = FallbackSTT([_QuietUntilEnd(answer_after_end=False)], options=options).stream()
    waiting = asyncio.ensure_future(anext(aiter(silent)))
    await asyncio.sleep(0.25)
    assert not waiting.done()  # no clock while the caller talks
    silent.end_input()
    with pytest.raises((ProviderTimeout, FallbackError)):
        await asyncio.wait_for(waiting, 1.0)  # …but it runs from the end of the turn
    await silent.aclose()
