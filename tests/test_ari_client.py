"""AriClient / AriEvents against the fake ARI server (tests/fake_ari.py).

Expected requests are literal values written from shared/protocols/ari.md (§3 channels, §4
bridges etc., §5 the voice-agent flow), never built with voxgate's own helpers; event fixtures
are copied from the notes' examples.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from fake_ari import FakeAri
from voxgate.telephony.ari import (
    ApplicationRegistered,
    ApplicationReplaced,
    AriAuthError,
    AriClient,
    AriConflict,
    AriConnectionError,
    AriError,
    AriEvent,
    AriEvents,
    AriNotFound,
    AriNotImplemented,
    AriServerError,
    AriUnprocessable,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelStateChange,
    ChannelTalkingFinished,
    ChannelVarset,
    Dial,
    MalformedEvent,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)

APP = "agent"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = await FakeAri().start()
    yield server
    await server.stop()


@pytest.fixture
async def ari(fake: FakeAri) -> AsyncIterator[AriClient]:
    async with AriClient(fake.base_url, "voxgate", "secret", APP, retry_backoff=0.01) as client:
        yield client


def last(fake: FakeAri) -> tuple[str, str, dict[str, str], Any]:
    r = fake.requests[-1]
    return r.method, r.path, r.query, r.json


# -- REST: exactly the wire the notes specify ------------------------------------------------------


async def test_originate_into_app_puts_params_in_query_and_variables_in_body(fake: FakeAri, ari: AriClient):
    channel = await ari.originate(
        "PJSIP/+15551230000@trunk",
        app="agent",
        app_args=["outbound", "tenant7"],
        caller_id="Voxgate <+15559870000>",
        ring_timeout=20,
        channel_id="out-1",
        variables={"X_TENANT": "tenant7"},
    )
    assert last(fake) == (
        "POST",
        "/channels",
        {
            "endpoint": "PJSIP/+15551230000@trunk",
            "app": "agent",
            "appArgs": "outbound,tenant7",
            "callerId": "Voxgate <+15559870000>",
            "timeout": "20",
            "channelId": "out-1",
        },
        {"variables": {"X_TENANT": "tenant7"}},
    )
    assert channel.id == "out-1"
    assert channel.state == "Down"


async def test_originate_into_dialplan(fake: FakeAri, ari: AriClient):
    await ari.originate("PJSIP/100", extension="200", context="internal", priority=1, caller_id="100")
    assert last(fake) == (
        "POST",
        "/channels",
        {
            "endpoint": "PJSIP/100",
            "extension": "200",
            "context": "internal",
            "priority": "1",
            "callerId": "100",
        },
        None,
    )
    with pytest.raises(ValueError, match="either app"):
        await ari.originate("PJSIP/100", app="agent", extension="200")


async def test_channel_actions_wire(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call(args=("inbound",)))["id"]
    cases: list[tuple[Any, tuple[str, str, dict[str, str], Any]]] = [
        (ari.answer(ch), ("POST", f"/channels/{ch}/answer", {}, None)),
        (ari.ring(ch), ("POST", f"/channels/{ch}/ring", {}, None)),
        (ari.ring_stop(ch), ("DELETE", f"/channels/{ch}/ring", {}, None)),
        (ari.hold(ch), ("POST", f"/channels/{ch}/hold", {}, None)),
        (ari.unhold(ch), ("DELETE", f"/channels/{ch}/hold", {}, None)),
        (ari.mute(ch, "in"), ("POST", f"/channels/{ch}/mute", {"direction": "in"}, None)),
        (ari.unmute(ch), ("DELETE", f"/channels/{ch}/mute", {}, None)),
        (
            ari.send_dtmf(ch, "12#", between=200, duration=120),
            ("POST", f"/channels/{ch}/dtmf", {"dtmf": "12#", "between": "200", "duration": "120"}, None),
        ),
        (
            ari.redirect(ch, "PJSIP/200"),
            ("POST", f"/channels/{ch}/redirect", {"endpoint": "PJSIP/200"}, None),
        ),
        (
            ari.set_channel_var(ch, "X_LANG", "de"),
            ("POST", f"/channels/{ch}/variable", {"variable": "X_LANG", "value": "de"}, None),
        ),
        (
            ari.get_channel_var(ch, "CALLERID(num)"),
            ("GET", f"/channels/{ch}/variable", {"variable": "CALLERID(num)"}, None),
        ),
        (ari.get_channel(ch), ("GET", f"/channels/{ch}", {}, None)),
    ]
    results = []
    for call, expected in cases:
        results.append(await call)
        assert last(fake) == expected
    assert results[-2] == "+15551230000"  # CALLERID(num) of the inbound caller
    assert results[-1].caller_number == "+15551230000"
    assert (results[-1].context, results[-1].exten) == ("from-trunk", "+15559870000")


async def test_play_record_snoop_continue_hangup_wire(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    playback = await ari.play(ch, ["sound:hello-world", "digits:42"], lang="en", playback_id="pb-1")
    assert last(fake) == (
        "POST",
        f"/channels/{ch}/play",
        {"media": "sound:hello-world,digits:42", "lang": "en", "playbackId": "pb-1"},
        None,
    )
    assert (playback.id, playback.media_uri, playback.target_uri) == (
        "pb-1",
        "sound:hello-world",
        f"channel:{ch}",
    )

    rec = await ari.record(ch, "msg-1", "wav", max_duration_seconds=30, beep=True, terminate_on="#")
    assert last(fake) == (
        "POST",
        f"/channels/{ch}/record",
        {"name": "msg-1", "format": "wav", "maxDurationSeconds": "30", "beep": "true", "terminateOn": "#"},
        None,
    )
    assert (rec.name, rec.format, rec.state) == ("msg-1", "wav", "recording")

    snoop = await ari.snoop(ch, spy="in", app_args="listen", snoop_id="snoop-1")
    assert last(fake) == (
        "POST",
        f"/channels/{ch}/snoop",
        {"app": "agent", "spy": "in", "appArgs": "listen", "snoopId": "snoop-1"},
        None,
    )
    assert snoop.id == "snoop-1"

    await ari.continue_in_dialplan(ch, context="after-agent", extension="s", priority=1)
    assert last(fake) == (
        "POST",
        f"/channels/{ch}/continue",
        {"context": "after-agent", "extension": "s", "priority": "1"},
        None,
    )
    await ari.hangup("snoop-1", "normal")
    assert last(fake) == ("DELETE", "/channels/snoop-1", {"reason": "normal"}, None)
    with pytest.raises(ValueError, match="not both"):
        await ari.hangup(ch, "busy", reason_code=17)


async def test_external_media_audiosocket_matches_the_notes_flow(fake: FakeAri, ari: AriClient):
    # ari.md §5 step 4, literally:
    query = (
        "app=agent&external_host=10.0.0.5:9092&encapsulation=audiosocket&transport=tcp&format=slin16"
        "&data=0b7b1a4e-8f43-4d55-9d6c-2f8a0c4b9f10&channelId=0b7b1a4e-8f43-4d55-9d6c-2f8a0c4b9f10"
    )
    uid = "0b7b1a4e-8f43-4d55-9d6c-2f8a0c4b9f10"
    channel = await ari.external_media(
        "slin16",
        external_host="10.0.0.5:9092",
        encapsulation="audiosocket",
        transport="tcp",
        data=uid,
        channel_id=uid,
    )
    method, path, got, body = last(fake)
    assert (method, path, body) == ("POST", "/channels/externalMedia", None)
    assert got == dict(parse_qsl(query))
    assert channel.id == uid and channel.name.startswith("AudioSocket/10.0.0.5:9092")
    with pytest.raises(ValueError, match="data=<call uuid>"):
        await ari.external_media(
            "slin16", external_host="10.0.0.5:9092", encapsulation="audiosocket", transport="tcp"
        )


async def test_external_media_rtp_and_websocket_channelvars(fake: FakeAri, ari: AriClient):
    rtp = await ari.external_media("ulaw", external_host="127.0.0.1:40000", variables={"CALL": "c1"})
    method, path, query, body = last(fake)
    assert (method, path, body) == ("POST", "/channels/externalMedia", {"variables": {"CALL": "c1"}})
    assert query == {"app": "agent", "external_host": "127.0.0.1:40000", "format": "ulaw"}
    assert set(rtp.channelvars) == {"UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT"}

    ws = await ari.external_media(
        "slin16", encapsulation="none", transport="websocket", connection_type="server"
    )
    assert last(fake)[2] == {
        "app": "agent",
        "encapsulation": "none",
        "transport": "websocket",
        "connection_type": "server",
        "format": "slin16",
    }
    assert ws.channelvars["MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE"] == "640"
    assert ws.channelvars["MEDIA_WEBSOCKET_CONNECTION_ID"]


async def test_external_media_unsupported_combination_is_501(fake: FakeAri, ari: AriClient):
    with pytest.raises(AriNotImplemented) as err:
        await ari.external_media("ulaw", external_host="10.0.0.5:9092", encapsulation="rtp", transport="tcp")
    assert err.value.status == 501
    assert "rtp+udp" in str(err.value) and "POST /channels/externalMedia" in str(err.value)


async def test_bridge_wire(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    bridge = await ari.create_bridge("mixing", bridge_id="b-1", name="call-1")
    assert last(fake) == ("POST", "/bridges", {"type": "mixing", "bridgeId": "b-1", "name": "call-1"}, None)
    assert (bridge.id, bridge.bridge_type) == ("b-1", "mixing")
    await ari.add_channel("b-1", ch, absorb_dtmf=False)
    assert last(fake) == ("POST", "/bridges/b-1/addChannel", {"channel": ch, "absorbDTMF": "false"}, None)
    assert (await ari.get_bridge("b-1")).channels == (ch,)
    await ari.play_on_bridge("b-1", "sound:hello-world", playback_id="bp-1")
    assert last(fake) == (
        "POST",
        "/bridges/b-1/play",
        {"media": "sound:hello-world", "playbackId": "bp-1"},
        None,
    )
    await ari.remove_channel("b-1", ch)
    assert last(fake) == ("POST", "/bridges/b-1/removeChannel", {"channel": ch}, None)
    await ari.destroy_bridge("b-1")
    assert last(fake) == ("DELETE", "/bridges/b-1", {}, None)


async def test_playbacks_recordings_sounds_modules_wire(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    fake.playback_seconds = 5.0
    await ari.play(ch, "sound:hello-world", playback_id="pb-2")
    assert (await ari.get_playback("pb-2")).state in ("queued", "playing")
    assert last(fake)[:2] == ("GET", "/playbacks/pb-2")
    await ari.control_playback("pb-2", "pause")
    assert last(fake) == ("POST", "/playbacks/pb-2/control", {"operation": "pause"}, None)
    await ari.stop_playback("pb-2")
    assert last(fake) == ("DELETE", "/playbacks/pb-2", {}, None)

    await ari.record(ch, "vm-1", "wav")
    assert (await ari.get_live_recording("vm-1")).state == "recording"
    assert last(fake)[:2] == ("GET", "/recordings/live/vm-1")
    await ari.stop_live_recording("vm-1")
    assert last(fake) == ("POST", "/recordings/live/vm-1/stop", {}, None)
    assert await ari.get_stored_recording("vm-1") == {"name": "vm-1", "format": "wav"}
    assert last(fake)[:2] == ("GET", "/recordings/stored/vm-1")
    await ari.delete_stored_recording("vm-1")
    assert last(fake) == ("DELETE", "/recordings/stored/vm-1", {}, None)
    await ari.record(ch, "vm-2", "wav")
    await ari.cancel_live_recording("vm-2")
    assert last(fake) == ("DELETE", "/recordings/live/vm-2", {}, None)

    sounds = await ari.list_sounds(lang="fr")
    assert last(fake) == ("GET", "/sounds", {"lang": "fr"}, None)
    assert [s["id"] for s in sounds] == ["vm-goodbye"]
    assert (await ari.get_module("chan_websocket.so"))["status"] == "Running"
    assert last(fake)[:2] == ("GET", "/asterisk/modules/chan_websocket.so")
    assert len(await ari.list_modules()) == 2


async def test_raw_request_escape_hatch(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    assert await ari.request("POST", f"channels/{ch}/progress") is None
    assert last(fake) == ("POST", f"/channels/{ch}/progress", {}, None)
    pong = await ari.request("GET", "/asterisk/ping")
    assert pong["ping"] == "pong"


async def test_api_key_auth_goes_in_the_query(fake: FakeAri):
    async with AriClient(fake.base_url + "/ari/", "voxgate", "secret", APP, auth="api_key") as client:
        await client.list_channels()
    assert last(fake) == ("GET", "/channels", {"api_key": "voxgate:secret"}, None)


# -- typed errors ------------------------------------------------------------------------------------


async def test_404_after_hangup_says_it_hung_up(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    await ari.hangup(ch)
    with pytest.raises(AriNotFound) as err:
        await ari.answer(ch)
    e = err.value
    assert (e.status, e.method, e.path, e.message) == (
        404,
        "POST",
        f"/channels/{ch}/answer",
        "Channel not found",
    )
    assert "hung up" in str(e) and f"POST /channels/{ch}/answer" in str(e)


async def test_409_channel_not_in_stasis(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    await ari.continue_in_dialplan(ch)
    with pytest.raises(AriConflict) as err:
        await ari.play(ch, "sound:hello-world")
    assert err.value.message == "Channel not in Stasis application"
    assert "not in our Stasis" in str(err.value)


async def test_422_and_400(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    await ari.create_bridge(bridge_id="b-2")
    with pytest.raises(AriUnprocessable, match="Channel not in this bridge"):
        await ari.remove_channel("b-2", ch)
    with pytest.raises(AriUnprocessable, match="not supported"):
        await ari.record(ch, "x", "mp7")
    with pytest.raises(AriError) as err:
        await ari.hangup(ch, "because")
    assert err.value.status == 400


async def test_chan_websocket_channel_not_in_stasis_until_media_socket_connects(
    fake: FakeAri, ari: AriClient
):
    # ari.md §7: adding the websocket channel to a bridge before its media socket connects → 422.
    await ari.create_bridge(bridge_id="b-ws")
    media = await ari.external_media(
        "slin16", encapsulation="none", transport="websocket", connection_type="server"
    )
    with pytest.raises(AriUnprocessable, match="Channel not in Stasis application"):
        await ari.add_channel("b-ws", media.id)
    await fake.media_ws_connected(media.id)
    await ari.add_channel("b-ws", media.id)


async def test_501_unsupported_endpoint(fake: FakeAri, ari: AriClient):
    fake.unsupported.add("GET /asterisk/modules")
    with pytest.raises(AriNotImplemented):
        await ari.list_modules()
    assert len(fake.calls("GET", "/asterisk/modules")) == 1  # 501 is not retried


async def test_get_retries_5xx_then_succeeds(fake: FakeAri, ari: AriClient):
    ch = (await fake.inbound_call())["id"]
    fake.fail_next(503, "Service Unavailable", count=2, path=f"/channels/{ch}")
    channel = await ari.get_channel(ch)
    assert channel.id == ch
    assert len(fake.calls("GET", f"/channels/{ch}")) == 3


async def test_get_gives_up_after_retries_and_posts_are_not_retried(fake: FakeAri, ari: AriClient):
    fake.fail_next(500, "Internal Server Error", count=10)
    with pytest.raises(AriServerError) as err:
        await ari.list_channels()
    assert err.value.status == 500 and err.value.retryable
    assert len(fake.calls("GET", "/channels")) == 3
    with pytest.raises(AriServerError):
        await ari.create_bridge()
    assert len(fake.calls("POST", "/bridges")) == 1


async def test_bad_password_malformed_body_and_connection_refused(fake: FakeAri):
    async with AriClient(fake.base_url, "voxgate", "wrong", APP) as client:
        with pytest.raises(AriAuthError) as err:
            await client.list_channels()
        assert err.value.status == 401
    async with AriClient(fake.base_url, "voxgate", "secret", APP) as client:
        fake.malformed_next()
        with pytest.raises(AriError, match="not JSON"):
            await client.list_bridges()
    port = fake.port
    await fake.stop()
    async with AriClient(f"http://127.0.0.1:{port}", "voxgate", "secret", APP, retry_backoff=0.01) as client:
        with pytest.raises(AriConnectionError, match="is Asterisk running"):
            await client.ping()


# -- event parsing -------------------------------------------------------------------------------------

# ari.md §2, verbatim.
STASIS_START = """{"type": "StasisStart", "application": "agent", "timestamp": "2026-01-05T10:11:12.345+0000",
 "asterisk_id": "52:54:00:12:34:56", "args": ["inbound", "tenant7"],
 "channel": {"id": "1736071872.42", "name": "PJSIP/trunk-0000002a", "state": "Ring",
   "protocol_id": "abc@10.0.0.1", "caller": {"name": "Alice", "number": "+15551230000"},
   "connected": {"name": "", "number": ""}, "accountcode": "",
   "dialplan": {"context": "from-trunk", "exten": "+15559870000", "priority": 2,
                "app_name": "Stasis", "app_data": "agent,inbound,tenant7"},
   "creationtime": "2026-01-05T10:11:12.300+0000", "language": "en"}}"""

CHANNEL = json.loads(STASIS_START)["channel"]
COMMON = {
    "application": "agent",
    "timestamp": "2026-01-05T10:11:13.000+0000",
    "asterisk_id": "52:54:00:12:34:56",
}


def test_stasis_start_from_the_notes():
    ev = parse_event(STASIS_START.encode())
    assert isinstance(ev, StasisStart)
    assert ev.args == ("inbound", "tenant7")
    assert (ev.application, ev.asterisk_id) == ("agent", "52:54:00:12:34:56")
    c = ev.channel
    assert (c.id, c.name, c.state) == ("1736071872.42", "PJSIP/trunk-0000002a", "Ring")
    assert (c.caller_name, c.caller_number) == ("Alice", "+15551230000")
    assert (c.context, c.exten, c.priority, c.app_data) == (
        "from-trunk",
        "+15559870000",
        2,
        "agent,inbound,tenant7",
    )
    assert ev.time is not None and (ev.time.minute, ev.time.microsecond) == (11, 345000)
    assert ev.time.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("extra", "cls", "fields"),
    [
        ({"type": "ChannelDtmfReceived", "digit": "5", "duration_ms": 120}, ChannelDtmfReceived,
         {"digit": "5", "duration_ms": 120}),
        ({"type": "ChannelHangupRequest", "cause": 16, "soft": True}, ChannelHangupRequest,
         {"cause": 16, "soft": True}),
        ({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing"}, ChannelDestroyed,
         {"cause": 16, "cause_txt": "Normal Clearing"}),
        ({"type": "ChannelStateChange"}, ChannelStateChange, {}),
        ({"type": "StasisEnd"}, StasisEnd, {}),
        ({"type": "ChannelTalkingFinished", "duration": 2300}, ChannelTalkingFinished, {"duration": 2300}),
        ({"type": "ChannelVarset", "variable": "X", "value": "1"}, ChannelVarset,
         {"variable": "X", "value": "1"}),
    ],
)  # fmt: skip
def test_channel_events(extra: dict[str, Any], cls: type[AriEvent], fields: dict[str, Any]):
    ev = parse_event({**COMMON, "channel": CHANNEL, **extra})
    assert type(ev) is cls
    for name, value in fields.items():
        assert getattr(ev, name) == value
    assert ev.channel.id == "1736071872.42"  # type: ignore[attr-defined]


def test_other_events():
    glob = parse_event({**COMMON, "type": "ChannelVarset", "variable": "GLOBAL_X", "value": "y"})
    assert isinstance(glob, ChannelVarset) and glob.channel is None
    pb = parse_event(
        {
            **COMMON,
            "type": "PlaybackFinished",
            "playback": {
                "id": "pb-1",
                "media_uri": "sound:hello-world",
                "target_uri": "channel:1736071872.42",
                "state": "done",
            },
        }
    )
    assert isinstance(pb, PlaybackFinished) and (pb.playback.id, pb.playback.state) == ("pb-1", "done")
    rec = parse_event(
        {
            **COMMON,
            "type": "RecordingFinished",
            "recording": {
                "name": "vm-1",
                "format": "wav",
                "target_uri": "channel:1",
                "state": "done",
                "duration": 7,
            },
        }
    )
    assert isinstance(rec, RecordingFinished) and (rec.recording.name, rec.recording.duration) == ("vm-1", 7)
    bridge = {
        "id": "b-1",
        "technology": "simple_bridge",
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": "",
        "channels": ["1736071872.42"],
        "creationtime": COMMON["timestamp"],
    }
    entered = parse_event({**COMMON, "type": "ChannelEnteredBridge", "bridge": bridge, "channel": CHANNEL})
    assert isinstance(entered, ChannelEnteredBridge) and entered.bridge.channels == ("1736071872.42",)
    assert isinstance(parse_event({**COMMON, "type": "BridgeDestroyed", "bridge": bridge}), BridgeDestroyed)
    dial = parse_event(
        {**COMMON, "type": "Dial", "peer": CHANNEL, "dialstatus": "ANSWER", "dialstring": "100"}
    )
    assert isinstance(dial, Dial) and (dial.dialstatus, dial.caller) == ("ANSWER", None)
    assert isinstance(parse_event({**COMMON, "type": "ApplicationRegistered"}), ApplicationRegistered)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"type": "StasisEnd", "application": "agent"}', "without 'channel'"),
        ('{"type": "ChannelDtmfReceived", "digit": 5, "channel": {"id": "1"}}', "not a string"),
        ('{"type": "StasisStart", "args": "x", "channel": {"id": "1"}}', "not a list"),
        ('{"type": "StasisStart", "channel": {"name": "no id"}}', "without 'id'"),
        ('{"type": "StasisStart", "channel": "1.2"}', "expected an object"),
        ('{"application": "agent"}', "no 'type'"),
        ("[1, 2]", "not a JSON object"),
        ("{nope", "not JSON"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_events_never_raise(frame: str | bytes, reason: str):
    ev = parse_event(frame)
    assert isinstance(ev, MalformedEvent)
    assert reason in ev.reason


def test_unknown_event_type():
    ev = parse_event({**COMMON, "type": "ChannelToneDetected", "channel": CHANNEL})
    assert isinstance(ev, UnknownEvent) and ev.type == "ChannelToneDetected" and ev.raw["channel"]["id"]


# -- events WebSocket ------------------------------------------------------------------------------------


async def next_of(events: AsyncIterator[AriEvent], *types: type[AriEvent], within: float = 2.0) -> AriEvent:
    async with asyncio.timeout(within):
        async for ev in events:
            if isinstance(ev, types):
                return ev
    raise AssertionError("events ended")


async def test_events_socket_url_and_the_observed_inbound_sequence(fake: FakeAri, ari: AriClient):
    """ari.md §7: StasisStart (Ring) → answer → ChannelStateChange Up → play → PlaybackStarted →
    PlaybackFinished (done) → DELETE → ChannelHangupRequest → StasisEnd (→ ChannelDestroyed)."""
    async with AriEvents(ari) as events:
        assert events.is_connected
        ws_request = fake.calls("GET", "/events")[0]
        assert ws_request.query == {"app": "agent", "subscribeAll": "false"}
        it = aiter(events)
        await fake.inbound_call(args=("inbound", "tenant7"))
        start = await next_of(it, StasisStart)
        assert isinstance(start, StasisStart) and start.channel.state == "Ring"
        assert start.args == ("inbound", "tenant7")
        ch = start.channel.id
        await ari.answer(ch)
        change = await next_of(it, ChannelStateChange)
        assert change.channel.state == "Up"  # type: ignore[attr-defined]
        await ari.play(ch, "sound:hello-world")
        got = [await next_of(it, PlaybackStarted), await next_of(it, PlaybackFinished)]
        assert [type(e) for e in got] == [PlaybackStarted, PlaybackFinished]
        assert got[1].playback.state == "done"  # type: ignore[attr-defined]
        await ari.hangup(ch)
        ends = [await next_of(it, ChannelHangupRequest, StasisEnd, ChannelDestroyed) for _ in range(3)]
        assert [type(e) for e in ends] == [ChannelHangupRequest, StasisEnd, ChannelDestroyed]


async def test_external_media_channel_gets_stasis_start_with_data_arg(fake: FakeAri, ari: AriClient):
    async with AriEvents(ari) as events:
        it = aiter(events)
        uid = "4f0c6a62-0d6a-4a6f-9e57-51f3a6f5d9b1"
        await ari.external_media("slin16", external_host="10.0.0.5:9092", encapsulation="audiosocket",
                                 transport="tcp", data=uid, channel_id=uid)  # fmt: skip
        start = await next_of(it, StasisStart)
        assert start.channel.id == uid and start.args == (uid,)  # type: ignore[attr-defined]


async def test_reconnects_within_a_second_and_delivers_later_events(fake: FakeAri, ari: AriClient, caplog):
    caplog.set_level(logging.INFO, logger="voxgate.telephony.ari.events")
    got: list[AriEvent] = []
    async with AriEvents(ari) as events:
        events.on(ChannelDtmfReceived, got.append)
        for round_, graceful in enumerate((False, True, False)):
            t0 = time.monotonic()
            await fake.drop(graceful=graceful)
            await fake.wait_connections(round_ + 2, within=1.0)
            await events.wait_connected(1.0)
            assert time.monotonic() - t0 < 1.0
            ch = await fake.inbound_call()
            await fake.dtmf(ch["id"], str(round_))
        async with asyncio.timeout(1.0):
            while len(got) < 3:  # noqa: ASYNC110 - handler appends; nothing else to await
                await asyncio.sleep(0.005)
        assert [e.digit for e in got] == ["0", "1", "2"]  # type: ignore[attr-defined]
        assert events.connects == 4
    messages = [r.getMessage() for r in caplog.records]
    assert sum("disconnected" in m for m in messages) == 3
    assert sum("reconnected" in m for m in messages) == 3


async def test_handler_exceptions_and_bad_frames_do_not_stop_delivery(fake: FakeAri, ari: AriClient, caplog):
    seen: list[str] = []

    def boom(ev: AriEvent) -> None:
        raise RuntimeError("handler bug")

    async def record(ev: StasisStart) -> None:
        seen.append(ev.channel.id)

    async with AriEvents(ari) as events:
        events.on(StasisStart, boom)
        events.on(StasisStart, record)
        it = aiter(events)
        first = await fake.inbound_call()
        await fake.push_raw("{not json")
        await fake.push({"type": "StasisEnd"})  # no channel: malformed
        await fake.push({"type": "ChannelToneDetected", "channel": first})  # not modelled: unknown
        second = await fake.inbound_call()
        assert (await next_of(it, StasisStart)).channel.id == first["id"]  # type: ignore[attr-defined]
        assert (await next_of(it, StasisStart, StasisEnd)).channel.id == second["id"]  # type: ignore[attr-defined]
        assert seen == [first["id"], second["id"]]
        assert events.skipped == 3
    assert "handler bug" in caplog.text
    assert "malformed" in caplog.text


async def test_wrong_password_fails_fast_on_start(fake: FakeAri):
    async with AriClient(fake.base_url, "voxgate", "nope", APP) as client:
        events = AriEvents(client, connect_timeout=0.5)
        with pytest.raises(AriConnectionError, match="HTTP 401"):
            await events.start()


async def test_replaced_app_connection_stops_reconnecting(fake: FakeAri, ari: AriClient):
    async with AriEvents(ari) as first:
        it = aiter(first)
        async with AriEvents(ari) as second:
            await fake.wait_connections(2)
            async with asyncio.timeout(1.0):
                while first.is_connected or not first.replaced:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert len(fake.connect_times) == 2  # the replaced one did not fight back
            assert second.is_connected
            async with asyncio.timeout(1.0):
                seen = [type(ev) async for ev in it]  # its iterator ends instead of hanging
            assert ApplicationReplaced in seen


async def test_events_socket_outlives_the_rest_timeout(fake: FakeAri):
    """The session's total timeout bounds REST calls, not the long-lived events socket."""
    async with AriClient(fake.base_url, "voxgate", "secret", APP, timeout=0.2) as client:
        async with AriEvents(client, heartbeat=0.1) as events:
            await asyncio.sleep(0.6)
            assert events.is_connected and events.connects == 1
            it = aiter(events)
            await fake.inbound_call()
            assert isinstance(await next_of(it, StasisStart), StasisStart)


