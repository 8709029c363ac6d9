"""AudioSocket wire format against byte fixtures written by hand from the protocol notes (§8).

Nothing here is produced by our encoder: every expected message is a literal.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.transports.audiosocket.protocol import (
    HANGUP_MESSAGE,
    Kind,
    MessageReader,
    ProtocolError,
    decode_uuid,
    describe_error,
    encode,
    encode_uuid,
)

UUID_TEXT = "40325ec2-5efd-4bd3-805f-53576e581d13"
UUID_MSG = bytes.fromhex("01001040325ec25efd4bd3805f53576e581d13")
SILENCE_8K_MSG = b"\x10\x01\x40" + bytes(320)
DTMF_HASH_MSG = b"\x03\x00\x01\x23"
HANGUP_MSG = b"\x00\x00\x00"
SLIN16_HEADER = b"\x12\x02\x80"

AUDIO_16K = bytes(range(256)) * 2 + bytes(range(128))  # 640 bytes, not silence
SLIN16_MSG = SLIN16_HEADER + AUDIO_16K
SHORT_AUDIO_MSG = b"\x10\x00\x18" + bytes(range(1, 25))  # a 24-byte tail frame, as seen on Asterisk 22
ERROR_MSG = b"\xff\x00\x01\x01"

# (literal bytes, the message they are) — the stream fixture for the reader tests
LITERALS: list[tuple[bytes, tuple[int, bytes]]] = [
    (UUID_MSG, (0x01, bytes.fromhex("40325ec25efd4bd3805f53576e581d13"))),
    (SILENCE_8K_MSG, (0x10, bytes(320))),
    (DTMF_HASH_MSG, (0x03, b"#")),
    (SLIN16_MSG, (0x12, AUDIO_16K)),
    (SHORT_AUDIO_MSG, (0x10, bytes(range(1, 25)))),
    (HANGUP_MSG, (0x00, b"")),
    (ERROR_MSG, (0xFF, b"\x01")),
]


# --- encoding ----------------------------------------------------------------------------------


def test_literals_are_what_the_notes_say() -> None:
    # Guard the fixtures themselves against typos: §8 spelled out byte by byte.
    assert UUID_MSG == bytes(
        [0x01, 0x00, 0x10, 0x40, 0x32, 0x5E, 0xC2, 0x5E, 0xFD, 0x4B, 0xD3, 0x80, 0x5F, 0x53, 0x57, 0x6E, 0x58]
    ) + bytes([0x1D, 0x13])
    assert len(SILENCE_8K_MSG) == 3 + 320
    assert len(SLIN16_MSG) == 3 + 640


def test_encode_uuid_from_string_and_uuid() -> None:
    assert encode_uuid(UUID_TEXT) == UUID_MSG
    assert encode_uuid(uuid.UUID(UUID_TEXT)) == UUID_MSG
    assert encode_uuid(UUID_TEXT.upper()) == UUID_MSG


def test_decode_uuid_gives_lowercase_canonical_text() -> None:
    assert decode_uuid(UUID_MSG[3:]) == UUID_TEXT


@pytest.mark.parametrize("n", [0, 15, 17, 36])
def test_decode_uuid_rejects_wrong_length(n: int) -> None:
    with pytest.raises(ProtocolError):
        decode_uuid(bytes(n))


def test_encode_silence_dtmf_hangup_16k() -> None:
    assert encode(Kind.AUDIO, bytes(320)) == SILENCE_8K_MSG
    assert encode(0x10, bytes(320)) == SILENCE_8K_MSG
    assert encode(Kind.DTMF, b"#") == DTMF_HASH_MSG
    assert encode(Kind.HANGUP) == HANGUP_MSG
    assert encode(Kind.HANGUP, b"") == HANGUP_MSG
    assert HANGUP_MESSAGE == HANGUP_MSG
    assert encode(Kind.AUDIO_SLIN16, AUDIO_16K) == SLIN16_MSG
    assert encode(0x12, AUDIO_16K)[:3] == SLIN16_HEADER


def test_kind_values_follow_the_merged_code_not_the_doc_pr() -> None:
    assert Kind.AUDIO == 0x10
    assert Kind.AUDIO_SLIN12 == 0x11
    assert Kind.AUDIO_SLIN16 == 0x12
    assert Kind.AUDIO_SLIN48 == 0x16
    assert Kind.ERROR == 0xFF


def test_encode_length_is_big_endian_and_bounded() -> None:
    assert encode(0x10, bytes(0x1234))[:3] == b"\x10\x12\x34"
    assert encode(0x10, bytes(0xFFFF))[:3] == b"\x10\xff\xff"
    with pytest.raises(ProtocolError):
        encode(0x10, bytes(0x10000))


def test_describe_error_bits() -> None:
    assert "hung up" in describe_error(b"\x01")
    assert "no error code" in describe_error(b"")


# --- MessageReader -----------------------------------------------------------------------------


def _stream(indices: list[int]) -> tuple[bytes, list[tuple[int, bytes]]]:
    data = b"".join(LITERALS[i][0] for i in indices)
    return data, [LITERALS[i][1] for i in indices]


def test_reader_one_literal_per_read() -> None:
    reader = MessageReader()
    for raw, expected in LITERALS:
        assert reader.feed(raw) == [expected]
        assert reader.pending == 0


def test_reader_coalesced_read() -> None:
    data, expected = _stream(list(range(len(LITERALS))) * 3)
    reader = MessageReader()
    assert reader.feed(data) == expected
    assert reader.pending == 0


def test_reader_every_single_split_point() -> None:
    data, expected = _stream(list(range(len(LITERALS))))
    for cut in range(len(data) + 1):
        reader = MessageReader()
        got = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert got == expected, f"split at byte {cut}"
        assert reader.pending == 0


def test_reader_byte_at_a_time() -> None:
    data, expected = _stream([0, 2, 1, 5, 4, 3])
    reader = MessageReader()
    got: list[tuple[int, bytes]] = []
    for i in range(len(data)):
        got += reader.feed(data[i : i + 1])
    assert got == expected
    assert reader.pending == 0


def test_reader_pending_counts_incomplete_bytes() -> None:
    reader = MessageReader()
    assert reader.feed(SILENCE_8K_MSG[:2]) == []
    assert reader.pending == 2
    assert reader.feed(SILENCE_8K_MSG[2:100]) == []
    assert reader.pending == 100
    assert reader.feed(SILENCE_8K_MSG[100:] + DTMF_HASH_MSG[:1]) == [(0x10, bytes(320))]
    assert reader.pending == 1


@settings(max_examples=300, deadline=None)
@given(
    indices=st.lists(st.integers(0, len(LITERALS) - 1), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 10_000), max_size=30),
)
def test_reader_random_splits(indices: list[int], cuts: list[int]) -> None:
    data, expected = _stream(indices)
    points = sorted({c % (len(data) + 1) for c in cuts})
    checked: list[tuple[int, int]] = []
    reader = MessageReader(lambda kind, length: checked.append((kind, length)))
    got: list[tuple[int, bytes]] = []
    prev = 0
    for p in [*points, len(data)]:
        got += reader.feed(data[prev:p])
        prev = p
    assert got == expected
    assert reader.pending == 0
    # The header check ran exactly once per message, however the stream was cut.
    assert checked == [(kind, len(payload)) for kind, payload in expected]


class _Refused(Exception):
    pass


def _refuse_big(kind: int, length: int) -> None:
    if length > 1000:
        raise _Refused(f"{kind:#x} {length}")


def test_header_check_fires_before_payload_arrives() -> None:
    reader = MessageReader(_refuse_big)
    with pytest.raises(_Refused):
        reader.feed(b"\x10\xff\xff")  # a 65535-byte payload announced; no payload byte sent


def test_header_check_fires_on_a_header_split_across_reads() -> None:
    reader = MessageReader(_refuse_big)
    assert reader.feed(UUID_MSG + b"\x10") == [(0x01, UUID_MSG[3:])]
    assert reader.feed(b"\x1f") == []
    with pytest.raises(_Refused):
        reader.feed(b"\x42")


def test_header_check_fires_after_whole_messages_in_the_same_read() -> None:
    calls: list[tuple[int, int]] = []

    def check(kind: int, length: int) -> None:
        calls.append((kind, length))
        _refuse_big(kind, length)

    reader = MessageReader(check)
    with pytest.raises(_Refused):
        reader.feed(UUID_MSG + DTMF_HASH_MSG + b"\x10\x20\x00")
    assert calls == [(0x01, 16), (0x03, 1), (0x10, 0x2000)]


def test_header_check_not_repeated_while_payload_trickles_in() -> None:
    calls: list[tuple[int, int]] = []
    reader = MessageReader(lambda k, n: calls.append((k, n)))
    msg = SLIN16_MSG
    for i in range(0, len(msg), 7):
        reader.feed(msg[i : i + 7])
    assert calls == [(0x12, 640)]
