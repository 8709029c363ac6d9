"""Audio formats and frames: every buffer says what it is (encoding and sample rate)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Encoding(enum.Enum):
    PCM16 = "pcm16"  # signed 16-bit little-endian ("slin" in Asterisk)
    ULAW = "ulaw"  # G.711 μ-law, 1 byte per sample
    ALAW = "alaw"  # G.711 A-law, 1 byte per sample

    @property
    def sample_width(self) -> int:
        return 2 if self is Encoding.PCM16 else 1


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """Encoding + sample rate of a mono stream."""

    encoding: Encoding
    sample_rate: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {self.sample_rate}")

    @property
    def bytes_per_sample(self) -> int:
        return self.encoding.sample_width

    @property
    def bytes_per_ms(self) -> float:
        return self.sample_rate * self.bytes_per_sample / 1000

    def frame_bytes(self, ms: int = 20) -> int:
        """Bytes in `ms` milliseconds of audio (20 ms of slin 8 kHz = 320)."""
        return self.sample_rate * ms // 1000 * self.bytes_per_sample

    def duration_ms(self, nbytes: int) -> float:
        return nbytes / self.bytes_per_ms

    def silence(self, nbytes: int) -> bytes:
        if self.encoding is Encoding.ULAW:
            return b"\xff" * nbytes
        if self.encoding is Encoding.ALAW:
            return b"\xd5" * nbytes
        return bytes(nbytes)

    def __str__(self) -> str:
        return f"{self.encoding.value}@{self.sample_rate}"


SLIN8 = AudioFormat(Encoding.PCM16, 8000)
SLIN16 = AudioFormat(Encoding.PCM16, 16000)
SLIN24 = AudioFormat(Encoding.PCM16, 24000)
ULAW8 = AudioFormat(Encoding.ULAW, 8000)
ALAW8 = AudioFormat(Encoding.ALAW, 8000)


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A chunk of mono audio and the format it is in. `data` is never copied by the frame."""

    data: bytes
    format: AudioFormat

    @property
    def samples(self) -> int:
        return len(self.data) // self.format.bytes_per_sample

    @property
    def duration_ms(self) -> float:
        return self.format.duration_ms(len(self.data))
