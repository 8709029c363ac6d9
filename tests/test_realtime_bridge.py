"""The realtime bridge and agent on a SimulatedCall with a scripted session: audio both ways (and
converted only when the formats differ), barge-in clears our audio and reports what was heard,
tools, transcripts, and the fallback to the pipeline when a session cannot start or dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from voxgate.agent.config import default_agent_config
from voxgate.agent.realtime import RealtimeAgent, RealtimeBridge
from voxgate.agent.tools import Tool
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.audio.g711 import ulaw_encode
from voxgate.providers.base import ProviderError
from voxgate.providers.realtime import (
    AgentAudio,
    RealtimeConfig,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
)
from voxgate.testing.harness import SimulatedCall, tone

ULAW_8K = AudioFormat(Encoding.ULAW, 8000)
PCM_24K = AudioFormat(Encoding.PCM16, 24000)


class FakeSession:
    name = "fake-realtime"

    def __init__(self, fmt: AudioFormat, *, fail_start: bool = False) -> None:
        self.input_format = self.output_format = fmt
        self.fail_start = fail_start
        self.pushed_ms = 0.0
        self.formats: set[AudioFormat] = set()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.tool_results: list[tuple[str, str, str]] = []
        self.interruptions: list[float] = []
        self.closed = False
        self.config: RealtimeConfig | None = None

    async def start(self) -> None:
        if self.fail_start:
            raise ProviderError(self.name, "cannot connect", retryable=True)

    def push_audio(self, frame: AudioFrame) -> None:
        self.formats.add(frame.format)
        self.pushed_ms += frame.duration_ms

    async def send_tool_result(self, call_id: str, name: str, output: str) -> None:
        self.tool_results.append((call_id, name, output))

    async def interrupted(self, played_ms: float) -> None:
        self.interruptions.append(played_ms)

    def emit(self, *events: Any) -> None:
        for event in events:
            self.queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while (event := await self.queue.get()) is not None:
            yield event

    async def aclose(self) -> None:
        self.closed = True


class FakeProvider:
    name = "fake-realtime"

    def __init__(self, session: FakeSession) -> None:
        self._session = session

    def session(self, config: RealtimeConfig) -> FakeSession:
        self._session.config = config
        return self._session


class FakeFallback:
    """Stands in for the PipelineAgent: records how it was handed the call."""

    tools: ClassVar[list[Tool]] = []

    def __init__(self) -> None:
        self.calls: list[str | None] = []

    async def handle(self, call: Any, greeting: str | None = None) -> None:
        self.calls.append(greeting)
        await call.hangup("fallback done")


def speech(ms: float, fmt: AudioFormat = ULAW_8K) -> AgentAudio:
    pcm = tone(ms, rate=fmt.sample_rate)
    data = ulaw_encode(pcm) if fmt.encoding is Encoding.ULAW else pcm
    return AgentAudio(AudioFrame(data, fmt), item_id="item_1")


async def start_bridge(call: SimulatedCall, session: FakeSession, **kw: Any) -> asyncio.Task[str]:
    bridge = RealtimeBridge(call, session, hangup_delay_ms=0, **kw)
    task = asyncio.create_task(bridge.run())
    task.bridge = bridge  # type: ignore[attr-defined]
    await call.settle()
    return task


async def test_audio_both_ways_is_converted_only_when_formats_differ() -> None:
    call = SimulatedCall(rate=8000)
    session = FakeSession(PCM_24K)  # OpenAI's audio/pcm for a slin call: resampled both ways
    task = await start_bridge(call, session)
    await call.say(tone(400))
    assert session.formats == {PCM_24K} and 380 <= session.pushed_ms <= 400
    session.emit(speech(600, PCM_24K))
    await call.until(lambda: call.agent_audio_ms >= 580, within_ms=2000)
    call.end()
    assert await task == "ended"
    assert session.closed

    same = SimulatedCall(rate=8000)
    pcm8 = AudioFormat(Encoding.PCM16, 8000)
    session = FakeSession(pcm8)
    task = await start_bridge(same, session)
    await same.say(tone(200))
    assert session.formats == {pcm8} and session.pushed_ms == 200  # passed through untouched
    same.end()
    await task


async def test_barge_in_clears_our_audio_and_reports_what_was_heard() -> None:
    call = SimulatedCall()
    session = FakeSession(ULAW_8K)
    task = await start_bridge(call, session)
    session.emit(speech(3000))
    await call.until(lambda: call.agent_audio_ms >= 500, within_ms=2000)
    heard = call.agent_audio_ms
    session.emit(UserSpeechStarted())
    await call.silence(60)
    assert not call.agent_talking()  # the rest of the 3 s was dropped at once
    assert call.agent_audio_ms <= heard + 40
    assert len(session.interruptions) == 1
    assert abs(session.interruptions[0] - heard) <= 40
    # A new reply after the interruption starts a new item and plays.
    session.emit(AgentAudio(speech(300).frame, item_id="item_2"))
    await call.until(lambda: call.agent_audio_ms >= heard + 280, within_ms=2000)
    call.end()
    await task


async def test_tools_run_and_answer_and_end_call_waits_for_the_words() -> None:
    async def lookup(order: str) -> str:
        return f"order {order} shipped"

    tool = Tool.from_callable(lookup, description="Look an order up")
    call = SimulatedCall()
    session = FakeSession(ULAW_8K)
    task = await start_bridge(call, session, tools=[tool])
    session.emit(ToolCall("call_1", "lookup", {"order": "42"}))
    session.emit(ToolCall("call_2", "no_such_tool", {}))
    await call.until(lambda: len(session.tool_results) == 2, within_ms=1000)
    assert session.tool_results == [
        ("call_1", "lookup", "order 42 shipped"),
        ("call_2", "no_such_tool", "error: there is no tool named 'no_such_tool'"),
    ]
    session.emit(Transcript("user", "thanks, bye"), speech(400), ToolCall("call_3", "end_call", {}))
    await call.until(lambda: call.hung_up is not None, within_ms=3000)
    assert call.agent_audio_ms >= 400  # the goodbye played before the hangup
    assert await task == "ended"
    record = task.bridge.record  # type: ignore[attr-defined]
    assert [(e.role, e.text) for e in record.entries if e.role == "caller"] == [("caller", "thanks, bye")]


async def test_transfer_tool_transfers_the_call() -> None:
    call = SimulatedCall()
    session = FakeSession(ULAW_8K)
    task = await start_bridge(call, session, transfer_targets=["sales"])
    session.emit(ToolCall("c1", "transfer_call", {"target": "support"}))  # not allowed
    await call.until(lambda: len(session.tool_results) == 1, within_ms=1000)
    assert session.tool_results[0][2].startswith("error:")
    session.emit(ToolCall("c2", "transfer_call", {"target": "sales"}))
    await call.until(lambda: call.hung_up is not None, within_ms=2000)
    assert call.hung_up == "transfer to sales"  # no transfer(): the leg ends, the dialplan goes on
    assert await task == "ended"


def realtime_config() -> Any:
    config = default_agent_config()
    call = config.call.model_copy(update={"hangup_delay_ms": 0})
    return config.model_copy(update={"mode": "realtime", "greeting": "Hi there.", "call": call})


async def test_session_that_cannot_start_hands_the_call_to_the_pipeline() -> None:
    fallback = FakeFallback()
    agent = RealtimeAgent(realtime_config(), [FakeProvider(FakeSession(ULAW_8K, fail_start=True))], fallback)
    call = SimulatedCall()
    await asyncio.wait_for(agent.handle(call), 2)
    assert fallback.calls == [None]  # its own greeting: the caller has heard nothing yet
    assert call.hung_up == "fallback done"


async def test_session_that_dies_mid_call_apologises_through_the_pipeline() -> None:
    fallback = FakeFallback()
    session = FakeSession(ULAW_8K)
    config = realtime_config()
    agent = RealtimeAgent(config, [FakeProvider(session)], fallback)
    call = SimulatedCall()
    task = asyncio.create_task(agent.handle(call))
    await call.settle()
    assert session.config is not None and session.config.greeting == "Hi there."
    assert session.config.telephony_format == call.inbound_format
    assert {t.name for t in session.config.tools} >= {"end_call", "transfer_call", "send_dtmf"}
    session.emit(speech(2000))
    await call.until(lambda: call.agent_audio_ms >= 200, within_ms=1000)
    session.emit(SessionError("socket closed mid-response", fatal=True))
    await call.until(task.done, within_ms=2000)
    assert fallback.calls == [config.realtime_apology]
    assert call.output.queued_ms == 0  # the dead session's audio was dropped


async def test_non_fatal_error_keeps_the_session() -> None:
    call = SimulatedCall()
    session = FakeSession(ULAW_8K)
    task = await start_bridge(call, session)
    session.emit(SessionError("bad event", fatal=False), speech(200))
    await call.until(lambda: call.agent_audio_ms >= 200, within_ms=1000)
    assert not task.done()
    call.end()
    assert await task == "ended"


@pytest.mark.parametrize("bad", ["", "nothing"])
def test_realtime_mode_config_errors_name_the_fix(bad: str) -> None:
    from pydantic import ValidationError

    from voxgate.agent.config import AgentConfig

    with pytest.raises(ValidationError, match="needs a speech-to-speech provider"):
        AgentConfig.model_validate({"mode": "realtime", "flow": None, "llm": "x"})
    with pytest.raises(ValidationError, match="takes its fallback from the pipeline"):
        AgentConfig.model_validate({"mode": "realtime", "realtime": "openai-realtime"})


async def test_keys_reach_the_model_as_one_text_entry() -> None:
    call = SimulatedCall()
    session = FakeSession(ULAW_8K)
    texts: list[str] = []

    async def send_user_text(text: str) -> None:
        texts.append(text)

    session.send_user_text = send_user_text  # type: ignore[attr-defined]
    task = await start_bridge(call, session)
    await call.press("1234#")
    await call.until(lambda: bool(texts), within_ms=500)
    assert texts == ["(The caller typed 1234# on the phone keypad.)"]
    record = task.bridge.record  # type: ignore[attr-defined]
    assert [(e.text, e.meta) for e in record.entries if e.role == "caller"] == [("1234#", {"dtmf": True})]
    call.end()
    await task


async def test_speech_after_the_reply_was_heard_is_a_new_turn_not_a_barge_in() -> None:
    call = SimulatedCall()
    session = FakeSession(ULAW_8K)
    task = await start_bridge(call, session)
    session.emit(speech(300))
    await call.until(lambda: call.agent_audio_ms >= 300, within_ms=1000)
    await call.silence(100)  # the whole reply has played
    session.emit(UserSpeechStarted())
    await call.silence(40)
    assert session.interruptions == []  # nothing to truncate: the caller heard it all
    assert task.bridge.barge_ins == 0  # type: ignore[attr-defined]
    call.end()
    await task


async def test_unnamed_items_count_as_one_reply_until_its_audio_is_done() -> None:
    """Deepgram names no items: a reply is everything up to AgentAudioDone."""
    from voxgate.providers.realtime import AgentAudioDone

    call = SimulatedCall()
    session = FakeSession(ULAW_8K)
    task = await start_bridge(call, session)
    chunk = speech(200).frame
    session.emit(*(AgentAudio(chunk) for _ in range(10)))  # 2 s in 200 ms pieces, no item id
    await call.until(lambda: call.agent_audio_ms >= 700, within_ms=2000)
    heard = call.agent_audio_ms
    session.emit(UserSpeechStarted())
    await call.silence(40)
    assert len(session.interruptions) == 1 and abs(session.interruptions[0] - heard) <= 40
    session.emit(AgentAudio(chunk), AgentAudioDone())
    await call.until(lambda: call.agent_audio_ms >= heard + 200, within_ms=1000)
    await call.silence(60)
    session.emit(UserSpeechStarted())  # after that reply was heard in full: a new turn
    await call.silence(40)
    assert len(session.interruptions) == 1
    call.end()
    await task


def test_a_realtime_agent_without_a_key_is_a_clear_start_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxgate.agent.base import AgentError
    from voxgate.agent.config import ProviderConfig
    from voxgate.agent.pipeline import make_agent

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = realtime_config().model_copy(update={"realtime": [ProviderConfig(name="openai-realtime")]})
    with pytest.raises(AgentError, match=r"realtime\[0\] openai-realtime: .*set OPENAI_API_KEY"):
        make_agent(config)
