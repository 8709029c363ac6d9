"""A realtime agent over a real socket: `RealtimeAgent` with the real `OpenAIRealtime` client
talking to the protocol-faithful fake server, on a SimulatedCall. A spoken turn and a barge-in
with truncate go through the bridge; when the socket stalls (the watchdog fires) or closes
mid-reply, the agent's real pipeline (scripted providers) takes over with the apology."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fake_openai_realtime import FakeRealtime, Reply
from voxgate.agent.config import default_agent_config
from voxgate.agent.pipeline import PipelineAgent
from voxgate.agent.realtime import RealtimeAgent
from voxgate.providers.realtime.openai import OpenAIRealtime
from voxgate.testing.fakes import ScriptedSTT, ScriptedTTS, ScriptedVAD
from voxgate.testing.harness import SimulatedCall, tone

KEY = "sk-fake-realtime-key-0001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    server = await FakeRealtime(key=KEY).start()
    yield server
    await server.stop()


def make_agent(fake: FakeRealtime, *, stall_s: float = 5.0) -> tuple[RealtimeAgent, ScriptedTTS]:
    base = default_agent_config()
    call = base.call.model_copy(update={"hangup_delay_ms": 0, "silence_reprompt_ms": None})
    config = base.model_copy(
        update={"mode": "realtime", "greeting": None, "call": call, "realtime_apology": "Sorry about that."}
    )
    tts = ScriptedTTS()
    pipeline = PipelineAgent(config, stt=ScriptedSTT([]), tts=tts, vad_factory=lambda: ScriptedVAD())
    provider = OpenAIRealtime(url=fake.url, api_key=KEY, stall_timeout_s=stall_s, heartbeat_s=None)
    return RealtimeAgent(config, [provider], pipeline), tts


async def run_until(call: SimulatedCall, condition: Any, within_ms: float = 3000) -> None:
    """Step the call (real sockets need real time between steps too)."""
    waited = 0.0
    while not condition():
        await call.silence(20)
        await asyncio.sleep(0.002)
        waited += 20
        assert waited < within_ms, "condition not met in time"


async def test_spoken_turn_and_barge_in_with_truncate(fake: FakeRealtime) -> None:
    agent, _ = make_agent(fake)
    call = SimulatedCall(rate=8000)
    task = asyncio.create_task(agent.handle(call))
    await asyncio.wait_for(fake.wait_for("session.update"), 3)
    # slin 8 kHz leg → audio/pcm at 24 kHz both ways (resampled by the bridge)
    audio_in = fake.received[-1]["session"]["audio"]["input"]["format"]
    assert audio_in == {"type": "audio/pcm", "rate": 24000}
    await run_until(call, lambda: len(fake.audio_in) >= 24000 * 2 * 0.2)  # caller audio arrives
    reply = Reply(audio=tone(3000, rate=24000), transcript="Your order shipped yesterday.")
    await fake.spoken_turn(reply, user_transcript="Where is my order?")
    await run_until(call, lambda: call.agent_audio_ms >= 600)
    await fake.speech_started()
    await run_until(call, lambda: bool(fake.of_type("conversation.item.truncate")))
    truncate = fake.of_type("conversation.item.truncate")[0]
    assert truncate["content_index"] == 0
    assert abs(truncate["audio_end_ms"] - call.agent_audio_ms) <= 60  # what the caller heard
    await run_until(call, lambda: not call.agent_talking(), within_ms=200)
    call.end()
    await asyncio.wait_for(task, 3)


@pytest.mark.parametrize("failure", ["stall", "close"])
async def test_dead_session_mid_reply_hands_over_to_the_pipeline(fake: FakeRealtime, failure: str) -> None:
    agent, tts = make_agent(fake, stall_s=0.3)
    call = SimulatedCall(rate=8000)
    task = asyncio.create_task(agent.handle(call))
    await asyncio.wait_for(fake.wait_for("session.update"), 3)
    reply = (
        Reply(audio=tone(2000, rate=24000), stall_after=5)
        if failure == "stall"
        else Reply(audio=tone(2000, rate=24000), close_after=5)
    )
    await fake.spoken_turn(reply)
    await run_until(call, lambda: "Sorry about that." in tts.texts, within_ms=5000)
    assert not task.done()  # the call goes on, on the pipeline
    call.end()
    await asyncio.wait_for(task, 3)


async def test_no_session_at_all_starts_the_pipeline(fake: FakeRealtime) -> None:
    await fake.stop()  # nothing listening
    agent, tts = make_agent(fake)
    agent.config = agent.config.model_copy(update={"greeting": "Hello from the pipeline."})
    agent.fallback.config = agent.config
    call = SimulatedCall(rate=8000)
    task = asyncio.create_task(agent.handle(call))
    await run_until(call, lambda: "Hello from the pipeline." in tts.texts, within_ms=5000)
    call.end()
    await asyncio.wait_for(task, 3)


async def test_deepgram_agent_turn_barge_in_and_close_hand_over() -> None:
    """The same agent on the real Deepgram client: slin 8 kHz goes as linear16/8000 both ways
    (no conversion), UserStartedSpeaking clears our audio, a close mid-turn hands over."""
    from fake_deepgram_agent import KEY as DG_KEY
    from fake_deepgram_agent import FakeDeepgramAgent
    from voxgate.providers.realtime.deepgram import DeepgramVoiceAgent

    fake = await FakeDeepgramAgent().start()
    try:
        base = default_agent_config()
        call_opts = base.call.model_copy(update={"hangup_delay_ms": 0, "silence_reprompt_ms": None})
        config = base.model_copy(
            update={
                "mode": "realtime",
                "greeting": None,
                "call": call_opts,
                "realtime_apology": "Sorry about that.",
            }
        )
        tts = ScriptedTTS()
        pipeline = PipelineAgent(config, stt=ScriptedSTT([]), tts=tts, vad_factory=lambda: ScriptedVAD())
        agent = RealtimeAgent(
            config, [DeepgramVoiceAgent(url=fake.url, api_key=DG_KEY, heartbeat_s=None)], pipeline
        )
        call = SimulatedCall(rate=8000)
        task = asyncio.create_task(agent.handle(call))
        conn = await fake.connection(within=3.0)
        await asyncio.wait_for(conn.ready.wait(), 3.0)
        assert conn.output_encoding == ("linear16", 8000)
        await conn.agent_turn("Where is my order?", "It shipped.", tone(2000, rate=8000))
        await run_until(call, lambda: call.agent_audio_ms >= 400)
        await conn.send({"type": "UserStartedSpeaking"})
        await run_until(call, lambda: not call.agent_talking(), within_ms=200)
        heard = call.agent_audio_ms
        await call.silence(200)
        assert call.agent_audio_ms <= heard + 20  # the rest of the 2 s was dropped
        await conn.close_mid_turn("And the invoice?", tone(400, rate=8000))
        await run_until(call, lambda: "Sorry about that." in tts.texts, within_ms=5000)
        call.end()
        await asyncio.wait_for(task, 3)
    finally:
        await fake.stop()
