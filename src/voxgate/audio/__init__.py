"""Audio core: formats and frames, G.711, streaming conversion, WAV files, outbound pacing."""

from voxgate.audio.convert import AudioConverter, convert_all
from voxgate.audio.format import (
    ALAW8,
    SLIN8,
    SLIN16,
    SLIN24,
    ULAW8,
    AudioFormat,
    AudioFrame,
    Encoding,
)
from voxgate.audio.pacer import MediaClock, OutboundPacer
from voxgate.audio.wav import read_wav, write_wav

__all__ = [
    "ALAW8",
    "SLIN8",
    "SLIN16",
    "SLIN24",
    "ULAW8",
    "AudioConverter",
    "AudioFormat",
    "AudioFrame",
    "Encoding",
    "MediaClock",
    "OutboundPacer",
    "convert_all",
    "read_wav",
    "write_wav",
]
