"""Voice-to-voice latency of the offline default agent, end of caller speech → first agent audio.

The default agent (Silero VAD, Whisper tiny.en, the flow receptionist, Piper) answers calls on
an in-process AudioSocket server on loopback, as `voxgate serve` does. A virtual caller in a
separate process (its own event loop and interpreter, as Asterisk would be) dials it over TCP,
once per question: the questions match the default agent's intents, are spoken by Piper, put on
a phone line (8 kHz μ-law) and sent in real time. The caller notes when each of its frames went
out and when each frame of agent audio came back.

Two views of each turn, both including endpointing:

- runner: the agent's own `TurnTiming`: voice_to_voice = endpointing (the VAD's end of speech →
  the end-of-turn decision) + first_frame_out (decision → first reply frame on the wire), with
  the breakdown stt, first text (the flow's reply), tts first audio (all from the decision);
- caller: the true end of speech in the synthesised audio (last sample at or above -40 dBFS,
  spoken when its frame was written) → arrival of the first reply frame (and of the first
  audible one, -40 dBFS or more). `true endpointing` is that end of speech → the decision.

One call (not counted) warms the whole path up first. The agent's greeting is off by default
(it only adds ~7 s a call; the question's turn is the same); `--greeting` plays it first.

    .venv/bin/python benchmarks/voice_to_voice.py [--utterances 12] [--greeting] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from stats import summary
from voxgate.agent.pipeline import default_agent
from voxgate.agent.runner import ConversationRunner
from voxgate.audio.convert import convert_all
from voxgate.audio.format import SLIN8, ULAW8
from voxgate.audio.pacer import MediaClock
from voxgate.config import AudioSocketConfig
from voxgate.testing.caller import CallerScript, VirtualCaller
from voxgate.transports.audiosocket.server import AudioSocketServer

HOST = "127.0.0.1"
RATE = 8000
FRAME = RATE // 50
SPEECH_LEVEL = 328  # |sample| at or above 1% of full scale (-40 dBFS) is speech
QUIET_S = 0.8  # no agent audio for this long: the agent has finished talking
LENGTH_SCALES = (1.0, 0.9, 1.15)  # caller's speaking pace, one per round through the questions

QUESTIONS = [  # what callers ask, and the default agent's intent for it
    ("What are your opening hours?", "hours"),
    ("When are you open?", "hours"),
    ("Are you open on Saturday?", "hours"),
    ("Where are you located?", "address"),
    ("What is your address?", "address"),
    ("How do I get there?", "address"),
    ("Can someone call me back?", "callback"),
    ("I'd like a callback, please.", "callback"),
    ("I'd like to book an appointment.", "appointment"),
    ("Is this a robot?", "about"),
    ("What is this service?", "about"),
    ("Can I talk to a real person?", "operator"),
]


# --- the caller (child process) ----------------------------------------------------------------


async def _wait(predicate: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def _call(port: int, call_uuid: str, pcm: bytes, greeting: bool, listen_s: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    script = CallerScript(hangup_after=120.0, call_uuid=call_uuid, record=False, track=True)
    _, caller = await loop.create_connection(lambda: VirtualCaller(script, MediaClock()), HOST, port)
    out: dict[str, Any] = {"uuid": call_uuid}
    try:
        if greeting:  # the greeting plays to the end first
            frames = caller.agent_audio
            await _wait(lambda: bool(frames) and time.monotonic() - frames[-1][0] >= QUIET_S, 30)
        else:
            await asyncio.sleep(0.4)
        start = caller.append_audio(pcm)
        n = len(pcm) // 2
        loud = np.flatnonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) >= SPEECH_LEVEL)
        end_sample = start + int(loud[-1]) + 1
        await _wait(lambda: caller._pos // 2 >= start + n, 30)
        end = caller.spoken_at(end_sample - 1) + 1 / RATE
        out["speech_end"] = end
        out["onset"] = caller.spoken_at(start + int(loud[0]))
        await _wait(lambda: caller.agent_audio_after(end) is not None or caller.done.done(), 15)
        await asyncio.sleep(listen_s)
        out["first_frame"] = caller.agent_audio_after(end)
        out["first_audible"] = caller.agent_audio_after(end, SPEECH_LEVEL)
    finally:
        caller.hangup()
    result = await caller.done
    out["ended_by"], out["error"] = result.ended_by, result.error
    return out


def caller_main(
    port: int, plan: list[tuple[str, bytes]], greeting: bool, listen_s: float, conn: Connection
) -> None:
    """Child process: the calls one after another; each call's times are sent back as it ends."""

    async def run() -> None:
        for call_uuid, pcm in plan:
            conn.send(await _call(port, call_uuid, pcm, greeting, listen_s))
            await asyncio.sleep(1.0)  # the agent finishes the call (hangup, last transcript)

    asyncio.run(run())
    conn.close()


