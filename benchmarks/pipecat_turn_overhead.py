"""Turn overhead of pipecat, for comparison with `turn_overhead.py` (voxgate).

Self-contained: it runs in its own venv (`benchmarks/pipecat_setup.sh` makes
`benchmarks/.venv-pipecat`) and imports nothing from voxgate.

The scenario is the same as voxgate's: one phone call over a Twilio Media Streams-style WebSocket
on loopback (pipecat's `FastAPIWebsocketTransport` served by uvicorn, with its
`TwilioFrameSerializer`, 8 kHz mu-law, 20 ms `media` messages both ways). The services are instant
fakes built on pipecat's own base classes, so the framework's normal frame flow runs:

    transport.input() -> InstantSTT -> user aggregator (energy VAD + turn strategies)
        -> InstantLLM -> InstantTTS -> transport.output() -> assistant aggregator

* VAD: `EnergyVADAnalyzer`, a `VADAnalyzer` subclass that calls a 20 ms window speech when its
  RMS is above a threshold (no Silero, no model). It runs where pipecat 1.x runs VAD, in the user
  aggregator (`LLMUserAggregatorParams.vad_analyzer`), via pipecat's `VADController`.
* Turn end: `SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0)` and an STT with
  `ttfs_p99_latency=0`, so pipecat adds no deliberate policy wait after the VAD stop: the turn
  ends as soon as the final transcript is in.
* STT: `SegmentedSTTService` subclass; on the VAD stop it transcribes the segment at once
  (one final, finalized `TranscriptionFrame`).
* LLM: `LLMService` subclass; on each `LLMContextFrame` it streams the fixed reply
  "Sure, I can help with that. What day works for you?" as five `LLMTextFrame` tokens.
* TTS: `TTSService` subclass; `run_tts` returns 400 ms of a 440 Hz tone per sentence at once
  (pipecat's sentence aggregation splits the reply into two sentences).

A client process (this script with `--client`) connects like Twilio (`connected`, `start`, then a
`media` message of 20 ms mu-law every 20 ms of wall clock, silence included) and for each turn
sends ~1 s of loud tone+noise, then silence until the reply audio has come and gone.

What is measured, inside the server process with `time.perf_counter()` (one clock for all marks):

* t_vad (start): pipecat's end-of-speech decision. `EnergyVADAnalyzer._run_analyzer` wraps
  `VADAnalyzer._run_analyzer`, and the mark is taken the moment it returns QUIET after SPEAKING /
  STOPPING, i.e. when the `stop_secs` silence count is reached. (Pipecat runs the analyzer on a
  one-thread executor; the mark is taken in that thread. The hop back onto the event loop is
  counted as framework time.)
* t_out (end): the first outbound `media` message of the reply has been written: the wrapped
  `WebSocket.send_text` of the call's starlette WebSocket (which pipecat's `FastAPIWebsocketClient`
  calls) has returned, i.e. uvicorn has handed the frame to the socket transport.

Primary figure: t_out - t_vad per turn. Also reported, from the same run: the same span from the
VAD stop event on the event loop (`LLMUserAggregator._on_vad_speech_stopped`, which broadcasts
`VADUserStoppedSpeakingFrame`), from the turn-stop decision (`_on_user_turn_stopped`, which
broadcasts `UserStoppedSpeakingFrame`), per-stage medians, and the client's end-to-end figure
(last speech frame sent -> first reply `media` received, minus the configured VAD stop_secs).

What in pipecat moves the number, honestly (pipecat 1.14.0):

* No deliberate wait sits on this path as configured. Pipecat's defaults would add some: the
  default turn-stop strategy is the Smart Turn v3 model (inference after every VAD stop), and
  `SpeechTimeoutUserTurnStopStrategy` waits `user_speech_timeout` (default 0.6 s) after the VAD
  stop, and up to the STT's `ttfs_p99_latency` for a transcript that is not marked finalized.
  Both are policy/provider time: 0 here, and the fake STT's transcript is finalized.
* The output transport cuts TTS audio into `audio_out_10ms_chunks` pieces (pipecat default 4 =
  40 ms media messages; 2 = 20 ms here, Twilio's size) and sends only whole pieces, so the first
  message waits until that much audio is buffered. The fake TTS returns 400 ms at once, so it never
  waits here; a TTS streaming smaller pieces would.
* `FastAPIWebsocketOutputTransport` paces itself with `asyncio.sleep` *after* each write
  (`chunk bytes / sample_rate / 2` = one chunk's duration for 16-bit mono, so real time). The
  first message of a reply is not delayed: the pacing clock is in the past after the silence
  between turns. Later messages follow at 20 ms steps (`client_reply_span_ms`).
* VAD runs on a one-thread executor (`VADAnalyzer.analyze_audio`): the hop back to the loop is in
  the figure (stage `vad_decision_to_vad_event`).
* The analyzer's 20 ms windows line up with the 20 ms media messages, so the decision is taken
  on the (stop_secs / 20 ms)-th silence message; the client figure minus stop_secs is the
  overhead plus both loopback socket legs and the two event loops' wake-ups.
* RTVI is on, as pipecat adds it by default (`--no-rtvi` drops it). Its observer turns the
  turn's frames (user stopped, transcript, LLM tokens, TTS text, bot started...) into client
  messages that cross the whole pipeline to the output transport, where the Twilio serializer
  drops them (`ignore_rtvi_messages=True`). On this path that is most of pipecat's overhead.
* Pipecat logs at DEBUG by default (several lines per turn on this path); this script sets loguru
  to WARNING (`--log-level`).
* Everything is one asyncio loop with one task per processor; every hop is a queue put plus a
  task switch, so a busy machine shows up as many small delays spread over the stages.

    benchmarks/.venv-pipecat/bin/python benchmarks/pipecat_turn_overhead.py --turns 40 [--json out.json]
"""

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 8000  # Twilio Media Streams: 8 kHz mu-law
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160
REPLY_TOKENS = ["Sure,", " I can", " help with that.", " What day", " works for you?"]
TRANSCRIPT = "I'd like to book an appointment."
SCRIPT = os.path.abspath(__file__)


