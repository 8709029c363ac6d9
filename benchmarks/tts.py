"""TTS speed: time to first audio and real-time factor, for Piper and espeak-ng, over 5 sentences.

Each sentence is one `synthesize()` call (as the agent runner sends them, sentence by
sentence). Time to first audio (TTFA) is from the call to the first frame; the real-time
factor (RTF) is synthesis time / audio duration (lower is faster; 0.1 = ten times faster than
real time). Piper's voice is loaded and warmed first; its load time is reported apart. A
`--paragraph` row synthesises all five sentences in one call, to show sentence streaming
(TTFA stays one sentence's worth).

    .venv/bin/python benchmarks/tts.py [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from typing import Any

from voxgate.providers.base import TTS

SENTENCES = [
    "Thank you for calling, how can I help you today?",
    "Our opening hours are nine to five, Monday to Friday.",
    "I can book an appointment for next Tuesday morning.",
    "Could you tell me a phone number where we can reach you?",
    "Thanks, you will get a confirmation by text message shortly.",
]


async def measure(tts: TTS, text: str) -> tuple[float, float, float]:
    """(time to first audio s, synthesis time s, audio s) of one synthesize() call."""
    start = time.perf_counter()
    first: float | None = None
    nbytes = 0
    async for frame in tts.synthesize(text):
        if first is None:
            first = time.perf_counter() - start
        nbytes += len(frame.data)
    total = time.perf_counter() - start
    return first or total, total, tts.output_format.duration_ms(nbytes) / 1000


def summary(rows: list[tuple[float, float, float]]) -> dict[str, float]:
    ttfa = sorted(r[0] * 1000 for r in rows)
    return {
        "calls": len(rows),
        "ttfa_ms_median": round(statistics.median(ttfa), 1),
        "ttfa_ms_max": round(ttfa[-1], 1),
        "rtf": round(sum(r[1] for r in rows) / sum(r[2] for r in rows), 4),
        "audio_s": round(sum(r[2] for r in rows), 2),
    }


async def bench(name: str, tts: TTS, repeat: int) -> dict[str, Any]:
    await measure(tts, "Hello.")  # first-call costs (imports, process start caches)
    rows = [await measure(tts, s) for _ in range(repeat) for s in SENTENCES]
    para = [await measure(tts, " ".join(SENTENCES)) for _ in range(repeat)]
    result = {"provider": name, "format": str(tts.output_format), **summary(rows)}
    result["paragraph"] = summary(para)
    return result


async def run(repeat: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    try:
        from voxgate.providers.tts.piper import PiperTTS

        piper = PiperTTS()
        start = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, piper.voice)
        load_s = time.perf_counter() - start
        await piper.warm()
        results.append({**await bench("piper", piper, repeat), "load_s": round(load_s, 2)})
    except ImportError as exc:
        print(f"piper: skipped ({exc}); pip install 'voxgate[piper]'")
    try:
        from voxgate.providers.tts.espeak import EspeakTTS

        results.append(await bench("espeak", EspeakTTS(), repeat))
    except Exception as exc:
        print(f"espeak: skipped ({exc})")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="times each sentence is synthesised")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(run(args.repeat))

    print(f"{len(SENTENCES)} sentences x {args.repeat}, {os.cpu_count()} CPUs, {platform.processor()}")
    head = f"{'provider':<8} {'format':<12} {'TTFA med':>9} {'TTFA max':>9} {'RTF':>7}"
    print(f"{head}  {'paragraph TTFA/RTF':>20}")
    for r in results:
        p = r["paragraph"]
        print(
            f"{r['provider']:<8} {r['format']:<12} {r['ttfa_ms_median']:>7.1f}ms {r['ttfa_ms_max']:>7.1f}ms "
            f"{r['rtf']:>7.3f}  {p['ttfa_ms_median']:>10.1f}ms / {p['rtf']:.3f}"
            + (f"   (voice load {r['load_s']} s)" if "load_s" in r else "")
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpus": os.cpu_count(), "repeat": args.repeat, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
