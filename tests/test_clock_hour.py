"""An hour of ticks on a simulated loop clock: the grid does not drift and never bursts."""

from __future__ import annotations

import heapq
import random

import pytest

from voxgate.audio.pacer import MediaClock


class _SimLoop:
    """Just enough of an event loop for MediaClock: time(), call_at(), run until a time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._timers: list[tuple[float, int, object, tuple[object, ...]]] = []
        self._seq = 0
        self.jitter = random.Random(42)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, cb, *args):  # type: ignore[no-untyped-def]
        self._seq += 1
        entry = (when, self._seq, cb, args)
        heapq.heappush(self._timers, entry)

        class _Handle:
            def cancel(inner) -> None:
                self._timers.remove(entry)
                heapq.heapify(self._timers)

        return _Handle()

    def run_until(self, t_end: float, stall_every: int = 0) -> None:
        n = 0
        while self._timers and self._timers[0][0] <= t_end:
            when, _, cb, args = heapq.heappop(self._timers)
            # A real loop fires a timer a little late: 0–3 ms, now and then much later.
            n += 1
            late = 0.045 if stall_every and n % stall_every == 0 else self.jitter.uniform(0, 0.003)
            self.now = max(self.now, when + late)
            cb(*args)  # type: ignore[operator]


class _Recorder:
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_tick(self, now: float) -> None:
        self.times.append(now)


@pytest.mark.parametrize("stall_every", [0, 5000])
def test_an_hour_of_ticks_stays_on_the_grid(monkeypatch: pytest.MonkeyPatch, stall_every: int) -> None:
    loop = _SimLoop()
    monkeypatch.setattr("asyncio.get_running_loop", lambda: loop)
    clock = MediaClock(phases=1)
    rec = _Recorder()
    clock.add(rec)
    t0 = loop.now
    loop.run_until(t0 + 3600.0, stall_every=stall_every)

    ticks = len(rec.times)
    missed = clock.stats.missed_slots
    # Every slot of the hour is either ticked or counted as missed: no drift in either direction.
    assert ticks + missed == pytest.approx(3600 / 0.02, abs=2)
    # Each tick is within its slot's lateness of the t0 + n·20 ms grid, after an hour too.
    offsets = [((t - t0) % 0.02) for t in rec.times[-1000:]]
    assert max(min(o, 0.02 - o) for o in offsets) < 0.0031
    # Never a burst: consecutive ticks are about one period apart (minus timer jitter); right
    # after a stall the next tick is back on the grid, so that one gap is shorter, never ~0.
    gaps = [b - a for a, b in zip(rec.times, rec.times[1:], strict=False)]
    assert min(gaps) > (0.01 if stall_every else 0.02 - 0.0031)
    if stall_every:
        # A 45 ms stall skips the two slots it ran over instead of sending them back to back.
        assert missed >= 2 * (ticks // stall_every) - 2
    else:
        assert missed == 0
