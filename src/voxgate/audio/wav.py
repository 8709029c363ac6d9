"""WAV files: 16-bit PCM read/write (mono; stereo is mixed down when read)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voxgate.audio.format import AudioFormat, Encoding


class WavError(ValueError):
    pass


def read_wav(path: str | Path) -> tuple[bytes, AudioFormat]:
    """Return (pcm16 mono little-endian bytes, format) of a 16-bit PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavError(
            f"{path}: not a PCM WAV file ({exc}); convert it with 'sox IN -b 16 -c 1 OUT.wav'"
        ) from exc
    if width != 2:
        raise WavError(
            f"{path}: {8 * width}-bit samples; only 16-bit PCM is supported "
            f"(convert with 'sox IN -b 16 OUT.wav')"
        )
    pcm = np.frombuffer(raw, dtype="<i2")
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype("<i2")
    return pcm.tobytes(), AudioFormat(Encoding.PCM16, rate)


def write_wav(path: str | Path, pcm: bytes, sample_rate: int) -> None:
    """Write mono 16-bit little-endian PCM to a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
