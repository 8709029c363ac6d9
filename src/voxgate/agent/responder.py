"""What the agent says back: the `Responder` seam between turn-taking and the "brain".

The runner owns the call (turn-taking, barge-in, speaking, timing); a responder owns what to
say. It gets each caller turn (`UserInput`: a transcript or keys pressed) and yields the reply
as a stream of text pieces and call-control `Action`s, in the order they should happen. Text is
cut into sentences and spoken as it arrives; an action runs after the text before it has been
*queued* (`SendDtmf`) or *played* (`EndCall`, `Transfer`: the goodbye finishes first).

Two responders ship: `LLMResponder` (any `LLM`, tools, `[END_CALL]` markers) and
`FlowResponder` (a YAML flow/FAQ agent that needs no model). Each records the turns it takes in
the `Conversation` it is given; the runner truncates an interrupted reply to what was heard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from voxgate.providers.base import ChatMessage

# --- what the caller did --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserInput:
    """One caller turn: what they said (`text`, the final transcript) or keys they pressed
    (`dtmf`, e.g. "1" or "5551234#"), or both empty for a re-prompt after `silence_ms` of nothing."""

    text: str = ""
    dtmf: str = ""
    silence_ms: int = 0

    def as_message_text(self) -> str:
        """How this turn reads in the chat context."""
        if self.dtmf and self.text:
            return f"{self.text} [pressed keys: {self.dtmf}]"
        if self.dtmf:
            return f"[pressed keys: {self.dtmf}]"
        if not self.text and self.silence_ms:
            return f"[caller silent for {self.silence_ms / 1000:.0f} s]"
        return self.text


# --- what the agent does besides talking ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndCall:
    """Hang up once everything said before it has played. `reason` goes to the call record."""

    reason: str = "agent ended the call"


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the caller to `target` (an extension, queue or endpoint) once the text before it has
    played. On the AudioSocket-only path the dialplan continues at its next priority."""

    target: str


@dataclass(frozen=True, slots=True)
class SendDtmf:
    """Send keys to the far end (e.g. to drive an IVR), after the text before it is queued."""

    digits: str


Action = EndCall | Transfer | SendDtmf
ResponseItem = str | Action


# --- the conversation context ---------------------------------------------------------------


class Conversation:
    """The chat context of one call, shared by the runner and the responder.

    Responders append; the runner calls `truncate_reply(mark, heard)` when the caller cut the
    agent off, so the next LLM call sees only what the caller actually heard.
    """

    def __init__(self, system_prompt: str | None = None) -> None:
        self.messages: list[ChatMessage] = []
        if system_prompt:
            self.messages.append(ChatMessage.system(system_prompt))

    def mark(self) -> int:
        """A position to truncate back to: the index the next message will have."""
        return len(self.messages)

    def add(self, message: ChatMessage) -> None:
        self.messages.append(message)

    def add_user(self, text: str) -> None:
        """Add the caller's turn. If the agent's reply to the previous one was cut off before a
        word was heard, the caller simply went on talking: both join into one message."""
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "user":
            self.messages[-1] = ChatMessage.user(f"{last.content} {text}".strip())
        else:
            self.messages.append(ChatMessage.user(text))

    def add_assistant(self, text: str) -> None:
        if text:
            self.messages.append(ChatMessage.assistant(text))

    def truncate_reply(self, mark: int, heard: str) -> None:
        """Cut the assistant text added since `mark` to `heard` (a prefix of what was said).

        Assistant messages are walked in order and keep as much of `heard` as they cover; the
        rest of the text is dropped, and a message left with no text and no tool calls goes.
        Tool calls and their results stay: they happened even if their words were not heard.
        """
        budget = " ".join(heard.split())
        kept: list[ChatMessage] = self.messages[:mark]
        for message in self.messages[mark:]:
            if message.role != "assistant" or not message.content:
                kept.append(message)
                continue
            content = " ".join(message.content.split())
            if len(content) <= len(budget) and budget.startswith(content):
                budget = budget[len(content) :].lstrip()
                kept.append(message)
                continue
            text, budget = _common_prefix_words(content, budget), ""
            if text or message.tool_calls:
                kept.append(ChatMessage.assistant(text, message.tool_calls))
        self.messages[:] = kept


def _common_prefix_words(said: str, heard: str) -> str:
    """The words of `said` that `heard` starts with (whole words only)."""
    out: list[str] = []
    heard_words = heard.split()
    for i, word in enumerate(said.split()):
        if i >= len(heard_words) or heard_words[i] != word:
            break
        out.append(word)
    return " ".join(out)


@runtime_checkable
class Responder(Protocol):
    """The brain of one call (a new one per call: it may keep per-call state)."""

    name: str

    def greeting(self) -> str | None:
        """What to say when the call starts (None: wait for the caller)."""
        ...

    def respond(self, turn: UserInput, conversation: Conversation) -> AsyncIterator[ResponseItem]:
        """The reply to one caller turn, as text pieces and actions. Implement as an async
        generator. The runner may cancel it at any point (barge-in); it must record in
        `conversation` what it produced so far, e.g. in a `finally:`."""
        ...
