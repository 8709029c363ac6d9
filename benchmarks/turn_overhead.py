"""Framework overhead per turn: end-of-speech decision → first reply frame on the wire.

Instant scripted providers (STT, LLM, TTS answer at once; an energy VAD) so what is measured is
voxgate itself: the turn worker, the responder, sentence splitting, TTS framing, conversion,
the pacer and the transport write. Real AudioSocket over loopback TCP, real time, uvloop;
callers in this process speak 800 ms of tone per turn and wait for the reply.

The clock starts when the turn detector decides the caller's turn is over (inside the handling
of the inbound frame that completed the endpointing silence) and stops when the first reply
frame is written to the call's socket (the pacer's `when_sent`, set at the write). Both are
`time.monotonic()` in the server.

    .venv/bin/python benchmarks/turn_overhead.py [--turns 40] [--calls 1,20] [--json out.json]
    .venv/bin/python benchmarks/turn_overhead.py --pipecat   # also run benchmarks/pipecat_turn_overhead.py
                                                              # in benchmarks/.venv-pipecat, side by side
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from stats import summary
from voxgate.agent.config import AgentConfig, ProviderConfig
from voxgate.agent.pipeline import PipelineAgent
from voxgate.agent.runner import ConversationRunner, RunnerOptions
from voxgate.audio.pacer import MediaClock
from voxgate.config import AudioSocketConfig
from voxgate.testing import ScriptedLLM, ScriptedSTT, ScriptedTTS, ScriptedVAD
from voxgate.testing.caller import CallerScript, VirtualCaller
from voxgate.testing.harness import tone
from voxgate.transports.audiosocket.server import AudioSocketServer

ROOT = Path(__file__).resolve().parent.parent
REPLY = "Sure, I can help with that. What day works for you?"
SPEECH_MS = 800
TURN_S = 2.6  # speech + endpointing (500 ms) + the reply (~0.5 s) + margin


def percentiles(values: list[float]) -> dict[str, float | None]:
    return summary(values) if values else {}


def build_agent(turns: int, calls: int) -> PipelineAgent:
    config = AgentConfig(
        name="bench",
        stt=[ProviderConfig(name="scripted")],
        llm=[ProviderConfig(name="scripted")],
        tts=[ProviderConfig(name="scripted")],
        vad=ProviderConfig(name="scripted"),
        call=RunnerOptions(silence_reprompt_ms=None),
    )
    n = turns * calls + calls
    return PipelineAgent(
        config,
        stt=ScriptedSTT(["I would like to book an appointment"] * n),
        llm=ScriptedLLM([REPLY] * n),
        tts=ScriptedTTS(ms_per_char=10),
        vad_factory=ScriptedVAD,
    )


def caller_audio(turns: int, rate: int = 8000) -> bytes:
    gap = bytes(int(rate * (TURN_S - SPEECH_MS / 1000)) * 2)
    return (tone(SPEECH_MS, rate) + gap) * turns


async def run(turns: int, calls: int) -> dict[str, object]:
    agent = build_agent(turns, calls)
    runners: list[ConversationRunner] = []
    agent.on_runner = runners.append
    server = AudioSocketServer(AudioSocketConfig(listen="127.0.0.1:0", max_calls=calls + 10), agent.handle)
    await server.start("127.0.0.1", 0)
    host, port = server.sockets[0]
    clock = MediaClock()
    loop = asyncio.get_running_loop()
    audio = caller_audio(turns)
    callers = []
    for _ in range(calls):
        caller = VirtualCaller(CallerScript(audio=audio, tail=0.5, record=False), clock)
        await loop.create_connection(lambda c=caller: c, host, port)
        callers.append(caller)
        await asyncio.sleep(0.02 / max(1, calls // 10))  # spread call starts over the frame period
    await asyncio.gather(*(c.done for c in callers))
    await asyncio.sleep(0.3)
    await server.stop()
    timings = [t for r in runners for t in r.record.timings if t.source == "speech"]
    out = {
        "calls": calls,
        "turns": len(timings),
        "replied": sum(1 for t in timings if t.first_frame_out_ms is not None),
        "decision_to_first_frame_ms": percentiles(
            [t.first_frame_out_ms for t in timings if t.first_frame_out_ms is not None]
        ),
        "decision_to_stt_final_ms": percentiles([t.stt_ms for t in timings if t.stt_ms is not None]),
        "decision_to_first_text_ms": percentiles(
            [t.llm_first_token_ms for t in timings if t.llm_first_token_ms is not None]
        ),
        "decision_to_tts_audio_ms": percentiles(
            [t.tts_first_audio_ms for t in timings if t.tts_first_audio_ms is not None]
        ),
        "late_ticks": clock.stats.late_ticks,
    }
    return out


def run_pipecat(turns: int) -> dict[str, object] | None:
    python = ROOT / "benchmarks" / ".venv-pipecat" / "bin" / "python"
    if not python.exists():
        print("pipecat venv missing: run benchmarks/pipecat_setup.sh first", file=sys.stderr)
        return None
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        subprocess.run(
            [
                str(python),
                str(ROOT / "benchmarks" / "pipecat_turn_overhead.py"),
                "--turns",
                str(turns),
                "--json",
                fh.name,
            ],
            check=True,
        )
        return json.loads(Path(fh.name).read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=40, help="turns per call")
    ap.add_argument("--calls", default="1,20", help="concurrent calls, comma-separated steps")
    ap.add_argument("--pipecat", action="store_true", help="also run the pipecat scenario")
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    results: dict[str, object] = {"voxgate": []}
    for calls in (int(c) for c in args.calls.split(",")):
        if args.no_uvloop:
            res = asyncio.run(run(args.turns, calls))
        else:
            import uvloop

            res = uvloop.run(run(args.turns, calls))
        results["voxgate"].append(res)  # type: ignore[union-attr]
        d = res["decision_to_first_frame_ms"]
        print(
            f"voxgate  calls={calls:<4} turns={res['turns']:<5} replied={res['replied']:<5} "
            f"decision→first frame ms: p50 {d.get('p50')} p90 {d.get('p90')} p99 {d.get('p99')} "
            f"max {d.get('max')}  (stt {res['decision_to_stt_final_ms'].get('p50')}, "
            f"text {res['decision_to_first_text_ms'].get('p50')}, "
            f"tts {res['decision_to_tts_audio_ms'].get('p50')} p50)"
        )
    if args.pipecat:
        pc = run_pipecat(args.turns)
        if pc is not None:
            results["pipecat"] = pc
            o = pc["overhead_ms"]
            print(
                f"pipecat  {pc.get('pipecat_version')} turns={o['count']:<5} decision→first frame ms: "
                f"p50 {o['p50']} p90 {o['p90']} p99 {o['p99']} max {o['max']}"
                f"  (RTVI {pc['config'].get('rtvi')})"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
