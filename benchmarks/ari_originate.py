"""Outbound calls end to end through ARI: originate throughput through the rate limiter, the
concurrency cap, and originate → answered → media flowing latency.

The fake ARI server (tests/fake_ari.py --connect-audiosocket) runs as its own process and plays
Asterisk: `POST /channels` with app=voxgate answers 10 ms later (StasisStart, state Up); when
voxgate asks for externalMedia with encapsulation=audiosocket the fake connects to voxgate's
AudioSocket port, sends the UUID and streams 20 ms slin16 frames of quiet noise, counting what
voxgate sends back (the echo agent returns it after a 40 ms prebuffer). The far end hangs each
originated channel up `--talk` s after it answered (the fake's POST /_fake/originate
?hangup_after_s). voxgate runs in this process on uvloop, as `voxgate serve` would with
`agent: echo`, `ari.media: audiosocket`, `outbound.calls_per_second: --cps`,
`outbound.max_concurrent: --concurrent` and `outbound.screen_s: 0`.

`--calls` requests, each to a distinct number, are POSTed to voxgate's /calls at t0 (all at
once, on loopback: the API needs no token there; through `--http-connections` client
connections; voxgate's HTTP listen backlog is 1024 since this benchmark found aiohttp's default
of 128 dropping SYNs, which clients retry a second later). Reported:

- dial rate at the fake: `POST /channels` arrivals (the fake's clock, i.e. what a carrier
  would see) per second over the run against the configured cps, arrivals per 1 s bin, the most
  in any 1 s window and the shortest gap. As benchmarks/outbound.py defines it, the ideal
  token-bucket schedule puts dial i (0-based, in order) at T + max(0, i - burst + 1) / cps, T
  being the limiter's first grant (voxgate's `TokenBucket.take` is wrapped to record its grants);
  the scheduling error of a dial is its arrival at the fake minus that ideal (late is positive),
  reported next to the grants' own error and grant → arrival (voxgate's dispatch plus the HTTP
  request). Bucket violations count the pairs of arrivals i < j closer than the bucket allows
  (j - i + 1 > burst + (t_j - t_i + timer_slack) * cps, by over 0.1 ms; the tightest pair in
  ms), at the fake (with and without the first dial, which carries the first REST request's
  extra cost) and in the grants. When the concurrency cap binds (--concurrent below cps ×
  talk), dials fall behind that schedule by design: each waits for a far-end hangup to free a
  slot; `slot_bound` gives the dial rate after the first --concurrent dials, the bound
  concurrent / mean hold, and far-end hangup → next dial (voxgate's teardown plus its
  dispatcher) for the dials whose slot freed later than the bucket would have let them go.
- per call: POST /channels arrival → answered (the fake's StasisStart, 10 ms) → voxgate's
  externalMedia request for that call (matched through the bridge both channels are added to)
  → first frame from voxgate on the AudioSocket leg (media flowing; voxgate's pacer sends
  silence until it has audio) → first echoed (non-silent) frame; and far-end hangup → media
  leg closed.
- concurrency: originated channels alive at the fake at once (POST /channels arrival to the
  channel's destruction, exact) and voxgate's outbound in-flight count and live AudioSocket
  calls (sampled every 10 ms); none may exceed --concurrent.
- end state: calls done / failed by cause (GET /calls and GET /calls/{id} on voxgate), voxgate
  active calls back to 0, channels / bridges / media legs left at the fake.

CLOCK_MONOTONIC is shared by both processes, so the fake's timestamps compare with ours.

    .venv/bin/python benchmarks/ari_originate.py [--calls 200 --cps 20 --concurrent 100 --talk 2]
                                                 [--json out.json]
    .venv/bin/python benchmarks/ari_originate.py --concurrent 10  # the cap binds: ~42 s
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import Any

import aiohttp
import numpy as np

from ari_bench import Http, Parser, Sampler, pct, poll, print_rows, run_main, voxgate_on_fake_ari
from outbound import bucket_slack, record_grants
from stats import summary
from voxgate.server.app import VoxgateServer

SAMPLE_S = 0.010


class PeakSampler(Sampler):
    """voxgate's outbound in-flight count and live AudioSocket calls, every SAMPLE_S."""

    def __init__(self, server: VoxgateServer) -> None:
        super().__init__()
        self.server = server
        self.in_flight_peak = 0
        self.active_peak = 0
        self.samples = 0

    async def _run(self) -> None:
        queue = self.server.outbound
        assert queue is not None
        while True:
            self.in_flight_peak = max(self.in_flight_peak, queue.stats.in_flight)
            self.active_peak = max(self.active_peak, self.server.audiosocket.active_calls)
            self.samples += 1
            await asyncio.sleep(SAMPLE_S)


