"""`voxgate serve` with ARI: calls entering Stasis(voxgate) get an AudioSocket media leg through
externalMedia and the agent answers them (ari.md §3, §5, §7; audiosocket.md §7 option 2).

The fake ARI server plays Asterisk's control side; the test plays its media side by connecting a
VirtualCaller to our AudioSocket listener with the UUID the router passed as `data`. Expected
requests are literal values from the notes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import wait_for
from fake_ari import FakeAri, Recorded
from voxgate.audio.pacer import MediaClock
from voxgate.config import load_config
from voxgate.server.app import VoxgateServer
from voxgate.testing.caller import CallerScript, VirtualCaller
from voxgate.transports.audiosocket.server import AudioSocketCall

HOST = "127.0.0.1"


def tone_16k(seconds: float) -> bytes:
    n = int(16000 * seconds)
    return struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(n)))


class HangupAgent:
    name = "hangup-test"

    def __init__(self, transfer_to: str | None = None) -> None:
        self.transfer_to = transfer_to

    async def handle(self, call: Any) -> None:
        frames = 0
        async for _ in call:
            frames += 1
            if frames >= 5:
                break
        if self.transfer_to:
            await call.transfer(self.transfer_to)
        else:
            await call.hangup("goodbye")


def make_server(url: str, **extra: object) -> VoxgateServer:
    overrides: dict[str, object] = {
        "agent": "echo",
        "audiosocket.listen": "127.0.0.1:0",
        "http.listen": "127.0.0.1:0",
        "ari.url": url,
        "ari.username": "voxgate",
        "ari.password": "secret",
        "ari.app": "voxgate",
        "ari.media_host": "127.0.0.1",
    }
    overrides.update(extra)
    return VoxgateServer(load_config(overrides=overrides))


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = await FakeAri().start()
    yield server
    await server.stop()


@pytest.fixture
async def voxgate(fake: FakeAri) -> AsyncIterator[VoxgateServer]:
    server = make_server(fake.base_url)
    await server.start()
    assert server.ari_events is not None
    await server.ari_events.wait_connected(2.0)
    yield server
    await server.stop()


def as_port(server: VoxgateServer) -> int:
    return server.audiosocket.sockets[0][1]


def calls_after(fake: FakeAri, start: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests[start:]]


async def wait_request(
    fake: FakeAri, method: str, path: str, count: int = 1, since: int = 0
) -> list[Recorded]:
    def matching() -> list[Recorded]:
        return [r for r in fake.requests[since:] if (r.method, r.path) == (method, path)]

    await wait_for(lambda: len(matching()) >= count, within=2.0)
    return matching()


async def set_up_call(fake: FakeAri, server: VoxgateServer) -> tuple[str, str, str]:
    """A caller enters Stasis; returns (caller channel id, media uuid, bridge id) once the
    router has bridged both legs. Asserts the literal REST sequence of ari.md §5."""
    start = len(fake.requests)
    caller = await fake.inbound_call(caller_number="+15551230000", exten="+15559870000")
    caller_id = caller["id"]
    media = (await wait_request(fake, "POST", "/channels/externalMedia", since=start))[-1]
    call_uuid = media.query["data"]
    bridge_posts = [r for r in fake.requests[start:] if (r.method, r.path) == ("POST", "/bridges")]
    assert [r.query for r in bridge_posts] == [{"type": "mixing"}]
    bridge_id = fake.requests[start + 2].path.split("/")[2]
    assert calls_after(fake, start)[:4] == [
        ("POST", f"/channels/{caller_id}/answer"),
        ("POST", "/bridges"),
        ("POST", f"/bridges/{bridge_id}/addChannel"),
        ("POST", "/channels/externalMedia"),
    ]
    assert fake.requests[start + 2].query == {"channel": caller_id}
    assert media.query == {
        "app": "voxgate",
        "external_host": f"127.0.0.1:{as_port(server)}",
        "encapsulation": "audiosocket",
        "transport": "tcp",
        "format": "slin16",
        "data": call_uuid,
        "channelId": call_uuid,
    }
    assert len(call_uuid) == 36 and call_uuid.count("-") == 4
    # The media channel's StasisStart (args [uuid]) → it joins the bridge.
    adds = await wait_request(fake, "POST", f"/bridges/{bridge_id}/addChannel", 2, since=start)
    assert adds[1].query == {"channel": call_uuid}
    assert fake.bridges[bridge_id]["channels"] == [caller_id, call_uuid]
    ctx = server.ari_router.calls[call_uuid]  # type: ignore[union-attr]
    assert (ctx.caller_channel_id, ctx.caller_number, ctx.exten, ctx.bridge_id) == (
        caller_id,
        "+15551230000",
        "+15559870000",
        bridge_id,
    )
    return caller_id, call_uuid, bridge_id


async def connect_media(server: VoxgateServer, call_uuid: str, seconds: float = 10.0) -> VirtualCaller:
    """Play Asterisk's AudioSocket channel: connect with the UUID, speak 16 kHz audio."""
    loop = asyncio.get_running_loop()
    script = CallerScript(audio=tone_16k(1.0), rate=16000, call_uuid=call_uuid, hangup_after=seconds)
    _, vc = await loop.create_connection(lambda: VirtualCaller(script, MediaClock()), HOST, as_port(server))
    return vc


