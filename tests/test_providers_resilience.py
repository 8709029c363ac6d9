"""resilient_stream: retries only before the first item, timeouts, the mid-stream watchdog, closing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from voxgate.providers import ConnectOptions, ProviderError, ProviderTimeout, resilient_stream

MARGIN = 0.1  # s of scheduling slack allowed on top of a timeout


class Flaky:
    """Opens a stream that fails `failures` times before yielding `items`, then optionally stalls."""

    def __init__(
        self,
        items: list[int],
        *,
        failures: int = 0,
        error: Exception | None = None,
        stall_after: int | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.items = items
        self.failures = failures
        self.error = error or ProviderError("flaky", "boom")
        self.stall_after = stall_after
        self.fail_after = fail_after
        self.opened: list[float] = []
        self.finalized = 0

    def open(self) -> AsyncIterator[int]:
        self.opened.append(time.monotonic())
        return self._run()

    async def _run(self) -> AsyncIterator[int]:
        try:
            await asyncio.sleep(0)
            if len(self.opened) <= self.failures:
                raise self.error
            for i, item in enumerate(self.items):
                if i == self.stall_after:
                    await asyncio.sleep(3600)
                if i == self.fail_after:
                    raise ProviderError("flaky", "died mid-stream")
                yield item
        finally:
            self.finalized += 1


def opts(**kw: float) -> ConnectOptions:
    base = {
        "first_item_timeout": 1.0,
        "idle_timeout": 1.0,
        "max_retries": 2,
        "backoff_base": 0.05,
        "jitter": 0,
    }
    return ConnectOptions(**(base | kw))


async def collect(stream: AsyncIterator[int]) -> list[int]:
    return [item async for item in stream]


async def test_retries_before_first_item_with_exponential_backoff() -> None:
    flaky = Flaky([1, 2, 3], failures=2)
    assert await collect(resilient_stream(flaky.open, opts(), provider="flaky")) == [1, 2, 3]
    assert len(flaky.opened) == 3
    gaps = [b - a for a, b in zip(flaky.opened, flaky.opened[1:], strict=False)]
    assert 0.05 <= gaps[0] < 0.05 + MARGIN
    assert 0.10 <= gaps[1] < 0.10 + MARGIN  # doubled
    assert flaky.finalized == 3  # every failed attempt was closed too


def test_backoff_is_capped_and_jittered_down() -> None:
    options = ConnectOptions(backoff_base=0.2, backoff_max=0.5, jitter=0.5)
    delays = [options.backoff(3) for _ in range(200)]  # 0.8 uncapped → 0.5
    assert all(0.25 <= d <= 0.5 for d in delays)
    assert max(delays) - min(delays) > 0.05  # jitter spreads retries out


async def test_gives_up_after_max_retries_with_the_last_error() -> None:
    flaky = Flaky([1], failures=99)
    with pytest.raises(ProviderError, match="flaky: boom") as info:
        await collect(resilient_stream(flaky.open, opts(max_retries=1, backoff_base=0.01), provider="flaky"))
    assert len(flaky.opened) == 2
    assert "gave up after 2 attempts" in "".join(info.value.__notes__)


async def test_non_retryable_error_is_not_retried() -> None:
    flaky = Flaky([1], failures=99, error=ProviderError("flaky", "bad api key", retryable=False))
    with pytest.raises(ProviderError, match="bad api key"):
        await collect(resilient_stream(flaky.open, opts(), provider="flaky"))
    assert len(flaky.opened) == 1


async def test_foreign_errors_become_provider_errors() -> None:
    flaky = Flaky([7], failures=1, error=ConnectionResetError("peer reset"))
    assert await collect(resilient_stream(flaky.open, opts(backoff_base=0.01), provider="flaky")) == [7]

    flaky = Flaky([7], failures=1, error=KeyError("oops"))
    with pytest.raises(ProviderError, match="KeyError") as info:
        await collect(resilient_stream(flaky.open, opts(), provider="flaky"))
    assert not info.value.retryable
    assert len(flaky.opened) == 1


async def test_no_retry_once_an_item_was_yielded() -> None:
    flaky = Flaky([1, 2, 3], fail_after=1)
    got: list[int] = []
    with pytest.raises(ProviderError, match="died mid-stream"):
        async for item in resilient_stream(flaky.open, opts(), provider="flaky"):
            got.append(item)
    assert got == [1]
    assert len(flaky.opened) == 1


async def test_watchdog_fires_on_a_mid_stream_stall_and_closes_the_provider() -> None:
    flaky = Flaky([1, 2, 3], stall_after=2)
    got: list[int] = []
    with pytest.raises(ProviderTimeout, match=r"no item for 0.15 s after 2 item") as info:
        async for item in resilient_stream(flaky.open, opts(idle_timeout=0.15), provider="flaky"):
            got.append(item)
            last = time.monotonic()
    waited = time.monotonic() - last
    assert got == [1, 2]
    assert 0.15 <= waited < 0.15 + MARGIN
    assert info.value.provider == "flaky"
    assert flaky.finalized == 1  # the stalled generator's finally ran
    assert len(flaky.opened) == 1  # and it was not retried


async def test_first_item_timeout_retries_then_raises() -> None:
    flaky = Flaky([1], stall_after=0)
    start = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"no first item within 0\.1 s"):
        await collect(
            resilient_stream(
                flaky.open, opts(first_item_timeout=0.1, max_retries=1, backoff_base=0), provider="x"
            )
        )
    assert 0.2 <= time.monotonic() - start < 0.2 + MARGIN
    assert len(flaky.opened) == 2
    assert flaky.finalized == 2


async def test_time_the_consumer_spends_is_not_held_against_the_provider() -> None:
    flaky = Flaky([1, 2, 3])
    got = []
    async for item in resilient_stream(flaky.open, opts(idle_timeout=0.05), provider="flaky"):
        got.append(item)
        await asyncio.sleep(0.1)
    assert got == [1, 2, 3]


async def test_cancelling_the_consumer_closes_the_provider() -> None:
    flaky = Flaky([1, 2], stall_after=1)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in resilient_stream(flaky.open, opts(idle_timeout=30), provider="flaky"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 1.0)
    await asyncio.sleep(0.01)  # the stream is now stalled inside the provider
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert flaky.finalized == 1


async def test_stopping_early_closes_the_provider() -> None:
    flaky = Flaky([1, 2, 3])
    async with contextlib.aclosing(resilient_stream(flaky.open, opts(), provider="flaky")) as stream:
        async for _ in stream:
            break
    assert flaky.finalized == 1


class SocketLike:
    """Not a generator: only an explicit aclose() releases it (like a client holding a websocket)."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = False

    def __aiter__(self) -> SocketLike:
        return self

    async def __anext__(self) -> int:
        if self.sent:
            await asyncio.sleep(3600)
        self.sent += 1
        return 1

    async def aclose(self) -> None:
        self.closed = True


async def test_cancel_and_watchdog_close_a_non_generator_stream() -> None:
    sock = SocketLike()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in resilient_stream(lambda: sock, opts(idle_timeout=30), provider="sock"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sock.closed

    sock = SocketLike()
    with pytest.raises(ProviderTimeout):
        await collect(resilient_stream(lambda: sock, opts(idle_timeout=0.05), provider="sock"))
    assert sock.closed
