"""What the loopback fake servers share: an aiohttp app served on a free port and stopped again,
a queue of scripted HTTP replies, and an SSE body written in pieces.

Each fake keeps its routes and everything it sends and checks on the wire (those follow the
protocol notes in shared/protocols/, one fake per protocol).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Self

from aiohttp import web

HOST = "127.0.0.1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(app: web.Application, host: str = HOST, port: int = 0, **options: Any) -> web.AppRunner:
    """`app` served on `host:port` (0: a free port) until `runner.cleanup()`; where it listens is
    `runner.addresses[0]`. `options` go to `web.AppRunner` (shutdown_timeout 0.1 s unless given)."""
    runner = web.AppRunner(app, handle_signals=False, **{"shutdown_timeout": 0.1, **options})
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class LoopbackServer:
    """A fake's lifecycle: `await start()` serves the routes `routes(app)` adds on a free
    loopback port (`port`), `await stop()` ends it. `runner_options` go to `serve()`."""

    port: int = 0
    _runner: web.AppRunner | None = None
    runner_options: ClassVar[dict[str, Any]] = {}

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = await serve(app, **self.runner_options)
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ScriptedReplies(LoopbackServer):
    """An HTTP fake that answers each request with the next handler in `handlers` (the
    subclass's field), queued by its `reply_*()` methods."""

    handlers: list[Handler]

    async def next_reply(self, request: web.Request, no_reply: Any) -> web.StreamResponse:
        """The next scripted answer; a 500 with the JSON body `no_reply` when none is left."""
        if not self.handlers:
            return web.json_response(no_reply, status=500)
        return await self.handlers.pop(0)(request)

    def reply_error(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """An HTTP error before streaming, with a JSON body."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return web.json_response(body, status=status, headers=headers)

        self.handlers.append(handle)

    def reply_json(self, body: Any) -> None:
        """A 200 with a whole JSON body, as from a server that does not stream this request."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return web.json_response(body)

        self.handlers.append(handle)


async def sse_response(request: web.Request) -> web.StreamResponse:
    """A prepared 200 `text/event-stream` response, headers sent, body to follow."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    return response


async def write_pieces(
    response: web.StreamResponse, body: bytes, split: int | Sequence[int] | None, delay: float = 0.0
) -> None:
    """`body` written in `pieces_of(body, split)`, `delay` s apart when split: each write leaves
    as its own TCP segment / HTTP chunk."""
    for piece in pieces_of(body, split):
        await response.write(piece)
        if split:
            await asyncio.sleep(delay)


def pieces_of(body: bytes, size: int | Sequence[int] | None) -> list[bytes]:
    """`body` cut into writes: fixed `size` bytes, or a repeating cycle of sizes, or whole."""
    if not size:
        return [body]
    sizes = [size] if isinstance(size, int) else list(size)
    out, pos, i = [], 0, 0
    while pos < len(body):
        n = sizes[i % len(sizes)]
        out.append(body[pos : pos + n])
        pos += n
        i += 1
    return out
