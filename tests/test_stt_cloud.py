"""Cloud STT: Deepgram streaming (`/v1/listen` WebSocket) and OpenAI `/audio/transcriptions`.

Both run against loopback fakes written from the protocol notes: `fake_deepgram_listen.py`
(§5 of the Deepgram notes), and here a transcription server that parses the multipart body by
hand and checks the WAV header against literal bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from fake_deepgram_listen import (
    FakeDeepgramListen,
    dg_error,
    results,
    speech_started,
    utterance_end,
)
from voxgate.audio.format import SLIN8, SLIN16, ULAW8, AudioFrame
from voxgate.providers import STT, BatchSTT, BatchSTTAdapter, ProviderError, SpeechEvent, create
from voxgate.providers.batch_stt import transcribe_utterance
from voxgate.providers.secrets import MissingSecret
from voxgate.providers.stt.deepgram import DeepgramSTT
from voxgate.providers.stt.openai import OpenAITranscribeSTT

HOST = "127.0.0.1"
ULAW_20MS = b"\xff" * 160  # 20 ms of μ-law 8 kHz silence
SLIN16_20MS = bytes(640)

# -- Deepgram ----------------------------------------------------------------------------------


@pytest.fixture
async def deepgram() -> AsyncIterator[FakeDeepgramListen]:
    fake = await FakeDeepgramListen().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def make_stt(deepgram: FakeDeepgramListen) -> AsyncIterator[Callable[..., DeepgramSTT]]:
    made: list[DeepgramSTT] = []

    def make(**options: Any) -> DeepgramSTT:
        options.setdefault("api_key", deepgram.api_key)
        stt = DeepgramSTT(url=deepgram.url, **options)
        made.append(stt)
        return stt

    yield make
    for stt in made:
        await stt.aclose()


async def collect(stream: Any, within: float = 2.0) -> list[SpeechEvent]:
    async with asyncio.timeout(within):
        return [event async for event in stream]


async def test_telephony_mulaw_8k_is_asked_for_as_is(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    stt = make_stt(encoding="mulaw", keyterms=["Voxgate", "Asterisk"])
    assert isinstance(stt, STT)
    assert stt.input_format == ULAW8  # the phone line's own format: nothing converted
    stream = stt.stream()
    stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    stream.end_input()
    assert await collect(stream) == []
    [conn] = deepgram.connections
    assert conn.query == [
        ("model", "nova-3"),
        ("language", "en"),
        ("encoding", "mulaw"),
        ("sample_rate", "8000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", "300"),
        ("utterance_end_ms", "1000"),
        ("smart_format", "true"),
        ("keyterm", "Voxgate"),
        ("keyterm", "Asterisk"),
    ]
    assert conn.headers["Authorization"] == "Token fake-deepgram-key-0001"
    assert conn.audio == [ULAW_20MS]  # the μ-law bytes themselves, as a binary frame
    assert conn.order == ["audio", "Finalize", "CloseStream"]


async def test_linear16_16k_query_and_options(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    stt = make_stt(
        interim_results=False,
        endpointing=False,
        smart_format=False,
        model="nova-2",
        language="en-US",
        extra_params={"numerals": "true"},
    )
    assert stt.input_format == SLIN16
    stream = stt.stream()
    stream.push_audio(AudioFrame(SLIN16_20MS, SLIN16))
    stream.end_input()
    await collect(stream)
    assert deepgram.connections[0].query == [
        ("model", "nova-2"),
        ("language", "en-US"),
        ("encoding", "linear16"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("interim_results", "false"),
        ("endpointing", "false"),  # no utterance_end_ms: it needs interim results
        ("smart_format", "false"),
        ("numerals", "true"),
    ]
    assert make_stt(encoding="alaw").input_format.sample_rate == 8000
    assert make_stt(encoding="linear16", sample_rate=8000).input_format == SLIN8


async def test_streamed_utterance_interims_then_one_endpointed_final(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    deepgram.on_audio = {
        0: [speech_started(0.1)],
        1: [results("yes", confidence=0.6)],
        2: [results("yes please", is_final=True, confidence=0.9)],
        3: [results("send", confidence=0.5)],
        4: [results("send the bill.", is_final=True, speech_final=True, confidence=0.8), utterance_end(1.2)],
    }
    stream = make_stt(encoding="mulaw").stream()
    events: list[SpeechEvent] = []

    async def read() -> None:
        events.extend(await collect(stream))

    reader = asyncio.create_task(read())
    for _ in range(5):
        stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    await deepgram.wait_for(lambda: deepgram.connections and len(deepgram.connections[0].audio) == 5)
    stream.end_input()  # the fake answers in order: the last frame's replies come before Metadata
    await asyncio.wait_for(reader, 2.0)
    assert events == [
        SpeechEvent("interim", "yes", 0.6),
        SpeechEvent("interim", "yes please", 0.9),  # the fixed prefix
        SpeechEvent("interim", "yes please send", 0.5),  # prefix + the current span's hypothesis
        SpeechEvent("final", "yes please send the bill.", 0.8, is_endpoint=True),
    ]  # UtteranceEnd after speech_final adds nothing
    conn = deepgram.connections[0]
    assert conn.order == ["audio"] * 5 + ["Finalize", "CloseStream"]
    assert conn.texts[-2:] == [{"type": "Finalize"}, {"type": "CloseStream"}]


async def test_utterance_end_and_finalize_close_utterances(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    """No speech_final: UtteranceEnd ends the first utterance; spans that `Finalize` fixed come
    out as a last endpointed final when the stream ends (after Metadata)."""
    deepgram.on_audio = {
        0: [results("I need", is_final=True), results("", is_final=True)],
        1: [results("a taxi", is_final=True), utterance_end(2.0)],
    }
    deepgram.on_finalize = [results("to the airport", is_final=True, from_finalize=True)]
    stream = make_stt(encoding="mulaw").stream()
    stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    await deepgram.wait_for(lambda: deepgram.connections and len(deepgram.connections[0].audio) == 2)
    stream.end_input()
    finals = [e for e in await collect(stream) if e.kind == "final"]
    assert finals == [
        SpeechEvent("final", "I need a taxi", 0.98, is_endpoint=True),
        SpeechEvent("final", "to the airport", 0.98, is_endpoint=True),
    ]


async def test_transcribe_utterance_through_deepgram(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    """The runner's path: a whole utterance (pcm16 8 kHz) converted to μ-law, sent in chunks of at
    most 250 ms, then Finalize/CloseStream; the finals joined once each."""
    deepgram.on_audio = {
        0: [results("book a", is_final=False), results("book a table", is_final=True, speech_final=True)],
        3: [results("for two", is_final=True)],
    }
    deepgram.on_finalize = [results("tonight", is_final=True, from_finalize=True)]
    pcm = bytes(16000)  # 1 s of pcm16 8 kHz
    text = await transcribe_utterance(make_stt(encoding="mulaw"), pcm, SLIN8, timeout_s=3.0)
    assert text == "book a table for two tonight"
    conn = deepgram.connections[0]
    assert [len(a) for a in conn.audio] == [2000, 2000, 2000, 2000]  # 8000 μ-law bytes in 250 ms chunks
    assert b"".join(conn.audio) == b"\xff" * 8000  # G.711 μ-law of a zero sample is 0xff
    assert conn.order[-2:] == ["Finalize", "CloseStream"]


async def test_keepalive_when_idle(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    stream = make_stt(encoding="mulaw", keepalive_interval_s=0.05).stream()
    stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    await deepgram.wait_for(lambda: deepgram.connections and deepgram.connections[0].count("KeepAlive") >= 3)
    conn = deepgram.connections[0]
    assert conn.order[:4] == ["audio", "KeepAlive", "KeepAlive", "KeepAlive"]
    assert {"type": "KeepAlive"} in conn.texts  # a text frame, as Deepgram requires
    stream.end_input()
    assert await collect(stream) == []
    assert conn.order[-2:] == ["Finalize", "CloseStream"]


async def test_no_keepalive_while_audio_flows(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    stream = make_stt(encoding="mulaw", keepalive_interval_s=0.5).stream()
    for _ in range(10):
        stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
        await asyncio.sleep(0.02)
    stream.end_input()
    await collect(stream)
    assert deepgram.connections[0].count("KeepAlive") == 0


async def test_refused_key_is_a_non_retryable_error_without_the_key(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    deepgram.echo_key_in_error = True  # hostile: the error body repeats what it was sent
    key = "dg-wrong-key-7f3a9c2e51"
    stt = make_stt(api_key=key, encoding="mulaw")
    stream = stt.stream()
    stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    with pytest.raises(ProviderError) as info:
        await collect(stream)
    err = info.value
    assert err.provider == "deepgram"
    assert not err.retryable
    assert "HTTP 401: Invalid credentials. You sent 'Token ***'. (INVALID_AUTH)" in err.message
    assert "check the API key" in err.message and "[request fake-request]" in err.message
    shown = " ".join([str(err), repr(err), "".join(traceback.format_exception(err)), caplog.text, repr(stt)])
    assert key not in shown
    assert deepgram.refused[0].headers["Authorization"] == f"Token {key}"
    await stream.aclose()


@pytest.mark.parametrize(
    ("status", "body", "text", "retryable"),
    [
        (
            400,
            dg_error("Bad Request", "No such model/language/tier combination found."),
            "check the options",
            False,
        ),
        (429, dg_error("TOO_MANY_REQUESTS", "Too many requests."), "Too many requests.", True),
        (503, dg_error("SERVICE_UNAVAILABLE", "Service unavailable."), "Service unavailable.", True),
    ],
)
async def test_refused_upgrade_carries_the_server_message(
    deepgram: FakeDeepgramListen,
    make_stt: Callable[..., DeepgramSTT],
    status: int,
    body: str,
    text: str,
    retryable: bool,
) -> None:
    deepgram.reject = (status, body)
    stream = make_stt().stream()
    stream.push_audio(AudioFrame(SLIN16_20MS, SLIN16))
    with pytest.raises(ProviderError) as info:
        await collect(stream)
    assert f"HTTP {status}" in info.value.message and text in info.value.message
    assert info.value.retryable is retryable
    assert json.loads(body)["err_msg"] in info.value.message


@pytest.mark.parametrize(("code", "reason"), [(1011, "NET-0000"), (1008, "DATA-0000")])
async def test_close_mid_stream_is_a_retryable_error(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT], code: int, reason: str
) -> None:
    deepgram.on_audio = {0: [results("hel")]}
    deepgram.close_after_audio = 2
    deepgram.close_code, deepgram.close_reason = code, reason
    stream = make_stt(encoding="mulaw").stream()
    events: list[SpeechEvent] = []
    for _ in range(3):
        stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    with pytest.raises(ProviderError) as info:
        async with asyncio.timeout(2.0):
            async for event in stream:
                events.append(event)
    assert events == [SpeechEvent("interim", "hel", 0.98)]
    assert info.value.retryable
    assert f"code {code} ({reason})" in info.value.message
    await stream.aclose()
    await stream.aclose()


async def test_wrong_audio_is_refused(make_stt: Callable[..., DeepgramSTT]) -> None:
    stream = make_stt(encoding="mulaw").stream()
    with pytest.raises(ValueError, match=r"needs ulaw@8000 audio, got a pcm16@8000 frame"):
        stream.push_audio(AudioFrame(bytes(320), SLIN8))
    linear = make_stt().stream()
    with pytest.raises(ValueError, match="not a whole number"):
        linear.push_audio(AudioFrame(bytes(641), SLIN16))
    linear.end_input()
    with pytest.raises(RuntimeError, match="after end_input"):
        linear.push_audio(AudioFrame(SLIN16_20MS, SLIN16))
    await stream.aclose()
    await linear.aclose()


async def test_no_audio_no_connection_and_aclose_is_idempotent(
    deepgram: FakeDeepgramListen, make_stt: Callable[..., DeepgramSTT]
) -> None:
    stt = make_stt(encoding="mulaw")
    empty = stt.stream()
    empty.end_input()
    assert await collect(empty) == []
    assert deepgram.connections == []  # nothing was said: nothing to pay for

    stream = stt.stream()
    stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))
    reader = asyncio.create_task(collect(stream))
    await deepgram.wait_for(lambda: bool(deepgram.connections) and bool(deepgram.connections[0].audio))
    await stream.aclose()  # abandoned mid-utterance: the reader ends quietly
    assert await asyncio.wait_for(reader, 2.0) == []
    await stream.aclose()
    stream.push_audio(AudioFrame(ULAW_20MS, ULAW8))  # after aclose: dropped, no error
    await deepgram.wait_for(lambda: deepgram.connections[0].client_closed)


async def test_key_from_the_environment(
    deepgram: FakeDeepgramListen, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(MissingSecret, match="DEEPGRAM_API_KEY"):
        DeepgramSTT()
    monkeypatch.setenv("DEEPGRAM_API_KEY", deepgram.api_key)
    stt = create("stt", "voxgate.providers.stt.deepgram:DeepgramSTT", url=deepgram.url, encoding="mulaw")
    assert isinstance(stt, DeepgramSTT) and stt.name == "deepgram"
    assert deepgram.api_key not in repr(stt)
    deepgram.on_finalize = [results("hi", is_final=True, from_finalize=True)]
    assert await transcribe_utterance(stt, ULAW_20MS, ULAW8, timeout_s=2.0) == "hi"
    await stt.aclose()


# -- OpenAI transcription ----------------------------------------------------------------------


@dataclass
class Part:
    headers: dict[str, str]
    name: str
    filename: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """multipart/form-data (RFC 7578) taken apart by hand: boundary lines, part headers, CRLFs."""
    match = re.fullmatch(r'multipart/form-data;\s*boundary="?([^";]+)"?', content_type)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    chunks = body.split(delimiter)
    assert chunks[0] == b"" and chunks[-1] in (b"--\r\n", b"--"), (chunks[0][:40], chunks[-1][:40])
    parts: dict[str, Part] = {}
    for chunk in chunks[1:-1]:
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        assert sep, chunk[:80]
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        headers = {k.lower(): v for k, v in headers.items()}
        disposition = headers["content-disposition"]
        assert disposition.startswith("form-data;"), disposition
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        assert name is not None
        parts[name.group(1)] = Part(headers, name.group(1), filename.group(1) if filename else None, data)
    return parts


@dataclass
class FakeTranscriptions:
    """`POST /v1/audio/transcriptions` on loopback: records each request, answers from a script."""

    replies: list[tuple[int, Any]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], dict[str, Part]]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    async def start(self) -> FakeTranscriptions:
        app = web.Application()
        app.router.add_post("/v1/audio/transcriptions", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        parts = parse_multipart(request.headers["Content-Type"], body)
        self.requests.append((dict(request.headers), parts))
        status, answer = self.replies.pop(0) if self.replies else (200, {"text": ""})
        return web.json_response(answer, status=status)


@pytest.fixture
async def transcriptions() -> AsyncIterator[FakeTranscriptions]:
    fake = await FakeTranscriptions().start()
    yield fake
    await fake.stop()


def wav_header_16k(data_len: int) -> bytes:
    """The 44 bytes a 16 kHz mono 16-bit PCM WAV starts with, written out field by field."""
    return (
        b"RIFF" + (36 + data_len).to_bytes(4, "little") + b"WAVE"
        + b"fmt " + b"\x10\x00\x00\x00"  # fmt chunk: 16 bytes
        + b"\x01\x00"  # PCM
        + b"\x01\x00"  # mono
        + b"\x80\x3e\x00\x00"  # 16000 Hz
        + b"\x00\x7d\x00\x00"  # 32000 bytes/s
        + b"\x02\x00"  # block align 2
        + b"\x10\x00"  # 16 bits
        + b"data" + data_len.to_bytes(4, "little")
    )  # fmt: skip


async def test_openai_posts_a_wav_form_and_reads_text(transcriptions: FakeTranscriptions) -> None:
    key = "sk-test-0123456789abcdef"
    stt = OpenAITranscribeSTT(base_url=transcriptions.base_url, api_key=key, prompt="Voxgate, Asterisk")
    assert isinstance(stt, BatchSTT) and stt.name == "openai-stt" and stt.input_format == SLIN16
    transcriptions.replies = [
        (200, {"text": " Hello, Voxgate. ", "usage": {"type": "duration", "seconds": 1}})
    ]
    pcm = bytes(range(256)) * 62 + bytes(128)  # 16000 bytes: 0.5 s
    try:
        assert await stt.transcribe(pcm, SLIN16) == "Hello, Voxgate."
    finally:
        await stt.aclose()
    headers, parts = transcriptions.requests[0]
    assert headers["Authorization"] == f"Bearer {key}"
    assert sorted(parts) == ["file", "language", "model", "prompt", "response_format"]
    assert parts["model"].data == b"gpt-4o-mini-transcribe"
    assert parts["language"].data == b"en"
    assert parts["prompt"].data == b"Voxgate, Asterisk"
    assert parts["response_format"].data == b"json"
    wav = parts["file"]
    assert wav.filename == "audio.wav" and wav.headers["content-type"] == "audio/wav"
    assert wav.data[:44] == (
        b"RIFF\xa4\x3e\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
        b"\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x80\x3e\x00\x00"
    )
    assert wav.data[:44] == wav_header_16k(16000)
    assert wav.data[44:] == pcm
    assert key not in repr(stt)


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (
            401,
            {
                "message": "Incorrect API key provided: sk-test-***cdef.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            },
            False,
        ),
        (
            400,
            {"message": "Audio file might be corrupted or unsupported", "type": "invalid_request_error"},
            False,
        ),
        (
            429,
            {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"},
            True,
        ),
        (500, {"message": "The server had an error processing your request.", "type": "server_error"}, True),
    ],
)
async def test_openai_error_statuses_carry_the_server_message(
    transcriptions: FakeTranscriptions, status: int, error: dict[str, Any], retryable: bool
) -> None:
    key = "sk-test-0123456789abcdef"
    stt = OpenAITranscribeSTT(base_url=transcriptions.base_url, api_key=key)
    transcriptions.replies = [(status, {"error": {**error, "param": None}})]
    try:
        with pytest.raises(ProviderError) as info:
            await stt.transcribe(bytes(3200), SLIN16)
    finally:
        await stt.aclose()
    err = info.value
    assert err.provider == "openai-stt" and err.retryable is retryable
    assert f"HTTP {status}" in err.message and error["message"] in err.message
    assert key not in "".join(traceback.format_exception(err))


async def test_openai_through_the_batch_adapter(
    transcriptions: FakeTranscriptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local OpenAI-compatible server: no key needed (OpenAI's own is not sent to it); 8 kHz
    audio resampled to 16 kHz first."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-for-openai-only-0123456789")
    stt = create(
        "stt",
        "voxgate.providers.stt.openai:OpenAITranscribeSTT",
        base_url=f"http://{HOST}:{transcriptions.port}",  # bare host: /v1 is added
        model="whisper-1",
        language=None,
    )
    assert isinstance(stt, BatchSTTAdapter) and stt.input_format == SLIN16
    transcriptions.replies = [(200, {"text": "transfer me to billing"})]
    try:
        text = await transcribe_utterance(stt, bytes(8000), SLIN8, timeout_s=3.0)  # 0.5 s at 8 kHz
    finally:
        await stt._stt.aclose()  # type: ignore[attr-defined]
    assert text == "transfer me to billing"
    headers, parts = transcriptions.requests[0]
    assert "Authorization" not in headers
    assert "language" not in parts and parts["model"].data == b"whisper-1"
    assert parts["file"].data[:44] == wav_header_16k(16000)  # 0.5 s at 16 kHz


async def test_openai_refuses_wrong_audio_and_needs_a_key_for_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingSecret, match="OPENAI_API_KEY"):
        OpenAITranscribeSTT()
    stt = OpenAITranscribeSTT(api_key="sk-unused-0123456789")
    with pytest.raises(ValueError, match="needs pcm16@16000 audio, got pcm16@8000"):
        await stt.transcribe(bytes(320), SLIN8)
    with pytest.raises(ValueError, match="whole number"):
        await stt.transcribe(bytes(3), SLIN16)
    assert await stt.transcribe(b"", SLIN16) == ""  # nothing said: no request


async def test_unreachable_servers_are_retryable_errors() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    dg = DeepgramSTT(url=f"ws://{HOST}:{port}/v1/listen", api_key="dg-key-0123456789")
    stream = dg.stream()
    stream.push_audio(AudioFrame(SLIN16_20MS, SLIN16))
    with pytest.raises(ProviderError, match="cannot connect") as info:
        await collect(stream)
    assert info.value.retryable and "dg-key-0123456789" not in str(info.value)
    await dg.aclose()
    oa = OpenAITranscribeSTT(base_url=f"http://{HOST}:{port}/v1")
    with pytest.raises(ProviderError, match="failed") as info:
        await oa.transcribe(bytes(320), SLIN16)
    assert info.value.retryable
    await oa.aclose()
