"""After AudioSocket() returns, the dialplan asks voxgate how the call ended (GET /calls/<uuid>/outcome).

AudioSocket gives Asterisk the same `00 00 00` for a goodbye, a transfer and a refusal, so this is
how a dialplan tells them apart (see `voxgate asterisk-config`).
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from conftest import HOST, RawClient, StartServer, port_of, wait_for
from voxgate.server.http import build_http_app
from voxgate.transports.audiosocket.server import AudioSocketCall, AudioSocketServer, CallOutcomes


async def outcome_of(server: AudioSocketServer, call_id: str) -> tuple[int, str]:
    runner = web.AppRunner(build_http_app(server))
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{HOST}:{port}/calls/{call_id}/outcome") as resp:
                return resp.status, await resp.text()
    finally:
        await runner.cleanup()


async def end_call_with(start_server: StartServer, act: str) -> tuple[AudioSocketServer, RawClient]:
    async def agent(call: AudioSocketCall) -> None:
        if act == "transfer":
            await call.transfer("operator")
        elif act == "goodbye":
            await call.hangup("agent said goodbye")
        else:
            await call.wait_ended()

    server = await start_server(agent)
    client = await RawClient.connect(port_of(server))
    await client.send_uuid()
    if act == "caller":
        await client.read_message()
        await client.close()
    else:
        assert (await client.read_to_eof()).endswith(b"\x00\x00\x00")  # the AudioSocket hangup
    await wait_for(lambda: server.active_calls == 0)
    return server, client


async def test_a_transfer_is_told_with_its_target(start_server: StartServer) -> None:
    server, client = await end_call_with(start_server, "transfer")
    assert await outcome_of(server, client.call_uuid) == (200, "transfer:operator")
    assert await outcome_of(server, client.call_uuid.upper()) == (200, "transfer:operator")


async def test_a_goodbye_is_a_hangup(start_server: StartServer) -> None:
    server, client = await end_call_with(start_server, "goodbye")
    assert await outcome_of(server, client.call_uuid) == (200, "hangup")


async def test_a_caller_hangup(start_server: StartServer) -> None:
    server, client = await end_call_with(start_server, "caller")
    assert await outcome_of(server, client.call_uuid) == (200, "caller-hangup")


async def test_an_unknown_call_is_404_so_the_dialplan_falls_back(start_server: StartServer) -> None:
    server = await start_server()
    assert await outcome_of(server, "40325ec2-5efd-4bd3-805f-53576e581d13") == (404, "unknown")


def test_outcomes_are_bounded_oldest_first() -> None:
    outcomes = CallOutcomes(keep=2)
    for i in range(3):
        outcomes.set(f"call-{i}", "hangup")
    assert outcomes.get("call-0") is None and outcomes.get("call-2") == "hangup"
