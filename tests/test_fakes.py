"""The scripted fakes users test their agents with: honest timing, real audio, failure switches."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from voxgate.audio.convert import convert_all
from voxgate.audio.format import SLIN8, SLIN16, ULAW8, AudioFrame
from voxgate.providers import LLMDone, ProviderError, TextDelta, ToolCallEvent
from voxgate.providers.base import ChatMessage
from voxgate.testing import Reply, ScriptedLLM, ScriptedSTT, ScriptedTTS, ScriptedVAD

MARGIN = 0.08


async def test_llm_streams_tokens_on_its_timeline() -> None:
    llm = ScriptedLLM(["Hello there, caller."], first_token_delay=0.05, token_delay=0.02)
    start = time.monotonic()
    stamps: list[float] = []
    events = []
    async for event in llm.chat([ChatMessage.user("hi")]):
        stamps.append(time.monotonic() - start)
        events.append(event)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " there,", " caller."]
    assert isinstance(events[-1], LLMDone) and events[-1].usage is not None
    assert 0.05 <= stamps[0] < 0.05 + MARGIN
    assert 0.09 <= stamps[2] < 0.09 + MARGIN
    assert llm.calls == [[ChatMessage.user("hi")]]


async def test_llm_tool_calls_and_exhausted_script() -> None:
    call = ToolCallEvent("c1", "end_call", {"reason": "done"})
    llm = ScriptedLLM([Reply("Bye.", tool_calls=[call])])
    events = [e async for e in llm.chat([])]
    assert events[:2] == [TextDelta("Bye."), call]
    with pytest.raises(ProviderError, match="no reply #2 \\(the script has 1\\)") as info:
        [e async for e in llm.chat([])]
    assert not info.value.retryable


async def test_llm_fails_then_recovers_and_stalls_until_cancelled() -> None:
    llm = ScriptedLLM(["a b c", "d e f"], fail_times=1, stall_after=2)
    with pytest.raises(ProviderError, match="scripted failure"):
        [e async for e in llm.chat([])]
    got: list[str] = []

    async def read() -> None:
        async for e in llm.chat([]):
            if isinstance(e, TextDelta):
                got.append(e.text)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), 0.1)
    assert got == ["a", " b"]
    assert llm.active == 0 and llm.attempts == 2


async def test_tts_makes_real_audio_proportional_to_text_in_its_format() -> None:
    tts = ScriptedTTS(output_format=ULAW8, ms_per_char=50, first_audio_delay=0.05)
    start = time.monotonic()
    frames: list[AudioFrame] = []
    async for frame in tts.synthesize("Hello"):
        if not frames:
            first = time.monotonic() - start
        frames.append(frame)
    assert 0.05 <= first < 0.05 + MARGIN
    assert {f.format for f in frames} == {ULAW8}
    assert [f.duration_ms for f in frames] == [20.0] * 13  # 5 chars × 50 ms, up to whole frames
    pcm = np.frombuffer(convert_all(b"".join(f.data for f in frames), ULAW8, SLIN8), dtype="<i2")
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    assert 5000 < rms < 6000  # a tone at amplitude 8000, not silence
    long = [f async for f in tts.synthesize("Hello, Hello")]
    assert sum(f.duration_ms for f in long) == 600.0 == tts.duration_ms("Hello, Hello")


async def test_tts_stall_and_broken() -> None:
    tts = ScriptedTTS(stall_after=3, broken=True)
    with pytest.raises(ProviderError):
        [f async for f in tts.synthesize("hi")]
    tts.broken = False
    got: list[AudioFrame] = []

    async def read() -> None:
        async for f in tts.synthesize("a longer sentence"):
            got.append(f)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), 0.1)
    assert len(got) == 3 and tts.active == 0


async def test_stt_answers_after_end_input_and_refuses_other_formats() -> None:
    stt = ScriptedSTT(["book a table", "tuesday"], input_format=SLIN16, delay=0.05, interim=True)
    stream = stt.stream()
    with pytest.raises(ValueError, match="needs pcm16@16000"):
        stream.push_audio(AudioFrame(bytes(320), SLIN8))
    stream.push_audio(AudioFrame(bytes(640), SLIN16))
    reader = asyncio.ensure_future(anext(aiter(stream)))
    await asyncio.sleep(0.1)
    assert not reader.done()  # nothing before the end of input
    start = time.monotonic()
    stream.end_input()
    first = await reader
    assert 0.05 <= time.monotonic() - start < 0.05 + MARGIN
    assert (first.kind, first.text) == ("interim", "book a")
    assert stt.heard == [bytes(640)]
    stream2 = stt.stream()
    stream2.end_input()
    assert [(e.kind, e.text, e.is_endpoint) async for e in stream2] == [("final", "tuesday", True)]


def test_vad_script_and_energy() -> None:
    vad = ScriptedVAD([0.1, 0.9])
    window = bytes(2 * vad.frame_samples)
    assert [vad.speech_probability(window) for _ in range(3)] == [0.1, 0.9, 0.0]
    with pytest.raises(ValueError, match="256 samples"):
        vad.speech_probability(bytes(100))
    energy = ScriptedVAD(sample_rate=16000, frame_samples=512)
    loud = (np.full(512, 3000, dtype="<i2")).tobytes()
    assert energy.speech_probability(loud) == 1.0
    assert energy.speech_probability(bytes(1024)) == 0.0
