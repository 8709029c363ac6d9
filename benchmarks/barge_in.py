"""Barge-in latency: caller speech onset → the agent's audio stops, as the caller hears it.

Default turn and barge-in options with the real Silero VAD; the caller's speech is espeak-ng
speech on an 8 kHz line; STT/LLM/TTS are instant scripted fakes (the agent "talks" a 440 Hz
tone, easy to see in the recording). One call over real AudioSocket on loopback, in real time:
the caller asks, the agent starts a long reply, and 2.4 s into it the caller talks over it;
that utterance is the next question, and so on.

Measured at the caller, on its own clock: from sending the onset of each interrupting
utterance (first 10 ms block above -35 dBFS) to the arrival of the first frame without agent
audio after it. The target is ≤ 250 ms with default options (150 ms of speech before an
interruption, 32 ms VAD windows, then at most one 20 ms frame).

    .venv/bin/python benchmarks/barge_in.py [--interruptions 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from stats import summary
from voxgate.agent.config import AgentConfig, ProviderConfig
from voxgate.agent.pipeline import PipelineAgent
from voxgate.agent.runner import ConversationRunner, RunnerOptions
from voxgate.audio.convert import convert_all
from voxgate.audio.format import AudioFormat, Encoding
from voxgate.audio.pacer import MediaClock
from voxgate.audio.wav import read_wav
from voxgate.config import AudioSocketConfig
from voxgate.providers.vad.silero import SileroVAD
from voxgate.testing import ScriptedLLM, ScriptedSTT, ScriptedTTS
from voxgate.testing.caller import CallerScript, VirtualCaller
from voxgate.transports.audiosocket.server import AudioSocketServer

RATE = 8000
CYCLE_S = 5.0
INTERRUPT_AT_S = 4.0  # into the cycle: ~2.4 s into the agent's reply
LONG_REPLY = " ".join(["This is a long answer that keeps going so the caller has to cut in."] * 4)
LINES = [
    "Wait, I have a question.",
    "Sorry, can I stop you there?",
    "Hold on, what about Saturday?",
    "No, that is not what I asked.",
]


def espeak(text: str) -> bytes:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SystemExit("espeak-ng is needed for the caller's speech: apt-get install espeak-ng")
    with tempfile.NamedTemporaryFile(suffix=".wav") as fh:
        subprocess.run([binary, "-w", fh.name, text], check=True, capture_output=True)
        pcm, fmt = read_wav(fh.name)
    return convert_all(pcm, fmt, AudioFormat(Encoding.PCM16, RATE))


def onset(pcm: bytes, threshold_dbfs: float = -35.0) -> float:
    """Seconds to the first 10 ms block above the threshold."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    block = RATE // 100
    for i in range(0, len(x) - block, block):
        if 20 * np.log10(np.sqrt(np.mean(x[i : i + block] ** 2)) + 1e-12) > threshold_dbfs:
            return i / RATE
    raise ValueError("no speech found")


def caller_audio(n: int) -> tuple[bytes, list[float]]:
    """The caller's whole call and the onset times (s) of its utterances."""
    spoken = [espeak(LINES[i % len(LINES)]) for i in range(len(LINES))]
    cycle = int(CYCLE_S * RATE) * 2
    audio = bytearray(bytes(RATE * 2))  # 1 s before the first question
    onsets = []
    for i in range(n + 1):
        start = len(audio) // 2 / RATE
        utt = spoken[i % len(spoken)]
        if i:  # the first utterance asks; the others cut in
            pad = int(INTERRUPT_AT_S * RATE) * 2 - (len(audio) - (len(audio) // cycle) * cycle)
            audio += bytes(max(0, pad))
            start = len(audio) // 2 / RATE
        onsets.append(start + onset(utt))
        audio += utt
        audio += bytes(cycle - len(utt))
    return bytes(audio), onsets[1:]


def stop_latencies(caller: VirtualCaller, onsets: list[float]) -> tuple[list[float], int]:
    """For each onset while the agent was talking: ms from sending the frame with the onset
    (plus the onset's offset inside it) to the arrival of the first filler frame after it."""
    out: list[float] = []
    not_talking = 0
    arrivals = caller.result.arrivals  # every frame received, agent audio or filler
    talking = {at for at, peak in caller.agent_audio if peak >= 500}
    for t in onsets:
        sent = caller.spoken_at(int(t * RATE))
        before = [at for at in arrivals if at <= sent]
        if not before or before[-1] not in talking:
            not_talking += 1  # the agent was not talking when the caller started
            continue
        stop = next((at for at in arrivals if at > sent and at not in talking), None)
        if stop is not None:
            out.append((stop - sent) * 1000)
    return out, not_talking


async def run(n: int) -> dict[str, object]:
    audio, onsets = caller_audio(n)
    config = AgentConfig(
        name="barge-in",
        stt=[ProviderConfig(name="scripted")],
        llm=[ProviderConfig(name="scripted")],
        tts=[ProviderConfig(name="scripted")],
        call=RunnerOptions(silence_reprompt_ms=None),
    )
    agent = PipelineAgent(
        config,
        stt=ScriptedSTT([LINES[i % len(LINES)] for i in range(n + 2)]),
        llm=ScriptedLLM([LONG_REPLY] * (n + 2)),
        tts=ScriptedTTS(ms_per_char=30),
        vad_factory=lambda: SileroVAD(RATE),
    )
    runners: list[ConversationRunner] = []
    agent.on_runner = runners.append
    server = AudioSocketServer(AudioSocketConfig(listen="127.0.0.1:0"), agent.handle)
    await server.start("127.0.0.1", 0)
    host, port = server.sockets[0]
    caller = VirtualCaller(CallerScript(audio=audio, tail=1.0, record=False, track=True), MediaClock())
    await asyncio.get_running_loop().create_connection(lambda: caller, host, port)
    await caller.done
    await server.stop()
    latencies, missed = stop_latencies(caller, onsets)
    events = [e for r in runners for e in r.record.entries if e.role == "event" and e.text == "paused"]
    return {
        "interruptions": len(onsets),
        "measured": len(latencies),
        "agent_not_talking_at_onset": missed,
        "pauses_recorded": len(events),
        "stop_ms": summary(latencies, ("p50", "p90", "max", "min"), ndigits=1),
        "samples_ms": [round(v, 1) for v in latencies],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--interruptions", type=int, default=20)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    import uvloop

    res = uvloop.run(run(args.interruptions))
    s = res["stop_ms"]
    print(
        f"barge-in: {res['measured']}/{res['interruptions']} interruptions measured; onset → agent audio "
        f"stopped: p50 {s['p50']} ms, p90 {s['p90']} ms, min {s['min']}, max {s['max']} (target ≤ 250 ms)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