def params_of(req: dict[str, Any]) -> dict[str, str]:
    """A request's parameters, from the query and the JSON body (as ARI takes them)."""
    out = dict(req["query"])
    if isinstance(req["json"], dict):
        out.update({k: str(v) for k, v in req["json"].items() if k != "variables"})
    return out


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals [start, end) holding at any instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])  # ends first
    peak = live = 0
    for _, d in edges:
        live += d
        peak = max(peak, live)
    return peak


# -- the run ----------------------------------------------------------------------------------------
async def submit_all(api: Http, n: int) -> dict[str, Any]:
    """POST /calls n times at once; answers (status, response time) per request id."""
    t0 = time.monotonic()

    async def one(i: int) -> tuple[str, int, float, Any]:
        body = {"id": f"bench-{i:05d}", "to": f"+1555{i:07d}"}
        status, answer = await api.post_json("/calls", body)
        return body["id"], status, time.monotonic(), answer

    answers = await asyncio.gather(*(one(i) for i in range(n)))
    statuses: dict[str, int] = {}
    for _, status, _, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "t0": t0,
        "accepted": [a[0] for a in answers if a[1] == 202],
        "statuses": statuses,
        "errors": [a[3] for a in answers if a[1] != 202][:5],
        "response_ms": pct([(a[2] - t0) * 1000 for a in answers]),
        "all_answered_ms": round((max(a[2] for a in answers) - t0) * 1000, 2),
    }


async def run(opts: argparse.Namespace, loop_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "calls": opts.calls,
        "cps": opts.cps,
        "concurrent": opts.concurrent,
        "talk_s": opts.talk,
        "loop": loop_name,
    }
    async with voxgate_on_fake_ari(
        **{
            "outbound.calls_per_second": opts.cps,
            "outbound.max_concurrent": opts.concurrent,
            "outbound.max_queued": max(opts.calls, 1000),
            "outbound.screen_s": 0,
        }
    ) as (server, base):
        assert server.outbound is not None
        bucket = server.outbound._bucket  # the burst and timer slack the bounds are checked with
        out["burst"] = bucket.burst
        out["timer_slack_ms"] = round((bucket.capacity - bucket.burst) / bucket.rate * 1000, 3)
        grants = record_grants(bucket)
        host, hport = server.http_sockets[0]
        connector = aiohttp.TCPConnector(limit=opts.http_connections)
        async with aiohttp.ClientSession(connector=connector) as http:
            fake, api = Http(http, base), Http(http, f"http://{host}:{hport}")
            await fake.post("/_fake/originate", hangup_after_s=str(opts.talk))
            sampler = PeakSampler(server)
            sampler.start()
            sub = await submit_all(api, opts.calls)
            out["submit"] = {k: v for k, v in sub.items() if k not in ("t0", "accepted")}

            # expected length: the slower of the bucket and the cap, plus the last call's talk
            rate = min(opts.cps, opts.concurrent / (opts.talk + 0.05))
            within = opts.calls / rate * 1.5 + opts.talk + 15.0
            figures: dict[str, Any] = {}

            async def finished() -> bool:
                figures.update(await api.get("/calls"))
                q = figures["queue"]
                return q["queued"] == 0 and q["in_flight"] == 0 and q["submitted"] >= len(sub["accepted"])

            all_finished = await poll(finished, within=within, every=0.25)
            t_finished = time.monotonic()

            async def idle() -> bool:
                state = await fake.get("/_fake/calls")
                return (
                    server.audiosocket.active_calls == 0 and state["channels"] == 0 and not state["bridges"]
                )

            settled = await poll(idle, within=opts.settle, every=0.05)
            await sampler.stop()
            out["wall_s"] = round(time.monotonic() - sub["t0"], 3)
            per_call = await asyncio.gather(*(api.get(f"/calls/{cid}") for cid in sub["accepted"]))
            requests = (await fake.get("/_fake/requests"))["requests"]
            originated = await fake.get("/_fake/originated")
            state = await fake.get("/_fake/calls")
            router = server.ari_router
            out["end"] = {
                "all_finished": all_finished,
                "finished_after_s": round(t_finished - sub["t0"], 3),
                "settled": settled,
                "queue": figures.get("queue"),
                "status": count([c["status"] for c in per_call]),
                "failed_by_cause": count([c["cause"] or "?" for c in per_call if c["status"] != "done"]),
                "voxgate_active_calls": server.audiosocket.active_calls,
                "router_calls": len(router.calls) if router is not None else None,
                "fake_channels_left": state["channels"],
                "fake_bridges_left": state["bridges"],
                "fake_media_live": state["media_live"],
                "fake_originated_live": originated["live"],
                "media_connect_failures": state["media_connect_failures"],
            }
            out["concurrency"] = {
                "voxgate_in_flight_peak": sampler.in_flight_peak,
                "voxgate_active_calls_peak": sampler.active_peak,
                "samples": sampler.samples,
            }
            analyse(out, opts, requests, originated["channels"], state["legs"], grants, sub["t0"])
    return out


