"""Turn-taking: VAD + endpointing that turns a caller's audio into speech-start / speech-end events.

`TurnDetector` feeds audio through one `VAD` window by window and applies hysteresis (start at
`activation_threshold`, stay in speech until below `deactivation_threshold`), a minimum speech
length before a turn starts, an endpointing silence, prefix padding and a maximum utterance.
Time is audio time: milliseconds of audio pushed (at the VAD's rate), never the wall clock, so the
same audio always gives the same events. Durations are counted in whole VAD windows (32 ms for
Silero), so each threshold is reached at the first window boundary at or after it.

`BargeInOptions` is the policy the agent runner applies while the agent is talking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import VAD

# --- options ------------------------------------------------------------------------------


class TurnOptions(BaseModel):
    """When the caller's turn starts and ends. Defaults suit 8 kHz phone audio with Silero."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    activation_threshold: float = Field(
        0.5, gt=0, lt=1, description="Speech probability at or above which a window counts as speech"
    )
    deactivation_threshold: float = Field(
        0.35,
        gt=0,
        lt=1,
        description="Once speaking, a window counts as silence only below this probability "
        "(hysteresis: must not exceed activation_threshold)",
    )
    min_speech_ms: int = Field(
        100, ge=0, description="Speech (windows at or above activation, in a row) needed to start a turn"
    )
    min_silence_ms: int = Field(500, ge=0, description="Endpointing: silence after speech that ends the turn")
    prefix_padding_ms: int = Field(
        300, ge=0, description="Audio kept from before the detected speech start, so no onset is clipped"
    )
    max_utterance_ms: int = Field(
        30_000, gt=0, description="A turn is ended here (from its speech start) even if the caller talks on"
    )

    @model_validator(mode="after")
    def _check(self) -> TurnOptions:
        if self.deactivation_threshold > self.activation_threshold:
            raise ValueError(
                f"deactivation_threshold ({self.deactivation_threshold}) must not exceed "
                f"activation_threshold ({self.activation_threshold}); lower it, e.g. to "
                f"{round(self.activation_threshold - 0.15, 2)}"
            )
        if self.max_utterance_ms <= self.min_speech_ms:
            raise ValueError(
                f"max_utterance_ms ({self.max_utterance_ms}) must exceed min_speech_ms ({self.min_speech_ms})"
            )
        return self


DEFAULT_BACKCHANNELS: tuple[str, ...] = (
    "mhm",
    "mm-hmm",
    "mm",
    "hmm",
    "uh-huh",
    "okay",
    "ok",
    "yeah",
    "yep",
    "right",
    "sure",
    "alright",
    "i see",
    "got it",
)
"""Short acknowledgements that never interrupt the agent. "yes" and "no" are left out: they often answer."""


def _backchannel_key(text: str) -> str:
    """Letters only, each run of one letter collapsed: 'Mm-hmm!' → 'mhm', 'Okaaay' → 'okay'."""
    return re.sub(r"(.)\1+", r"\1", re.sub(r"[^a-z]", "", text.lower()))


_MAX_PHRASE_WORDS = 3


def is_backchannel(transcript: str, words: Iterable[str] = DEFAULT_BACKCHANNELS) -> bool:
    """True if the transcript is only backchannels ("Mhm.", "okay, yeah", "Uh huh"), robust to case,
    punctuation, hyphens and stretched letters. An empty transcript is not a backchannel."""
    return _is_backchannel(transcript, frozenset(_backchannel_key(w) for w in words))


def _is_backchannel(transcript: str, keys: frozenset[str]) -> bool:
    tokens = [t for t in re.split(r"[^a-z']+", transcript.lower().replace("-", "")) if t.strip("'")]
    if not tokens:
        return False
    i = 0
    while i < len(tokens):  # greedy: longest phrase first, so "uh huh" and "got it" match as one
        for n in range(min(_MAX_PHRASE_WORDS, len(tokens) - i), 0, -1):
            if _backchannel_key("".join(tokens[i : i + n])) in keys:
                i += n
                break
        else:
            return False
    return True


