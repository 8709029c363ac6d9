"""OpenAIRealtime against a protocol-faithful fake Realtime server over real loopback WebSockets.

The expected wire JSON is written out literally from `../shared/protocols/openai-realtime.md`
(§2 session shapes, §3 client events, §6 barge-in), never produced by the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fake_openai_realtime import FakeRealtime, Reply, ToolScript
from voxgate.audio.format import ALAW8, SLIN8, SLIN16, SLIN24, ULAW8, AudioFormat, AudioFrame
from voxgate.providers.base import ProviderError, ProviderTimeout, ToolSpec
from voxgate.providers.realtime import (
    AgentAudio,
    AgentAudioDone,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeProvider,
    RealtimeSession,
    ResponseDone,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
    UserSpeechStopped,
)
from voxgate.providers.realtime.openai import OpenAIRealtime, OpenAIRealtimeSession
from voxgate.providers.secrets import MissingSecret

KEY = "sk-test-realtime-5b2e9d71"
WRONG_KEY = "sk-wrong-key-0c4f8a3e61"
LOOKUP = ToolSpec(
    "lookup_order",
    "Look an order up by its id.",
    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
)
PROMPT = "You are a phone agent for Acme. Be brief."
REPLY_ULAW = bytes(range(256)) * 5  # 1280 bytes = 160 ms of μ-law: 8 deltas of 20 ms


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    server = await FakeRealtime(key=KEY).start()
    yield server
    await server.stop()


def provider(fake: FakeRealtime, **options: Any) -> OpenAIRealtime:
    options = {"api_key": KEY, "connect_timeout_s": 1.0, "stall_timeout_s": 2.0, **options}
    return OpenAIRealtime(url=fake.url, **options)


def config(fmt: AudioFormat = ULAW8, **fields: Any) -> RealtimeConfig:
    return RealtimeConfig(instructions=PROMPT, telephony_format=fmt, call_id="call-1", **fields)


async def started(
    fake: FakeRealtime, fmt: AudioFormat = ULAW8, /, cfg: dict[str, Any] | None = None, **options: Any
):
    session = provider(fake, **options).session(config(fmt, **(cfg or {})))
    await session.start()
    return session


async def next_event(session: OpenAIRealtimeSession, within: float = 1.0) -> RealtimeEvent:
    async with asyncio.timeout(within):
        return await anext(session)


async def events_until(
    session: OpenAIRealtimeSession, kind: type, within: float = 2.0
) -> list[RealtimeEvent]:
    """Every event up to and including the first `kind`."""
    out: list[RealtimeEvent] = []
    async with asyncio.timeout(within):
        async for event in session:
            out.append(event)
            if isinstance(event, kind):
                return out
    raise AssertionError(f"the session ended before a {kind.__name__}: {out}")


def audio_of(events: list[RealtimeEvent]) -> bytes:
    return b"".join(e.frame.data for e in events if isinstance(e, AgentAudio))


def without_id(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "event_id"}


# --- session.update on the wire (§2) ----------------------------------------------------------


async def test_ga_session_update_is_the_nested_shape_of_the_notes(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8, cfg={"tools": [LOOKUP]}, noise_reduction="near_field", speed=1.0)
    try:
        assert fake.received[0] == {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "model": "gpt-realtime",
                "instructions": "You are a phone agent for Acme. Be brief.",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "noise_reduction": {"type": "near_field"},
                        "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                        "turn_detection": {
                            "type": "server_vad",
                            "threshold": 0.5,
                            "prefix_padding_ms": 300,
                            "silence_duration_ms": 500,
                            "create_response": True,
                            "interrupt_response": True,
                        },
                    },
                    "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0},
                },
                "tools": [
                    {
                        "type": "function",
                        "name": "lookup_order",
                        "description": "Look an order up by its id.",
                        "parameters": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}},
                            "required": ["id"],
                        },
                    }
                ],
                "tool_choice": "auto",
            },
        }
        headers = fake.handshakes[0]
        assert headers["Authorization"] == f"Bearer {KEY}"
        assert "OpenAI-Beta" not in headers
        assert fake.queries[0] == {"model": "gpt-realtime"}
        assert session.input_format == session.output_format == ULAW8
        assert fake.session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        assert isinstance(session, RealtimeSession)
        assert fake.errors_sent() == []
    finally:
        await session.aclose()


async def test_beta_session_update_is_the_flat_shape_and_sends_the_beta_header(fake: FakeRealtime) -> None:
    session = await started(
        fake, ULAW8, cfg={"tools": [LOOKUP], "voice": "alloy"}, beta=True, temperature=0.8,
        transcription_model="whisper-1", model="gpt-4o-realtime-preview-2024-12-17",
    )  # fmt: skip
    try:
        assert fake.received[0] == {
            "type": "session.update",
            "session": {
                "modalities": ["audio", "text"],
                "instructions": "You are a phone agent for Acme. Be brief.",
                "voice": "alloy",
                "input_audio_format": "g711_ulaw",
                "output_audio_format": "g711_ulaw",
                "input_audio_transcription": {"model": "whisper-1"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                },
                "tools": [
                    {
                        "type": "function",
                        "name": "lookup_order",
                        "description": "Look an order up by its id.",
                        "parameters": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}},
                            "required": ["id"],
                        },
                    }
                ],
                "tool_choice": "auto",
                "temperature": 0.8,
            },
        }
        assert fake.handshakes[0]["OpenAI-Beta"] == "realtime=v1"
        assert fake.queries[0] == {"model": "gpt-4o-realtime-preview-2024-12-17"}
        assert fake.errors_sent() == []
    finally:
        await session.aclose()


@pytest.mark.parametrize(
    ("leg", "fmt", "ga", "beta"),
    [
        (ULAW8, ULAW8, {"type": "audio/pcmu"}, "g711_ulaw"),
        (ALAW8, ALAW8, {"type": "audio/pcma"}, "g711_alaw"),
        (SLIN16, SLIN24, {"type": "audio/pcm", "rate": 24000}, "pcm16"),
        (SLIN8, SLIN24, {"type": "audio/pcm", "rate": 24000}, "pcm16"),
    ],
)
def test_format_follows_the_call_leg(
    leg: AudioFormat, fmt: AudioFormat, ga: dict[str, Any], beta: str
) -> None:
    session = OpenAIRealtime(api_key=KEY).session(config(leg))
    assert session.input_format == session.output_format == fmt
    audio = session.session_update()["session"]["audio"]
    assert audio["input"]["format"] == audio["output"]["format"] == ga
    flat = OpenAIRealtime(api_key=KEY, beta=True).session(config(leg)).session_update()["session"]
    assert flat["input_audio_format"] == flat["output_audio_format"] == beta


def test_semantic_vad_and_manual_turns() -> None:
    semantic = OpenAIRealtime(api_key=KEY, turn_detection="semantic_vad", eagerness="low")
    detection = semantic.session(config()).session_update()["session"]["audio"]["input"]["turn_detection"]
    assert detection == {
        "type": "semantic_vad",
        "eagerness": "low",
        "create_response": True,
        "interrupt_response": True,
    }
    manual = OpenAIRealtime(api_key=KEY, turn_detection=None, transcription_model=None)
    audio_in = manual.session(config()).session_update()["session"]["audio"]["input"]
    assert audio_in == {"format": {"type": "audio/pcmu"}, "turn_detection": None}


def test_options_checked_and_key_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(OpenAIRealtime(api_key=KEY), RealtimeProvider)
    with pytest.raises(ValueError, match="temperature"):
        OpenAIRealtime(api_key=KEY, temperature=0.7)  # the GA session has no temperature (§2)
    with pytest.raises(ValueError, match="noise_reduction"):
        OpenAIRealtime(api_key=KEY, beta=True, noise_reduction="near_field")
    with pytest.raises(ValueError, match="ws:// or wss://"):
        OpenAIRealtime(api_key=KEY, url="https://api.openai.com/v1/realtime")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingSecret, match="OPENAI_API_KEY"):
        OpenAIRealtime()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    realtime = OpenAIRealtime()
    assert KEY not in repr(realtime) and KEY not in repr(realtime.session(config()))
    assert realtime.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert OpenAIRealtime(url="wss://example.test/v1/realtime?model=x").url.endswith("?model=x")


def test_push_audio_refuses_another_format() -> None:
    session = OpenAIRealtime(api_key=KEY).session(config(ULAW8))
    with pytest.raises(ValueError, match="ulaw@8000"):
        session.push_audio(AudioFrame(bytes(320), SLIN8))


# --- audio both ways --------------------------------------------------------------------------


async def test_caller_audio_goes_out_as_base64_appends(fake: FakeRealtime) -> None:
    session = await started(fake, SLIN16)
    try:
        frames = [bytes([i]) * 960 for i in range(10)]  # 10 × 20 ms of PCM16 at 24 kHz
        for data in frames:
            session.push_audio(AudioFrame(data, SLIN24))
        async with asyncio.timeout(1):
            while len(fake.audio_in) < 9600:  # noqa: ASYNC110 - the fake has no event per byte
                await asyncio.sleep(0.005)
        assert bytes(fake.audio_in) == b"".join(frames)
        appends = fake.of_type("input_audio_buffer.append")
        assert appends and all(set(a) == {"type", "audio"} for a in appends)
        assert b"".join(base64.b64decode(a["audio"]) for a in appends) == b"".join(frames)
    finally:
        await session.aclose()


@pytest.mark.parametrize(("leg", "audio"), [(ULAW8, REPLY_ULAW), (SLIN16, bytes(range(200)) * 24)])
async def test_a_spoken_turn(fake: FakeRealtime, leg: AudioFormat, audio: bytes) -> None:
    session = await started(fake, leg)
    try:
        await fake.spoken_turn(Reply(audio=audio, transcript="It shipped yesterday."), "Where is my order?")
        events = await events_until(session, ResponseDone)
        assert isinstance(events[0], UserSpeechStarted) and isinstance(events[1], UserSpeechStopped)
        assert audio_of(events) == audio
        frames = [e for e in events if isinstance(e, AgentAudio)]
        assert {e.item_id for e in frames} == {fake.last_item}
        assert all(e.frame.format == session.output_format for e in frames)
        final = [e for e in events if isinstance(e, Transcript) and e.final]
        assert Transcript("user", "Where is my order?") in final
        assert Transcript("assistant", "It shipped yesterday.") in final
        interim = [
            e.text for e in events if isinstance(e, Transcript) and e.role == "assistant" and not e.final
        ]
        assert interim[-1].strip() == "It shipped yesterday."
        assert AgentAudioDone(fake.last_item) in events
        assert events[-1] == ResponseDone("completed", None)
        assert fake.errors_sent() == []
    finally:
        await session.aclose()


async def test_beta_event_names(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8, beta=True)
    try:
        await fake.spoken_turn(Reply(audio=REPLY_ULAW, transcript="Hello there."))
        events = await events_until(session, ResponseDone)
        assert any(e["type"] == "response.audio.delta" for e in fake.sent)
        assert audio_of(events) == REPLY_ULAW
        assert Transcript("assistant", "Hello there.") in events
        assert AgentAudioDone(fake.last_item) in events
    finally:
        await session.aclose()


async def test_greeting_asks_for_a_response(fake: FakeRealtime) -> None:
    fake.replies.append(Reply(audio=REPLY_ULAW[:320], transcript="Hello, thanks for calling Acme."))
    session = await started(fake, ULAW8, cfg={"greeting": "Hello, thanks for calling Acme."})
    try:
        create = await fake.wait_for("response.create")
        assert without_id(create) == {
            "type": "response.create",
            "response": {
                "instructions": "Say exactly this to greet the caller: Hello, thanks for calling Acme."
            },
        }
        assert [e["type"] for e in fake.received[:2]] == ["session.update", "response.create"]
        events = await events_until(session, ResponseDone)
        assert audio_of(events) == REPLY_ULAW[:320]
    finally:
        await session.aclose()


# --- tools ------------------------------------------------------------------------------------


async def test_tool_call_round_trip(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8, cfg={"tools": [LOOKUP]})
    try:
        gate = asyncio.Event()  # holds the reply open after the call's arguments
        fake.replies.append(Reply(audio=REPLY_ULAW[:480], transcript="It shipped."))
        await fake.spoken_turn(Reply(tool=ToolScript("lookup_order", '{"id": "42"}', "call_7"), gate=gate))
        events = await events_until(session, ToolCall)
        assert events[-1] == ToolCall("call_7", "lookup_order", {"id": "42"})
        await session.send_tool_result("call_7", "lookup_order", '{"status":"shipped"}')
        assert await fake.wait_for("conversation.item.create") == {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_7", "output": '{"status":"shipped"}'},
        }
        await asyncio.sleep(0.05)
        assert fake.of_type("response.create") == []  # the reply that made the call still runs
        gate.set()
        create = await fake.wait_for("response.create")
        assert without_id(create) == {"type": "response.create"}
        events = await events_until(session, ResponseDone)  # the tool-call reply's
        assert events == [ResponseDone("completed", None)]
        events = await events_until(session, ResponseDone)  # the answer
        assert audio_of(events) == REPLY_ULAW[:480]
        assert fake.errors_sent() == []
    finally:
        await session.aclose()


async def test_unparsable_tool_arguments_are_answered_with_an_error(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8, cfg={"tools": [LOOKUP]})
    try:
        await fake.spoken_turn(Reply(tool=ToolScript("lookup_order", '{"id": 42', "call_9")))
        events = await events_until(session, ResponseDone)
        errors = [e for e in events if isinstance(e, SessionError)]
        assert len(errors) == 1 and not errors[0].fatal and errors[0].code == "invalid_tool_arguments"
        assert "lookup_order" in errors[0].message
        assert not any(isinstance(e, ToolCall) for e in events)
        item = (await fake.wait_for("conversation.item.create"))["item"]
        assert item["type"] == "function_call_output" and item["call_id"] == "call_9"
        assert "not valid JSON" in json.loads(item["output"])["error"]
        await fake.wait_for("response.create")  # the model gets to try again
        assert fake.errors_sent() == []
    finally:
        await session.aclose()


# --- barge-in (§6) ----------------------------------------------------------------------------


async def test_barge_in_truncates_cancels_and_drops_late_audio(fake: FakeRealtime) -> None:
    fake.auto_cancel = False  # the test plays the server's side of the cancel
    session = await started(fake, ULAW8)
    try:
        gate = asyncio.Event()
        await fake.spoken_turn(Reply(audio=REPLY_ULAW * 2, gate=gate, gate_after=10))  # 200 ms then hold
        events: list[RealtimeEvent] = []
        while len(audio_of(events)) < 1600:
            events.append(await next_event(session))
        response_id, item_id = fake.active_response, fake.last_item
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await fake.speech_started()
        for byte in (b"\x33", b"\x44"):  # in flight when the caller started talking
            await fake.emit("response.output_audio.delta", **ids, delta=base64.b64encode(byte * 160).decode())
        assert isinstance(await next_event(session), UserSpeechStarted)
        await asyncio.sleep(0.05)  # they are received (and queued) before the bridge reacts
        await session.interrupted(120.7)
        truncate = await fake.wait_for("conversation.item.truncate")
        assert truncate == {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 120,
        }
        cancel = await fake.wait_for("response.cancel")
        assert without_id(cancel) == {"type": "response.cancel", "response_id": response_id}
        # audio the server sent before it saw the cancel, then its response.done
        await fake.emit("response.output_audio.delta", **ids, delta=base64.b64encode(b"\x11" * 160).decode())
        await fake.cancel_reply()
        gate.set()
        fake.respond(Reply(audio=b"\x22" * 320))
        events = await events_until(session, ResponseDone)
        assert events == [ResponseDone("cancelled", "client_cancelled")]
        events = await events_until(session, ResponseDone)
        assert audio_of(events) == b"\x22" * 320
        assert fake.errors_sent() == []
    finally:
        await session.aclose()


async def test_truncate_is_clamped_to_the_audio_received(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8)
    try:
        await fake.spoken_turn(Reply(audio=REPLY_ULAW))  # 160 ms, reply complete
        await events_until(session, ResponseDone)
        await session.interrupted(5000.0)  # the bridge overcounts: never past what exists
        truncate = await fake.wait_for("conversation.item.truncate")
        assert truncate["audio_end_ms"] == 160 and truncate["item_id"] == fake.last_item
        await asyncio.sleep(0.05)
        assert fake.of_type("response.cancel") == []  # nothing was running
        assert fake.errors_sent() == []
    finally:
        await session.aclose()


async def test_nothing_played_sends_no_truncate_and_a_late_cancel_error_is_ignored(
    fake: FakeRealtime,
) -> None:
    fake.auto_cancel = False
    session = await started(fake, ULAW8)
    try:
        gate = asyncio.Event()
        await fake.spoken_turn(Reply(audio=REPLY_ULAW, gate=gate, gate_after=1))
        await events_until(session, AgentAudio)
        await session.interrupted(0.0)
        cancel = await fake.wait_for("response.cancel")
        assert fake.of_type("conversation.item.truncate") == []
        # the server had already cancelled it (interrupt_response): our cancel gets an error back
        await fake.cancel_reply("turn_detected")
        await fake.error(
            "response_cancel_not_active",
            "Cancellation failed: no active response found.",
            event_id=cancel["event_id"],
        )
        await fake.error("rate_limit_exceeded", "Slow down.")
        events = await events_until(session, SessionError)
        assert events[-2:] == [
            ResponseDone("cancelled", "turn_detected"),
            SessionError("Slow down.", fatal=False, code="rate_limit_exceeded"),
        ]
    finally:
        await session.aclose()


# --- errors -----------------------------------------------------------------------------------


async def test_error_event_is_not_fatal(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8)
    try:
        await fake.error("invalid_value", "Invalid value: 'x'.", param="item.type")
        event = await next_event(session)
        assert event == SessionError(
            "Invalid value: 'x'. (param item.type)", fatal=False, code="invalid_value"
        )
        await fake.spoken_turn(Reply(audio=REPLY_ULAW))
        events = await events_until(session, ResponseDone)
        assert audio_of(events) == REPLY_ULAW
    finally:
        await session.aclose()


async def test_stalled_reply_trips_the_watchdog(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8, stall_timeout_s=0.3)
    try:
        with pytest.raises(TimeoutError):  # idle, no reply owed: no false alarm
            await next_event(session, within=0.5)
        await fake.spoken_turn(Reply(audio=REPLY_ULAW, stall_after=2))
        began = time.monotonic()
        events = await events_until(session, SessionError, within=2.0)
        error = events[-1]
        assert isinstance(error, SessionError) and error.fatal and error.code == "stalled"
        assert "stalled" in error.message
        assert time.monotonic() - began < 1.0
        assert len(audio_of(events)) == 320
        with pytest.raises(StopAsyncIteration):
            await next_event(session)
        await asyncio.wait_for(fake.disconnected.wait(), 1)
    finally:
        await session.aclose()


@pytest.mark.parametrize("abort", [False, True], ids=["close-1011", "tcp-abort"])
async def test_connection_lost_mid_response_is_fatal(fake: FakeRealtime, abort: bool) -> None:
    session = await started(fake, ULAW8)
    try:
        await fake.spoken_turn(Reply(audio=REPLY_ULAW, close_after=3, abort=abort))
        events = await events_until(session, SessionError)
        error = events[-1]
        assert isinstance(error, SessionError) and error.fatal
        if abort:
            assert error.code == "connection_lost"
        else:
            assert error.code == "1011" and "1011" in error.message and "internal error" in error.message
        assert len(audio_of(events)) == 480
        with pytest.raises(StopAsyncIteration):
            await next_event(session)
    finally:
        await session.aclose()


async def test_rejected_key_is_not_retryable_and_never_shown(
    fake: FakeRealtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = provider(fake, api_key=WRONG_KEY).session(config())
    with pytest.raises(ProviderError) as info:
        await session.start()
    error = info.value
    assert "key rejected" in str(error) and not error.retryable
    assert fake.url in str(error)
    shown = [str(error), repr(error), "".join(traceback.format_exception(error)), caplog.text, repr(session)]
    assert error.__context__ is None and error.__cause__ is None
    assert not any(WRONG_KEY in text for text in shown)
    assert fake.handshakes[0]["Authorization"] == f"Bearer {WRONG_KEY}"  # it was sent, only there
    await session.aclose()
    with pytest.raises(StopAsyncIteration):
        await next_event(session)


async def test_no_session_created_times_out_naming_the_url(fake: FakeRealtime) -> None:
    fake.send_created = False
    session = provider(fake, connect_timeout_s=0.3).session(config())
    began = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"session\.created") as info:
        await session.start()
    assert fake.url in str(info.value) and KEY not in str(info.value)
    assert time.monotonic() - began < 1.0


async def test_refused_session_update_carries_the_servers_message(
    fake: FakeRealtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = provider(fake).session(config(SLIN16))
    bad = session.session_update()
    bad["session"]["audio"]["input"]["format"] = {"type": "audio/pcm", "rate": 16000}
    monkeypatch.setattr(session, "session_update", lambda: bad)
    with pytest.raises(ProviderError, match="Only a rate of 24000") as info:
        await session.start()
    assert not info.value.retryable
    assert fake.errors_sent()[0]["error"]["param"] == "session.audio.input.format.rate"


async def test_beta_shape_refused_at_the_handshake(fake: FakeRealtime) -> None:
    fake.ga_only = True
    with pytest.raises(ProviderError, match="4000") as info:
        await started(fake, ULAW8, beta=True)
    assert "beta: false" in str(info.value) and not info.value.retryable


async def test_connection_refused_is_retryable() -> None:
    realtime = OpenAIRealtime(api_key=KEY, url="ws://127.0.0.1:9/v1/realtime", connect_timeout_s=1)
    with pytest.raises(ProviderError, match="cannot connect") as info:
        await realtime.session(config()).start()
    assert info.value.retryable


async def test_aclose_is_idempotent_and_ends_the_events(fake: FakeRealtime) -> None:
    session = await started(fake, ULAW8)
    waiter = asyncio.create_task(anext(session))
    await asyncio.sleep(0.01)
    await session.aclose()
    await session.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiter, 1)
    session.push_audio(AudioFrame(bytes(160), ULAW8))  # after the end: dropped, no error
    await session.send_tool_result("call_1", "x", "{}")
    await session.interrupted(100)
    await asyncio.wait_for(fake.disconnected.wait(), 1)
    with pytest.raises(RuntimeError):
        await session.start()


async def test_keys_pressed_go_in_as_user_text_and_get_a_reply(fake: FakeRealtime) -> None:
    fake.replies.append(Reply(audio=REPLY_ULAW[:160], transcript="Got it."))
    session = await started(fake, ULAW8)
    try:
        await session.send_user_text("(The caller typed 42# on the phone keypad.)")
        item = await fake.wait_for("conversation.item.create")
        assert item == {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "(The caller typed 42# on the phone keypad.)"}],
            },
        }
        assert (await fake.wait_for("response.create"))["type"] == "response.create"
        await events_until(session, ResponseDone)
    finally:
        await session.aclose()
