"""The per-call streaming resampler, checked against soxr at its best quality (an independent
implementation), for latency, alignment, aliasing and chunk-size independence."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from voxgate.audio.resample import StreamResampler

PAIRS = [
    (8000, 16000),
    (16000, 8000),
    (8000, 24000),
    (24000, 8000),
    (48000, 8000),
    (22050, 8000),
    (44100, 16000),
    (8000, 12000),
]


def _tones(rate: int, seconds: float, top: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(100, top, 8))
    return (x * 2500).astype(np.int16)


def _stream(r: StreamResampler, x: np.ndarray, chunk: int) -> np.ndarray:
    parts = [r.process(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate([*parts, r.flush()])


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_matches_soxr_vhq_in_the_passband(src: int, dst: int) -> None:
    x = _tones(src, 1.0, 0.4 * min(src, dst))
    y = _stream(StreamResampler(src, dst), x, src // 50).astype(float)
    ref = soxr.resample(x.astype(float), src, dst, quality="VHQ")
    assert len(y) == -(-len(x) * dst // src)
    edge = dst // 50  # both filters ramp in and out at the ends
    err = y[edge:-edge] - ref[edge : len(y) - edge]
    snr = 10 * np.log10(np.sum(ref[edge:-edge] ** 2) / np.sum(err**2))
    assert snr > 45, f"{src}->{dst}: {snr:.1f} dB against soxr VHQ"


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_every_20ms_chunk_produces_audio_at_once(src: int, dst: int) -> None:
    r = StreamResampler(src, dst)
    x = _tones(src, 0.2, 0.4 * min(src, dst))
    chunk = src // 50
    sizes = [len(r.process(x[i : i + chunk])) for i in range(0, len(x), chunk)]
    per_chunk = dst // 50
    # the first chunk is short by the filter delay (2 ms); every later one is a whole 20 ms
    assert sizes[0] == pytest.approx(per_chunk - r.delay, abs=1)
    assert all(abs(s - per_chunk) <= 1 for s in sizes[1:]), sizes
    assert r.delay * 1000 / dst <= 2.5


@pytest.mark.parametrize(("src", "dst"), [(16000, 8000), (48000, 8000), (24000, 8000)])
def test_rejects_aliases_when_downsampling(src: int, dst: int) -> None:
    t = np.arange(src) / src
    above_nyquist = (np.sin(2 * np.pi * 0.6 * dst * t) * 20000).astype(np.int16)
    y = _stream(StreamResampler(src, dst), above_nyquist, src // 50).astype(float)
    rejection = 20 * np.log10(20000 / (np.sqrt(2) * np.std(y[dst // 10 :]) + 1e-9))
    assert rejection > 60, f"alias only {rejection:.1f} dB down"


def test_chunk_size_does_not_change_the_output() -> None:
    x = _tones(8000, 0.5, 3000)
    a = _stream(StreamResampler(8000, 16000), x, 160)
    b = _stream(StreamResampler(8000, 16000), x, 37)
    c = _stream(StreamResampler(8000, 16000), x, len(x))
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_reset_starts_a_fresh_stream() -> None:
    x = _tones(16000, 0.1, 3000)
    r = StreamResampler(16000, 8000)
    first = r.process(x)
    r.process(_tones(16000, 0.1, 3000, seed=5))
    r.reset()
    assert np.array_equal(r.process(x), first)


def test_full_scale_input_clips_instead_of_wrapping() -> None:
    square = np.tile(np.array([32767] * 20 + [-32768] * 20, dtype=np.int16), 100)
    y = _stream(StreamResampler(8000, 16000), square, 160).astype(int)
    # 40 output samples high, then 40 low; the filter's overshoot at each edge must clip at
    # full scale, not wrap round to the other sign.
    highs = np.concatenate([y[i + 4 : i + 36] for i in range(80, len(y) - 80, 80)])
    lows = np.concatenate([y[i + 44 : i + 76] for i in range(80, len(y) - 80, 80)])
    assert highs.min() > 20000 and lows.max() < -20000
    assert y.max() == 32767 and y.min() == -32768


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 8000)