class BargeInOptions(BaseModel):
    """How the caller may interrupt the agent while it talks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="False: the agent is never interrupted by speech")
    min_speech_ms: int = Field(
        120,
        ge=0,
        description="Caller speech (from its onset) before it pauses the agent; shorter bursts "
        "(coughs, clicks) do not. Keep it low: the agent stops talking only after this, and a "
        "pause that turns out to be no words resumes where it stopped",
    )
    backchannel_words: tuple[str, ...] = Field(
        DEFAULT_BACKCHANNELS,
        description='Utterances made only of these never interrupt ("mhm", "okay"); the agent '
        "resumes as after a false interruption",
    )
    allow_interrupt_greeting: bool = Field(
        True, description="False: the greeting plays to the end whatever the caller says"
    )
    false_interruption_timeout_ms: int | None = Field(
        2000,
        ge=0,
        description="If an interruption yields no words (or only backchannels) within this time, "
        "the agent resumes where it was cut off. None: never resume",
    )

    _keys: frozenset[str] = PrivateAttr(default=frozenset())

    def model_post_init(self, context: object, /) -> None:
        self._keys = frozenset(_backchannel_key(w) for w in self.backchannel_words)

    def is_backchannel(self, transcript: str) -> bool:
        """`is_backchannel` with this policy's word list."""
        return _is_backchannel(transcript, self._keys)


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started talking. `at_ms` is the speech onset (first speech window); the
    decision was taken at `detected_at_ms`, once `min_speech_ms` of speech was heard."""

    at_ms: float
    detected_at_ms: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The caller's turn ended.

    `at_ms` is the end of the last speech window, `duration_ms` the speech from onset to there.
    `audio` is pcm16 at the VAD's rate from `audio_start_ms` (the onset minus prefix padding, as
    far as audio existed) up to `detected_at_ms`, the endpoint decision, so it ends with the
    endpointing silence. `reason` is "silence", "max_utterance" or "flush" (end of stream).
    """

    at_ms: float
    audio: bytes
    duration_ms: float
    started_at_ms: float
    detected_at_ms: float
    audio_start_ms: float
    reason: Literal["silence", "max_utterance", "flush"] = "silence"


TurnEvent = SpeechStarted | SpeechEnded


# --- detector -----------------------------------------------------------------------------