# --- the server and the measurements (this process) -------------------------------------------


async def synthesise(texts: list[tuple[str, float]]) -> list[bytes]:
    """Each (text, length_scale) spoken by Piper, as a phone line delivers it: 8 kHz via μ-law."""
    from voxgate.providers.tts.piper import PiperTTS

    out = []
    for text, scale in texts:
        voice = PiperTTS(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
        pcm = b"".join([f.data async for f in voice.synthesize(text)])
        out.append(convert_all(convert_all(pcm, voice.output_format, ULAW8), ULAW8, SLIN8))
    return out


def expected_reply(agent: Any, intent: str) -> str:
    spec = agent.config.flow.intents[intent]
    return spec.slots[0].question if spec.slots else spec.say


def stats(values: list[float]) -> dict[str, float | None]:
    return summary(values, ("median", "p90", "min", "max"), ndigits=1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load0 = os.getloadavg()
    n = args.utterances
    asks = [(QUESTIONS[i % len(QUESTIONS)], LENGTH_SCALES[i // len(QUESTIONS) % 3]) for i in range(n)]
    t0 = time.perf_counter()
    agent = default_agent() if args.greeting else default_agent(greeting=None)
    runners: dict[str, ConversationRunner] = {}
    agent.on_runner = lambda r: runners.__setitem__(r.call.call_id, r)
    await agent.prepare()
    load_s = time.perf_counter() - t0
    audio = await synthesise([("What time do you close?", 1.05)] + [(q, s) for (q, _), s in asks])
    plan = [(str(uuid.uuid4()), pcm) for pcm in audio]

    server = AudioSocketServer(AudioSocketConfig(listen=f"{HOST}:0"), agent.handle)
    await server.start(HOST, 0)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=caller_main, args=(server.sockets[0][1], plan, args.greeting, args.listen, child), daemon=True
    )
    proc.start()
    child.close()
    loop = asyncio.get_running_loop()
    results: list[dict[str, Any]] = []
    try:
        for i in range(len(plan)):
            got = await loop.run_in_executor(None, parent.recv)
            results.append(got)
            print(f"\r{i}/{n} calls", end="", flush=True)
        await loop.run_in_executor(None, proc.join, 30)
    finally:
        print("\r", end="")
        if proc.is_alive():
            proc.terminate()
        for call_uuid, _ in plan:
            runner = runners.get(call_uuid)
            if runner is not None:
                await _wait(lambda r=runner: r.record.ended_at is not None, 10)
        await server.stop()
    load1 = os.getloadavg()

    rows = []
    for (question, intent), scale, got in zip(
        [q for q, _ in asks], [s for _, s in asks], results[1:], strict=True
    ):
        runner = runners.get(got["uuid"])
        record = runner.record if runner is not None else None
        timing = next((t for t in record.timings if t.source == "speech"), None) if record else None
        said = [e for e in record.entries if e.role in ("caller", "agent")] if record else []
        asked = next((i for i, e in enumerate(said) if e.role == "caller"), len(said))
        heard = said[asked].text if asked < len(said) else ""
        reply = next((e.text for e in said[asked:] if e.role == "agent"), "")  # after the greeting
        end = got.get("speech_end")
        first, audible = got.get("first_frame"), got.get("first_audible")
        row: dict[str, Any] = {
            "question": question,
            "length_scale": scale,
            "heard": heard,
            "reply": reply,
            "intent_ok": reply.startswith(expected_reply(agent, intent)),
            "caller_v2v_ms": None if first is None else round((first - end) * 1000, 1),
            "caller_v2v_audible_ms": None if audible is None else round((audible - end) * 1000, 1),
        }
        if timing is not None:
            row.update({k: v for k, v in timing.as_dict().items() if k not in ("turn", "source")})
            row["true_endpointing_ms"] = round((timing.decided_at - end) * 1000, 1)
        rows.append(row)

    keys = [
        "endpointing_ms",
        "true_endpointing_ms",
        "stt_ms",
        "llm_first_token_ms",
        "tts_first_audio_ms",
        "first_frame_out_ms",
        "voice_to_voice_ms",
        "caller_v2v_ms",
        "caller_v2v_audible_ms",
    ]
    turn = agent.config.turn
    return {
        "agent": "default (flow), greeting " + ("on" if args.greeting else "off"),
        "stt": "whisper tiny.en int8 (faster-whisper)",
        "tts": "piper joe-medium",
        "vad": agent.config.vad.name,
        "turn": turn.model_dump(),
        "early_stt_ms": agent.config.call.early_stt_ms,
        "cores": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "loadavg_before": [round(x, 2) for x in load0],
        "loadavg_after": [round(x, 2) for x in load1],
        "model_load_s": round(load_s, 2),
        "turns": len(rows),
        "understood": sum(r["intent_ok"] for r in rows),
        "summary_ms": {k: stats([r.get(k) for r in rows]) for k in keys},
        "rows": rows,
    }


def fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:4.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--utterances", type=int, default=12, help="caller questions (calls) to time (default 12)"
    )
    ap.add_argument("--greeting", action="store_true", help="play the agent's greeting before each question")
    ap.add_argument("--listen", type=float, default=1.0, help="seconds of the reply heard before hanging up")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args()
    result = asyncio.run(run(args))

    print(
        f"{result['agent']}; whisper tiny.en, piper, silero; "
        f"min_silence {result['turn']['min_silence_ms']} ms, "
        f"early stt {result['early_stt_ms']} ms; {result['cores']} cores, load "
        f"{result['loadavg_before'][0]:.1f} → {result['loadavg_after'][0]:.1f}"
    )
    print(
        "all ms; runner: endp = VAD end of speech → decision; stt, text (flow reply), tts (first audio), "
        "out (first frame sent): from the decision\n"
        "caller: true endp = end of speech → decision; v2v = end of speech → first reply frame (audible)"
    )
    print(
        f"{'question':<32} {'endp':>4} {'stt':>4} {'text':>4} {'tts':>4} {'out':>4} {'v2v':>5} │ "
        f"{'true endp':>9} {'v2v':>5} {'aud':>5}  heard, answer"
    )
    for r in result["rows"]:
        print(
            f"{r['question'][:32]:<32} {fmt(r.get('endpointing_ms'))} {fmt(r.get('stt_ms'))} "
            f"{fmt(r.get('llm_first_token_ms'))} {fmt(r.get('tts_first_audio_ms'))} "
            f"{fmt(r.get('first_frame_out_ms'))} {fmt(r.get('voice_to_voice_ms')):>5} │ "
            f"{fmt(r.get('true_endpointing_ms')):>9} {fmt(r.get('caller_v2v_ms')):>5} "
            f"{fmt(r.get('caller_v2v_audible_ms')):>5}  {r['heard']!r} {'ok' if r['intent_ok'] else 'WRONG'}"
        )
    s = result["summary_ms"]
    for label, key in [
        ("median", "median"),
        ("p90", "p90"),
    ]:
        print(
            f"{label:<32} {fmt(s['endpointing_ms'][key])} {fmt(s['stt_ms'][key])} "
            f"{fmt(s['llm_first_token_ms'][key])} {fmt(s['tts_first_audio_ms'][key])} "
            f"{fmt(s['first_frame_out_ms'][key])} {fmt(s['voice_to_voice_ms'][key]):>5} │ "
            f"{fmt(s['true_endpointing_ms'][key]):>9} {fmt(s['caller_v2v_ms'][key]):>5} "
            f"{fmt(s['caller_v2v_audible_ms'][key]):>5}"
        )
    v2v, caller = s["voice_to_voice_ms"], s["caller_v2v_ms"]
    print(
        f"voice-to-voice over {result['turns']} turns ({result['understood']} answered right): "
        f"runner median {fmt(v2v['median']).strip()} ms, p90 {fmt(v2v['p90']).strip()} ms; "
        f"at the caller median {fmt(caller['median']).strip()} ms, p90 {fmt(caller['p90']).strip()} ms "
        f"(target ≤ 1000 ms median)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
