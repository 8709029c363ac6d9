"""G.711 μ-law and A-law (ITU-T G.711) as vectorised table lookups.

Decoding is a 256-entry table; encoding is a 65536-entry table indexed by the 16-bit sample,
built once at import from the segment rules of the standard.
"""

from __future__ import annotations

import numpy as np

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def _ulaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0xFF  # μ-law bytes are transmitted inverted
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55  # even bits inverted on the wire
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    # A-law sign bit set means positive.
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


def _ulaw_encode_table() -> np.ndarray:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm)  # index = uint16 view of the int16 sample
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm)
    sign = np.where(pcm >= 0, 0x80, 0x00)
    # A-law works on 13-bit magnitudes; negative values use one's complement like the reference.
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1) >> 3
    magnitude = np.minimum(magnitude, 0x0FFF)
    exponent = np.where(magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4)
    exponent = np.clip(exponent, 0, 7)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)


ULAW_DECODE = _ulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()
ULAW_ENCODE = _ulaw_encode_table()
ALAW_ENCODE = _alaw_encode_table()
for _table in (ULAW_DECODE, ALAW_DECODE, ULAW_ENCODE, ALAW_ENCODE):
    _table.setflags(write=False)


def ulaw_decode(data: bytes) -> bytes:
    """μ-law bytes → signed 16-bit little-endian PCM."""
    return ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2", copy=False).tobytes()


def alaw_decode(data: bytes) -> bytes:
    """A-law bytes → signed 16-bit little-endian PCM."""
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2", copy=False).tobytes()


def ulaw_encode(pcm: bytes) -> bytes:
    """Signed 16-bit little-endian PCM → μ-law bytes."""
    return ULAW_ENCODE[np.frombuffer(pcm, dtype="<u2")].tobytes()


def alaw_encode(pcm: bytes) -> bytes:
    """Signed 16-bit little-endian PCM → A-law bytes."""
    return ALAW_ENCODE[np.frombuffer(pcm, dtype="<u2")].tobytes()
