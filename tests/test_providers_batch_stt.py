"""BatchSTTStream: buffer one utterance, transcribe it when the turn detector ends the input."""

from __future__ import annotations

import asyncio

import pytest

from voxgate.audio.format import SLIN8, SLIN16, AudioFormat, AudioFrame
from voxgate.providers import BatchSTTAdapter, SpeechEvent


class UpperBatch:
    """A batch 'model' that reports how much audio it got."""

    name = "upper"
    input_format = SLIN16

    def __init__(self) -> None:
        self.calls: list[tuple[int, AudioFormat]] = []

    async def transcribe(self, pcm: bytes, fmt: AudioFormat) -> str:
        self.calls.append((len(pcm), fmt))
        return f"  {len(pcm)} BYTES  "


async def test_transcribes_the_buffered_utterance_on_end_input() -> None:
    model = UpperBatch()
    stream = BatchSTTAdapter(model).stream()
    events: list[SpeechEvent] = []

    async def read() -> None:
        events.extend([e async for e in stream])

    reader = asyncio.create_task(read())
    for _ in range(5):
        stream.push_audio(AudioFrame(bytes(640), SLIN16))
        await asyncio.sleep(0)
    assert not model.calls  # nothing happens until the end of the utterance
    stream.end_input()
    await asyncio.wait_for(reader, 1.0)
    assert model.calls == [(3200, SLIN16)]
    assert events == [SpeechEvent("final", "3200 BYTES", is_endpoint=True)]
    with pytest.raises(RuntimeError, match="new stream"):
        stream.push_audio(AudioFrame(bytes(640), SLIN16))


async def test_refuses_audio_in_another_format_and_bounds_the_buffer() -> None:
    model = UpperBatch()
    stream = BatchSTTAdapter(model, max_seconds=0.1).stream()
    with pytest.raises(ValueError, match="needs pcm16@16000 audio, got a pcm16@8000 frame"):
        stream.push_audio(AudioFrame(bytes(320), SLIN8))
    for _ in range(20):
        stream.push_audio(AudioFrame(bytes(640), SLIN16))
    stream.end_input()
    assert [e.text async for e in stream] == ["3200 BYTES"]  # the newest 100 ms


async def test_closed_or_empty_stream_transcribes_nothing() -> None:
    model = UpperBatch()
    stream = BatchSTTAdapter(model).stream()
    stream.end_input()
    assert [e async for e in stream] == []
    stream = BatchSTTAdapter(model).stream()
    stream.push_audio(AudioFrame(bytes(640), SLIN16))
    await stream.aclose()
    assert [e async for e in stream] == []
    assert model.calls == []
