"""Outbound pacing by audio time.

One `MediaClock` per event loop ticks every 20 ms on a fixed grid (t0 + n·20 ms of the loop's
monotonic clock), so there is no drift however long a call lasts, and it never bursts: a late
tick skips the slots it missed instead of sending them back to back. Every call's
`OutboundPacer` hands the clock one frame per tick — audio if it has some, silence otherwise
(which also keeps Asterisk's 2 s idle timeout from firing).

A few shared timers for all calls cost far less than a timer per call, and every call's
frames keep a constant phase within the period.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFormat, AudioFrame

FRAME_MS = 20


class TickClient(Protocol):
    def on_tick(self, now: float) -> None: ...


class ClockStats:
    """Counters the clock keeps for metrics and benchmarks."""

    __slots__ = ("late_ticks", "lateness_ms", "missed_slots", "ticks")

    def __init__(self, keep_lateness: int = 0) -> None:
        self.ticks = 0
        self.late_ticks = 0  # fired more than LATE_MS after their deadline
        self.missed_slots = 0  # slots skipped because a tick came more than a frame late
        # Optional ring of recent lateness values (ms) for benchmarks.
        self.lateness_ms: deque[float] | None = deque(maxlen=keep_lateness) if keep_lateness else None


class _Phase:
    """One offset of the clock's grid and the streams that tick on it."""

    __slots__ = ("clients", "handle", "offset", "slot")

    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.clients: dict[TickClient, None] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.slot = 0


class MediaClock:
    """A 20 ms tick for every outbound stream on this event loop.

    Streams are spread over `phases` evenly spaced offsets within the period, so a server with
    hundreds of calls does not write all their frames in one burst: the work (and what the
    receiver sees) is smoothed. A stream always stays on its own phase, so its frames remain
    exactly one period apart.
    """

    LATE_MS = 5.0

    def __init__(self, frame_ms: int = FRAME_MS, keep_lateness: int = 0, phases: int = 4) -> None:
        self.period = frame_ms / 1000
        self.stats = ClockStats(keep_lateness)
        self._phases = [_Phase(self.period * k / phases) for k in range(max(1, phases))]
        self._where: dict[TickClient, _Phase] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0

    def add(self, client: TickClient) -> None:
        if client in self._where:
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._t0 = self._loop.time()
        phase = min(self._phases, key=lambda p: len(p.clients))
        phase.clients[client] = None
        self._where[client] = phase
        if phase.handle is None:
            self._schedule(phase, self._next_slot(phase))

    def discard(self, client: TickClient) -> None:
        phase = self._where.pop(client, None)
        if phase is None:
            return
        phase.clients.pop(client, None)
        if not phase.clients and phase.handle is not None:
            phase.handle.cancel()
            phase.handle = None

    def __len__(self) -> int:
        return len(self._where)

    def _next_slot(self, phase: _Phase) -> int:
        """The first slot of `phase` that is not yet in the past."""
        assert self._loop is not None
        elapsed = self._loop.time() - self._t0 - phase.offset
        return max(0, math.ceil(elapsed / self.period - 1e-9))

    def _schedule(self, phase: _Phase, slot: int) -> None:
        assert self._loop is not None
        phase.slot = slot
        deadline = self._t0 + phase.offset + slot * self.period
        phase.handle = self._loop.call_at(deadline, self._tick, phase)

    def _tick(self, phase: _Phase) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        late = now - (self._t0 + phase.offset + phase.slot * self.period)
        stats = self.stats
        stats.ticks += 1
        if late * 1000 > self.LATE_MS:
            stats.late_ticks += 1
        if stats.lateness_ms is not None:
            stats.lateness_ms.append(late * 1000)
        for client in list(phase.clients):
            client.on_tick(now)
        if not phase.clients:
            phase.handle = None
            return
        # Next slot on the fixed grid; skip (never burst) the slots already past.
        slot = max(phase.slot + 1, self._next_slot(phase))
        stats.missed_slots += slot - phase.slot - 1
        self._schedule(phase, slot)


