"""In-band DTMF against ITU-T Q.23/Q.24, checked by spectrum, not by our own tables.

The frequency table below is written from Q.23 (low group 697/770/852/941 Hz by row, high group
1209/1336/1477/1633 Hz by column), independently of `voxgate.audio.dtmf`.
"""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.audio.dtmf import dtmf_tones

Q23 = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip
ALL_FREQUENCIES = sorted({f for pair in Q23.values() for f in pair})
ALL_KEYS = "".join(Q23)


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def spectrum(segment: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed magnitude spectrum, zero-padded for a fine frequency grid."""
    n_fft = 1 << 16
    magnitude = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n_fft))
    return np.fft.rfftfreq(n_fft, 1 / rate), magnitude


def db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-12))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_every_key_is_its_q23_pair_and_nothing_else(rate: int) -> None:
    tone_n = gap_n = rate // 10  # 100 ms each, the defaults
    pcm = samples(dtmf_tones(ALL_KEYS, rate=rate))
    assert len(pcm) == len(ALL_KEYS) * (tone_n + gap_n)
    for i, key in enumerate(ALL_KEYS):
        segment = pcm[i * (tone_n + gap_n) : i * (tone_n + gap_n) + tone_n]
        freqs, mag = spectrum(segment, rate)
        first = int(np.argmax(mag))
        masked = mag.copy()
        masked[np.abs(freqs - freqs[first]) < 50] = 0  # leave out the first peak's main lobe
        second = int(np.argmax(masked))
        found = sorted((freqs[first], freqs[second]))
        low, high = Q23[key]
        assert abs(found[0] - low) <= 0.015 * low, (key, rate, found)
        assert abs(found[1] - high) <= 0.015 * high, (key, rate, found)
        weaker = min(mag[first], mag[second])
        assert db(max(mag[first], mag[second])) - db(weaker) < 1.0  # the pair is balanced
        for other in ALL_FREQUENCIES:
            if other in (low, high):
                continue
            at_other = mag[int(np.argmin(np.abs(freqs - other)))]
            assert db(weaker) - db(at_other) >= 20, (key, rate, other)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_lengths_are_exact_and_gaps_are_silent(rate: int) -> None:
    pcm = dtmf_tones("1#9", rate=rate, tone_ms=70, gap_ms=50)
    tone_n, gap_n = rate * 70 // 1000, rate * 50 // 1000
    assert len(pcm) == 3 * (tone_n + gap_n) * 2  # int16: two bytes a sample
    x = samples(pcm)
    for i in range(3):
        start = i * (tone_n + gap_n)
        tone, gap = x[start : start + tone_n], x[start + tone_n : start + tone_n + gap_n]
        assert np.all(gap == 0)
        assert np.sqrt(np.mean(tone**2)) > 1000  # -10 dBFS pair: RMS ≈ 7300
        assert np.count_nonzero(tone[: rate // 1000]) > 0  # sound from the first millisecond


def test_little_endian_int16() -> None:
    pcm = dtmf_tones("5", tone_ms=40, gap_ms=40)
    x = samples(pcm)
    i = int(np.argmax(np.abs(x)))
    assert int.from_bytes(pcm[2 * i : 2 * i + 2], "little", signed=True) == x[i]


def test_ramps_avoid_clicks() -> None:
    """The tone starts and ends near zero instead of jumping to full amplitude."""
    rate, tone_n = 8000, 800
    x = samples(dtmf_tones("D", rate=rate))
    tone = x[:tone_n]
    peak = np.max(np.abs(tone))
    assert abs(tone[0]) < 0.05 * peak and abs(tone[-1]) < 0.05 * peak
    # no sample-to-sample step bigger than the highest component can make at full amplitude
    assert np.max(np.abs(np.diff(x))) <= 2 * np.pi * 1633 / rate * peak


@pytest.mark.parametrize("level", [-20.0, -10.0, -3.0, 0.0])
def test_level_and_no_clipping(level: float) -> None:
    full_scale = 32767 * 10 ** (level / 20)
    for rate in (8000, 16000):
        x = samples(dtmf_tones(ALL_KEYS, rate=rate, level_dbfs=level))
        peak = np.max(np.abs(x))
        assert peak <= full_scale + 1
        assert peak >= full_scale * 10 ** (-1 / 20)  # within 1 dB of the asked level
        assert peak < 32767  # never on the rails, even at 0 dBFS


def test_empty_digits_give_no_audio() -> None:
    assert dtmf_tones("") == b""


@pytest.mark.parametrize(("digits", "bad"), [("12x4", "'x'"), ("a", "'a'"), ("1 2", "' '"), ("5w", "'w'")])
def test_bad_digit_is_named(digits: str, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        dtmf_tones(digits)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tone_ms": 39}, "tone_ms"),
        ({"gap_ms": 20}, "gap_ms"),
        ({"rate": 4000}, "sample rate"),
        ({"level_dbfs": 1.0}, "level_dbfs"),
        ({"level_dbfs": float("nan")}, "level_dbfs"),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dtmf_tones("1", **options)  # type: ignore[arg-type]


def test_q24_minimum_timing_is_allowed() -> None:
    assert len(dtmf_tones("0", tone_ms=40, gap_ms=40)) == 2 * 640
