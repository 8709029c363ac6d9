"""Low-latency streaming resampler for the per-frame path.

soxr (through python-soxr's ResampleStream) is the reference for quality, but it buffers
internally: fed 20 ms chunks, it returns nothing for ~100 ms and then releases ~100 ms blocks
(measured with soxr 1.1 at HQ, MQ and LQ). On a phone call that is 100 ms of added latency in
each direction and bursty output, so calls use this polyphase FIR instead: a Kaiser-windowed
sinc designed once per rate pair, applied with numpy per chunk, with 2 ms of filter delay and
output for every chunk. Against soxr VHQ on passband tones it is within 50–90 dB SNR; aliases
are rejected by about 80 dB. `convert_all` (whole files) still uses soxr VHQ.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

_INT16_MIN, _INT16_MAX = -32768, 32767
_PLANS_KEPT = 512


@lru_cache(maxsize=64)
def _design(in_rate: int, out_rate: int, taps: int, cutoff: float, beta: float) -> tuple[np.ndarray, int]:
    """Polyphase bank `bank[phase, k]` and the filter delay in whole output samples."""
    g = gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    delay = -(-taps * max(up, down) // (2 * down))  # output samples; whole, so timing stays exact
    centre = delay * down  # in samples of the (virtual) upsampled stream
    per_phase = -(-(2 * centre + 1) // up)
    n = np.arange(per_phase * up) - centre
    window = np.zeros(per_phase * up)
    window[: 2 * centre + 1] = np.kaiser(2 * centre + 1, beta)
    fc = cutoff * 0.5 / max(up, down)  # cycles per upsampled sample
    h = 2 * fc * np.sinc(2 * fc * n) * window * up
    bank = np.ascontiguousarray(h.reshape(per_phase, up).T, dtype=np.float32)
    bank.setflags(write=False)  # shared by every resampler of this design
    return bank, delay


# A chunk's gather pattern depends only on the design, the output phase it starts at and its
# length, and calls feed same-sized chunks: compute it once per process, not per chunk.
_plans: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = {}


def _plan(bank: np.ndarray, up: int, down: int, phase: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For `n` outputs whose first falls `phase` (0 ≤ phase < up) into its input sample: the
    input offsets of every tap, relative to that first input sample, and the taps' weights."""
    key = (id(bank), up, down, phase, n)
    plan = _plans.get(key)
    if plan is None:
        pos = phase + np.arange(n, dtype=np.int64) * down
        offsets = (pos // up)[:, None] - np.arange(bank.shape[1])[None, :]
        weights = bank[pos % up]
        offsets.setflags(write=False)
        weights.setflags(write=False)
        if len(_plans) >= _PLANS_KEPT:
            _plans.clear()
        plan = _plans[key] = (offsets, weights)
    return plan


class StreamResampler:
    """Converts a mono int16 stream between two rates, chunk by chunk, keeping filter state.

    Output is aligned with input: after `flush()` the total output is exactly
    ceil(total_in · out_rate / in_rate) samples, and sample i of the output is time i/out_rate
    of the input. Each chunk's output lags its input by `delay` output samples (2 ms).
    """

    __slots__ = (
        "_bank",
        "_down",
        "_hist",
        "_k",
        "_out_n",
        "_skip",
        "_total_in",
        "_up",
        "delay",
        "in_rate",
        "out_rate",
    )

    def __init__(
        self, in_rate: int, out_rate: int, taps: int = 32, cutoff: float = 0.9, beta: float = 8.0
    ) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} → {out_rate}")
        self.in_rate, self.out_rate = in_rate, out_rate
        g = gcd(in_rate, out_rate)
        self._up, self._down = out_rate // g, in_rate // g
        self._bank, self.delay = _design(in_rate, out_rate, taps, cutoff, beta)
        self._k = self._bank.shape[1]
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (a new utterance, or after a barge-in clear)."""
        self._hist = np.zeros(self._k - 1, dtype=np.float32)
        self._total_in = 0
        self._out_n = 0
        self._skip = self.delay

    def process(self, pcm: np.ndarray) -> np.ndarray:
        """Feed int16 samples; return the int16 samples they complete."""
        return self._run(np.asarray(pcm, dtype=np.float32))

    def flush(self) -> np.ndarray:
        """Emit what the filter still holds (the last `delay` samples) and reset."""
        target = -(-self._total_in * self._up // self._down)  # aligned total for the input so far
        emitted = self._out_n - (self.delay - self._skip)
        need = target - emitted
        zeros = np.zeros(-(-(need + 1) * self._down // self._up) + 1, dtype=np.float32)
        tail = self._run(zeros)[: max(0, need)]
        self.reset()
        return tail

    def _run(self, x: np.ndarray) -> np.ndarray:
        k, up, down = self._k, self._up, self._down
        xb = np.concatenate((self._hist, x))
        base = self._total_in - (k - 1)  # absolute input index of xb[0]
        total = self._total_in + len(x)
        n_end = -(-total * up // down)
        first, phase = divmod(self._out_n * down, up)  # output sample out_n sits at input first + phase/up
        offsets, weights = _plan(self._bank, up, down, phase, n_end - self._out_n)
        y = np.einsum("ij,ij->i", xb[offsets + (first - base)], weights)
        self._hist = xb[len(xb) - (k - 1) :]
        self._out_n = n_end
        self._total_in = total
        if self._skip:
            dropped = min(self._skip, len(y))
            y = y[dropped:]
            self._skip -= dropped
        return np.clip(np.rint(y), _INT16_MIN, _INT16_MAX).astype(np.int16)
