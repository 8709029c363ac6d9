"""The realtime (speech-to-speech) seam: one session per call, audio in, audio and events out.

A `RealtimeProvider` makes a `RealtimeSession` for a call from a `RealtimeConfig`. The session
connects in `start()` (raising `ProviderError` when it cannot: the agent then falls back to its
pipeline), takes the caller's audio with `push_audio()` (in `input_format`, never blocking the
media path), and yields `RealtimeEvent`s until it ends. The bridge (`voxgate.agent.realtime`)
plays `AgentAudio`, runs tool calls and answers them with `send_tool_result()`, and on
`UserSpeechStarted` clears its outbound audio and reports how much of the agent's current item
the caller heard with `interrupted(played_ms)` (OpenAI truncates its memory to that).

A session that dies yields `SessionError(fatal=True)` and ends; it never just goes quiet: a
watchdog in the provider turns a stalled socket into that error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.base import ToolSpec

# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class RealtimeConfig:
    """What a call's session should be. `telephony_format` is the call leg's own format: a
    provider that can speak it natively (G.711 at 8 kHz) uses it and skips every conversion."""

    instructions: str
    telephony_format: AudioFormat
    tools: Sequence[ToolSpec] = ()
    greeting: str | None = None  # spoken first, before the caller says anything
    voice: str | None = None
    language: str = "en"
    call_id: str = "-"  # for logs


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentAudio:
    """Agent speech, in the session's `output_format`. `item_id` names the assistant item it
    belongs to (OpenAI), so a barge-in can say how much of that item was heard."""

    frame: AudioFrame
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class AgentAudioDone:
    """The provider sent all the audio of this reply (playback may still be going on)."""

    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserSpeechStarted:
    """The caller started talking: stop the agent's audio now (barge-in)."""


@dataclass(frozen=True, slots=True)
class UserSpeechStopped:
    pass


@dataclass(frozen=True, slots=True)
class Transcript:
    """Text of a turn: the caller's (`user`) or the agent's (`assistant`); `final` once fixed."""

    role: Literal["user", "assistant"]
    text: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model wants a tool run; answer with `send_tool_result(id, name, output)`."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """A reply finished: status completed / cancelled / failed / incomplete."""

    status: str = "completed"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SessionError:
    """The provider reported an error. `fatal`: the session is over (the bridge falls back)."""

    message: str
    fatal: bool = False
    code: str | None = None


RealtimeEvent = (
    AgentAudio
    | AgentAudioDone
    | UserSpeechStarted
    | UserSpeechStopped
    | Transcript
    | ToolCall
    | ResponseDone
    | SessionError
)


# --- session and provider -------------------------------------------------------------------


@runtime_checkable
class RealtimeSession(Protocol):
    name: str
    input_format: AudioFormat  # what push_audio() takes
    output_format: AudioFormat  # what AgentAudio frames carry

    async def start(self) -> None:
        """Connect and configure; `ProviderError` if the session cannot start."""
        ...

    def push_audio(self, frame: AudioFrame) -> None:
        """The caller's audio (in `input_format`); never blocks, drops nothing while connected."""
        ...

    async def send_tool_result(self, call_id: str, name: str, output: str) -> None: ...

    async def interrupted(self, played_ms: float) -> None:
        """Barge-in: the caller heard `played_ms` of the agent's current item, then talked."""
        ...

    async def send_user_text(self, text: str) -> None:
        """Something the caller did that the model cannot hear (keys pressed), as user text."""
        ...

    def __aiter__(self) -> AsyncIterator[RealtimeEvent]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class RealtimeProvider(Protocol):
    name: str

    def session(self, config: RealtimeConfig) -> RealtimeSession: ...
