"""What every transport gives the agent: `CallAudio` — inbound frames and events, an output.

A transport turns one network leg (AudioSocket TCP, a carrier WebSocket, a browser) into:
- an async stream of inbound `AudioFrame`s and `Dtmf` events that ends when the call ends;
- an `output` (`OutboundPacer`) that accepts frames in any format, can be cleared at once for
  barge-in and reports how much audio was actually played;
- `hangup()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.audio.pacer import OutboundPacer


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the caller pressed."""

    digit: str


InboundEvent = AudioFrame | Dtmf


@runtime_checkable
class CallAudio(Protocol):
    call_id: str
    output: OutboundPacer

    @property
    def inbound_format(self) -> AudioFormat: ...

    def __aiter__(self) -> InboundStream: ...

    async def hangup(self, reason: str = "agent") -> None: ...


class InboundStream:
    """A cheap single-consumer async stream: producers append without awaiting; the consumer
    wakes once per batch. Ends (StopAsyncIteration) after `close()` once drained."""

    __slots__ = ("_closed", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[InboundEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def put(self, item: InboundEvent) -> None:
        if self._closed:
            return
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        self._closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> InboundStream:
        return self

    async def __anext__(self) -> InboundEvent:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._items.popleft()


def unframed(payload: bytes) -> bytes:
    """The `OutboundPacer` wrap of a transport whose frames need no framing of their own (a
    WebSocket message, an RTP payload whose header is added at send time)."""
    return payload


class CallLeg:
    """The `CallAudio` plumbing every transport's call shares: the inbound stream, the outcome
    the agent left (`"hangup"`, `"transfer:TARGET"`; None: the caller left), the end and its
    cause. A transport sets `_in_format` and `output`, ends the leg in `_end(cause)` (which
    sets `end_cause`, closes `_inbound` and sets `_ended`) and says in `_hang_up` how it hangs
    up on the wire."""

    call_id: str
    output: OutboundPacer
    _in_format: AudioFormat

    def __init__(self) -> None:
        self._inbound = InboundStream()
        self._ended = asyncio.Event()
        self.outcome: str | None = None
        self.end_cause: str | None = None

    @property
    def inbound_format(self) -> AudioFormat:
        return self._in_format

    def __aiter__(self) -> InboundStream:
        return self._inbound

    async def hangup(self, reason: str = "agent hung up") -> None:
        """Hang up the transport's way (`_hang_up`) and wait until the leg has ended."""
        if self.outcome is None:
            self.outcome = "hangup"
        self._hang_up(reason)
        await self._ended.wait()

    def _hang_up(self, reason: str) -> None:
        raise NotImplementedError

    async def transfer(self, target: str) -> None:
        """Record the target (whoever owns the caller's channel sends it there) and end the leg."""
        self.outcome = f"transfer:{target}"
        await self.hangup(f"transfer to {target}")

    async def wait_ended(self) -> None:
        await self._ended.wait()

    @property
    def end_reason(self) -> str:
        """`end_cause` reduced to a short label for metrics."""
        cause = self.end_cause or "active"
        return "connection_lost" if cause.startswith("connection lost") else cause.replace(" ", "_")


async def run_agent_on(
    call: Any, agent: Callable[[Any], Awaitable[None]], log: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    """Run `agent(call)`; a crash is logged, and a call the agent left up is hung up."""
    try:
        await agent(call)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("agent failed; hanging up")
    if call.end_cause is None:
        await call.hangup("agent finished")