# ---------------------------------------------------------------------------------------------
# G.711 mu-law for the client (numpy; the server side uses pipecat's own conversion)
# ---------------------------------------------------------------------------------------------


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """16-bit PCM samples -> G.711 mu-law bytes (same codes as the CCITT/audioop encoder)."""
    x = pcm.astype(np.int32) >> 2  # 14-bit, arithmetic shift
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21
    seg = np.floor(np.log2(mag)).astype(np.int32) - 5
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def speech_frames(seconds: float, seed: int = 7) -> list[str]:
    """Loud 'speech' (two tones + noise, ~-13 dBFS RMS) as base64 mu-law 20 ms payloads."""
    rng = np.random.default_rng(seed)
    n = int(SAMPLE_RATE * seconds)
    t = np.arange(n) / SAMPLE_RATE
    sig = 0.25 * np.sin(2 * np.pi * 210 * t) + 0.15 * np.sin(2 * np.pi * 470 * t)
    sig += 0.08 * rng.standard_normal(n)
    pcm = np.clip(sig * 32767, -32768, 32767).astype(np.int16)
    ulaw = mulaw_encode(pcm)
    step = FRAME_SAMPLES
    return [base64.b64encode(ulaw[i : i + step]).decode() for i in range(0, n - step + 1, step)]


SILENCE_PAYLOAD = base64.b64encode(b"\xff" * FRAME_SAMPLES).decode()  # mu-law zero


def stats(values_ms: list[float]) -> dict[str, float | int]:
    if not values_ms:
        return {"count": 0}
    a = np.asarray(values_ms, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "count": int(a.size),
        "p50": round(float(p50), 3),
        "p90": round(float(p90), 3),
        "p99": round(float(p99), 3),
        "max": round(float(a.max()), 3),
        "mean": round(float(a.mean()), 3),
        "min": round(float(a.min()), 3),
    }


