"""Streaming format conversion: one stateful converter per direction per call.

G.711 is decoded/encoded by table lookup; rate changes go through a `StreamResampler` that
keeps its filter state between chunks (chunk edges never click) and adds 2 ms of delay.
Whole buffers (files, fixtures) go through soxr at its best quality.
"""

from __future__ import annotations

import numpy as np
import soxr

from voxgate.audio import g711
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.audio.resample import StreamResampler

_DECODE = {Encoding.ULAW: g711.ULAW_DECODE, Encoding.ALAW: g711.ALAW_DECODE}
_ENCODE = {Encoding.ULAW: g711.ULAW_ENCODE, Encoding.ALAW: g711.ALAW_ENCODE}


def _to_pcm(data: bytes, encoding: Encoding) -> np.ndarray:
    if encoding is Encoding.PCM16:
        return np.frombuffer(data, dtype="<i2")
    return _DECODE[encoding][np.frombuffer(data, dtype=np.uint8)]


def _from_pcm(pcm: np.ndarray, encoding: Encoding) -> bytes:
    if encoding is Encoding.PCM16:
        return pcm.astype("<i2", copy=False).tobytes()
    return _ENCODE[encoding][pcm.astype("<i2", copy=False).view("<u2")].tobytes()


class AudioConverter:
    """Converts a stream from one format to another, keeping resampler state between chunks.

    Passing frames through a converter whose formats are equal costs nothing (no copy).
    """

    __slots__ = ("_resampler", "dst", "src")

    def __init__(self, src: AudioFormat, dst: AudioFormat) -> None:
        self.src = src
        self.dst = dst
        self._resampler: StreamResampler | None = None
        if src.sample_rate != dst.sample_rate:
            self._resampler = StreamResampler(src.sample_rate, dst.sample_rate)

    @property
    def passthrough(self) -> bool:
        return self.src == self.dst

    def convert(self, data: bytes, *, last: bool = False) -> bytes:
        """Convert one chunk; `last=True` flushes what the resampler still holds."""
        if self.src == self.dst:
            return data
        if self._resampler is None and Encoding.PCM16 not in (self.src.encoding, self.dst.encoding):
            # μ-law <-> A-law at the same rate
            pcm = _to_pcm(data, self.src.encoding)
            return _from_pcm(pcm, self.dst.encoding)
        if len(data) % self.src.bytes_per_sample:
            raise ValueError(f"{len(data)} bytes is not a whole number of {self.src} samples")
        pcm = _to_pcm(data, self.src.encoding)
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
            if last:
                pcm = np.concatenate((pcm, self._resampler.flush()))
        return _from_pcm(pcm, self.dst.encoding)

    def frame(self, frame: AudioFrame) -> AudioFrame:
        if frame.format != self.src:
            raise ValueError(f"converter expects {self.src}, got a {frame.format} frame")
        if self.src == self.dst:
            return frame
        return AudioFrame(self.convert(frame.data), self.dst)

    def reset(self) -> None:
        """Drop the resampler's history (after a barge-in clear, say)."""
        if self._resampler is not None:
            self._resampler.reset()


def convert_all(data: bytes, src: AudioFormat, dst: AudioFormat) -> bytes:
    """Convert a whole buffer at once (files, fixtures), with soxr at its best quality."""
    if len(data) % src.bytes_per_sample:
        raise ValueError(f"{len(data)} bytes is not a whole number of {src} samples")
    pcm = _to_pcm(data, src.encoding)
    if src.sample_rate != dst.sample_rate:
        out = soxr.resample(pcm, src.sample_rate, dst.sample_rate, quality="VHQ")
        pcm = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    return _from_pcm(pcm, dst.encoding)
