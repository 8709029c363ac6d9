"""Speech-to-speech bridge: the latency voxgate adds, and what converting the audio costs per call.

A `RealtimeAgent` on `OpenAIRealtime` answers AudioSocket calls from virtual callers on
loopback, as `voxgate serve` would. OpenAI is tests/fake_openai_realtime.py (protocol-faithful)
run as its own process, one `FakeRealtime` per WebSocket. Two paths:

- ulaw: `audiosocket.codec: ulaw`, kind 0x10 carries μ-law 8 kHz inbound (Dial(AudioSocket/…)
  without c()); the session is `audio/pcmu` both ways, so the bridge passes the caller's bytes
  through. AudioSocket's outbound is always slin, so the pacer decodes the reply's μ-law (a table
  lookup) to slin 8 kHz.
- slin16: slin 16 kHz as kind 0x12; the session is `audio/pcm` at 24 kHz, so the caller's audio
  is resampled 16 → 24 kHz and the reply 24 → 16 kHz.

Latency (this process: voxgate on uvloop, the callers on their own clock). Each caller speaks
turns: 100 ms of tone, 100 ms of silence, over and over. The fake counts loud audio in 5 ms
blocks of what it is sent (decoding μ-law, or the 24 kHz pcm); the moment a turn's loud audio is
in (≥ 90 ms of it: only the turn's last frame gets it there), it sends speech_stopped, committed,
the user item, response.created, output_item.added, content_part.added and the first
output_audio.delta (20 ms of tone), then the rest of a 60 ms reply and response.done at once. It
sends speech_started when a turn's first loud audio arrives. Per turn:

- caller: the turn's last frame written by the caller → the first non-silent reply frame read
  by it (both `time.monotonic()`, loopback TCP both ways);
- in→out: that frame handed to `AudioSocketCall.data_received` → the first reply frame written
  to the call's socket (send_now at the talkspurt's start, or a clock tick), inside voxgate;
- fake: the fake's own time, from its hook holding the append that ended the turn to the moment
  it starts sending the first delta (that write counts as voxgate's);
- voxgate = in→out − fake: voxgate's share (both WebSocket hops on loopback included), with
  the breakdown in→fake (inbound, the 24 kHz resampling, base64, the append's send), fake→write
  (the events read, parsed and decoded, the bridge) and write→out (the pacer and conversion).

Callers start spread over one turn period, so turn ends are spread as on a real server. With
two cores or more, voxgate and its callers are pinned to one core and the fake to another (on a
small machine, the process a write wakes must not preempt the fake between its timestamps); the
CPU runs give voxgate a core of its own. `gc.freeze()` after start-up, as `voxgate serve` does.
Other processes' CPU and the hypervisor's steal during each run are shown: both skew the tails.

CPU: voxgate runs in a child process of its own (same agent, uvloop, no instrumentation), the
fake in another, the callers here. N calls (default 40: on a 2-vCPU VM 50 slin16 calls take ~90 %
of the loop's core and it starts missing clock slots) stream caller audio (noise) all the time,
and the fake streams a reply that never ends (20 ms deltas paced at real time, kept 100 ms
ahead: the pacer always has audio). The voxgate child's CPU (`time.process_time()`, and the
event-loop thread's `time.thread_time()`, read in the child at the start and end of the window)
over N × window is its CPU per call-second; neither the fake's work nor the callers' is in it:
they are other processes.
The micro-measure times just the conversion (`AudioConverter`s as the bridge and pacer use them)
and base64 (append encode, delta decode) for a call-second of each path, in this process; the
JSON of those messages is shown beside it for scale.

    .venv/bin/python benchmarks/realtime_bridge.py [--turns 50 --calls 1,20] \
        [--cpu-calls 50 --seconds 15] [--json out.json]
    .venv/bin/python benchmarks/realtime_bridge.py --first-gap-ms 60   # the rest of a reply 60 ms
                                                                       # after its first delta
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import logging
import multiprocessing
import os
import platform
import sys
import time
import urllib.parse
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import numpy as np
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake OpenAI Realtime server

from fake_openai_realtime import FakeRealtime  # noqa: E402
from stats import summary  # noqa: E402
from voxgate.agent.config import ProviderConfig, default_agent_config  # noqa: E402
from voxgate.agent.realtime import RealtimeAgent  # noqa: E402
from voxgate.audio.convert import AudioConverter  # noqa: E402
from voxgate.audio.format import SLIN8, SLIN16, SLIN24, ULAW8, AudioFrame  # noqa: E402
from voxgate.audio.g711 import ULAW_DECODE, ulaw_encode  # noqa: E402
from voxgate.audio.pacer import MediaClock, OutboundPacer  # noqa: E402
from voxgate.config import AudioSocketConfig  # noqa: E402
from voxgate.providers.realtime.openai import OpenAIRealtime  # noqa: E402
from voxgate.testing.caller import CallerScript, VirtualCaller  # noqa: E402
from voxgate.testing.harness import tone  # noqa: E402
from voxgate.transports.audiosocket import server as audiosocket_server  # noqa: E402
from voxgate.transports.audiosocket.protocol import Kind, encode  # noqa: E402
from voxgate.transports.audiosocket.server import AudioSocketCall, AudioSocketServer  # noqa: E402

HOST = "127.0.0.1"
KEY = "sk-bench-not-a-real-key"
FRAME_MS = 20
SPEECH_MS = 100  # a caller turn: this much tone …
GAP_MS = 100  # … then this much silence (the reply plays in it)
REPLY_MS = 60  # the fake's reply to each turn
DELTA_MS = 20  # audio per output_audio.delta
LEAD_IN_S = 0.6  # silence before the first turn (the session starts meanwhile)
BLOCK_MS = 5  # the fake's loudness blocks
LOUD_RMS = 1000.0  # a block this loud is speech (the tone's RMS is ~5700)
TURN_END_MS = SPEECH_MS - 10  # loud audio that ends a turn: only the turn's last frame reaches it
QUIET_AFTER_MS = 40  # after a turn, loud audio counts again only after this much quiet
STREAM_LEAD_MS = 100  # stream mode: audio sent ahead of real time
WINDOW_MS = 150  # a turn's reply must start within this (else: missing)

PATHS: dict[str, dict[str, Any]] = {
    "ulaw": {"codec": "ulaw", "rate": 8000, "session": "audio/pcmu"},
    "slin16": {"codec": "slin", "rate": 16000, "session": "audio/pcm"},
}


# --- the fake OpenAI Realtime server (child process) -------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FakeScript:
    """Drives one `FakeRealtime` connection from the audio it is sent (its `on_audio` hook).

    turns: answer each caller turn the moment its loud audio is in (see the module docstring).
    stream: from the first audio on, one reply that never ends, paced at real time."""

    def __init__(self, fake: FakeRealtime, query: dict[str, str]) -> None:
        self.fake = fake
        self.mode = query.get("mode", "turns")
        self.call = query.get("call", "?")
        self.reply_ms = int(query.get("reply_ms", REPLY_MS))
        self.delta_ms = int(query.get("delta_ms", DELTA_MS))
        self.first_gap_ms = float(query.get("first_gap_ms", 0))
        self.fmt = ""
        # (hook got the turn's last audio, first delta about to be sent, handed to the socket)
        self.turns: list[tuple[float, float, float]] = []
        self.appended_bytes = 0
        self.deltas = 0
        self.truncates = 0
        self.cancels = 0
        self.errors = 0
        self.speech_started = 0
        self._rest = np.zeros(0, dtype=np.float32)
        self._loud_ms = 0.0
        self._quiet_ms = float(QUIET_AFTER_MS)
        self._speaking = False
        self._n = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._reply = b""

    def summary(self) -> dict[str, Any]:
        self._count()
        return {
            "call": self.call,
            "mode": self.mode,
            "format": self.fmt,
            "turns": self.turns,
            "appended_bytes": self.appended_bytes,
            "deltas": self.deltas,
            "truncates": self.truncates,
            "cancels": self.cancels,
            "errors": self.errors,
            "speech_started": self.speech_started,
        }

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _count(self) -> None:
        """Tally what the client sent since last time and forget it (long runs stay small)."""
        f = self.fake
        for event in f.received:
            kind = event.get("type")
            if kind == "conversation.item.truncate":
                self.truncates += 1
            elif kind == "response.cancel":
                self.cancels += 1
        self.errors += sum(1 for e in f.sent if e["type"] == "error")
        f.received.clear()
        f.sent.clear()
        del f.audio_in[:]

    def _start(self) -> None:
        fmt = self.fake.session["audio"]["output"]["format"]["type"]
        self.fmt = fmt
        rate = 24000 if fmt == "audio/pcm" else 8000
        pcm = tone(max(self.reply_ms, 1000), rate, hz=500.0)
        self._reply = pcm if fmt == "audio/pcm" else ulaw_encode(pcm)
        self._bytes_per_ms = 48 if fmt == "audio/pcm" else 8

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_audio(self, audio: bytes) -> None:
        received = time.monotonic()
        if not self.fmt:
            self._start()
        self.appended_bytes += len(audio)
        self._count()
        if self.mode == "stream":
            if self._n == 0:
                self._n = 1
                self._spawn(self._stream())
            return
        if self.fmt == "audio/pcm":
            x = np.frombuffer(audio, "<i2").astype(np.float32)
            block = 24 * BLOCK_MS
        else:
            x = ULAW_DECODE[np.frombuffer(audio, np.uint8)].astype(np.float32)
            block = 8 * BLOCK_MS
        x = np.concatenate((self._rest, x))
        whole = len(x) // block * block
        self._rest = x[whole:]
        if not whole:
            return
        loud = np.sqrt((x[:whole].reshape(-1, block) ** 2).mean(axis=1)) > LOUD_RMS
        for is_loud in loud:
            if not is_loud:
                self._quiet_ms += BLOCK_MS
                continue
            if self._quiet_ms < QUIET_AFTER_MS:  # the tail of the turn just answered
                continue
            if not self._speaking:
                self._speaking = True
                self.speech_started += 1
                await self.fake.emit(
                    "input_audio_buffer.speech_started", audio_start_ms=0, item_id=f"item_u{self._n + 1}"
                )
            self._loud_ms += BLOCK_MS
            if self._loud_ms >= TURN_END_MS:
                self._loud_ms, self._quiet_ms, self._speaking = 0.0, 0.0, False
                await self._answer(received)

    def _chunks(self, ms: int) -> list[bytes]:
        n = self.delta_ms * self._bytes_per_ms
        audio = self._reply[: ms * self._bytes_per_ms]
        return [audio[i : i + n] for i in range(0, len(audio), n)]

    async def _open_reply(self) -> dict[str, Any]:
        f = self.fake
        response, item = f"resp_b{self._n}", f"item_a{self._n}"
        f.active_response = response
        await f.emit(
            "response.created",
            response={
                "id": response,
                "object": "realtime.response",
                "status": "in_progress",
                "status_details": None,
                "output": [],
                "usage": None,
            },
        )
        f.last_item = item
        f.item_audio_ms[item] = 0.0
        message = {
            "id": item,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        await f.emit("response.output_item.added", response_id=response, output_index=0, item=message)
        ids = {"response_id": response, "item_id": item, "output_index": 0}
        await f.emit(
            "response.content_part.added", **ids, content_index=0, part={"type": "audio", "transcript": ""}
        )
        return ids

    async def _delta(self, ids: dict[str, Any], piece: bytes) -> None:
        await self.fake.emit("response.output_audio.delta", **ids, content_index=0, delta=_b64(piece))
        self.fake.item_audio_ms[ids["item_id"]] += len(piece) / self._bytes_per_ms
        self.deltas += 1

    async def _answer(self, received: float) -> None:
        """The caller's turn is over: the reply's first audio goes out before anything else."""
        f = self.fake
        self._n += 1
        user = f"item_u{self._n}"
        await f.emit("input_audio_buffer.speech_stopped", audio_end_ms=0, item_id=user)
        await f.emit("input_audio_buffer.committed", previous_item_id=None, item_id=user)
        user_item = {
            "id": user,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await f.emit("conversation.item.added", previous_item_id=None, item=user_item)
        await f.emit("conversation.item.done", previous_item_id=None, item=user_item)
        ids = await self._open_reply()
        chunks = self._chunks(self.reply_ms)
        before = time.monotonic()
        await self._delta(ids, chunks[0])
        self.turns.append((received, before, time.monotonic()))
        self._spawn(self._finish(ids, chunks[1:]))

    async def _finish(self, ids: dict[str, Any], chunks: list[bytes]) -> None:
        f = self.fake
        if self.first_gap_ms:
            await asyncio.sleep(self.first_gap_ms / 1000)
        for piece in chunks:
            await self._delta(ids, piece)
        await f.emit("response.output_audio.done", **ids, content_index=0)
        await f.emit("response.output_audio_transcript.done", **ids, content_index=0, transcript="Sure.")
        part = {"type": "audio", "transcript": "Sure."}
        await f.emit("response.content_part.done", **ids, content_index=0, part=part)
        done = {
            "id": ids["item_id"],
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": "Sure."}],
        }
        await f.emit("response.output_item.done", response_id=ids["response_id"], output_index=0, item=done)
        f.active_response = None
        await f.emit(
            "response.done",
            response={
                "id": ids["response_id"],
                "object": "realtime.response",
                "status": "completed",
                "status_details": None,
                "output": [done],
                "usage": {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10},
            },
        )

    async def _stream(self) -> None:
        """One reply that never ends, `STREAM_LEAD_MS` ahead of real time."""
        loop = asyncio.get_running_loop()
        try:
            ids = await self._open_reply()
            chunks = self._chunks(1000)
            start, sent, i = loop.time(), 0.0, 0
            while not self.fake.disconnected.is_set():
                due = (loop.time() - start) * 1000 + STREAM_LEAD_MS
                while sent < due:
                    await self._delta(ids, chunks[i % len(chunks)])
                    sent += self.delta_ms
                    i += 1
                await asyncio.sleep(self.delta_ms / 1000)
        except (ConnectionError, RuntimeError, AssertionError):
            return  # the call ended under us


def fake_main(conn: Connection) -> None:
    """Child process: the fake server; its port goes back on `conn`, "stop" ends it."""
    import uvloop

    async def main() -> None:
        scripts: list[FakeScript] = []

        async def realtime(request: web.Request) -> web.StreamResponse:
            fake = FakeRealtime(key=KEY)
            script = FakeScript(fake, dict(request.query))
            fake.on_audio = script.on_audio
            scripts.append(script)
            try:
                return await fake._handle(request)  # one FakeRealtime per connection
            finally:
                script.stop()

        async def stats(request: web.Request) -> web.Response:
            return web.json_response([s.summary() for s in scripts])

        async def reset(request: web.Request) -> web.Response:
            scripts.clear()
            return web.json_response({})

        app = web.Application()
        app.router.add_get("/v1/realtime", realtime)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, backlog=1024)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await runner.cleanup()

    logging.basicConfig(level=logging.ERROR)
    uvloop.run(main())


# --- voxgate ------------------------------------------------------------------------------------


class FakeFallback:
    """Stands in for the pipeline: a call that gets here is a failed session (counted)."""

    tools: list[Any] = []  # noqa: RUF012

    def __init__(self) -> None:
        self.calls = 0

    async def handle(self, call: Any, greeting: str | None = None) -> None:
        self.calls += 1
        await call.hangup("fallback")


class TaggedOpenAI:
    """`OpenAIRealtime` with the call's id (and the fake's script options) in the URL, so the
    fake can say which call each of its turns belongs to."""

    name = "openai-realtime"

    def __init__(self, url: str, **options: Any) -> None:
        self.url, self.options = url, options

    def session(self, config: Any) -> Any:
        url = f"{self.url}&call={urllib.parse.quote(config.call_id)}"
        return OpenAIRealtime(url=url, api_key=KEY, **self.options).session(config)


def realtime_agent(provider: Any) -> tuple[RealtimeAgent, FakeFallback]:
    config = default_agent_config().model_copy(
        update={"mode": "realtime", "greeting": None, "realtime": [ProviderConfig(name="openai-realtime")]}
    )
    fallback = FakeFallback()
    return RealtimeAgent(config, [provider], fallback), fallback


class TimedPacer(OutboundPacer):
    """The call's pacer, noting when audio is written to it and when audio frames go out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[float] = []
        self.outs: list[tuple[float, str]] = []  # (time, "now" | "tick")

    def write(self, frame: AudioFrame) -> None:
        self.writes.append(time.monotonic())
        super().write(frame)

    def next_message(self) -> bytes:
        before = self.audio_frames_sent
        message = super().next_message()
        if self.audio_frames_sent > before:
            self.outs.append((time.monotonic(), "tick"))  # written right after this returns
        return message


