"""RTP wire format (RFC 3550 §5.1) and RFC 4733 telephone-event payloads; no I/O here.

    0                   1                   2                   3
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
    |            contributing source (CSRC) identifiers (CC × 32)   |
    | [header extension: profile (16), length in words (16), data ] |
    | payload ... [padding, last octet = padding length incl. itself]

All fields are big-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_FIXED = struct.Struct("!BBHII")
_EXT_HEAD = struct.Struct("!HH")
_EVENT = struct.Struct("!BBH")

HEADER_SIZE = 12
RTP_VERSION = 2

PT_PCMU = 0  # G.711 μ-law, 8 kHz (RFC 3551)
PT_PCMA = 8  # G.711 A-law, 8 kHz
PT_CN = 13  # comfort noise (RFC 3389)
PT_TELEPHONE_EVENT = 101  # dynamic; what Asterisk uses for RFC 4733 by default

DTMF_EVENTS = "0123456789*#ABCD"
"""RFC 4733 §3.2: events 0-15 are the DTMF keys, in this order."""


class RtpPacketError(Exception):
    """A datagram that is not a well-formed RTP packet.

    `code` is a short stable name for counters and logs (`short`, `version`, `csrc`, ...).
    """

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One parsed RTP packet: header fields and the payload with padding removed."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension_profile: int | None = None  # the 16-bit "defined by profile" field, if X was set
    extension: bytes = b""  # the extension's data words (without its 4-byte head)


def parse_packet(data: bytes) -> RtpPacket:
    """Parse one datagram; raises `RtpPacketError` naming what is wrong with it."""
    size = len(data)
    if size < HEADER_SIZE:
        raise RtpPacketError(f"datagram of {size} bytes is shorter than the 12-byte RTP header", "short")
    b0, b1, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpPacketError(f"RTP version {version}, expected 2 (first byte 0x{b0:02x})", "version")
    offset = HEADER_SIZE
    csrc_count = b0 & 0x0F
    csrcs: tuple[int, ...] = ()
    if csrc_count:
        end = offset + 4 * csrc_count
        if end > size:
            raise RtpPacketError(
                f"CSRC count {csrc_count} needs {end} bytes but the datagram has {size}", "csrc"
            )
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset = end
    extension_profile: int | None = None
    extension = b""
    if b0 & 0x10:
        if offset + 4 > size:
            raise RtpPacketError(
                f"extension bit set but the datagram ends at byte {size}, before the extension header",
                "extension",
            )
        extension_profile, words = _EXT_HEAD.unpack_from(data, offset)
        end = offset + 4 + 4 * words
        if end > size:
            raise RtpPacketError(
                f"header extension of {words} words runs to byte {end}, past the datagram's {size}",
                "extension",
            )
        extension = data[offset + 4 : end]
        offset = end
    payload_end = size
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > size:
            raise RtpPacketError(
                f"padding count {padding} is invalid: {size - offset} bytes follow the header",
                "padding",
            )
        payload_end = size - padding
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=data[offset:payload_end],
        marker=bool(b1 & 0x80),
        csrcs=csrcs,
        extension_profile=extension_profile,
        extension=extension,
    )


def build_packet(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    *,
    marker: bool = False,
) -> bytes:
    """An RTP packet with a plain 12-byte header (no CSRCs, extension or padding)."""
    if not 0 <= payload_type <= 0x7F:
        raise ValueError(f"RTP payload type {payload_type} is outside 0-127")
    if not 0 <= sequence <= 0xFFFF:
        raise ValueError(f"RTP sequence number {sequence} is outside 0-65535")
    if not 0 <= timestamp <= 0xFFFFFFFF or not 0 <= ssrc <= 0xFFFFFFFF:
        raise ValueError(f"RTP timestamp {timestamp} or SSRC {ssrc} does not fit in 32 bits")
    b1 = (payload_type | 0x80) if marker else payload_type
    return _FIXED.pack(0x80, b1, sequence, timestamp, ssrc) + payload


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """An RFC 4733 §2.3 named-event payload."""

    event: int
    end: bool
    volume: int  # 0-63: the power level in -dBm0
    duration: int  # in timestamp units (samples at 8 kHz) since the event's timestamp

    @property
    def digit(self) -> str | None:
        """The DTMF key for events 0-15; None for other events (flash, tones, ...)."""
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else None


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """Decode the first event of a telephone-event payload (4 bytes; more only with redundancy)."""
    if len(payload) < 4:
        raise RtpPacketError(
            f"telephone-event payload of {len(payload)} bytes, expected at least 4", "telephone_event"
        )
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)