async def test_caller_hangup_tears_down_media_and_bridge(fake: FakeAri, voxgate: VoxgateServer) -> None:
    caller_id, call_uuid, bridge_id = await set_up_call(fake, voxgate)
    vc = await connect_media(voxgate, call_uuid)
    await wait_for(lambda: vc.result.frames_received >= 10, within=3.0)  # the echo agent answers
    assert voxgate.audiosocket.active_calls == 1
    mark = len(fake.requests)
    await fake.caller_hangup(caller_id)
    result = await asyncio.wait_for(vc.done, 2.0)
    assert result.ended_by in ("agent-hangup", "server-closed")
    await wait_for(lambda: ("DELETE", f"/bridges/{bridge_id}") in calls_after(fake, mark), within=2.0)
    assert calls_after(fake, mark) == [
        ("DELETE", f"/channels/{call_uuid}"),
        ("DELETE", f"/bridges/{bridge_id}"),
    ]
    await wait_for(lambda: voxgate.audiosocket.active_calls == 0)
    assert voxgate.audiosocket.outcomes.get(call_uuid) == "caller-hangup"
    assert voxgate.ari_router.calls == {}  # type: ignore[union-attr]
    assert bridge_id not in fake.bridges and call_uuid not in fake.channels


async def test_agent_hangup_hangs_up_the_caller(fake: FakeAri, voxgate: VoxgateServer) -> None:
    voxgate.agent = HangupAgent()
    caller_id, call_uuid, bridge_id = await set_up_call(fake, voxgate)
    mark = len(fake.requests)
    vc = await connect_media(voxgate, call_uuid)
    result = await asyncio.wait_for(vc.done, 3.0)
    assert result.ended_by == "agent-hangup"
    await wait_for(lambda: ("DELETE", f"/bridges/{bridge_id}") in calls_after(fake, mark), within=2.0)
    hangups = [r for r in fake.requests[mark:] if r.method == "DELETE"]
    assert [(r.path, r.query) for r in hangups] == [
        (f"/channels/{caller_id}", {"reason": "normal"}),
        (f"/channels/{call_uuid}", {}),
        (f"/bridges/{bridge_id}", {}),
    ]
    assert not fake.calls("POST", f"/channels/{caller_id}/continue")
    assert voxgate.ari_router.calls == {}  # type: ignore[union-attr]
    await wait_for(lambda: caller_id not in fake.channels)


async def test_agent_transfer_continues_the_caller_in_dialplan(fake: FakeAri, voxgate: VoxgateServer) -> None:
    voxgate.agent = HangupAgent(transfer_to="200")
    caller_id, call_uuid, bridge_id = await set_up_call(fake, voxgate)
    mark = len(fake.requests)
    vc = await connect_media(voxgate, call_uuid)
    assert (await asyncio.wait_for(vc.done, 3.0)).ended_by == "agent-hangup"
    cont = await wait_request(fake, "POST", f"/channels/{caller_id}/continue")
    assert cont[0].query == {"context": "from-trunk", "extension": "200", "priority": "1"}
    assert ("DELETE", f"/channels/{caller_id}") not in calls_after(fake, mark)
    assert ("DELETE", f"/bridges/{bridge_id}") in calls_after(fake, mark)
    assert voxgate.audiosocket.outcomes.get(call_uuid) == "transfer:200"
    assert caller_id in fake.channels  # still alive, back in the dialplan
    assert voxgate.ari_router.calls == {}  # type: ignore[union-attr]


