"""AudioSocket wire format (see shared/protocols/audiosocket.md).

Every message is a 3-byte header — kind (uint8), payload length (uint16 big-endian) — and the
payload. Asterisk is the TCP client and always sends the UUID message first.
"""

from __future__ import annotations

import enum
import struct
import uuid
from collections.abc import Callable

_HEADER = struct.Struct(">BH")
HEADER_SIZE = 3
MAX_PAYLOAD = 0xFFFF


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10  # slin 8 kHz (or, from the channel driver without c(), the caller's codec)
    AUDIO_SLIN12 = 0x11
    AUDIO_SLIN16 = 0x12
    AUDIO_SLIN24 = 0x13
    AUDIO_SLIN32 = 0x14
    AUDIO_SLIN44 = 0x15
    AUDIO_SLIN48 = 0x16
    AUDIO_SLIN96 = 0x17
    AUDIO_SLIN192 = 0x18
    ERROR = 0xFF


AUDIO_KIND_RATES: dict[int, int] = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}
RATE_AUDIO_KINDS: dict[int, int] = {rate: kind for kind, rate in AUDIO_KIND_RATES.items()}
DTMF_DIGITS = frozenset(b"0123456789*#ABCD")

HANGUP_MESSAGE = b"\x00\x00\x00"

# Bits of the (Asterisk-side) ERROR payload, from the protocol's original README.
ERROR_BITS = {0x01: "calling party hung up", 0x02: "frame forwarding error", 0x04: "memory error"}


class ProtocolError(Exception):
    """The peer broke the AudioSocket protocol; the connection must end.

    `code` is a short stable name for metrics (`unknown_kind`, `flood`, ...).
    """

    def __init__(self, message: str, code: str = "protocol") -> None:
        super().__init__(message)
        self.code = code


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One whole message, ready for a single write."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"AudioSocket payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD} limit")
    return _HEADER.pack(kind, len(payload)) + payload


def audio_header(kind: int, nbytes: int) -> bytes:
    return _HEADER.pack(kind, nbytes)


def encode_uuid(call_uuid: uuid.UUID | str) -> bytes:
    u = call_uuid if isinstance(call_uuid, uuid.UUID) else uuid.UUID(call_uuid)
    return encode(Kind.UUID, u.bytes)


def decode_uuid(payload: bytes) -> str:
    if len(payload) != 16:
        raise ProtocolError(f"UUID message carries {len(payload)} bytes, expected 16")
    return str(uuid.UUID(bytes=payload))


def describe_error(payload: bytes) -> str:
    if not payload:
        return "no error code"
    code = payload[0]
    names = [name for bit, name in ERROR_BITS.items() if code & bit]
    return f"code 0x{code:02x} ({', '.join(names) or 'unknown'})"


def kind_name(kind: int) -> str:
    try:
        return Kind(kind).name
    except ValueError:
        return f"0x{kind:02x}"


HeaderCheck = Callable[[int, int], None]


class MessageReader:
    """Reassembles messages from TCP reads of any size (short reads and coalesced reads both happen).

    `check_header(kind, length)` runs as soon as a header is complete, before its payload has
    arrived, so an absurd length is refused without waiting for the bytes. When it raises
    `ProtocolError`, `feed` still returns the good messages before the bad header, and the
    error waits in `error` for the caller to act on once it has handled them.
    """

    __slots__ = ("_buf", "_check_header", "_checked", "error")

    def __init__(self, check_header: HeaderCheck | None = None) -> None:
        self._buf = bytearray()
        self._check_header = check_header
        self._checked = False  # the header at the front of _buf has been checked
        self.error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole message."""
        return len(self._buf)

    @property
    def in_payload(self) -> bool:
        """A header has arrived and its payload is incomplete."""
        return len(self._buf) >= HEADER_SIZE

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return the whole messages they complete, in order."""
        out: list[tuple[int, bytes]] = []
        if self.error is not None:
            return out
        buf = self._buf
        if not buf:
            # Fast path: the read holds whole messages and nothing is pending.
            pos = self._parse(data, 0, out)
            if pos < len(data):
                buf += data[pos:] if pos else data
        else:
            buf += data
            pos = self._parse(buf, 0, out)
            if pos:
                del buf[:pos]
        return out

    def _parse(self, data: bytes | bytearray, pos: int, out: list[tuple[int, bytes]]) -> int:
        end = len(data)
        check = self._check_header
        while end - pos >= HEADER_SIZE:
            kind = data[pos]
            length = (data[pos + 1] << 8) | data[pos + 2]
            if check is not None and not self._checked:
                try:
                    check(kind, length)
                except ProtocolError as exc:
                    self.error = exc
                    return end  # nothing after a bad header can be framed
            if end - pos - HEADER_SIZE < length:
                self._checked = True
                return pos
            self._checked = False
            start = pos + HEADER_SIZE
            out.append((kind, bytes(data[start : start + length])))
            pos = start + length
        return pos
