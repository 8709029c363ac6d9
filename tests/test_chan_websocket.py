"""chan_websocket media leg: control messages against literals from shared/protocols/ari.md §6/§7,
and the leg against `FakeMediaWs` (an Asterisk side written from the same notes) on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from conftest import wait_for
from fake_media_ws import FakeMediaWs, MediaConnection
from voxgate.audio.format import SLIN16, ULAW8, AudioFrame
from voxgate.audio.pacer import MediaClock
from voxgate.transports.base import CallAudio, Dtmf
from voxgate.transports.chan_websocket import (
    ControlError,
    MediaLegError,
    WebSocketMediaLeg,
    format_command,
    parse_control,
)

pytestmark = pytest.mark.timeout(10)

FRAME_16K = 640  # 20 ms of slin16 (ari.md §7: optimal_frame_size 640)


# --- control messages -----------------------------------------------------------------------


def test_parse_media_start_plain_text_as_observed() -> None:
    text = (
        "MEDIA_START connection_id:4d0c1b4e-8f0a-4d43-9d0e-2b8f0c1d2e3f "
        "channel:WebSocket/INCOMING-00000001 format:slin16 optimal_frame_size:640 ptime:20"
    )
    event, fields = parse_control(text)
    assert event == "MEDIA_START"
    assert fields == {
        "connection_id": "4d0c1b4e-8f0a-4d43-9d0e-2b8f0c1d2e3f",
        "channel": "WebSocket/INCOMING-00000001",
        "format": "slin16",
        "optimal_frame_size": "640",
        "ptime": "20",
    }


def test_parse_plain_text_value_with_colons_splits_on_the_first() -> None:
    event, fields = parse_control(
        "MEDIA_START connection_id:a:b:c channel:WebSocket/10.0.0.5:8088 format:ulaw"
    )
    assert event == "MEDIA_START"
    assert fields == {"connection_id": "a:b:c", "channel": "WebSocket/10.0.0.5:8088", "format": "ulaw"}


def test_parse_plain_text_events() -> None:
    assert parse_control("DTMF_END digit:5") == ("DTMF_END", {"digit": "5"})
    assert parse_control("DTMF_END digit:#") == ("DTMF_END", {"digit": "#"})
    assert parse_control("MEDIA_XOFF") == ("MEDIA_XOFF", {})
    assert parse_control("MEDIA_XON\n") == ("MEDIA_XON", {})
    assert parse_control("QUEUE_DRAINED") == ("QUEUE_DRAINED", {})
    # the optional id of STOP_MEDIA_BUFFERING / MARK_MEDIA comes back bare; json calls it correlation_id
    assert parse_control("MEDIA_BUFFERING_COMPLETED prompt-7") == (
        "MEDIA_BUFFERING_COMPLETED",
        {"correlation_id": "prompt-7"},
    )
    assert parse_control("MEDIA_MARK_PROCESSED m1") == ("MEDIA_MARK_PROCESSED", {"correlation_id": "m1"})
    # error_text is free text: the rest of the line, colons and all
    assert parse_control("ERROR error_text:Unknown command: FOO bar") == (
        "ERROR",
        {"error_text": "Unknown command: FOO bar"},
    )
    # an event we do not know is handed back as it is
    assert parse_control("SOMETHING_NEW level:3") == ("SOMETHING_NEW", {"level": "3"})


def test_parse_json_events() -> None:
    event, fields = parse_control(
        '{"event": "MEDIA_START", "connection_id": "c1", "channel": "WebSocket/INCOMING-00000001", '
        '"channel_id": "1763000000.12", "format": "slin16", "optimal_frame_size": 640, "ptime": 20, '
        '"channel_variables": {"CALLER": "1001"}}'
    )
    assert event == "MEDIA_START"
    assert fields == {
        "connection_id": "c1",
        "channel": "WebSocket/INCOMING-00000001",
        "channel_id": "1763000000.12",
        "format": "slin16",
        "optimal_frame_size": 640,
        "ptime": 20,
        "channel_variables": {"CALLER": "1001"},
    }
    assert parse_control('{"event": "DTMF_END", "channel_id": "x", "digit": "9"}') == (
        "DTMF_END",
        {"channel_id": "x", "digit": "9"},
    )
    assert parse_control('{"event":"MEDIA_XOFF"}') == ("MEDIA_XOFF", {})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "{not json",
        '["MEDIA_START"]',
        '{"digit": "1"}',
        '{"event": ""}',
        "42 x:y",
        "MEDIA_START :x",
    ],
)
def test_parse_malformed(text: str) -> None:
    with pytest.raises(ControlError):
        parse_control(text)


def test_format_commands_plain_text() -> None:
    assert format_command("HANGUP") == "HANGUP"
    assert format_command("ANSWER") == "ANSWER"
    assert format_command("FLUSH_MEDIA") == "FLUSH_MEDIA"
    assert format_command("MARK_MEDIA", "m1") == "MARK_MEDIA m1"
    assert format_command("STOP_MEDIA_BUFFERING", "prompt-7") == "STOP_MEDIA_BUFFERING prompt-7"
    assert format_command("STOP_MEDIA_BUFFERING") == "STOP_MEDIA_BUFFERING"


def test_format_commands_json() -> None:
    assert format_command("HANGUP", control_format="json") == '{"command": "HANGUP"}'
    assert format_command("MARK_MEDIA", "m1", control_format="json") == (
        '{"command": "MARK_MEDIA", "correlation_id": "m1"}'
    )
    assert format_command("SET_MEDIA_DIRECTION", "in", control_format="json") == (
        '{"command": "SET_MEDIA_DIRECTION", "direction": "in"}'
    )


@pytest.mark.parametrize(
    ("command", "arg", "control_format"),
    [
        ("hangup", None, "plain-text"),  # commands are case-sensitive on the Asterisk side
        ("ANSWER", "now", "plain-text"),  # takes no argument
        ("SET_MEDIA_DIRECTION", "in", "plain-text"),  # json only
        ("MARK_MEDIA", "two words", "plain-text"),
        ("HANGUP", None, "xml"),
    ],
)
def test_format_command_refuses(command: str, arg: str | None, control_format: str) -> None:
    with pytest.raises(ValueError):
        format_command(command, arg, control_format=control_format)  # type: ignore[arg-type]


# --- the leg against the fake ---------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeMediaWs]:
    async with FakeMediaWs.serve() as server:
        yield server


@pytest.fixture
def clock() -> MediaClock:
    return MediaClock()


async def open_leg(
    fake: FakeMediaWs, clock: MediaClock, connection_id: str = "conn-1", **options: object
) -> tuple[WebSocketMediaLeg, MediaConnection]:
    leg = await WebSocketMediaLeg.connect("call-1", fake.url(connection_id), clock=clock, **options)  # type: ignore[arg-type]
    return leg, await fake.wait_connection(connection_id)


async def next_event(leg: WebSocketMediaLeg, within: float = 1.0) -> object:
    async with asyncio.timeout(within):
        return await leg.__aiter__().__anext__()


def tone(frames: int, value: int = 0x1234) -> bytes:
    return value.to_bytes(2, "little") * (FRAME_16K // 2) * frames


async def test_connect_takes_format_from_media_start(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    try:
        assert isinstance(leg, CallAudio)
        assert leg.inbound_format == SLIN16 and leg.inbound_format.sample_rate == 16000
        assert leg.output.wire_format == SLIN16
        assert leg.optimal_frame_size == FRAME_16K
        assert leg.channel == conn.channel == "WebSocket/INCOMING-00000001"
        assert leg.control_format == "plain-text"
        assert conn.protocol == "media"
        assert len(clock) == 1
    finally:
        await leg.hangup()


async def test_media_start_format_wins_over_the_requested_one(
    clock: MediaClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeMediaWs.serve(format="ulaw") as fake:
        leg, conn = await open_leg(fake, clock, format="slin16")
        try:
            assert leg.inbound_format == ULAW8
            assert "started the media as ulaw" in caplog.text
            await conn.wait_audio(3)
            assert {len(frame) for frame in conn.audio_in} == {160}  # 20 ms of G.711
            assert conn.audio_in[0] == b"\xff" * 160  # μ-law silence filler
        finally:
            await leg.hangup()


async def test_frames_flow_both_ways(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    inbound = [bytes([i]) * FRAME_16K for i in range(1, 11)]
    conn.play(inbound)
    got = [await next_event(leg) for _ in inbound]
    assert [e.data for e in got if isinstance(e, AudioFrame)] == inbound
    assert all(isinstance(e, AudioFrame) and e.format == SLIN16 for e in got)
    assert leg.frames_in == 10

    # Outbound: one 640-byte binary message per 20 ms tick, the written audio among them in order.
    before = len(conn.audio_in)
    leg.output.write(AudioFrame(tone(5), SLIN16))
    await asyncio.sleep(0.3)
    sent = conn.audio_in[before:]
    assert 8 <= len(sent) <= 20, f"{len(sent)} frames in 300 ms"
    assert {len(frame) for frame in sent} == {FRAME_16K}
    assert b"".join(frame for frame in sent if frame != bytes(FRAME_16K)) == tone(5)
    assert conn.commands == []
    await leg.hangup()


async def test_dtmf_end_becomes_dtmf(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    await conn.dtmf("X")  # not a DTMF digit: dropped
    await conn.dtmf("7")
    await conn.dtmf("#")
    assert await next_event(leg) == Dtmf("7")
    assert await next_event(leg) == Dtmf("#")
    assert leg.dtmf_in == 2
    await leg.hangup()


async def test_xoff_pauses_sending_and_xon_resumes(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    await conn.wait_audio(2)
    await conn.xoff()
    await wait_for(lambda: leg.xoff)
    await asyncio.sleep(0.03)  # a frame already on its way may still land
    paused_at = len(conn.audio_in)
    await asyncio.sleep(0.2)
    assert len(conn.audio_in) == paused_at
    assert leg.frames_dropped >= 5

    await conn.xon()
    await conn.wait_audio(paused_at + 5)
    assert not leg.xoff
    assert leg.end_cause is None
    await leg.hangup()


async def test_hangup_sends_hangup_and_closes(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    await conn.wait_audio(1)
    await leg.hangup()
    assert leg.outcome == "hangup"
    assert leg.end_cause == "agent hung up"
    async with asyncio.timeout(1):
        await conn.closed.wait()
    assert conn.command_names == ["HANGUP"]
    assert len(clock) == 0
    with pytest.raises(StopAsyncIteration):
        await next_event(leg)
    await leg.hangup()  # a second hangup is a no-op
    assert conn.command_names == ["HANGUP"]


async def test_transfer_records_target_and_ends_the_leg(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    await leg.transfer("PJSIP/1001")
    assert leg.outcome == "transfer:PJSIP/1001"
    assert leg.end_cause == "transfer to PJSIP/1001"
    await conn.wait_command("HANGUP")
    assert conn.commands == ["HANGUP"]  # ari.md §7: plain-text command, nothing else sent


async def test_asterisk_closing_is_the_caller_hanging_up(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    await conn.close()
    async with asyncio.timeout(1):
        await leg.wait_ended()
    assert leg.end_cause == "caller hung up"
    assert leg.outcome is None
    assert len(clock) == 0
    with pytest.raises(StopAsyncIteration):
        await next_event(leg)


async def test_connection_dropped_is_connection_lost(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    conn.abort()
    async with asyncio.timeout(1):
        await leg.wait_ended()
    assert leg.end_cause is not None and leg.end_cause.startswith("connection lost")
    assert leg.end_reason == "connection_lost"


async def test_barge_in_sends_flush_media(fake: FakeMediaWs, clock: MediaClock) -> None:
    leg, conn = await open_leg(fake, clock)
    leg.output.write(AudioFrame(tone(50), SLIN16))
    await conn.wait_audio(3)
    assert leg.output.clear() > 0
    await conn.wait_command("FLUSH_MEDIA")
    leg.output.clear()  # nothing queued: nothing to flush
    await asyncio.sleep(0.05)
    assert conn.command_names == ["FLUSH_MEDIA"]
    assert leg.flushes == 1
    await leg.hangup()


async def test_frame_size_mismatch_asks_asterisk_to_buffer(clock: MediaClock) -> None:
    """Asterisk drops the part of a message that does not fill its frames (960 bytes = 30 ms):
    our 20 ms messages must then be buffered across, also again after a flush ends buffering."""
    async with FakeMediaWs.serve(optimal_frame_size=960) as fake:
        leg, conn = await open_leg(fake, clock)
        await conn.wait_command("START_MEDIA_BUFFERING")
        leg.output.write(AudioFrame(tone(50), SLIN16))
        await conn.wait_audio(3)
        leg.output.clear()
        await conn.wait_for(lambda: len(conn.commands) == 3)
        assert conn.command_names == ["START_MEDIA_BUFFERING", "FLUSH_MEDIA", "START_MEDIA_BUFFERING"]
        await leg.hangup()


async def test_malformed_and_unknown_control_messages_are_survived(
    fake: FakeMediaWs, clock: MediaClock, caplog: pytest.LogCaptureFixture
) -> None:
    leg, conn = await open_leg(fake, clock)
    with caplog.at_level(logging.INFO, logger="voxgate.chan_websocket"):
        for text in ["{not json", "", "!!! ???", "SOMETHING_NEW a:1", "SOMETHING_NEW a:2"]:
            await conn.send_text(text)
        await conn.error("Unknown command: FOO")
        await conn.send_audio(b"\x01" * 641)  # odd length: not 16-bit samples
        await conn.dtmf("1")
        assert await next_event(leg) == Dtmf("1")
    assert leg.end_cause is None
    assert leg.frames_invalid == 1 and leg.frames_in == 0
    assert caplog.text.count("malformed control message") == 3
    assert caplog.text.count("unknown chan_websocket event SOMETHING_NEW") == 1
    assert "Asterisk reported an error: Unknown command: FOO" in caplog.text
    await leg.hangup()


async def test_json_control_format(clock: MediaClock) -> None:
    async with FakeMediaWs.serve(control_format="json") as fake:
        leg, conn = await open_leg(fake, clock)  # asked for plain-text: MEDIA_START shows json
        assert leg.control_format == "json"
        assert leg.optimal_frame_size == FRAME_16K
        await conn.dtmf("4")
        assert await next_event(leg) == Dtmf("4")
        await leg.hangup()
        await conn.wait_command("HANGUP")
        assert conn.commands == ['{"command": "HANGUP"}']


async def test_media_start_timeout_names_url_and_versions(clock: MediaClock) -> None:
    async with FakeMediaWs.serve(send_media_start=False) as fake:
        url = fake.url("conn-9")
        with pytest.raises(MediaLegError) as err:
            await WebSocketMediaLeg.connect("call-9", url, clock=clock, start_timeout_s=0.2)
    message = str(err.value)
    assert "MEDIA_START" in message and url in message
    assert "20.16" in message and "chan_websocket" in message
    assert len(clock) == 0


async def test_server_that_does_not_select_the_subprotocol(
    clock: MediaClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeMediaWs.serve(select_subprotocol=False) as fake:
        leg, conn = await open_leg(fake, clock)
        assert conn.protocol is None
        assert "did not accept the WebSocket subprotocol 'media'" in caplog.text
        await conn.wait_audio(2)  # and the media goes on
        await leg.hangup()


async def test_fake_refuses_a_client_without_the_media_subprotocol(fake: FakeMediaWs) -> None:
    """What the fake does (as Asterisk's media endpoint): no `media` offered, no upgrade."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(fake.url("conn-1"))
    assert err.value.status == 400
    assert fake.refused == [("conn-1", 400)]


async def test_unknown_connection_id_is_a_clear_error(fake: FakeMediaWs, clock: MediaClock) -> None:
    fake.expect("known-id")
    with pytest.raises(MediaLegError, match=r"refused the media WebSocket .*/media/other-id \(HTTP 404"):
        await WebSocketMediaLeg.connect("call-2", fake.url("other-id"), clock=clock)


async def test_nothing_listening_is_a_clear_error(clock: MediaClock) -> None:
    with pytest.raises(
        MediaLegError, match=r"cannot connect the media WebSocket ws://127\.0\.0\.1:9/media/x"
    ):
        await WebSocketMediaLeg.connect("call-3", "ws://127.0.0.1:9/media/x", clock=clock)


@pytest.mark.parametrize("fmt", ["opus", "slin24", "g722"])
async def test_unknown_format_refused_before_connecting(
    fake: FakeMediaWs, clock: MediaClock, fmt: str
) -> None:
    with pytest.raises(ValueError, match=f"format '{fmt}' is not supported; use one of slin16, slin, ulaw"):
        await WebSocketMediaLeg.connect("call-4", fake.url("conn-1"), clock=clock, format=fmt)
    assert fake.connections == {}


async def test_media_started_in_an_unsupported_format_is_refused(clock: MediaClock) -> None:
    async with FakeMediaWs.serve(format="opus") as fake:
        with pytest.raises(MediaLegError, match="started the media as 'opus'"):
            await WebSocketMediaLeg.connect("call-5", fake.url("conn-1"), clock=clock)
        conn = await fake.wait_connection("conn-1")
        async with asyncio.timeout(1):
            await conn.closed.wait()


async def test_shared_session_is_left_open(fake: FakeMediaWs, clock: MediaClock) -> None:
    async with aiohttp.ClientSession() as session:
        leg, _ = await open_leg(fake, clock, session=session)
        await leg.hangup()
        assert not session.closed
