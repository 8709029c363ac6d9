"""In-band DTMF: telephone keys as ITU-T Q.23 tone pairs in the outbound audio.

AudioSocket carries DTMF only from Asterisk to us; the server may send nothing but audio and
hangup, so `send_dtmf` plays the tones in the call audio, as a phone without RFC 4733 would.
Timing follows Q.24: refuse tones or pauses shorter than 40 ms, which receivers may ignore.
"""

from __future__ import annotations

import math

import numpy as np

# Q.23 keypad: row (low group) and column (high group) frequencies in Hz.
_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")

DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    key: (_ROWS[r], _COLUMNS[c]) for r, row in enumerate(_KEYPAD) for c, key in enumerate(row)
}
"""Key → (low, high) frequency pair in Hz."""

DTMF_KEYS = frozenset(DTMF_FREQUENCIES)

MIN_TONE_MS = 40
MIN_GAP_MS = 40
MIN_RATE = 8000  # the highest component (1633 Hz) needs some room below Nyquist
_RAMP_MS = 4.0


def dtmf_tones(
    digits: str,
    rate: int = 8000,
    tone_ms: int = 100,
    gap_ms: int = 100,
    level_dbfs: float = -10.0,
) -> bytes:
    """`digits` as DTMF: per key `tone_ms` of its Q.23 tone pair, then `gap_ms` of silence.

    Returns int16 little-endian mono PCM at `rate`. Each of the two components is 6 dB below
    `level_dbfs`, so the pair peaks at `level_dbfs`; 4 ms raised-cosine ramps avoid clicks.
    """
    for position, key in enumerate(digits):
        if key not in DTMF_KEYS:
            raise ValueError(
                f"{key!r} at position {position} of {digits!r} is not a DTMF key; "
                "use 0-9, *, # and A-D (upper case)"
            )
    if not isinstance(rate, int) or rate < MIN_RATE:
        raise ValueError(f"DTMF needs a sample rate of at least {MIN_RATE} Hz, not {rate!r}")
    if tone_ms < MIN_TONE_MS:
        raise ValueError(f"tone_ms={tone_ms} is shorter than the {MIN_TONE_MS} ms receivers need (Q.24)")
    if gap_ms < MIN_GAP_MS:
        raise ValueError(f"gap_ms={gap_ms} is shorter than the {MIN_GAP_MS} ms pause receivers need (Q.24)")
    if not math.isfinite(level_dbfs) or level_dbfs > 0:
        raise ValueError(f"level_dbfs={level_dbfs} must be a finite level at or below 0 dBFS")

    tone_n = round(rate * tone_ms / 1000)
    gap_n = round(rate * gap_ms / 1000)
    amplitude = 32767.0 * 10.0 ** (level_dbfs / 20.0) / 2.0  # per component
    t = np.arange(tone_n) / rate
    ramp_n = min(round(rate * _RAMP_MS / 1000), tone_n // 2)
    envelope = np.ones(tone_n)
    if ramp_n:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_n) + 0.5) / ramp_n)
        envelope[:ramp_n] = rise
        envelope[-ramp_n:] = rise[::-1]
    silence = np.zeros(gap_n, dtype="<i2")

    cache: dict[str, np.ndarray] = {}
    pieces: list[np.ndarray] = []
    for key in digits:
        tone = cache.get(key)
        if tone is None:
            low, high = DTMF_FREQUENCIES[key]
            wave = amplitude * envelope * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
            tone = cache[key] = np.clip(np.round(wave), -32768, 32767).astype("<i2")
        pieces += (tone, silence)
    if not pieces:
        return b""
    return np.concatenate(pieces).tobytes()
