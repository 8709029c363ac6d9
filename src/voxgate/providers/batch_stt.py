"""Batch STT (Whisper-like: whole utterance in, text out) behind the streaming `STT` seam.

The turn detector decides where an utterance ends and calls `end_input()`; only then is the
buffered audio transcribed, and one final, endpointed `SpeechEvent` comes out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from voxgate.audio.convert import convert_all
from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.base import STT, BatchSTT, SpeechEvent, warm_up


async def transcribe_utterance(stt: STT, pcm: bytes, fmt: AudioFormat, *, timeout_s: float) -> str:
    """The final transcript of one whole utterance (`pcm` in `fmt`, converted for `stt`), its
    final events joined. Raises `TimeoutError` after `timeout_s`, and what the provider raises."""
    text = ""
    stream = stt.stream()
    try:
        if fmt != stt.input_format:
            pcm = convert_all(pcm, fmt, stt.input_format)
        stream.push_audio(AudioFrame(pcm, stt.input_format))
        stream.end_input()
        async with asyncio.timeout(timeout_s):
            async for event in stream:
                if event.kind == "final" and event.text.strip():
                    text = f"{text} {event.text.strip()}".strip()
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()
    return text


def check_utterance(stt: BatchSTT, pcm: bytes, fmt: AudioFormat) -> None:
    """What a `BatchSTT.transcribe` checks first: audio in its input format, whole pcm16 samples."""
    if fmt != stt.input_format:
        raise ValueError(
            f"{stt.name} needs {stt.input_format} audio, got {fmt}; "
            "convert it with voxgate.audio.convert.AudioConverter first"
        )
    if len(pcm) % 2:
        raise ValueError(f"{len(pcm)} bytes is not a whole number of pcm16 samples")


class BatchSTTStream:
    """Buffers one utterance (keeping the newest `max_seconds`) and transcribes it on `end_input()`."""

    def __init__(self, stt: BatchSTT, *, max_seconds: float = 60.0) -> None:
        self._stt = stt
        self.input_format: AudioFormat = stt.input_format
        self._max_bytes = int(max_seconds * 1000 * self.input_format.bytes_per_ms)
        self._buffer = bytearray()
        self._ended = asyncio.Event()
        self._closed = False

    def push_audio(self, frame: AudioFrame) -> None:
        if frame.format != self.input_format:
            raise ValueError(
                f"{self._stt.name} needs {self.input_format} audio, got a {frame.format} frame; "
                "convert it with voxgate.audio.convert.AudioConverter first"
            )
        if self._ended.is_set():
            raise RuntimeError("push_audio() after end_input(): open a new stream for the next utterance")
        self._buffer += frame.data
        if len(self._buffer) > self._max_bytes:
            del self._buffer[: len(self._buffer) - self._max_bytes]

    def end_input(self) -> None:
        self._ended.set()

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SpeechEvent]:
        await self._ended.wait()
        if self._closed or not self._buffer:
            return
        text = await self._stt.transcribe(bytes(self._buffer), self.input_format)
        yield SpeechEvent("final", text.strip(), is_endpoint=True)

    async def aclose(self) -> None:
        self._closed = True
        self._buffer.clear()
        self._ended.set()


class BatchSTTAdapter:
    """Makes a `BatchSTT` an `STT`: each `stream()` is a `BatchSTTStream`."""

    def __init__(self, stt: BatchSTT, *, max_seconds: float = 60.0) -> None:
        self._stt = stt
        self._max_seconds = max_seconds
        self.name = stt.name
        self.input_format = stt.input_format

    def stream(self) -> BatchSTTStream:
        return BatchSTTStream(self._stt, max_seconds=self._max_seconds)

    async def warm_up(self) -> None:
        await warm_up(self._stt)