class TimedCall(AudioSocketCall):
    """An AudioSocket call that notes when each inbound audio frame arrived (`in_times[n-1]` for
    the n-th) and, through its `TimedPacer`, when reply audio was written and went out."""

    made: list[TimedCall] = []  # noqa: RUF012

    def __init__(self, server: AudioSocketServer) -> None:
        super().__init__(server)
        self.output = TimedPacer(self.output.wire_format, self._wrap_audio)
        self.output.send_now = self._timed_send_now
        self.in_times: list[float] = []
        TimedCall.made.append(self)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        before = self.frames_in
        super().data_received(data)
        self.in_times.extend([now] * (self.frames_in - before))

    def _timed_send_now(self, message: bytes) -> None:
        self._send_now(message)
        self.output.outs.append((time.monotonic(), "now"))  # type: ignore[attr-defined]


# --- callers ------------------------------------------------------------------------------------


class Caller(VirtualCaller):
    """A VirtualCaller; with `ulaw` its 0x10 frames carry 160 bytes of μ-law (silence 0xff), as
    Asterisk's channel driver sends without c(). Notes when each turn's last frame went out."""

    def __init__(self, script: CallerScript, clock: MediaClock, ulaw: bool, turn_ends: set[int]) -> None:
        super().__init__(script, clock)
        if ulaw:
            self._frame_bytes = 160
            self._silence = encode(Kind.AUDIO, b"\xff" * 160)
        self.turn_ends = turn_ends  # byte positions just past each turn's last frame
        self.turns: list[tuple[float, int]] = []  # (last frame written, its frame number)

    def on_tick(self, now: float) -> None:
        pos = self._pos
        super().on_tick(now)
        if self._pos != pos and self._pos in self.turn_ends:
            self.turns.append((self.sent[-1][1], self.result.frames_sent))


