"""Fallback wrappers: try providers in order, skip a failed one for a cool-down, then try it again.

A provider that fails before its first item (after its own retries, see `resilience`) hands the
request to the next one. Once items went out, a failure is raised: a reply cannot be replayed.
When every provider fails, `FallbackError` names each cause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any, Generic, TypeVar

from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.base import (
    LLM,
    STT,
    TTS,
    ChatMessage,
    LLMEvent,
    ProviderError,
    SpeechEvent,
    STTStream,
    ToolSpec,
    provider_name,
    warm_up,
)
from voxgate.providers.resilience import ConnectOptions, aclose_quietly, resilient_stream

P = TypeVar("P")
T = TypeVar("T")

log = logging.getLogger("voxgate.providers")

DEFAULT_COOLDOWN_S = 30.0


class FallbackError(ProviderError):
    """Every provider in a fallback list failed; `causes` holds each one's error, in order tried."""

    def __init__(self, kind: str, causes: Sequence[ProviderError]) -> None:
        detail = "; ".join(f"[{e.provider}] {e.message}" for e in causes)
        super().__init__(
            f"fallback {kind}",
            f"all {len(causes)} providers failed: {detail}",
            retryable=any(e.retryable for e in causes),
        )
        self.causes = list(causes)


class ProviderPool(Generic[P]):
    """An ordered list of providers with per-provider cool-down after a failure.

    Providers cooling down are skipped, but still tried last rather than failing a request
    without trying them.
    """

    def __init__(
        self,
        kind: str,
        providers: Sequence[P],
        *,
        cooldown: float = DEFAULT_COOLDOWN_S,
        options: ConnectOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError(f"a fallback {kind} needs at least one provider")
        self.kind = kind
        self.providers = list(providers)
        self.cooldown = cooldown
        self.options = options or ConnectOptions()
        self._clock = clock
        self._down_until: dict[int, float] = {}

    def order(self) -> list[int]:
        """Indexes to try: healthy providers in list order, then those cooling down."""
        now = self._clock()
        up = [i for i in range(len(self.providers)) if self._down_until.get(i, 0.0) <= now]
        return up + [i for i in range(len(self.providers)) if i not in up]

    def _failed(self, index: int, name: str, err: ProviderError) -> None:
        self._down_until[index] = self._clock() + self.cooldown
        log.warning(
            "%s %s failed (%s); skipping it for %g s",
            self.kind,
            name,
            err.message,
            self.cooldown,
            extra={"provider": name, "provider_kind": self.kind},
        )

    def _served(self, index: int, position: int, name: str) -> None:
        self._down_until.pop(index, None)
        log.log(
            logging.DEBUG if position == 0 else logging.INFO,
            "%s served by %s",
            self.kind,
            name,
            extra={"provider": name, "provider_kind": self.kind, "fallback_position": position},
        )

    async def stream(
        self, open_for: Callable[[P], AsyncIterator[T]], *, gate: asyncio.Event | None = None
    ) -> AsyncIterator[T]:
        """Items from the first provider that produces one (each wrapped in `resilient_stream`;
        `gate`: its clocks start once that is set)."""
        causes: list[ProviderError] = []
        for position, index in enumerate(self.order()):
            provider = self.providers[index]
            name = provider_name(provider)
            items = resilient_stream(lambda p=provider: open_for(p), self.options, provider=name, gate=gate)
            async with aclosing(items):
                try:
                    first = await anext(items)
                except StopAsyncIteration:
                    self._served(index, position, name)
                    return
                except ProviderError as err:
                    causes.append(err)
                    self._failed(index, name, err)
                    continue
                self._served(index, position, name)
                yield first
                try:
                    async for item in items:
                        yield item
                except ProviderError as err:
                    self._failed(index, name, err)
                    raise
                return
        raise FallbackError(self.kind, causes)


def _names(providers: Sequence[object]) -> str:
    return f"fallback({','.join(provider_name(p) for p in providers)})"


class _Fallback(Generic[P]):
    """What every fallback wrapper shares: a `ProviderPool` of one kind, and its name."""

    kind: str

    def __init__(
        self,
        providers: Sequence[P],
        *,
        cooldown: float = DEFAULT_COOLDOWN_S,
        options: ConnectOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool: ProviderPool[P] = ProviderPool(
            self.kind, providers, cooldown=cooldown, options=options, clock=clock
        )
        self.name = _names(providers)

    async def warm_up(self) -> None:
        """Warm every provider of the list; one that fails is logged and fails over later."""
        for provider in self.pool.providers:
            try:
                await warm_up(provider)
            except Exception as exc:
                log.warning("warming up %s failed: %s", provider_name(provider), exc)


class FallbackLLM(_Fallback[LLM]):
    """An `LLM` over several LLMs."""

    kind = "llm"

    def chat(self, messages: list[ChatMessage], tools: Sequence[ToolSpec] = ()) -> AsyncIterator[LLMEvent]:
        return self.pool.stream(lambda llm: llm.chat(messages, tools))


async def _converted(
    frames: AsyncIterator[AudioFrame], converter: AudioConverter
) -> AsyncIterator[AudioFrame]:
    async with aclosing(frames):
        async for frame in frames:
            yield converter.frame(frame)
    if not converter.passthrough and (tail := converter.convert(b"", last=True)):
        yield AudioFrame(tail, converter.dst)


class FallbackTTS(_Fallback[TTS]):
    """A `TTS` over several TTSs; audio from any of them comes out in the first one's format."""

    kind = "tts"

    def __init__(self, providers: Sequence[TTS], **pool_options: Any) -> None:
        super().__init__(providers, **pool_options)
        self.output_format: AudioFormat = providers[0].output_format

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        return self.pool.stream(
            lambda tts: _converted(
                tts.synthesize(text), AudioConverter(tts.output_format, self.output_format)
            )
        )


class FallbackSTT(_Fallback[STT]):
    """An `STT` over several STTs, taking audio in the first one's format.

    Each stream keeps its audio until the first event comes out, so a provider that fails
    before answering is replaced by the next one with the whole utterance replayed.
    `streams_during_speech` is the first provider's: whether the runner feeds audio as it comes.
    """

    kind = "stt"

    def __init__(self, providers: Sequence[STT], **pool_options: Any) -> None:
        super().__init__(providers, **pool_options)
        self.input_format: AudioFormat = providers[0].input_format
        self.streams_during_speech: bool = getattr(providers[0], "streams_during_speech", False) is True

    def stream(self) -> STTStream:
        return _FallbackSTTStream(self.pool, self.input_format)


class _FallbackSTTStream:
    def __init__(self, pool: ProviderPool[STT], input_format: AudioFormat) -> None:
        self._pool = pool
        self.input_format = input_format
        self._kept: list[AudioFrame] = []  # until the first event: replayed to a replacement
        self._keep = True
        self._ended = False
        self._current: tuple[STTStream, AudioConverter] | None = None
        self._events: AsyncIterator[SpeechEvent] | None = None
        self._input_done = asyncio.Event()  # timeouts count from here: the caller may talk long

    def push_audio(self, frame: AudioFrame) -> None:
        if frame.format != self.input_format:
            raise ValueError(f"this STT takes {self.input_format} audio, got a {frame.format} frame")
        if self._ended:
            raise RuntimeError("push_audio() after end_input(): open a new stream for the next utterance")
        if self._keep:
            self._kept.append(frame)
        if self._current is not None:
            stream, converter = self._current
            stream.push_audio(converter.frame(frame))

    def end_input(self) -> None:
        self._ended = True
        self._input_done.set()
        if self._current is not None:
            self._end(*self._current)

    @staticmethod
    def _end(stream: STTStream, converter: AudioConverter) -> None:
        if not converter.passthrough and (tail := converter.convert(b"", last=True)):
            stream.push_audio(AudioFrame(tail, converter.dst))
        stream.end_input()

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        if self._events is None:
            self._events = self._run()
        return self._events

    async def _run(self) -> AsyncIterator[SpeechEvent]:
        async with aclosing(self._pool.stream(self._open, gate=self._input_done)) as events:
            async for event in events:
                self._keep = False
                self._kept.clear()
                yield event

    async def _open(self, stt: STT) -> AsyncIterator[SpeechEvent]:
        stream = stt.stream()
        converter = AudioConverter(self.input_format, stt.input_format)
        try:
            for frame in self._kept:
                stream.push_audio(converter.frame(frame))
            self._current = (stream, converter)
            if self._ended:
                self._end(stream, converter)
            async for event in stream:
                yield event
        finally:
            if self._current is not None and self._current[0] is stream:
                self._current = None
            await stream.aclose()

    async def aclose(self) -> None:
        self._ended = True
        self._kept.clear()
        if self._events is not None:
            await aclose_quietly(self._events, "fallback stt")
        if self._current is not None:
            await self._current[0].aclose()
            self._current = None
