"""Protocol-faithful fakes of Anthropic's Messages API and Gemini's streamGenerateContent, on loopback.

Written from the wire notes, not from our clients: Anthropic's stream from
`../shared/protocols/openai-compatible-llm.md` §3 (named events, `event:` + `data:` lines, each
JSON repeating its name in `type`, `ping`s, an `error` event mid-stream, JSON error bodies
`{"type": "error", "error": {"type", "message"}}`); Gemini's from the Gemini API reference (SSE
whose every data is a whole `GenerateContentResponse`, no `[DONE]`, the last chunk carrying
`finishReason` and `usageMetadata`; errors `{"error": {"code", "message", "status"}}`).

The server records each request (path, query, headers, raw body) and answers with a scripted
reply that can be made hostile: bytes cut into writes at odd positions, a gate that holds the
reply mid-stream, a close with no proper end.
"""

# ruff: noqa: E501  (NOTES_TOOL_STREAM is the notes' stream byte for byte: its lines stay whole)
from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from fake_http import HOST, Handler, ScriptedReplies, sse_response, write_pieces

# --- Anthropic Messages (notes §3) ----------------------------------------------------------

NOTES_TOOL_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me check"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"lookup_order","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"id\\": \\"A7\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}

event: message_stop
data: {"type":"message_stop"}

"""
"""The example stream of the notes, byte for byte."""


def a_event(obj: dict[str, Any]) -> bytes:
    """One named event: `event: <type>` then `data: <json>` then a blank line."""
    return f"event: {obj['type']}\ndata: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def a_message_start(input_tokens: int = 25) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }


def a_text_block(index: int, pieces: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
    ]
    out += [
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    out.append({"type": "content_block_stop", "index": index})
    return out


def a_tool_block(index: int, call_id: str, name: str, fragments: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
        }
    ]
    out += [
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": f},
        }
        for f in fragments
    ]
    out.append({"type": "content_block_stop", "index": index})
    return out


def a_end(stop_reason: str = "end_turn", output_tokens: int = 12) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]


PING: dict[str, Any] = {"type": "ping"}


def a_text_reply(pieces: Sequence[str], *, input_tokens: int = 25, output_tokens: int = 12) -> list[bytes]:
    """A whole text reply, a ping after the start as the real API sends, as encoded events."""
    events = [a_message_start(input_tokens), *a_text_block(0, pieces)[:1], PING]
    events += a_text_block(0, pieces)[1:] + a_end("end_turn", output_tokens)
    return [a_event(e) for e in events]


def a_error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


# --- Gemini streamGenerateContent -----------------------------------------------------------


def g_event(obj: dict[str, Any]) -> bytes:
    """One SSE event holding a whole `GenerateContentResponse` (CRLF line ends)."""
    return f"data: {json.dumps(obj, separators=(',', ':'))}\r\n\r\n".encode()


def g_chunk(
    parts: Sequence[dict[str, Any]],
    *,
    finish: str | None = None,
    usage: tuple[int, int] | tuple[int, int, int] | None = None,
    response_id: str = "resp-1",
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    obj: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-x", "responseId": response_id}
    if usage:
        prompt, out, *thoughts = usage
        meta = {"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out}
        if thoughts:
            meta["thoughtsTokenCount"] = thoughts[0]
            meta["totalTokenCount"] += thoughts[0]
        obj["usageMetadata"] = meta
    return obj


def g_text_reply(pieces: Sequence[str], *, usage: tuple[int, int] = (9, 12)) -> list[bytes]:
    chunks = [g_chunk([{"text": p}]) for p in pieces]
    chunks[-1] = g_chunk([{"text": pieces[-1]}], finish="STOP", usage=usage)
    return [g_event(c) for c in chunks]


def g_error_body(code: int, status: str, message: str, reason: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        err["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    return {"error": err}


# --- the server -----------------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeLLMServer(ScriptedReplies):
    """Both APIs on one loopback port: `await start()`, queue replies, point a client at `base_url`."""

    requests: list[Recorded] = field(default_factory=list)
    handlers: list[Handler] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_post("/v1beta/models/{model_and_method}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.path, dict(request.query), CIMultiDict(request.headers), body))
        return await self.next_reply(request, a_error_body("api_error", "no scripted reply left"))

    def reply_sse(
        self,
        events: Sequence[bytes],
        *,
        split: int | Sequence[int] | None = None,
        gate_after: int | None = None,
        gate: asyncio.Event | None = None,
        keep_alive: bytes | None = None,
    ) -> None:
        """Stream `events` (each already encoded), cut into writes of `split` bytes.

        `gate_after=n`: after the n-th event wait for `gate`, then (if `keep_alive` is given) keep
        writing it every 10 ms for up to 2 s, so a client that hung up is noticed by the write.
        """

        async def handle(request: web.Request) -> web.StreamResponse:
            response = await sse_response(request)
            head = list(events if gate_after is None else events[:gate_after])
            rest = list(events[len(head) :])
            try:
                await write_pieces(response, b"".join(head), split)
                if gate is not None:
                    await gate.wait()
                    for _ in range(200 if keep_alive else 0):
                        await response.write(keep_alive or b"")
                        await asyncio.sleep(0.01)
                await write_pieces(response, b"".join(rest), split)
                await response.write_eof()
            except (ConnectionError, asyncio.CancelledError):
                self.disconnected.set()
                raise
            return response

        self.handlers.append(handle)
