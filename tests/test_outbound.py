"""OutboundQueue against a scripted fake `originate`: pacing, concurrency cap, retries, cancel,
close; plus the answering-machine helpers (AMD variables, voicemail transcripts)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest
from pydantic import ValidationError

from voxgate.telephony.outbound import (
    CallOutcome,
    CallStatus,
    OutboundQueue,
    OutboundQueueClosed,
    OutboundQueueFull,
    OutboundRequest,
    TokenBucket,
    amd_cause,
    amd_result,
    dial_endpoint,
    looks_like_voicemail,
    machine_action,
)

Script = Callable[[OutboundRequest, int], Awaitable[CallOutcome]]


class FakeDialer:
    """`originate` stand-in: records starts, counts calls live from dial to end, follows a script."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script
        self.starts: list[tuple[str, float]] = []
        self.attempts: dict[str, int] = {}
        self.active = 0
        self.max_active = 0
        self.cancelled: list[str] = []
        self.hangups: list[str] = []

    async def __call__(self, req: OutboundRequest) -> CallOutcome:
        self.starts.append((req.id, time.monotonic()))
        n = self.attempts[req.id] = self.attempts.get(req.id, 0) + 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            outcome = await self.script(req, n) if self.script else CallOutcome.answered()
        except asyncio.CancelledError:
            self.active -= 1
            self.cancelled.append(req.id)
            raise
        if outcome.wait_ended is None:
            self.active -= 1
            return outcome
        inner = outcome.wait_ended

        async def ended() -> None:
            try:
                await inner
            finally:
                self.active -= 1

        outcome.wait_ended = ended()
        return outcome

    def talk(self, seconds: float) -> CallOutcome:
        return CallOutcome.answered(asyncio.sleep(seconds))

    def held(self, req: OutboundRequest) -> CallOutcome:
        """Answered; lasts until hung up through `outcome.hangup`."""
        ended = asyncio.get_running_loop().create_future()

        async def hangup() -> None:
            self.hangups.append(req.id)
            if not ended.done():
                ended.set_result(None)

        return CallOutcome.answered(ended, hangup=hangup, channel_id=f"chan-{req.id}")


def req(id: str, **kw: object) -> OutboundRequest:
    return OutboundRequest(id=id, to=kw.pop("to", "PJSIP/1000"), agent="sales", **kw)  # type: ignore[arg-type]


def queue(dialer: FakeDialer, **kw: float) -> OutboundQueue:
    opts: dict = {"calls_per_second": 1000.0, "burst": 1000, "max_concurrent": 10, "max_queued": 100}
    opts.update(kw)
    return OutboundQueue(dialer, **opts)


async def until(cond: Callable[[], bool], limit_s: float = 1.0) -> None:
    """Poll a condition on the queue's state (the queue has no change events to wait on)."""
    async with asyncio.timeout(limit_s):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


# --- rate limit ---------------------------------------------------------------------------------


