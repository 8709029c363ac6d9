"""A protocol-faithful fake OpenAI Realtime server (WebSocket, GA or beta), on loopback.

Written from `../shared/protocols/openai-realtime.md`, not from our client. It checks the
`Authorization: Bearer` header (HTTP 401 with OpenAI's JSON error otherwise), speaks the beta
event names when the client sends `OpenAI-Beta: realtime=v1`, sends `session.created` first,
validates `session.update` (GA nested or beta flat, audio formats of §2) and answers with the
effective session or an `error`, and records every client event as received.

Server-side behaviour follows the notes: `response.create` while a reply runs is refused,
`response.cancel` with nothing running is an `error` echoing the client's `event_id`, a
truncate past the item's audio is an `error`. Replies are scripted (`Reply`) and streamed in the
order of §5, audio in the negotiated format; they can stall (go silent mid-reply, socket still
answering pings), close the socket with a code, or abort the TCP connection.

Not modelled: a VAD (speech events are scripted with `spoken_turn()` / `speech_started()`), so
`interrupt_response` never cancels anything by itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from fake_http import HOST, LoopbackServer

# GA server event name → beta name, where they differ (§4).
BETA_NAMES = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}

GA_FORMATS = {"audio/pcm", "audio/pcmu", "audio/pcma"}
BETA_FORMATS = {"pcm16", "g711_ulaw", "g711_alaw"}
BYTES_PER_MS = {
    "audio/pcm": 48,
    "audio/pcmu": 8,
    "audio/pcma": 8,
    "pcm16": 48,
    "g711_ulaw": 8,
    "g711_alaw": 8,
}

GA_SESSION_KEYS = {
    "type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice",
    "max_output_tokens", "truncation", "include", "prompt", "tracing", "reasoning", "parallel_tool_calls",
}  # fmt: skip
BETA_SESSION_KEYS = {
    "modalities", "instructions", "voice", "input_audio_format", "output_audio_format",
    "input_audio_transcription", "turn_detection", "tools", "tool_choice", "temperature",
    "max_response_output_tokens", "input_audio_noise_reduction",
}  # fmt: skip
CLIENT_EVENTS = {
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
    "conversation.item.create", "conversation.item.truncate", "conversation.item.delete",
    "conversation.item.retrieve", "response.create", "response.cancel",
}  # fmt: skip


class Invalid(Exception):
    """A client event the real server would answer with an `error` event."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


@dataclass
class ToolScript:
    name: str
    arguments: str  # the JSON string the model produced (may be broken on purpose)
    call_id: str = "call_1"


