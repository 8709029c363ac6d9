"""The one place for provider timeouts, retries with backoff, and the liveness watchdog.

`resilient_stream` wraps any provider stream:
- the first item must arrive within `first_item_timeout` (this covers connecting);
- each later item within `idle_timeout` of asking for it: a provider that goes silent
  mid-stream raises `ProviderTimeout` instead of being awaited forever;
- failures before the first item are retried with exponential backoff and jitter; once an
  item was yielded the stream cannot be replayed, so a later failure is raised;
- the underlying iterator is always closed (`aclose`), on success, error or cancellation.

Time spent by the consumer between items is not counted against the provider.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from voxgate.providers.base import ProviderError, ProviderTimeout

T = TypeVar("T")

log = logging.getLogger("voxgate.providers")

_CLOSE_TIMEOUT_S = 2.0  # a provider whose cleanup hangs must not hold the call


class ConnectOptions(BaseModel):
    """How long to wait for a provider and how often to try again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_item_timeout: float = Field(5.0, gt=0, description="s to connect and produce the first item")
    idle_timeout: float = Field(5.0, gt=0, description="s allowed between two items mid-stream")
    max_retries: int = Field(2, ge=0, description="extra attempts, only before the first item")
    backoff_base: float = Field(0.2, ge=0, description="s before the first retry; doubles each time")
    backoff_max: float = Field(2.0, ge=0, description="cap on one backoff delay, s")
    jitter: float = Field(0.5, ge=0, le=1, description="delay is drawn from [d·(1-jitter), d]")

    def backoff(self, retry: int) -> float:
        """Delay before retry number `retry` (1-based)."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        return delay * random.uniform(1 - self.jitter, 1)


async def aclose_quietly(iterator: object, provider: str) -> None:
    """Close an async iterator if it can be closed, bounded in time; never raises (but cancels)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await aclose()
    except Exception as exc:  # cleanup of a failed provider must not mask the real error
        log.warning("closing %s failed: %r", provider, exc, extra={"provider": provider})


def as_provider_error(exc: Exception, provider: str) -> ProviderError:
    """Any exception a provider raises, as a `ProviderError` (network errors are retryable)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(provider, f"timed out ({exc!r})")
    return ProviderError(provider, f"{type(exc).__name__}: {exc}", retryable=isinstance(exc, OSError))


def _arm_when_set(
    gate: asyncio.Event | None, deadline: asyncio.Timeout, timeout: float
) -> asyncio.Task[None]:
    """Start `deadline`'s clock (`timeout` s) when `gate` is set."""
    assert gate is not None

    async def arm() -> None:
        await gate.wait()
        deadline.reschedule(asyncio.get_running_loop().time() + timeout)

    return asyncio.ensure_future(arm())


async def resilient_stream(
    open_stream: Callable[[], AsyncIterator[T]],
    options: ConnectOptions,
    *,
    provider: str,
    gate: asyncio.Event | None = None,
) -> AsyncIterator[T]:
    """Yield `open_stream()`'s items with timeouts, retries before the first item, and a watchdog.

    With `gate`, the clocks run only once it is set: an STT fed while the caller speaks owes
    nothing until the end of the turn (`end_input()` sets it), however long the caller talks.

    Use it with `contextlib.aclosing` (or iterate it to the end) so the provider is closed
    promptly when you stop early.
    """
    retry = 0
    while True:
        iterator = open_stream()
        yielded = 0
        try:
            while True:
                timeout = options.idle_timeout if yielded else options.first_item_timeout
                gated = gate is not None and not gate.is_set()
                try:
                    async with asyncio.timeout(None if gated else timeout) as deadline:
                        arm = _arm_when_set(gate, deadline, timeout) if gated else None
                        try:
                            item = await anext(iterator)
                        finally:
                            if arm is not None:
                                arm.cancel()
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    if isinstance(exc, TimeoutError) and deadline.expired():
                        what = (
                            f"no item for {timeout:g} s after {yielded} item(s)"
                            if yielded
                            else (f"no first item within {timeout:g} s")
                        )
                        err: ProviderError = ProviderTimeout(provider, what)
                    else:
                        err = as_provider_error(exc, provider)
                    if yielded:  # items already went out: the stream cannot be replayed
                        raise err from (None if err is exc else exc)
                    if not err.retryable or retry >= options.max_retries:
                        if retry:
                            err.add_note(f"gave up after {retry + 1} attempts")
                        raise err from (None if err is exc else exc)
                    failure = err
                    break
                yielded += 1
                yield item
        finally:
            await aclose_quietly(iterator, provider)
        retry += 1
        delay = options.backoff(retry)
        log.warning(
            "%s failed before its first item (%s); retry %d/%d in %.0f ms",
            provider,
            failure.message,
            retry,
            options.max_retries,
            delay * 1000,
            extra={"provider": provider, "retry": retry, "delay_ms": round(delay * 1000)},
        )
        await asyncio.sleep(delay)
