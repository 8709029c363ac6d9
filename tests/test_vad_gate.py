"""EnergyGatedVAD: quiet windows skip the model; speech decisions stay the same."""

from __future__ import annotations

import numpy as np
import pytest

from test_vad import Speech, espeak_audio, push_in_frames  # noqa: F401  (fixture)
from voxgate.agent.turns import TurnDetector, TurnOptions
from voxgate.audio.format import SLIN8
from voxgate.providers.vad.gate import EnergyGatedVAD
from voxgate.providers.vad.silero_shared import SharedSileroVAD


class CountingVAD:
    """Says 0.9 for every window it is asked about, and counts calls and resets."""

    sample_rate = 8000
    frame_samples = 256

    def __init__(self) -> None:
        self.calls = 0
        self.resets = 0

    def speech_probability(self, pcm16: bytes) -> float:
        self.calls += 1
        return 0.9

    def reset(self) -> None:
        self.resets += 1


def window_at_dbfs(dbfs: float, seed: int = 0) -> bytes:
    """256 samples of noise with an RMS of `dbfs` relative to int16 full scale."""
    x = np.random.default_rng(seed).normal(0, 1, 256)
    x *= 32768 * 10 ** (dbfs / 20) / np.sqrt(np.mean(x * x))
    return np.rint(x).astype("<i2").tobytes()


def test_windows_below_the_floor_skip_the_model() -> None:
    inner = CountingVAD()
    gate = EnergyGatedVAD(inner, floor_dbfs=-50)
    assert gate.speech_probability(bytes(512)) == 0.0  # digital silence
    assert gate.speech_probability(window_at_dbfs(-60)) == 0.0  # an idle phone line
    assert inner.calls == 0
    assert gate.speech_probability(window_at_dbfs(-45)) == 0.9  # soft speech level: the model runs
    assert (inner.calls, gate.skipped, gate.ran) == (1, 2, 1)


def test_the_floor_is_where_it_says() -> None:
    gate = EnergyGatedVAD(CountingVAD(), floor_dbfs=-50)
    assert gate.speech_probability(window_at_dbfs(-50.5)) == 0.0
    assert gate.speech_probability(window_at_dbfs(-49.5)) == 0.9
    assert gate.level_floor == pytest.approx(32768 * 10 ** (-50 / 20))


def test_the_model_state_is_reset_after_a_quiet_stretch() -> None:
    inner = CountingVAD()
    gate = EnergyGatedVAD(inner, reset_after=3)
    loud = window_at_dbfs(-20)
    gate.speech_probability(loud)
    for _ in range(2):
        gate.speech_probability(bytes(512))
    assert inner.resets == 0  # a short gap keeps the state
    gate.speech_probability(loud)
    for _ in range(10):
        gate.speech_probability(bytes(512))
    assert inner.resets == 1  # once per quiet stretch, not per window
    gate.reset()
    assert inner.resets == 2


def test_a_floor_at_or_above_full_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="below 0 dBFS"):
        EnergyGatedVAD(CountingVAD(), floor_dbfs=0)


@pytest.mark.parametrize("noise_rms", [0.0, 10.0, 30.0])  # silence, -70 and -61 dBFS line noise
def test_turns_are_the_same_with_and_without_the_gate(espeak_audio, noise_rms: float) -> None:  # noqa: F811
    """Same onset; the end may come earlier, never before the speech really ends: below the floor
    the gate says 0 at once, where the recurrent model decays over a few windows after speech."""
    speech = Speech(*espeak_audio, rate=8000, noise_rms=noise_rms)
    plain = push_in_frames(TurnDetector(SharedSileroVAD(8000), TurnOptions()), speech.pcm, SLIN8)
    gate = EnergyGatedVAD(SharedSileroVAD(8000))
    gated = push_in_frames(TurnDetector(gate, TurnOptions()), speech.pcm, SLIN8)
    assert [type(e) for e in gated] == [type(e) for e in plain] and len(plain) == 2
    (p_start, p_end), (g_start, g_end) = plain, gated
    assert (g_start.at_ms, g_start.detected_at_ms) == (p_start.at_ms, p_start.detected_at_ms)
    assert p_end.at_ms - 160 <= g_end.at_ms <= p_end.at_ms, (p_end, g_end)
    assert g_end.at_ms >= speech.end_ms - 32, (g_end.at_ms, speech.end_ms)  # no speech cut off
    # The padding (2.5 s of the 5 s) was quiet: most of it never reached the model.
    assert gate.skipped > 0.4 * (gate.skipped + gate.ran), (gate.skipped, gate.ran)
