"""AudioSocket server: one `AudioSocketCall` per TCP connection from Asterisk.

Bad input from one connection (wrong first message, unknown kind, absurd length, a payload
that stalls, a flood) ends that connection with one log line naming the cause and the call;
every other call goes on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.audio.pacer import MediaClock, OutboundPacer
from voxgate.config import AudioSocketConfig
from voxgate.log import call_logger
from voxgate.transports.audiosocket.protocol import (
    AUDIO_KIND_RATES,
    DTMF_DIGITS,
    HANGUP_MESSAGE,
    RATE_AUDIO_KINDS,
    Kind,
    MessageReader,
    ProtocolError,
    audio_header,
    decode_uuid,
    describe_error,
    kind_name,
)
from voxgate.transports.base import CallLeg, Dtmf, run_agent_on

log = logging.getLogger("voxgate.audiosocket")

CallHandler = Callable[["AudioSocketCall"], Awaitable[None]]
_CODECS = {"slin": Encoding.PCM16, "ulaw": Encoding.ULAW, "alaw": Encoding.ALAW}
_AGENT_GRACE_S = 5.0
_CODEC_SNIFF_FRAMES = 25  # half a second of 20 ms frames


@dataclass
class ServerStats:
    """Totals for metrics; per-call counters are folded in when a call ends."""

    calls_total: int = 0
    calls_refused: int = 0
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    ended: dict[str, int] = field(default_factory=dict)  # end cause → count
    durations: list[float] = field(default_factory=list)  # drained by the metrics collector


OUTCOMES_KEPT = 10_000


class CallOutcomes:
    """How recent calls ended, by call UUID, for the dialplan to ask after `AudioSocket()`
    returns (`GET /calls/{uuid}/outcome` through `CURL()`): "hangup" (the agent said goodbye),
    "transfer:TARGET", or "caller-hangup". AudioSocket cannot say which: Asterisk continues the
    dialplan whether voxgate hangs up, transfers or is full. Bounded: the oldest go first."""

    def __init__(self, keep: int = OUTCOMES_KEPT) -> None:
        self.keep = keep
        self._outcomes: dict[str, str] = {}

    def set(self, call_id: str, outcome: str) -> None:
        self._outcomes.pop(call_id, None)
        self._outcomes[call_id] = outcome
        while len(self._outcomes) > self.keep:
            del self._outcomes[next(iter(self._outcomes))]

    def get(self, call_id: str) -> str | None:
        return self._outcomes.get(call_id)


class AudioSocketCall(CallLeg, asyncio.Protocol):
    """One Asterisk AudioSocket session. Implements `CallAudio`.

    AudioSocket alone cannot redirect a channel: `transfer()` records the target for the
    dialplan (see `CallOutcomes`) and ends the AudioSocket leg; the dialplan continues and goes
    there."""

    def __init__(self, server: AudioSocketServer) -> None:
        super().__init__()
        self._server = server
        self._opts = server.options
        self._loop = server.loop
        self._transport: asyncio.Transport | None = None
        self._reader = MessageReader(self._check_header)
        self._codec = _CODECS[self._opts.codec]
        self._audio_limits = server.audio_limits
        self._stall_s = self._opts.stall_timeout_ms / 1000
        self._write_stall_s = self._opts.write_stall_ms / 1000
        self._in_format = AudioFormat(self._codec, 8000)
        self._out_kind = int(Kind.AUDIO)
        self.output = OutboundPacer(AudioFormat(Encoding.PCM16, 8000), self._wrap_audio)
        self.output.send_now = self._send_now
        self.call_id = "-"
        self.peer = "?"
        self.started_at = 0.0  # loop time at connect
        self.answered_at: float | None = None  # loop time of the UUID
        self.frames_in = 0
        self.frames_dropped = 0
        self.dtmf_in = 0
        self._audio_ms_in = 0.0
        self._sniff_ok = False  # seen an inbound frame that is not 160 bytes of "slin"
        self._messages_in = 0
        self._pending_since: float | None = None
        self._paused_since: float | None = None
        self._uuid_timer: asyncio.TimerHandle | None = None
        self._agent_task: asyncio.Task[None] | None = None
        self._log: logging.LoggerAdapter[logging.Logger] = call_logger(log.name, "-")

    # --- CallAudio ---------------------------------------------------------------------

    def _hang_up(self, reason: str) -> None:
        """Send the AudioSocket hangup (Asterisk continues the dialplan) and close."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(HANGUP_MESSAGE)
            self._end(reason)

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)
        self.started_at = self._loop.time()
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=64 * 1024)
        if not self._server._admit(self):
            transport.write(HANGUP_MESSAGE)
            transport.close()
            return
        self._uuid_timer = self._loop.call_later(self._opts.uuid_timeout_ms / 1000, self._uuid_timeout)

    def data_received(self, data: bytes) -> None:
        if self.end_cause is not None:
            return
        try:
            messages = self._reader.feed(data)
            now = self._loop.time()
            for kind, payload in messages:
                self._handle(kind, payload, now)
                if self.end_cause is not None:
                    return
            if messages:
                self._messages_in += len(messages)
                self._check_flood(now)
            if self._reader.error is not None:
                raise self._reader.error
            if not self._reader.pending:
                self._pending_since = None
            elif messages or self._pending_since is None:
                # The incomplete bytes start a new message: its wait starts now.
                self._pending_since = now
        except ProtocolError as exc:
            self._fail(str(exc), exc.code)

    def eof_received(self) -> bool | None:
        self._end("caller hung up")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        # Asterisk hangs up by closing the socket; with our audio still unread on its side the
        # close arrives as a reset. Both are the caller leaving.
        if exc is None or isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            self._end("caller hung up")
        else:
            self._end(f"connection lost: {exc}")

    def pause_writing(self) -> None:
        self._paused_since = self._loop.time()

    def resume_writing(self) -> None:
        self._paused_since = None

    # --- inbound -----------------------------------------------------------------------

    def _check_header(self, kind: int, length: int) -> None:
        limit = self._audio_limits.get(kind)
        if limit is not None:
            max_bytes, width = limit
            if length == 0:
                raise ProtocolError("zero-length audio message", "empty_audio")
            if length > max_bytes:
                rate = AUDIO_KIND_RATES[kind]
                raise ProtocolError(
                    f"audio payload of {length} bytes ({length * 1000 // (rate * width)} ms at "
                    f"{rate} Hz) exceeds the {self._opts.max_frame_ms} ms limit",
                    "oversize",
                )
            if width == 2 and length & 1:
                raise ProtocolError(f"odd-length slin payload of {length} bytes", "odd_length")
        elif kind == Kind.UUID:
            if length != 16:
                raise ProtocolError(f"UUID message of {length} bytes, expected 16", "bad_uuid")
        elif kind == Kind.DTMF:
            if length != 1:
                raise ProtocolError(f"DTMF message of {length} bytes, expected 1", "bad_dtmf")
        elif kind not in (Kind.HANGUP, Kind.ERROR):
            raise ProtocolError(f"unknown message kind 0x{kind:02x} (length {length})", "unknown_kind")

    def _handle(self, kind: int, payload: bytes, now: float) -> None:
        if self.answered_at is None and kind != Kind.UUID:
            raise ProtocolError(f"first message was {kind_name(kind)}, expected UUID (0x01)", "no_uuid")
        rate = AUDIO_KIND_RATES.get(kind)
        if rate is not None:
            if rate != self._in_format.sample_rate:
                self._switch_rate(kind, rate)
            self.frames_in += 1
            fmt = self._in_format
            self._audio_ms_in += len(payload) / fmt.bytes_per_ms
            if self.frames_in <= _CODEC_SNIFF_FRAMES:
                self._sniff_codec(kind, len(payload))
            self._inbound.put(AudioFrame(payload, fmt))
        elif kind == Kind.DTMF:
            digit = payload[0]
            if digit not in DTMF_DIGITS:
                raise ProtocolError(f"DTMF payload 0x{digit:02x} is not one of 0-9 * # A-D", "bad_dtmf")
            self.dtmf_in += 1
            self._inbound.put(Dtmf(chr(digit)))
        elif kind == Kind.UUID:
            if self.answered_at is not None:
                raise ProtocolError("a second UUID message on the same connection", "bad_uuid")
            self._start_call(decode_uuid(payload), now)
        elif kind == Kind.HANGUP:
            self._end("peer sent hangup")
        elif kind == Kind.ERROR:
            self._log.warning("Asterisk sent ERROR: %s; ending call", describe_error(payload))
            self._end("peer error")

    def _sniff_codec(self, kind: int, length: int) -> None:
        """Warn once when 'slin' 0x10 frames look like G.711 (a channel driver without c())."""
        if kind != Kind.AUDIO or self._codec is not Encoding.PCM16 or length != 160:
            self._sniff_ok = True
        if self.frames_in == _CODEC_SNIFF_FRAMES and not self._sniff_ok:
            self._log.warning(
                "the first %d audio frames were all 160 bytes: that is 20 ms of G.711, not slin. "
                "Dial(AudioSocket/...) without c() forwards the caller's codec; add c(slin) to the "
                "dial string, or set audiosocket.codec to ulaw/alaw",
                _CODEC_SNIFF_FRAMES,
            )

    def _switch_rate(self, kind: int, rate: int) -> None:
        encoding = self._codec if kind == Kind.AUDIO else Encoding.PCM16
        first = self.frames_in == 0
        self._in_format = AudioFormat(encoding, rate)
        self._out_kind = RATE_AUDIO_KINDS[rate]
        dropped = self.output.set_wire_format(AudioFormat(Encoding.PCM16, rate), self._wrap_audio)
        log_fn = self._log.info if first else self._log.warning
        log_fn("inbound audio is %s (kind 0x%02x); replying in kind", self._in_format, kind)
        if dropped:
            self._log.warning("dropped %.0f ms queued before the rate change", dropped)

    def _check_flood(self, now: float) -> None:
        elapsed = now - (self.answered_at or now)
        if self._audio_ms_in > elapsed * 1000 + self._opts.flood_burst_ms:
            raise ProtocolError(
                f"flood: {self._audio_ms_in:.0f} ms of audio in {elapsed * 1000:.0f} ms of call",
                "flood",
            )
        limit = self._opts.max_messages_per_second
        if self._messages_in > elapsed * limit + limit * self._opts.flood_burst_ms / 1000:
            raise ProtocolError(
                f"flood: {self._messages_in} messages in {elapsed * 1000:.0f} ms of call", "flood"
            )

    # --- call lifecycle ----------------------------------------------------------------

    def _start_call(self, call_id: str, now: float) -> None:
        if self._uuid_timer is not None:
            self._uuid_timer.cancel()
            self._uuid_timer = None
        self.call_id = call_id
        self.answered_at = now
        self._log = call_logger(log.name, call_id)
        self._log.info("call started from %s", self.peer)
        self._server.clock.add(self)
        self._agent_task = self._loop.create_task(self._run_agent(), name=f"call-{call_id}")

    async def _run_agent(self) -> None:
        await run_agent_on(self, self._server.handler, self._log)

    def _wrap_audio(self, payload: bytes) -> bytes:
        return audio_header(self._out_kind, len(payload)) + payload

    def on_tick(self, now: float) -> None:
        """Clock tick: watchdogs, then exactly one outbound frame."""
        transport = self._transport
        if transport is None or self.end_cause is not None:
            return
        if self._pending_since is not None and now - self._pending_since > self._stall_s:
            self._fail(
                f"stalled: {self._reader.pending} bytes of an incomplete message waited "
                f"{(now - self._pending_since) * 1000:.0f} ms",
                "stalled",
            )
            return
        message = self.output.next_message()
        if not message:  # this period's frame already went out (a talkspurt's early start)
            return
        if self._paused_since is None:
            transport.write(message)
        else:
            self.frames_dropped += 1
            if now - self._paused_since > self._write_stall_s:
                self._fail(
                    f"peer stopped reading for {(now - self._paused_since) * 1000:.0f} ms",
                    "write_stalled",
                )

    def _send_now(self, message: bytes) -> None:
        """A talkspurt's first frame, written as soon as it is ready (between ticks)."""
        transport = self._transport
        if transport is None or self.end_cause is not None or self._paused_since is not None:
            self.frames_dropped += 1
            return
        transport.write(message)

    def _uuid_timeout(self) -> None:
        self._uuid_timer = None
        self._fail(f"no UUID within {self._opts.uuid_timeout_ms} ms of connecting", "no_uuid")

    def _fail(self, cause: str, code: str) -> None:
        if self.end_cause is not None:
            return
        self._log.warning("closing AudioSocket connection from %s: %s", self.peer, cause)
        self._end(f"error:{code}")

    def _end(self, cause: str) -> None:
        if self.end_cause is not None:
            return
        self.end_cause = cause
        if self._uuid_timer is not None:
            self._uuid_timer.cancel()
            self._uuid_timer = None
        if self._transport is not None:
            self._transport.close()
        self._inbound.close()
        self._server._release(self)
        if self.answered_at is not None:
            self._log.info(
                "call ended (%s) after %.1f s; frames in %d, out %d",
                cause,
                self._loop.time() - self.answered_at,
                self.frames_in,
                self.output.frames_sent,
            )
        task = self._agent_task
        if task is not None and not task.done() and task is not asyncio.current_task(self._loop):
            self._loop.call_later(_AGENT_GRACE_S, task.cancel)
        self._ended.set()