# ---------------------------------------------------------------------------------------------
# Client: a Twilio-like caller (runs as a subprocess, so its pacing loop and JSON work never
# share the server's event loop)
# ---------------------------------------------------------------------------------------------


async def run_client(args: argparse.Namespace) -> dict:
    from websockets.asyncio.client import connect

    speech = speech_frames(args.speech_secs)
    stream_sid = "MZ" + uuid.uuid4().hex
    call_sid = "CA" + uuid.uuid4().hex
    media_arrivals: list[float] = []
    other_events: dict[str, int] = {}
    turns: list[dict] = []

    async with connect(args.url, max_size=None, compression=None, ping_interval=None) as ws:

        async def receiver() -> None:
            async for raw in ws:
                now = time.perf_counter()
                event = json.loads(raw).get("event")
                if event == "media":
                    media_arrivals.append(now)
                else:
                    other_events[event] = other_events.get(event, 0) + 1

        recv_task = asyncio.create_task(receiver())

        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": "1",
                    "start": {
                        "accountSid": "AC" + uuid.uuid4().hex,
                        "streamSid": stream_sid,
                        "callSid": call_sid,
                        "tracks": ["inbound"],
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": SAMPLE_RATE,
                            "channels": 1,
                        },
                        "customParameters": {},
                    },
                    "streamSid": stream_sid,
                }
            )
        )

        seq = 2
        chunk = 0
        t0 = time.perf_counter()

        async def send_media(payload: str) -> float:
            """Send one 20 ms frame on the real-time schedule; returns when it was sent."""
            nonlocal seq, chunk
            delay = t0 + chunk * FRAME_MS / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(
                json.dumps(
                    {
                        "event": "media",
                        "sequenceNumber": str(seq),
                        "media": {
                            "track": "inbound",
                            "chunk": str(chunk + 1),
                            "timestamp": str(chunk * FRAME_MS),
                            "payload": payload,
                        },
                        "streamSid": stream_sid,
                    }
                )
            )
            seq += 1
            chunk += 1
            return time.perf_counter()

        for _ in range(int(args.lead_in_secs * 1000 / FRAME_MS)):
            await send_media(SILENCE_PAYLOAD)

        quiet_s = args.reply_quiet_secs
        for turn in range(args.turns):
            t_last_speech = 0.0
            for payload in speech:
                t_last_speech = await send_media(payload)
            n_before = len(media_arrivals)
            first = None
            while True:
                now = await send_media(SILENCE_PAYLOAD)
                if first is None and len(media_arrivals) > n_before:
                    first = media_arrivals[n_before]
                if first is not None and now - media_arrivals[-1] > quiet_s:
                    break
                if now - t_last_speech > args.reply_timeout_secs:
                    break
            turns.append(
                {
                    "turn": turn,
                    "e2e_ms": None if first is None else (first - t_last_speech) * 1000,
                    "reply_media_messages": len(media_arrivals) - n_before,
                    "reply_audio_span_ms": None if first is None else (media_arrivals[-1] - first) * 1000,
                }
            )
            for _ in range(int(args.gap_secs * 1000 / FRAME_MS)):
                await send_media(SILENCE_PAYLOAD)

        await ws.send(json.dumps({"event": "stop", "sequenceNumber": str(seq), "streamSid": stream_sid}))
        recv_task.cancel()
    return {"turns": turns, "other_events": other_events}


# ---------------------------------------------------------------------------------------------
# Server: pipecat pipeline with instant fakes, and the measurement marks
# ---------------------------------------------------------------------------------------------