def turn_audio(path: str, turns: int) -> tuple[bytes, set[int]]:
    rate, ulaw = PATHS[path]["rate"], path == "ulaw"
    width = 1 if ulaw else 2
    quiet = b"\xff" if ulaw else b"\0\0"
    speech = tone(SPEECH_MS, rate)
    if ulaw:
        speech = ulaw_encode(speech)
    gap = quiet * (rate * GAP_MS // 1000)
    lead = quiet * int(rate * LEAD_IN_S)
    ends = {len(lead) + k * (len(speech) + len(gap)) + len(speech) for k in range(turns)}
    assert len(speech) % (rate * FRAME_MS // 1000 * width) == 0
    return lead + (speech + gap) * turns, ends


# --- latency ------------------------------------------------------------------------------------


class GcPauses:
    """Garbage collections in this process while it is on: (start, end, generation)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        self._start = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.monotonic()
        else:
            self.pauses.append((self._start, time.monotonic(), info["generation"]))

    def during(self, t0: float, t1: float) -> float:
        """Milliseconds of collection inside [t0, t1]."""
        return sum(max(0.0, min(b, t1) - max(a, t0)) for a, b, _ in self.pauses) * 1000


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(pid, cpus)


async def fetch(port: int, what: str, method: str = "GET") -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"http://{HOST}:{port}/{what}") as resp,
    ):
        return await resp.json()


def first_at_or_after(times: list[float], t: float, within: float) -> int | None:
    i = int(np.searchsorted(times, t))
    return i if i < len(times) and times[i] <= t + within else None


async def latency_run(
    path: str, calls: int, turns: int, fake_port: int, fake_pid: int, first_gap_ms: float
) -> dict[str, Any]:
    spec = PATHS[path]
    TimedCall.made.clear()
    await fetch(fake_port, "reset", "POST")
    url = f"ws://{HOST}:{fake_port}/v1/realtime?mode=turns&first_gap_ms={first_gap_ms:g}"
    agent, fallback = realtime_agent(TaggedOpenAI(url))
    options = AudioSocketConfig(listen=f"{HOST}:0", codec=spec["codec"], max_calls=calls + 10)
    server = AudioSocketServer(options, agent.handle)
    gc.collect()
    gc.freeze()  # as `voxgate serve` does once everything is loaded
    load = OtherLoad([fake_pid])
    with mock.patch.object(audiosocket_server, "AudioSocketCall", TimedCall), GcPauses() as gcs:
        await server.start(HOST, 0)
        host, port = server.sockets[0]
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        clock = MediaClock()
        audio, ends = turn_audio(path, turns)
        period = (SPEECH_MS + GAP_MS) / 1000
        callers: list[Caller] = []
        for _ in range(calls):
            seconds = len(audio) / (spec["rate"] * (1 if path == "ulaw" else 2)) + 0.4
            script = CallerScript(
                audio=audio, rate=spec["rate"], hangup_after=seconds, record=False, track=True
            )
            caller = Caller(script, clock, path == "ulaw", ends)
            await loop.create_connection(lambda c=caller: c, host, port)
            callers.append(caller)
            await asyncio.sleep(period / calls)  # turn ends spread over a turn period
        await asyncio.gather(*(c.done for c in callers))
        await asyncio.sleep(0.3)
        await server.stop()
    others = load.result()
    fake = {s["call"]: s for s in await fetch(fake_port, "stats")}
    by_id = {c.call_id: c for c in TimedCall.made}

    rows: list[dict[str, Any]] = []
    missing = 0
    for caller in callers:
        call_id = caller.result.call_id
        call, script = by_id.get(call_id), fake.get(call_id)
        arrivals = [at for at, _ in caller.agent_audio]
        if call is None or script is None:
            missing += len(caller.turns)
            continue
        pacer: TimedPacer = call.output  # type: ignore[assignment]
        outs = sorted(pacer.outs)
        out_times = [t for t, _ in outs]
        fake_turns = sorted(tuple(t) for t in script["turns"])
        fake_recv = [r for r, _, _ in fake_turns]
        for sent, frame_no in caller.turns:
            w = WINDOW_MS / 1000
            a = first_at_or_after(arrivals, sent, w)
            t_in = call.in_times[frame_no - 1] if frame_no <= len(call.in_times) else None
            o = first_at_or_after(out_times, t_in, w) if t_in is not None else None
            f = first_at_or_after(fake_recv, t_in, w) if t_in is not None else None
            wr = first_at_or_after(pacer.writes, fake_turns[f][1], w) if f is not None else None
            if a is None or t_in is None or o is None or f is None or wr is None:
                missing += 1
                continue
            t_out, via = outs[o]
            recv, fsent, _ = fake_turns[f]
            t_write = pacer.writes[wr]
            rows.append(
                {
                    "at_s": t_in - started,
                    "call": callers.index(caller),
                    "gc_ms": gcs.during(t_in, t_out),
                    "caller_ms": (arrivals[a] - sent) * 1000,
                    "in_out_ms": (t_out - t_in) * 1000,
                    "fake_ms": (fsent - recv) * 1000,
                    "voxgate_ms": ((t_out - t_in) - (fsent - recv)) * 1000,
                    "in_to_fake_ms": (recv - t_in) * 1000,
                    "fake_to_write_ms": (t_write - fsent) * 1000,
                    "write_to_out_ms": (t_out - t_write) * 1000,
                    "caller_to_in_ms": (t_in - sent) * 1000,
                    "out_to_caller_ms": (arrivals[a] - t_out) * 1000,
                    "via": via,
                }
            )
    keys = [k for k in rows[0] if k not in ("via", "gc_ms", "at_s", "call")] if rows else []
    slow = [r for r in rows if r["voxgate_ms"] > 5.0]
    barge_ins = sum(1 for r in agent.records for e in r.entries if e.role == "event" and e.text == "barge_in")
    scripts = list(fake.values())
    return {
        "path": path,
        "calls": calls,
        "turns_spoken": sum(len(c.turns) for c in callers),
        "turns_timed": len(rows),
        "turns_missing": missing,
        "first_frame_by_tick": sum(1 for r in rows if r["via"] == "tick"),
        "gc_collections": len(gcs.pauses),
        "gc_max_ms": round(max(((b - a) * 1000 for a, b, _ in gcs.pauses), default=0.0), 3),
        "turns_over_5ms": len(slow),
        "turns_over_5ms_with_gc": sum(1 for r in slow if r["gc_ms"] > 0),
        "summary_ms": {k: summary([r[k] for r in rows], ("n", "p50", "p99", "max")) for k in keys},
        "fallbacks": fallback.calls,
        **others,
        "caller_errors": sum(1 for c in callers if c.result.ended_by == "error"),
        "server_late_ticks": server.clock.stats.late_ticks,
        "server_missed_slots": server.clock.stats.missed_slots,
        "caller_late_ticks": clock.stats.late_ticks,
        "speech_started": sum(s["speech_started"] for s in scripts),
        "barge_ins_recorded": barge_ins,
        "truncates_sent": sum(s["truncates"] for s in scripts),
        "cancels_sent": sum(s["cancels"] for s in scripts),
        "fake_errors_sent": sum(s["errors"] for s in scripts),
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }


# --- CPU ----------------------------------------------------------------------------------------


def voxgate_main(conn: Connection, codec: str, url: str, max_calls: int) -> None:
    """Child process: the AudioSocket server and the realtime agent, nothing else. Answers
    "stats" with its CPU so far and its calls' counters; "stop" ends it."""
    import uvloop

    async def main() -> None:
        agent, fallback = realtime_agent(OpenAIRealtime(url=url, api_key=KEY))
        options = AudioSocketConfig(listen=f"{HOST}:0", codec=codec, max_calls=max_calls)
        server = AudioSocketServer(options, agent.handle)
        gc.collect()
        gc.freeze()  # as `voxgate serve` does
        await server.start(HOST, 0)
        conn.send(server.sockets[0][1])
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, conn.recv)) == "stats":
            calls = list(server.calls)
            conn.send(
                {
                    "t": time.monotonic(),
                    "cpu": time.process_time(),
                    "loop_cpu": time.thread_time(),  # this coroutine runs on the loop's thread
                    "calls": len(calls),
                    "frames_in": sum(c.frames_in for c in calls),
                    "audio_frames_out": sum(c.output.audio_frames_sent for c in calls),
                    "frames_out": sum(c.output.frames_sent for c in calls),
                    "late_ticks": server.clock.stats.late_ticks,
                    "missed_slots": server.clock.stats.missed_slots,
                    "fallbacks": fallback.calls,
                }
            )
        assert command == "stop"
        await server.stop()
        others = asyncio.all_tasks() - {asyncio.current_task()}  # the calls' agents closing sessions
        if others:
            await asyncio.wait(others, timeout=3)

    logging.basicConfig(level=logging.ERROR)
    uvloop.run(main())


