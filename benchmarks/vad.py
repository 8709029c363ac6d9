"""Silero VAD cost: µs per window and per 20 ms frame (p50/p99), and memory per instance.

Per window is one `SileroVAD.speech_probability` call (32 ms of audio). Per frame is one
`TurnDetector.push` of a 20 ms slin frame at the VAD's rate (a window runs on 5 frames of 8);
"per 20 ms of audio" is the mean frame cost, what capacity planning needs. Memory is the RSS
growth per extra instance, measured over `--instances` live instances (each owns an ONNX
Runtime session), after the first one has loaded the library.

    .venv/bin/python benchmarks/vad.py [--seconds 60] [--instances 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from voxgate.agent.turns import TurnDetector
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers.vad import SileroVAD

PAGE = os.sysconf("SC_PAGE_SIZE")


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


def bench_rate(rate: int, seconds: float) -> dict:
    audio = test_audio(rate, seconds)
    vad = SileroVAD(rate)
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
    det = TurnDetector(SileroVAD(rate))
    per_frame = []
    for frame in frames:
        t0 = time.perf_counter_ns()
        det.push(frame)
        per_frame.append(time.perf_counter_ns() - t0)
    return {
        "sample_rate": rate,
        "window_samples": vad.frame_samples,
        "windows": len(per_window),
        "per_window": percentiles(per_window),
        "per_20ms_frame_turn_detector": percentiles(per_frame),
        "cpu_share_of_one_core_per_call_pct": round(float(np.mean(per_frame)) / 20e6 * 100, 3),
    }


def bench_memory(rate: int, instances: int) -> dict:
    before = rss_mb()
    first = SileroVAD(rate)
    after_first = rss_mb()
    others = [SileroVAD(rate) for _ in range(instances)]
    for v in [first, *others]:  # run each once, so lazily allocated buffers count
        v.speech_probability(bytes(v.frame_samples * 2))
    after_all = rss_mb()
    return {
        "sample_rate": rate,
        "first_instance_mb": round(after_first - before, 1),
        "per_extra_instance_mb": round((after_all - after_first) / instances, 2),
        "instances": instances + 1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio per rate to time")
    ap.add_argument("--instances", type=int, default=50, help="extra instances for the memory figure")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args()

    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "memory": bench_memory(8000, args.instances),
        "timing": [bench_rate(rate, args.seconds) for rate in (8000, 16000)],
    }
    mem = result["memory"]
    print(
        f"memory: first instance +{mem['first_instance_mb']} MB (loads the library), "
        f"each further instance +{mem['per_extra_instance_mb']} MB (over {mem['instances']} live)"
    )
    for r in result["timing"]:
        w, f = r["per_window"], r["per_20ms_frame_turn_detector"]
        print(
            f"{r['sample_rate']} Hz ({r['window_samples']}-sample windows, {r['windows']} timed): "
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