async def test_cleanup_after_caller_hangup_ignores_404_when_asked(fake: FakeAri, ari: AriClient):
    """ari.md §5 step 5: on the caller's StasisEnd, DELETE the media channel (ignore 404) and the bridge."""
    ch = (await fake.inbound_call())["id"]
    await ari.create_bridge(bridge_id="b-3")
    await fake.caller_hangup(ch)
    await ari.hangup(ch, missing_ok=True)
    await ari.destroy_bridge("b-3", missing_ok=True)
    await ari.destroy_bridge("b-3", missing_ok=True)
    assert [(r.method, r.path) for r in fake.requests[-3:]] == [
        ("DELETE", f"/channels/{ch}"),
        ("DELETE", "/bridges/b-3"),
        ("DELETE", "/bridges/b-3"),
    ]
    with pytest.raises(AriNotFound, match="destroyed or never created"):
        await ari.destroy_bridge("b-3")


async def test_events_socket_query_with_several_apps_subscribe_all_and_api_key(fake: FakeAri):
    async with (
        AriClient(fake.base_url, "voxgate", "secret", APP, auth="api_key") as client,
        AriEvents(client, apps=["agent", "agent-outbound"], subscribe_all=True),
    ):
        pass
    assert fake.calls("GET", "/events")[0].query == {
        "app": "agent,agent-outbound",
        "subscribeAll": "true",
        "api_key": "voxgate:secret",
    }