class TurnDetector:
    """Caller speech start/end from inbound audio; one per call, fed from one task.

    `speaking` is True between SpeechStarted and SpeechEnded; `probability` is the VAD's value
    for the last window. Frames may come in any format; the first one fixes it for the stream.
    """

    speaking: bool
    probability: float

    def __init__(self, vad: VAD, options: TurnOptions | None = None) -> None:
        self.vad = vad
        self.options = options or TurnOptions()
        self.format = AudioFormat(Encoding.PCM16, vad.sample_rate)
        self._rate = vad.sample_rate
        self._window_samples = vad.frame_samples
        self._window_bytes = vad.frame_samples * 2
        opts = self.options
        # Thresholds in samples at the VAD rate; compared against whole windows.
        self._min_speech = self._samples(opts.min_speech_ms)
        self._min_silence = self._samples(opts.min_silence_ms)
        self._padding_bytes = self._samples(opts.prefix_padding_ms) * 2
        self._max_utterance = self._samples(opts.max_utterance_ms)
        self._converter: AudioConverter | None = None
        self._pending = bytearray()  # converted audio not yet a whole window
        self._clock = 0  # samples fed to the VAD since the start
        self.probability = 0.0
        self._reset_turn()
        self._preroll = bytearray()

    def _samples(self, ms: int) -> int:
        return -(-ms * self._rate // 1000)  # rounded up

    def _ms(self, samples: int) -> float:
        return samples * 1000 / self._rate

    def _reset_turn(self) -> None:
        self.speaking = False
        self._run_start = -1  # idle: first sample of the current run of speech windows, or -1
        self._speech_start = 0  # speaking: onset sample
        self._speech_end = 0  # speaking: end of the last window at or above deactivation
        self._utterance = bytearray()
        self._utterance_start = 0

    @property
    def now_ms(self) -> float:
        """Audio time: ms of audio the VAD has seen."""
        return self._ms(self._clock)

    @property
    def speech_ms(self) -> float:
        """While speaking, ms from the onset to now (what barge-in's min_speech_ms is compared with)."""
        return self._ms(self._clock - self._speech_start) if self.speaking else 0.0

    @property
    def silence_ms(self) -> float:
        """While speaking, ms of audio since the caller's last speech window (0 otherwise)."""
        return self._ms(self._clock - self._speech_end) if self.speaking else 0.0

    @property
    def speech_end_ms(self) -> float:
        """While speaking, the audio time the caller's last speech window ended."""
        return self._ms(self._speech_end)

    def utterance_so_far(self) -> bytes:
        """While speaking, the turn's audio up to now (what `SpeechEnded.audio` would hold)."""
        return bytes(self._utterance) if self.speaking else b""

    def utterance_since(self, start: int) -> bytes:
        """While speaking, the turn's audio from byte `start` on: what a streaming STT has not
        had yet, without copying the whole turn on every window."""
        return bytes(self._utterance[start:]) if self.speaking else b""

    def push(self, frame: AudioFrame) -> list[TurnEvent]:
        """Feed caller audio of any size; returns the events it completed, in order."""
        if len(frame.data) % frame.format.bytes_per_sample:
            raise ValueError(f"{len(frame.data)} bytes is not a whole number of {frame.format} samples")
        if self._converter is None:
            self._converter = AudioConverter(frame.format, self.format)
        elif frame.format != self._converter.src:
            raise ValueError(
                f"TurnDetector got a {frame.format} frame after {self._converter.src} frames; "
                "call reset() before switching format"
            )
        self._pending += self._converter.convert(frame.data)
        events: list[TurnEvent] = []
        n = self._window_bytes
        while len(self._pending) >= n:
            window = bytes(self._pending[:n])
            del self._pending[:n]
            self._window(window, events)
        return events

    def flush(self) -> list[TurnEvent]:
        """End of the caller's audio (hangup): end an open turn now. A partial window is dropped."""
        self._pending.clear()
        if not self.speaking:
            return []
        return [self._end(self._clock, "flush")]

    def reset(self) -> None:
        """Drop all state (turn, VAD, resampler) but keep the audio clock running."""
        self.vad.reset()
        self._converter = None
        self._pending.clear()
        self._preroll = bytearray()
        self.probability = 0.0
        self._reset_turn()

    def _window(self, window: bytes, events: list[TurnEvent]) -> None:
        opts = self.options
        start = self._clock
        p = self.vad.speech_probability(window)
        self.probability = p
        self._clock += self._window_samples
        now = self._clock
        if self.speaking:
            self._utterance += window
            if p >= opts.deactivation_threshold:
                self._speech_end = now
            if now - self._speech_start >= self._max_utterance:
                events.append(self._end(now, "max_utterance"))
            elif now - self._speech_end >= self._min_silence and now > self._speech_end:
                events.append(self._end(now, "silence"))
            return
        self._preroll += window
        if p >= opts.activation_threshold:
            if self._run_start < 0:
                self._run_start = start
            if now - self._run_start >= self._min_speech:
                self._start(now)
                events.append(SpeechStarted(self._ms(self._speech_start), self._ms(now)))
                return
        else:
            self._run_start = -1
        # Keep the run so far plus the padding before it.
        keep = self._padding_bytes + ((now - self._run_start) * 2 if self._run_start >= 0 else 0)
        if len(self._preroll) > keep:
            del self._preroll[: len(self._preroll) - keep]

    def _start(self, now: int) -> None:
        self.speaking = True
        self._speech_start = self._run_start
        self._speech_end = now
        self._run_start = -1
        self._utterance = self._preroll
        self._utterance_start = now - len(self._preroll) // 2
        self._preroll = bytearray()

    def _end(self, now: int, reason: Literal["silence", "max_utterance", "flush"]) -> SpeechEnded:
        event = SpeechEnded(
            at_ms=self._ms(self._speech_end),
            audio=bytes(self._utterance),
            duration_ms=self._ms(self._speech_end - self._speech_start),
            started_at_ms=self._ms(self._speech_start),
            detected_at_ms=self._ms(now),
            audio_start_ms=self._ms(self._utterance_start),
            reason=reason,
        )
        tail = self._utterance[-self._padding_bytes :] if self._padding_bytes else b""
        self._reset_turn()
        self._preroll = bytearray(tail)  # the next turn's padding may reach back into this one
        return event