class AudioSocketServer:
    """Listens for Asterisk, admits up to `max_calls`, runs `handler(call)` for each call."""

    def __init__(
        self, options: AudioSocketConfig, handler: CallHandler, clock: MediaClock | None = None
    ) -> None:
        self.options = options
        self.handler = handler
        self.clock = clock or MediaClock()
        self.stats = ServerStats()
        self.outcomes = CallOutcomes()
        # Per audio kind: (largest payload accepted, bytes per sample); read on every header.
        codec_width = _CODECS[options.codec].sample_width
        self.audio_limits: dict[int, tuple[int, int]] = {
            kind: (rate * width * options.max_frame_ms // 1000, width)
            for kind, rate in AUDIO_KIND_RATES.items()
            for width in [codec_width if kind == Kind.AUDIO else 2]
        }
        self.calls: dict[AudioSocketCall, None] = {}
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._server: asyncio.Server | None = None
        self.accepting = False
        self.started = time.time()

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    @property
    def sockets(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    async def start(self, host: str, port: int) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            lambda: AudioSocketCall(self), host, port, reuse_address=True, backlog=1024
        )
        self.accepting = True
        log.info("AudioSocket listening on %s", ", ".join(f"{h}:{p}" for h, p in self.sockets))

    async def stop(self, grace: float = 2.0) -> None:
        self.accepting = False
        if self._server is not None:
            self._server.close()
        hangups = [asyncio.wait_for(c.hangup("server shutting down"), grace) for c in list(self.calls)]
        for outcome in await asyncio.gather(*hangups, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.warning("a call did not hang up cleanly on shutdown: %r", outcome)
        if self._server is not None:
            await self._server.wait_closed()

    def _admit(self, call: AudioSocketCall) -> bool:
        if not self.accepting or len(self.calls) >= self.options.max_calls:
            self.stats.calls_refused += 1
            reason = "shutting down" if not self.accepting else f"at capacity ({len(self.calls)} calls)"
            log.warning("refusing AudioSocket connection from %s: %s; sent hangup", call.peer, reason)
            return False
        self.calls[call] = None
        self.stats.calls_total += 1
        return True

    def _release(self, call: AudioSocketCall) -> None:
        if call in self.calls:
            del self.calls[call]
            self.clock.discard(call)
            st = self.stats
            st.frames_in += call.frames_in
            st.frames_out += call.output.frames_sent
            st.frames_dropped += call.frames_dropped
            key = call.end_reason
            st.ended[key] = st.ended.get(key, 0) + 1
            if call.call_id != "-":
                self.outcomes.set(call.call_id, call.outcome or "caller-hangup")
            if call.answered_at is not None:
                st.durations.append(self.loop.time() - call.answered_at)
