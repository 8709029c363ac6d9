"""The HTTP side of VoxgateServer: /health, /ready, /metrics, against live AudioSocket calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import SILENCE_8K, RawClient, wait_for
from voxgate.config import load_config
from voxgate.server.app import VoxgateServer


def make_server(**extra: object) -> VoxgateServer:
    overrides: dict[str, object] = {
        "agent": "echo",
        "audiosocket.listen": "127.0.0.1:0",
        "http.listen": "127.0.0.1:0",
    }
    overrides.update(extra)
    return VoxgateServer(load_config(overrides=overrides))


@pytest.fixture
async def voxgate() -> AsyncIterator[VoxgateServer]:
    server = make_server(**{"audiosocket.max_calls": 2})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(voxgate: VoxgateServer) -> AsyncIterator[aiohttp.ClientSession]:
    host, port = voxgate.http_sockets[0]
    async with aiohttp.ClientSession(base_url=f"http://{host}:{port}") as session:
        yield session


def as_port(server: VoxgateServer) -> int:
    return server.audiosocket.sockets[0][1]


async def scrape(http: aiohttp.ClientSession) -> dict[str, float]:
    """Every sample of /metrics, keyed `name` or `name{label=value,...}`."""
    async with http.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


async def test_health(http: aiohttp.ClientSession) -> None:
    async with http.get("/health") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_ready_until_at_capacity(voxgate: VoxgateServer, http: aiohttp.ClientSession) -> None:
    async with http.get("/ready") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {"accepting": True, "active_calls": 0, "max_calls": 2}

    clients = [await RawClient.connect(as_port(voxgate)) for _ in range(2)]
    for client in clients:
        await client.start_call()
    async with http.get("/ready") as resp:
        assert resp.status == 503
        body = await resp.json()
    assert body["active_calls"] == 2
    assert body["reason"] == "at call capacity"

    await clients[0].close()
    await wait_for(lambda: voxgate.audiosocket.active_calls == 1)
    async with http.get("/ready") as resp:
        assert resp.status == 200
    await clients[1].close()


async def test_ready_503_while_shutting_down() -> None:
    server = make_server()
    await server.start()
    host, port = server.http_sockets[0]
    async with aiohttp.ClientSession(base_url=f"http://{host}:{port}") as session:
        server.audiosocket.accepting = False  # the first thing stop() does
        async with session.get("/ready") as resp:
            assert resp.status == 503
            assert "not accepting" in (await resp.json())["reason"]
    await server.stop()


async def test_metrics_follow_a_live_call(voxgate: VoxgateServer, http: aiohttp.ClientSession) -> None:
    m0 = await scrape(http)
    assert m0["voxgate_active_calls"] == 0
    assert m0["voxgate_max_calls"] == 2
    assert m0["voxgate_calls_total"] == 0
    assert m0["voxgate_frames_in_total"] == 0
    assert m0["voxgate_frames_out_total"] == 0

    client = await RawClient.connect(as_port(voxgate))
    await client.start_call()
    await client.send(SILENCE_8K * 5)
    await client.read_timed(0.1)
    m1 = await scrape(http)
    assert m1["voxgate_active_calls"] == 1
    assert m1["voxgate_calls_total"] == 1
    assert m1["voxgate_frames_in_total"] == 5
    assert m1["voxgate_frames_out_total"] >= 5

    await client.send(SILENCE_8K * 3)
    await client.read_timed(0.1)
    m2 = await scrape(http)
    assert m2["voxgate_frames_in_total"] == 8
    assert m2["voxgate_frames_out_total"] >= m1["voxgate_frames_out_total"] + 3

    await client.close()
    await wait_for(lambda: voxgate.audiosocket.active_calls == 0)
    m3 = await scrape(http)
    assert m3["voxgate_active_calls"] == 0
    # Counters of ended calls are folded into the totals: nothing goes backwards.
    assert m3["voxgate_frames_in_total"] == 8
    assert m3["voxgate_frames_out_total"] >= m2["voxgate_frames_out_total"]
    assert m3["voxgate_calls_ended_total{cause=caller_hung_up}"] == 1
    assert m3["voxgate_call_duration_seconds_count"] == 1
    assert 0.1 < m3["voxgate_call_duration_seconds_sum"] < 5


async def test_metrics_count_refused(voxgate: VoxgateServer, http: aiohttp.ClientSession) -> None:
    clients = [await RawClient.connect(as_port(voxgate)) for _ in range(2)]
    for client in clients:
        await client.start_call()
    extra = await RawClient.connect(as_port(voxgate))
    assert await extra.read_to_eof(1.0) == b"\x00\x00\x00"
    m = await scrape(http)
    assert m["voxgate_calls_refused_total"] == 1
    assert m["voxgate_active_calls"] == 2
    for client in [*clients, extra]:
        await client.close()


async def test_stop_hangs_up_live_calls() -> None:
    server = make_server()
    await server.start()
    client = await RawClient.connect(as_port(server))
    await client.start_call()
    await asyncio.wait_for(server.stop(), 3)
    data = await client.read_to_eof(1.0)
    assert data.endswith(b"\x00\x00\x00")
    await client.close()


async def test_ready_503_while_the_agent_loads_models() -> None:
    """A load balancer must not send calls before the models are loaded."""
    from voxgate.agent.config import AgentConfig, ProviderConfig

    release = asyncio.Event()
    server = make_server(
        agent="slow",
        agents={
            "slow": AgentConfig(
                stt=[ProviderConfig(name="scripted")],
                llm=[ProviderConfig(name="scripted")],
                tts=[ProviderConfig(name="scripted")],
                vad=ProviderConfig(name="scripted"),
            ).model_dump()
        },
    )

    async def prepare() -> None:
        await release.wait()

    server.agent.prepare = prepare  # type: ignore[attr-defined]
    await server.start()
    host, port = server.http_sockets[0]
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
            async with http.get("/ready") as resp:
                assert resp.status == 503
                assert (await resp.json())["reason"] == "loading models"
            release.set()
            await asyncio.sleep(0.01)
            async with http.get("/ready") as resp:
                assert resp.status == 200
    finally:
        await server.stop()
