"""ARI calls on the other media legs: externalMedia RTP (ulaw over UDP) and chan_websocket.

The fake ARI plays Asterisk's control side; the media side is a fake written from the notes:
`fake_rtp_peer` (Asterisk's UnicastRTP end, packets packed by hand) and `fake_media_ws`
(Asterisk's /media/<id> WebSocket). Expected requests are literal values from ari.md §3, §6, §7.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from conftest import wait_for
from fake_ari import FakeAri
from fake_rtp_peer import RtpPeer, rtp
from test_ari_inbound import calls_after, make_server, wait_request
from voxgate.server.app import VoxgateServer

ULAW_TONE = bytes(range(0x10, 0x10 + 160))  # 160 distinct μ-law bytes: 20 ms at 8 kHz


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = await FakeAri().start()
    yield server
    await server.stop()


async def start(fake: FakeAri, **extra: object) -> VoxgateServer:
    server = make_server(fake.base_url, **extra)
    await server.start()
    assert server.ari_events is not None
    await server.ari_events.wait_connected(2.0)
    return server


def rtp_media(fake: FakeAri, peer: RtpPeer, *, address: str = "127.0.0.1") -> None:
    """externalMedia rtp+udp as Asterisk answers it (ari.md §3, §7): a UnicastRTP channel whose
    channelvars say where to send our RTP, then its StasisStart."""

    async def external_media(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        assert (p.get("encapsulation"), p.get("transport")) == ("rtp", "udp")
        channel = fake.new_channel(
            f"UnicastRTP/{p['external_host']}",
            channel_id=p.get("channelId"),
            channelvars={"UNICASTRTP_LOCAL_ADDRESS": address, "UNICASTRTP_LOCAL_PORT": str(peer.port)},
        )
        channel["state"] = "Up"
        fake.later(fake.enter_stasis(channel, []))
        return web.json_response(channel)

    fake._routes.insert(0, ("POST", re.compile("^/channels/externalMedia$"), external_media))


async def test_rtp_leg_carries_the_call_both_ways(fake: FakeAri) -> None:
    voxgate = await start(fake, **{"ari.media": "rtp"})
    peer = await RtpPeer.open()
    try:
        rtp_media(fake, peer)
        caller = await fake.inbound_call()
        media = (await wait_request(fake, "POST", "/channels/externalMedia"))[0]
        call_uuid = media.query["channelId"]
        port = media.query["external_host"].rpartition(":")[2]
        assert media.query == {
            "app": "voxgate",
            "external_host": f"127.0.0.1:{port}",
            "encapsulation": "rtp",
            "transport": "udp",
            "format": "ulaw",
            "channelId": call_uuid,
        }
        # The media channel joins the bridge; only then does the agent start.
        ctx = voxgate.ari_router.calls[call_uuid]  # type: ignore[union-attr]
        await wait_for(lambda: ctx.agent_started, within=2.0)
        assert fake.bridges[ctx.bridge_id]["channels"] == [caller["id"], call_uuid]
        # Asterisk's RTP in (PT 0, 20 ms, seq +1, ts +160) → the echo agent → our RTP out.
        for n in range(25):
            peer.send(rtp(0, 1000 + n, 160 * n, 0x1234, ULAW_TONE), int(port))
            await asyncio.sleep(0.02)
        got = await peer.wait_received(30, within=2.0)
        assert {p.pt for p in got} == {0} and len({p.ssrc for p in got}) == 1
        assert any(p.payload == ULAW_TONE for p in got)  # our own audio came back
        # Keys: ARI's ChannelDtmfReceived on the caller reaches the leg's inbound stream.
        await fake.dtmf(caller["id"], "7")
        await wait_for(lambda: ctx.leg.dtmf_in == 1, within=2.0)
        # The caller hangs up: media channel and bridge go, the UDP leg closes.
        mark = len(fake.requests)
        await fake.caller_hangup(caller["id"])
        await wait_for(lambda: ctx.leg.end_cause is not None, within=2.0)
        await wait_for(lambda: ("DELETE", f"/bridges/{ctx.bridge_id}") in calls_after(fake, mark), within=2.0)
        assert ("DELETE", f"/channels/{call_uuid}") in calls_after(fake, mark)
        assert voxgate.ari_router.calls == {}  # type: ignore[union-attr]
    finally:
        peer.close()
        await voxgate.stop()


async def test_rtp_agent_hangup_hangs_up_the_caller(fake: FakeAri) -> None:
    from test_ari_inbound import HangupAgent

    voxgate = await start(fake, **{"ari.media": "rtp"})
    voxgate.agent = HangupAgent()
    peer = await RtpPeer.open()
    try:
        rtp_media(fake, peer, address="0.0.0.0")  # Asterisk bound to every interface: use ARI's host
        caller = await fake.inbound_call()
        media = (await wait_request(fake, "POST", "/channels/externalMedia"))[0]
        port = int(media.query["external_host"].rpartition(":")[2])
        for n in range(10):
            peer.send(rtp(0, n, 160 * n, 99, ULAW_TONE), port)
            await asyncio.sleep(0.02)
        hangup = await wait_request(fake, "DELETE", f"/channels/{caller['id']}")
        assert hangup[0].query == {"reason": "normal"}
        assert peer.received, "the leg sent RTP to ARI's host when Asterisk said 0.0.0.0"
    finally:
        peer.close()
        await voxgate.stop()


async def test_rtp_media_with_slin16_is_refused_in_the_config() -> None:
    from voxgate.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="rtp_format"):
        load_config(
            overrides={
                "ari.url": "http://127.0.0.1:8088",
                "ari.username": "u",
                "ari.password": "p",
                "ari.rtp_format": "slin16",
            }
        )


async def test_at_capacity_a_stasis_call_goes_back_to_the_dialplan(fake: FakeAri) -> None:
    import aiohttp

    voxgate = await start(fake, **{"ari.media": "rtp", "audiosocket.max_calls": 1})
    peer = await RtpPeer.open()
    try:
        rtp_media(fake, peer)
        await fake.inbound_call()
        await wait_for(lambda: voxgate.active_calls == 1, within=2.0)
        second = await fake.inbound_call(caller_number="+15550009999")
        cont = await wait_request(fake, "POST", f"/channels/{second['id']}/continue")
        assert cont[0].query == {}  # the next priority: the dialplan's fallback after Stasis()
        assert len(voxgate.ari_router.calls) == 1  # type: ignore[union-attr]
        host, port = voxgate.http_sockets[0]
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/metrics") as r:
            text = await r.text()
        assert "voxgate_ari_calls_refused_total 1.0" in text
        assert "voxgate_ari_connected 1.0" in text
        assert "voxgate_ari_calls 1.0" in text
        assert 'voxgate_outbound_results_total{result="answered"} 0.0' in text
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/ready") as r:
            assert r.status == 503 and (await r.json())["reason"] == "at call capacity"  # an RTP leg counts
    finally:
        peer.close()
        await voxgate.stop()


async def test_ready_is_503_while_the_events_socket_is_down(fake: FakeAri) -> None:
    import aiohttp

    voxgate = await start(fake)
    host, port = voxgate.http_sockets[0]
    try:
        await fake.stop()
        await wait_for(lambda: not voxgate.ari_events.is_connected, within=2.0)  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/ready") as r:
            assert r.status == 503
            assert "ARI events socket" in (await r.json())["reason"]
    finally:
        await voxgate.stop()


async def test_websocket_leg_carries_the_call_and_hangs_up_both_ways() -> None:
    from fake_media_ws import FakeMediaWs

    media_ws = FakeMediaWs()
    fake = await FakeAri(media_ws=media_ws).start()
    voxgate = await start(fake, **{"ari.media": "websocket"})
    try:
        caller = await fake.inbound_call()
        media = (await wait_request(fake, "POST", "/channels/externalMedia"))[0]
        call_uuid = media.query["channelId"]
        assert media.query == {  # ari.md §3: none + websocket, server mode, no external_host
            "app": "voxgate",
            "encapsulation": "none",
            "transport": "websocket",
            "connection_type": "server",
            "format": "slin16",
            "channelId": call_uuid,
        }
        conn = await media_ws.wait_connection(within=2.0)
        assert conn.protocol == "media"
        # StasisStart came only once the socket connected (§7); then the channel is bridged.
        ctx = voxgate.ari_router.calls[call_uuid]  # type: ignore[union-attr]
        await wait_for(lambda: ctx.agent_started, within=2.0)
        assert fake.bridges[ctx.bridge_id]["channels"] == [caller["id"], call_uuid]
        assert ctx.leg.inbound_format.sample_rate == 16000
        # Audio both ways through the echo agent.
        tone = bytes(range(256)) * 2 + bytes(128)  # 640 bytes = 20 ms of slin16
        conn.play([tone] * 20)
        await wait_for(lambda: any(frame == tone for frame in conn.audio_in), within=3.0)
        # Keys from chan_websocket's DTMF_END reach the leg.
        await conn.dtmf("5")
        await wait_for(lambda: ctx.leg.dtmf_in == 1, within=2.0)
        # The caller hangs up: voxgate hangs the media channel up, Asterisk closes the socket.
        mark = len(fake.requests)
        await fake.caller_hangup(caller["id"])
        await asyncio.wait_for(conn.closed.wait(), 2.0)
        await wait_for(lambda: ctx.leg.end_cause is not None, within=2.0)
        assert ("DELETE", f"/channels/{call_uuid}") in calls_after(fake, mark)
        await wait_for(lambda: voxgate.ari_router.calls == {}, within=2.0)  # type: ignore[union-attr]
    finally:
        await voxgate.stop()
        await fake.stop()


async def test_websocket_agent_hangup_sends_hangup_and_ends_the_caller() -> None:
    from fake_media_ws import FakeMediaWs
    from test_ari_inbound import HangupAgent

    media_ws = FakeMediaWs()
    fake = await FakeAri(media_ws=media_ws).start()
    voxgate = await start(fake, **{"ari.media": "websocket"})
    voxgate.agent = HangupAgent()
    try:
        caller = await fake.inbound_call()
        conn = await media_ws.wait_connection(within=2.0)
        conn.play([bytes(640)] * 10)
        hangup = await wait_request(fake, "DELETE", f"/channels/{caller['id']}")
        assert hangup[0].query == {"reason": "normal"}
        assert "HANGUP" in conn.command_names
    finally:
        await voxgate.stop()
        await fake.stop()


async def test_agent_keys_go_out_through_ari(fake: FakeAri) -> None:
    class KeysAgent:
        name = "keys"

        async def handle(self, call: Any) -> None:
            await call.send_dtmf("12#")
            await call.hangup("done")

    voxgate = await start(fake, **{"ari.media": "rtp"})
    voxgate.agent = KeysAgent()
    peer = await RtpPeer.open()
    try:
        rtp_media(fake, peer)
        caller = await fake.inbound_call()
        sent = await wait_request(fake, "POST", f"/channels/{caller['id']}/dtmf")
        assert sent[0].query == {"dtmf": "12#"}
        await wait_request(fake, "DELETE", f"/channels/{caller['id']}")
    finally:
        peer.close()
        await voxgate.stop()
