"""A fake Asterisk chan_websocket media server, written from shared/protocols/ari.md §6, §7 (not
from voxgate's client).

`GET /media/{connection_id}` upgrades only for a client that offers the `media` subprotocol
(others get HTTP 400), then sends, as its first text message,
`MEDIA_START connection_id:<id> channel:WebSocket/INCOMING-00000001 format:<fmt>
optimal_frame_size:<n> ptime:20` (or the json form). After that: binary frames are raw audio in
the channel format, text frames are control. Everything the app sends is recorded; HANGUP makes
the fake close the socket as Asterisk does when it hangs the channel up; GET_STATUS answers
STATUS. Tests push audio, DTMF_END, MEDIA_XOFF/XON, ERROR or anything else on demand.

Mount it on another fake (the ARI fake) with `add_media_routes(app, fake)`, or run it alone:
`async with FakeMediaWs.serve() as fake: url = fake.url("conn-1")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from fake_http import HOST, serve

SUBPROTOCOL = "media"
FRAME_BYTES_20MS = {"ulaw": 160, "alaw": 160, "slin": 320, "slin16": 640, "slin24": 960, "slin48": 1920}

OnConnected = Callable[[str], Awaitable[None]]


@dataclass
class MediaConnection:
    """One app connection, as Asterisk's side of it sees it."""

    fake: FakeMediaWs
    connection_id: str
    channel: str
    format: str
    ws: web.WebSocketResponse
    protocol: str | None  # the subprotocol the handshake settled on
    transport: asyncio.BaseTransport | None
    audio_in: list[bytes] = field(default_factory=list)  # binary frames the app sent
    commands: list[str] = field(default_factory=list)  # text frames the app sent, verbatim
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def command_names(self) -> list[str]:
        """The command word of each text frame: `MARK_MEDIA m1` → MARK_MEDIA; json → "command"."""
        return [_command_name(text) for text in self.commands]

    # -- Asterisk → app -----------------------------------------------------------------------
    async def send_event(self, event: str, **fields: Any) -> None:
        """An event in the fake's control format: `EVENT k:v …` or `{"event": …, k: v}`."""
        if self.fake.control_format == "json":
            await self.ws.send_str(json.dumps({"event": event, **fields}))
        else:
            await self.ws.send_str(" ".join([event, *(f"{k}:{v}" for k, v in fields.items())]))

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)

    async def send_audio(self, frame: bytes) -> None:
        await self.ws.send_bytes(frame)

    def play(self, frames: Iterable[bytes], ptime: float = 0.02) -> asyncio.Task[None]:
        """Stream `frames` one per `ptime` (as Asterisk sends the caller's audio), in the background."""

        async def run() -> None:
            start = time.monotonic()
            for i, frame in enumerate(frames):
                if (ahead := start + i * ptime - time.monotonic()) > 0:
                    await asyncio.sleep(ahead)
                if self.ws.closed:
                    return
                await self.ws.send_bytes(frame)

        task = asyncio.create_task(run())
        self._tasks.append(task)
        return task

    async def dtmf(self, digit: str) -> None:
        await self.send_event("DTMF_END", digit=digit)

    async def xoff(self) -> None:
        await self.send_event("MEDIA_XOFF")

    async def xon(self) -> None:
        await self.send_event("MEDIA_XON")

    async def error(self, text: str) -> None:
        await self.send_event("ERROR", error_text=text)

    async def close(self) -> None:
        """Asterisk hung the channel up: a close frame, then the socket goes."""
        await self.ws.close()

    def abort(self) -> None:
        """The connection drops without a close frame (Asterisk crashed, the network went)."""
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()

    # -- waiting --------------------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[], bool], within: float = 1.0) -> None:
        """Until `predicate()` holds; it is checked whenever the app sends something or the socket ends."""
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_command(self, name: str, within: float = 1.0) -> None:
        await self.wait_for(lambda: name in self.command_names, within)

    async def wait_audio(self, count: int, within: float = 1.0) -> None:
        await self.wait_for(lambda: len(self.audio_in) >= count, within)

    def _touch(self) -> None:
        self._changed.set()


