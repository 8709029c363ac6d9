"""Cloud TTS providers (Deepgram Aura, ElevenLabs, OpenAI) against fakes written from the protocol
notes, over real loopback HTTP and WebSockets. Expected URLs and bodies are literal values from
the notes; audio out must be byte for byte what the fake sent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import pytest

from fake_tts_servers import FakeAura, FakeElevenLabs, FakeOpenAISpeech, audio_for
from voxgate.audio.format import ALAW8, SLIN16, SLIN24, ULAW8, AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import TTS, ProviderError
from voxgate.providers.secrets import MissingSecret
from voxgate.providers.tts.deepgram import DeepgramAuraTTS
from voxgate.providers.tts.elevenlabs import ElevenLabsTTS
from voxgate.providers.tts.openai import OpenAITTS

DG_KEY = "dg-test-secret-0a1b2c3d"
EL_KEY = "xi-test-secret-4e5f6a7b"
OA_KEY = "sk-test-secret-8c9d0e1f"
SENTENCE = "Your order shipped yesterday."


async def collect(stream: AsyncIterator[AudioFrame]) -> list[AudioFrame]:
    async with aclosing(stream):
        return [frame async for frame in stream]


def joined(frames: list[AudioFrame]) -> bytes:
    return b"".join(frame.data for frame in frames)


def whole_frames(frames: list[AudioFrame], fmt: AudioFormat, max_bytes: int) -> bool:
    return all(
        f.format == fmt and 0 < len(f.data) <= max_bytes and len(f.data) % fmt.bytes_per_sample == 0
        for f in frames
    )


async def first_then_close(stream: AsyncIterator[AudioFrame]) -> AudioFrame:
    """Take one frame, then stop listening, as a barge-in does."""
    try:
        return await anext(stream)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not check():  # noqa: ASYNC110 - the state is a plain attribute
            await asyncio.sleep(0.005)


@pytest.fixture
async def aura() -> AsyncIterator[FakeAura]:
    fake = FakeAura(DG_KEY)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def eleven() -> AsyncIterator[FakeElevenLabs]:
    fake = FakeElevenLabs(EL_KEY)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def oai() -> AsyncIterator[FakeOpenAISpeech]:
    fake = FakeOpenAISpeech(OA_KEY)
    await fake.start()
    yield fake
    await fake.stop()


def _factory(made: list[Any], cls: type, **base: Any) -> Callable[..., Any]:
    def make(**options: Any) -> Any:
        tts = cls(**{**base, **options})
        made.append(tts)
        return tts

    return make


@pytest.fixture
async def make_dg(aura: FakeAura) -> AsyncIterator[Callable[..., DeepgramAuraTTS]]:
    made: list[Any] = []
    yield _factory(made, DeepgramAuraTTS, api_key=DG_KEY, url=aura.url)
    for tts in made:
        await tts.aclose()


@pytest.fixture
async def make_el(eleven: FakeElevenLabs) -> AsyncIterator[Callable[..., ElevenLabsTTS]]:
    made: list[Any] = []
    yield _factory(made, ElevenLabsTTS, api_key=EL_KEY, base_url=eleven.base_url)
    for tts in made:
        await tts.aclose()


@pytest.fixture
async def make_oa(oai: FakeOpenAISpeech) -> AsyncIterator[Callable[..., OpenAITTS]]:
    made: list[Any] = []
    yield _factory(made, OpenAITTS, api_key=OA_KEY, base_url=oai.base_url)
    for tts in made:
        await tts.aclose()


# --- construction: formats, keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "output", "fmt"),
    [
        (DeepgramAuraTTS, "ulaw_8000", ULAW8),
        (DeepgramAuraTTS, "alaw_8000", ALAW8),
        (DeepgramAuraTTS, "pcm_16000", SLIN16),
        (DeepgramAuraTTS, "pcm_24000", SLIN24),
        (ElevenLabsTTS, "ulaw_8000", ULAW8),
        (ElevenLabsTTS, "pcm_16000", SLIN16),
        (ElevenLabsTTS, "pcm_22050", AudioFormat(Encoding.PCM16, 22050)),
        (ElevenLabsTTS, "pcm_24000", SLIN24),
        (OpenAITTS, "pcm_24000", SLIN24),
    ],
)
def test_output_format_follows_the_output_option(cls: type, output: str, fmt: AudioFormat) -> None:
    tts = cls(api_key="k-0123456789", output=output)
    assert tts.output_format == fmt
    assert isinstance(tts, TTS)


@pytest.mark.parametrize(
    ("cls", "output"),
    [(ElevenLabsTTS, "mp3_44100_128"), (DeepgramAuraTTS, "pcm_22050"), (OpenAITTS, "ulaw_8000")],
)
def test_formats_that_cannot_be_played_as_is_are_refused(cls: type, output: str) -> None:
    with pytest.raises(ValueError, match=output):
        cls(api_key="k-0123456789", output=output)


def test_keys_come_from_the_vendor_variables_and_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for cls in (DeepgramAuraTTS, ElevenLabsTTS, OpenAITTS):
        with pytest.raises(MissingSecret):
            cls()
    monkeypatch.setenv("DEEPGRAM_API_KEY", DG_KEY)
    monkeypatch.setenv("ELEVENLABS_API_KEY", EL_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OA_KEY)
    for tts in (DeepgramAuraTTS(), ElevenLabsTTS(), OpenAITTS()):
        assert "***" in repr(tts)
        for key in (DG_KEY, EL_KEY, OA_KEY):
            assert key not in repr(tts) and key not in str(vars(tts).get("_key"))
    # an OpenAI-compatible local server needs no key
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "api_key" not in repr(OpenAITTS(base_url="http://127.0.0.1:8880"))


# --- Deepgram Aura ----------------------------------------------------------------------------


async def test_aura_url_header_messages_and_ulaw_audio(aura: FakeAura, make_dg: Any) -> None:
    tts = make_dg(output="ulaw_8000")
    frames = await collect(tts.synthesize("  Your order\nshipped  yesterday. "))
    sock = aura.sockets[0]
    assert sock.path_qs == "/v1/speak?model=aura-2-thalia-en&encoding=mulaw&sample_rate=8000"
    assert sock.headers["Authorization"] == f"Token {DG_KEY}"
    assert sock.messages == [{"type": "Speak", "text": SENTENCE}, {"type": "Flush"}]
    assert joined(frames) == sock.audio_sent[0] == audio_for(SENTENCE, aura.audio_bytes)
    assert whole_frames(frames, ULAW8, 160)


async def test_aura_linear16_odd_chunks_come_out_as_whole_samples(aura: FakeAura, make_dg: Any) -> None:
    tts = make_dg(voice="aura-2-andromeda-en", output="pcm_16000", speed=1.1)
    frames = await collect(tts.synthesize("Hello there."))
    sock = aura.sockets[0]
    assert sock.path_qs == (
        "/v1/speak?model=aura-2-andromeda-en&encoding=linear16&sample_rate=16000&speed=1.1"
    )
    assert joined(frames) == sock.audio_sent[0]  # chunks of 999, 1001, 640 bytes reassembled
    assert whole_frames(frames, SLIN16, 640)


async def test_aura_second_sentence_reuses_the_connection(aura: FakeAura, make_dg: Any) -> None:
    tts = make_dg()
    first = await collect(tts.synthesize("One."))
    second = await collect(tts.synthesize("Two."))
    assert len(aura.sockets) == 1
    sock = aura.sockets[0]
    assert sock.messages == [
        {"type": "Speak", "text": "One."},
        {"type": "Flush"},
        {"type": "Speak", "text": "Two."},
        {"type": "Flush"},
    ]
    assert joined(first) == sock.audio_sent[0] == audio_for("One.", aura.audio_bytes)
    assert joined(second) == sock.audio_sent[1] == audio_for("Two.", aura.audio_bytes)


async def test_aura_barge_in_sends_clear_closes_and_keeps_a_spare(aura: FakeAura, make_dg: Any) -> None:
    tts = make_dg(output="pcm_24000")
    aura.hold_after = 1  # one chunk, then the server waits
    frame = await first_then_close(tts.synthesize("A long answer the caller interrupts."))
    assert frame.format == SLIN24
    sock = aura.sockets[0]
    async with asyncio.timeout(2):
        await sock.cleared.wait()
        await sock.closed.wait()
    assert sock.types == ["Speak", "Flush", "Clear"]
    await until(lambda: tts.idle_connections == 1)  # a fresh socket for the next reply
    aura.hold_after = None
    frames = await collect(tts.synthesize("Sure."))
    assert len(aura.sockets) == 2
    assert aura.sockets[1].types == ["Speak", "Flush"]
    assert joined(frames) == audio_for("Sure.", aura.audio_bytes)


async def test_aura_reconnects_when_the_server_dropped_the_idle_socket(aura: FakeAura, make_dg: Any) -> None:
    tts = make_dg()
    aura.close_after_flushes = 1
    await collect(tts.synthesize("One."))
    await aura.sockets[0].closed.wait()
    frames = await collect(tts.synthesize("Two."))
    assert joined(frames) == audio_for("Two.", aura.audio_bytes)
    assert len(aura.sockets) == 2 and aura.sockets[1].types == ["Speak", "Flush"]


async def test_aura_warning_is_logged_and_audio_still_plays(
    aura: FakeAura, make_dg: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voxgate.providers.tts")
    aura.warning = {"description": "Text was cut at 2000 characters", "code": "TEXT_TOO_LONG"}
    frames = await collect(make_dg().synthesize("Hello."))
    assert joined(frames) == audio_for("Hello.", aura.audio_bytes)
    assert "Text was cut at 2000 characters" in caplog.text and "TEXT_TOO_LONG" in caplog.text


async def test_aura_close_mid_audio_is_a_retryable_error(aura: FakeAura, make_dg: Any) -> None:
    aura.fail_after = 2
    frames: list[AudioFrame] = []
    with pytest.raises(ProviderError, match="1011") as info:
        async with aclosing(make_dg().synthesize("Hello.")) as stream:
            async for frame in stream:
                frames.append(frame)
    assert info.value.retryable and info.value.provider == "deepgram-tts"
    assert frames  # what came before the failure was played


async def test_aura_bad_key_is_a_final_error_without_the_key(
    aura: FakeAura, make_dg: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "dg-wrong-secret-99887766"
    with pytest.raises(ProviderError, match="401") as info:
        await collect(make_dg(api_key=wrong).synthesize("Hello."))
    assert not info.value.retryable
    for key in (wrong, DG_KEY):
        assert key not in str(info.value) and key not in caplog.text


async def test_aura_rate_limit_is_retryable(aura: FakeAura, make_dg: Any) -> None:
    aura.reject_status = 429
    with pytest.raises(ProviderError, match="429") as info:
        await collect(make_dg().synthesize("Hello."))
    assert info.value.retryable


# --- ElevenLabs HTTP stream -------------------------------------------------------------------


async def test_elevenlabs_http_request_and_ulaw_audio(eleven: FakeElevenLabs, make_el: Any) -> None:
    settings = {
        "stability": 0.5,
        "similarity_boost": 0.75,
        "style": 0.0,
        "use_speaker_boost": True,
        "speed": 1.0,
    }
    tts = make_el(voice="21m00Tcm4TlvDq8ikWAM", output="ulaw_8000", voice_settings=settings)
    eleven.audio_bytes = 4001  # G.711: any byte count is whole samples
    frames = await collect(tts.synthesize(SENTENCE))
    req = eleven.requests[0]
    assert req.path == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream"
    assert req.query == {"output_format": "ulaw_8000"}
    assert req.headers["xi-api-key"] == EL_KEY
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {"text": SENTENCE, "model_id": "eleven_flash_v2_5", "voice_settings": settings}
    assert joined(frames) == eleven.audio_sent[0] == audio_for(SENTENCE, 4001)
    assert whole_frames(frames, ULAW8, 160)


async def test_elevenlabs_http_pcm_split_mid_sample_is_reassembled(
    eleven: FakeElevenLabs, make_el: Any
) -> None:
    tts = make_el(output="pcm_16000", language_code="en")
    frames = await collect(tts.synthesize("Hello there."))
    assert eleven.requests[0].query == {"output_format": "pcm_16000"}
    assert eleven.requests[0].json() == {
        "text": "Hello there.",
        "model_id": "eleven_flash_v2_5",
        "language_code": "en",
    }
    assert joined(frames) == eleven.audio_sent[0]  # written as 1, 333, 2, 1000, 7… bytes
    assert whole_frames(frames, SLIN16, 640)


async def test_elevenlabs_http_bad_key_says_why_without_the_key(
    eleven: FakeElevenLabs, make_el: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xi-wrong-secret-11223344"
    eleven.echo_key = True  # the server's message repeats the key it got
    with pytest.raises(ProviderError) as info:
        await collect(make_el(api_key=wrong).synthesize("Hello."))
    text = str(info.value)
    assert "HTTP 401" in text and "Invalid API key" in text and "invalid_api_key" in text
    assert not info.value.retryable
    for key in (wrong, EL_KEY):
        assert key not in text and key not in caplog.text


async def test_elevenlabs_http_429_is_retryable_with_the_server_message(
    eleven: FakeElevenLabs, make_el: Any
) -> None:
    eleven.errors = [(429, "Too many concurrent requests for your subscription")]
    with pytest.raises(ProviderError, match="Too many concurrent requests") as info:
        await collect(make_el().synthesize("Hello."))
    assert info.value.retryable and "HTTP 429" in str(info.value)


async def test_elevenlabs_http_stop_early_closes_the_connection(eleven: FakeElevenLabs, make_el: Any) -> None:
    eleven.hold_after = 3
    eleven.chunk_sizes = (320,)
    frame = await first_then_close(make_el().synthesize("A long answer."))
    # what played before the stop is the start of what the server sent (default pcm_16000)
    assert frame.format == SLIN16 and 0 < len(frame.data) <= 640 and len(frame.data) % 2 == 0
    assert frame.data == audio_for("A long answer.", eleven.audio_bytes)[: len(frame.data)]
    async with asyncio.timeout(2):
        await eleven.disconnected.wait()


# --- ElevenLabs stream-input WebSocket --------------------------------------------------------


async def test_elevenlabs_websocket_messages_and_audio(eleven: FakeElevenLabs, make_el: Any) -> None:
    settings = {"stability": 0.5, "similarity_boost": 0.8, "speed": 1.0}
    schedule = {"chunk_length_schedule": [120, 160, 250, 290]}
    tts = make_el(
        mode="websocket",
        voice="21m00Tcm4TlvDq8ikWAM",
        output="pcm_16000",
        voice_settings=settings,
        generation_config=schedule,
    )
    frames = await collect(tts.synthesize("Hello there."))
    sock = eleven.sockets[0]
    assert sock.path == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input"
    assert sock.query == {"model_id": "eleven_flash_v2_5", "output_format": "pcm_16000"}
    assert sock.headers["xi-api-key"] == EL_KEY
    assert sock.messages == [
        {"text": " ", "voice_settings": settings, "generation_config": schedule},
        {"text": "Hello there. ", "flush": True},
        {"text": ""},
    ]
    assert joined(frames) == bytes(sock.audio_sent) == audio_for("Hello there.", eleven.audio_bytes)
    assert whole_frames(frames, SLIN16, 640)  # base64 pieces of 333, 2, 1000, 7… bytes
    await asyncio.wait_for(sock.closed.wait(), 2)


async def test_elevenlabs_websocket_error_message_is_raised(eleven: FakeElevenLabs, make_el: Any) -> None:
    eleven.ws_error = "This request exceeds your quota of 10000 characters."
    with pytest.raises(ProviderError, match="exceeds your quota"):
        await collect(make_el(mode="websocket").synthesize("Hello."))


async def test_elevenlabs_websocket_bad_key(eleven: FakeElevenLabs, make_el: Any) -> None:
    wrong = "xi-wrong-secret-55667788"
    with pytest.raises(ProviderError, match="401") as info:
        await collect(make_el(mode="websocket", api_key=wrong).synthesize("Hello."))
    assert not info.value.retryable and wrong not in str(info.value)


async def test_elevenlabs_websocket_stop_early_closes_the_socket(
    eleven: FakeElevenLabs, make_el: Any
) -> None:
    eleven.hold_after = 1
    frame = await first_then_close(make_el(mode="websocket").synthesize("A long answer."))
    assert frame.format == SLIN16 and 0 < len(frame.data) <= 640 and len(frame.data) % 2 == 0
    assert frame.data == bytes(eleven.sockets[0].audio_sent)[: len(frame.data)]
    async with asyncio.timeout(2):
        await eleven.sockets[0].closed.wait()


# --- OpenAI /audio/speech ---------------------------------------------------------------------


async def test_openai_request_and_24k_pcm_audio(oai: FakeOpenAISpeech, make_oa: Any) -> None:
    tts = make_oa()
    frames = await collect(tts.synthesize(SENTENCE))
    req = oai.requests[0]
    assert req.path == "/v1/audio/speech"
    assert req.headers["Authorization"] == f"Bearer {OA_KEY}"
    assert req.json() == {
        "model": "gpt-4o-mini-tts",
        "voice": "alloy",
        "input": SENTENCE,
        "response_format": "pcm",
    }
    assert joined(frames) == oai.audio_sent[0] == audio_for(SENTENCE, oai.audio_bytes)
    assert whole_frames(frames, SLIN24, 960)  # written as 7, 1200, 1, 480… bytes


async def test_openai_instructions_and_speed_are_sent(oai: FakeOpenAISpeech, make_oa: Any) -> None:
    tts = make_oa(voice="coral", instructions="Speak warmly.", speed=1.25)
    await collect(tts.synthesize("Hi."))
    assert oai.requests[0].json() == {
        "model": "gpt-4o-mini-tts",
        "voice": "coral",
        "input": "Hi.",
        "response_format": "pcm",
        "instructions": "Speak warmly.",
        "speed": 1.25,
    }


async def test_openai_bad_key_without_the_key(
    oai: FakeOpenAISpeech, make_oa: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-secret-99001122"
    with pytest.raises(ProviderError) as info:
        await collect(make_oa(api_key=wrong).synthesize("Hello."))
    text = str(info.value)
    assert "HTTP 401" in text and "Incorrect API key provided" in text  # the server echoed the key
    assert not info.value.retryable
    for key in (wrong, OA_KEY):
        assert key not in text and key not in caplog.text


async def test_openai_429_and_5xx_are_retryable(oai: FakeOpenAISpeech, make_oa: Any) -> None:
    oai.errors = [(429, "Rate limit reached for requests", "requests"), (503, "Overloaded", "server_error")]
    tts = make_oa()
    for status, message in ((429, "Rate limit reached"), (503, "Overloaded")):
        with pytest.raises(ProviderError, match=message) as info:
            await collect(tts.synthesize("Hello."))
        assert info.value.retryable and f"HTTP {status}" in str(info.value)


async def test_openai_stop_early_closes_the_connection(oai: FakeOpenAISpeech, make_oa: Any) -> None:
    oai.hold_after = 2
    frame = await first_then_close(make_oa().synthesize("A long answer."))
    assert frame.format == SLIN24 and 0 < len(frame.data) <= 960 and len(frame.data) % 2 == 0
    assert frame.data == audio_for("A long answer.", oai.audio_bytes)[: len(frame.data)]
    async with asyncio.timeout(2):
        await oai.disconnected.wait()
