"""A fake Asterisk UnicastRTP end over real UDP on loopback.

It never uses voxgate's RTP code: packets are packed here from the RFC 3550 field layout, and
what arrives is split by hand, so a bug in our parser or builder cannot hide itself.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass
from typing import cast

HOST = "127.0.0.1"


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, *, marker: bool = False) -> bytes:
    """A plain RTP packet: V=2, no padding/extension/CSRC (RFC 3550 §5.1)."""
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() of arrival
    marker: bool
    pt: int
    seq: int
    ts: int
    ssrc: int
    payload: bytes


def split(datagram: bytes) -> Received:
    """Our leg sends plain 12-byte headers only; anything else fails the test loudly."""
    assert len(datagram) >= 12, datagram
    b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", datagram)
    assert b0 == 0x80, f"first byte 0x{b0:02x}: expected V=2 without padding, extension or CSRCs"
    return Received(time.monotonic(), bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc, datagram[12:])


class RtpPeer(asyncio.DatagramProtocol):
    """Sends datagrams to the leg and records what the leg sends back."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[Received] = []
        self._arrived = asyncio.Event()

    @classmethod
    async def open(cls, host: str = HOST) -> RtpPeer:
        peer = cls()
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        self.received.append(split(data))
        self._arrived.set()

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, port: int, host: str = HOST) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (host, port))

    async def wait_received(self, count: int, within: float = 1.0) -> list[Received]:
        """Wait until at least `count` packets have arrived in total."""
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    async def capture(self, duration: float) -> list[Received]:
        """What arrives within the next `duration` seconds."""
        start = len(self.received)
        await asyncio.sleep(duration)
        return self.received[start:]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
