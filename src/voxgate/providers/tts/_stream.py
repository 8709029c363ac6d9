"""Streamed TTS audio, which arrives in chunks of any size, as `AudioFrame`s."""

from __future__ import annotations

from voxgate.audio.format import AudioFormat, AudioFrame


class AudioFramer:
    """Cuts audio chunks into frames of whole samples, each at most `frame_ms` long.

    A chunk may end mid-sample (an odd byte of 16-bit PCM): that byte waits for its pair at the
    head of the next chunk. `pending` is what is still waiting; left at the end of a stream, it
    is dropped.
    """

    __slots__ = ("_step", "format", "pending")

    def __init__(self, fmt: AudioFormat, frame_ms: int) -> None:
        self.format = fmt
        self.pending = b""
        self._step = fmt.frame_bytes(frame_ms)

    def frames(self, chunk: bytes) -> list[AudioFrame]:
        """`pending` + `chunk` as frames of whole samples; a partial last sample is the new `pending`."""
        data = self.pending + chunk if self.pending else chunk
        whole = len(data) - len(data) % self.format.bytes_per_sample
        self.pending = data[whole:]
        step = self._step
        return [AudioFrame(data[i : min(i + step, whole)], self.format) for i in range(0, whole, step)]
