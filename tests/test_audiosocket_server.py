"""AudioSocketServer over real TCP on loopback, driven by a fake Asterisk writing literal bytes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import statistics
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (
    SILENCE_8K,
    RawClient,
    RecordingHandler,
    StartServer,
    WellBehavedCall,
    port_of,
    uuid_message,
    wait_for,
)
from voxgate.audio.format import SLIN8, SLIN16, ULAW8, AudioFrame
from voxgate.server.metrics import build_registry
from voxgate.transports.audiosocket.server import AudioSocketCall
from voxgate.transports.base import Dtmf

HANGUP = b"\x00\x00\x00"


def audio_8k(payload: bytes) -> bytes:
    assert len(payload) < 256
    return b"\x10\x00" + bytes([len(payload)]) + payload


def frame_8k(payload: bytes) -> bytes:
    assert len(payload) == 320
    return b"\x10\x01\x40" + payload


def frame_16k(payload: bytes) -> bytes:
    assert len(payload) == 640
    return b"\x12\x02\x80" + payload


def noise(n: int) -> bytes:
    """Random bytes; the first is odd, so a frame of it is never mistaken for silence."""
    data = bytearray(os.urandom(n))
    data[0] |= 1
    return bytes(data)


def voxgate_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("voxgate")]


# --- outbound pacing --------------------------------------------------------------------------


async def test_silent_caller_gets_paced_silence(start_server: StartServer) -> None:
    server = await start_server()
    client = await RawClient.connect(port_of(server))
    kind, payload = await client.start_call()
    assert (kind, payload) == (0x10, bytes(320))
    # The caller sends nothing more (silence suppression): we must still get a frame every 20 ms,
    # or Asterisk's 2 s no-activity timeout would end the call.
    got = await client.read_timed(0.5)
    assert all(kind == 0x10 and payload == bytes(320) for _, kind, payload in got)
    assert 21 <= len(got) <= 27, f"{len(got)} frames in 500 ms"
    gaps = [(b - a) * 1000 for (a, _, _), (b, _, _) in itertools.pairwise(got)]
    assert 17 <= statistics.median(gaps) <= 23
    assert max(gaps) < 60
    await client.close()


async def test_echo_returns_the_callers_bytes_paced(start_server: StartServer) -> None:
    server = await start_server()
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    frames = [noise(320) for _ in range(20)]
    # 400 ms of audio in one write: the echo queues it and must play it out in real time.
    await client.send(b"".join(frame_8k(f) for f in frames))
    got = await client.read_timed(0.6)
    assert all(kind == 0x10 and len(payload) == 320 for _, kind, payload in got)
    echoed = [(t, payload) for t, _, payload in got if payload != bytes(320)]
    assert [payload for _, payload in echoed] == frames
    span_ms = (echoed[-1][0] - echoed[0][0]) * 1000
    assert 19 * 20 * 0.85 <= span_ms <= 19 * 20 * 1.15, f"20 frames played over {span_ms:.0f} ms"
    gaps = [(b - a) * 1000 for (a, _), (b, _) in itertools.pairwise(echoed)]
    assert min(gaps) > 8, f"burst: two frames {min(gaps):.1f} ms apart"
    await client.close()


async def test_16k_caller_gets_16k_replies(start_server: StartServer) -> None:
    handler = RecordingHandler(echo=True)
    server = await start_server(handler)
    client = await RawClient.connect(port_of(server))
    kind, _ = await client.start_call()
    assert kind == 0x10  # before any caller audio the rate is unknown: the app's 8 kHz default
    frames = [noise(640) for _ in range(5)]
    await client.send(b"".join(frame_16k(f) for f in frames))
    got = await client.read_timed(0.3)
    first_16k = next(i for i, (_, kind, _) in enumerate(got) if kind == 0x12)
    assert first_16k <= 2
    after = got[first_16k:]
    assert all(kind == 0x12 and len(payload) == 640 for _, kind, payload in after)
    assert [p for _, _, p in after if p != bytes(640)] == frames
    assert all(isinstance(e, AudioFrame) and e.format == SLIN16 for e in handler.events)
    await client.close()


async def test_short_frame_is_accepted_and_echo_pads_it(start_server: StartServer) -> None:
    handler = RecordingHandler(echo=True)
    server = await start_server(handler)
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    tail = noise(24)
    await client.send(audio_8k(tail))
    got = await client.read_timed(0.1)
    assert handler.events == [AudioFrame(tail, SLIN8)]
    padded = [p for _, k, p in got if p != bytes(320)]
    assert padded == [bytes(296) + tail]  # a talkspurt's part-frame is led with silence and sent at once
    assert all(k == 0x10 and len(p) == 320 for _, k, p in got)
    await client.close()


async def test_dtmf_reaches_the_handler(start_server: StartServer) -> None:
    handler = RecordingHandler()
    server = await start_server(handler)
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    await client.send(b"\x03\x00\x01\x23")  # '#'
    await wait_for(lambda: len(handler.events) == 1)
    assert handler.events == [Dtmf("#")]
    every = b"0123456789*#ABCD"
    await client.send(b"".join(b"\x03\x00\x01" + bytes([d]) for d in every))
    await wait_for(lambda: len(handler.events) == 17)
    assert handler.events[1:] == [Dtmf(chr(d)) for d in every]
    assert handler.calls[0].dtmf_in == 17
    await client.close()


async def test_ulaw_codec_inbound_is_ulaw_reply_is_slin(start_server: StartServer) -> None:
    handler = RecordingHandler(echo=True)
    server = await start_server(handler, codec="ulaw")
    client = await RawClient.connect(port_of(server))
    kind, payload = await client.start_call()
    assert (kind, len(payload)) == (0x10, 320)
    sent = [noise(160) for _ in range(3)]
    await client.send(b"".join(b"\x10\x00\xa0" + s for s in sent))  # 160-byte μ-law frames in 0x10
    got = await client.read_timed(0.15)
    assert handler.events == [AudioFrame(s, ULAW8) for s in sent]
    assert handler.calls[0].inbound_format == ULAW8
    assert all(k == 0x10 and len(p) == 320 for _, k, p in got)  # slin 8 kHz goes back
    replies = [p for _, _, p in got if p != bytes(320)]
    assert replies == [ulaw_to_slin(s) for s in sent]
    await client.close()


def ulaw_to_slin(data: bytes) -> bytes:
    """Reference G.711 μ-law decoder (the classic Sun g711.c formula), one sample at a time."""
    out = bytearray()
    for code in data:
        u = ~code & 0xFF
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84
        out += (-magnitude if u & 0x80 else magnitude).to_bytes(2, "little", signed=True)
    return bytes(out)


def test_reference_ulaw_decoder_known_values() -> None:
    assert ulaw_to_slin(b"\xff\x7f\x00\x80\xf0") == b"".join(
        v.to_bytes(2, "little", signed=True) for v in (0, 0, -32124, 32124, 120)
    )


# --- call end ---------------------------------------------------------------------------------


async def test_agent_return_sends_hangup_bytes(start_server: StartServer) -> None:
    async def quick(call: AudioSocketCall) -> None:
        return None

    server = await start_server(quick)
    client = await RawClient.connect(port_of(server))
    await client.send_uuid()
    assert await client.read_to_eof(1.0) == HANGUP
    await wait_for(lambda: server.active_calls == 0)
    assert server.stats.ended == {"agent_finished": 1}
    await client.close()


async def test_agent_return_after_audio_ends_with_hangup(start_server: StartServer) -> None:
    async def one_frame(call: AudioSocketCall) -> None:
        async for event in call:
            assert isinstance(event, AudioFrame)
            call.output.write(event)
            await asyncio.sleep(0.1)  # let the frame play out, then hang up
            return

    server = await start_server(one_frame)
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    frame = noise(320)
    await client.send(frame_8k(frame))
    data = await client.read_to_eof(1.0)
    assert data.endswith(HANGUP)
    assert frame_8k(frame) in data
    await client.close()


async def test_caller_eof_ends_the_handler_loop(start_server: StartServer) -> None:
    handler = RecordingHandler()
    server = await start_server(handler)
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    await client.send(SILENCE_8K)
    await wait_for(lambda: len(handler.events) == 1)
    await client.close()  # Asterisk hangs up by closing the socket, never with 0x00
    async with asyncio.timeout(1.0):
        await handler.finished.wait()
    call = handler.calls[0]
    assert call.end_cause == "caller hung up"
    assert server.active_calls == 0
    assert server.stats.ended == {"caller_hung_up": 1}


# --- capacity and timeouts --------------------------------------------------------------------


async def test_capacity_refuses_with_hangup(start_server: StartServer) -> None:
    server = await start_server(max_calls=2)
    port = port_of(server)
    first, second = await RawClient.connect(port), await RawClient.connect(port)
    await first.start_call()
    await second.start_call()
    third = await RawClient.connect(port)
    assert await third.read_to_eof(1.0) == HANGUP
    assert server.stats.calls_refused == 1
    assert server.active_calls == 2
    registry, _ = build_registry(server)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert families["voxgate_calls_refused"].samples[0].value == 1
    assert families["voxgate_active_calls"].samples[0].value == 2
    # The two admitted calls are untouched.
    for client in (first, second):
        got = await client.read_timed(0.1)
        assert len(got) >= 3
    for client in (first, second, third):
        await client.close()


async def test_no_uuid_closed_after_uuid_timeout(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(uuid_timeout_ms=150)
    good = await WellBehavedCall.start(port_of(server))
    client = await RawClient.connect(port_of(server))
    t0 = time.monotonic()
    assert await client.read_to_eof(1.0) == b""
    elapsed = time.monotonic() - t0
    assert 0.13 <= elapsed <= 0.5, f"closed after {elapsed * 1000:.0f} ms"
    [warning] = voxgate_warnings(caplog)
    assert client.local in warning.getMessage()
    assert "no UUID within 150 ms" in warning.getMessage()
    await good.assert_alive()
    await good.stop()
    await client.close()


# --- bad input: one connection closed, one warning, the other call goes on ------------------

# (name, sent first, then after the call is running, cause in the log). `None` first = send UUID.
BAD_INPUT = [
    ("first message audio", SILENCE_8K, None, "first message was AUDIO, expected UUID"),
    ("first message dtmf", b"\x03\x00\x01\x31", None, "first message was DTMF, expected UUID"),
    ("uuid too short", b"\x01\x00\x0f" + bytes(15), None, "UUID message of 15 bytes"),
    ("uuid too long", b"\x01\x00\x11" + bytes(17), None, "UUID message of 17 bytes"),
    ("unknown kind 0x02", None, b"\x02\x00\x00", "unknown message kind 0x02"),
    ("unknown kind 0x20", None, b"\x20\x00\x02\x00\x00", "unknown message kind 0x20"),
    ("zero-length audio", None, b"\x10\x00\x00", "zero-length audio"),
    ("zero-length 16k audio", None, b"\x12\x00\x00", "zero-length audio"),
    # 8002 bytes announced (> 500 ms of slin 8 kHz); the payload is never sent
    ("oversize audio", None, b"\x10\x1f\x42", "exceeds the 500 ms limit"),
    ("oversize 16k audio", None, b"\x12\x3e\x82", "exceeds the 500 ms limit"),
    ("invalid dtmf", None, b"\x03\x00\x01\x45", "DTMF payload 0x45"),
    ("dtmf of 2 bytes", None, b"\x03\x00\x0212", "DTMF message of 2 bytes"),
    ("odd-length slin", None, b"\x10\x00\x03abc", "odd-length slin"),
    ("second uuid", None, bytes.fromhex("01001040325ec25efd4bd3805f53576e581d13"), "second UUID"),
]


@pytest.mark.parametrize(
    ("first", "later", "cause"),
    [pytest.param(first, later, cause, id=name) for name, first, later, cause in BAD_INPUT],
)
async def test_bad_input_closes_only_that_connection(
    start_server: StartServer,
    caplog: pytest.LogCaptureFixture,
    first: bytes | None,
    later: bytes | None,
    cause: str,
) -> None:
    server = await start_server()
    good = await WellBehavedCall.start(port_of(server))
    bad = await RawClient.connect(port_of(server))
    if first is None:
        await bad.start_call()
        assert later is not None
        await bad.send(later)
    else:
        await bad.send(first)
    await bad.read_to_eof(1.0)
    [warning] = voxgate_warnings(caplog)
    message = warning.getMessage()
    assert cause in message
    assert bad.local in message
    # The call id travels with the record (the log formatter prints it as call_id=...).
    assert warning.call_id == (bad.call_uuid if first is None else "-")  # type: ignore[attr-defined]
    await good.assert_alive()
    assert server.active_calls == 1
    await good.stop()
    await bad.close()


async def test_stalled_payload_closed_after_stall_timeout(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(stall_timeout_ms=100)
    good = await WellBehavedCall.start(port_of(server))
    bad = await RawClient.connect(port_of(server))
    await bad.start_call()
    await bad.send(b"\x10\x01\x40" + bytes(160))  # header and half the payload, then nothing
    t0 = time.monotonic()
    await bad.read_to_eof(1.0)
    elapsed = time.monotonic() - t0
    assert 0.09 <= elapsed <= 0.4, f"closed after {elapsed * 1000:.0f} ms"
    [warning] = voxgate_warnings(caplog)
    assert "stalled" in warning.getMessage()
    assert warning.call_id == bad.call_uuid  # type: ignore[attr-defined]
    await good.assert_alive()
    await good.stop()
    await bad.close()


async def test_reads_that_end_mid_message_are_not_a_stall(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A healthy real-time stream whose TCP reads never line up with message boundaries: every read
    # finishes one message and starts the next. No message ever waits, so this is not a stall.
    handler = RecordingHandler()
    server = await start_server(handler, stall_timeout_ms=100)
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    stream = b"".join(frame_8k(noise(320)) for _ in range(25))
    step = 323
    await client.send(stream[:100])
    for pos in range(100, len(stream), step):
        await asyncio.sleep(0.02)
        await client.send(stream[pos : pos + step])
    await asyncio.sleep(0.05)
    assert not voxgate_warnings(caplog)
    assert handler.calls[0].end_cause is None
    assert len(handler.events) == 25
    await client.close()


async def test_flood_is_closed(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    server = await start_server()
    good = await WellBehavedCall.start(port_of(server))
    bad = await RawClient.connect(port_of(server))
    await bad.start_call()
    with contextlib.suppress(OSError):
        await bad.send(frame_8k(noise(320)) * 250)  # 5 s of audio at once
    await bad.read_to_eof(1.0)
    [warning] = voxgate_warnings(caplog)
    assert "flood" in warning.getMessage()
    assert warning.call_id == bad.call_uuid  # type: ignore[attr-defined]
    assert server.stats.ended.get("error:flood") == 1
    await good.assert_alive()
    await good.stop()
    await bad.close()


async def test_real_time_audio_is_not_a_flood(start_server: StartServer) -> None:
    # 3 s ahead is the allowance: 2 s of audio at once on top of real time is fine.
    handler = RecordingHandler()
    server = await start_server(handler)
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    await client.send(frame_8k(noise(320)) * 100)
    await wait_for(lambda: len(handler.events) == 100)
    assert handler.calls[0].end_cause is None
    await client.close()


async def test_good_messages_before_a_bad_header_in_one_read_are_still_handled(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    handler = RecordingHandler()
    server = await start_server(handler)
    client = await RawClient.connect(port_of(server))
    # One write: UUID, a DTMF '5', then an unknown kind. The call starts, the digit is delivered,
    # and the warning names the call, before the connection is closed.
    await client.send(uuid_message(client.call_uuid) + b"\x03\x00\x01\x35" + b"\x02\x00\x01\x00")
    await client.read_to_eof(1.0)
    await wait_for(lambda: handler.events == [Dtmf("5")])
    [warning] = voxgate_warnings(caplog)
    assert "unknown message kind 0x02" in warning.getMessage()
    assert warning.call_id == client.call_uuid  # type: ignore[attr-defined]
    await wait_for(lambda: server.active_calls == 0)
    await client.close()


@pytest.mark.parametrize(("payload_len", "warned"), [(160, True), (320, False)])
async def test_g711_sent_as_slin_is_pointed_out_once(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, payload_len: int, warned: bool
) -> None:
    # Dial(AudioSocket/host/uuid) without c() sends the caller's μ-law, 160 bytes per 20 ms, as 0x10.
    handler = RecordingHandler()
    server = await start_server(handler)
    client = await RawClient.connect(port_of(server))
    await client.start_call()
    header = b"\x10" + payload_len.to_bytes(2, "big")
    await client.send(b"".join(header + b"\xff" * payload_len for _ in range(30)))
    await wait_for(lambda: handler.calls and handler.calls[0].frames_in == 30)
    hits = [r for r in voxgate_warnings(caplog) if "c(slin)" in r.getMessage()]
    assert len(hits) == (1 if warned else 0)
    assert server.active_calls == 1  # a hint, not an error: the call goes on
    await client.close()
