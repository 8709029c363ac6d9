"""A protocol-faithful fake of Deepgram's streaming STT WebSocket (`/v1/listen`), on loopback.

Written from `../shared/protocols/deepgram-voice-agent.md` §5, not from our client. It checks the
`Authorization: Token <key>` header (401 with a `dg-error` header otherwise, as Deepgram answers
a refused upgrade), checks that raw audio came with `encoding` + `sample_rate` (400 otherwise),
and records each connection as received: the query parameters in order, the headers, every
binary frame and every text message. It answers from a script:

- `on_audio[n]`: messages sent right after the n-th binary frame (0-based) arrives: `Results`
  (interim, `is_final`, `speech_final`), `SpeechStarted`, `UtteranceEnd`, built by the helpers;
- `on_finalize`: messages sent on `{"type":"Finalize"}` (results with `from_finalize: true`);
- `on_close_stream`: messages sent on `{"type":"CloseStream"}`, then `Metadata`, then a normal
  close (1000);
- `close_after_audio=n`: after the n-th frame, close with `close_code`/`close_reason` (1011
  `NET-0000`, 1008 `DATA-0000`);
- `reject=(status, body)`: refuse every upgrade with that status and `dg-error` body.

`{"type":"KeepAlive"}` is accepted (and recorded) and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from fake_http import HOST, LoopbackServer

RAW_ENCODINGS = {"linear16", "linear32", "mulaw", "alaw", "amr-nb", "amr-wb", "opus", "speex", "g729", "flac"}

# -- server messages, shaped as in §5 -----------------------------------------------------


def results(
    transcript: str,
    *,
    is_final: bool = False,
    speech_final: bool = False,
    from_finalize: bool = False,
    confidence: float = 0.98,
    start: float = 0.0,
    duration: float = 1.0,
) -> dict[str, Any]:
    words = [
        {
            "word": w.lower().strip(".,?!"),
            "start": start,
            "end": start + duration,
            "confidence": confidence,
            "punctuated_word": w,
        }
        for w in transcript.split()
    ]
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": duration,
        "start": start,
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": transcript, "confidence": confidence, "words": words}]},
        "metadata": {
            "request_id": "fake-request",
            "model_uuid": "fake-model",
            "model_info": {"name": "nova-3", "version": "fake", "arch": "fake"},
        },
    }


def speech_started(timestamp: float = 0.0) -> dict[str, Any]:
    return {"type": "SpeechStarted", "channel": [0, 1], "timestamp": timestamp}


def utterance_end(last_word_end: float = 1.0) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end}


def metadata(duration: float) -> dict[str, Any]:
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": "fake-request",
        "sha256": "0" * 64,
        "created": "2026-01-01T00:00:00.000Z",
        "duration": duration,
        "channels": 1,
    }


def dg_error(code: str, message: str) -> str:
    """A Deepgram error body, as put in the `dg-error` header of a refused upgrade."""
    return json.dumps({"err_code": code, "err_msg": message, "request_id": "fake-request"})


# -- the server -------------------------------------------------------------------------------


@dataclass
class Connection:
    """One accepted (or refused) upgrade, as received."""

    query: list[tuple[str, str]]
    headers: dict[str, str]
    audio: list[bytes] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # "audio", or a text message's type, in arrival order
    text_times: list[tuple[float, str]] = field(default_factory=list)
    client_closed: bool = False

    def count(self, kind: str) -> int:
        return self.order.count(kind)


@dataclass
class FakeDeepgramListen(LoopbackServer):
    """`await start()`, set the script fields, point `DeepgramSTT(url=fake.url, api_key=fake.api_key)`."""

    api_key: str = "fake-deepgram-key-0001"
    on_audio: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    on_finalize: list[dict[str, Any]] = field(default_factory=list)
    on_close_stream: list[dict[str, Any]] = field(default_factory=list)
    close_after_audio: int | None = None
    close_code: int = 1011
    close_reason: str = "NET-0000"
    reject: tuple[int, str] | None = None
    echo_key_in_error: bool = False  # a hostile 401 that repeats the key it was given
    connections: list[Connection] = field(default_factory=list)
    refused: list[Connection] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set on every received message

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/listen"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self._handle)

    async def wait_for(self, predicate: Any, within: float = 2.0) -> None:
        """Until `predicate()` holds (checked on every message received)."""
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def _refuse(self, conn: Connection, status: int, body: str) -> web.Response:
        self.refused.append(conn)
        return web.Response(
            status=status,
            text=body,
            content_type="application/json",
            headers={"dg-error": body, "dg-request-id": "fake-request"},
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        conn = Connection(query=list(request.query.items()), headers=dict(request.headers))
        auth = request.headers.get("Authorization", "")
        if self.reject is not None:
            return self._refuse(conn, *self.reject)
        if auth != f"Token {self.api_key}":
            message = "Invalid credentials."
            if self.echo_key_in_error:
                message += f" You sent {auth!r}."
            return self._refuse(conn, 401, dg_error("INVALID_AUTH", message))
        query = dict(request.query)
        encoding = query.get("encoding")
        if encoding is not None and (encoding not in RAW_ENCODINGS or "sample_rate" not in query):
            return self._refuse(
                conn, 400, dg_error("Bad Request", "Raw audio needs a known encoding and a sample_rate.")
            )
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(conn)
        self.changed.set()
        frames = 0
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                conn.audio.append(msg.data)
                conn.order.append("audio")
                self.changed.set()
                for reply in self.on_audio.get(frames, ()):
                    await ws.send_str(json.dumps(reply))
                frames += 1
                if self.close_after_audio is not None and frames >= self.close_after_audio:
                    await ws.close(code=self.close_code, message=self.close_reason.encode())
                    break
            elif msg.type is WSMsgType.TEXT:
                obj = json.loads(msg.data)
                conn.texts.append(obj)
                conn.order.append(obj.get("type", "?"))
                conn.text_times.append((time.monotonic(), obj.get("type", "?")))
                self.changed.set()
                if obj.get("type") == "Finalize":
                    for reply in self.on_finalize:
                        await ws.send_str(json.dumps(reply))
                elif obj.get("type") == "CloseStream":
                    for reply in self.on_close_stream:
                        await ws.send_str(json.dumps(reply))
                    seconds = sum(len(a) for a in conn.audio) / _bytes_per_second(query)
                    await ws.send_str(json.dumps(metadata(round(seconds, 3))))
                    await ws.close(code=1000)
                    break
        else:
            conn.client_closed = True
        self.changed.set()
        return ws


def _bytes_per_second(query: dict[str, str]) -> float:
    width = 2 if query.get("encoding", "linear16") == "linear16" else 1
    return int(query.get("sample_rate", "16000")) * width
