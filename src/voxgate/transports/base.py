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