async def test_vanished_channel_is_logged_and_the_next_call_is_served(
    fake: FakeAri, voxgate: VoxgateServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voxgate.ari.calls")
    fake.fail_next(404, "Channel not found", method="POST")  # the answer
    mark = len(fake.requests)
    caller = await fake.inbound_call()
    await wait_for(
        lambda: any("setup failed at answer" in r.getMessage() for r in caplog.records), within=2.0
    )
    record = next(r for r in caplog.records if "setup failed at answer" in r.getMessage())
    assert getattr(record, "call_id", "-") != "-"
    assert ("POST", "/bridges") not in calls_after(fake, mark)
    await wait_for(lambda: voxgate.ari_router.calls == {})  # type: ignore[union-attr]
    assert ("POST", f"/channels/{caller['id']}/answer") in calls_after(fake, mark)

    # a 5xx on externalMedia: caller hung up with a reason, bridge destroyed
    fake.fail_next(500, "Internal Server Error", path="/channels/externalMedia")
    mark = len(fake.requests)
    caller = await fake.inbound_call()
    await wait_for(lambda: fake.bridges == {} and len(fake.calls("DELETE")) >= 3, within=2.0)
    deletes = [(r.path, r.query) for r in fake.requests[mark:] if r.method == "DELETE"]
    assert deletes[0] == (f"/channels/{caller['id']}", {"reason": "failure"})
    assert voxgate.ari_router.calls == {}  # type: ignore[union-attr]

    # the router still serves the next call end to end
    caller_id, call_uuid, _ = await set_up_call(fake, voxgate)
    vc = await connect_media(voxgate, call_uuid)
    await wait_for(lambda: vc.result.frames_received >= 5, within=3.0)
    await fake.caller_hangup(caller_id)
    await asyncio.wait_for(vc.done, 2.0)


async def test_media_channel_that_never_connects_hangs_up_the_caller(
    fake: FakeAri, voxgate: VoxgateServer
) -> None:
    caller_id, call_uuid, bridge_id = await set_up_call(fake, voxgate)
    mark = len(fake.requests)
    await fake.destroy_channel(call_uuid, 41)  # Asterisk could not reach our AudioSocket port
    hangup = await wait_request(fake, "DELETE", f"/channels/{caller_id}", since=mark)
    assert hangup[0].query == {"reason": "failure"}
    await wait_request(fake, "DELETE", f"/bridges/{bridge_id}", since=mark)
    assert voxgate.ari_router.calls == {}  # type: ignore[union-attr]


async def test_dialplan_only_call_is_unchanged(fake: FakeAri, voxgate: VoxgateServer) -> None:
    mark = len(fake.requests)
    seen: list[AudioSocketCall] = []

    class Agent:
        name = "plain"

        async def handle(self, call: Any) -> None:
            seen.append(call)
            await call.transfer("300")

    voxgate.agent = Agent()
    vc = await connect_media(voxgate, "40325ec2-5efd-4bd3-805f-53576e581d13")
    assert (await asyncio.wait_for(vc.done, 2.0)).ended_by == "agent-hangup"
    await asyncio.sleep(0.05)
    assert fake.requests[mark:] == []  # no ARI for a call without an ARI context
    assert voxgate.audiosocket.outcomes.get("40325ec2-5efd-4bd3-805f-53576e581d13") == "transfer:300"


async def test_server_connects_to_ari_events_on_start(fake: FakeAri) -> None:
    server = make_server(fake.base_url)
    await server.start()
    try:
        await fake.wait_connections(1)
        assert fake.sockets[0].apps == {"voxgate"}
    finally:
        await server.stop()
    await wait_for(lambda: fake.sockets == [])


async def test_audiosocket_works_while_ari_is_down(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    server = make_server("http://127.0.0.1:1")  # nothing listens there
    assert server.ari_events is None
    await server.start()
    try:
        assert server.ari_events is not None and not server.ari_events.is_connected
        vc = await connect_media(server, "40325ec2-5efd-4bd3-805f-53576e581d13", seconds=0.6)
        result = await asyncio.wait_for(vc.done, 3.0)
        assert result.frames_received > 5  # the echo agent served it
    finally:
        await server.stop()
    assert any("ARI events: connect" in r.getMessage() for r in caplog.records)