@dataclass
class Turn:
    t_vad: float  # analyzer end-of-speech decision (executor thread)
    t_vad_event: float | None = None  # VAD stop handled on the loop (VADUserStoppedSpeakingFrame)
    t_stt: float | None = None  # fake STT asked to transcribe the segment
    t_turn_stop: float | None = None  # turn-stop decision (UserStoppedSpeakingFrame)
    t_llm: float | None = None  # LLMContextFrame reaches the LLM service
    t_tts: float | None = None  # first run_tts call (first sentence aggregated)
    t_out_before: float | None = None  # first reply media: send_text called
    t_out: float | None = None  # first reply media: send_text returned (written)


@dataclass
class Marks:
    turns: list[Turn] = field(default_factory=list)
    media_sent: int = 0
    session_done: asyncio.Event = field(default_factory=asyncio.Event)

    def _set(self, name: str) -> None:
        if self.turns and getattr(self.turns[-1], name) is None:
            setattr(self.turns[-1], name, time.perf_counter())


def build_server(args: argparse.Namespace, marks: Marks):
    from fastapi import FastAPI, WebSocket
    from loguru import logger
    from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
    from pipecat.frames.frames import (
        Frame,
        LLMContextFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMAssistantAggregator,
        LLMUserAggregator,
        LLMUserAggregatorParams,
    )
    from pipecat.processors.frame_processor import FrameDirection
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.llm_service import LLMService
    from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
    from pipecat.services.stt_service import SegmentedSTTService
    from pipecat.services.tts_service import TTSService
    from pipecat.transports.websocket.fastapi import (
        FastAPIWebsocketParams,
        FastAPIWebsocketTransport,
    )
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import (
        UserTurnStrategies,
        default_user_turn_start_strategies,
    )
    from pipecat.utils.time import time_now_iso8601
    from pipecat.workers.runner import WorkerRunner

    logger.remove()
    logger.add(sys.stderr, level=args.log_level)

    class EnergyVADAnalyzer(VADAnalyzer):
        """RMS threshold per 20 ms window; marks the end-of-speech decision."""

        def __init__(self, threshold: float, **kwargs):
            super().__init__(**kwargs)
            self._threshold = threshold

        def num_frames_required(self) -> int:
            return int(self.sample_rate * FRAME_MS / 1000)

        def voice_confidence(self, buffer: bytes) -> float:
            x = np.frombuffer(buffer, dtype=np.int16).astype(np.float32) / 32768.0
            return 1.0 if float(np.sqrt(np.mean(x * x))) >= self._threshold else 0.0

        def _run_analyzer(self, buffer: bytes) -> VADState:
            before = self._vad_state
            state = super()._run_analyzer(buffer)
            if state == VADState.QUIET and before in (VADState.SPEAKING, VADState.STOPPING):
                marks.turns.append(Turn(t_vad=time.perf_counter()))
            return state

    class TimedUserAggregator(LLMUserAggregator):
        async def _on_vad_speech_stopped(self, controller):
            marks._set("t_vad_event")
            await super()._on_vad_speech_stopped(controller)

        async def _on_user_turn_stopped(self, *a, **kw):
            marks._set("t_turn_stop")
            await super()._on_user_turn_stopped(*a, **kw)

    class InstantSTT(SegmentedSTTService):
        """Segmented STT whose 'provider' answers at once with one final transcript."""

        def __init__(self):
            super().__init__(
                trailing_silence_secs=0.0,
                ttfs_p99_latency=0.0,
                settings=STTSettings(model="instant", language=None),
            )

        @property
        def wants_wav_segments(self) -> bool:
            return False

        async def run_stt(self, audio: bytes):
            marks._set("t_stt")
            yield TranscriptionFrame(TRANSCRIPT, self._user_id, time_now_iso8601(), finalized=True)

    class InstantLLM(LLMService):
        """Streams the fixed reply as a few tokens as soon as the context arrives."""

        def __init__(self):
            super().__init__(
                settings=LLMSettings(
                    model="instant",
                    system_instruction=None,
                    temperature=None,
                    max_tokens=None,
                    top_p=None,
                    top_k=None,
                    frequency_penalty=None,
                    presence_penalty=None,
                    seed=None,
                    filter_incomplete_user_turns=False,
                    user_turn_completion_config=None,
                )
            )

        async def process_frame(self, frame: Frame, direction: FrameDirection):
            await super().process_frame(frame, direction)
            if isinstance(frame, LLMContextFrame):
                marks._set("t_llm")
                await self.push_frame(LLMFullResponseStartFrame())
                for token in REPLY_TOKENS:
                    await self._push_llm_text(token)
                await self.push_frame(LLMFullResponseEndFrame())
            else:
                await self.push_frame(frame, direction)

    class InstantTTS(TTSService):
        """Returns 400 ms of a 440 Hz tone per sentence, at the TTS sample rate, at once."""

        def __init__(self, **kwargs):
            super().__init__(
                push_start_frame=True,
                push_stop_frames=True,
                settings=TTSSettings(model="instant", voice=None, language=None),
                **kwargs,
            )
            self._tone: bytes | None = None

        def can_generate_metrics(self) -> bool:
            return False

        async def run_tts(self, text: str, context_id: str):
            marks._set("t_tts")
            if self._tone is None:
                sr = self.sample_rate
                t = np.arange(int(sr * args.tts_secs)) / sr
                self._tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).tobytes()
            step = self.chunk_size or len(self._tone)
            for i in range(0, len(self._tone), step):
                yield TTSAudioRawFrame(self._tone[i : i + step], self.sample_rate, 1, context_id=context_id)

    app = FastAPI()

    @app.websocket("/ws")
    async def twilio_ws(websocket: WebSocket):
        await websocket.accept()
        # Twilio sends `connected`, then `start` (with the stream and call SIDs).
        start = None
        while start is None:
            msg = json.loads(await websocket.receive_text())
            if msg.get("event") == "start":
                start = msg["start"]

        # Measurement hook: the first outbound media after each VAD decision. Pipecat's
        # FastAPIWebsocketClient calls this object's send_text for every serialized frame.
        send_text = websocket.send_text

        async def timed_send_text(data: str) -> None:
            is_media = data.startswith('{"event": "media"')
            if is_media:
                marks._set("t_out_before")
            await send_text(data)
            if is_media:
                marks.media_sent += 1
                marks._set("t_out")

        websocket.send_text = timed_send_text  # type: ignore[method-assign]

        serializer = TwilioFrameSerializer(
            stream_sid=start["streamSid"],
            call_sid=start["callSid"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
                audio_out_10ms_chunks=args.out_10ms_chunks,
            ),
        )
        vad = EnergyVADAnalyzer(
            args.vad_threshold,
            params=VADParams(
                confidence=0.5,
                start_secs=args.vad_start_secs,
                stop_secs=args.vad_stop_secs,
                min_volume=0.0,
            ),
        )
        context = LLMContext(messages=[{"role": "system", "content": "You book appointments."}])
        user_agg = TimedUserAggregator(
            context,
            params=LLMUserAggregatorParams(
                vad_analyzer=vad,
                user_turn_strategies=UserTurnStrategies(
                    start=default_user_turn_start_strategies(),
                    stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)],
                ),
            ),
        )
        assistant_agg = LLMAssistantAggregator(context, _paired_user_aggregator=user_agg)
        tts_rate = args.tts_sample_rate or None
        pipeline = Pipeline(
            [
                transport.input(),
                InstantSTT(),
                user_agg,
                InstantLLM(),
                InstantTTS(sample_rate=tts_rate),
                transport.output(),
                assistant_agg,
            ]
        )
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE),
            enable_rtvi=False if args.no_rtvi else None,
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(_transport, _ws):
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        try:
            await runner.add_workers(worker)
            await runner.run()
        finally:
            marks.session_done.set()

    return app


