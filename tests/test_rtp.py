"""RTP media leg: the wire format against hand-written RFC 3550/4733 bytes, then the leg over
real UDP on loopback against a fake Asterisk UnicastRTP end (tests/fake_rtp_peer.py)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from conftest import wait_for
from fake_rtp_peer import HOST, Received, RtpPeer, rtp
from voxgate.audio.format import ALAW8, SLIN8, ULAW8, AudioFrame
from voxgate.audio.pacer import MediaClock
from voxgate.transports.base import CallAudio, Dtmf, InboundEvent
from voxgate.transports.rtp import (
    RtpMediaLeg,
    RtpPacketError,
    build_packet,
    parse_packet,
    parse_telephone_event,
)

ULAW_SILENCE = b"\xff" * 160
PEER_SSRC = 0x5EED0001


def noise(n: int = 160) -> bytes:
    """Random μ-law bytes that are never the silence byte 0xff."""
    return bytes(b & 0xFE for b in os.urandom(n))


def rtp_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "voxgate.rtp"
    ]


def rtp_messages(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "voxgate.rtp" and text in r.getMessage()]


# --- wire format: parse ----------------------------------------------------------------------

# RFC 3550 §5.1: V=2 P=0 X=0 CC=0 | M=0 PT=0 | seq 0x1234 | ts 4000 | SSRC 0xdeadbeef
ULAW_HEADER = bytes.fromhex("80 00 12 34 00 00 0f a0 de ad be ef")


def test_parse_ulaw_packet() -> None:
    payload = bytes(range(160))
    packet = parse_packet(ULAW_HEADER + payload)
    assert packet.payload_type == 0
    assert packet.marker is False
    assert packet.sequence == 0x1234
    assert packet.timestamp == 4000
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == payload
    assert packet.csrcs == ()
    assert packet.extension_profile is None


def test_parse_marker_and_high_fields() -> None:
    # M=1 PT=8, seq 65535, ts 0xffffffff
    packet = parse_packet(bytes.fromhex("80 88 ff ff ff ff ff ff 00 00 00 01 d5"))
    assert (packet.marker, packet.payload_type) == (True, 8)
    assert (packet.sequence, packet.timestamp, packet.ssrc) == (0xFFFF, 0xFFFFFFFF, 1)
    assert packet.payload == b"\xd5"


def test_parse_skips_csrcs_extension_and_padding() -> None:
    data = bytes.fromhex(
        "b2 08 00 01 00 00 00 a0 11 22 33 44"  # V=2 P=1 X=1 CC=2 | PT 8 | seq 1 | ts 160 | SSRC
        "00 00 00 01 00 00 00 02"  # two CSRCs
        "be de 00 01 10 aa 00 00"  # extension: profile 0xBEDE, 1 word of data
        "d5 d5 d5 d5"  # payload
        "00 00 03"  # padding: 3 bytes, the last one its count
    )
    packet = parse_packet(data)
    assert packet.payload_type == 8
    assert packet.sequence == 1
    assert packet.timestamp == 160
    assert packet.ssrc == 0x11223344
    assert packet.csrcs == (1, 2)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension == bytes.fromhex("10 aa 00 00")
    assert packet.payload == bytes.fromhex("d5 d5 d5 d5")


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (bytes.fromhex("80 00 12 34 00 00 0f a0 de ad be"), "short", "shorter than the 12-byte"),
        (b"", "short", "0 bytes"),
        (bytes.fromhex("40 00 12 34 00 00 0f a0 de ad be ef"), "version", "version 1"),
        (bytes.fromhex("00 00 12 34 00 00 0f a0 de ad be ef ff"), "version", "version 0"),
        # CC=15 needs 72 bytes; 16 given
        (bytes.fromhex("8f 00 12 34 00 00 0f a0 de ad be ef 00 00 00 01"), "csrc", "CSRC count 15"),
        # X=1 but nothing after the fixed header
        (bytes.fromhex("90 00 12 34 00 00 0f a0 de ad be ef ff ff"), "extension", "extension"),
        # X=1, extension says 4 words (16 bytes) but 2 follow
        (bytes.fromhex("90 00 12 34 00 00 0f a0 de ad be ef be de 00 04 ff ff"), "extension", "4 words"),
        # P=1, padding count 9 but 3 bytes follow the header
        (bytes.fromhex("a0 00 12 34 00 00 0f a0 de ad be ef ff ff 09"), "padding", "padding count 9"),
        # P=1, padding count 0 (the count includes itself, so 0 is impossible)
        (bytes.fromhex("a0 00 12 34 00 00 0f a0 de ad be ef ff ff 00"), "padding", "padding count 0"),
    ],
)
def test_parse_rejects_malformed(data: bytes, code: str, words: str) -> None:
    with pytest.raises(RtpPacketError, match=words) as info:
        parse_packet(data)
    assert info.value.code == code


# --- wire format: build ----------------------------------------------------------------------


def test_build_packet_matches_rfc_layout() -> None:
    got = build_packet(0, 0x1234, 4000, 0xDEADBEEF, b"\xff\xff\xff\xff", marker=True)
    assert got == bytes.fromhex("80 80 12 34 00 00 0f a0 de ad be ef ff ff ff ff")
    got = build_packet(8, 0xFFFF, 0xFFFFFFFF, 1, b"\xd5")
    assert got == bytes.fromhex("80 08 ff ff ff ff ff ff 00 00 00 01 d5")


@pytest.mark.parametrize(
    "fields",
    [(128, 0, 0, 0), (0, 0x10000, 0, 0), (0, -1, 0, 0), (0, 0, 1 << 32, 0), (0, 0, 0, 1 << 32)],
)
def test_build_packet_refuses_out_of_range(fields: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"outside|32 bits"):
        build_packet(*fields, b"")


# --- wire format: RFC 4733 telephone-event ---------------------------------------------------


def test_telephone_event_decode() -> None:
    # event 5, E=1 R=0 volume 10, duration 800
    event = parse_telephone_event(bytes.fromhex("05 8a 03 20"))
    assert (event.event, event.end, event.volume, event.duration) == (5, True, 10, 800)
    assert event.digit == "5"
    # event 11 (#), E=0, volume 63, duration 160
    event = parse_telephone_event(bytes.fromhex("0b 3f 00 a0"))
    assert (event.digit, event.end, event.volume, event.duration) == ("#", False, 63, 160)
    assert parse_telephone_event(bytes.fromhex("0a 00 00 a0")).digit == "*"
    assert parse_telephone_event(bytes.fromhex("0f 00 00 a0")).digit == "D"
    assert parse_telephone_event(bytes.fromhex("10 00 00 a0")).digit is None  # 16: flash, not a key


def test_telephone_event_too_short() -> None:
    with pytest.raises(RtpPacketError, match="3 bytes"):
        parse_telephone_event(bytes.fromhex("05 8a 03"))


# --- the leg over real UDP -------------------------------------------------------------------

OpenLeg = Callable[..., Awaitable[RtpMediaLeg]]


@pytest.fixture
async def peer() -> AsyncIterator[RtpPeer]:
    p = await RtpPeer.open()
    yield p
    p.close()


@pytest.fixture
async def open_leg() -> AsyncIterator[OpenLeg]:
    """`await open_leg(**RtpMediaLeg.open options)` on loopback, one MediaClock per test."""
    clock = MediaClock()
    legs: list[RtpMediaLeg] = []

    async def open_(**options: object) -> RtpMediaLeg:
        options.setdefault("bind_host", HOST)
        leg = await RtpMediaLeg.open("call-1", clock=clock, **options)  # type: ignore[arg-type]
        legs.append(leg)
        return leg

    yield open_
    for leg in legs:
        await leg.hangup("test over")
    assert len(clock) == 0


async def take(leg: RtpMediaLeg, count: int, within: float = 1.0) -> list[InboundEvent]:
    events: list[InboundEvent] = []
    async with asyncio.timeout(within):
        async for event in leg:
            events.append(event)
            if len(events) == count:
                break
    return events


async def drain(leg: RtpMediaLeg, settle: float = 0.05) -> list[InboundEvent]:
    """Whatever is already queued or arrives within `settle` seconds."""
    events: list[InboundEvent] = []
    try:
        async with asyncio.timeout(settle):
            async for event in leg:
                events.append(event)
    except TimeoutError:
        pass
    return events


def audio(pt: int, seq: int, payload: bytes, ssrc: int = PEER_SSRC) -> bytes:
    return rtp(pt, seq, seq * 160, ssrc, payload)


def check_stream(packets: list[Received], pt: int = 0) -> None:
    """One continuous RTP stream: constant SSRC, seq +1 and timestamp +160 per packet."""
    assert packets
    assert {p.pt for p in packets} == {pt}
    assert len({p.ssrc for p in packets}) == 1
    for a, b in itertools.pairwise(packets):
        assert b.seq == (a.seq + 1) & 0xFFFF, (a.seq, b.seq)
        assert b.ts == (a.ts + 160) & 0xFFFFFFFF, (a.ts, b.ts)
    assert all(len(p.payload) == 160 for p in packets)


async def test_leg_is_call_audio_with_ulaw_8k(open_leg: OpenLeg) -> None:
    leg = await open_leg()
    assert isinstance(leg, CallAudio)
    assert leg.inbound_format == ULAW8
    assert leg.output.wire_format == ULAW8
    assert 0 < leg.local_port < 65536
    assert leg.context is None
    alaw = await open_leg(codec="alaw")
    assert alaw.inbound_format == ALAW8


@pytest.mark.parametrize("codec", ["slin16", "slin", "opus"])
async def test_refuses_codecs_other_than_g711(codec: str) -> None:
    clock = MediaClock()
    with pytest.raises(ValueError, match="ulaw or alaw") as info:
        await RtpMediaLeg.open("call-1", codec=codec, clock=clock, bind_host=HOST)
    assert "media=audiosocket or media=websocket" in str(info.value)
    assert len(clock) == 0


async def test_inbound_frames_in_order_dupes_and_late_dropped(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    payloads = {seq: noise() for seq in (100, 101, 102, 103, 104)}
    for seq in (100, 101, 101, 103, 102, 104):  # a duplicate of 101; 102 arrives after 103
        peer.send(audio(0, seq, payloads[seq]), leg.local_port)
    events = await take(leg, 4)
    assert events == [AudioFrame(payloads[s], ULAW8) for s in (100, 101, 103, 104)]
    assert leg.frames_in == 4
    assert leg.frames_dropped == 2
    assert await drain(leg) == []


async def test_inbound_sequence_wraps_and_restarts(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    sent = {seq: noise() for seq in (65534, 65535, 0, 1, 40000, 39999, 40001)}
    for seq in (65534, 65535, 0, 1, 65535, 40000, 39999, 40001):
        peer.send(audio(0, seq, sent[seq]), leg.local_port)
    events = await take(leg, 6)
    # 65535 again after the wrap is late; 40000 is a restart (jump > 3000); 39999 is then late.
    assert events == [AudioFrame(sent[s], ULAW8) for s in (65534, 65535, 0, 1, 40000, 40001)]
    assert leg.frames_dropped == 2


async def test_new_ssrc_is_a_new_stream(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    a, b = noise(), noise()
    peer.send(audio(0, 500, a), leg.local_port)
    peer.send(audio(0, 10, b, ssrc=0x1234), leg.local_port)  # older seq, but another source stream
    assert await take(leg, 2) == [AudioFrame(a, ULAW8), AudioFrame(b, ULAW8)]


async def test_outbound_silence_is_paced_rtp(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    leg.set_remote(HOST, peer.port)
    got = await peer.capture(0.5)
    assert 20 <= len(got) <= 30, f"{len(got)} packets in 500 ms"
    check_stream(got)
    assert got[0].marker  # the stream's first packet
    assert not any(p.marker for p in got[1:])
    assert all(p.payload == ULAW_SILENCE for p in got)


async def test_outbound_audio_is_what_was_written(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    leg.set_remote(HOST, peer.port)
    await peer.wait_received(3)
    frames = [noise() for _ in range(5)]
    for f in frames:
        leg.output.write(AudioFrame(f, ULAW8))
    # PCM written to a μ-law leg goes out as μ-law (G.711: +max → 0x80, -max → 0x00, 0 → 0xff).
    leg.output.write(AudioFrame(struct.pack("<3h", 32767, -32768, 0) * 53 + bytes(2), SLIN8))
    got = await peer.capture(0.3)
    check_stream(peer.received)
    payloads = [p.payload for p in got]
    start = payloads.index(frames[0])
    assert payloads[start : start + 5] == frames
    assert payloads[start + 5] == bytes.fromhex("80 00 ff") * 53 + b"\xff"
    assert payloads[start + 6 :] == [ULAW_SILENCE] * len(payloads[start + 6 :])
    markers = [p.marker for p in got]
    assert markers[start] and not any(markers[start + 1 :])  # a talkspurt starts with M=1
    assert not any(markers[:start])
    assert leg.output.audio_frames_sent == 6


async def test_each_talkspurt_starts_with_marker(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    leg.set_remote(HOST, peer.port)
    await peer.wait_received(2)
    first, second = noise(), noise()
    leg.output.write(AudioFrame(first, ULAW8))
    await asyncio.sleep(0.1)
    leg.output.write(AudioFrame(second, ULAW8))
    await asyncio.sleep(0.06)
    packets = peer.received
    check_stream(packets)
    marked = [p.payload for p in packets if p.marker]
    assert marked == [ULAW_SILENCE, first, second]


async def test_alaw_leg_sends_and_takes_pt_8(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg(codec="alaw")
    leg.set_remote(HOST, peer.port)
    got = await peer.wait_received(2)
    check_stream(got, pt=8)
    assert got[0].payload == b"\xd5" * 160
    data = noise()
    peer.send(audio(0, 1, noise()), leg.local_port)  # μ-law on an A-law leg: ignored
    peer.send(audio(8, 2, data), leg.local_port)
    assert await take(leg, 1) == [AudioFrame(data, ALAW8)]
    assert leg.packets_ignored == 1


async def test_latches_to_the_first_packets_source(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    assert leg.remote is None
    assert await peer.capture(0.06) == []  # nowhere to send yet
    peer.send(audio(0, 7, noise()), leg.local_port)
    await take(leg, 1)
    assert leg.remote == (HOST, peer.port)
    check_stream(await peer.wait_received(3))


async def test_switches_to_the_real_source_once(
    open_leg: OpenLeg, peer: RtpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voxgate")
    decoy = await RtpPeer.open()
    try:
        leg = await open_leg()
        leg.set_remote(HOST, decoy.port)  # what the channelvars said
        await decoy.wait_received(2)
        for seq in range(1, 6):
            peer.send(audio(0, seq, noise()), leg.local_port)
        await take(leg, 5)
        assert leg.remote == (HOST, peer.port)
        before = len(decoy.received)
        got = await peer.capture(0.1)
        assert len(got) >= 3
        assert len(decoy.received) - before <= 1  # at most one tick that raced the switch
        check_stream(decoy.received + peer.received)  # one stream, just sent elsewhere
        assert len(rtp_messages(caplog, "symmetric RTP")) == 1
        leg.set_remote(HOST, decoy.port)  # too late: latched
        assert leg.remote == (HOST, peer.port)
    finally:
        decoy.close()


async def test_foreign_source_is_ignored(
    open_leg: OpenLeg, peer: RtpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    leg = await open_leg()
    stranger = await RtpPeer.open()
    try:
        mine = noise()
        peer.send(audio(0, 1, mine), leg.local_port)
        assert await take(leg, 1) == [AudioFrame(mine, ULAW8)]
        for seq in range(2, 7):
            stranger.send(audio(0, seq, noise(), ssrc=0xBAD), leg.local_port)
        later = noise()
        peer.send(audio(0, 2, later), leg.local_port)
        assert await take(leg, 1) == [AudioFrame(later, ULAW8)]
        assert leg.packets_foreign == 5
        assert stranger.received == []
        warnings = rtp_warnings(caplog)
        assert len(warnings) == 1 and "ignoring RTP from" in warnings[0]
    finally:
        stranger.close()


JUNK = [
    b"\x80\x00\x00",  # shorter than a header
    bytes.fromhex("40 00 00 01 00 00 00 a0 00 00 00 01") + ULAW_SILENCE,  # version 1
    bytes.fromhex("8f 00 00 01 00 00 00 a0 00 00 00 01"),  # CSRCs past the end
    bytes.fromhex("a0 00 00 01 00 00 00 a0 00 00 00 01 ff 7f"),  # padding past the end
]


async def test_malformed_datagrams_are_counted_and_the_call_survives(
    open_leg: OpenLeg, peer: RtpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    leg = await open_leg()
    for i in range(50):
        peer.send(JUNK[i % len(JUNK)], leg.local_port)
    good = noise()
    peer.send(audio(0, 1, good), leg.local_port)
    assert await take(leg, 1) == [AudioFrame(good, ULAW8)]
    assert leg.packets_malformed == 50
    assert leg.end_cause is None
    warnings = rtp_warnings(caplog)
    assert len(warnings) == 1
    assert "malformed" in warnings[0] and "shorter than the 12-byte RTP header" in warnings[0]
    # The run starts again after a good packet: 50 more are still fine, the 51st in a row is not.
    for _ in range(50):
        peer.send(JUNK[1], leg.local_port)
    await wait_for(lambda: leg.packets_malformed == 100)
    assert leg.end_cause is None
    peer.send(JUNK[1], leg.local_port)
    async with asyncio.timeout(1):
        await leg.wait_ended()
    assert leg.end_cause == "error:malformed_rtp"
    assert leg.end_reason == "error:malformed_rtp"
    assert "51 malformed RTP datagrams in a row" in rtp_warnings(caplog)[-1]
    assert "version 1" in rtp_warnings(caplog)[-1]


def dtmf(seq: int, ts: int, payload_hex: str, *, marker: bool = False) -> bytes:
    return rtp(101, seq, ts, PEER_SSRC, bytes.fromhex(payload_hex), marker=marker)


async def test_telephone_events_give_one_dtmf_each(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    port = leg.local_port
    # Key 5 at timestamp 8000: start (M=1), two updates, the end (E=1) three times.
    for seq, payload in enumerate(["05 0a 00 a0", "05 0a 01 40", "05 0a 01 e0"], start=10):
        peer.send(dtmf(seq, 8000, payload, marker=seq == 10), port)
    for seq in (13, 14, 15):
        peer.send(dtmf(seq, 8000, "05 8a 03 20"), port)
    # Key # at timestamp 16000, only its end packets got through.
    for seq in (20, 21, 22):
        peer.send(dtmf(seq, 16000, "0b 8a 03 20"), port)
    peer.send(dtmf(16, 8000, "05 8a 03 20"), port)  # a straggler of the first key
    peer.send(dtmf(23, 24000, "10 8a 03 20"), port)  # event 16 (flash): not a key
    assert await take(leg, 2) == [Dtmf("5"), Dtmf("#")]
    assert await drain(leg) == []
    assert leg.dtmf_in == 2


async def test_comfort_noise_and_other_payload_types_are_counted(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    peer.send(rtp(13, 1, 160, PEER_SSRC, b"\x40"), leg.local_port)  # RFC 3389 CN, noise level 64
    peer.send(rtp(13, 2, 320, PEER_SSRC, b"\x40"), leg.local_port)
    peer.send(rtp(118, 3, 480, PEER_SSRC, bytes(640)), leg.local_port)
    frame = noise()
    peer.send(audio(0, 4, frame), leg.local_port)
    assert await take(leg, 1) == [AudioFrame(frame, ULAW8)]
    assert leg.packets_ignored == 3
    assert leg.packets_in == 4


async def test_media_timeout_without_any_packet(open_leg: OpenLeg, caplog: pytest.LogCaptureFixture) -> None:
    leg = await open_leg(media_timeout_s=0.15)
    async with asyncio.timeout(1):
        await leg.wait_ended()
    assert leg.end_cause == "media timeout"
    assert any("no RTP from Asterisk" in w for w in rtp_warnings(caplog))
    assert await drain(leg) == []  # the inbound stream has ended


async def test_media_timeout_after_the_stream_stops(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg(media_timeout_s=0.15)
    for seq in range(1, 11):  # 200 ms of audio: longer than the timeout itself
        peer.send(audio(0, seq, noise()), leg.local_port)
        await asyncio.sleep(0.02)
    assert leg.end_cause is None
    loop = asyncio.get_running_loop()
    stopped = loop.time()
    async with asyncio.timeout(1):
        await leg.wait_ended()
    assert leg.end_cause == "media timeout"
    assert loop.time() - stopped >= 0.1
    assert leg.frames_in == 10


async def test_hangup_ends_the_leg(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    leg.set_remote(HOST, peer.port)
    await peer.wait_received(2)
    reader = asyncio.create_task(take(leg, 1000))
    await leg.hangup()
    assert leg.outcome == "hangup"
    assert leg.end_cause == "agent hung up"
    assert await reader == []  # the inbound stream ended
    await leg.wait_ended()
    got = await peer.capture(0.06)
    assert len(got) <= 1  # nothing after the hangup (one datagram may have been in flight)
    leg.output.write(AudioFrame(noise(), ULAW8))  # writing after the end is harmless
    await leg.hangup("again")  # idempotent
    assert leg.end_cause == "agent hung up"


async def test_transfer_sets_outcome_and_ends(open_leg: OpenLeg) -> None:
    leg = await open_leg()
    await leg.transfer("PJSIP/200")
    assert leg.outcome == "transfer:PJSIP/200"
    assert leg.end_cause == "transfer to PJSIP/200"
    await leg.hangup()
    assert leg.outcome == "transfer:PJSIP/200"


async def test_set_remote_unspecified_host_uses_fallback(open_leg: OpenLeg, peer: RtpPeer) -> None:
    leg = await open_leg()
    leg.set_remote("0.0.0.0", peer.port)  # no fallback: wait for Asterisk's first packet
    assert leg.remote is None
    leg.set_remote("", peer.port, fallback_host=HOST)
    assert leg.remote == (HOST, peer.port)
    check_stream(await peer.wait_received(2))
    with pytest.raises(ValueError, match="not an IP address"):
        leg.set_remote("asterisk.example", peer.port)
    with pytest.raises(ValueError, match="bind_host='::'"):
        leg.set_remote("::1", peer.port)


async def test_ipv6_socket_talks_to_an_ipv4_peer(open_leg: OpenLeg, peer: RtpPeer) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        leg = await open_leg(bind_host="::")
    except OSError as exc:
        pytest.skip(f"cannot bind ::: {exc}")
    peer.send(audio(0, 1, noise()), leg.local_port)  # arrives from ::ffff:127.0.0.1
    await take(leg, 1)
    assert leg.remote == (HOST, peer.port)
    check_stream(await peer.wait_received(2))


async def test_bind_failure_names_the_call_and_address(open_leg: OpenLeg) -> None:
    first = await open_leg()
    with pytest.raises(OSError, match=f"RTP socket of call call-1 to {HOST}:{first.local_port}"):
        await open_leg(port=first.local_port)