class FakeMediaWs:
    """The `/media/<connection_id>` endpoint of Asterisk's HTTP server.

    `format`/`control_format`: what MEDIA_START announces and how events are written.
    `select_subprotocol=False`: the handshake answers without choosing `media` (to test a client
    that must cope). `send_media_start=False`: the socket opens but the media never starts (an
    Asterisk without the media protocol). `on_connected(connection_id)` runs once MEDIA_START is
    out (the ARI fake pushes the channel's StasisStart there, ari.md §7). `optimal_frame_size`
    overrides the 20 ms size MEDIA_START announces. `expect(id, format)`
    makes the fake refuse (404) any id it was not told about, as Asterisk does."""

    def __init__(
        self,
        *,
        format: str = "slin16",
        control_format: str = "plain-text",
        select_subprotocol: bool = True,
        send_media_start: bool = True,
        on_connected: OnConnected | None = None,
        optimal_frame_size: int | None = None,
    ) -> None:
        self.format = format
        self.optimal_frame_size = optimal_frame_size  # None: 20 ms of the format
        self.control_format = control_format
        self.select_subprotocol = select_subprotocol
        self.send_media_start = send_media_start
        self.on_connected = on_connected
        self.connections: dict[str, MediaConnection] = {}
        self.expected: dict[str, str] = {}  # connection id → format; empty: any id is accepted
        self.refused: list[tuple[str, int]] = []  # (connection id, HTTP status)
        self.base_url = ""  # ws://host:port once serving alone
        self._channel_seq = itertools.count(1)
        self._new_connection = asyncio.Event()

    def expect(self, connection_id: str, format: str | None = None) -> None:
        """A connection id externalMedia handed out (channel var MEDIA_WEBSOCKET_CONNECTION_ID)."""
        self.expected[connection_id] = format or self.format

    def url(self, connection_id: str) -> str:
        return f"{self.base_url}/media/{connection_id}"

    async def wait_connection(self, connection_id: str | None = None, within: float = 1.0) -> MediaConnection:
        async with asyncio.timeout(within):
            while True:
                if connection_id is None and self.connections:
                    return next(reversed(self.connections.values()))
                if connection_id is not None and connection_id in self.connections:
                    return self.connections[connection_id]
                self._new_connection.clear()
                await self._new_connection.wait()

    # -- the endpoint ---------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        connection_id = request.match_info["connection_id"]
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if SUBPROTOCOL not in offered:
            self.refused.append((connection_id, 400))
            return web.Response(status=400, text="a media WebSocket needs the 'media' subprotocol\n")
        if (self.expected and connection_id not in self.expected) or connection_id in self.connections:
            self.refused.append((connection_id, 404))
            return web.Response(status=404, text="Not Found\n")
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,) if self.select_subprotocol else ())
        await ws.prepare(request)
        fmt = self.expected.get(connection_id, self.format)
        conn = MediaConnection(
            self,
            connection_id,
            channel=f"WebSocket/INCOMING-{next(self._channel_seq):08x}",
            format=fmt,
            ws=ws,
            protocol=ws.ws_protocol,
            transport=request.transport,
        )
        self.connections[connection_id] = conn
        self._new_connection.set()
        try:
            if self.send_media_start:
                await conn.send_event(
                    "MEDIA_START",
                    connection_id=connection_id,
                    channel=conn.channel,
                    format=fmt,
                    optimal_frame_size=self.optimal_frame_size or FRAME_BYTES_20MS.get(fmt, 160),
                    ptime=20,
                )
                if self.on_connected is not None:
                    await self.on_connected(connection_id)
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    conn.audio_in.append(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    conn.commands.append(msg.data)
                    name = _command_name(msg.data)
                    if name == "HANGUP":
                        conn._touch()
                        await ws.close()
                        break
                    if name == "GET_STATUS":
                        await conn.send_event(
                            "STATUS", queue_length=0, xon_level=800, xoff_level=900, queue_full="false"
                        )
                conn._touch()
        finally:
            for task in conn._tasks:
                task.cancel()
            conn.closed.set()
            conn._touch()
        return ws

    async def close_all(self) -> None:
        for conn in list(self.connections.values()):
            if not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await conn.ws.close()

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close_all()

    @classmethod
    @contextlib.asynccontextmanager
    async def serve(cls, host: str = HOST, **options: Any) -> AsyncIterator[FakeMediaWs]:
        """The fake alone on a free loopback port."""
        fake = cls(**options)
        app = web.Application()
        add_media_routes(app, fake)
        runner = await serve(app, host, shutdown_timeout=0.5)
        bound_host, port = runner.addresses[0][:2]
        fake.base_url = f"ws://{bound_host}:{port}"
        try:
            yield fake
        finally:
            await fake.close_all()
            await runner.cleanup()


def add_media_routes(app: web.Application, fake: FakeMediaWs) -> None:
    """Serve `fake` at /media/{connection_id} on `app` (the same HTTP server as ARI, ari.md §6)."""
    app.router.add_get("/media/{connection_id}", fake.handle)
    app.on_shutdown.append(fake._on_shutdown)


def _command_name(text: str) -> str:
    if text.lstrip().startswith("{"):
        try:
            return str(json.loads(text).get("command", ""))
        except (ValueError, AttributeError):
            return ""
    return text.split(" ", 1)[0].strip()
