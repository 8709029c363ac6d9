"""ARI events socket killed under live calls: reconnect time, calls lost, audio continuity, and
what happens to callers who hang up while the socket is down.

The fake ARI server (tests/fake_ari.py --connect-audiosocket) runs as its own process and plays
Asterisk: each call enters Stasis in state Ring, and when voxgate asks for externalMedia with
encapsulation=audiosocket the fake connects to voxgate's AudioSocket port, sends the UUID and
streams 20 ms slin16 frames of quiet noise, counting the frames voxgate sends back (the echo
agent returns the noise, so echoed frames are non-zero). voxgate runs in this process, as
`voxgate serve` would with `ari.media=audiosocket` and `agent: echo`.

1. Setup: `--calls` callers enter Stasis; wait until every media connection is up and audio flows
   both ways (echoed noise comes back on every call).
2. Kills: the fake aborts the events WebSocket `--kills` times, `--interval` s apart, while the
   calls stay up. Reported: kill → new socket accepted (fake's clock) and kill → AriEvents
   connected again (voxgate's side); calls lost (AudioSocket connection or caller channel ended,
   target 0); audio per call both ways (frames vs 20 ms slots); gaps of 30 ms or more between
   voxgate's frames as the fake receives them (this includes the fake's own scheduling jitter)
   and voxgate's MediaClock tick lateness, near the kills, over the whole kill phase and over a
   `--baseline` stretch without kills.
3. Missed hangups: kill the socket and refuse reconnects for `--refuse-ms`; while it is down
   `--missed` callers hang up (their StasisEnd goes nowhere). After the reconnect, how many of
   those calls voxgate tears down (closes the AudioSocket connection or hangs up the media
   channel) within `--leak-wait` s, and how long it took. Without reconciliation after a
   reconnect (GET /channels) they leak.
4. Every remaining caller hangs up; voxgate's active call count should return to 0.

CLOCK_MONOTONIC is shared by both processes, so the fake's timestamps compare with ours.

    .venv/bin/python benchmarks/ari_calls.py [--calls 50 --kills 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import deque
from typing import Any

import aiohttp

from ari_bench import Http, Parser, Sampler, pct, poll, print_rows, run_main, voxgate_on_fake_ari
from stats import summary
from voxgate.server.app import VoxgateServer

FRAME_S = 0.020
NEAR_KILL_S = (0.1, 0.5)  # "around a kill": [kill - 0.1 s, kill + 0.5 s]


async def wait_reconnected(server: VoxgateServer, before: int, within: float = 10.0) -> float:
    """time.monotonic() when AriEvents is connected again after `before` connections."""
    events = server.ari_events
    assert events is not None
    async with asyncio.timeout(within):
        while events.connects == before or not events.is_connected:  # noqa: ASYNC110 - polling our own counter
            await asyncio.sleep(0.0005)
    return time.monotonic()


def accept_after(stats: dict[str, Any], t: float) -> float | None:
    later = [c for c in stats["connects"] if c > t]
    return min(later) if later else None


# -- 1. setup -----------------------------------------------------------------------------------
async def setup_calls(fake: Http, server: VoxgateServer, n: int) -> dict[str, Any]:
    start = time.monotonic()
    await fake.post("/_fake/inbound", n=str(n))
    state: dict[str, Any] = {}

    async def flowing() -> bool:
        state.update(await fake.calls())
        legs = [leg for leg in state["legs"] if leg["closed_by"] is None]
        return (
            len(legs) >= n
            and all(leg["frames_received"] >= 10 and leg["frames_nonsilent"] >= 5 for leg in legs)
            and server.audiosocket.active_calls >= n
        )

    ok = await poll(flowing, within=20.0)
    return {
        "all_flowing": ok,
        "seconds": round(time.monotonic() - start, 3),
        "media_live": state.get("media_live"),
        "media_connect_failures": state.get("media_connect_failures"),
        "voxgate_active_calls": server.audiosocket.active_calls,
    }


# -- 2. kills under live calls -------------------------------------------------------------------
Window = tuple[float, float]


class ClockSampler(Sampler):
    """voxgate's MediaClock: every tick's lateness (ms past its 20 ms grid slot), gathered every
    50 ms as (time, worst lateness in that batch) so it can be split by window afterwards."""

    def __init__(self, server: VoxgateServer) -> None:
        super().__init__()
        self.stats = server.audiosocket.clock.stats
        self.stats.lateness_ms = deque(maxlen=100_000)
        self.samples: list[tuple[float, float]] = []

    async def _run(self) -> None:
        lateness = self.stats.lateness_ms
        assert lateness is not None
        while True:
            await asyncio.sleep(0.05)
            if lateness:
                self.samples.append((time.monotonic(), max(lateness)))
                lateness.clear()

    def counters(self) -> tuple[int, int, int]:
        return self.stats.ticks, self.stats.late_ticks, self.stats.missed_slots

    def worst(self, windows: list[Window]) -> float | None:
        # a batch covers the 50 ms before its stamp
        found = [ms for t, ms in self.samples if any(t - 0.05 <= hi and t >= lo for lo, hi in windows)]
        return round(max(found), 3) if found else None


def frames_in_by_call(server: VoxgateServer) -> dict[str, int]:
    return {call.call_id: call.frames_in for call in server.audiosocket.calls}


def gap_stats(legs: list[dict[str, Any]], windows: list[Window]) -> dict[str, Any]:
    """Gaps ≥ 30 ms between voxgate's frames on any call that overlap one of `windows`, and
    their rate per call-second."""
    found = [
        ms
        for leg in legs
        for t_end, ms in leg["gaps"]
        if any(t_end - ms / 1000 <= hi and t_end >= lo for lo, hi in windows)
    ]
    seconds = sum(hi - lo for lo, hi in windows)
    return {
        "gaps_ge_30ms": len(found),
        "per_call_s": round(len(found) / (seconds * max(len(legs), 1)), 4),
        "max_gap_ms": max(found, default=None),
        "seconds": round(seconds, 3),
    }


def frames_per_slot(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, Any]:
    ratios = [(after[c] - before[c]) / (seconds / FRAME_S) for c in after if c in before]
    return summary(ratios, ("n", "min", "p50", "max"))


async def kill_scenario(
    fake: Http, server: VoxgateServer, kills: int, interval: float, baseline_s: float
) -> dict[str, Any]:
    events, router = server.ari_events, server.ari_router
    assert events is not None and router is not None
    clock = ClockSampler(server)
    clock.start()

    async def snapshot() -> tuple[dict[str, Any], dict[str, int], float, tuple[int, int, int]]:
        state = await fake.calls()
        return state, frames_in_by_call(server), time.monotonic(), clock.counters()

    a_fake, a_vox, t_a, a_clock = await snapshot()
    live_ids = {leg["channel_id"] for leg in a_fake["legs"] if leg["closed_by"] is None}
    callers = set(a_fake["callers_live"])
    pairs = {uuid: ctx.caller_channel_id for uuid, ctx in router.calls.items()}  # media → caller
    await asyncio.sleep(baseline_s)  # a quiet stretch to compare the kill windows with
    b_fake, b_vox, t_b, b_clock = await snapshot()
    client_ms: list[float] = []
    drops: list[float] = []
    for i in range(kills):
        if i:
            await asyncio.sleep(interval)
        connects = events.connects
        drop = await fake.post("/_fake/drop")
        drops.append(drop["t"])
        client_ms.append((await wait_reconnected(server, connects) - drop["t"]) * 1000)
    await asyncio.sleep(1.0)  # let the last kill's window close
    c_fake, c_vox, t_c, c_clock = await snapshot()
    await clock.stop()
    stats = await fake.get("/_fake/stats")

    server_ms = [(a - d) * 1000 for d in drops if (a := accept_after(stats, d)) is not None]
    legs = [leg for leg in c_fake["legs"] if leg["channel_id"] in live_ids]
    media_lost = {leg["channel_id"] for leg in legs if leg["closed_by"] is not None}
    callers_lost = callers - set(c_fake["callers_live"])
    lost = {m for m, c in pairs.items() if m in media_lost or c in callers_lost} | media_lost

    def fake_rx(state: dict[str, Any]) -> dict[str, int]:
        return {
            leg["channel_id"]: leg["frames_received"]
            for leg in state["legs"]
            if leg["channel_id"] in live_ids
        }

    base_w: Window = (a_fake["t"], b_fake["t"])
    kill_w: Window = (b_fake["t"], c_fake["t"])
    near = [(d - NEAR_KILL_S[0], d + NEAR_KILL_S[1]) for d in drops]

    def clock_delta(x: tuple[int, int, int], y: tuple[int, int, int]) -> dict[str, int]:
        return {"ticks": y[0] - x[0], "late_ticks_gt5ms": y[1] - x[1], "missed_slots": y[2] - x[2]}

    return {
        "kills": kills,
        "interval_s": interval,
        "kill_to_accept_ms": pct(server_ms),
        "kill_to_connected_ms": pct(client_ms),
        "calls_lost": len(lost),
        "media_connections_lost": sorted(media_lost),
        "caller_channels_lost": sorted(callers_lost),
        "voxgate_active_calls": server.audiosocket.active_calls,
        "router_calls": len(router.calls),
        "windows": {
            name: {
                "frames_from_voxgate_per_slot": frames_per_slot(
                    fake_rx(x_fake), fake_rx(y_fake), y_fake["t"] - x_fake["t"]
                ),
                "frames_to_voxgate_per_slot": frames_per_slot(x_vox, y_vox, t_y - t_x),
                "gaps": gap_stats(legs, [(x_fake["t"], y_fake["t"])]),
                "voxgate_clock": clock_delta(x_clock, y_clock),
                "voxgate_clock_worst_late_ms": clock.worst([(x_fake["t"], y_fake["t"])]),
            }
            for name, (x_fake, x_vox, t_x, x_clock), (y_fake, y_vox, t_y, y_clock) in (
                ("baseline", (a_fake, a_vox, t_a, a_clock), (b_fake, b_vox, t_b, b_clock)),
                ("kill_phase", (b_fake, b_vox, t_b, b_clock), (c_fake, c_vox, t_c, c_clock)),
            )
        },
        "near_kills": {
            "window_s": list(NEAR_KILL_S),
            "gaps": gap_stats(legs, near),
            "voxgate_clock_worst_late_ms": clock.worst(near),
        },
        "baseline_window": base_w,
        "kill_window": kill_w,
    }


# -- 3. callers hang up while the events socket is down --------------------------------------------
async def missed_hangup_scenario(
    fake: Http, server: VoxgateServer, n: int, refuse_ms: float, leak_wait: float
) -> dict[str, Any]:
    events, router = server.ari_events, server.ari_router
    assert events is not None and router is not None
    connects = events.connects
    drop = await fake.post("/_fake/drop", refuse_ms=str(refuse_ms))
    hung = await fake.post("/_fake/hangup", n=str(n))
    t_reconnected = await wait_reconnected(server, connects)
    stats = await fake.get("/_fake/stats")
    accepted = accept_after(stats, drop["t"])
    while_down = accepted is not None and hung["t_done"] < accepted
    callers = {h["caller"] for h in hung["hung_up"]}
    media = {m for h in hung["hung_up"] for m in h["media"]}
    state: dict[str, Any] = {}

    async def all_torn_down() -> bool:
        state.update(await fake.calls())
        return all(leg["closed_by"] is not None for leg in state["legs"] if leg["channel_id"] in media)

    await poll(all_torn_down, within=leak_wait, every=0.05)
    legs = [leg for leg in state["legs"] if leg["channel_id"] in media]
    closed = [leg for leg in legs if leg["closed_by"] is not None]
    still_routed = [ctx for ctx in router.calls.values() if ctx.caller_channel_id in callers]
    return {
        "hung_up": len(callers),
        "hangups_while_down": while_down,
        "refuse_ms": refuse_ms,
        "refused_connects": sum(1 for t in stats["refused"] if t >= drop["t"]),
        "kill_to_accept_ms": round((accepted - drop["t"]) * 1000, 3) if accepted else None,
        "kill_to_connected_ms": round((t_reconnected - drop["t"]) * 1000, 3),
        "torn_down": len(closed),
        "leaked": len(legs) - len(closed),
        "closed_by": {
            who: sum(1 for leg in closed if leg["closed_by"] == who) for who in ("server", "asterisk")
        },
        "hangup_to_teardown_ms": pct([(leg["closed_at"] - hung["t"]) * 1000 for leg in closed]),
        "reconnect_to_teardown_ms": pct([(leg["closed_at"] - t_reconnected) * 1000 for leg in closed]),
        "voxgate_still_routing": len(still_routed),
        "waited_s": leak_wait,
    }


# -- 4. everyone hangs up ---------------------------------------------------------------------------
async def hangup_all(fake: Http, server: VoxgateServer, within: float) -> dict[str, Any]:
    start = time.monotonic()
    hung = await fake.post("/_fake/hangup", all="1")

    async def idle() -> bool:
        return server.audiosocket.active_calls == 0

    zero = await poll(idle, within=within, every=0.02)
    took = time.monotonic() - start
    state = await fake.calls()
    return {
        "hung_up": len(hung["hung_up"]),
        "active_returned_to_0": zero,
        "seconds": round(took, 3),
        "voxgate_active_calls": server.audiosocket.active_calls,
        "router_calls": len(server.ari_router.calls) if server.ari_router else None,
        "fake_media_live": state["media_live"],
        "fake_bridges_left": state["bridges"],
        "fake_channels_left": state["channels"],
    }


# -- report -----------------------------------------------------------------------------------------
def fmt(s: dict[str, Any], keys: tuple[str, ...] = ("p50", "p99", "max"), unit: str = "ms") -> str:
    if not s.get("n"):
        return "n/a"
    return "  ".join(f"{k} {s[k]:.2f}" for k in keys) + f" {unit}  (n={s['n']})"


def print_report(r: dict[str, Any]) -> None:
    s, k, m, f = r["setup"], r["kills"], r["missed_hangups"], r["final"]
    base, kp, near = k["windows"]["baseline"], k["windows"]["kill_phase"], k["near_kills"]
    lo, hi = near["window_s"]

    def gaps(g: dict[str, Any]) -> str:
        biggest = "-" if g["max_gap_ms"] is None else f"{g['max_gap_ms']:.1f} ms"
        return f"{g['gaps_ge_30ms']:>5} ({g['per_call_s']:.3f}/call·s), max {biggest}"

    def clock(w: dict[str, Any]) -> str:
        c = w["voxgate_clock"]
        return (
            f"worst {w['voxgate_clock_worst_late_ms']} ms, >5 ms late {c['late_ticks_gt5ms']}/"
            f"{c['ticks']} ticks, missed slots {c['missed_slots']}"
        )

    rows: list[tuple[str, str]] = [
        ("calls", f"{r['calls']} (echo agent, AudioSocket slin16, voxgate on {r['loop']})"),
        ("setup: all calls flowing both ways", f"{s['all_flowing']} after {s['seconds']:.2f} s"),
        ("", ""),
        (f"kills under load: {k['kills']}, {k['interval_s']} s apart", ""),
        ("  kill → socket accepted (fake)", fmt(k["kill_to_accept_ms"])),
        ("  kill → AriEvents connected (voxgate)", fmt(k["kill_to_connected_ms"])),
        ("  calls lost (target 0)", f"{k['calls_lost']}"),
        ("  voxgate active calls after", f"{k['voxgate_active_calls']} (router: {k['router_calls']})"),
        (
            "  audio, per call",
            f"baseline {base['gaps']['seconds']:.1f} s | kill phase {kp['gaps']['seconds']:.1f} s",
        ),
        (
            "    frames from voxgate / 20 ms slot",
            f"min {base['frames_from_voxgate_per_slot']['min']:.3f} | "
            f"min {kp['frames_from_voxgate_per_slot']['min']:.3f}  "
            f"(p50 {kp['frames_from_voxgate_per_slot']['p50']:.3f})",
        ),
        (
            "    frames to voxgate / 20 ms slot",
            f"min {base['frames_to_voxgate_per_slot']['min']:.3f} | "
            f"min {kp['frames_to_voxgate_per_slot']['min']:.3f}",
        ),
        ("  gaps ≥30 ms between voxgate frames", ""),
        ("    baseline", gaps(base["gaps"])),
        ("    whole kill phase", gaps(kp["gaps"])),
        (f"    around kills (-{lo}/+{hi} s)", gaps(near["gaps"])),
        ("  voxgate MediaClock tick lateness", ""),
        ("    baseline", clock(base)),
        ("    whole kill phase", clock(kp)),
        (f"    around kills (-{lo}/+{hi} s)", f"worst {near['voxgate_clock_worst_late_ms']} ms"),
        ("", ""),
        (f"callers hang up while the socket is down ({m['refuse_ms']:.0f} ms of refused reconnects)", ""),
        (
            "  hung up (all before the reconnect?)",
            f"{m['hung_up']} ({'yes' if m['hangups_while_down'] else 'NO'})",
        ),
        ("  refused reconnect attempts", str(m["refused_connects"])),
        (
            "  kill → socket accepted / connected",
            f"{m['kill_to_accept_ms']:.1f} ms / {m['kill_to_connected_ms']:.1f} ms",
        ),
        (
            f"  torn down by voxgate within {m['waited_s']:.0f} s",
            f"{m['torn_down']} of {m['hung_up']}  (closed the socket: {m['closed_by']['server']}, "
            f"hung up the media channel: {m['closed_by']['asterisk']})",
        ),
        (
            "  leaked (media connection still up)",
            f"{m['leaked']}  (voxgate still routing {m['voxgate_still_routing']})",
        ),
        ("  caller hangup → teardown", fmt(m["hangup_to_teardown_ms"])),
        ("  reconnect → teardown", fmt(m["reconnect_to_teardown_ms"])),
        ("", ""),
        ("everyone hangs up", f"{f['hung_up']} callers"),
        (
            "  voxgate active calls back to 0",
            f"{'yes' if f['active_returned_to_0'] else 'NO'}: {f['voxgate_active_calls']} left after "
            f"{f['seconds']:.2f} s (router {f['router_calls']})",
        ),
        (
            "  fake: media live / bridges / channels left",
            f"{f['fake_media_live']} / {f['fake_bridges_left']} / {f['fake_channels_left']}",
        ),
    ]
    print_rows(rows)


async def run(opts: argparse.Namespace, loop_name: str) -> dict[str, Any]:
    results: dict[str, Any] = {"calls": opts.calls, "loop": loop_name}
    async with voxgate_on_fake_ari() as (server, base), aiohttp.ClientSession() as http:
        fake = Http(http, base)
        results["setup"] = await setup_calls(fake, server, opts.calls)
        results["kills"] = await kill_scenario(
            fake, server, opts.kills, opts.interval, baseline_s=opts.baseline
        )
        results["missed_hangups"] = await missed_hangup_scenario(
            fake, server, min(opts.missed, opts.calls), opts.refuse_ms, opts.leak_wait
        )
        results["final"] = await hangup_all(fake, server, opts.final_wait)
    return results


def cli() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0, help="s between kills (>1 s: a 'fresh' drop)")
    parser.add_argument("--baseline", type=float, default=4.0, help="s of calls without kills, to compare")
    parser.add_argument("--missed", type=int, default=10, help="callers hanging up while the socket is down")
    parser.add_argument("--refuse-ms", type=float, default=300.0, help="how long the fake refuses reconnects")
    parser.add_argument(
        "--leak-wait", type=float, default=5.0, help="s to wait for voxgate to tear those down"
    )
    parser.add_argument("--final-wait", type=float, default=5.0, help="s to wait for active calls to reach 0")
    run_main(run, print_report, parser.parse())


if __name__ == "__main__":
    cli()
