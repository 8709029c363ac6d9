"""Scripted fake providers on a timeline, to test agents without models or network.

Each fake plays back what it is told with the delays it is told, can fail (`fail_times`
attempts, or always while `broken`), or stall forever after some output (to exercise the
watchdog). `active` counts streams in flight: it is back to 0 only if every stream was closed.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from voxgate.audio.convert import convert_all
from voxgate.audio.format import SLIN8, AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    ProviderError,
    SpeechEvent,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
    Usage,
)


class _Script:
    """Shared failure/stall switches and stream accounting."""

    name: str

    def __init__(self, *, fail_times: int = 0, broken: bool = False, stall_after: int | None = None) -> None:
        self.fail_times = fail_times
        self.broken = broken
        self.stall_after = stall_after
        self.attempts = 0
        self.active = 0
        self.closed = 0

    def _maybe_fail(self) -> None:
        self.attempts += 1
        if self.broken:
            raise ProviderError(self.name, "scripted failure (broken)", retryable=True)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ProviderError(self.name, "scripted failure", retryable=True)

    async def _maybe_stall(self, produced: int) -> None:
        if self.stall_after is not None and produced >= self.stall_after:
            await asyncio.Event().wait()  # a provider that stops answering; only cancellation ends it


@dataclass(frozen=True)
class Reply:
    """One scripted LLM reply: text (streamed word by word) and/or tool calls."""

    text: str = ""
    tool_calls: Sequence[ToolCallEvent] = field(default_factory=tuple)


_TOKEN = re.compile(r"\s*\S+")


class ScriptedLLM(_Script):
    """Plays `replies` in order, one per `chat()` call; records the messages it was given."""

    def __init__(
        self,
        replies: Sequence[Reply | str] = (),
        *,
        first_token_delay: float = 0.0,
        token_delay: float = 0.0,
        name: str = "scripted-llm",
        fail_times: int = 0,
        broken: bool = False,
        stall_after: int | None = None,
    ) -> None:
        super().__init__(fail_times=fail_times, broken=broken, stall_after=stall_after)
        self.name = name
        self.replies = [Reply(r) if isinstance(r, str) else r for r in replies]
        self.first_token_delay = first_token_delay
        self.token_delay = token_delay
        self.calls: list[list[ChatMessage]] = []

    async def chat(
        self, messages: list[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMEvent]:
        self.active += 1
        try:
            await asyncio.sleep(self.first_token_delay)
            self._maybe_fail()
            if len(self.calls) >= len(self.replies):
                raise ProviderError(
                    self.name, f"no reply #{len(self.calls) + 1} (the script has {len(self.replies)})", False
                )
            reply = self.replies[len(self.calls)]
            self.calls.append(list(messages))
            tokens = _TOKEN.findall(reply.text)
            for i, token in enumerate(tokens):
                await self._maybe_stall(i)
                if i:
                    await asyncio.sleep(self.token_delay)
                yield TextDelta(token)
            for call in reply.tool_calls:
                yield call
            yield LLMDone(Usage(prompt_tokens=len(messages), completion_tokens=len(tokens)))
        finally:
            self.active -= 1
            self.closed += 1


class ScriptedTTS(_Script):
    """Speaks any text as a tone in `output_format`, `ms_per_char` of audio per character.

    Frames are `frame_ms` long; the first comes after `first_audio_delay`, the next ones every
    `frame_delay` s (0: as fast as asked for, like a fast local model).
    """

    def __init__(
        self,
        *,
        output_format: AudioFormat = SLIN8,
        ms_per_char: float = 60.0,
        frame_ms: int = 20,
        first_audio_delay: float = 0.0,
        frame_delay: float = 0.0,
        tone_hz: float = 440.0,
        name: str = "scripted-tts",
        fail_times: int = 0,
        broken: bool = False,
        stall_after: int | None = None,
    ) -> None:
        super().__init__(fail_times=fail_times, broken=broken, stall_after=stall_after)
        self.name = name
        self.output_format = output_format
        self.ms_per_char = ms_per_char
        self.frame_ms = frame_ms
        self.first_audio_delay = first_audio_delay
        self.frame_delay = frame_delay
        self.tone_hz = tone_hz
        self.texts: list[str] = []

    def duration_ms(self, text: str) -> float:
        """Audio length `synthesize(text)` produces, rounded up to whole frames."""
        return math.ceil(len(text.strip()) * self.ms_per_char / self.frame_ms) * self.frame_ms

    def _audio(self, text: str) -> bytes:
        rate = self.output_format.sample_rate
        n = int(self.duration_ms(text) * rate / 1000)
        tone = (8000 * np.sin(2 * np.pi * self.tone_hz * np.arange(n) / rate)).astype("<i2").tobytes()
        return convert_all(tone, AudioFormat(Encoding.PCM16, rate), self.output_format)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        self.active += 1
        try:
            await asyncio.sleep(self.first_audio_delay)
            self._maybe_fail()
            self.texts.append(text)
            audio = self._audio(text)
            step = self.output_format.frame_bytes(self.frame_ms)
            for i, start in enumerate(range(0, len(audio), step)):
                await self._maybe_stall(i)
                if i:
                    await asyncio.sleep(self.frame_delay)
                yield AudioFrame(audio[start : start + step], self.output_format)
        finally:
            self.active -= 1
            self.closed += 1


class ScriptedSTT(_Script):
    """Answers each stream (one utterance) with the next transcript, `delay` s after `end_input()`.

    The runner may open a stream early (`RunnerOptions.early_stt_ms`): a caller who pauses that
    long mid-utterance and then talks on uses up two transcripts.
    """

    def __init__(
        self,
        transcripts: Sequence[str] = (),
        *,
        input_format: AudioFormat = SLIN8,
        delay: float = 0.0,
        interim: bool = False,
        name: str = "scripted-stt",
        fail_times: int = 0,
        broken: bool = False,
    ) -> None:
        super().__init__(fail_times=fail_times, broken=broken)
        self.name = name
        self.transcripts = list(transcripts)
        self.input_format = input_format
        self.delay = delay
        self.interim = interim
        self.heard: list[bytes] = []  # audio of each answered utterance
        self._next = 0

    def stream(self) -> ScriptedSTTStream:
        return ScriptedSTTStream(self)

    def _take(self) -> str:
        if self._next >= len(self.transcripts):
            raise ProviderError(
                self.name, f"no transcript #{self._next + 1} (the script has {len(self.transcripts)})", False
            )
        self._next += 1
        return self.transcripts[self._next - 1]


class ScriptedSTTStream:
    def __init__(self, stt: ScriptedSTT) -> None:
        self._stt = stt
        self.audio = bytearray()
        self._ended = asyncio.Event()
        self._closed = False

    def push_audio(self, frame: AudioFrame) -> None:
        if frame.format != self._stt.input_format:
            raise ValueError(f"{self._stt.name} needs {self._stt.input_format} audio, got {frame.format}")
        self.audio += frame.data

    def end_input(self) -> None:
        self._ended.set()

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SpeechEvent]:
        stt = self._stt
        stt.active += 1
        try:
            await self._ended.wait()
            if self._closed:
                return
            await asyncio.sleep(stt.delay)
            stt._maybe_fail()
            text = stt._take()
            stt.heard.append(bytes(self.audio))
            if stt.interim and " " in text:
                yield SpeechEvent("interim", text.rsplit(" ", 1)[0], confidence=0.5)
            yield SpeechEvent("final", text, confidence=1.0, is_endpoint=True)
        finally:
            stt.active -= 1
            stt.closed += 1

    async def aclose(self) -> None:
        self._closed = True
        self._ended.set()


class ScriptedVAD:
    """Plays `probabilities` one per window (then 0.0); without a script, loud windows are speech."""

    def __init__(
        self,
        probabilities: Sequence[float] | None = None,
        *,
        sample_rate: int = 8000,
        frame_samples: int = 256,
        rms_threshold: float = 500.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.probabilities = None if probabilities is None else list(probabilities)
        self.rms_threshold = rms_threshold
        self.windows = 0
        self.resets = 0

    def speech_probability(self, pcm16: bytes) -> float:
        if len(pcm16) != 2 * self.frame_samples:
            raise ValueError(f"VAD window must be {self.frame_samples} samples, got {len(pcm16) // 2}")
        self.windows += 1
        if self.probabilities is not None:
            return self.probabilities[self.windows - 1] if self.windows <= len(self.probabilities) else 0.0
        pcm = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
        return 1.0 if math.sqrt(float(np.mean(pcm * pcm))) >= self.rms_threshold else 0.0

    def reset(self) -> None:
        self.resets += 1  # the script is a timeline: a reset does not rewind it
