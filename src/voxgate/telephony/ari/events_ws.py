"""The ARI events WebSocket: stays connected (a call sent to Stasis while no socket holds the app
is dropped, ari.md §7), parses every frame, and delivers typed events to handlers and iterators.

    async with AriEvents(client) as events:
        events.on(StasisStart, on_start)          # sync or async; exceptions are logged
        async for event in events: ...            # optional; ends when the AriEvents closes

A reader task only reads and parses; a dispatcher task calls handlers one event at a time, in
order, so a slow handler never stalls the socket (but does delay later events: spawn a task for
long work). Reconnects use exponential backoff from `backoff_initial` (the first retry after a
drop is immediate) up to `backoff_max`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from .errors import AriConnectionError
from .events import ApplicationReplaced, AriEvent, MalformedEvent, UnknownEvent
from .http import AriHttp
from .parse import parse_event

log = logging.getLogger("voxgate.telephony.ari.events")

E = TypeVar("E", bound=AriEvent)
Handler = Callable[[Any], Awaitable[None] | None]
_CLOSED = object()


class AriEvents:
    """The events WebSocket of `client.app` (or `apps`), with reconnect and dispatch."""

    def __init__(
        self,
        client: AriHttp,
        *,
        apps: str | list[str] | None = None,
        subscribe_all: bool = False,
        backoff_initial: float = 0.05,
        backoff_max: float = 5.0,
        heartbeat: float | None = 15.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.client = client
        self.apps = apps if isinstance(apps, str) else ",".join(apps or [client.app])
        self.subscribe_all = subscribe_all
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.connected = asyncio.Event()
        self.connects = 0  # successful connections, the first included
        self.last_disconnect_cause = ""
        self.skipped = 0  # unknown or malformed events
        self.replaced = False
        self._handlers: list[tuple[type[AriEvent], Handler]] = []
        self._iter_queue: asyncio.Queue[object] | None = None
        self._dispatch_queue: asyncio.Queue[object] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closing = False
        self._ended = False  # the dispatcher has stopped: iterators end at once
        self.reconnect_listeners: list[Callable[[], object]] = []
        """Called after each reconnect (not the first connect): events sent while the socket was
        down are lost, so a listener re-reads the state it depends on (e.g. `GET /channels`)."""

    # -- public -----------------------------------------------------------------------------
    def on(self, event_type: type[E], handler: Callable[[E], Awaitable[None] | None]) -> None:
        """Call `handler(event)` for every event that is an instance of `event_type`."""
        self._handlers.append((event_type, handler))

    @property
    def is_connected(self) -> bool:
        return self.connected.is_set()

    async def wait_connected(self, within: float | None = None) -> None:
        async with asyncio.timeout(within):
            await self.connected.wait()

    async def start(self, *, wait: bool = True) -> None:
        """Start reading; with `wait`, raise AriConnectionError if not connected within
        `connect_timeout` (wrong URL, password, or Asterisk down)."""
        self._closing = self._ended = False
        self._tasks = [
            asyncio.create_task(self._run(), name="ari-events-reader"),
            asyncio.create_task(self._dispatch(), name="ari-events-dispatch"),
        ]
        if wait:
            try:
                await self.wait_connected(self.connect_timeout)
            except TimeoutError:
                cause = self.last_disconnect_cause or "no answer"
                await self.close()
                raise AriConnectionError(
                    None, "GET", "/events", f"not connected within {self.connect_timeout} s: {cause}"
                ) from None

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        self._dispatch_queue.put_nowait(_CLOSED)
        reader, dispatcher = self._tasks or (None, None)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if dispatcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
        self._tasks = []
        self.connected.clear()

    async def __aenter__(self) -> AriEvents:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[AriEvent]:
        if self._iter_queue is None:
            self._iter_queue = asyncio.Queue()  # made on first use: handler-only users keep nothing
            if self._ended:
                self._iter_queue.put_nowait(_CLOSED)
        return self._iterate(self._iter_queue)

    # -- internals --------------------------------------------------------------------------
    async def _iterate(self, queue: asyncio.Queue[object]) -> AsyncIterator[AriEvent]:
        while True:
            item = await queue.get()
            if item is _CLOSED:
                return
            assert isinstance(item, AriEvent)
            yield item

    def _url_and_auth(self) -> tuple[str, dict[str, str], dict[str, str]]:
        headers, extra = self.client.auth_kwargs()
        params = {"app": self.apps, "subscribeAll": "true" if self.subscribe_all else "false", **extra}
        return self.client.base_url + "/events", params, headers

    async def _run(self) -> None:
        delay = 0.0  # the first retry after a drop is immediate
        while not self._closing:
            url, params, headers = self._url_and_auth()
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.connect_timeout):
                    ws = await self.client.session.ws_connect(
                        url, params=params, headers=headers, heartbeat=self.heartbeat
                    )
            except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as exc:
                self.last_disconnect_cause = _describe(exc)
                log.warning(
                    "ARI events: connect to %s failed: %s; retry in %.2f s",
                    url,
                    self.last_disconnect_cause,
                    delay,
                )
            else:
                self._ws = ws
                self.connects += 1
                self.connected.set()
                if self.connects > 1:
                    log.info("ARI events: reconnected (app=%s, connection #%d)", self.apps, self.connects)
                    for listener in self.reconnect_listeners:
                        try:
                            listener()
                        except Exception:
                            log.exception("ARI events: a reconnect listener failed")
                else:
                    log.info("ARI events: connected (app=%s)", self.apps)
                cause = await self._read(ws)
                self.connected.clear()
                self._ws = None
                self.last_disconnect_cause = cause
                if self._closing:
                    return
                if self.replaced:
                    log.error("ARI events: another connection took over app %s; not reconnecting", self.apps)
                    self._dispatch_queue.put_nowait(_CLOSED)  # iterators end after what was read
                    return
                # Up for a while: a fresh drop, retry at once. A socket that drops right after
                # connecting restarts the backoff instead, so a flapping peer is not hammered.
                delay = 0.0 if time.monotonic() - started > 1.0 else self.backoff_initial
                log.warning("ARI events: disconnected (%s); reconnecting in %.2f s", cause, delay)
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, self.backoff_initial), self.backoff_max)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Read frames until the socket ends; returns why it ended."""
        try:
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    event = parse_event(msg.data)
                    if isinstance(event, ApplicationReplaced):
                        self.replaced = True
                    self._dispatch_queue.put_nowait(event)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    return f"socket error: {ws.exception()!r}"
        except (aiohttp.ClientError, OSError) as exc:
            return _describe(exc)
        finally:
            await ws.close()
        code, error = ws.close_code, ws.exception()
        if error is not None:  # e.g. no pong within the heartbeat
            return f"connection lost: {_describe(error)}"
        if code is None or code == 1006:  # 1006: no close frame, the connection just went away
            return "connection lost without a close frame"
        return f"closed by peer (code {code})"

    async def _dispatch(self) -> None:
        while True:
            event = await self._dispatch_queue.get()
            if event is _CLOSED:
                self._ended = True
                if self._iter_queue is not None:
                    self._iter_queue.put_nowait(_CLOSED)
                return
            assert isinstance(event, AriEvent)
            if isinstance(event, MalformedEvent):
                self.skipped += 1
                log.warning("ARI events: skipping malformed event: %s", event.reason)
                continue
            if isinstance(event, UnknownEvent):
                self.skipped += 1
                log.debug("ARI events: skipping unknown event type %s", event.type)
                continue
            if self._iter_queue is not None:
                self._iter_queue.put_nowait(event)
            for event_type, handler in self._handlers:
                if isinstance(event, event_type):
                    await self._call(handler, event)

    async def _call(self, handler: Handler, event: AriEvent) -> None:
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            channel = getattr(event, "channel", None)
            log.exception(
                "ARI events: handler %s failed on %s",
                getattr(handler, "__name__", handler),
                event.type,
                extra={"call_id": getattr(channel, "id", "-")},
            )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        if exc.status in (401, 403):
            return f"HTTP {exc.status}: check the ARI user/password and read_only/ACL in ari.conf"
        if exc.status == 400:
            return "HTTP 400: the app name is missing or invalid"
        return f"HTTP {exc.status} {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
