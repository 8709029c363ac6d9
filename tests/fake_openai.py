"""A protocol-faithful fake OpenAI-compatible server (Chat Completions, streamed over SSE), on loopback.

Written from `../shared/protocols/openai-compatible-llm.md` §1, not from our client: it records
each request as received (path, headers, raw body) and answers with a scripted reply. Replies
are built as the real servers send them (chunk objects, `data: ` lines, a blank line after each
event, `data: [DONE]` last) and can be made hostile the ways real networks are: events split
across writes at arbitrary byte positions, CRLF line endings, `:` keep-alive comments, a stall
mid-stream, a close without `[DONE]`, an error status with a JSON error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fake_http import HOST, Handler, ScriptedReplies, sse_response, write_pieces


def chunk(delta: dict[str, Any], finish_reason: str | None = None, *, model: str = "fake") -> dict[str, Any]:
    """One `chat.completion.chunk` with a single choice, as in the notes."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1736071872,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        "usage": None,
    }


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    """The extra chunk `stream_options.include_usage` adds after the finish chunk: no choices."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1736071872,
        "model": "fake",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def text_reply(
    pieces: Sequence[str], *, finish: str = "stop", usage: tuple[int, int] | None = (9, 12)
) -> list[Any]:
    """Chunks of a plain text reply: role chunk, one chunk per piece, finish chunk, usage chunk."""
    events: list[Any] = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, finish))
    if usage is not None:
        events.append(usage_chunk(*usage))
    return events


def encode_events(
    events: Sequence[Any], *, crlf: bool = False, keepalive: bool = False, done: bool = True
) -> bytes:
    """The SSE body: `data: <json>` + blank line per event (dicts are JSON-encoded, bytes/str as is)."""
    nl = "\r\n" if crlf else "\n"
    parts: list[str] = []
    if keepalive:
        parts.append(f": keep-alive{nl}{nl}")
    for event in events:
        payload = json.dumps(event, separators=(",", ":")) if isinstance(event, dict) else str(event)
        parts.append(f"data: {payload}{nl}{nl}")
        if keepalive:
            parts.append(f": OPENROUTER PROCESSING{nl}{nl}")
    if done:
        parts.append(f"data: [DONE]{nl}{nl}")
    return "".join(parts).encode()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeOpenAI(ScriptedReplies):
    """`await start()`, queue replies with `reply_*()`, point the client at `base_url`."""

    requests: list[Recorded] = field(default_factory=list)
    handlers: list[Handler] = field(default_factory=list)
    disconnects: int = 0  # streams the client hung up on while we were still writing
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        self.requests.append(
            Recorded(request.method, request.path, dict(request.headers), body, tuple(peer[:2]))
        )
        no_reply = {
            "error": {
                "message": "no scripted reply left",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        return await self.next_reply(request, no_reply)

    # -- scripted replies --

    def reply_sse(
        self,
        events: Sequence[Any],
        *,
        crlf: bool = False,
        keepalive: bool = False,
        done: bool = True,
        split: int | Sequence[int] | None = None,
        delay: float = 0.0,
        gate_after: int | None = None,
        gate: asyncio.Event | None = None,
        stall_after: int | None = None,
    ) -> None:
        """Stream `events` (then `[DONE]` unless `done=False`).

        `split` cuts the body into writes of that many bytes (events straddle writes), with
        `delay` s between writes. `gate_after=n`: after the n-th event, wait for `gate`.
        `stall_after=n`: after the n-th event, send nothing but keep-alive comments, forever.
        """

        async def handle(request: web.Request) -> web.StreamResponse:
            response = await sse_response(request)
            head = (
                events if gate_after is None and stall_after is None else events[: gate_after or stall_after]
            )
            rest = events[len(head) :]
            try:
                await write_pieces(
                    response, encode_events(head, crlf=crlf, keepalive=keepalive, done=False), split, delay
                )
                if stall_after is not None:
                    while True:  # alive at the TCP level, silent at the reply level
                        await response.write(b": keep-alive\n\n")
                        await asyncio.sleep(0.02)
                if gate is not None:
                    await gate.wait()
                await write_pieces(
                    response, encode_events(rest, crlf=crlf, keepalive=keepalive, done=done), split, delay
                )
                await response.write_eof()
            except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
                self.disconnects += 1
                self.disconnected.set()
                raise
            return response

        self.handlers.append(handle)


class RawHTTPServer:
    """A TCP server that answers any request with literal bytes, then closes (body ends at EOF)."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.received = b""
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> RawHTTPServer:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        self.received = head + await reader.readexactly(length)
        writer.write(self.response)
        await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
