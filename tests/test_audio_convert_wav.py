"""Streaming format conversion (convert.py) and WAV files (wav.py)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from voxgate.audio import (
    ALAW8,
    SLIN8,
    SLIN16,
    ULAW8,
    AudioConverter,
    AudioFormat,
    AudioFrame,
    Encoding,
    convert_all,
)
from voxgate.audio.wav import WavError, read_wav, write_wav


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2")


def as_pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def stream(conv: AudioConverter, data: bytes, chunk_ms: int = 20) -> bytes:
    """Feed `data` through `conv` in chunk_ms chunks, then flush."""
    n = conv.src.frame_bytes(chunk_ms)
    out = [conv.convert(data[i : i + n]) for i in range(0, len(data), n)]
    out.append(conv.convert(b"", last=True))
    return b"".join(out)


def dominant_freq(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def best_lag(y: np.ndarray, x: np.ndarray, max_lag: int = 64) -> tuple[int, float]:
    """The lag (y[n + lag] ≈ x[n]) with the smallest max abs error over the steady middle part."""
    lo, hi = 400, len(x) - 400
    errors = {
        lag: float(np.max(np.abs(y[lo + lag : hi + lag] - x[lo:hi]))) for lag in range(-max_lag, max_lag)
    }
    lag = min(errors, key=errors.__getitem__)
    return lag, errors[lag]


def ref_ulaw_decode(codes: bytes) -> np.ndarray:
    """G.711 μ-law decoding written out from the standard (chord c, step s, inverted byte)."""
    c = ~np.frombuffer(codes, dtype=np.uint8).astype(np.int64) & 0xFF
    chord, step = (c >> 4) & 7, c & 15
    v = 4 * (((2 * step + 33) << chord) - 33)
    return np.where(c & 0x80, -v, v).astype("<i2")


# --- AudioConverter ----------------------------------------------------------------------------


def test_passthrough_returns_the_same_objects() -> None:
    conv = AudioConverter(SLIN8, AudioFormat(Encoding.PCM16, 8000))
    assert conv.passthrough
    data = bytes(range(256)) * 2
    assert conv.convert(data) is data
    frame = AudioFrame(data, SLIN8)
    assert conv.frame(frame) is frame
    assert not AudioConverter(SLIN8, SLIN16).passthrough
    assert not AudioConverter(SLIN8, ULAW8).passthrough


def test_8k_to_16k_to_8k_keeps_frequency_amplitude_and_waveform() -> None:
    freq = 440.0  # not a divisor of either rate, so the period is not a whole number of samples
    x = sine(freq, 8000)
    up = as_pcm(stream(AudioConverter(SLIN8, SLIN16), x.tobytes()))
    assert len(up) == 2 * len(x)
    assert dominant_freq(up, 16000) == pytest.approx(freq, abs=2)
    # Upsampling must not create images above the old Nyquist frequency (4 kHz).
    spectrum = np.abs(np.fft.rfft(up[800:-800] * np.hanning(len(up) - 1600))) ** 2
    freqs = np.fft.rfftfreq(len(up) - 1600, 1 / 16000)
    assert spectrum[freqs > 4200].sum() / spectrum.sum() < 1e-5

    back = as_pcm(stream(AudioConverter(SLIN16, SLIN8), up.astype("<i2").tobytes()))
    assert len(back) == len(x)
    assert dominant_freq(back, 8000) == pytest.approx(freq, abs=2)

    xs = x.astype(np.float64)
    lag, max_err = best_lag(back, xs)
    assert abs(lag) <= 32  # the resampler's delay is compensated (or at least small)
    lo, hi = 400, len(x) - 400
    level_db = 20 * np.log10(rms(back[lo + lag : hi + lag]) / rms(xs[lo:hi]))
    assert abs(level_db) < 1.0
    assert max_err < 0.01 * 8000  # the waveform itself survives, not just its spectrum


def test_streaming_matches_whole_buffer_conversion() -> None:
    x = sine(440, 8000, amplitude=12000) + sine(1900, 8000, amplitude=4000)
    whole = as_pcm(AudioConverter(SLIN8, SLIN16).convert(x.tobytes(), last=True))
    streamed = as_pcm(stream(AudioConverter(SLIN8, SLIN16), x.tobytes()))
    assert len(streamed) == len(whole) == 2 * len(x)
    # Same filter, same state carried across chunks: equal up to int16 rounding, edges included.
    assert np.max(np.abs(streamed - whole)) <= 4

    # Against the very-high-quality whole-buffer path: nearly the same once the edges settle.
    reference = as_pcm(convert_all(x.tobytes(), SLIN8, SLIN16))
    assert len(reference) == len(streamed)
    assert np.max(np.abs(streamed[800:-800] - reference[800:-800])) < 0.01 * 16000

    # Control: converting each 20 ms chunk with a fresh converter (no state) does click at chunk
    # edges, so the comparison above would catch lost streaming state.
    n = SLIN8.frame_bytes(20)
    stateless = as_pcm(
        b"".join(
            AudioConverter(SLIN8, SLIN16).convert(x.tobytes()[i : i + n], last=True)
            for i in range(0, len(x) * 2, n)
        )
    )
    assert np.max(np.abs(stateless[: len(whole)] - whole)) > 100


def test_reset_drops_resampler_history() -> None:
    x = sine(440, 8000, seconds=0.5).tobytes()
    fresh = as_pcm(stream(AudioConverter(SLIN8, SLIN16), x))

    conv = AudioConverter(SLIN8, SLIN16)
    conv.convert(x[: len(x) // 3])  # leave history in the filter
    conv.reset()
    again = as_pcm(stream(conv, x))
    assert len(again) == len(fresh)
    assert np.max(np.abs(again - fresh)) <= 2  # int16 rounding only

    # Control: without the reset the old history comes out first.
    conv = AudioConverter(SLIN8, SLIN16)
    conv.convert(x[: len(x) // 3])
    stale = as_pcm(stream(conv, x))
    assert len(stale) != len(fresh) or np.max(np.abs(stale - fresh)) > 100


def test_ulaw_8k_to_pcm16_16k() -> None:
    # Build a μ-law stream, decode it with the reference formula, and check the converter gives the
    # same result as resampling that reference PCM.
    x = sine(600, 8000, amplitude=10000)
    codes = AudioConverter(SLIN8, ULAW8).convert(x.tobytes())
    assert len(codes) == len(x)
    pcm8 = ref_ulaw_decode(codes)
    assert np.max(np.abs(pcm8.astype(np.int64) - x)) <= 4 * 128  # μ-law quantisation, top used segment

    conv = AudioConverter(ULAW8, SLIN16)
    out = stream(conv, codes)
    expected = stream(AudioConverter(SLIN8, SLIN16), pcm8.tobytes())
    assert len(out) == 2 * 2 * len(x)
    assert np.max(np.abs(as_pcm(out) - as_pcm(expected))) <= 4
    assert dominant_freq(as_pcm(out), 16000) == pytest.approx(600, abs=2)


def test_same_rate_g711_and_pcm_conversions_use_the_standard_values() -> None:
    assert (
        AudioConverter(ULAW8, SLIN8).convert(bytes([0x00, 0x80, 0xFF, 0x7F]))
        == np.array([-32124, 32124, 0, 0], dtype="<i2").tobytes()
    )
    assert (
        AudioConverter(ALAW8, SLIN8).convert(bytes([0xD5, 0x55, 0xAA, 0x2A]))
        == np.array([8, -8, 32256, -32256], dtype="<i2").tobytes()
    )
    pcm = np.array([0, -1, 32767, -32768, 100], dtype="<i2").tobytes()
    assert AudioConverter(SLIN8, ULAW8).convert(pcm) == bytes([0xFF, 0x7F, 0x80, 0x00, 0xF2])
    assert AudioConverter(SLIN8, ALAW8).convert(pcm[:8]) == bytes([0xD5, 0x55, 0xAA, 0x2A])
    # μ-law 0 / ±32124 are inside A-law's 0-step and top step respectively.
    assert AudioConverter(ULAW8, ALAW8).convert(bytes([0xFF, 0x80, 0x00])) == bytes([0xD5, 0xAA, 0x2A])


@pytest.mark.parametrize(("src", "dst"), [(SLIN8, SLIN16), (SLIN16, SLIN8), (SLIN8, ULAW8), (SLIN16, ULAW8)])
def test_a_chunk_that_is_not_whole_samples_raises(src: AudioFormat, dst: AudioFormat) -> None:
    conv = AudioConverter(src, dst)
    with pytest.raises(ValueError, match="whole number"):
        conv.convert(bytes(321))


def test_frame_converts_and_rejects_a_mismatched_format() -> None:
    conv = AudioConverter(SLIN8, ULAW8)
    out = conv.frame(AudioFrame(np.array([0, 100], dtype="<i2").tobytes(), SLIN8))
    assert out.format == ULAW8
    assert out.data == bytes([0xFF, 0xF2])
    with pytest.raises(ValueError, match="expects"):
        conv.frame(AudioFrame(bytes(320), SLIN16))
    with pytest.raises(ValueError):
        conv.frame(AudioFrame(bytes(160), ULAW8))
    with pytest.raises(ValueError):
        AudioConverter(SLIN8, SLIN8).frame(AudioFrame(bytes(160), ULAW8))


def test_downsampled_output_has_the_right_length_and_encoding() -> None:
    x = sine(300, 16000, seconds=0.5)
    codes = stream(AudioConverter(SLIN16, ULAW8), x.tobytes())
    assert len(codes) == len(x) // 2
    assert dominant_freq(ref_ulaw_decode(codes).astype(np.float64), 8000) == pytest.approx(300, abs=3)


# --- WAV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_wav_round_trip(tmp_path: Path, rate: int) -> None:
    rng = np.random.default_rng(rate)
    x = rng.integers(-32768, 32768, size=rate // 10, dtype=np.int64).astype("<i2")
    x[:2] = [-32768, 32767]
    path = tmp_path / "a.wav"
    write_wav(path, x.tobytes(), rate)
    data, fmt = read_wav(path)
    assert fmt == AudioFormat(Encoding.PCM16, rate)
    assert data == x.tobytes()
    with wave.open(str(path), "rb") as w:  # and it is a plain mono 16-bit file to anyone else
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, rate)
        assert w.getnframes() == len(x)


def test_wav_accepts_str_paths_and_empty_audio(tmp_path: Path) -> None:
    path = str(tmp_path / "empty.wav")
    write_wav(path, b"", 8000)
    assert read_wav(path) == (b"", SLIN8)


def test_stereo_wav_is_mixed_to_mono(tmp_path: Path) -> None:
    left = np.array([1000, -2000, 32767, -32768, 0, 10], dtype="<i2")
    right = np.array([3000, -4000, 32767, -32768, 0, -10], dtype="<i2")
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    data, fmt = read_wav(path)
    assert fmt == SLIN16
    # The mean of the channels, without int16 overflow at full scale.
    assert np.frombuffer(data, dtype="<i2").tolist() == [2000, -3000, 32767, -32768, 0, 0]


@pytest.mark.parametrize("width", [1, 3])
def test_non_16_bit_wav_raises_naming_the_fix(tmp_path: Path, width: int) -> None:
    path = tmp_path / f"{8 * width}bit.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(8000)
        w.writeframes(bytes(width * 80))
    with pytest.raises(WavError, match=f"{8 * width}-bit") as exc:
        read_wav(path)
    assert "16-bit" in str(exc.value)
    assert "sox" in str(exc.value) and "-b 16" in str(exc.value)


@pytest.mark.parametrize(
    "content",
    [b"this is not a wav file at all, just some text\n" * 4, b"", b"RIFF\x10\x00\x00\x00WAVEfmt "],
)
def test_non_wav_file_raises_wav_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(WavError, match="not a PCM WAV file") as exc:
        read_wav(path)
    assert isinstance(exc.value, ValueError)
    assert str(path) in str(exc.value)
