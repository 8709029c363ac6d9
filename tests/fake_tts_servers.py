"""Protocol-faithful fake cloud TTS servers on loopback, written from the protocol notes (not from
voxgate's clients): Deepgram Aura `/v1/speak` (deepgram-voice-agent.md §6), ElevenLabs HTTP
stream and `stream-input` WebSocket (elevenlabs.md §1–2), OpenAI `/v1/audio/speech`.

Each records what it received (path and query, headers, bodies or messages) and answers with
audio from `audio_for(text, n)`, deterministic bytes, keeping what it sent so a test can compare
byte for byte. Audio goes out in pieces of `chunk_sizes` bytes (cycled, odd sizes on purpose: a
PCM sample may straddle two chunks). `hold_after=n` stops after n pieces until the client gives
up (or Aura's `Clear`), to test barge-in. Error replies follow the notes; where the notes mark a
shape UNCONFIRMED the fake uses the most common one and says so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from fake_http import HOST, LoopbackServer, pieces_of


def audio_for(text: str, nbytes: int) -> bytes:
    """`nbytes` of deterministic "audio" for `text` (never all one value, so slicing bugs show)."""
    out = bytearray()
    for i in itertools.count():
        if len(out) >= nbytes:
            break
        out += hashlib.sha256(f"{text}/{i}".encode()).digest()
    return bytes(out[:nbytes])


async def _until_gone(request: web.Request) -> None:
    """Hold a response mid-body until the client hangs up, then raise as a write would."""
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.005)  # aiohttp has no "client left" event to wait on
    raise ConnectionResetError("the client went away")


# --- Deepgram Aura ----------------------------------------------------------------------------


@dataclass
class AuraSocket:
    """One client connection, as the server saw it."""

    path_qs: str
    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)  # client JSON, in order
    audio_sent: list[bytes] = field(default_factory=list)  # per Flush: every audio byte sent
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    cleared: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def types(self) -> list[str]:
        return [m.get("type", "?") for m in self.messages]


class FakeAura(LoopbackServer):
    """`wss://api.deepgram.com/v1/speak`: `Authorization: Token <key>`, Speak/Flush/Clear/Close.

    Sends `Metadata` on connect (when the real server sends it is UNCONFIRMED), audio as binary
    frames after each Flush, then `{"type":"Flushed","sequence_id":n}`; `Clear` stops the audio
    in flight and is answered with `Cleared`. Knobs: `reject_status` (refuse the upgrade),
    `warning` (sent before the audio), `close_after_flushes` (server hangs up after n Flushed:
    the client finds a dead socket in its pool), `fail_after` + `fail_close` (close mid-audio).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.sockets: list[AuraSocket] = []
        self.audio_bytes = 4000
        self.chunk_sizes: Sequence[int] = (999, 1001, 640)
        self.hold_after: int | None = None
        self.reject_status: int | None = None
        self.warning: dict[str, Any] | None = None
        self.close_after_flushes: int | None = None
        self.fail_after: int | None = None
        self.fail_close: tuple[int, str] = (1011, "internal error")
        self.connected = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/speak"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/speak", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token {self.key}":
            return web.json_response(
                {"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "req-1"},
                status=401,
            )
        if self.reject_status is not None:
            return web.json_response(
                {"err_code": "TOO_MANY_REQUESTS", "err_msg": "Too many requests.", "request_id": "req-2"},
                status=self.reject_status,
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sock = AuraSocket(request.path_qs, dict(request.query), dict(request.headers))
        self.sockets.append(sock)
        self.connected.set()
        await ws.send_str(
            json.dumps(
                {
                    "type": "Metadata",
                    "request_id": f"req-{len(self.sockets)}",
                    "model_name": request.query.get("model", ""),
                    "model_version": "2025-01-01",
                    "model_uuid": "00000000-0000-0000-0000-000000000000",
                }
            )
        )
        buffered: list[str] = []
        sender: asyncio.Task[None] | None = None
        flushes = 0
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                event = json.loads(msg.data)
                sock.messages.append(event)
                kind = event.get("type")
                if kind == "Speak":
                    buffered.append(event["text"])
                elif kind == "Flush":
                    text, buffered = "".join(buffered), []
                    sender = asyncio.create_task(self._send_audio(ws, sock, text, flushes, sender))
                    flushes += 1
                elif kind == "Clear":
                    buffered = []
                    if sender is not None:
                        sender.cancel()
                        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                            await sender
                    await ws.send_str(json.dumps({"type": "Cleared", "sequence_id": max(flushes - 1, 0)}))
                    sock.cleared.set()
                elif kind == "Close":
                    if sender is not None:
                        await sender
                    await ws.close()
        finally:
            if sender is not None:
                sender.cancel()
            sock.closed.set()
        return ws

    async def _send_audio(
        self,
        ws: web.WebSocketResponse,
        sock: AuraSocket,
        text: str,
        sequence_id: int,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:  # flushes are answered in order
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        if self.warning is not None:
            await ws.send_str(json.dumps({"type": "Warning", **self.warning}))
        audio = audio_for(text, self.audio_bytes)
        sent = bytearray()
        sock.audio_sent.append(b"")
        for n, piece in enumerate(pieces_of(audio, self.chunk_sizes)):
            if self.fail_after is not None and n == self.fail_after:
                await ws.close(code=self.fail_close[0], message=self.fail_close[1].encode())
                return
            if self.hold_after is not None and n == self.hold_after:
                await asyncio.Event().wait()  # until Clear cancels us or the client leaves
            await ws.send_bytes(piece)
            sent += piece
            sock.audio_sent[-1] = bytes(sent)
            await asyncio.sleep(0.001)
        await ws.send_str(json.dumps({"type": "Flushed", "sequence_id": sequence_id}))
        if self.close_after_flushes is not None and sequence_id + 1 >= self.close_after_flushes:
            await ws.close()


# --- ElevenLabs -------------------------------------------------------------------------------


@dataclass
class ElevenRequest:
    """One HTTP stream request as received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ElevenSocket:
    """One `stream-input` connection as received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    audio_sent: bytearray = field(default_factory=bytearray)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeElevenLabs(LoopbackServer):
    """`POST /v1/text-to-speech/{voice_id}/stream` and `GET …/{voice_id}/stream-input`, `xi-api-key`.

    HTTP: 200 with the raw audio as a chunked body, written in `chunk_sizes` pieces. Scripted
    errors (`errors`, popped per request) answer with `{"detail": {"status", "message"}}` (the
    notes call the exact `detail` shape UNCONFIRMED; this is the common one). A 401 message can
    echo the key the client sent (`echo_key`), the way some servers do, to check redaction.

    WebSocket: the first message must be the initial `{"text": " ", …}`; text is buffered until
    `"flush": true` or the closing `{"text": ""}`, then sent as `{"audio": <base64>, "isFinal":
    null, "normalizedAlignment": …, "alignment": null}` messages; after the closing message comes
    `{"isFinal": true}` and the server closes. `ws_error` sends an error message (shape
    UNCONFIRMED: `{"message", "error", "code"}`) and closes with 1008 instead of audio.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.requests: list[ElevenRequest] = []
        self.sockets: list[ElevenSocket] = []
        self.audio_sent: list[bytes] = []  # HTTP: per request, every byte written
        self.audio_bytes = 4000
        self.chunk_sizes: Sequence[int] = (1, 333, 2, 1000, 7)
        self.hold_after: int | None = None
        self.errors: list[tuple[int, str]] = []
        self.echo_key = False
        self.ws_error: str | None = None
        self.disconnected = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self._http)
        app.router.add_get("/v1/text-to-speech/{voice_id}/stream-input", self._ws)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("xi-api-key")
        if given == self.key:
            return None
        message = "Invalid API key" + (f": {given}" if self.echo_key and given else "")
        return web.json_response({"detail": {"status": "invalid_api_key", "message": message}}, status=401)

    async def _http(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(ElevenRequest(request.path, dict(request.query), dict(request.headers), body))
        if (refused := self._auth_error(request)) is not None:
            return refused
        if self.errors:
            status, message = self.errors.pop(0)
            kind = {429: "too_many_concurrent_requests", 422: "invalid_request"}.get(status, "error")
            return web.json_response({"detail": {"status": kind, "message": message}}, status=status)
        text = json.loads(body)["text"]
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        sent = bytearray()
        self.audio_sent.append(b"")
        try:
            for n, piece in enumerate(pieces_of(audio_for(text, self.audio_bytes), self.chunk_sizes)):
                if self.hold_after is not None and n == self.hold_after:
                    await _until_gone(request)
                await response.write(piece)
                sent += piece
                self.audio_sent[-1] = bytes(sent)
                await asyncio.sleep(0.001)  # each piece its own HTTP chunk / TCP segment
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._auth_error(request)) is not None:
            return refused
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sock = ElevenSocket(request.path, dict(request.query), dict(request.headers))
        self.sockets.append(sock)
        buffered: list[str] = []
        sender: asyncio.Task[None] | None = None
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                event = json.loads(msg.data)
                sock.messages.append(event)
                if len(sock.messages) == 1:
                    if event.get("text") != " ":
                        await ws.send_str(json.dumps({"message": "the first message must be a space"}))
                        await ws.close(code=1008, message=b"bad initial message")
                        break
                    if self.ws_error is not None:
                        await ws.send_str(
                            json.dumps({"message": self.ws_error, "error": "quota_exceeded", "code": 1008})
                        )
                        await ws.close(code=1008, message=b"quota_exceeded")
                        break
                    continue
                text = event.get("text", "")
                if text:
                    buffered.append(text)
                if event.get("flush") or text == "":
                    # sent from a task, so this loop keeps reading (and sees the client leave)
                    sender = asyncio.create_task(
                        self._ws_audio(ws, sock, "".join(buffered).strip(), text == "", sender)
                    )
                    buffered = []
        finally:
            if sender is not None:
                sender.cancel()
            sock.closed.set()
        return ws

    async def _ws_audio(
        self,
        ws: web.WebSocketResponse,
        sock: ElevenSocket,
        text: str,
        final: bool,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            await previous
        sizes = self.chunk_sizes[1:] or (333,)
        for n, piece in enumerate(pieces_of(audio_for(text, self.audio_bytes), sizes) if text else ()):
            if self.hold_after is not None and n == self.hold_after:
                await asyncio.Event().wait()  # until the client leaves (the task is cancelled)
            alignment = {"charStartTimesMs": [0], "charDurationsMs": [80], "chars": [text[0]]}
            await ws.send_str(
                json.dumps(
                    {
                        "audio": base64.b64encode(piece).decode(),
                        "isFinal": None,
                        "normalizedAlignment": alignment if n == 0 else None,
                        "alignment": None,
                    }
                )
            )
            sock.audio_sent += piece
            await asyncio.sleep(0.001)
        if final:
            await ws.send_str(json.dumps({"isFinal": True}))
            await ws.close()


# --- OpenAI /audio/speech ---------------------------------------------------------------------


class FakeOpenAISpeech(LoopbackServer):
    """`POST /v1/audio/speech` with `Authorization: Bearer <key>`: 200 with raw 24 kHz pcm16
    chunked (for `response_format` "pcm"), or an `{"error": {message, type, param, code}}` body."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.requests: list[ElevenRequest] = []
        self.audio_sent: list[bytes] = []
        self.audio_bytes = 4800
        self.chunk_sizes: Sequence[int] = (7, 1200, 1, 480)
        self.hold_after: int | None = None
        self.errors: list[tuple[int, str, str]] = []  # (status, message, type)
        self.disconnected = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/audio/speech", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(ElevenRequest(request.path, dict(request.query), dict(request.headers), body))
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.key}":
            given = auth.removeprefix("Bearer ")
            return web.json_response(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {given}.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        if self.errors:
            status, message, kind = self.errors.pop(0)
            return web.json_response(
                {"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status
            )
        request_body = json.loads(body)
        if request_body.get("response_format") != "pcm":
            return web.json_response(
                {"error": {"message": "this fake only speaks pcm", "type": "invalid_request_error"}},
                status=400,
            )
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        sent = bytearray()
        self.audio_sent.append(b"")
        try:
            for n, piece in enumerate(
                pieces_of(audio_for(request_body["input"], self.audio_bytes), self.chunk_sizes)
            ):
                if self.hold_after is not None and n == self.hold_after:
                    await _until_gone(request)
                await response.write(piece)
                sent += piece
                self.audio_sent[-1] = bytes(sent)
                await asyncio.sleep(0.001)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response