async def run_benchmark(args: argparse.Namespace) -> dict:
    import uvicorn

    marks = Marks()
    app = build_server(args, marks)
    # Listen before uvicorn starts, so the client can connect at once (the kernel queues it).
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    # websockets-sansio (uvicorn's `auto` choice with `websockets` installed): a send is a
    # synchronous transport.write(), so "send_text returned" means handed to the socket.
    server = uvicorn.Server(uvicorn.Config(app, ws="websockets-sansio", log_level="warning", lifespan="off"))
    load_before = os.getloadavg()
    server_task = asyncio.create_task(server.serve(sockets=[sock]))

    client_cmd = [
        sys.executable,
        SCRIPT,
        "--client",
        f"--url=ws://127.0.0.1:{port}/ws",
        f"--turns={args.turns}",
        f"--speech-secs={args.speech_secs}",
        f"--gap-secs={args.gap_secs}",
        f"--lead-in-secs={args.lead_in_secs}",
        f"--reply-quiet-secs={args.reply_quiet_secs}",
        f"--reply-timeout-secs={args.reply_timeout_secs}",
    ]
    proc = await asyncio.create_subprocess_exec(*client_cmd, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"client failed with exit code {proc.returncode}")
    client = json.loads(out)
    try:
        await asyncio.wait_for(marks.session_done.wait(), timeout=15)
    except TimeoutError:
        print("warning: pipeline did not finish within 15 s of the client leaving", file=sys.stderr)
    server.should_exit = True
    await server_task

    def span(a: str, b: str) -> list[float]:
        return [
            (getattr(t, b) - getattr(t, a)) * 1000
            for t in marks.turns
            if getattr(t, a) is not None and getattr(t, b) is not None
        ]

    e2e = [t["e2e_ms"] for t in client["turns"] if t["e2e_ms"] is not None]
    import pipecat

    return {
        "framework": "pipecat",
        "pipecat_version": getattr(pipecat, "__version__", "?"),
        "transport": "FastAPIWebsocketTransport + TwilioFrameSerializer under uvicorn "
        f"{uvicorn.__version__} (websockets-sansio), loopback",
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "turns_requested": args.turns,
        "vad_decisions": len(marks.turns),
        "turns_answered": sum(1 for t in marks.turns if t.t_out is not None),
        "media_messages_sent": marks.media_sent,
        "overhead_ms": stats(span("t_vad", "t_out")),
        "overhead_from_vad_event_ms": stats(span("t_vad_event", "t_out")),
        "overhead_from_turn_stop_ms": stats(span("t_turn_stop", "t_out")),
        "overhead_to_send_call_ms": stats(span("t_vad", "t_out_before")),
        "stages_ms": {
            "vad_decision_to_vad_event": stats(span("t_vad", "t_vad_event")),
            "vad_event_to_stt": stats(span("t_vad_event", "t_stt")),
            "stt_to_turn_stop": stats(span("t_stt", "t_turn_stop")),
            "turn_stop_to_llm": stats(span("t_turn_stop", "t_llm")),
            "llm_to_tts": stats(span("t_llm", "t_tts")),
            "tts_to_first_media_written": stats(span("t_tts", "t_out")),
        },
        "client_e2e_ms": stats(e2e),
        "client_e2e_minus_vad_stop_ms": stats([v - args.vad_stop_secs * 1000 for v in e2e]),
        "client_reply_span_ms": stats(
            [t["reply_audio_span_ms"] for t in client["turns"] if t["reply_audio_span_ms"] is not None]
        ),
        "client_reply_media_messages": stats([t["reply_media_messages"] for t in client["turns"]]),
        "client_turns_without_reply": sum(1 for t in client["turns"] if t["e2e_ms"] is None),
        "client_other_events": client["other_events"],
        "server_turns_s": [
            {k: (None if v is None else round(v, 6)) for k, v in vars(t).items()} for t in marks.turns
        ],
        "client_turns": client["turns"],
        "config": {
            "vad": "energy RMS threshold, 20 ms windows, in LLMUserAggregator via VADController",
            "vad_threshold_rms": args.vad_threshold,
            "vad_start_secs": args.vad_start_secs,
            "vad_stop_secs": args.vad_stop_secs,
            "turn_stop_strategy": "SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0)",
            "stt_ttfs_p99_latency": 0.0,
            "tts_sample_rate": args.tts_sample_rate or SAMPLE_RATE,
            "tts_secs_per_sentence": args.tts_secs,
            "out_media_ms": 10 * args.out_10ms_chunks,
            "rtvi": not args.no_rtvi,
            "log_level": args.log_level,
            "speech_secs": args.speech_secs,
        },
    }


