"""A virtual caller that behaves as Asterisk's AudioSocket side does.

It connects, sends the UUID first, then real-time 20 ms frames (silence after its audio runs
out, as a live channel keeps producing audio), DTMF as one message per digit with the gap in
audio a real digit causes, and hangs up by closing the socket (never 0x00). What the agent sends
back is checked as Asterisk would (only 0x00 and 0x10–0x18, no empty audio) and recorded
time-aligned: each frame lands where it arrived on the call's timeline.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFormat, Encoding
from voxgate.audio.pacer import MediaClock
from voxgate.transports.audiosocket.protocol import (
    AUDIO_KIND_RATES,
    RATE_AUDIO_KINDS,
    Kind,
    MessageReader,
    audio_header,
    encode,
    encode_uuid,
    kind_name,
)

DIGIT_GAP_S = 0.24  # no audio frames while a digit plays (seen on Asterisk 22: 0.2–0.25 s)
_JUMP_TOLERANCE_MS = 60  # a frame later than this behind the playout cursor starts after a gap


@dataclass
class CallerScript:
    """What the caller does: audio to play (pcm16 at `rate`), digits, when to hang up."""

    audio: bytes = b""
    rate: int = 8000
    dtmf: list[tuple[float, str]] = field(default_factory=list)  # (seconds into call, digits)
    hangup_after: float | None = None  # seconds; default: end of audio + tail
    tail: float = 2.0
    call_uuid: str | None = None
    record: bool = True
    track: bool = False  # keep per-frame send and arrival times (`spoken_at`, `agent_audio_after`)

    def __post_init__(self) -> None:
        if self.rate not in RATE_AUDIO_KINDS:
            raise ValueError(
                f"rate {self.rate} has no AudioSocket kind; use one of {sorted(RATE_AUDIO_KINDS)}"
            )

    @property
    def duration(self) -> float:
        if self.hangup_after is not None:
            return self.hangup_after
        return len(self.audio) / (2 * self.rate) + self.tail


@dataclass
class CallerResult:
    call_id: str
    rate: int
    recording: bytearray = field(default_factory=bytearray)  # pcm16 at `rate`, time-aligned
    frames_sent: int = 0
    frames_received: int = 0
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each audio frame
    kinds_received: set[int] = field(default_factory=set)
    ended_by: str = ""  # "caller" | "agent-hangup" | "server-closed" | "error"
    error: str | None = None
    early_frames: int = 0  # arrived more than the tolerance ahead of real time (bursts)
    gaps: int = 0  # playout restarted after a pause in the agent's audio

    def interarrival_ms(self) -> list[float]:
        a = self.arrivals
        return [(a[i] - a[i - 1]) * 1000 for i in range(1, len(a))]


class VirtualCaller(asyncio.Protocol):
    def __init__(self, script: CallerScript, clock: MediaClock) -> None:
        self.script = script
        self.clock = clock
        self.result = CallerResult(script.call_uuid or str(uuid.uuid4()), script.rate)
        self.done: asyncio.Future[CallerResult] = asyncio.get_running_loop().create_future()
        fmt = AudioFormat(Encoding.PCM16, script.rate)
        self._fmt = fmt
        self._frame_bytes = fmt.frame_bytes(20)
        self._kind = RATE_AUDIO_KINDS[script.rate]
        self._silence = encode(self._kind, bytes(self._frame_bytes))
        self._pos = 0
        self._transport: asyncio.Transport | None = None
        self._reader = MessageReader()
        self._t0 = 0.0
        self._t0_mono = 0.0
        self._digits = sorted(
            (at + i * DIGIT_GAP_S, d) for at, digits in script.dtmf for i, d in enumerate(digits)
        )
        self._mute_until = 0.0
        self._converters: dict[int, AudioConverter] = {}
        self._held: dict[int, int] = {}  # samples (at our rate) a converter has not yet released
        self._cursor = 0  # playout position in samples
        self._tolerance = script.rate * _JUMP_TOLERANCE_MS // 1000  # in samples
        self.sent: list[tuple[int, float]] = []  # track: (first sample, time.monotonic() written)
        self.agent_audio: list[tuple[float, int]] = []  # track: (arrival, peak) of frames not all zero

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._t0 = asyncio.get_running_loop().time()  # ticks are on the loop's clock
        self._t0_mono = time.monotonic()  # arrivals use the finer clock (uvloop's is in ms)
        transport.write(encode_uuid(self.result.call_id))
        self.clock.add(self)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        for kind, payload in self._reader.feed(data):
            if kind == Kind.HANGUP:
                self._finish("agent-hangup")
                return
            rate = AUDIO_KIND_RATES.get(kind)
            if rate is None:
                self._finish(
                    "error",
                    f"server sent {kind_name(kind)}; Asterisk ends the call on anything but hangup or audio",
                )
                return
            if not payload or len(payload) & 1:
                self._finish(
                    "error",
                    f"server sent a {len(payload)}-byte audio payload; "
                    "Asterisk rejects empty or odd-length slin",
                )
                return
            self._on_audio(kind, rate, payload, now)

    def eof_received(self) -> bool | None:
        self._finish("server-closed")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish("server-closed" if exc is None else "error", str(exc) if exc else None)

    # --- receive -----------------------------------------------------------------------

    def _on_audio(self, kind: int, rate: int, payload: bytes, now: float) -> None:
        res = self.result
        res.frames_received += 1
        res.kinds_received.add(kind)
        res.arrivals.append(now)
        if self.script.track and payload.strip(b"\0"):
            peak = int(np.abs(np.frombuffer(payload, "<i2").astype(np.int32)).max())
            self.agent_audio.append((now, peak))
        if not self.script.record:
            return
        samples = len(payload) // 2 * self.script.rate // rate  # this frame's duration at our rate
        back = 0
        if rate != self.script.rate:
            conv = self._converters.get(rate)
            if conv is None:
                conv = self._converters[rate] = AudioConverter(AudioFormat(Encoding.PCM16, rate), self._fmt)
            payload = conv.convert(payload)
            # A streaming resampler holds some input back (its filter delay): put what it releases
            # where that audio belongs, behind the cursor by what it still held.
            back = self._held.get(rate, 0)
            self._held[rate] = back + samples - len(payload) // 2
        arrival = round((now - self._t0_mono) * self.script.rate)
        tolerance = self._tolerance
        if arrival > self._cursor + tolerance:
            res.gaps += 1
            self._cursor = arrival
        elif arrival + tolerance < self._cursor:
            res.early_frames += 1
        rec = res.recording
        start = max(0, self._cursor - back) * 2
        if len(rec) < start:
            rec.extend(bytes(start - len(rec)))
        rec[start : start + len(payload)] = payload
        self._cursor += samples

    # --- send (clock tick) -------------------------------------------------------------

    def on_tick(self, now: float) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        t = now - self._t0
        if t >= self.script.duration:
            self._finish("caller")
            return
        if self._digits and t >= self._digits[0][0]:
            _, digit = self._digits.pop(0)
            transport.write(encode(Kind.DTMF, digit.encode()))
            self._mute_until = t + DIGIT_GAP_S
            return
        if t < self._mute_until:
            return
        audio = self.script.audio
        n = self._frame_bytes
        if self._pos < len(audio):
            chunk = audio[self._pos : self._pos + n]
            if self.script.track:
                self.sent.append((self._pos // 2, time.monotonic()))
            self._pos += n
            transport.write(audio_header(self._kind, len(chunk)) + chunk)
        else:
            transport.write(self._silence)
        self.result.frames_sent += 1

    # --- timing (with `CallerScript.track`) ---------------------------------------------------

    def append_audio(self, pcm: bytes) -> int:
        """Queue more speech (pcm16 at the call rate, padded to whole frames) after what is
        queued; returns the sample it starts at in the caller's audio."""
        audio = self.script.audio
        audio += bytes(-len(audio) % self._frame_bytes)  # what is queued ends on a frame boundary
        pcm += bytes(-len(pcm) % self._frame_bytes)
        start = len(audio) // 2
        self.script.audio = audio + pcm
        return start

    def spoken_at(self, sample: int) -> float:
        """`time.monotonic()` at which `sample` of the caller's audio was spoken: the frame holding
        it was written at T, and a phone sends a frame once it is captured, so the sample was
        spoken at T minus the samples after it in the frame."""
        i = bisect.bisect_right(self.sent, (sample, math.inf)) - 1
        per_frame = self._frame_bytes // 2
        if i < 0 or not self.sent[i][0] <= sample < self.sent[i][0] + per_frame:
            raise ValueError(f"sample {sample} has not been sent (track=True is needed)")
        first, written = self.sent[i]
        return written - (first + per_frame - 1 - sample) / self.script.rate

    def agent_audio_after(self, t: float, level: int = 1) -> float | None:
        """Arrival time of the first frame of agent audio (peak ≥ `level`) at or after `t`."""
        return next((at for at, peak in self.agent_audio if at >= t and peak >= level), None)

    def _finish(self, ended_by: str, error: str | None = None) -> None:
        if self.done.done():
            return
        self.clock.discard(self)
        self.result.ended_by = ended_by
        self.result.error = error
        if self._transport is not None:
            self._transport.close()
        self.done.set_result(self.result)

    def hangup(self) -> None:
        self._finish("caller")


async def place_call(
    host: str, port: int, script: CallerScript, clock: MediaClock | None = None
) -> CallerResult:
    """Dial an AudioSocket server as Asterisk would and run the script to the end."""
    loop = asyncio.get_running_loop()
    clock = clock or MediaClock()
    _, caller = await loop.create_connection(lambda: VirtualCaller(script, clock), host, port)
    return await caller.done