@dataclass
class Reply:
    """One model reply. `chunk`: audio bytes per delta (default 20 ms of the output format).

    `gate_after=n`: after the n-th audio delta (or after the tool call's arguments), wait for
    `gate` before going on. `stall_after=n`: after n deltas, fall silent for good.
    `close_after=n`: after n deltas, close with `close_code` (or drop TCP when `abort`)."""

    audio: bytes = b""
    transcript: str = ""
    tool: ToolScript | None = None
    chunk: int | None = None
    gate: asyncio.Event | None = None
    gate_after: int | None = None
    stall_after: int | None = None
    close_after: int | None = None
    close_code: int = 1011
    abort: bool = False


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def default_session(model: str, beta: bool) -> dict[str, Any]:
    """The session as `session.created` shows it before any update."""
    if beta:
        return {
            "id": "sess_fake",
            "object": "realtime.session",
            "model": model,
            "modalities": ["text", "audio"],
            "instructions": "",
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
            },
            "tools": [],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
        }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_fake",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "create_response": True,
                    "interrupt_response": True,
                    "idle_timeout_ms": None,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "truncation": "auto",
    }


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Only the fields present change (§2); a tagged object (`{"type": …}`) is replaced whole."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and "type" not in value and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class FakeRealtime(LoopbackServer):
    """`await start()`, point the client at `url`, script the server with the async helpers."""

    key: str
    ga_only: bool = False  # close beta-shaped connections with 4000 (§0, UNCONFIRMED behaviour)
    send_created: bool = True
    auto_cancel: bool = True  # answer response.cancel with response.done cancelled
    replies: list[Reply] = field(default_factory=list)  # played on each client response.create
    # Off by default. Awaited with the decoded audio of each input_audio_buffer.append, after it is
    # recorded, before the next client event is read: lets a script answer the audio itself (a
    # benchmark's turn ends when enough loud audio has arrived, say).
    on_audio: Callable[[bytes], Awaitable[None]] | None = None
    received: list[dict[str, Any]] = field(default_factory=list)  # every client event, as parsed
    sent: list[dict[str, Any]] = field(default_factory=list)  # every server event
    handshakes: list[dict[str, str]] = field(default_factory=list)  # headers of every upgrade attempt
    queries: list[dict[str, str]] = field(default_factory=list)
    audio_in: bytearray = field(default_factory=bytearray)  # decoded input_audio_buffer.append bytes
    session: dict[str, Any] = field(default_factory=dict)
    beta: bool = False
    active_response: str | None = None
    last_item: str | None = None  # the assistant item of the last reply
    item_audio_ms: dict[str, float] = field(default_factory=dict)
    calls: set[str] = field(default_factory=set)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    _ws: web.WebSocketResponse | None = None
    _request: web.Request | None = None
    _reply_task: asyncio.Task[None] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: int = 0

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/realtime"

    runner_options: ClassVar[dict[str, Any]] = {"access_log": None}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/realtime", self._handle)

    async def stop(self) -> None:
        for task in [*self._tasks, *([self._reply_task] if self._reply_task else [])]:
            task.cancel()
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(0.5):
                    await self._ws.close()
        await super().stop()

    # -- what the client sent --

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.received if event.get("type") == kind]

    async def wait_for(self, kind: str, count: int = 1, within: float = 2.0) -> dict[str, Any]:
        """The `count`-th client event of type `kind`, waiting for it to arrive."""
        async with asyncio.timeout(within):
            while len(self.of_type(kind)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of_type(kind)[count - 1]

    def errors_sent(self) -> list[dict[str, Any]]:
        return [event for event in self.sent if event["type"] == "error"]

    # -- scripting the server --

    async def emit(self, ga_type: str, **fields: Any) -> None:
        """Send a server event (GA name; renamed for a beta client), with its `event_id`."""
        assert self._ws is not None, "no client connected"
        kind = BETA_NAMES.get(ga_type, ga_type) if self.beta else ga_type
        event = {"type": kind, "event_id": self._new_id("event"), **fields}
        self.sent.append(event)
        await self._ws.send_str(json.dumps(event))

    async def error(
        self, code: str, message: str, *, param: str | None = None, event_id: str | None = None
    ) -> None:
        kind = "invalid_request_error" if code != "server_error" else "server_error"
        await self.emit(
            "error",
            error={"type": kind, "code": code, "message": message, "param": param, "event_id": event_id},
        )

    async def speech_started(self, item_id: str = "item_user_x") -> None:
        await self.emit("input_audio_buffer.speech_started", audio_start_ms=1200, item_id=item_id)

    async def spoken_turn(
        self, reply: Reply, user_transcript: str = "Where is my order?"
    ) -> asyncio.Task[None]:
        """The caller speaks (server VAD events, §5), then `reply` runs; returns the reply's task."""
        item_id = self._new_id("item")
        await self.emit("input_audio_buffer.speech_started", audio_start_ms=100, item_id=item_id)
        await self.emit("input_audio_buffer.speech_stopped", audio_end_ms=900, item_id=item_id)
        await self.emit("input_audio_buffer.committed", previous_item_id=None, item_id=item_id)
        user_item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.emit("conversation.item.added", previous_item_id=None, item=user_item)
        if not self.beta:
            await self.emit("conversation.item.done", previous_item_id=None, item=user_item)
        return self.respond(reply, user=(item_id, user_transcript))

    def respond(self, reply: Reply, user: tuple[str, str] | None = None) -> asyncio.Task[None]:
        """Start `reply` now (as if a response had been asked for)."""
        self.active_response = self._new_id("resp")
        self._reply_task = asyncio.create_task(self._run(reply, self.active_response, user))
        return self._reply_task

    async def cancel_reply(self, reason: str = "client_cancelled") -> None:
        """Stop the running reply and send `response.done` with status cancelled."""
        task, response_id = self._reply_task, self.active_response
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if response_id is not None:
            self.active_response = None
            await self.emit(
                "response.done",
                response={
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "cancelled",
                    "status_details": {"type": "cancelled", "reason": reason},
                    "output": [],
                    "usage": None,
                },
            )

    async def close(self, code: int = 1011, message: bytes = b"internal error") -> None:
        assert self._ws is not None
        await self._ws.close(code=code, message=message)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        assert self._request is not None and self._request.transport is not None
        self._request.transport.abort()

    # -- the server --

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.handshakes.append(dict(request.headers))
        self.queries.append(dict(request.query))
        presented = request.headers.get("Authorization", "")
        if presented != f"Bearer {self.key}":
            shown = presented.removeprefix("Bearer ")  # echoed back, as hostile servers may do
            return web.json_response(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {shown}.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        self._ws, self._request = ws, request
        self.beta = request.headers.get("OpenAI-Beta") == "realtime=v1"
        if self.beta and self.ga_only:
            await ws.close(code=4000, message=b"beta_api_shape_disabled")
            return ws
        self.session = default_session(request.query.get("model", "gpt-realtime"), self.beta)
        self.connected.set()
        if self.send_created:
            await self.emit("session.created", session=self.session)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_client(msg.data)
        finally:
            self.disconnected.set()
            self._changed.set()
        return ws

    async def _on_client(self, data: str) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            await self.error("invalid_json", "The message is not valid JSON.")
            return
        self.received.append(event)
        self._changed.set()
        try:
            await self._dispatch(event)
        except Invalid as exc:
            await self.error(exc.code, exc.message, param=exc.param, event_id=event.get("event_id"))

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind not in CLIENT_EVENTS:
            raise Invalid("invalid_value", f"Invalid value: {kind!r}. Supported values are: …", "type")
        if kind == "session.update":
            update = event.get("session")
            if not isinstance(update, dict):
                raise Invalid(
                    "missing_required_parameter", "Missing required parameter: 'session'.", "session"
                )
            self._check_session(update)
            self.session = merge(self.session, update)
            await self.emit("session.updated", session=self.session)
        elif kind == "input_audio_buffer.append":
            try:
                audio = base64.b64decode(event.get("audio") or "", validate=True)
            except binascii.Error:
                raise Invalid(
                    "invalid_value", "Invalid 'audio'. Expected base64-encoded audio.", "audio"
                ) from None
            self.audio_in += audio
            if self.on_audio is not None:
                await self.on_audio(audio)
        elif kind == "input_audio_buffer.commit":
            await self.emit(
                "input_audio_buffer.committed", previous_item_id=None, item_id=self._new_id("item")
            )
        elif kind == "conversation.item.create":
            await self._create_item(event.get("item") or {})
        elif kind == "conversation.item.truncate":
            await self._truncate(event)
        elif kind == "response.create":
            if self.active_response is not None:
                raise Invalid(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {self.active_response}.",
                )
            self.respond(self.replies.pop(0) if self.replies else Reply())
        elif kind == "response.cancel":
            if self.active_response is None:
                raise Invalid("response_cancel_not_active", "Cancellation failed: no active response found.")
            if event.get("response_id") not in (None, self.active_response):
                raise Invalid("invalid_value", "Invalid 'response_id'.", "response_id")
            if self.auto_cancel:
                await self.cancel_reply()

    def _check_session(self, update: dict[str, Any]) -> None:
        keys = BETA_SESSION_KEYS if self.beta else GA_SESSION_KEYS
        for key in update:
            if key not in keys:
                raise Invalid("unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}")
        if self.beta:
            for key in ("input_audio_format", "output_audio_format"):
                if key in update and update[key] not in BETA_FORMATS:
                    raise Invalid("invalid_value", f"Invalid value: {update[key]!r}.", f"session.{key}")
            return
        if update.get("type") != "realtime":
            raise Invalid(
                "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"
            )
        if "model" in update and update["model"] != self.session["model"]:
            raise Invalid(
                "invalid_value", "The model cannot be changed with session.update.", "session.model"
            )
        if update.get("output_modalities") not in (None, ["audio"], ["text"]):
            raise Invalid(
                "invalid_value",
                "output_modalities must be ['audio'] or ['text'].",
                "session.output_modalities",
            )
        for way in ("input", "output"):
            fmt = ((update.get("audio") or {}).get(way) or {}).get("format")
            if fmt is None:
                continue
            param = f"session.audio.{way}.format"
            if not isinstance(fmt, dict) or fmt.get("type") not in GA_FORMATS:
                raise Invalid("invalid_value", f"Invalid value: {fmt!r}.", param)
            if fmt["type"] == "audio/pcm" and fmt.get("rate", 24000) != 24000:
                raise Invalid(
                    "invalid_value", "Only a rate of 24000 is supported for audio/pcm.", f"{param}.rate"
                )

    def _output_format(self) -> str:
        if self.beta:
            return self.session["output_audio_format"]
        return self.session["audio"]["output"]["format"]["type"]

    async def _create_item(self, item: dict[str, Any]) -> None:
        if item.get("type") == "function_call_output":
            if not item.get("call_id") or not isinstance(item.get("output"), str):
                raise Invalid(
                    "invalid_value", "function_call_output needs call_id and a string output.", "item"
                )
        elif item.get("type") != "message":
            raise Invalid("invalid_value", f"Invalid item type {item.get('type')!r}.", "item.type")
        stored = {"id": self._new_id("item"), "object": "realtime.item", "status": "completed", **item}
        await self.emit("conversation.item.added", previous_item_id=None, item=stored)
        if not self.beta:
            await self.emit("conversation.item.done", previous_item_id=None, item=stored)

    async def _truncate(self, event: dict[str, Any]) -> None:
        item_id, end = event.get("item_id"), event.get("audio_end_ms")
        if item_id not in self.item_audio_ms:
            raise Invalid("invalid_value", f"Item {item_id!r} has no audio to truncate.", "item_id")
        if event.get("content_index") != 0:
            raise Invalid("invalid_value", "content_index must be 0.", "content_index")
        if not isinstance(end, int) or end < 0 or end > self.item_audio_ms[item_id]:
            raise Invalid(
                "invalid_value",
                f"audio_end_ms {end!r} is beyond the item's {self.item_audio_ms[item_id]:.0f} ms of audio.",
                "audio_end_ms",
            )
        await self.emit("conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end)

    async def _run(self, reply: Reply, response_id: str, user: tuple[str, str] | None) -> None:
        """One reply, in the order of §5 (tool call: §5's second sequence)."""
        await self.emit(
            "response.created",
            response={
                "id": response_id,
                "object": "realtime.response",
                "status": "in_progress",
                "status_details": None,
                "output": [],
                "usage": None,
            },
        )
        item_id = self._new_id("item")
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        if reply.tool is not None:
            output = await self._run_tool(reply, ids)
        else:
            self.last_item = item_id
            self.item_audio_ms[item_id] = 0.0
            item = {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            await self.emit("response.output_item.added", response_id=response_id, output_index=0, item=item)
            if user is not None:  # the caller's transcription arrives on its own schedule
                await self.emit(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=user[0],
                    content_index=0,
                    transcript=user[1],
                )
            part = {"type": "audio", "transcript": ""}
            await self.emit("response.content_part.added", **ids, content_index=0, part=part)
            if await self._stream_audio(reply, ids):
                return
            await self.emit("response.output_audio.done", **ids, content_index=0)
            await self.emit(
                "response.output_audio_transcript.done", **ids, content_index=0, transcript=reply.transcript
            )
            part = {"type": "audio", "transcript": reply.transcript}
            await self.emit("response.content_part.done", **ids, content_index=0, part=part)
            content = [{"type": "audio" if self.beta else "output_audio", "transcript": reply.transcript}]
            output = {**item, "status": "completed", "content": content}
            await self.emit("response.output_item.done", response_id=response_id, output_index=0, item=output)
        self.active_response = None
        await self.emit(
            "response.done",
            response={
                "id": response_id,
                "object": "realtime.response",
                "status": "completed",
                "status_details": None,
                "output": [output],
                "usage": {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10},
            },
        )

    async def _stream_audio(self, reply: Reply, ids: dict[str, Any]) -> bool:
        """The audio and transcript deltas; True when the script ended the reply early."""
        fmt = self._output_format()
        chunk = reply.chunk or 20 * BYTES_PER_MS[fmt]
        pieces = [reply.audio[i : i + chunk] for i in range(0, len(reply.audio), chunk)]
        words = [w + " " for w in reply.transcript.split(" ")] if reply.transcript else []
        for n, piece in enumerate(pieces):
            if n == reply.stall_after:
                await asyncio.Event().wait()  # silent for good; pings are still answered
            if n == reply.close_after:
                if reply.abort:
                    self.abort()
                else:
                    await self.close(reply.close_code)
                return True
            await self.emit("response.output_audio.delta", **ids, content_index=0, delta=b64(piece))
            self.item_audio_ms[ids["item_id"]] += len(piece) / BYTES_PER_MS[fmt]
            if n < len(words):
                await self.emit(
                    "response.output_audio_transcript.delta", **ids, content_index=0, delta=words[n]
                )
            if reply.gate is not None and n + 1 == reply.gate_after:
                await reply.gate.wait()
        return False

    async def _run_tool(self, reply: Reply, ids: dict[str, Any]) -> dict[str, Any]:
        assert reply.tool is not None
        tool = reply.tool
        self.calls.add(tool.call_id)
        item = {
            "id": ids["item_id"],
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": tool.call_id,
            "name": tool.name,
            "arguments": "",
        }
        await self.emit(
            "response.output_item.added", response_id=ids["response_id"], output_index=0, item=item
        )
        half = len(tool.arguments) // 2
        for piece in (tool.arguments[:half], tool.arguments[half:]):
            await self.emit(
                "response.function_call_arguments.delta", **ids, call_id=tool.call_id, delta=piece
            )
        await self.emit(
            "response.function_call_arguments.done",
            **ids,
            call_id=tool.call_id,
            name=tool.name,
            arguments=tool.arguments,
        )
        if reply.gate is not None:
            await reply.gate.wait()
        done = {**item, "status": "completed", "arguments": tool.arguments}
        await self.emit(
            "response.output_item.done", response_id=ids["response_id"], output_index=0, item=done
        )
        return done

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._ids}"