def test_token_bucket_with_injected_clock() -> None:
    now = [100.0]
    bucket = TokenBucket(5.0, burst=3, timer_slack_s=0.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.2)
    now[0] += 0.1
    assert bucket.take() == pytest.approx(0.1)
    now[0] += 0.1
    assert bucket.take() == 0.0
    now[0] += 10  # a long idle refills to `burst`, not beyond
    assert [bucket.take() for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert bucket.take() > 0


def test_token_bucket_timer_slack_keeps_the_grid() -> None:
    """Woken 1 ms late for each token, a 50 cps bucket still starts one call per 20 ms on average."""
    now = [0.0]
    bucket = TokenBucket(50.0, burst=1, timer_slack_s=0.002, clock=lambda: now[0])
    starts = []
    for _ in range(100):
        while (delay := bucket.take()) > 0:
            now[0] += delay + 0.001
        starts.append(now[0])
    assert starts[-1] == pytest.approx(99 * 0.02 + 0.001)  # no drift: only the last wake is late
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.02 - 0.002 - 1e-9
    now[0], starts = 0.0, []
    strict = TokenBucket(50.0, burst=1, timer_slack_s=0.0, clock=lambda: now[0])
    for _ in range(100):
        while (delay := strict.take()) > 0:
            now[0] += delay + 0.001
        starts.append(now[0])
    assert starts[-1] == pytest.approx(99 * 0.021)  # strict: each late wake pushes the grid


async def test_rate_limit_holds_in_real_time() -> None:
    dialer = FakeDialer()
    q = queue(dialer, calls_per_second=20.0, burst=2)
    calls = [q.submit(req(f"c{i}")) for i in range(6)]
    t0 = time.monotonic()
    assert {await c.wait() for c in calls} == {CallStatus.DONE}
    starts = [t - t0 for _, t in dialer.starts]
    ideal = [0.0, 0.0, 0.05, 0.10, 0.15, 0.20]  # burst of 2, then one every 1/20 s: (6 - 2) / 20 = 0.2 s
    # never early, but for the bucket's 2 ms timer slack
    assert all(s >= i - 0.0025 for s, i in zip(starts, ideal, strict=True))
    assert starts[-1] < 0.3
    assert [i for i, _ in dialer.starts] == [f"c{i}" for i in range(6)]  # FIFO
    assert q.stats.rate_limited_waits == 4
    await q.close()


# --- concurrency --------------------------------------------------------------------------------


async def test_concurrency_cap_never_exceeded() -> None:
    async def script(r: OutboundRequest, n: int) -> CallOutcome:
        await asyncio.sleep(0.001 * (int(r.id[1:]) % 3))
        return dialer.talk(0.01 + 0.005 * (int(r.id[1:]) % 4))

    dialer = FakeDialer(script)
    q = queue(dialer, max_concurrent=3)
    calls = [q.submit(req(f"c{i}")) for i in range(15)]
    await asyncio.gather(*(c.wait() for c in calls))
    assert dialer.max_active == 3
    assert all(c.status is CallStatus.DONE for c in calls)
    assert q.stats.in_flight == 0 and q.stats.started == 15 and q.stats.answered == 15
    await q.close()


async def test_slot_is_held_until_the_call_ends() -> None:
    dialer = FakeDialer(lambda r, n: _ready(dialer.held(r)))
    q = queue(dialer, max_concurrent=1)
    first, second = q.submit(req("a")), q.submit(req("b"))
    await until(lambda: first.status is CallStatus.ANSWERED)
    await asyncio.sleep(0.02)
    assert second.status is CallStatus.QUEUED and len(dialer.starts) == 1
    assert first.outcome is not None and first.outcome.hangup is not None
    await first.outcome.hangup()
    await until(lambda: second.status is CallStatus.ANSWERED)
    assert await first.wait() is CallStatus.DONE
    await q.close(cancel_in_flight=True)
    assert second.status is CallStatus.CANCELLED


async def _ready(outcome: CallOutcome) -> CallOutcome:
    return outcome


# --- bounded queue, endpoints -------------------------------------------------------------------


async def test_queue_full_is_a_clear_error() -> None:
    q = queue(FakeDialer(), max_queued=2)
    q.submit(req("a"))
    q.submit(req("b"))
    with pytest.raises(OutboundQueueFull, match=r"max_queued=2.*call c to PJSIP/1000 not placed"):
        q.submit(req("c"))
    assert q.stats.rejected_full == 1 and q.stats.queued == 2
    q2 = queue(FakeDialer())
    q2.submit(req("x"))
    with pytest.raises(ValueError, match="already queued"):
        q2.submit(req("x"))
    await q.close()
    await q2.close()


async def test_number_goes_through_the_endpoint_template() -> None:
    dialer = FakeDialer()
    q = queue(dialer, endpoint_template="PJSIP/{number}@trunk")
    call = q.submit(req("n", to="+1 (555) 123-4567", caller_id='"Clinic" <+15550000000>'))
    assert call.request.endpoint == "PJSIP/+15551234567@trunk"
    assert q.submit(req("e", to="PJSIP/1000")).request.endpoint == "PJSIP/1000"
    with pytest.raises(ValueError, match="neither an endpoint"):
        q.submit(req("bad", to="call mom"))
    await q.close()


def test_dial_endpoint_and_request_validation() -> None:
    assert dial_endpoint("1000", "PJSIP/{number}") == "PJSIP/1000"
    assert dial_endpoint("Local/100@agents", "PJSIP/{number}") == "Local/100@agents"
    with pytest.raises(ValueError, match="placeholder"):
        dial_endpoint("1000", "PJSIP/trunk")
    with pytest.raises(ValidationError, match="exactly one"):
        OutboundRequest(to="1000")
    with pytest.raises(ValidationError, match="exactly one"):
        OutboundRequest(to="1000", agent="a", handler=print)
    assert OutboundRequest(to="1000", handler=print).handler is print
    with pytest.raises(ValidationError):
        OutboundRequest(to="1000", agent="a", max_attempts=0)


# --- outcomes and retries -----------------------------------------------------------------------


async def test_retry_on_busy_then_answered() -> None:
    async def script(r: OutboundRequest, n: int) -> CallOutcome:
        return CallOutcome.busy() if n < 3 else dialer.talk(0.005)

    dialer = FakeDialer(script)
    q = queue(dialer)
    call = q.submit(req("r", max_attempts=3, retry_after_s=0.03))
    await until(lambda: call.attempts == 1 and call.status is CallStatus.BUSY)
    assert not call.finished  # busy but a retry is pending
    assert await call.wait() is CallStatus.DONE
    assert call.attempts == 3
    times = [t for _, t in dialer.starts]
    assert all(b - a >= 0.028 for a, b in itertools.pairwise(times))
    s = q.stats
    assert (s.busy, s.retries, s.answered, s.started) == (2, 2, 1, 3)
    await q.close()


async def test_no_answer_gives_up_after_max_attempts() -> None:
    dialer = FakeDialer(lambda r, n: _ready(CallOutcome.no_answer()))
    q = queue(dialer)
    call = q.submit(req("r", max_attempts=2, retry_after_s=0.0))
    assert await call.wait() is CallStatus.NO_ANSWER
    assert call.attempts == 2 and q.stats.no_answer == 2 and q.stats.retries == 1
    await q.close()


async def test_failures_are_not_retried_and_counted_by_cause() -> None:
    async def script(r: OutboundRequest, n: int) -> CallOutcome:
        if r.id == "boom":
            raise ConnectionError("ARI unreachable")
        if r.id == "hang":
            await asyncio.sleep(10)
        return CallOutcome.failed("congestion")

    q = queue(FakeDialer(script), dial_grace_s=0.0)
    calls = [
        q.submit(req("c1", max_attempts=3)),
        q.submit(req("c2")),
        q.submit(req("boom")),
        q.submit(req("hang", timeout_s=0.05)),
    ]
    assert [await c.wait() for c in calls] == [CallStatus.FAILED] * 4
    assert calls[0].attempts == 1 and calls[0].cause == "congestion"
    assert calls[3].cause == "originate_timeout"
    assert q.stats.failed_by_cause == {
        "congestion": 2,
        "originate_error: ConnectionError": 1,
        "originate_timeout": 1,
    }
    await q.close()


async def test_machine_outcome() -> None:
    dialer = FakeDialer(lambda r, n: _ready(CallOutcome.answered(asyncio.sleep(0.01), amd="machine")))
    q = queue(dialer)
    call = q.submit(req("m", voicemail_drop="Your appointment is tomorrow at 9."))
    await until(lambda: call.status is CallStatus.MACHINE)
    assert await call.wait() is CallStatus.DONE
    assert call.outcome is not None and call.outcome.kind == "machine"
    assert q.stats.machine == 1 and q.stats.answered == 0
    await q.close()


# --- cancel and close ---------------------------------------------------------------------------


def ringing_forever(dialer: FakeDialer) -> Script:
    async def script(r: OutboundRequest, n: int) -> CallOutcome:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    return script


async def test_cancel_queued_and_dialing() -> None:
    dialer = FakeDialer()
    dialer.script = ringing_forever(dialer)
    q = queue(dialer, max_concurrent=1)
    a, b, c = q.submit(req("a")), q.submit(req("b")), q.submit(req("c"))
    await until(lambda: a.status is CallStatus.DIALING)
    assert b.cancel() is True
    assert await b.wait() is CallStatus.CANCELLED and b.cause == "cancelled while queued"
    assert a.cancel() is True
    assert await a.wait() is CallStatus.CANCELLED and a.cause == "cancelled while dialing"
    assert dialer.cancelled == ["a"]  # originate saw the cancel and can hang up its channel
    assert a.cancel() is False  # already finished
    await until(lambda: c.status is CallStatus.DIALING)  # the slot came back; b was never dialled
    assert [i for i, _ in dialer.starts] == ["a", "c"]
    await q.close(cancel_in_flight=True)
    assert q.stats.cancelled == 3


async def test_cancel_answered_call_hangs_it_up() -> None:
    dialer = FakeDialer(lambda r, n: _ready(dialer.held(r)))
    q = queue(dialer)
    call = q.submit(req("a"))
    await until(lambda: call.status is CallStatus.ANSWERED)
    call.cancel()
    assert await call.wait() is CallStatus.CANCELLED
    assert dialer.hangups == ["a"] and call.cause == "cancelled while answered"
    await until(lambda: dialer.active == 0)
    await q.close()


async def test_cancel_while_waiting_to_retry() -> None:
    dialer = FakeDialer(lambda r, n: _ready(CallOutcome.busy()))
    q = queue(dialer)
    call = q.submit(req("r", max_attempts=5, retry_after_s=10))
    await until(lambda: call.status is CallStatus.BUSY)
    assert q.stats.queued == 1
    call.cancel()
    assert await call.wait() is CallStatus.CANCELLED
    assert call.attempts == 1 and q.stats.queued == 0
    await q.close()


async def test_cancel_before_the_dial_task_runs_releases_the_slot() -> None:
    dialer = FakeDialer()
    q = queue(dialer, max_concurrent=1)
    a = q.submit(req("a"))
    await asyncio.sleep(0)  # the dispatcher created a's task; it has not run yet
    assert a._task is not None and a.status is CallStatus.QUEUED
    a.cancel()
    assert await a.wait() is CallStatus.CANCELLED
    b = q.submit(req("b"))
    assert await b.wait() is CallStatus.DONE
    assert [i for i, _ in dialer.starts] == ["b"]
    await q.close()


async def test_close_waits_for_calls_in_progress_and_cancels_the_queue() -> None:
    dialer = FakeDialer(lambda r, n: _ready(dialer.talk(0.05)))
    q = queue(dialer, max_concurrent=2)
    calls = [q.submit(req(f"c{i}")) for i in range(4)]
    await until(lambda: calls[1].status is CallStatus.ANSWERED)
    await q.close()
    assert [c.status for c in calls] == [CallStatus.DONE] * 2 + [CallStatus.CANCELLED] * 2
    with pytest.raises(OutboundQueueClosed, match="closed"):
        q.submit(req("late"))


@pytest.mark.parametrize("how", [{"drain_s": 0.02}, {"cancel_in_flight": True}])
async def test_close_hangs_up_after_drain_or_at_once(how: dict) -> None:
    dialer = FakeDialer(lambda r, n: _ready(dialer.held(r)))
    q = queue(dialer)
    call = q.submit(req("a"))
    await until(lambda: call.status is CallStatus.ANSWERED)
    await q.close(**how)
    assert call.status is CallStatus.CANCELLED and call.cause == "cancelled while answered"
    assert dialer.hangups == ["a"] and dialer.active == 0


# --- answering machines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"AMDSTATUS": "HUMAN", "AMDCAUSE": "HUMAN-300-300"}, "human"),
        ({"AMDSTATUS": "MACHINE", "AMDCAUSE": "INITIALSILENCE-2500-2500"}, "machine"),
        ({"AMDSTATUS": "MACHINE", "AMDCAUSE": "MAXWORDS-4-3"}, "machine"),
        ({"AMDSTATUS": "NOTSURE", "AMDCAUSE": "TOOLONG-5000"}, "notsure"),
        ({"AMDSTATUS": " machine "}, "machine"),
        ({"AMDSTATUS": "HANGUP", "AMDCAUSE": ""}, None),
        ({"AMDSTATUS": ""}, None),  # AMD could not run
        ({"OTHER": "x"}, None),
        ({"AMDSTATUS": "FAX"}, None),
    ],
)
def test_amd_result(variables: dict[str, str], expected: str | None) -> None:
    assert amd_result(variables) == expected


