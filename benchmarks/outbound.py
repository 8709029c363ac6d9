"""Outbound queue pacing: calls started per second through the token bucket, against an instant
fake `originate` (answers at once, the call ends at once), so only the queue is measured.

All requests are submitted at t0 (synchronously, before the dispatcher first runs). Two clocks
are recorded per call: when the rate limiter granted its token (`TokenBucket.take` returned 0)
and when the fake `originate` was entered (what a carrier would see: the ARI request goes out
there). The ideal token-bucket schedule grants token i (0-based) at
T + max(0, i - burst + 1) / cps, T being the first grant; the scheduling error of a call is its
originate entry minus that ideal (late is positive), and `dispatch_lag_ms` is entry minus grant.
The bucket's own bound is checked over every pair of starts i < j:
j - i + 1 <= burst + ((t_j - t_i) + timer_slack) * cps; `bucket_min_slack_ms` is the tightest pair
(negative = too early) and `bucket_violations` counts pairs early by over 0.1 ms; the `grant_`
variants check the grant times alone (the limiter's decisions without the dispatch jitter).

    .venv/bin/python benchmarks/outbound.py [--requests 1000] [--cps 50] [--burst 1] [--uvloop]
                                            [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

from stats import summary
from voxgate.telephony.outbound import CallOutcome, CallStatus, OutboundQueue, OutboundRequest, TokenBucket


def record_grants(bucket: TokenBucket) -> list[float]:
    """Instruments `bucket`: time.monotonic() of every token it grants (`take()` returning 0),
    the limiter's own decisions, before dispatch and HTTP. The benchmarks want the grant times."""
    grants: list[float] = []
    take = bucket.take

    def timed_take() -> float:
        delay = take()
        if delay == 0:
            grants.append(time.monotonic())
        return delay

    bucket.take = timed_take  # type: ignore[method-assign]
    return grants


async def run(n: int, cps: float, burst: int) -> dict:
    starts: list[float] = []

    async def originate(req: OutboundRequest) -> CallOutcome:
        starts.append(time.monotonic())
        return CallOutcome.answered()

    q = OutboundQueue(originate, calls_per_second=cps, burst=burst, max_concurrent=n, max_queued=n)
    bucket: TokenBucket = q._bucket
    grants = record_grants(bucket)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    calls = [q.submit(OutboundRequest(id=f"c{i}", to="PJSIP/1000", agent="bench")) for i in range(n)]
    submit_s = time.monotonic() - t0
    await calls[-1].wait()  # FIFO: the last one dialled; no 1000 waiter tasks to crowd the loop
    await q.close()
    statuses = [c.status for c in calls]
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0

    actual = np.array(starts) - grants[0]
    ideal = np.maximum(0, np.arange(n) - burst + 1) / cps
    err_ms = (actual - ideal) * 1000
    lag_ms = (np.array(starts) - np.array(grants)) * 1000
    grant_err_ms = (np.array(grants) - grants[0] - ideal) * 1000
    slack_s = (bucket.capacity - burst) / cps
    steady = actual[burst - 1 :]
    stats = q.stats
    return {
        "requests": n,
        "cps": cps,
        "burst": burst,
        "done": sum(s is CallStatus.DONE for s in statuses),
        "wall_s": round(wall, 3),
        "ideal_last_start_s": round(float(ideal[-1]), 3),
        "achieved_cps": round((n - burst) / float(steady[-1] - steady[0]), 3) if n > burst else None,
        "sched_error_ms": summary(err_ms, ("p50", "p99", "max", "min", "last")),
        "grant_error_ms": summary(grant_err_ms, ("p50", "p99", "max")),
        "dispatch_lag_ms": summary(lag_ms, ("p50", "p99", "max")),
        "timer_slack_ms": round(slack_s * 1000, 3),
        "bucket_min_slack_ms": bucket_slack(actual, cps, burst, slack_s)[0],
        "bucket_violations": bucket_slack(actual, cps, burst, slack_s)[1],
        "grant_bucket_min_slack_ms": bucket_slack(np.array(grants), cps, burst, slack_s)[0],
        "grant_bucket_violations": bucket_slack(np.array(grants), cps, burst, slack_s)[1],
        "max_starts_in_any_1s": int((np.searchsorted(actual, actual + 1.0, "left") - np.arange(n)).max()),
        "rate_limited_waits": stats.rate_limited_waits,
        "submit_ms": round(submit_s * 1000, 2),
        "first_start_ms": round((starts[0] - t0) * 1000, 2),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_call": round(cpu / n * 1e6, 1),
    }


def bucket_slack(t: np.ndarray, cps: float, burst: int, timer_slack_s: float) -> tuple[float, int]:
    """Over all pairs of starts i < j holding more than `burst` starts, the least
    (t_j - t_i + timer_slack) minus the (j - i + 1 - burst) / cps the bucket requires, in ms
    (negative: too early), and how many pairs are early by more than 0.1 ms."""
    i, j = np.triu_indices(len(t), k=burst)
    slack_ms = ((t[j] - t[i] + timer_slack_s) - (j - i + 1 - burst) / cps) * 1000
    return (round(float(slack_ms.min()), 3), int((slack_ms < -0.1).sum())) if len(i) else (0.0, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--cps", type=float, default=50.0, help="calls_per_second")
    ap.add_argument("--burst", type=int, default=1)
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args()
    coro = run(args.requests, args.cps, args.burst)
    if args.uvloop:
        import uvloop

        res = uvloop.run(coro)
    else:
        res = asyncio.run(coro)
    res["loop"] = "uvloop" if args.uvloop else "asyncio"
    e = res["sched_error_ms"]
    print(
        f"outbound  {res['requests']} requests at {res['cps']} cps (burst {res['burst']}, {res['loop']}): "
        f"done {res['done']}, wall {res['wall_s']} s (ideal {res['ideal_last_start_s']} s), "
        f"achieved {res['achieved_cps']} cps, max {res['max_starts_in_any_1s']} starts in any 1 s\n"
        f"  start vs ideal schedule ms: p50 {e['p50']} p99 {e['p99']} max {e['max']} min {e['min']} "
        f"last {e['last']}; grant error p99 {res['grant_error_ms']['p99']} ms; dispatch lag p50 "
        f"{res['dispatch_lag_ms']['p50']} p99 {res['dispatch_lag_ms']['p99']} ms\n"
        f"  bucket min slack {res['bucket_min_slack_ms']} ms (timer slack {res['timer_slack_ms']} ms), "
        f"violations {res['bucket_violations']} (grants alone: {res['grant_bucket_min_slack_ms']} ms, "
        f"{res['grant_bucket_violations']}); rate-limited waits "
        f"{res['rate_limited_waits']}; first start {res['first_start_ms']} ms after submit "
        f"(submitting took {res['submit_ms']} ms); cpu {res['cpu_us_per_call']} µs/call"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
