"""DeepgramVoiceAgent against a protocol-faithful fake agent endpoint over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest

from fake_deepgram_agent import KEY, AgentConnection, FakeDeepgramAgent
from voxgate.audio.format import ALAW8, SLIN8, SLIN16, ULAW8, AudioFormat, AudioFrame
from voxgate.providers.base import ProviderError, ProviderTimeout, ToolSpec
from voxgate.providers.realtime import (
    AgentAudio,
    AgentAudioDone,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeProvider,
    RealtimeSession,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
)
from voxgate.providers.realtime.deepgram import DeepgramAgentSession, DeepgramVoiceAgent

LOOKUP = ToolSpec(
    "lookup_order",
    "Find an order",
    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
)
PROMPT = "You are a phone agent for Acme."


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgramAgent]:
    server = await FakeDeepgramAgent().start()
    yield server
    await server.stop()


def agent(fake: FakeDeepgramAgent, **options: object) -> DeepgramVoiceAgent:
    return DeepgramVoiceAgent(url=fake.url, api_key=KEY, **options)  # type: ignore[arg-type]


def config(fmt: AudioFormat = ULAW8, **fields: object) -> RealtimeConfig:
    return RealtimeConfig(instructions=PROMPT, telephony_format=fmt, call_id="call-1", **fields)  # type: ignore[arg-type]


async def started(
    fake: FakeDeepgramAgent, cfg: RealtimeConfig | None = None, **options: object
) -> tuple[DeepgramAgentSession, AgentConnection]:
    session = agent(fake, **options).session(cfg or config())
    await session.start()
    conn = await fake.connection()
    await asyncio.wait_for(conn.ready.wait(), 1.0)
    return session, conn


async def next_events(session: RealtimeSession, n: int, within: float = 1.0) -> list[RealtimeEvent]:
    out: list[RealtimeEvent] = []
    iterator = aiter(session)
    async with asyncio.timeout(within):
        while len(out) < n:
            out.append(await anext(iterator))
    return out


async def events_until(session: RealtimeSession, stop: type, within: float = 1.0) -> list[RealtimeEvent]:
    """Events up to and including the first of type `stop`."""
    out: list[RealtimeEvent] = []
    async with asyncio.timeout(within):
        async for event in session:
            out.append(event)
            if isinstance(event, stop):
                break
    return out


async def all_events(session: RealtimeSession, within: float = 1.0) -> list[RealtimeEvent]:
    async with asyncio.timeout(within):
        return [event async for event in session]


# --- Settings -------------------------------------------------------------------------------


async def test_settings_for_a_ulaw_leg_is_the_v1_shape(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(
        fake, config(ULAW8, tools=[LOOKUP], greeting="Hi, thanks for calling Acme!"), temperature=0.7
    )
    try:
        assert conn.headers["Authorization"] == f"Token {KEY}"
        assert conn.settings == {
            "type": "Settings",
            "audio": {
                "input": {"encoding": "mulaw", "sample_rate": 8000},
                "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
            },
            "agent": {
                "language": "en",
                "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
                "think": {
                    "provider": {"type": "open_ai", "model": "gpt-4o-mini", "temperature": 0.7},
                    "prompt": "You are a phone agent for Acme.",
                    "functions": [
                        {
                            "name": "lookup_order",
                            "description": "Find an order",
                            "parameters": {
                                "type": "object",
                                "properties": {"id": {"type": "string"}},
                                "required": ["id"],
                            },
                        }
                    ],
                },
                "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
                "greeting": "Hi, thanks for calling Acme!",
            },
        }
        assert session.input_format == session.output_format == ULAW8
        assert isinstance(session, RealtimeSession)
        assert isinstance(agent(fake), RealtimeProvider)
    finally:
        await session.aclose()


async def test_settings_for_an_audiosocket_slin16_leg_is_linear16_16000_both_ways(
    fake: FakeDeepgramAgent,
) -> None:
    endpoint = {"url": "https://llm.example/v1/chat/completions", "headers": {"authorization": "Bearer x"}}
    session, conn = await started(
        fake,
        config(SLIN16, language="de", voice="aura-2-julius-en"),
        listen_model="nova-2",
        think_model="gpt-4.1-mini",
        think_endpoint=endpoint,
    )
    try:
        assert conn.settings == {
            "type": "Settings",
            "audio": {
                "input": {"encoding": "linear16", "sample_rate": 16000},
                "output": {"encoding": "linear16", "sample_rate": 16000, "container": "none"},
            },
            "agent": {
                "language": "de",
                "listen": {"provider": {"type": "deepgram", "model": "nova-2"}},
                "think": {
                    "provider": {"type": "open_ai", "model": "gpt-4.1-mini"},
                    "endpoint": endpoint,
                    "prompt": "You are a phone agent for Acme.",
                },
                "speak": {"provider": {"type": "deepgram", "model": "aura-2-julius-en"}},
            },
        }
        assert session.input_format == session.output_format == SLIN16
    finally:
        await session.aclose()


@pytest.mark.parametrize(
    ("fmt", "wire"),
    [
        (ALAW8, {"encoding": "alaw", "sample_rate": 8000}),
        (SLIN8, {"encoding": "linear16", "sample_rate": 8000}),
    ],
)
async def test_other_legs_keep_their_own_format(
    fake: FakeDeepgramAgent, fmt: AudioFormat, wire: dict[str, object]
) -> None:
    session, conn = await started(fake, config(fmt))
    try:
        assert conn.settings is not None
        assert conn.settings["audio"] == {"input": wire, "output": {**wire, "container": "none"}}
    finally:
        await session.aclose()


async def test_settings_error_becomes_provider_error_with_the_servers_description() -> None:
    fake = await FakeDeepgramAgent(settings_reply="error").start()
    try:
        session = agent(fake).session(config())
        with pytest.raises(ProviderError, match=r"Invalid think provider\. \(INVALID_SETTINGS\)"):
            await session.start()
        assert await all_events(session) == []  # a failed start leaves an ended, closed session
    finally:
        await fake.stop()


async def test_no_settings_applied_times_out() -> None:
    fake = await FakeDeepgramAgent(settings_reply="silent").start()
    try:
        session = agent(fake, connect_timeout_s=0.2).session(config())
        began = time.monotonic()
        with pytest.raises(ProviderTimeout, match=r"no SettingsApplied within 0\.2 s"):
            await session.start()
        assert time.monotonic() - began < 1.0
    finally:
        await fake.stop()


async def test_401_is_a_provider_error_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = await FakeDeepgramAgent(key="the-right-key-000", dg_error=True).start()
    try:
        provider = agent(fake)
        session = provider.session(config())
        with pytest.raises(ProviderError) as info:
            await session.start()
        assert fake.rejected[0]["Authorization"] == f"Token {KEY}"  # the key went to the server…
        text = f"{info.value} {info.value!r} {provider!r} {session!r} {caplog.text}"
        assert "HTTP 401" in str(info.value) and "API key" in str(info.value)
        assert "Invalid credentials" in str(info.value)  # the server's own words (dg-error)…
        assert KEY not in text  # …but never the key, not even where the server echoed it
        assert info.value.retryable is False
    finally:
        await fake.stop()


# --- audio and a spoken turn ----------------------------------------------------------------


async def test_a_spoken_turn(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake)
    try:
        caller = bytes(range(256)) * 5
        for start in range(0, len(caller), 160):
            session.push_audio(AudioFrame(caller[start : start + 160], ULAW8))
        await conn.wait_until(lambda: len(conn.audio) == len(caller))
        assert bytes(conn.audio) == caller  # binary frames, as pushed
        assert conn.messages == []  # audio is not wrapped in JSON

        speech = bytes((i * 7) % 256 for i in range(1600))
        await conn.agent_turn("Where is my order?", "Let me check.", speech, chunk=160)
        events = await events_until(session, AgentAudioDone)
        assert events[:3] == [
            UserSpeechStarted(),
            Transcript("user", "Where is my order?"),
            Transcript("assistant", "Let me check."),
        ]
        audio = [e for e in events if isinstance(e, AgentAudio)]
        assert b"".join(e.frame.data for e in audio) == speech
        assert {e.frame.format for e in audio} == {ULAW8}
        assert events[-1] == AgentAudioDone()
        assert len(events) == 3 + len(audio) + 1

        await session.interrupted(120.0)  # Deepgram keeps its own turn state: nothing goes out
        await asyncio.sleep(0.05)
        assert conn.messages == []
    finally:
        await session.aclose()


async def test_slin16_speech_is_never_split_mid_sample(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake, config(SLIN16))
    try:
        session.push_audio(AudioFrame(bytes(640), SLIN16))
        await conn.wait_until(lambda: len(conn.audio) == 640)
        speech = b"".join(i.to_bytes(2, "little", signed=True) for i in range(-500, 500))
        await conn.agent_turn("Hello?", "Hi there.", speech, chunk=333)  # odd chunks straddle samples
        events = await events_until(session, AgentAudioDone)
        frames = [e.frame for e in events if isinstance(e, AgentAudio)]
        assert all(len(f.data) % 2 == 0 and f.format == SLIN16 for f in frames)
        assert b"".join(f.data for f in frames) == speech
    finally:
        await session.aclose()


async def test_user_started_speaking_is_a_barge_in(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake)
    try:
        await conn.send({"type": "UserStartedSpeaking"})
        assert await next_events(session, 1) == [UserSpeechStarted()]
    finally:
        await session.aclose()


async def test_audio_in_another_format_is_refused(fake: FakeDeepgramAgent) -> None:
    session, _ = await started(fake)
    try:
        with pytest.raises(ValueError, match=r"takes ulaw@8000 audio .* got pcm16@16000"):
            session.push_audio(AudioFrame(bytes(640), SLIN16))
    finally:
        await session.aclose()


async def test_keepalive_goes_out_only_while_no_audio_does(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake, keepalive_s=0.15)
    try:
        for _ in range(15):  # 0.3 s of audio at 20 ms: no KeepAlive needed
            session.push_audio(AudioFrame(bytes(160), ULAW8))
            await asyncio.sleep(0.02)
        assert conn.of_type("KeepAlive") == []
        await conn.wait_message("KeepAlive", within=0.5, count=2)  # audio stopped: every ~0.15 s
        assert conn.of_type("KeepAlive")[0] == {"type": "KeepAlive"}  # a text frame (it parsed as JSON)
    finally:
        await session.aclose()


# --- functions --------------------------------------------------------------------------------


async def test_function_call_round_trip(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake, config(tools=[LOOKUP]))
    try:
        await conn.function_call(
            [
                {"id": "fc_1", "name": "lookup_order", "arguments": '{"id": "A-17"}', "client_side": True},
                {"id": "fc_2", "name": "web_search", "arguments": "{}", "client_side": False},
            ]
        )
        (call,) = await next_events(session, 1)
        assert call == ToolCall("fc_1", "lookup_order", {"id": "A-17"})
        await session.send_tool_result("fc_1", "lookup_order", '{"status":"shipped"}')
        reply = await conn.wait_message("FunctionCallResponse")
        assert reply == {
            "type": "FunctionCallResponse",
            "id": "fc_1",
            "name": "lookup_order",
            "content": '{"status":"shipped"}',
        }
        await asyncio.sleep(0.05)
        assert len(conn.of_type("FunctionCallResponse")) == 1  # Deepgram answers fc_2 itself
        await conn.agent_turn("", "It has shipped.", bytes(320))
        events = await events_until(session, AgentAudioDone)
        assert Transcript("assistant", "It has shipped.") in events
    finally:
        await session.aclose()


async def test_bad_function_arguments_are_answered_with_an_error(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake, config(tools=[LOOKUP]))
    try:
        await conn.function_call(
            [{"id": "fc_9", "name": "lookup_order", "arguments": '{"id": "A-', "client_side": True}]
        )
        (error,) = await next_events(session, 1)
        assert isinstance(error, SessionError) and not error.fatal and error.code == "bad_arguments"
        assert "lookup_order" in error.message and "not valid JSON" in error.message
        reply = await conn.wait_message("FunctionCallResponse")
        assert reply["id"] == "fc_9" and reply["name"] == "lookup_order"
        assert "invalid arguments" in json.loads(reply["content"])["error"]
        await conn.send({"type": "UserStartedSpeaking"})  # the session goes on
        assert await next_events(session, 1) == [UserSpeechStarted()]
    finally:
        await session.aclose()


# --- errors, stalls, closes -----------------------------------------------------------------


async def test_error_message_is_a_non_fatal_session_error(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake)
    try:
        await conn.error("The think provider timed out.", "THINK_TIMEOUT")
        await conn.send({"type": "Warning", "description": "Slow speak provider.", "code": "SLOW"})
        await conn.send({"type": "UserStartedSpeaking"})
        assert await next_events(session, 2) == [
            SessionError("The think provider timed out.", fatal=False, code="THINK_TIMEOUT"),
            UserSpeechStarted(),  # a Warning is only logged
        ]
    finally:
        await session.aclose()


async def test_an_agent_that_owes_a_reply_and_goes_silent_is_a_fatal_stall(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake, stall_timeout_s=0.3, keepalive_s=0.1)
    try:
        await conn.send({"type": "UserStartedSpeaking"})
        assert await next_events(session, 1) == [UserSpeechStarted()]
        await asyncio.sleep(0.45)  # the caller is still talking: Deepgram owes nothing yet
        await conn.send({"type": "ConversationText", "role": "user", "content": "Hello?"})
        began = time.monotonic()
        events = await all_events(session, within=1.5)
        waited = time.monotonic() - began
        assert events[0] == Transcript("user", "Hello?")
        assert isinstance(events[-1], SessionError) and events[-1].fatal and events[-1].code == "stalled"
        assert "stalled" in events[-1].message
        assert 0.25 <= waited < 1.0
        await asyncio.wait_for(conn.closed.wait(), 1.0)  # the socket was dropped
    finally:
        await session.aclose()


async def test_a_pending_tool_result_then_silence_is_a_stall(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake, config(tools=[LOOKUP]), stall_timeout_s=0.25, keepalive_s=0.1)
    try:
        await conn.function_call(
            [{"id": "fc_1", "name": "lookup_order", "arguments": "{}", "client_side": True}]
        )
        assert await next_events(session, 1) == [ToolCall("fc_1", "lookup_order", {})]
        await asyncio.sleep(0.4)  # our tool is slow: that is not the agent stalling
        await session.send_tool_result("fc_1", "lookup_order", "{}")
        (error,) = await all_events(session, within=1.0)
        assert isinstance(error, SessionError) and error.fatal and error.code == "stalled"
    finally:
        await session.aclose()


async def test_close_mid_turn_is_fatal_and_ends_the_stream(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake)
    try:
        await conn.close_mid_turn("Hi", bytes(320))
        events = await all_events(session)
        assert events[:2] == [UserSpeechStarted(), Transcript("user", "Hi")]
        assert isinstance(events[-1], SessionError) and events[-1].fatal
        assert "closed the connection (code 1011" in events[-1].message
        session.push_audio(AudioFrame(bytes(160), ULAW8))  # after the end: dropped, not raised
    finally:
        await session.aclose()


async def test_aclose_is_idempotent_and_ends_the_stream(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake)
    waiter = asyncio.create_task(all_events(session))
    await asyncio.sleep(0.02)
    await session.aclose()
    await session.aclose()
    assert await waiter == []
    await asyncio.wait_for(conn.closed.wait(), 1.0)
    await session.send_tool_result("fc_1", "x", "{}")  # after the end: ignored


def test_the_key_never_shows_in_repr() -> None:
    provider = DeepgramVoiceAgent(api_key=KEY)
    session = provider.session(config())
    assert KEY not in repr(provider) and KEY not in repr(session) and "***" in repr(provider)


async def test_keys_pressed_are_injected_as_a_user_message(fake: FakeDeepgramAgent) -> None:
    session, conn = await started(fake)
    try:
        await session.send_user_text("(The caller typed 7 on the phone keypad.)")
        message = await conn.wait_message("InjectUserMessage")
        assert message == {
            "type": "InjectUserMessage",
            "content": "(The caller typed 7 on the phone keypad.)",
        }
    finally:
        await session.aclose()