def test_amd_cause() -> None:
    assert amd_cause({"AMDCAUSE": "INITIALSILENCE-2500-2500"}) == "INITIALSILENCE"
    assert amd_cause({"AMDCAUSE": "NOAUDIODATA-5000"}) == "NOAUDIODATA"
    assert amd_cause({"AMDCAUSE": ""}) is None and amd_cause({}) is None


@pytest.mark.parametrize(
    "text",
    [
        "Hi, you've reached Sam. Please leave a message after the beep.",
        "PLEASE LEAVE YOUR MESSAGE.",
        "At the tone, please record your message.",
        "The person you are calling is not available.",
        "The Google subscriber you have called is not available...",
        "Your call has been forwarded to an automated voice messaging system.",
        "The mailbox is full and cannot accept any messages at this time.",
        "You have reached the voicemail of John Smith.",
        "Hey it's Jen, I can't come to the phone right now, I'll call you back!",
        "Sorry I'm unavailable -- voicemail only.",
        "leave me a brief message and I'll get back to you",
    ],
)
def test_looks_like_voicemail_positive(text: str) -> None:
    assert looks_like_voicemail(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello?",
        "Yes, this is John speaking.",
        "Who is this?",
        "Sorry, she's not available right now, can I take a message?",
        "I got your voicemail yesterday, thanks for calling.",
        "Hi! Yes, I was expecting your call about the appointment.",
        "Hold on, let me get a pen.",
    ],
)
def test_looks_like_voicemail_negative(text: str) -> None:
    assert not looks_like_voicemail(text)


def test_machine_action() -> None:
    drop = req("d", voicemail_drop="Please call us back.")
    plain = req("p")
    assert machine_action(drop, amd="human") == "agent"
    assert machine_action(drop, amd="notsure") == "agent"
    assert machine_action(drop) == "agent"
    assert machine_action(drop, amd="machine") == "voicemail_drop"
    assert machine_action(plain, amd="machine") == "hangup"
    assert machine_action(drop, transcript="Leave a message after the tone") == "voicemail_drop"
    assert machine_action(plain, amd="notsure", transcript="Hello, who's this?") == "agent"
