"""Media-plane capacity: N concurrent virtual callers against `voxgate serve --agent echo`.

With `--config FILE` the server runs `voxgate serve --config FILE` instead (the agent the file
names), e.g. benchmarks/capacity_agent.yaml: Silero VAD on every inbound frame with scripted
STT/TTS and a flow, so the figures include turn detection, not just the media plane.

The server runs as its own process (one event loop, so at most one core); this process runs
every caller on one shared 20 ms clock. Per step it reports the server's CPU seconds per
call-second, RSS per call, the inter-arrival jitter of the frames callers receive (|gap − 20 ms|,
p50/p99) and lost or late frames, then says where it broke.

    .venv/bin/python benchmarks/media_plane.py --calls 100,250,400 --seconds 20 [--json out.json]
    .venv/bin/python benchmarks/media_plane.py --calls 100,250 --config benchmarks/capacity_agent.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from voxgate.audio.pacer import MediaClock
from voxgate.testing.caller import CallerScript, VirtualCaller

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MISSED = "voxgate_clock_missed_slots_total"
LATE = "voxgate_clock_late_ticks_total"
LATE_MS = 30.0  # a frame arriving this long after the previous one missed its slot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def scrape(http_port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^(voxgate_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def start_server(
    as_port: int, http_port: int, max_calls: int, uvloop: bool, config: str | None = None
) -> subprocess.Popen[bytes]:
    agent = ["--config", str(Path(config).resolve())] if config else ["--agent", "echo"]
    cmd = [
        sys.executable,
        "-m",
        "voxgate",
        "serve",
        *agent,
        "--log-level",
        "warning",
        "--audiosocket",
        f"127.0.0.1:{as_port}",
        "--http",
        f"127.0.0.1:{http_port}",
        "--max-calls",
        str(max_calls),
    ]
    if not uvloop:
        cmd.append("--no-uvloop")
    log = open(f"/tmp/voxgate-bench-{as_port}.log", "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=log, stdout=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"server did not come up (exit code {proc.poll()}); see {log.name}")


def caller_audio(rng: np.random.Generator, talk: str) -> bytes:
    """What each caller sends. `noise`: loud noise all the time (-21 dBFS: every VAD window runs
    the model, the worst case). `call`: like a caller on a phone call, 1.5 s of loud noise
    (talking) then 3 s at -65 dBFS (an idle line while listening to the agent)."""
    if talk == "noise":
        return (rng.standard_normal(8000 * 2) * 3000).astype("<i2").tobytes()
    talking = rng.standard_normal(12000) * 3000
    listening = rng.standard_normal(24000) * (32768 * 10 ** (-65 / 20))
    return np.rint(np.concatenate([talking, listening])).astype("<i2").tobytes()


async def run_callers(
    as_port: int, http_port: int, n: int, seconds: float, ramp: float, pid: int, talk: str = "noise"
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    clock = MediaClock()
    rng = np.random.default_rng(7)
    audio = caller_audio(rng, talk)  # looped by length
    total = ramp + seconds + 1.0
    script_audio = audio * int(total / (len(audio) / 16000) + 2)
    callers: list[VirtualCaller] = []
    for i in range(n):
        phase = int(rng.integers(0, len(audio) // 320)) * 320  # callers talk at different times
        script = CallerScript(
            audio=script_audio[phase:], rate=8000, hangup_after=total - i * ramp / n, record=False
        )
        _, caller = await loop.create_connection(
            lambda s=script: VirtualCaller(s, clock), "127.0.0.1", as_port
        )
        callers.append(caller)
        await asyncio.sleep(ramp / n)
    # Measurement window: every call is up.
    await asyncio.sleep(0.5)
    t_start = time.monotonic()
    before = await asyncio.to_thread(scrape, http_port)
    cpu0, rss = proc_cpu_seconds(pid), proc_rss_bytes(pid)
    my0 = time.process_time()
    await asyncio.sleep(seconds - 0.5)
    t_end = time.monotonic()
    cpu1 = proc_cpu_seconds(pid)
    my1 = time.process_time()
    rss = max(rss, proc_rss_bytes(pid))
    after = await asyncio.to_thread(scrape, http_port)
    results = await asyncio.gather(*(c.done for c in callers))
    gaps: list[np.ndarray] = []
    expected = received = late = 0
    for r in results:
        a = np.asarray(r.arrivals)
        a = a[(a >= t_start) & (a < t_end)]
        if len(a) > 1:
            d = np.diff(a) * 1000
            gaps.append(d)
            late += int(np.sum(d > LATE_MS))
        expected += round((t_end - t_start) / 0.02)
        received += len(a)
    allgaps = np.concatenate(gaps) if gaps else np.zeros(1)
    dev = np.abs(allgaps - 20.0)
    window = t_end - t_start
    errors = [r.error for r in results if r.ended_by == "error"]
    return {
        "calls": n,
        "window_s": round(window, 2),
        "server_cpu_s_per_call_s": (cpu1 - cpu0) / (n * window),
        "server_cpu_util": (cpu1 - cpu0) / window,
        "client_cpu_util": (my1 - my0) / window,
        "server_rss_mb": rss / 2**20,
        "jitter_p50_ms": float(np.percentile(dev, 50)),
        "jitter_p99_ms": float(np.percentile(dev, 99)),
        "jitter_max_ms": float(dev.max()),
        "frames_expected": expected,
        "frames_received": received,
        "frames_lost": max(0, expected - received - n),  # ±1 frame per call at the window edges
        "frames_late": late,
        "caller_errors": len(errors),
        "ended_by_agent": sum(1 for r in results if r.ended_by != "caller"),
        "server_missed_slots": after.get(MISSED, 0) - before.get(MISSED, 0),
        "server_late_ticks": after.get(LATE, 0) - before.get(LATE, 0),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="50,100,250,400,500", help="comma-separated call counts")
    ap.add_argument("--seconds", type=float, default=15.0, help="measurement window per step")
    ap.add_argument("--ramp", type=float, default=3.0, help="seconds to connect all callers")
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument(
        "--config",
        metavar="FILE",
        help="server config for `voxgate serve --config FILE` (its agent answers) instead of --agent echo",
    )
    ap.add_argument(
        "--talk",
        choices=["noise", "call"],
        default="noise",
        help="caller audio: loud noise all the time (worst case for a VAD), or 1.5 s talking / 3 s "
        "idle line as on a real call",
    )
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    steps = [int(x) for x in args.calls.split(",")]
    rows = []
    for n in steps:
        as_port, http_port = free_port(), free_port()
        proc = start_server(
            as_port, http_port, max_calls=max(steps) + 10, uvloop=not args.no_uvloop, config=args.config
        )
        try:
            idle_rss = proc_rss_bytes(proc.pid)
            run = uvloop_run if not args.no_uvloop else asyncio.run
            row = run(run_callers(as_port, http_port, n, args.seconds, args.ramp, proc.pid, args.talk))
            row["agent"] = args.config or "echo"
            row["server_rss_per_call_kb"] = (row["server_rss_mb"] * 2**20 - idle_rss) / n / 1024
            row["calls_per_core"] = 1 / max(row["server_cpu_s_per_call_s"], 1e-9)
            row["ok"] = (
                row["jitter_p99_ms"] <= 5.0
                and row["frames_lost"] == 0
                and row["caller_errors"] == 0
                and row["server_missed_slots"] == 0
            )
        finally:
            proc.terminate()
            proc.wait(10)
        rows.append(row)
        print(format_row(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def format_row(r: dict[str, object]) -> str:
    f = {k: v for k, v in r.items()}
    return (
        "{calls:5d} calls  cpu/call-s {cpu:6.3f} ms  (server {su:5.1f}% of a core, client {cu:5.1f}%)  "
        "calls/core {calls_per_core:6.0f}  rss/call {server_rss_per_call_kb:6.1f} KiB  "
        "jitter p50 {jitter_p50_ms:.2f} p99 {jitter_p99_ms:.2f} max {jitter_max_ms:.1f} ms  "
        "lost {frames_lost} late {frames_late} missed-slots {server_missed_slots:.0f}  {verdict}"
    ).format(
        cpu=float(f["server_cpu_s_per_call_s"]) * 1000,  # type: ignore[arg-type]
        su=float(f["server_cpu_util"]) * 100,  # type: ignore[arg-type]
        cu=float(f["client_cpu_util"]) * 100,  # type: ignore[arg-type]
        verdict="OK" if f["ok"] else "FAIL",
        **f,
    )


def uvloop_run(coro):  # type: ignore[no-untyped-def]
    import uvloop

    return uvloop.run(coro)


if __name__ == "__main__":
    raise SystemExit(main())
