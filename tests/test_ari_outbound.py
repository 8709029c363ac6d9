"""Outbound calls through ARI: POST /calls → queue → `POST /channels` → StasisStart when answered
→ bridge + media leg → the agent; busy / no answer from the hangup cause; AMD() results read from
channel variables; cancel while ringing; the calls API's access rules. Reconcile after reconnect.

The fake ARI plays Asterisk (requests are checked against literal values from ari.md §3); the
test plays the media side by connecting to our AudioSocket listener with the router's UUID.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from conftest import wait_for
from fake_ari import FakeAri
from test_ari_inbound import calls_after, connect_media, make_server, wait_request
from voxgate.server.app import VoxgateServer
from voxgate.telephony.ari_outbound import outcome_for_cause
from voxgate.telephony.outbound import OutboundRequest
from voxgate.telephony.outbound.answered import run_answered

CALLER_ID = '"Clinic" <+15550001111>'


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = await FakeAri().start()
    yield server
    await server.stop()


async def start_voxgate(fake: FakeAri, **extra: object) -> VoxgateServer:
    server = make_server(fake.base_url, **{"outbound.calls_per_second": 50, **extra})
    await server.start()
    assert server.ari_events is not None
    await server.ari_events.wait_connected(2.0)
    return server


@pytest.fixture
async def voxgate(fake: FakeAri) -> AsyncIterator[VoxgateServer]:
    server = await start_voxgate(fake)
    yield server
    await server.stop()


def api(server: VoxgateServer) -> str:
    host, port = server.http_sockets[0]
    return f"http://{host}:{port}"


async def post_call(server: VoxgateServer, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api(server)}/calls", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


async def get_call(server: VoxgateServer, call_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{api(server)}/calls/{call_id}") as r:
        assert r.status == 200
        return await r.json()  # type: ignore[no-any-return]


def ring(fake: FakeAri, *, then_cause: int | None = None, after: float = 0.05) -> None:
    """POST /channels rings and never enters Stasis; with `then_cause` the far end gives up."""

    async def originate(p: dict[str, str], v: dict[str, Any], id: str | None = None) -> web.StreamResponse:
        channel = fake.new_channel(p["endpoint"], channel_id=p.get("channelId"), state="Ringing")
        fake.channel_vars[channel["id"]] = {k: str(val) for k, val in v.items()}
        if then_cause is not None:
            fake.later(fake.destroy_channel(channel["id"], then_cause), after)
        return web.json_response(channel)

    fake._routes.insert(0, ("POST", re.compile("^/channels$"), originate))


async def status_becomes(server: VoxgateServer, call_id: str, status: str, within: float = 3.0) -> None:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        seen.update(await get_call(server, call_id))
        return bool(seen["status"] == status)

    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"status stayed {seen['status']}, not {status}"
        await asyncio.sleep(0.02)


async def test_answered_call_runs_the_agent_on_a_media_leg(fake: FakeAri, voxgate: VoxgateServer) -> None:
    start = len(fake.requests)
    status, body = await post_call(
        voxgate,
        {"to": "+1 (555) 123-4567", "caller_id": CALLER_ID, "variables": {"CAMPAIGN": "flu"}},
    )
    assert status == 202, body
    assert (body["status"], body["endpoint"], body["agent"]) == ("queued", "PJSIP/+15551234567", "echo")
    originate = (await wait_request(fake, "POST", "/channels", since=start))[0]
    channel_id = originate.query["channelId"]
    assert originate.query == {
        "endpoint": "PJSIP/+15551234567",
        "app": "voxgate",
        "appArgs": f"outbound,{body['id']}",
        "callerId": CALLER_ID,
        "timeout": "30",
        "channelId": channel_id,
    }
    assert originate.json == {"variables": {"CAMPAIGN": "flu", "VOXGATE_OUTBOUND_ID": body["id"]}}
    # Answered: the fake puts it into Stasis (state Up), so no answer request, then §5's setup.
    media = (await wait_request(fake, "POST", "/channels/externalMedia", since=start))[0]
    assert ("POST", f"/channels/{channel_id}/answer") not in calls_after(fake, start)
    ctx = voxgate.ari_router.calls[media.query["data"]]  # type: ignore[union-attr]
    assert (ctx.direction, ctx.caller_channel_id, ctx.outbound.id) == ("outbound", channel_id, body["id"])
    vc = await connect_media(voxgate, media.query["data"])
    await wait_for(lambda: vc.result.frames_received >= 10, within=3.0)  # the echo agent talks
    await status_becomes(voxgate, body["id"], "answered")
    await fake.caller_hangup(channel_id)
    await status_becomes(voxgate, body["id"], "done")
    assert (await get_call(voxgate, body["id"]))["attempts"] == 1


@pytest.mark.parametrize(
    ("cause", "status"), [(17, "busy"), (19, "no_answer"), (34, "failed"), (1, "failed")]
)
async def test_dial_that_is_not_answered_reports_the_cause(
    fake: FakeAri, voxgate: VoxgateServer, cause: int, status: str
) -> None:
    ring(fake, then_cause=cause)
    _, body = await post_call(voxgate, {"to": "PJSIP/1000", "agent": "echo"})
    await status_becomes(voxgate, body["id"], status)
    final = await get_call(voxgate, body["id"])
    assert final["finished"] is True
    assert final["cause"] == {17: "busy", 19: "no_answer", 34: "congestion", 1: "unallocated"}[cause]
    assert voxgate.ari_router.calls == {}  # type: ignore[union-attr]


def test_hangup_causes_map_to_outcomes() -> None:
    assert outcome_for_cause(17).kind == "busy"
    assert outcome_for_cause(18).kind == outcome_for_cause(19).kind == "no_answer"
    assert (outcome_for_cause(21).kind, outcome_for_cause(21).cause) == ("failed", "rejected")
    assert outcome_for_cause(99).cause == "cause_99"
    assert outcome_for_cause(-1).cause == "vanished while ARI was disconnected"
    # Asterisk 20-22 give an originate that rang out cause 0 ("Unknown") or 16: no answer.
    assert outcome_for_cause(0, "Ringing").kind == outcome_for_cause(16, "Ringing").kind == "no_answer"
    assert (outcome_for_cause(0, "Down").kind, outcome_for_cause(0, "Down").cause) == ("failed", "cause_0")


async def test_originate_that_rings_out_with_cause_0_is_no_answer(
    fake: FakeAri, voxgate: VoxgateServer
) -> None:
    ring(fake, then_cause=0)  # the channel is in state Ringing when it is destroyed
    _, body = await post_call(voxgate, {"to": "PJSIP/1000", "max_attempts": 2, "retry_after_s": 0.05})
    await status_becomes(voxgate, body["id"], "no_answer")
    await wait_for(lambda: len(fake.calls("POST", "/channels")) == 2, within=3.0)  # retried once
    await status_becomes(voxgate, body["id"], "no_answer")
    assert (await get_call(voxgate, body["id"]))["attempts"] == 2


async def test_cancel_while_ringing_hangs_up_the_channel(fake: FakeAri, voxgate: VoxgateServer) -> None:
    ring(fake)
    _, body = await post_call(voxgate, {"to": "PJSIP/1000"})
    originate = (await wait_request(fake, "POST", "/channels"))[0]
    channel_id = originate.query["channelId"]
    async with aiohttp.ClientSession() as http, http.delete(f"{api(voxgate)}/calls/{body['id']}") as r:
        assert r.status == 200
    hangup = await wait_request(fake, "DELETE", f"/channels/{channel_id}")
    assert hangup[0].query == {"reason": "normal"}
    await status_becomes(voxgate, body["id"], "cancelled")
    async with aiohttp.ClientSession() as http, http.delete(f"{api(voxgate)}/calls/{body['id']}") as r:
        assert r.status == 409


async def test_amd_machine_without_a_drop_hangs_up(fake: FakeAri) -> None:
    voxgate = await start_voxgate(fake, **{"outbound.amd": True})
    try:
        ring(fake)
        start = len(fake.requests)
        _, body = await post_call(voxgate, {"to": "+15551234567"})
        originate = (await wait_request(fake, "POST", "/channels", since=start))[0]
        channel_id = originate.query["channelId"]
        # Dialled into the AMD context, not straight into Stasis (ari.md §3 originate).
        assert {k: originate.query[k] for k in ("context", "extension", "priority")} == {
            "context": "voxgate-outbound",
            "extension": "s",
            "priority": "1",
        }
        assert "app" not in originate.query
        # The dialplan ran AMD() and then Stasis(voxgate,outbound,<id>).
        fake.channel_vars[channel_id].update({"AMDSTATUS": "MACHINE", "AMDCAUSE": "LONGGREETING-1500-1500"})
        channel = fake.channels[channel_id]
        channel["state"] = "Up"
        await fake.enter_stasis(channel, ["outbound", body["id"]])
        reads = await wait_request(fake, "GET", f"/channels/{channel_id}/variable", 2, since=start)
        assert [r.query for r in reads] == [{"variable": "AMDSTATUS"}, {"variable": "AMDCAUSE"}]
        media = (await wait_request(fake, "POST", "/channels/externalMedia", since=start))[0]
        await connect_media(voxgate, media.query["data"])
        # No voicemail_drop: hang up on the machine.
        hangup = await wait_request(fake, "DELETE", f"/channels/{channel_id}", since=start)
        assert hangup[0].query == {"reason": "normal"}
        final = await get_call(voxgate, body["id"])
        assert final["amd"] == "machine"
        await status_becomes(voxgate, body["id"], "done")
    finally:
        await voxgate.stop()


class StubSession:
    """The part of CallSession that run_answered uses, recording what it was asked."""

    def __init__(self, heard: list[str]) -> None:
        self.call_id = "test-call"
        self.stt = self.vad_factory = object()
        self.heard = heard
        self.log: list[tuple[str, Any]] = []
        self.ended = False

    async def listen(self, timeout_s: float) -> str:
        self.log.append(("listen", timeout_s))
        return self.heard.pop(0) if self.heard else ""

    async def say(self, text: str) -> None:
        self.log.append(("say", text))

    async def hangup(self, reason: str) -> None:
        self.log.append(("hangup", reason))
        self.ended = True

    async def run_agent(self, name: str) -> None:
        self.log.append(("agent", name))


async def test_voicemail_greeting_in_first_words_gets_the_drop_after_the_beep() -> None:
    request = OutboundRequest(
        to="+15551234567", agent="reminders", voicemail_drop="Your appointment is at 3."
    )
    heard = ["Hi, you've reached Sam.", "Please leave a message after the tone."]
    session = StubSession(heard)
    done = await run_answered(session, request, amd=None, screen_s=3.0)  # type: ignore[arg-type]
    assert done == "voicemail_drop"
    assert session.log == [
        ("listen", 3.0),  # screening: a weak phrase only, not enough alone
        ("listen", 2.0),  # waiting out the greeting: still talking
        ("listen", 2.0),  # quiet: the beep is over
        ("say", "Your appointment is at 3."),
        ("hangup", "voicemail left"),
    ]


async def test_a_person_saying_hello_gets_the_agent() -> None:
    request = OutboundRequest(to="+15551234567", agent="reminders")
    session = StubSession(["Hello?"])
    assert await run_answered(session, request, amd="notsure", screen_s=3.0) == "agent"  # type: ignore[arg-type]
    assert session.log == [("listen", 3.0), ("agent", "reminders")]
    session = StubSession([])
    assert await run_answered(session, request, amd="human", screen_s=3.0) == "agent"  # type: ignore[arg-type]
    assert session.log == [("agent", "reminders")]  # AMD said person: no screening


async def test_calls_api_access_and_bad_input(fake: FakeAri) -> None:
    voxgate = await start_voxgate(fake, **{"http.api_token": "s3cret"})
    try:
        assert (await post_call(voxgate, {"to": "1000"}))[0] == 401
        assert (await post_call(voxgate, {"to": "1000"}, token="wrong"))[0] == 401
        status, body = await post_call(voxgate, {"to": "1000", "colour": "red"}, token="s3cret")
        assert status == 400 and "colour" in body["error"]
        status, body = await post_call(voxgate, {"to": "call me maybe"}, token="s3cret")
        assert status == 400 and "neither an endpoint" in body["error"]
        status, body = await post_call(voxgate, {"to": "1000", "timeout_s": -1}, token="s3cret")
        assert status == 400 and body["error"].startswith("timeout_s:")
        ring(fake)
        status, body = await post_call(voxgate, {"to": "1000"}, token="s3cret")
        assert status == 202 and body["endpoint"] == "PJSIP/1000"
    finally:
        await voxgate.stop()


async def test_calls_api_without_ari_says_how_to_turn_it_on() -> None:
    from voxgate.config import load_config

    server = VoxgateServer(
        load_config(
            overrides={"agent": "echo", "audiosocket.listen": "127.0.0.1:0", "http.listen": "127.0.0.1:0"}
        )
    )
    await server.start()
    try:
        status, body = await post_call(server, {"to": "1000"})
        assert status == 503 and "ari.url" in body["error"]
    finally:
        await server.stop()


async def test_caller_gone_while_events_socket_was_down_is_ended_after_reconnect(
    fake: FakeAri, voxgate: VoxgateServer
) -> None:
    from test_ari_inbound import set_up_call

    caller_id, call_uuid, bridge_id = await set_up_call(fake, voxgate)
    vc = await connect_media(voxgate, call_uuid)
    await wait_for(lambda: vc.result.frames_received >= 5, within=3.0)
    # The caller leaves while we are disconnected: Asterisk's StasisEnd goes nowhere.
    del fake.channels[caller_id]
    fake.in_stasis.discard(caller_id)
    connects = voxgate.ari_events.connects  # type: ignore[union-attr]
    await fake.drop()
    await wait_for(lambda: voxgate.ari_events.connects > connects, within=3.0)  # type: ignore[union-attr]
    await wait_for(lambda: voxgate.ari_router.calls == {}, within=3.0)  # type: ignore[union-attr]
    await asyncio.wait_for(vc.done, 3.0)
    assert ("DELETE", f"/bridges/{bridge_id}") in calls_after(fake, 0)
    await wait_for(lambda: voxgate.audiosocket.active_calls == 0)


async def test_originate_from_python_runs_a_handler_then_hangs_up(
    fake: FakeAri, voxgate: VoxgateServer
) -> None:
    seen: list[Any] = []

    async def handler(session: Any) -> None:
        seen.append((session.context.direction, session.context.outbound.to))

    call = voxgate.originate("PJSIP/1000", handler=handler, caller_id=CALLER_ID, variables={"A": "1"})
    originate = (await wait_request(fake, "POST", "/channels"))[0]
    assert (originate.query["endpoint"], originate.query["callerId"]) == ("PJSIP/1000", CALLER_ID)
    media = (await wait_request(fake, "POST", "/channels/externalMedia"))[0]
    await connect_media(voxgate, media.query["data"])
    assert (await asyncio.wait_for(call.wait(), 3.0)).value == "done"
    assert seen == [("outbound", "PJSIP/1000")]
    hangup = await wait_request(fake, "DELETE", f"/channels/{originate.query['channelId']}")
    assert hangup[0].query == {"reason": "normal"}  # the handler returned: the call is hung up


async def test_voice_app_originate_needs_the_server() -> None:
    from voxgate.telephony.session import NotSupported
    from voxgate.telephony.voice_app import VoiceApp

    with pytest.raises(NotSupported, match="needs voxgate serve with ARI"):
        VoiceApp().originate("+15551234567", agent="x")