def print_report(r: dict) -> None:
    def line(name: str, s: dict) -> str:
        if not s.get("count"):
            return f"  {name:<44} (no samples)"
        return (
            f"  {name:<44} n={s['count']:<3} p50 {s['p50']:7.2f}  p90 {s['p90']:7.2f}  "
            f"p99 {s['p99']:7.2f}  max {s['max']:7.2f}"
        )

    print(f"pipecat {r['pipecat_version']} turn overhead ({r['transport']})")
    print(
        f"  turns {r['turns_requested']}, VAD end-of-speech decisions {r['vad_decisions']}, "
        f"answered {r['turns_answered']}, media messages sent {r['media_messages_sent']}"
    )
    print("server, ms (perf_counter):")
    print(line("VAD decision -> first reply media written", r["overhead_ms"]))
    print(line("VAD stop event (loop) -> first media written", r["overhead_from_vad_event_ms"]))
    print(line("turn-stop decision -> first media written", r["overhead_from_turn_stop_ms"]))
    print(line("VAD decision -> first media send_text called", r["overhead_to_send_call_ms"]))
    print("stages, ms:")
    for k, v in r["stages_ms"].items():
        print(line(k, v))
    print("client, ms:")
    print(line("last speech sent -> first reply media received", r["client_e2e_ms"]))
    stop = r["config"]["vad_stop_secs"]
    print(line(f"  minus VAD stop_secs ({stop} s)", r["client_e2e_minus_vad_stop_ms"]))
    if r["client_turns_without_reply"]:
        print(f"  turns without reply: {r['client_turns_without_reply']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    ap.add_argument("--speech-secs", type=float, default=1.0)
    ap.add_argument("--gap-secs", type=float, default=0.3, help="silence after a reply ends")
    ap.add_argument("--lead-in-secs", type=float, default=0.5)
    ap.add_argument(
        "--reply-quiet-secs",
        type=float,
        default=0.3,
        help="client: reply is over after this long without media",
    )
    ap.add_argument("--reply-timeout-secs", type=float, default=5.0)
    ap.add_argument(
        "--vad-stop-secs",
        type=float,
        default=0.5,
        help="VAD endpointing silence (voxgate's default min_silence_ms is 500)",
    )
    ap.add_argument("--vad-start-secs", type=float, default=0.2)
    ap.add_argument("--vad-threshold", type=float, default=0.02, help="RMS, full scale = 1")
    ap.add_argument("--tts-secs", type=float, default=0.4)
    ap.add_argument(
        "--tts-sample-rate", type=int, default=0, help="fake TTS output rate (0 = pipeline output rate, 8000)"
    )
    ap.add_argument(
        "--out-10ms-chunks",
        type=int,
        default=2,
        help="pipecat audio_out_10ms_chunks: 2 = 20 ms media messages (pipecat default 4)",
    )
    ap.add_argument("--no-rtvi", action="store_true", help="disable pipecat's default RTVI processor")
    ap.add_argument("--log-level", default="WARNING", help="loguru level for pipecat (its default is DEBUG)")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.client:
        print(json.dumps(asyncio.run(run_client(args))))
        return

    result = asyncio.run(run_benchmark(args))
    print_report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