def noise(rate: int, seconds: float, ulaw: bool) -> bytes:
    rng = np.random.default_rng(7)
    pcm = np.rint(rng.standard_normal(int(rate * seconds)) * 3000).astype("<i2").tobytes()
    return ulaw_encode(pcm) if ulaw else pcm


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far, from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    tck = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tck, steal / tck


class OtherLoad:
    """CPU that processes other than ours used meanwhile (another job on the machine skews the
    figures), and CPU the hypervisor stole, each as a share of one core."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.t0, self.machine0, self.ours0 = time.monotonic(), machine_cpu(), self._ours()

    def _ours(self) -> float:
        return time.process_time() + sum(proc_cpu_seconds(pid) for pid in self.pids)

    def result(self) -> dict[str, float]:
        window = time.monotonic() - self.t0
        (busy0, steal0), (busy1, steal1) = self.machine0, machine_cpu()
        others = busy1 - busy0 - (self._ours() - self.ours0)
        return {
            "other_cpu_util": round(max(0.0, others) / window, 3),
            "steal_util": round((steal1 - steal0) / window, 3),
        }


async def ask(conn: Connection, command: str) -> Any:
    conn.send(command)
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def cpu_run(
    path: str, calls: int, seconds: float, ramp: float, fake_port: int, fake_pid: int, cpus: set[int] | None
) -> dict[str, Any]:
    spec = PATHS[path]
    await fetch(fake_port, "reset", "POST")
    url = f"ws://{HOST}:{fake_port}/v1/realtime?mode=stream"
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=voxgate_main, args=(child, spec["codec"], url, calls + 10), daemon=True)
    proc.start()
    pin(proc.pid, cpus)
    loop = asyncio.get_running_loop()
    try:
        port = await loop.run_in_executor(None, parent.recv)
        clock = MediaClock()
        total = ramp + seconds + 2.0
        audio = noise(spec["rate"], total + 1, path == "ulaw")
        callers: list[Caller] = []
        for i in range(calls):
            script = CallerScript(
                audio=audio, rate=spec["rate"], hangup_after=total - i * ramp / calls, record=False
            )
            caller = Caller(script, clock, path == "ulaw", set())
            await loop.create_connection(lambda c=caller: c, HOST, port)
            callers.append(caller)
            await asyncio.sleep(ramp / calls)
        await asyncio.sleep(1.0)  # every session up, every stream flowing
        fake0 = await fetch(fake_port, "stats")
        fake_cpu0, my_cpu0 = proc_cpu_seconds(fake_pid), time.process_time()
        load = OtherLoad([fake_pid, proc.pid])
        a = await ask(parent, "stats")
        await asyncio.sleep(seconds)
        b = await ask(parent, "stats")
        fake_cpu1, my_cpu1 = proc_cpu_seconds(fake_pid), time.process_time()
        others = load.result()
        fake1 = await fetch(fake_port, "stats")
        for caller in callers:
            caller.hangup()
        results = await asyncio.gather(*(c.done for c in callers))
        parent.send("stop")
        await loop.run_in_executor(None, proc.join, 10)
    finally:
        if proc.is_alive():
            proc.terminate()
    window = b["t"] - a["t"]
    call_s = calls * window
    bytes_per_ms = 48 if spec["session"] == "audio/pcm" else 8
    appended = sum(s["appended_bytes"] for s in fake1) - sum(s["appended_bytes"] for s in fake0)
    deltas = sum(s["deltas"] for s in fake1) - sum(s["deltas"] for s in fake0)
    return {
        "path": path,
        "session_format": spec["session"],
        "calls": calls,
        "calls_up": a["calls"],
        "window_s": round(window, 2),
        "cpu_ms_per_call_s": round((b["cpu"] - a["cpu"]) / call_s * 1000, 3),
        "loop_thread_cpu_ms_per_call_s": round((b["loop_cpu"] - a["loop_cpu"]) / call_s * 1000, 3),
        "voxgate_cpu_util": round((b["cpu"] - a["cpu"]) / window, 3),
        "fake_cpu_util": round((fake_cpu1 - fake_cpu0) / window, 3),
        "callers_cpu_util": round((my_cpu1 - my_cpu0) / window, 3),
        "caller_frames_in_per_call_s": round((b["frames_in"] - a["frames_in"]) / call_s, 2),
        "agent_audio_frames_out_per_call_s": round(
            (b["audio_frames_out"] - a["audio_frames_out"]) / call_s, 2
        ),
        "frames_out_per_call_s": round((b["frames_out"] - a["frames_out"]) / call_s, 2),
        "appended_ms_per_call_s": round(appended / bytes_per_ms / call_s, 1),
        "deltas_per_call_s": round(deltas / call_s, 2),
        "late_ticks": b["late_ticks"] - a["late_ticks"],
        "missed_slots": b["missed_slots"] - a["missed_slots"],
        "fallbacks": b["fallbacks"],
        **others,
        "caller_errors": sum(1 for r in results if r.ended_by == "error"),
        "ended_by_agent": sum(1 for r in results if r.ended_by not in ("caller",)),
    }


# --- micro: conversion and base64 only ----------------------------------------------------------


def micro(path: str, seconds: int = 20, repeat: int = 5) -> dict[str, Any]:
    """µs per call-second of each step the conversion path adds, best of `repeat`."""
    frames = seconds * 1000 // FRAME_MS
    rng = np.random.default_rng(3)

    def pcm(rate: int) -> list[bytes]:
        n = rate * FRAME_MS // 1000
        return [np.rint(rng.standard_normal(n) * 3000).astype("<i2").tobytes() for _ in range(frames)]

    if path == "ulaw":
        caller = [ulaw_encode(f) for f in pcm(8000)]
        deltas = [ulaw_encode(f) for f in pcm(8000)]
        conv_in, conv_out = None, AudioConverter(ULAW8, SLIN8)
    else:
        caller = pcm(16000)
        deltas = pcm(24000)
        conv_in, conv_out = AudioConverter(SLIN16, SLIN24), AudioConverter(SLIN24, SLIN16)
    sent = [c if conv_in is None else conv_in.convert(c) for c in caller]
    b64_deltas = [_b64(d) for d in deltas]
    delta_events = [
        json.dumps({"type": "response.output_audio.delta", "event_id": "event_1", "response_id": "resp_1",
                    "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": d})
        for d in b64_deltas
    ]  # fmt: skip
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def convert_in() -> None:
        if conv_in is not None:
            for c in caller:
                conv_in.convert(c)

    def encode_in() -> None:
        for s in sent:
            base64.b64encode(s).decode("ascii")

    def decode_out() -> None:
        for d in b64_deltas:
            base64.b64decode(d, validate=True)

    def convert_out() -> None:
        for d in deltas:
            conv_out.convert(d)

    def json_both() -> None:
        for s, e in zip(b64_deltas, delta_events, strict=True):
            dumps({"type": "input_audio_buffer.append", "audio": s})
            json.loads(e)

    out: dict[str, Any] = {"path": path, "call_seconds": seconds}
    for name, fn in [
        ("convert_in", convert_in),
        ("b64_encode_in", encode_in),
        ("b64_decode_out", decode_out),
        ("convert_out", convert_out),
        ("json", json_both),
    ]:
        best = min(_timed(fn) for _ in range(repeat))
        out[f"{name}_us_per_call_s"] = round(best / seconds * 1e6, 1)
    out["conversion_b64_us_per_call_s"] = round(
        sum(
            out[f"{k}_us_per_call_s"]
            for k in ("convert_in", "b64_encode_in", "b64_decode_out", "convert_out")
        ),
        1,
    )
    return out


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- main ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    fake_proc = ctx.Process(target=fake_main, args=(child,), daemon=True)
    fake_proc.start()
    loop = asyncio.get_running_loop()
    load0 = os.getloadavg()
    mine = sorted(os.sched_getaffinity(0))
    # Latency: voxgate and its callers on one core, the fake on another (on a small machine, waking
    # the other process must not preempt the fake's timestamps). CPU: voxgate on a core of its own.
    pinned = len(mine) >= 2 and not args.no_pin
    lat_pins = ({mine[0]}, {mine[1]}) if pinned else (None, None)  # (this process, the fake)
    cpu_pins = ({mine[0]}, {mine[-1]}, {mine[1]}) if pinned else (None, None, None)  # (voxgate, this, fake)
    out: dict[str, Any] = {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "loop": "asyncio" if args.no_uvloop else "uvloop",
        "pinned": {
            "latency": {"voxgate+callers": sorted(lat_pins[0] or []), "fake": sorted(lat_pins[1] or [])},
            "cpu": {
                k: sorted(v or []) for k, v in zip(("voxgate", "callers", "fake"), cpu_pins, strict=True)
            },
        },
        "turn": {
            "speech_ms": SPEECH_MS,
            "gap_ms": GAP_MS,
            "reply_ms": REPLY_MS,
            "delta_ms": DELTA_MS,
            "first_gap_ms": args.first_gap_ms,
        },
        "latency": [],
        "cpu_runs": [],
        "micro": [],
    }
    try:
        fake_port = await loop.run_in_executor(None, parent.recv)
        paths = args.paths.split(",")
        pin(0, lat_pins[0])
        pin(fake_proc.pid, lat_pins[1])
        for calls in (int(c) for c in args.calls.split(",") if c):
            for path in paths:
                res = await latency_run(path, calls, args.turns, fake_port, fake_proc.pid, args.first_gap_ms)
                out["latency"].append(res)
                v = res["summary_ms"].get("voxgate_ms", {})
                print(
                    f"latency {path} × {calls} calls: {res['turns_timed']} turns, "
                    f"voxgate share p99 {v.get('p99')} ms",
                    flush=True,
                )
        pin(0, cpu_pins[1])
        pin(fake_proc.pid, cpu_pins[2])
        for path in paths if args.cpu_calls else []:
            res = await cpu_run(
                path, args.cpu_calls, args.seconds, args.ramp, fake_port, fake_proc.pid, cpu_pins[0]
            )
            out["cpu_runs"].append(res)
            print(f"cpu {path} × {args.cpu_calls} calls: {res['cpu_ms_per_call_s']} ms/call-s", flush=True)
    finally:
        parent.send("stop")
        await loop.run_in_executor(None, fake_proc.join, 5)
        if fake_proc.is_alive():
            fake_proc.terminate()
        pin(0, set(mine))
    for path in paths:
        out["micro"].append(micro(path))
    out["loadavg_before"] = [round(x, 2) for x in load0]
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def ms(v: Any, width: int = 6) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:{width}.2f}"


def p50_p99_max(d: dict[str, Any]) -> str:
    return " ".join(ms(d.get(k)) for k in ("p50", "p99", "max"))


def print_latency(runs: list[dict[str, Any]]) -> None:
    groups = [
        ("caller_ms", "caller e2e"),
        ("in_out_ms", "voxgate in→out"),
        ("fake_ms", "fake recv→send"),
        ("voxgate_ms", "voxgate share"),
    ]
    print("\nlatency, ms: p50 p99 max per turn")
    print(f"{'':<22}" + "".join(f" │ {title:^20}" for _, title in groups) + " │ first frame")
    print(f"{'path':<7} {'calls':>5} {'turns':>8}" + " │   p50    p99    max" * len(groups) + " │ by tick")
    for r in runs:
        s = r["summary_ms"]
        print(
            f"{r['path']:<7} {r['calls']:>5} {r['turns_timed']:>4}/{r['turns_spoken']:<3}"
            + "".join(f" │ {p50_p99_max(s.get(k, {}))}" for k, _ in groups)
            + f" │ {r['first_frame_by_tick']:>3}/{r['turns_timed']}"
        )
    parts = [
        ("caller_to_in_ms", "caller→in"),
        ("in_to_fake_ms", "in→fake"),
        ("fake_ms", "fake"),
        ("fake_to_write_ms", "fake→write"),
        ("write_to_out_ms", "write→out"),
        ("out_to_caller_ms", "out→caller"),
    ]
    print("breakdown, ms: p50 / p99")
    print(f"{'path':<7} {'calls':>5}" + "".join(f" │ {title:^13}" for _, title in parts))
    for r in runs:
        s = r["summary_ms"]
        cells = [f"{ms(s.get(k, {}).get('p50'), 5)} / {ms(s.get(k, {}).get('p99'), 5)}" for k, _ in parts]
        print(f"{r['path']:<7} {r['calls']:>5}" + "".join(f" │ {c}" for c in cells))
    problems = ("turns_missing", "fallbacks", "caller_errors", "fake_errors_sent")
    for r in (r for r in runs if any(r[k] for k in problems)):
        print(
            f"  {r['path']} × {r['calls']}: {r['turns_missing']} turns missing, {r['fallbacks']} fallbacks, "
            f"{r['caller_errors']} caller errors, {r['fake_errors_sent']} errors from the fake"
        )
    for r in runs:
        print(
            f"  {r['path']} × {r['calls']}: speech_started {r['speech_started']}, barge-ins recorded "
            f"{r['barge_ins_recorded']}, truncates sent {r['truncates_sent']}, cancels {r['cancels_sent']}; "
            f"clock late ticks {r['server_late_ticks']}; gc {r['gc_collections']} (max {r['gc_max_ms']} ms); "
            f"turns > 5 ms {r['turns_over_5ms']} ({r['turns_over_5ms_with_gc']} during a gc); "
            f"other processes {r['other_cpu_util']:.0%} of a core, stolen {r['steal_util']:.0%}"
        )


def print_cpu(runs: list[dict[str, Any]]) -> None:
    print("\nCPU per call-second of the voxgate process (callers' and agent's audio both ways, all the time)")
    print(
        f"{'path':<7} {'session':<10} {'calls':>5} {'window':>7} │ {'ms/call-s':>9} {'loop thr':>8} │ "
        f"{'voxgate':>7} {'fake':>6} {'callers':>7} │ {'in/s':>5} {'out/s':>5} {'sent ms/s':>9} │ "
        "clock, errors"
    )
    for r in runs:
        print(
            f"{r['path']:<7} {r['session_format']:<10} {r['calls']:>5} {r['window_s']:>6.1f}s │ "
            f"{r['cpu_ms_per_call_s']:9.3f} {r['loop_thread_cpu_ms_per_call_s']:8.3f} │ "
            f"{r['voxgate_cpu_util']:7.1%} {r['fake_cpu_util']:6.1%} {r['callers_cpu_util']:7.1%} │ "
            f"{r['caller_frames_in_per_call_s']:5.1f} {r['agent_audio_frames_out_per_call_s']:5.1f} "
            f"{r['appended_ms_per_call_s']:9.1f} │ late {r['late_ticks']} missed {r['missed_slots']} "
            f"fallbacks {r['fallbacks']} errors {r['caller_errors']}; others {r['other_cpu_util']:.0%} "
            f"stolen {r['steal_util']:.0%}"
        )
    print(
        "  (in/s: caller frames into voxgate; out/s: agent audio frames out; sent ms/s: caller audio the "
        "fake got; CPU of a core for each process)"
    )
    for r in runs:
        if r["voxgate_cpu_util"] > 0.8:
            print(
                f"  {r['path']} × {r['calls']}: SATURATED ({r['voxgate_cpu_util']:.0%} of its core, "
                f"{r['missed_slots']} missed clock slots): fewer calls give a clean figure"
            )
        elif r["missed_slots"]:
            print(
                f"  {r['path']} × {r['calls']}: {r['missed_slots']} missed clock slots "
                "(the loop stalled ≥ 20 ms)"
            )


def print_micro(runs: list[dict[str, Any]]) -> None:
    print("\nmicro: conversion + base64 only, µs per call-second, in this process")
    print("(json: encoding the appends and decoding the deltas of the same call-second, for scale)")
    print(
        f"{'path':<7} {'convert in':>10} {'b64 enc':>8} {'b64 dec':>8} {'convert out':>11} │ "
        f"{'total':>7} │ {'json':>7}"
    )
    for m in runs:
        print(
            f"{m['path']:<7} {m['convert_in_us_per_call_s']:10.1f} {m['b64_encode_in_us_per_call_s']:8.1f} "
            f"{m['b64_decode_out_us_per_call_s']:8.1f} {m['convert_out_us_per_call_s']:11.1f} │ "
            f"{m['conversion_b64_us_per_call_s']:7.1f} │ {m['json_us_per_call_s']:7.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=50, help="turns per call (default 50)")
    ap.add_argument("--calls", default="1,20", help="concurrent calls per latency run, comma-separated")
    ap.add_argument("--paths", default="ulaw,slin16", help="ulaw, slin16 or both")
    ap.add_argument(
        "--first-gap-ms",
        type=float,
        default=0.0,
        help="the fake sends the rest of each reply this long after its first delta (default 0)",
    )
    ap.add_argument(
        "--cpu-calls",
        type=int,
        default=40,
        help="calls in the CPU runs (default 40: 50 slin16 calls saturate a 2-vCPU VM's core; 0: skip)",
    )
    ap.add_argument("--seconds", type=float, default=15.0, help="CPU measurement window per path")
    ap.add_argument("--ramp", type=float, default=1.5, help="seconds to connect the CPU runs' callers")
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--no-pin", action="store_true", help="leave every process free to run on any core")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(
        f"{len(os.sched_getaffinity(0))} cores; turns: {SPEECH_MS} ms tone + {GAP_MS} ms silence, "
        f"reply {REPLY_MS} ms in {DELTA_MS} ms deltas"
        + (f", the rest {args.first_gap_ms:g} ms after the first" if args.first_gap_ms else ""),
        flush=True,
    )
    t0 = time.monotonic()
    if args.no_uvloop:
        result = asyncio.run(run(args))
    else:
        import uvloop

        result = uvloop.run(run(args))
    if result["latency"]:
        print_latency(result["latency"])
    if result["cpu_runs"]:
        print_cpu(result["cpu_runs"])
    print_micro(result["micro"])
    micro_by = {m["path"]: m for m in result["micro"]}
    cpu_by = {r["path"]: r for r in result["cpu_runs"]}
    if {"ulaw", "slin16"} <= micro_by.keys():
        ratio = micro_by["slin16"]["conversion_b64_us_per_call_s"] / max(
            micro_by["ulaw"]["conversion_b64_us_per_call_s"], 1e-9
        )
        line = f"\nslin16 (pcm 24 kHz) vs ulaw (pcmu): conversion + base64 ×{ratio:.0f}"
        if {"ulaw", "slin16"} <= cpu_by.keys():
            u, v = cpu_by["ulaw"]["cpu_ms_per_call_s"], cpu_by["slin16"]["cpu_ms_per_call_s"]
            line += f"; the whole voxgate process ×{v / max(u, 1e-9):.2f} ({u:.2f} → {v:.2f} ms/call-s)"
        print(line)
    lat = [r for r in result["latency"] if r["summary_ms"]]
    if lat:
        worst = max(lat, key=lambda r: r["summary_ms"]["voxgate_ms"]["p99"])
        print(
            f"target: voxgate's added latency ≤ 10 ms p99; worst p99 here "
            f"{worst['summary_ms']['voxgate_ms']['p99']:.2f} ms ({worst['path']} × {worst['calls']} calls)"
        )
    print(f"total {time.monotonic() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
