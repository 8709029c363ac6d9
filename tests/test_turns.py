"""TurnDetector against a scripted VAD (exact timings), the options' validation, and backchannels.

The scripted VAD uses 20 ms windows (160 samples at 8 kHz) and fills window i's audio with the
sample value i, so the audio a SpeechEnded carries can be checked window by window.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from voxgate.agent.turns import (
    BargeInOptions,
    SpeechEnded,
    SpeechStarted,
    TurnDetector,
    TurnOptions,
    is_backchannel,
)
from voxgate.audio.convert import convert_all
from voxgate.audio.format import SLIN8, SLIN16, ULAW8, AudioFrame
from voxgate.providers.base import VAD

WIN = 160  # samples per scripted window: 20 ms at 8 kHz


class ScriptedVAD:
    """Returns the scripted probabilities in order (then 0.0) and records the windows it saw."""

    def __init__(self, probabilities: list[float], sample_rate: int = 8000, frame_samples: int = WIN) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self._script = list(probabilities)
        self.windows: list[bytes] = []
        self.resets = 0

    def speech_probability(self, pcm16: bytes) -> float:
        assert len(pcm16) == self.frame_samples * 2
        i = len(self.windows)
        self.windows.append(pcm16)
        return self._script[i] if i < len(self._script) else 0.0

    def reset(self) -> None:
        self.resets += 1


def numbered(n_windows: int) -> bytes:
    """n windows of 8 kHz pcm16 where every sample of window i is i."""
    return np.repeat(np.arange(n_windows, dtype="<i2"), WIN).tobytes()


def window_ids(audio: bytes) -> list[int]:
    x = np.frombuffer(audio, dtype="<i2")
    assert len(x) % WIN == 0
    ids = x.reshape(-1, WIN)
    assert (ids == ids[:, :1]).all()
    return ids[:, 0].tolist()


def run(probabilities: list[float], options: TurnOptions, n_windows: int | None = None) -> list:
    n = n_windows if n_windows is not None else len(probabilities)
    det = TurnDetector(ScriptedVAD(probabilities), options)
    return det.push(AudioFrame(numbered(n), SLIN8))


OPTS = TurnOptions(
    activation_threshold=0.5,
    deactivation_threshold=0.35,
    min_speech_ms=60,  # 3 windows
    min_silence_ms=100,  # 5 windows
    prefix_padding_ms=40,  # 2 windows
    max_utterance_ms=10_000,
)


def test_scripted_vad_is_a_vad() -> None:
    assert isinstance(ScriptedVAD([]), VAD)


def test_start_and_end_with_hysteresis_exact_times() -> None:
    # windows 0-1 silence, 2-5 speech, 6-7 between thresholds (still speech), 8.. silence
    probs = [0.1, 0.2, 0.6, 0.9, 0.7, 0.55, 0.4, 0.36, 0.3, 0.1, 0.0, 0.2, 0.34, 0.0]
    events = run(probs, OPTS, 20)
    assert events[0] == SpeechStarted(at_ms=40.0, detected_at_ms=100.0)  # after 3 windows of speech
    end = events[1]
    assert isinstance(end, SpeechEnded) and len(events) == 2
    assert end.at_ms == 160.0  # end of window 7, the last one >= deactivation
    assert end.detected_at_ms == 260.0  # 100 ms of silence later (windows 8-12)
    assert end.started_at_ms == 40.0 and end.duration_ms == 120.0
    assert end.audio_start_ms == 0.0  # 40 ms of padding before window 2
    assert window_ids(end.audio) == list(range(13))  # padding, speech, endpointing silence
    assert end.reason == "silence"


def test_between_thresholds_does_not_start_a_turn() -> None:
    assert run([0.45] * 30, OPTS) == []


def test_speech_shorter_than_min_speech_is_ignored() -> None:
    probs = [0.0, 0.9, 0.9, 0.0, 0.9, 0.9, 0.4, 0.9, 0.9, 0.0, 0.0]  # runs of 2 windows only
    assert run(probs, OPTS) == []


def test_dip_below_deactivation_shorter_than_min_silence_keeps_the_turn() -> None:
    probs = [0.9] * 3 + [0.0] * 4 + [0.9] * 2 + [0.0] * 5
    events = run(probs, OPTS, 20)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert events[1].at_ms == 180.0 and events[1].detected_at_ms == 280.0


def test_prefix_padding_is_exact_and_limited_by_available_audio() -> None:
    probs = [0.0] * 10 + [0.9] * 3 + [0.0] * 5
    (start, end) = run(probs, OPTS.model_copy(update={"prefix_padding_ms": 100}))
    assert start.at_ms == 200.0
    assert end.audio_start_ms == 100.0
    assert window_ids(end.audio) == list(range(5, 18))
    (_, end) = run([0.0] + [0.9] * 3 + [0.0] * 5, OPTS.model_copy(update={"prefix_padding_ms": 100}))
    assert end.audio_start_ms == 0.0 and window_ids(end.audio) == list(range(9))
    (_, end) = run([0.0] * 4 + [0.9] * 3 + [0.0] * 5, OPTS.model_copy(update={"prefix_padding_ms": 0}))
    assert window_ids(end.audio) == list(range(4, 12))


def test_padding_of_a_second_turn_reaches_back_into_the_first() -> None:
    probs = [0.9] * 3 + [0.0] * 5 + [0.9] * 3 + [0.0] * 5
    events = run(probs, OPTS)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    assert window_ids(events[3].audio) == list(range(6, 16))


def test_max_utterance_cuts_the_turn_and_a_new_one_follows() -> None:
    opts = OPTS.model_copy(update={"max_utterance_ms": 200})  # 10 windows
    events = run([0.9] * 20 + [0.0] * 10, opts)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    first = events[1]
    assert first.reason == "max_utterance" and first.detected_at_ms == 200.0 and first.at_ms == 200.0
    assert events[2] == SpeechStarted(at_ms=200.0, detected_at_ms=260.0)
    assert events[3].detected_at_ms == 400.0 and events[3].audio_start_ms == 160.0


def test_speech_ms_and_flush() -> None:
    det = TurnDetector(ScriptedVAD([0.9] * 10), OPTS)
    det.push(AudioFrame(numbered(8), SLIN8))
    assert det.speaking and det.speech_ms == 160.0 and det.now_ms == 160.0
    det.push(AudioFrame(bytes(100), SLIN8))  # a partial window, dropped by flush
    (end,) = det.flush()
    assert end.reason == "flush" and end.detected_at_ms == 160.0 and end.at_ms == 160.0
    assert not det.speaking and det.speech_ms == 0.0 and det.flush() == []


def test_any_frame_size_gives_the_same_events() -> None:
    probs = [0.0, 0.9, 0.9, 0.9, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.9, 0.9, 0.9] + [0.0] * 10
    audio = numbered(len(probs))
    whole = run(probs, OPTS)
    rng = np.random.default_rng(7)
    vad = ScriptedVAD(probs)
    det = TurnDetector(vad, OPTS)
    got, pos = [], 0
    while pos < len(audio):
        n = int(rng.integers(1, 400)) * 2
        got += det.push(AudioFrame(audio[pos : pos + n], SLIN8))
        pos += n
    assert got == whole and len(whole) == 4
    assert b"".join(vad.windows) == audio


@pytest.mark.parametrize("fmt", [ULAW8, SLIN16], ids=str)
def test_other_formats_are_converted_to_the_vad_rate(fmt) -> None:
    vad = ScriptedVAD([])
    det = TurnDetector(vad, OPTS)
    tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2").tobytes()
    data = convert_all(tone, SLIN16, fmt)  # one second
    step = fmt.frame_bytes(20)
    for i in range(0, len(data), step):
        det.push(AudioFrame(data[i : i + step], fmt))
    assert all(len(w) == WIN * 2 for w in vad.windows)
    assert 48 <= len(vad.windows) <= 50  # 1 s of 8 kHz audio, less the resampler's delay
    level = np.abs(np.frombuffer(b"".join(vad.windows[5:45]), dtype="<i2")).max()
    assert 7000 < level < 9000  # a real 440 Hz tone came through, not bytes reinterpreted


def test_format_switch_and_partial_samples_are_refused() -> None:
    det = TurnDetector(ScriptedVAD([]), OPTS)
    det.push(AudioFrame(bytes(320), SLIN8))
    with pytest.raises(ValueError, match="reset"):
        det.push(AudioFrame(bytes(160), ULAW8))
    with pytest.raises(ValueError, match="whole number"):
        det.push(AudioFrame(bytes(321), SLIN8))
    det.reset()
    det.push(AudioFrame(bytes(160), ULAW8))


def test_reset_clears_the_turn_but_keeps_the_clock() -> None:
    vad = ScriptedVAD([0.9] * 10 + [0.0] * 10)
    det = TurnDetector(vad, OPTS)
    assert isinstance(det.push(AudioFrame(numbered(4), SLIN8))[0], SpeechStarted)
    det.reset()
    assert not det.speaking and vad.resets == 1 and det.now_ms == 80.0
    events = det.push(AudioFrame(numbered(3), SLIN8))
    assert events == [SpeechStarted(at_ms=80.0, detected_at_ms=140.0)]


def test_turn_options_defaults_and_validation() -> None:
    opts = TurnOptions()
    assert opts.deactivation_threshold < opts.activation_threshold
    assert opts.min_silence_ms == 500 and opts.prefix_padding_ms == 300
    with pytest.raises(ValidationError, match="deactivation_threshold"):
        TurnOptions(activation_threshold=0.4, deactivation_threshold=0.6)
    with pytest.raises(ValidationError, match="min_silence_msec"):
        TurnOptions(min_silence_msec=300)  # typo: extra fields are refused
    with pytest.raises(ValidationError):
        TurnOptions(activation_threshold=1.5)
    with pytest.raises(ValidationError, match="max_utterance_ms"):
        TurnOptions(min_speech_ms=500, max_utterance_ms=400)


@pytest.mark.parametrize(
    "text",
    ["mhm", "Mhm.", "Mm-hmm!", "mmhmm", "Uh-huh.", "uh huh", "OKAY", "Okaaay...", "ok", "Yeah, right.",
     "yeah yeah", "Right?", "All right.", "Got it.", "I see", "Hmm", "  okay , okay  "],
)  # fmt: skip
def test_backchannels(text: str) -> None:
    assert is_backchannel(text)
    assert BargeInOptions().is_backchannel(text)


@pytest.mark.parametrize(
    "text",
    ["", "  ", "...", "no", "yes", "stop", "wait", "okay so I need to cancel", "yeah but no",
     "right now please", "hello?", "mhm I mean tuesday"],
)  # fmt: skip
def test_not_backchannels(text: str) -> None:
    assert not is_backchannel(text)
    assert not BargeInOptions().is_backchannel(text)


def test_barge_in_options() -> None:
    opts = BargeInOptions()
    assert opts.enabled and opts.allow_interrupt_greeting
    assert opts.min_speech_ms == 120 and opts.false_interruption_timeout_ms == 2000
    custom = BargeInOptions(backchannel_words=("d'accord", "oui"))
    assert custom.is_backchannel("D'accord.") and custom.is_backchannel("oui oui")
    assert not custom.is_backchannel("okay")
    assert is_backchannel("si", words=["sí", "si"])
    with pytest.raises(ValidationError):
        BargeInOptions(min_speech_ms=-1)
