"""CachedTTS: a sentence said before comes from memory; only complete syntheses are kept."""

from __future__ import annotations

from contextlib import aclosing

import pytest

from voxgate.agent.config import default_agent_config
from voxgate.agent.pipeline import fixed_sentences
from voxgate.providers.base import ProviderError
from voxgate.providers.tts.cache import CachedTTS
from voxgate.testing import ScriptedTTS


async def frames_of(tts: CachedTTS, text: str) -> bytes:
    return b"".join([f.data async for f in tts.synthesize(text)])


async def test_second_time_comes_from_memory_with_the_same_audio() -> None:
    inner = ScriptedTTS(ms_per_char=20)
    tts = CachedTTS(inner)
    first = await frames_of(tts, "We're open nine to five.")
    second = await frames_of(tts, "We're open nine to five.")
    assert first == second and len(first) == inner.output_format.frame_bytes(
        inner.duration_ms("We're open nine to five.")
    )
    assert inner.texts == ["We're open nine to five."]  # synthesised once
    assert (tts.hits, tts.misses) == (1, 1)


async def test_a_stream_cut_off_by_barge_in_is_not_kept() -> None:
    inner = ScriptedTTS(ms_per_char=40)
    tts = CachedTTS(inner)
    async with aclosing(tts.synthesize("A long sentence that gets interrupted.")) as stream:
        async for _ in stream:
            break
    assert "A long sentence that gets interrupted." not in tts
    await frames_of(tts, "A long sentence that gets interrupted.")
    assert len(inner.texts) == 2 and "A long sentence that gets interrupted." in tts


async def test_a_failed_synthesis_is_not_kept() -> None:
    inner = ScriptedTTS(stall_after=None, fail_times=1)
    tts = CachedTTS(inner)
    with pytest.raises(ProviderError):
        await frames_of(tts, "Hello there, caller.")
    assert len(tts) == 0


async def test_bounded_by_count_least_recently_used_goes_first() -> None:
    tts = CachedTTS(ScriptedTTS(ms_per_char=5), max_entries=2)
    for text in ("one sentence.", "two sentence.", "one sentence.", "three sentence."):
        await frames_of(tts, text)
    assert "one sentence." in tts and "three sentence." in tts and "two sentence." not in tts


async def test_long_texts_are_not_kept() -> None:
    tts = CachedTTS(ScriptedTTS(ms_per_char=1), max_chars=10)
    await frames_of(tts, "This is longer than ten characters.")
    assert len(tts) == 0


async def test_prefill_with_the_default_agent_sentences() -> None:
    inner = ScriptedTTS(ms_per_char=1)
    tts = CachedTTS(inner)
    texts = fixed_sentences(default_agent_config())
    assert "Is there anything else I can help with?" in texts
    assert all("{" not in t for t in texts)
    assert await tts.prefill(texts) == len(texts)
    assert await tts.prefill(texts) == 0  # already there
    before = len(inner.texts)
    await frames_of(tts, texts[0])
    assert len(inner.texts) == before
