"""The outbound queue: rate limit, concurrency cap, bounded queue, retries, cancel and close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from voxgate.log import call_logger
from voxgate.telephony.outbound.rate import TokenBucket
from voxgate.telephony.outbound.request import (
    _LOG,
    CallOutcome,
    CallStatus,
    OutboundQueueClosed,
    OutboundQueueFull,
    OutboundRequest,
    dial_endpoint,
)

# --- queue --------------------------------------------------------------------------------------


@dataclass
class OutboundStats:
    """Counters for metrics; `queued` and `in_flight` are gauges taken at read time."""

    submitted: int = 0
    rejected_full: int = 0
    started: int = 0  # dial attempts, retries included
    answered: int = 0
    machine: int = 0
    busy: int = 0
    no_answer: int = 0
    retries: int = 0
    cancelled: int = 0
    failed_by_cause: dict[str, int] = field(default_factory=dict)
    rate_limited_waits: int = 0  # dials that had to wait for a token
    rate_limited_wait_s: float = 0.0
    queued: int = 0
    in_flight: int = 0


class OutboundCall:
    """Handle on a submitted call: `status`, `await wait()`, `cancel()`."""

    def __init__(self, request: OutboundRequest, queue: OutboundQueue) -> None:
        self.request = request
        self.status = CallStatus.QUEUED
        self.attempts = 0
        self.outcome: CallOutcome | None = None  # of the latest attempt
        self.cause: str | None = None  # why it failed / was cancelled
        self._queue = queue
        self._finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._cancel_requested = False
        self._log = call_logger(_LOG, request.id)

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    async def wait(self) -> CallStatus:
        """Wait for the final status: done, failed, busy, no_answer or cancelled."""
        await self._finished.wait()
        return self.status

    def cancel(self) -> bool:
        """Drop a queued call, or hang up one being dialled or talking. False if already finished."""
        return self._queue._cancel(self)

    def __repr__(self) -> str:
        return f"OutboundCall({self.id}, {self.status.value}, attempts={self.attempts})"


class OutboundQueue:
    """Places calls through `originate`, at most `calls_per_second` starts (token bucket with
    `burst`), at most `max_concurrent` calls from dial to hangup, at most `max_queued` waiting."""

    def __init__(
        self,
        originate: Callable[[OutboundRequest], Awaitable[CallOutcome]],
        *,
        calls_per_second: float,
        max_concurrent: int,
        max_queued: int,
        burst: int = 1,
        endpoint_template: str = "PJSIP/{number}",
        dial_grace_s: float = 15.0,
        hangup_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent < 1 or max_queued < 1:
            raise ValueError(f"max_concurrent ({max_concurrent}) and max_queued ({max_queued}) must be >= 1")
        self._originate = originate
        self._bucket = TokenBucket(calls_per_second, burst, clock=clock)
        self._max_queued = max_queued
        self._endpoint_template = endpoint_template
        self._dial_grace_s = dial_grace_s  # originate must settle within timeout_s + this
        self._hangup_timeout_s = hangup_timeout_s
        self._slots = asyncio.Semaphore(max_concurrent)
        self._ready: dict[str, OutboundCall] = {}  # FIFO: dicts keep insertion order
        self._retrying: dict[str, OutboundCall] = {}
        self._in_flight: dict[str, OutboundCall] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False
        self._stats = OutboundStats()

    @property
    def stats(self) -> OutboundStats:
        s = self._stats
        snapshot = OutboundStats(**{**s.__dict__, "failed_by_cause": dict(s.failed_by_cause)})
        snapshot.queued = len(self._ready) + len(self._retrying)
        snapshot.in_flight = len(self._in_flight)
        return snapshot

    def submit(self, request: OutboundRequest) -> OutboundCall:
        if self._closed:
            raise OutboundQueueClosed(
                f"outbound queue is closed; call {request.id} to {request.to} not placed"
            )
        waiting = len(self._ready) + len(self._retrying)
        if waiting >= self._max_queued:
            self._stats.rejected_full += 1
            raise OutboundQueueFull(
                f"outbound queue full: {waiting} calls waiting (max_queued={self._max_queued}); "
                f"call {request.id} to {request.to} not placed — retry later or raise max_queued"
            )
        if any(request.id in d for d in (self._ready, self._retrying, self._in_flight)):
            raise ValueError(f"outbound call id {request.id} is already queued or in progress")
        endpoint = request.endpoint or dial_endpoint(request.to, self._endpoint_template)
        call = OutboundCall(request.model_copy(update={"endpoint": endpoint}), self)
        self._stats.submitted += 1
        self._enqueue(call)
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        call._log.info("outbound call queued to %s", endpoint)
        return call

    async def close(self, *, cancel_in_flight: bool = False, drain_s: float | None = None) -> None:
        """Stop accepting, cancel queued calls, then let calls in progress finish (for at most
        `drain_s` s when given, then hang up the rest) or, with `cancel_in_flight`, hang up now."""
        self._closed = True
        for call in [*self._ready.values(), *self._retrying.values()]:
            self._cancel(call)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.wait({self._dispatcher})  # unlike `await`, keeps a cancel of close() itself
        tasks = [c._task for c in self._in_flight.values() if c._task is not None]
        if tasks and not cancel_in_flight:
            await asyncio.wait(tasks, timeout=drain_s)
        for call in list(self._in_flight.values()):
            self._cancel(call)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> OutboundQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- internals ---

    def _enqueue(self, call: OutboundCall) -> None:
        call.status = CallStatus.QUEUED
        self._ready[call.id] = call
        self._wake.set()

    def _requeue(self, call: OutboundCall) -> None:
        self._retrying.pop(call.id, None)
        call._retry = None
        self._stats.retries += 1
        self._enqueue(call)

    def _finish(self, call: OutboundCall, status: CallStatus, cause: str | None = None) -> None:
        call.status = status
        call.cause = cause
        if status is CallStatus.CANCELLED:
            self._stats.cancelled += 1
        elif status is CallStatus.FAILED:
            key = cause or "unknown"
            self._stats.failed_by_cause[key] = self._stats.failed_by_cause.get(key, 0) + 1
        call._finished.set()
        call._log.info(
            "outbound call %s after %d attempt(s)%s",
            status.value,
            call.attempts,
            f": {cause}" if cause else "",
        )

    def _cancel(self, call: OutboundCall) -> bool:
        if call.finished or call._cancel_requested:
            return False
        call._cancel_requested = True
        if self._ready.pop(call.id, None) is not None:
            self._finish(call, CallStatus.CANCELLED, "cancelled while queued")
        elif self._retrying.pop(call.id, None) is not None:
            if call._retry is not None:
                call._retry.cancel()
            self._finish(call, CallStatus.CANCELLED, "cancelled while waiting to retry")
        elif call._task is not None:
            call._task.cancel()  # `_run` hangs up and finishes it as cancelled
        return True

    async def _dispatch(self) -> None:
        """One loop starts every call: wait for a queued call, a free slot, then a rate token."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._ready:
                self._wake.clear()
                await self._wake.wait()
            await self._slots.acquire()
            try:
                waited_from = None
                while (delay := self._bucket.take()) > 0:
                    if waited_from is None:
                        waited_from = loop.time()
                        self._stats.rate_limited_waits += 1
                    await asyncio.sleep(delay)
                if waited_from is not None:
                    self._stats.rate_limited_wait_s += loop.time() - waited_from
            except BaseException:
                self._slots.release()
                raise
            if not self._ready:  # the waiting calls were cancelled meanwhile
                self._bucket.give_back()
                self._slots.release()
                continue
            call = self._ready.pop(next(iter(self._ready)))
            self._in_flight[call.id] = call
            call._task = loop.create_task(self._run(call), name=f"outbound-{call.id}")
            call._task.add_done_callback(lambda _t, c=call: self._task_done(c))

    async def _run(self, call: OutboundCall) -> None:
        """One dial attempt; the slot is released by `_task_done` once the call has ended."""
        try:
            await self._attempt(call)
        except asyncio.CancelledError:
            if not call._cancel_requested:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if not call.finished:
                self._finish(call, CallStatus.CANCELLED, f"cancelled while {call.status.value}")
        except Exception as e:  # a bug here must not leave wait() hanging
            call._log.exception("outbound call crashed")
            if not call.finished:
                self._finish(call, CallStatus.FAILED, f"internal error: {type(e).__name__}")

    def _task_done(self, call: OutboundCall) -> None:
        # A done callback, not a `finally`: a task cancelled before its first step never runs `_run`.
        self._in_flight.pop(call.id, None)
        self._slots.release()
        if not call.finished and call.id not in self._retrying:
            self._finish(call, CallStatus.CANCELLED, "cancelled before dialling")

    async def _attempt(self, call: OutboundCall) -> None:
        req = call.request
        call.attempts += 1
        call.status = CallStatus.DIALING
        self._stats.started += 1
        call._log.info("dialling %s (attempt %d/%d)", req.endpoint, call.attempts, req.max_attempts)
        try:
            async with asyncio.timeout(req.timeout_s + self._dial_grace_s):
                outcome = await self._originate(req)
        except TimeoutError:
            outcome = CallOutcome.failed("originate_timeout")
        except Exception as e:  # not CancelledError (a BaseException): that ends the attempt
            call._log.warning("originate raised %s: %s", type(e).__name__, e)
            outcome = CallOutcome.failed(f"originate_error: {type(e).__name__}")
        call.outcome = outcome

        if outcome.kind in ("answered", "machine"):
            if outcome.kind == "machine":
                self._stats.machine += 1
                call.status = CallStatus.MACHINE
            else:
                self._stats.answered += 1
                call.status = CallStatus.ANSWERED
            await self._hold_until_ended(call, outcome)
            self._finish(call, CallStatus.DONE)
        elif outcome.kind in ("busy", "no_answer"):
            status = CallStatus(outcome.kind)
            if outcome.kind == "busy":
                self._stats.busy += 1
            else:
                self._stats.no_answer += 1
            if call.attempts < req.max_attempts and not self._closed:
                call.status = status
                self._retrying[call.id] = call
                call._retry = asyncio.get_running_loop().call_later(req.retry_after_s, self._requeue, call)
                call._log.info("%s; retry in %.1f s", outcome.kind, req.retry_after_s)
            else:
                self._finish(call, status, outcome.kind)
        else:
            self._finish(call, CallStatus.FAILED, outcome.cause or "unknown")

    async def _hold_until_ended(self, call: OutboundCall, outcome: CallOutcome) -> None:
        if outcome.wait_ended is None:
            return
        ended = asyncio.ensure_future(outcome.wait_ended)
        try:
            await asyncio.wait({ended})  # unlike `await ended`, a cancel here leaves `ended` alone
        except asyncio.CancelledError:
            if outcome.hangup is not None:
                try:
                    async with asyncio.timeout(self._hangup_timeout_s):
                        await outcome.hangup()
                except Exception as e:
                    call._log.warning("hangup on cancel failed: %s: %s", type(e).__name__, e)
            if ended is not outcome.wait_ended:  # our own task around a coroutine
                ended.cancel()
            raise
        if not ended.cancelled() and ended.exception() is not None:
            call._log.warning("call ended with an error: %r", ended.exception())
