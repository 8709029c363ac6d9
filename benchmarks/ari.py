"""ARI events plane: dispatch latency and reconnect time against the fake ARI server on loopback.

The fake (tests/fake_ari.py) runs as its own process. It stamps each event with
time.monotonic_ns() as it sends it; our handler records receive time (CLOCK_MONOTONIC is shared
by processes), so the latency covers WebSocket send → aiohttp read → JSON parse → typed event →
dispatcher → handler. Events are paced at `--rate` per second (plus one unpaced burst for
throughput). Reconnect: the fake aborts the events socket `--kills` times, `--kill-interval` s
apart; we report kill → new socket accepted (server clock) and kill → `connected` again (client).

    .venv/bin/python benchmarks/ari.py [--events 10000 --rate 2000 --kills 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from stats import summary
from voxgate.telephony.ari import AriClient, AriEvents, ChannelVarset

ROOT = Path(__file__).resolve().parent.parent
SINK: list[Callable[[ChannelVarset], None]] = [lambda ev: None]


def pct(values: list[float]) -> dict[str, float | None]:
    return summary(values, ("n", "p50", "p99", "max"))


async def start_fake() -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tests" / "fake_ari.py"), "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    return proc, int(line)


async def latency_run(
    http: aiohttp.ClientSession, base: str, events: AriEvents, n: int, rate: float
) -> tuple[list[float], float]:
    """n events at `rate`/s (0 = as fast as possible) → per-event latency in ms, and wall seconds."""
    received: list[float] = []
    done = asyncio.Event()

    def on_var(ev: ChannelVarset) -> None:
        received.append((time.monotonic_ns() - ev.raw["sent_ns"]) / 1e6)
        if len(received) >= n:
            done.set()

    SINK[0] = on_var  # one run's handler at a time
    start = time.monotonic()
    async with http.post(f"{base}/_fake/burst", params={"n": str(n), "rate": str(rate)}) as resp:
        await resp.json()
    async with asyncio.timeout(30):
        await done.wait()
    return received, time.monotonic() - start


async def reconnect_run(
    http: aiohttp.ClientSession, base: str, events: AriEvents, kills: int, interval: float
) -> dict[str, Any]:
    client_ms: list[float] = []
    for _ in range(kills):
        await asyncio.sleep(interval)
        before = events.connects
        async with http.post(f"{base}/_fake/drop") as resp:
            dropped_at = (await resp.json())["t"]
        async with asyncio.timeout(10):
            while events.connects == before or not events.is_connected:  # noqa: ASYNC110 - polling our own counter
                await asyncio.sleep(0.0005)
        client_ms.append((time.monotonic() - dropped_at) * 1000)
    async with http.get(f"{base}/_fake/stats") as resp:
        stats = await resp.json()
    connects, drops = stats["connects"], stats["drops"]
    server_ms = [
        (min(c for c in connects if c > d) - d) * 1000 for d in drops if any(c > d for c in connects)
    ]
    return {"kill_to_accept_ms": pct(server_ms), "kill_to_connected_ms": pct(client_ms)}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="paced events per second")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument(
        "--kill-interval", type=float, default=1.2, help="s between kills (>1 s: a 'fresh' drop)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--verbose", action="store_true", help="show the client's disconnect/reconnect logs")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO if opts.verbose else logging.ERROR, format="%(message)s")

    proc, port = await start_fake()
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"events": opts.events, "rate": opts.rate}
    try:
        async with (
            aiohttp.ClientSession() as http,
            AriClient(base, "voxgate", "secret", "agent") as client,
            AriEvents(client) as events,
        ):
            events.on(ChannelVarset, lambda ev: SINK[0](ev))
            await latency_run(http, base, events, 500, opts.rate)  # warm-up
            paced, _ = await latency_run(http, base, events, opts.events, opts.rate)
            results["paced_latency_ms"] = pct(paced)
            burst, burst_s = await latency_run(http, base, events, opts.events, 0)
            results["burst_latency_ms"] = pct(burst)
            results["burst_events_per_s"] = round(opts.events / burst_s)
            results["reconnect"] = reconnect_run_result = await reconnect_run(
                http, base, events, opts.kills, opts.kill_interval
            )
            results["skipped_events"] = events.skipped
    finally:
        proc.terminate()
        await proc.wait()

    p, b, r = results["paced_latency_ms"], results["burst_latency_ms"], reconnect_run_result
    print(
        f"dispatch latency, {opts.events} events paced at {opts.rate:.0f}/s: "
        f"p50 {p['p50']:.3f} ms  p99 {p['p99']:.3f} ms  max {p['max']:.3f} ms"
    )
    print(
        f"dispatch latency, {opts.events} events unpaced: p50 {b['p50']:.3f} ms  p99 {b['p99']:.3f} ms  "
        f"max {b['max']:.3f} ms  ({results['burst_events_per_s']} events/s)"
    )
    for key, label in (
        ("kill_to_accept_ms", "kill → socket accepted"),
        ("kill_to_connected_ms", "kill → connected"),
    ):
        s = r[key]
        print(
            f"reconnect over {s['n']} kills, {label}: p50 {s['p50']:.2f} ms  p99 {s['p99']:.2f} ms  "
            f"max {s['max']:.2f} ms"
        )
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