def count(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


# -- analysis --------------------------------------------------------------------------------------
def analyse(
    out: dict[str, Any],
    opts: argparse.Namespace,
    requests: list[dict[str, Any]],
    originated: list[dict[str, Any]],
    legs: list[dict[str, Any]],
    grants: list[float],
    t0: float,
) -> None:
    cps, burst, conc = opts.cps, out["burst"], opts.concurrent
    slack_s = out["timer_slack_ms"] / 1000
    dials = [r for r in requests if r["method"] == "POST" and r["path"] == "/channels"]
    dial_at = {params_of(r)["channelId"]: r["t"] for r in dials}
    fates = {c["id"]: c for c in originated}

    # -- the dial schedule at the fake
    t = np.array(sorted(dial_at.values()))
    n = len(t)
    rate: dict[str, Any] = {"dials": n}
    g = np.array(grants[:n])
    if n and len(g) == n:
        start = g[0]  # T: the first grant, as in benchmarks/outbound.py
        actual = t - start
        ideal = np.maximum(0, np.arange(n) - burst + 1) / cps
        # 1 s bins from half a dial interval before the first dial: grid points sit mid-bin
        bins = np.bincount((t - t[0] + 0.5 / cps).astype(int)).tolist()
        gaps = np.diff(t) * 1000
        min_slack, violations = bucket_slack(t - t[0], cps, burst, slack_s)
        g_slack, g_violations = bucket_slack(g - start, cps, burst, slack_s)
        later_slack, later_violations = bucket_slack(t[1:] - t[0], cps, burst, slack_s)

        def max_in_1s(x: np.ndarray) -> int:
            return int((np.searchsorted(x, x + 1.0, "left") - np.arange(len(x))).max())

        steady = t[burst - 1 :]
        rate.update(
            {
                "first_dial_after_submit_ms": round((t[0] - t0) * 1000, 2),
                "span_s": round(float(t[-1] - t[0]), 3),
                "ideal_span_s": round(float(ideal[-1]), 3),
                "achieved_cps": round((n - burst) / float(steady[-1] - steady[0]), 3) if n > burst else None,
                "sched_error_ms": summary((actual - ideal) * 1000, ("p50", "p99", "max", "min", "last")),
                "grant_error_ms": summary((g - start - ideal) * 1000, ("p50", "p99", "max", "min")),
                "dispatch_lag_ms": summary((t - g) * 1000, ("p50", "p99", "max", "min")),
                "first_dispatch_lag_ms": round(float(t[0] - g[0]) * 1000, 3),
                "bucket_min_slack_ms": min_slack,
                "bucket_violations": violations,
                "bucket_min_slack_ms_without_first": later_slack,
                "bucket_violations_without_first": later_violations,
                "grant_bucket_min_slack_ms": g_slack,
                "grant_bucket_violations": g_violations,
                "min_gap_ms": round(float(gaps.min()), 3) if len(gaps) else None,
                "gaps_below_interval": int((gaps < (1 / cps - slack_s) * 1000 - 0.1).sum()),
                "max_dials_in_any_1s": max_in_1s(t),
                "max_grants_in_any_1s": max_in_1s(g),
                "dials_per_1s_bin": bins,
            }
        )
    else:
        rate["grants"] = len(g)
    out["dial_rate"] = rate

    # -- hangup → next dial, for dials that waited for a slot (i-th dial needs i - conc + 1 of the
    # earlier calls ended at the fake; the bucket would have allowed it at t[i-1] + 1/cps)
    order = sorted(dial_at, key=dial_at.__getitem__)  # channel ids in dial order
    ends = [fates.get(cid, {}).get("destroyed_at") for cid in order]
    recycle: list[float] = []
    for i in range(conc, n):
        done = sorted(e for e in ends[:i] if e is not None)
        if len(done) < i - conc + 1:
            continue
        slot_free = done[i - conc]
        if slot_free > t[i - 1] + 1 / cps - slack_s:
            recycle.append((t[i] - slot_free) * 1000)
    holds = [e - dial_at[cid] for cid, e in zip(order, ends, strict=True) if e is not None]
    mean_hold = float(np.mean(holds)) if holds else None
    capped = n > conc and t[-1] > t[conc - 1]
    out["slot_bound"] = {
        # after the first `conc` dials every dial needs a slot: the rate the cap allowed
        "rate_after_first_slots_cps": round((n - conc) / float(t[-1] - t[conc - 1]), 3) if capped else None,
        "dials_waiting_for_a_slot": len(recycle),
        "hangup_to_next_dial_ms": pct(recycle),
        "mean_hold_s": round(mean_hold, 3) if mean_hold else None,  # dial → far-end hangup
        "cap_bound_cps": round(conc / mean_hold, 3) if mean_hold else None,
    }
    out["concurrency"]["fake_originated_peak"] = peak_overlap(  # a channel never destroyed: to the end
        [(t_dial, fates.get(c, {}).get("destroyed_at") or math.inf) for c, t_dial in dial_at.items()]
    )

    # -- per call: dial → answered → externalMedia → first frame from voxgate
    bridge_of: dict[str, str] = {}  # channel → bridge it was added to
    members: dict[str, list[str]] = {}
    for r in requests:
        if r["method"] == "POST" and r["path"].endswith("/addChannel"):
            bridge = r["path"].split("/")[2]
            for ch in params_of(r).get("channel", "").split(","):
                bridge_of.setdefault(ch, bridge)
                members.setdefault(bridge, []).append(ch)
    media_req = {
        params_of(r)["channelId"]: r["t"]
        for r in requests
        if r["method"] == "POST" and r["path"] == "/channels/externalMedia"
    }
    leg_of = {leg["channel_id"]: leg for leg in legs}
    keys = ("answer", "to_media", "media_to_frame", "answer_to_frame", "total", "echo", "total_echo")
    seg: dict[str, list[float]] = {k: [] for k in keys}
    teardown: list[float] = []
    echoed = 0
    for cid, t_dial in dial_at.items():
        answered = fates.get(cid, {}).get("answered_at")
        bridge = bridge_of.get(cid)
        media = next((m for m in members.get(bridge or "", []) if m != cid), None)
        t_media = media_req.get(media or "")
        leg = leg_of.get(media or "")
        first = leg["first_rx"] if leg else None
        echo = leg["first_nonsilent_rx"] if leg else None
        if answered is not None:
            seg["answer"].append((answered - t_dial) * 1000)
            if t_media is not None:
                seg["to_media"].append((t_media - answered) * 1000)
            if first is not None:
                seg["answer_to_frame"].append((first - answered) * 1000)
        if t_media is not None and first is not None:
            seg["media_to_frame"].append((first - t_media) * 1000)
        if first is not None:
            seg["total"].append((first - t_dial) * 1000)
        if echo is not None and first is not None:
            seg["echo"].append((echo - first) * 1000)
            seg["total_echo"].append((echo - t_dial) * 1000)
        if leg and leg["frames_nonsilent"] > 0:
            echoed += 1
        hung = fates.get(cid, {}).get("destroyed_at")
        if leg and hung and leg["closed_at"]:
            teardown.append((leg["closed_at"] - hung) * 1000)
    out["latency_ms"] = {
        "dial_to_answered": pct(seg["answer"]),
        "answered_to_external_media": pct(seg["to_media"]),
        "external_media_to_first_frame": pct(seg["media_to_frame"]),
        "answered_to_first_frame": pct(seg["answer_to_frame"]),
        "dial_to_first_frame": pct(seg["total"]),
        "first_frame_to_first_echo": pct(seg["echo"]),
        "dial_to_first_echo": pct(seg["total_echo"]),
        "far_end_hangup_to_media_closed": pct(teardown),
    }
    out["media"] = {
        "legs": len(legs),
        "calls_with_echo": echoed,
        "closed_by": count([leg["closed_by"] or "open" for leg in legs]),
    }


# -- report ----------------------------------------------------------------------------------------
def fmt(s: dict[str, Any] | None, keys: tuple[str, ...] = ("p50", "p99", "max"), unit: str = "ms") -> str:
    if not s or not s.get("n", 1) or s.get(keys[0]) is None:
        return "n/a"
    n = f"  (n={s['n']})" if "n" in s else ""
    return "  ".join(f"{k} {s[k]:.2f}" for k in keys) + f" {unit}{n}"


def bins_line(bins: list[int]) -> str:
    if len(bins) <= 24:
        return " ".join(map(str, bins))
    return " ".join(map(str, bins[:12])) + " … " + " ".join(map(str, bins[-6:])) + f"  ({len(bins)} bins)"


def print_report(r: dict[str, Any]) -> None:
    d, s, c, e, lat, m, sub = (
        r["dial_rate"],
        r["slot_bound"],
        r["concurrency"],
        r["end"],
        r["latency_ms"],
        r["media"],
        r["submit"],
    )
    q = e["queue"] or {}
    rows: list[tuple[str, str]] = [
        (
            "outbound calls",
            f"{r['calls']} at {r['cps']:g} cps (burst {r['burst']}), max_concurrent {r['concurrent']}, "
            f"far end hangs up after {r['talk_s']:g} s; echo agent, AudioSocket slin16, {r['loop']}",
        ),
        (
            "POST /calls (all at t0)",
            f"{sub['statuses']}, all answered after {sub['all_answered_ms']:.1f} ms "
            f"(p50 {sub['response_ms']['p50']:.1f} ms)",
        ),
        ("", ""),
        ("dial rate at the fake (POST /channels)", ""),
        ("  dials", f"{d['dials']}, first {d.get('first_dial_after_submit_ms', 0):.1f} ms after t0"),
        (
            "  achieved vs configured",
            f"{d.get('achieved_cps')} cps vs {r['cps']:g} cps  (span {d.get('span_s')} s, "
            f"ideal {d.get('ideal_span_s')} s)",
        ),
        (
            "  max dials (grants) in any 1 s / shortest gap",
            f"{d.get('max_dials_in_any_1s')} ({d.get('max_grants_in_any_1s')}) / {d.get('min_gap_ms')} ms "
            f"({d.get('gaps_below_interval')} gaps below 1/cps - timer slack)",
        ),
        ("  dials per 1 s bin", bins_line(d.get("dials_per_1s_bin", []))),
        ("  arrival vs ideal bucket schedule", fmt(d.get("sched_error_ms"), ("p50", "p99", "max", "min"))),
        ("  voxgate's grants vs ideal schedule", fmt(d.get("grant_error_ms"), ("p50", "p99", "max", "min"))),
        (
            "  grant → arrival at the fake",
            f"{fmt(d.get('dispatch_lag_ms'), ('p50', 'p99', 'max', 'min'))}; first dial "
            f"{d.get('first_dispatch_lag_ms')} ms",
        ),
        (
            "  bucket violations at the fake",
            f"{d.get('bucket_violations')} pairs (tightest {d.get('bucket_min_slack_ms')} ms, "
            f"timer slack {r['timer_slack_ms']} ms); without the first dial "
            f"{d.get('bucket_violations_without_first')} ({d.get('bucket_min_slack_ms_without_first')} ms)",
        ),
        (
            "  bucket violations in the grants",
            f"{d.get('grant_bucket_violations')}  (tightest pair {d.get('grant_bucket_min_slack_ms')} ms)",
        ),
        (
            "  dials whose slot freed after the bucket allowed them",
            f"{s['dials_waiting_for_a_slot']}; far-end hangup → next dial {fmt(s['hangup_to_next_dial_ms'])}",
        ),
        (
            "  cap bound: concurrent / mean hold",
            f"{s['cap_bound_cps']} cps  (hold = dial → far-end hangup, mean {s['mean_hold_s']} s); "
            f"dial rate after the first {r['concurrent']} dials {s['rate_after_first_slots_cps']} cps",
        ),
        ("", ""),
        ("per call latency", ""),
        ("  dial → answered (fake: 10 ms ring)", fmt(lat["dial_to_answered"])),
        ("  answered → externalMedia request", fmt(lat["answered_to_external_media"])),
        ("  externalMedia → first frame from voxgate", fmt(lat["external_media_to_first_frame"])),
        ("  answered → first frame", fmt(lat["answered_to_first_frame"])),
        ("  dial → first frame (media flowing)", fmt(lat["dial_to_first_frame"])),
        ("  first frame → first echoed frame", fmt(lat["first_frame_to_first_echo"])),
        ("  dial → first echoed frame", fmt(lat["dial_to_first_echo"])),
        ("  far-end hangup → media leg closed", fmt(lat["far_end_hangup_to_media_closed"])),
        (
            "  media legs / with echoed audio",
            f"{m['legs']} / {m['calls_with_echo']}  closed by {m['closed_by']}",
        ),
        ("", ""),
        (f"concurrency (limit {r['concurrent']})", ""),
        ("  originated channels live at the fake, peak", str(c["fake_originated_peak"])),
        (
            "  voxgate in-flight / AudioSocket calls, peak",
            f"{c['voxgate_in_flight_peak']} / {c['voxgate_active_calls_peak']}  (sampled every 10 ms)",
        ),
        ("", ""),
        ("end state", ""),
        (
            "  all finished",
            f"{'yes' if e['all_finished'] else 'NO'} after {e['finished_after_s']:.2f} s "
            f"(wall {r['wall_s']:.2f} s)",
        ),
        ("  status (GET /calls/{id})", f"{e['status']}"),
        ("  not done, by cause", f"{e['failed_by_cause'] or '-'}"),
        (
            "  queue (GET /calls)",
            f"submitted {q.get('submitted')} started {q.get('started')} answered {q.get('answered')} "
            f"failed {q.get('failed_by_cause')} rate-limited waits {q.get('rate_limited_waits')}",
        ),
        (
            "  voxgate active calls / router calls",
            f"{e['voxgate_active_calls']} / {e['router_calls']}  "
            f"({'settled' if e['settled'] else 'NOT settled'})",
        ),
        (
            "  fake: channels / bridges / media legs left",
            f"{e['fake_channels_left']} / {e['fake_bridges_left']} / {e['fake_media_live']}"
            f"  (media connect failures {e['media_connect_failures']})",
        ),
    ]
    print_rows(rows)


def cli() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cps", type=float, default=20.0, help="outbound.calls_per_second")
    parser.add_argument("--concurrent", type=int, default=100, help="outbound.max_concurrent")
    parser.add_argument("--talk", type=float, default=2.0, help="s from answer to the far end's hangup")
    parser.add_argument(
        "--http-connections",
        type=int,
        default=100,
        help="client connections for the POST /calls burst (0: one per request; over ~1024 "
        "overflows voxgate's listen backlog and the dropped SYNs are retried after 1 s)",
    )
    parser.add_argument("--settle", type=float, default=10.0, help="s to wait for everything to be torn down")
    opts = parser.parse()
    if opts.calls < 1 or opts.concurrent < 1 or opts.cps <= 0 or not math.isfinite(opts.talk):
        parser.error("--calls and --concurrent must be >= 1, --cps > 0")
    run_main(run, print_report, opts)


if __name__ == "__main__":
    cli()
