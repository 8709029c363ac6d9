"""OutboundPacer (framing, padding, clearing, conversion) and MediaClock (real event-loop timing)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxgate.audio import ALAW8, SLIN8, SLIN16, ULAW8, AudioFrame
from voxgate.audio.pacer import MediaClock, OutboundPacer

FRAME = SLIN8.frame_bytes(20)  # 320 bytes of pcm16 @ 8 kHz


class Wrap:
    """A transport framing that records every payload it wraps."""

    def __init__(self, tag: bytes = b"H") -> None:
        self.tag = tag
        self.calls: list[bytes] = []

    def __call__(self, payload: bytes) -> bytes:
        self.calls.append(bytes(payload))
        return self.tag + bytes(payload)


def ramp(nbytes: int, start: int = 1) -> bytes:
    """Distinct, non-silent bytes so every frame can be told apart."""
    return bytes((start + i) % 251 + 1 for i in range(nbytes))


def pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


# --- OutboundPacer -----------------------------------------------------------------------------


def test_three_and_a_half_frames_then_silence() -> None:
    wrap = Wrap()
    pacer = OutboundPacer(SLIN8, wrap)
    audio = ramp(3 * FRAME + FRAME // 2)
    pacer.write(AudioFrame(audio, SLIN8))
    assert pacer.queued_ms == pytest.approx(70)

    messages = [pacer.next_message() for _ in range(6)]
    assert messages[0] == b"H" + audio[:FRAME]
    assert messages[1] == b"H" + audio[FRAME : 2 * FRAME]
    assert messages[2] == b"H" + audio[2 * FRAME : 3 * FRAME]
    assert messages[3] == b"H" + audio[3 * FRAME :] + bytes(FRAME // 2)  # padded with pcm16 silence
    assert messages[4] == messages[5] == b"H" + bytes(FRAME)
    assert all(len(m) == 1 + FRAME for m in messages)
    assert pacer.queued_ms == 0
    assert (pacer.frames_sent, pacer.audio_frames_sent) == (6, 4)


def test_wrap_is_called_exactly_once_per_frame() -> None:
    wrap = Wrap()
    pacer = OutboundPacer(SLIN8, wrap)
    assert wrap.calls == [bytes(FRAME)]  # the silence frame, wrapped once up front
    audio = ramp(3 * FRAME + FRAME // 2)
    pacer.write(AudioFrame(audio, SLIN8))
    assert len(wrap.calls) == 1 + 3  # whole frames are wrapped when written ...
    for _ in range(10):
        pacer.next_message()
    # ... the part-frame when it is padded, and silence is never wrapped again.
    assert wrap.calls == [
        bytes(FRAME),
        audio[:FRAME],
        audio[FRAME : 2 * FRAME],
        audio[2 * FRAME : 3 * FRAME],
        audio[3 * FRAME :] + bytes(FRAME // 2),
    ]


def test_exactly_one_frame_written_is_one_message() -> None:
    wrap = Wrap()
    pacer = OutboundPacer(SLIN8, wrap)
    for k in range(3):
        pacer.write(AudioFrame(ramp(FRAME, start=k), SLIN8))
    assert [pacer.next_message() for _ in range(3)] == [b"H" + ramp(FRAME, start=k) for k in range(3)]
    assert len(wrap.calls) == 4


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=20))
def test_any_split_of_the_writes_gives_the_same_frames(sizes: list[int]) -> None:
    audio = ramp(2 * sum(sizes))
    wrap = Wrap()
    pacer = OutboundPacer(SLIN8, wrap)
    pos = 0
    for n in sizes:
        pacer.write(AudioFrame(audio[pos : pos + 2 * n], SLIN8))
        pos += 2 * n
    frames = -(-len(audio) // FRAME)
    messages = [pacer.next_message() for _ in range(frames + 1)]
    padded = audio + bytes(-len(audio) % FRAME)
    assert messages[:frames] == [b"H" + padded[i : i + FRAME] for i in range(0, len(padded), FRAME)]
    assert messages[frames] == b"H" + bytes(FRAME)
    assert len(wrap.calls) == 1 + frames
    assert pacer.played_ms == 20 * frames


def test_clear_drops_queued_audio_at_once() -> None:
    pacer = OutboundPacer(SLIN8, Wrap())
    audio = ramp(3 * FRAME + FRAME // 2)
    pacer.write(AudioFrame(audio, SLIN8))
    assert pacer.next_message() == b"H" + audio[:FRAME]
    assert pacer.clear() == pytest.approx(50)  # two whole frames and half a frame
    assert pacer.queued_ms == 0
    assert pacer.next_message() == b"H" + bytes(FRAME)
    assert pacer.clear() == 0
    # Later audio starts cleanly, with no leftover part-frame in front of it.
    pacer.write(AudioFrame(ramp(FRAME, start=7), SLIN8))
    assert pacer.next_message() == b"H" + ramp(FRAME, start=7)


def test_played_ms_counts_only_real_audio_frames() -> None:
    pacer = OutboundPacer(SLIN8, Wrap())
    assert pacer.played_ms == 0
    for _ in range(2):
        pacer.next_message()  # silence
    pacer.write(AudioFrame(ramp(3 * FRAME), SLIN8))
    for _ in range(5):
        pacer.next_message()
    assert pacer.played_ms == 60
    assert pacer.frames_sent == 7
    pacer.write(AudioFrame(ramp(4 * FRAME), SLIN8))
    pacer.next_message()
    pacer.clear()  # dropped audio was never played
    for _ in range(3):
        pacer.next_message()
    assert pacer.played_ms == 80


@pytest.mark.parametrize(
    ("fmt", "codes", "values"),
    [
        (ULAW8, bytes([0x00, 0x80, 0xFF, 0x7F]), [-32124, 32124, 0, 0]),
        (ALAW8, bytes([0xD5, 0x55, 0xAA, 0x2A]), [8, -8, 32256, -32256]),
    ],
)
def test_g711_written_to_a_pcm16_pacer_is_decoded(fmt, codes: bytes, values: list[int]) -> None:
    wrap = Wrap()
    pacer = OutboundPacer(SLIN8, wrap)
    pacer.write(AudioFrame(codes * 40, fmt))  # 160 samples = one 20 ms frame
    assert pacer.next_message() == b"H" + pcm(*(values * 40))
    assert pacer.played_ms == 20


def test_pcm16_written_to_a_ulaw_pacer_is_encoded() -> None:
    pacer = OutboundPacer(ULAW8, Wrap())
    assert pacer.frame_bytes == 160
    assert pacer.next_message() == b"H" + b"\xff" * 160  # μ-law silence
    pacer.write(AudioFrame(pcm(*([0, -1, 32767, -32768, 100] * 32)), SLIN8))
    assert pacer.next_message() == b"H" + bytes([0xFF, 0x7F, 0x80, 0x00, 0xF2]) * 32


def test_set_wire_format_switches_frame_size() -> None:
    old, new = Wrap(b"o"), Wrap(b"n")
    pacer = OutboundPacer(SLIN8, old)
    pacer.write(AudioFrame(ramp(FRAME + FRAME // 2), SLIN8))
    assert pacer.set_wire_format(SLIN16, new) == pytest.approx(30)
    assert pacer.wire_format == SLIN16
    assert pacer.frame_bytes == 640
    assert pacer.queued_ms == 0
    assert pacer.next_message() == b"n" + bytes(640)
    pacer.write(AudioFrame(ramp(640), SLIN16))
    assert pacer.next_message() == b"n" + ramp(640)
    assert len(old.calls) == 2  # nothing wrapped with the old framing after the switch


def test_resampled_audio_comes_out_in_full_and_on_time() -> None:
    pacer = OutboundPacer(SLIN16, Wrap())
    t = np.arange(8000) / 8000
    audio = np.round(8000 * np.sin(2 * np.pi * 400 * t)).astype("<i2").tobytes()
    for i in range(0, len(audio), FRAME):  # 1 s of 8 kHz audio in 20 ms chunks
        pacer.write(AudioFrame(audio[i : i + FRAME], SLIN8))
    assert 800 <= pacer.queued_ms <= 1000  # the resampler holds back its filter delay ...
    pacer.flush()
    assert pacer.queued_ms == pytest.approx(1000)  # ... which flush() (end of utterance) plays now
    out = b"".join(pacer.next_message()[1:] for _ in range(50))
    assert pacer.next_message() == b"H" + bytes(640)
    y = np.frombuffer(out, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spectrum) * 16000 / len(y) == pytest.approx(400, abs=2)
    # The pacer keeps working after a flush (the resampler was reset, not left finished).
    pacer.write(AudioFrame(audio[: 10 * FRAME], SLIN8))
    pacer.flush()
    assert pacer.queued_ms == pytest.approx(200)


# --- MediaClock --------------------------------------------------------------------------------

PERIOD = 0.020


class Recorder:
    """A tick client that records when it was ticked (its own clock reading and the clock's `now`)."""

    def __init__(self, block_on: int | None = None, block_s: float = 0.1) -> None:
        self.times: list[float] = []
        self.nows: list[float] = []
        self.block_on = block_on
        self.block_s = block_s

    def on_tick(self, now: float) -> None:
        self.times.append(time.monotonic())
        self.nows.append(now)
        if len(self.times) == self.block_on:
            time.sleep(self.block_s)  # hog the event loop inside a tick


def grid_slots(times: np.ndarray) -> np.ndarray:
    """Slot number of each tick, counting skipped slots from the gaps (not from a drifting sum)."""
    gaps = np.round(np.diff(times) / PERIOD).astype(int)
    return np.concatenate([[0], np.cumsum(gaps)])


def grid_lateness_ms(times: np.ndarray) -> np.ndarray:
    """How far (ms) each tick is behind one fixed 20 ms grid through all of them.

    Tick time minus the first tick, modulo 20 ms; ticks are late, not early, so the grid is put at
    the earliest of them (the first tick may itself have been late).
    """
    offset = ((times - times[0]) * 1000) % 20
    offset = np.where(offset > 10, offset - 20, offset)
    return offset - offset.min()


async def run_clock(clock: MediaClock, client: Recorder, seconds: float) -> np.ndarray:
    clock.add(client)
    try:
        await asyncio.sleep(seconds)
    finally:
        clock.discard(client)
    return np.array(client.times)


async def test_clock_ticks_every_20_ms_without_bursts() -> None:
    clock = MediaClock()
    client = Recorder()
    t = await run_clock(clock, client, 1.0)
    assert 45 <= len(t) <= 51
    intervals = np.diff(t) * 1000
    assert intervals.mean() == pytest.approx(20, abs=0.5)
    assert intervals.min() > 10  # never two frames back to back
    assert clock.stats.ticks == len(t)
    # The stats agree with what the client saw: every slot from first to last tick is a tick or a miss.
    assert clock.stats.missed_slots == round((t[-1] - t[0]) / PERIOD) - (len(t) - 1)
    # The clock hands clients the loop's monotonic time of the tick.
    assert np.max(np.abs(np.array(client.nows) - t)) < 0.002


async def test_clock_does_not_drift_from_its_grid() -> None:
    clock = MediaClock()
    t = await run_clock(clock, Recorder(), 1.0)
    # Slot of each tick: one per tick if the clock skipped none, else counted from the gaps.
    n = np.arange(len(t)) if clock.stats.missed_slots == 0 else grid_slots(t)
    lateness = (t - t[0] - n * PERIOD) * 1000  # ms behind the grid started by the first tick
    # A clock that schedules "20 ms after this tick" creeps later on every tick; this one must not.
    # Ticks are late, never early, so compare the least late of the first and of the last ten.
    assert abs(lateness[-10:].min() - lateness[:10].min()) < 1.5
    slope = np.polyfit(n, t, 1)[0]
    assert slope == pytest.approx(PERIOD, abs=0.0001)


async def test_a_blocked_loop_skips_slots_and_keeps_the_grid() -> None:
    clock = MediaClock()
    client = Recorder(block_on=10, block_s=0.1)
    t = await run_clock(clock, client, 0.7)
    intervals = np.diff(t) * 1000
    # The tick after the blocked one comes once the loop is free, on the next grid slot ...
    assert intervals[9] >= 100
    assert intervals[9] == pytest.approx(120, abs=8)
    # ... and the missed slots are skipped, not sent back to back.
    assert intervals.min() > 10
    assert 3 <= clock.stats.missed_slots <= 6  # 100 ms blocked: 5 slots
    assert clock.stats.missed_slots == round((t[-1] - t[0]) / PERIOD) - (len(t) - 1)
    # Every tick after the block is still on the original 20 ms grid.
    lateness = grid_lateness_ms(t)
    assert np.median(lateness[10:]) < 3
    assert np.max(lateness[10:]) < 9


async def test_several_clients_each_tick_every_period_and_discard_stops_them() -> None:
    clock = MediaClock()
    clients = [Recorder() for _ in range(5)]
    for c in clients:
        clock.add(c)
    clock.add(clients[0])  # adding twice does not tick it twice
    assert len(clock) == 5
    await asyncio.sleep(0.3)
    for c in clients:
        clock.discard(c)
    assert len(clock) == 0
    counts = [len(c.times) for c in clients]
    for c in clients:
        intervals = np.diff(c.times) * 1000
        assert intervals.min() > 10
        assert intervals.mean() == pytest.approx(20, abs=1)
    await asyncio.sleep(0.06)
    assert [len(c.times) for c in clients] == counts  # no ticks after discard


def test_a_talkspurt_starts_at_once_and_the_next_tick_sends_nothing() -> None:
    fmt = SLIN8
    sent: list[bytes] = []
    pacer = OutboundPacer(fmt, lambda payload: payload)
    pacer.send_now = sent.append
    assert pacer.next_message() == bytes(320)  # idle: filler
    audio = b"\x01\x02" * 160
    pacer.write(AudioFrame(audio, fmt))
    assert sent == [audio]  # went out at once, between ticks
    assert pacer.next_message() == b""  # that was this tick's frame
    pacer.write(AudioFrame(audio, fmt))
    assert len(sent) == 1  # mid-talkspurt: paced by the tick
    assert pacer.next_message() == audio


def test_a_talkspurt_that_starts_with_a_part_frame_is_led_with_silence_and_sent_now() -> None:
    fmt = SLIN8
    sent: list[bytes] = []
    pacer = OutboundPacer(fmt, lambda payload: payload)
    pacer.send_now = sent.append
    pacer.next_message()
    head = b"\x05\x00" * 152  # 19 ms
    pacer.write(AudioFrame(head, fmt))
    assert sent == [bytes(16) + head]  # 1 ms of silence first, then the audio, now
    rest = b"\x06\x00" * 40  # 5 ms: mid-talkspurt, it waits for the rest of its frame
    pacer.write(AudioFrame(rest, fmt))
    assert len(sent) == 1 and pacer.next_message() == b""
    assert pacer.next_message() == rest + bytes(240)  # the tick pads the trailing part-frame
