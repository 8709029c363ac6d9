"""The provider seam: small Protocols for STT, LLM, TTS and VAD, and their typed errors.

Every streaming method is an async iterator. Audio-facing providers declare the format they
need or produce (`input_format`, `output_format`, `sample_rate`); the caller converts at the
boundary, and a provider refuses audio in any other format rather than guessing. Timeouts,
retries and watchdogs are not the provider's job: see `voxgate.providers.resilience`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from voxgate.audio.format import AudioFormat, AudioFrame

# --- errors -------------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider failed. `retryable` says whether trying again (or another provider) may help."""

    def __init__(self, provider: str, message: str, retryable: bool = True) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.retryable = retryable


class ProviderTimeout(ProviderError):
    """A provider did not answer in time (first item, or the next item mid-stream)."""


# --- STT ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechEvent:
    """A transcript from STT. `is_endpoint` is set when the provider says the utterance ended."""

    kind: Literal["interim", "final"]
    text: str
    confidence: float | None = None
    is_endpoint: bool = False


@runtime_checkable
class STTStream(Protocol):
    """One utterance's recognition: push audio, call `end_input()`, read events until the end.

    After `end_input()` the provider finishes, yields its last final event(s) and the iteration
    ends. `aclose()` abandons the stream at any point and releases its connection.
    """

    def push_audio(self, frame: AudioFrame) -> None: ...

    def end_input(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[SpeechEvent]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class STT(Protocol):
    """Streaming speech-to-text. `stream()` frames must be in `input_format`."""

    name: str
    input_format: AudioFormat

    def stream(self) -> STTStream: ...


@runtime_checkable
class BatchSTT(Protocol):
    """Whole-utterance speech-to-text (Whisper-like models). Wrap it in `BatchSTTStream`."""

    name: str
    input_format: AudioFormat

    async def transcribe(self, pcm: bytes, fmt: AudioFormat) -> str: ...


# --- LLM ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the LLM may call; `parameters` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """The LLM asks for a tool call; also kept on the assistant `ChatMessage` that made it."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class LLMDone:
    usage: Usage | None = None


LLMEvent = TextDelta | ToolCallEvent | LLMDone

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation context.

    An assistant message carries the `tool_calls` it made; each result comes back as a `tool`
    message whose `tool_call_id` names the call it answers.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCallEvent, ...] = ()
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not {self.role!r}")

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: Sequence[ToolCallEvent] = ()) -> ChatMessage:
        return cls("assistant", content, tuple(tool_calls))

    @classmethod
    def tool_result(cls, tool_call_id: str, content: str) -> ChatMessage:
        return cls("tool", content, tool_call_id=tool_call_id)


@runtime_checkable
class LLM(Protocol):
    """Streaming chat. Implement `chat` as an async generator (`async def` with `yield`).

    A reply is any mix of `TextDelta`s and `ToolCallEvent`s, ended by one `LLMDone`.
    """

    name: str

    def chat(
        self, messages: list[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMEvent]: ...


# --- TTS ----------------------------------------------------------------------------------


@runtime_checkable
class TTS(Protocol):
    """Streaming text-to-speech: frames in `output_format`, first one as early as possible."""

    name: str
    output_format: AudioFormat

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]: ...


# --- VAD ----------------------------------------------------------------------------------


@runtime_checkable
class VAD(Protocol):
    """Voice activity: probability of speech in one window.

    `pcm16` is exactly `frame_samples` int16 little-endian samples at `sample_rate`.
    Synchronous on purpose: a window costs microseconds and runs on every inbound frame.
    """

    sample_rate: int
    frame_samples: int

    def speech_probability(self, pcm16: bytes) -> float: ...

    def reset(self) -> None: ...


async def warm_up(provider: object) -> None:
    """Load `provider`'s model now if it has a `warm_up()` (optional on every provider kind).

    Wrappers (fallbacks, adapters, caches) implement `warm_up()` by warming what they wrap, so
    calling this on the outermost object reaches every model. Failures are the caller's to log.
    """
    warm = getattr(provider, "warm_up", None)
    if warm is not None:
        await warm()


def provider_name(provider: object) -> str:
    """The name a provider logs under: its `name` attribute, else its class name."""
    name = getattr(provider, "name", None)
    return name if isinstance(name, str) and name else type(provider).__name__
