"""Shared fixtures: an AudioSocketServer on loopback, and a fake Asterisk that writes raw bytes.

The raw client never uses voxgate's encoder or MessageReader: every message it sends is written
out as literal bytes by the test, and replies are parsed here by hand (3-byte header, big-endian
length), so a bug in our codec cannot hide itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from voxgate.agent.echo import EchoAgent
from voxgate.audio.format import AudioFrame
from voxgate.config import AudioSocketConfig
from voxgate.transports.audiosocket.server import AudioSocketCall, AudioSocketServer

HOST = "127.0.0.1"

SILENCE_8K = b"\x10\x01\x40" + bytes(320)  # 20 ms of 8 kHz silence, as in the protocol notes §8


def uuid_message(call_uuid: str) -> bytes:
    """The 0x01 message, built by hand: kind 01, length 00 10, the 16 raw UUID bytes."""
    return b"\x01\x00\x10" + bytes.fromhex(call_uuid.replace("-", ""))


class RawClient:
    """A fake Asterisk over real TCP that speaks AudioSocket bytes written literally."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.call_uuid = str(uuid.uuid4())
        host, port = writer.get_extra_info("sockname")[:2]
        self.local = f"{host}:{port}"  # what the server calls this connection's peer

    @classmethod
    async def connect(cls, port: int, host: str = HOST) -> RawClient:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_uuid(self) -> None:
        await self.send(uuid_message(self.call_uuid))

    async def start_call(self) -> tuple[int, bytes]:
        """Send the UUID and wait for the server's first frame (so the call is surely running)."""
        await self.send_uuid()
        return await self.read_message()

    async def read_message(self, within: float = 1.0) -> tuple[int, bytes]:
        async with asyncio.timeout(within):
            header = await self.reader.readexactly(3)
            kind, length = header[0], (header[1] << 8) | header[2]
            payload = await self.reader.readexactly(length)
        return kind, payload

    async def read_timed(self, duration: float) -> list[tuple[float, int, bytes]]:
        """Every message that arrives within `duration` s, with its time.monotonic() arrival."""
        out: list[tuple[float, int, bytes]] = []
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            try:
                kind, payload = await self.read_message(within=left)
            except TimeoutError:
                break
            out.append((time.monotonic(), kind, payload))
        return out

    async def read_to_eof(self, within: float = 2.0) -> bytes:
        """All bytes until the server closes; a reset counts as closed. TimeoutError if it stays open."""
        data = bytearray()
        async with asyncio.timeout(within):
            while True:
                try:
                    chunk = await self.reader.read(65536)
                except (ConnectionResetError, BrokenPipeError):
                    break
                if not chunk:
                    break
                data += chunk
        return bytes(data)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class RecordingHandler:
    """An agent that records every inbound event (and optionally echoes audio back)."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.calls: list[AudioSocketCall] = []
        self.events: list[object] = []
        self.started = asyncio.Event()
        self.finished = asyncio.Event()

    async def __call__(self, call: AudioSocketCall) -> None:
        self.calls.append(call)
        self.started.set()
        async for event in call:
            self.events.append(event)
            if self.echo and isinstance(event, AudioFrame):
                call.output.write(event)
        self.finished.set()


class WellBehavedCall:
    """A second, healthy call kept running in the background: real-time silence out, frames in."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.received = 0
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, port: int) -> WellBehavedCall:
        client = await RawClient.connect(port)
        await client.start_call()
        self = cls(client)
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._recv())]
        return self

    async def _send(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                await self.client.send(SILENCE_8K)
                await asyncio.sleep(0.02)

    async def _recv(self) -> None:
        try:
            while True:
                await self.client.read_message(within=5.0)
                self.received += 1
        except (asyncio.IncompleteReadError, OSError, TimeoutError):
            self.closed = True

    async def assert_alive(self, window: float = 0.12) -> None:
        """Still open and still getting frames (~one per 20 ms) over the next `window` seconds."""
        before = self.received
        await asyncio.sleep(window)
        assert not self.closed, "the well-behaved call was closed"
        assert self.received - before >= int(window / 0.02) - 2, (
            f"only {self.received - before} frames in {window * 1000:.0f} ms on the healthy call"
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()


StartServer = Callable[..., Awaitable[AudioSocketServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """`await start_server(handler=None, **AudioSocketConfig fields)` → a listening server.

    The handler defaults to the echo agent. Servers are stopped after the test.
    """
    servers: list[AudioSocketServer] = []

    async def start(
        handler: Callable[[AudioSocketCall], Awaitable[None]] | None = None, **options: object
    ) -> AudioSocketServer:
        config = AudioSocketConfig(listen=f"{HOST}:0", **options)  # type: ignore[arg-type]
        server = AudioSocketServer(config, handler or EchoAgent().handle)
        await server.start(HOST, 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def port_of(server: AudioSocketServer) -> int:
    return server.sockets[0][1]


async def wait_for(predicate: Callable[[], bool], within: float = 1.0, step: float = 0.005) -> None:
    """Poll server state we have no event for (counters, active calls) until it holds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - nothing to await on: the state is plain attributes
            await asyncio.sleep(step)