class OutboundPacer:
    """The outbound queue of one call: whole frames in the wire format, ready to send.

    Audio written in any format is converted once, here, by a stateful converter, cut into
    frames and wrapped by `wrap` (the transport's framing) so a tick only pops and writes.
    `clear()` empties it at once (barge-in). `played_ms` says how much real audio has gone out.
    """

    __slots__ = (
        "_advanced",
        "_converters",
        "_idle",
        "_partial",
        "_queue",
        "_silence",
        "_watches",
        "_wrap",
        "audio_frames_sent",
        "frame_bytes",
        "frame_ms",
        "frames_sent",
        "paused",
        "send_now",
        "wire_format",
    )

    def __init__(
        self,
        wire_format: AudioFormat,
        wrap: Callable[[bytes], bytes],
        frame_ms: int = FRAME_MS,
    ) -> None:
        self.wire_format = wire_format
        self.frame_ms = frame_ms
        self.frame_bytes = wire_format.frame_bytes(frame_ms)
        self._wrap = wrap
        self._silence = wrap(wire_format.silence(self.frame_bytes))
        self._queue: deque[bytes] = deque()
        self._partial = bytearray()
        self._converters: dict[AudioFormat, AudioConverter] = {}
        self.frames_sent = 0
        self.audio_frames_sent = 0
        self.paused = False
        self._idle = True  # the last tick sent filler, so new audio starts a talkspurt
        self._advanced = False  # the frame of the next tick already went out early
        self._watches: list[tuple[int, asyncio.Future[float]]] = []
        self.send_now: Callable[[bytes], None] | None = None
        """Set by a transport that can write between ticks: a talkspurt's first frame then goes
        out as soon as it is written instead of waiting up to a frame for the next tick. That
        frame is the next tick's, sent early: the next tick sends nothing (`next_message()`
        returns b""), so the stream keeps exactly one frame per period and never runs ahead."""

    def set_wire_format(self, wire_format: AudioFormat, wrap: Callable[[bytes], bytes]) -> float:
        """Switch the wire format (the peer's rate became known); returns queued ms dropped."""
        dropped = self.clear()
        self.wire_format = wire_format
        self.frame_bytes = wire_format.frame_bytes(self.frame_ms)
        self._wrap = wrap
        self._silence = wrap(wire_format.silence(self.frame_bytes))
        self._converters.clear()
        return dropped

    # --- producer side -------------------------------------------------------------------

    def write(self, frame: AudioFrame) -> None:
        """Queue audio for playing; any format is accepted and converted to the wire format."""
        data = frame.data
        if frame.format != self.wire_format:
            conv = self._converters.get(frame.format)
            if conv is None:
                conv = self._converters[frame.format] = AudioConverter(frame.format, self.wire_format)
            data = conv.convert(data)
        self._push(data)

    def _push(self, data: bytes) -> None:
        n = self.frame_bytes
        partial = self._partial
        if not partial and len(data) == n:  # the common case: exactly one frame
            self._queue.append(self._wrap(data))
            if self._idle:
                self._start_talkspurt()
            return
        partial += data
        if len(partial) < n:
            if not (partial and self._idle and self.send_now is not None and not self._queue):
                return
            # A talkspurt that starts with less than a frame (a resampler holds back its filter
            # delay, a provider sends odd-sized chunks): lead it with silence and start it now,
            # rather than wait up to a frame for the rest.
            partial[:0] = self.wire_format.silence(n - len(partial))
        wrap, queue = self._wrap, self._queue
        whole = len(partial) - len(partial) % n
        for start in range(0, whole, n):
            queue.append(wrap(bytes(partial[start : start + n])))
        del partial[:whole]
        if self._idle:
            self._start_talkspurt()

    def _start_talkspurt(self) -> None:
        send = self.send_now
        if send is None or self.paused:
            return
        self._idle = False
        self._advanced = True
        self.frames_sent += 1
        send(self._pop())

    def flush(self) -> None:
        """End of an utterance: everything written so far plays now.

        Drains what the rate converters still hold (their filter delay, tens of ms) and pads a
        trailing part-frame with silence.
        """
        for conv in self._converters.values():
            tail = conv.convert(b"", last=True)
            conv.reset()  # a finished resampler stream takes no more input until cleared
            if tail:
                self._push(tail)
        self._pad()

    def _pad(self) -> None:
        """Pad a trailing part-frame with silence so it can go out on this tick."""
        if self._partial:
            missing = self.frame_bytes - len(self._partial)
            self._partial += self.wire_format.silence(missing)
            self._push(b"")

    def clear(self) -> float:
        """Drop everything not yet sent (barge-in); returns the milliseconds dropped.

        Pending `when_sent` waits resolve at once (with the current time): what they waited for
        will never play."""
        dropped = self.queued_ms
        self._queue.clear()
        self._partial.clear()
        for conv in self._converters.values():
            conv.reset()
        if self._watches:
            self._resolve_watches(all_=True)
        return dropped

    def pause(self) -> None:
        """Stop sending queued audio from the next tick on (filler instead), keeping the queue:
        the caller may have only coughed. `resume()` plays on from where it stopped; `clear()`
        drops it."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def when_sent(self, audio_frames: int) -> asyncio.Future[float]:
        """A future that resolves with `time.monotonic()` once `audio_frames` audio frames in total
        have been sent on this call (or at once if they have, or when the queue is cleared)."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if self.audio_frames_sent >= audio_frames:
            fut.set_result(time.monotonic())
        else:
            self._watches.append((audio_frames, fut))
        return fut

    def when_played_out(self) -> asyncio.Future[float]:
        """Resolves once everything queued now (including a part-frame) has been sent."""
        return self.when_sent(self.audio_frames_sent + self.queued_frames)

    def _resolve_watches(self, all_: bool = False) -> None:
        now = time.monotonic()
        keep: list[tuple[int, asyncio.Future[float]]] = []
        for target, fut in self._watches:
            if all_ or self.audio_frames_sent >= target:
                if not fut.done():
                    fut.set_result(now)
            else:
                keep.append((target, fut))
        self._watches = keep

    @property
    def queued_ms(self) -> float:
        return len(self._queue) * self.frame_ms + self.wire_format.duration_ms(len(self._partial))

    @property
    def queued_frames(self) -> int:
        """Frames waiting to be sent, a trailing part-frame included."""
        return len(self._queue) + (1 if self._partial else 0)

    @property
    def played_ms(self) -> int:
        """Milliseconds of real (non-filler) audio sent so far on this call."""
        return self.audio_frames_sent * self.frame_ms

    # --- clock side ----------------------------------------------------------------------

    def next_message(self) -> bytes:
        """The message for this tick: queued audio, a padded part-frame, or silence (also while
        paused)."""
        if self._advanced:  # this tick's frame went out early, at the talkspurt start
            self._advanced = False
            return b""
        self.frames_sent += 1
        if not self.paused and (self._queue or self._partial):
            self._idle = False
            return self._pop()
        self._idle = True
        return self._silence

    def _pop(self) -> bytes:
        if not self._queue:
            self._pad()
        self.audio_frames_sent += 1
        if self._watches:
            self._resolve_watches()
        return self._queue.popleft()
