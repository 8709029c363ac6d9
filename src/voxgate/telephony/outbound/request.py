"""What to dial and what came of it: statuses, requests, outcomes, dial strings."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_LOG = "voxgate.telephony.outbound"

AmdResult = Literal["human", "machine", "notsure"]


class CallStatus(StrEnum):
    QUEUED = "queued"  # waiting for a slot and a rate token (also between retry attempts)
    DIALING = "dialing"
    ANSWERED = "answered"  # answered by a person (or AMD unsure); the agent is talking
    MACHINE = "machine"  # answered by an answering machine; voicemail drop or hangup under way
    DONE = "done"  # an answered call has ended
    FAILED = "failed"
    BUSY = "busy"  # final only when `OutboundCall.finished`; else a retry is pending
    NO_ANSWER = "no_answer"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset(
    {CallStatus.DONE, CallStatus.FAILED, CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.CANCELLED}
)


class OutboundQueueFull(RuntimeError):
    """`submit` while `max_queued` calls already wait."""


class OutboundQueueClosed(RuntimeError):
    """`submit` after `close()`."""


# --- request and outcome ------------------------------------------------------------------------

_NUMBER = re.compile(r"\+?[0-9*#]{1,32}")
_NUMBER_PUNCT = re.compile(r"[\s\-().]")


def dial_endpoint(to: str, template: str) -> str:
    """'PJSIP/1000' stays as is; a number such as '+1 (555) 123-4567' fills `template`'s {number}."""
    to = to.strip()
    if "/" in to:
        return to
    number = _NUMBER_PUNCT.sub("", to)
    if not _NUMBER.fullmatch(number):
        raise ValueError(
            f"outbound 'to' {to!r} is neither an endpoint (TECH/RESOURCE, e.g. PJSIP/1000) nor a phone "
            "number (digits, optional leading +)"
        )
    if "{number}" not in template:
        raise ValueError(f"endpoint template {template!r} has no {{number}} placeholder")
    return template.format(number=number)


class OutboundRequest(BaseModel):
    """One call to place. `endpoint` is filled by the queue from `to` and its endpoint template."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    to: str = Field(min_length=1)
    endpoint: str | None = None
    caller_id: str | None = None  # ARI callerId, e.g. '"Clinic" <+15551230000>'
    agent: str | None = None
    handler: Callable[..., Any] | None = Field(default=None, exclude=True)
    variables: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0)  # ring timeout
    max_attempts: int = Field(default=1, ge=1)  # dials in all, counting retries on busy / no answer
    retry_after_s: float = Field(default=60.0, ge=0)
    voicemail_drop: str | None = None  # said after the beep when a machine answers, then hang up

    @model_validator(mode="after")
    def _one_talker(self) -> OutboundRequest:
        if (self.agent is None) == (self.handler is None):
            raise ValueError("an outbound request needs exactly one of 'agent' (a name) or 'handler'")
        return self


OutcomeKind = Literal["answered", "machine", "busy", "no_answer", "failed"]


@dataclass
class CallOutcome:
    """What `originate` reports once the dial attempt is settled.

    For answered calls `wait_ended` completes when the call is over (the slot is held until then)
    and `hangup` lets the queue end the call on `cancel()`/`close()`. A cancelled `originate`
    must hang up its own half-dialled channel.
    """

    kind: OutcomeKind
    cause: str | None = None  # for failed: e.g. 'congestion', 'unallocated', 'ari 400: ...'
    channel_id: str | None = None
    wait_ended: Awaitable[Any] | None = None
    hangup: Callable[[], Awaitable[Any]] | None = None
    amd: AmdResult | None = None

    @classmethod
    def answered(
        cls,
        wait_ended: Awaitable[Any] | None = None,
        *,
        hangup: Callable[[], Awaitable[Any]] | None = None,
        channel_id: str | None = None,
        amd: AmdResult | None = None,
    ) -> CallOutcome:
        kind: OutcomeKind = "machine" if amd == "machine" else "answered"
        return cls(kind, None, channel_id, wait_ended, hangup, amd)

    @classmethod
    def busy(cls) -> CallOutcome:
        return cls("busy", "busy")

    @classmethod
    def no_answer(cls) -> CallOutcome:
        return cls("no_answer", "no_answer")

    @classmethod
    def failed(cls, cause: str) -> CallOutcome:
        return cls("failed", cause)
