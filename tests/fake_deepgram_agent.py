"""A protocol-faithful fake Deepgram Voice Agent (v1) over a real WebSocket on loopback.

Written from `../shared/protocols/deepgram-voice-agent.md` §1–§4, not from our client. It checks
`Authorization: Token <key>` on the upgrade (HTTP 401 otherwise), sends `Welcome`, requires
`Settings` as the first client message and validates it (audio encodings and sample rates
present and known, listen/think/speak providers present; an `Error` otherwise), answers
`SettingsApplied`, then records every client message: JSON text frames in `messages`, binary
audio in `audio`. The test drives the agent's side through the `AgentConnection`: a whole
turn (UserStartedSpeaking, ConversationText user, AgentThinking, ConversationText assistant,
AgentStartedSpeaking, binary audio in the negotiated output format, AgentAudioDone), a
client-side `FunctionCallRequest`, an `Error`, a stall (a caller's turn and then nothing), a
close mid-turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from fake_http import HOST, LoopbackServer

KEY = "dg-test-4c1e9a7b52"
PATH = "/v1/agent/converse"

INPUT_ENCODINGS = {
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus", "speex", "g729",
}  # fmt: skip
OUTPUT_ENCODINGS = {"linear16", "mulaw", "alaw", "mp3", "opus", "flac", "aac"}
CONTAINERS = {"none", "wav", "ogg"}
SAMPLE_WIDTH = {"linear16": 2, "mulaw": 1, "alaw": 1}


def settings_problems(msg: dict[str, Any]) -> list[str]:
    """What is wrong with a `Settings` message, per §2 (empty: it is fine)."""
    problems: list[str] = []
    if msg.get("type") != "Settings":
        return [f"expected Settings first, got {msg.get('type')!r}"]
    audio = msg.get("audio")
    if not isinstance(audio, dict):
        return ["audio is missing: set audio.input and audio.output encodings explicitly"]
    for side, allowed in (("input", INPUT_ENCODINGS), ("output", OUTPUT_ENCODINGS)):
        spec = audio.get(side)
        if not isinstance(spec, dict):
            problems.append(f"audio.{side} is missing")
            continue
        if spec.get("encoding") not in allowed:
            problems.append(f"audio.{side}.encoding {spec.get('encoding')!r} is not one of {sorted(allowed)}")
        if not isinstance(spec.get("sample_rate"), int) or spec["sample_rate"] <= 0:
            problems.append(f"audio.{side}.sample_rate must be a positive integer")
    container = (audio.get("output") or {}).get("container", "none")
    if container not in CONTAINERS:
        problems.append(f"audio.output.container {container!r} is not one of {sorted(CONTAINERS)}")
    agent = msg.get("agent")
    if not isinstance(agent, dict):
        return [*problems, "agent is missing"]
    for part in ("listen", "think", "speak"):
        provider = (agent.get(part) or {}).get("provider")
        if not isinstance(provider, dict) or not provider.get("type"):
            problems.append(f"agent.{part}.provider.type is missing")
    for fn in (agent.get("think") or {}).get("functions") or ():
        if not fn.get("name") or not isinstance(fn.get("parameters"), dict):
            problems.append(f"function {fn.get('name')!r} needs a name and a parameters object")
    return problems


class AgentConnection:
    """One client socket, as the agent sees it: what arrived, and buttons to make the agent talk."""

    def __init__(self, ws: web.WebSocketResponse, headers: dict[str, str]) -> None:
        self.ws = ws
        self.headers = headers
        self.settings: dict[str, Any] | None = None
        self.messages: list[dict[str, Any]] = []  # every JSON text frame after Settings, in order
        self.audio = bytearray()  # every binary frame, concatenated
        self.audio_frames = 0
        self.ready = asyncio.Event()  # SettingsApplied sent
        self.closed = asyncio.Event()
        self._changed = asyncio.Condition()

    # -- what the client sent --

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def output_encoding(self) -> tuple[str, int]:
        assert self.settings is not None
        out = self.settings["audio"]["output"]
        return out["encoding"], out["sample_rate"]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 1.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_message(self, kind: str, within: float = 1.0, count: int = 1) -> dict[str, Any]:
        """The `count`-th message of type `kind` (waiting for it)."""
        await self.wait_until(lambda: len(self.of_type(kind)) >= count, within)
        return self.of_type(kind)[count - 1]

    async def _record(self, text: str | None = None, data: bytes | None = None) -> None:
        async with self._changed:
            if text is not None:
                self.messages.append(json.loads(text))
            if data is not None:
                self.audio += data
                self.audio_frames += 1
            self._changed.notify_all()

    # -- the agent's side --

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def send_audio(self, data: bytes, chunk: int = 320) -> None:
        """Agent speech as binary frames of `chunk` bytes (raw: container none)."""
        for start in range(0, len(data), chunk):
            await self.ws.send_bytes(data[start : start + chunk])

    async def user_turn(self, user: str) -> None:
        """The caller speaks and finishes: the agent now owes a reply (send nothing more = a stall)."""
        await self.send({"type": "UserStartedSpeaking"})
        await self.send({"type": "ConversationText", "role": "user", "content": user})

    async def agent_turn(self, user: str, reply: str, audio: bytes, chunk: int = 320) -> None:
        """A whole turn in the order the real agent sends it."""
        await self.user_turn(user)
        await self.send({"type": "AgentThinking", "content": "The caller asks about an order."})
        await self.send({"type": "ConversationText", "role": "assistant", "content": reply})
        await self.send(
            {"type": "AgentStartedSpeaking", "total_latency": 0.62, "tts_latency": 0.21, "ttt_latency": 0.41}
        )
        await self.send_audio(audio, chunk)
        await self.send({"type": "AgentAudioDone"})

    async def function_call(self, functions: Sequence[dict[str, Any]]) -> None:
        """`functions`: [{id, name, arguments (a JSON string), client_side}]."""
        await self.send({"type": "FunctionCallRequest", "functions": list(functions)})

    async def error(self, description: str, code: str) -> None:
        await self.send({"type": "Error", "description": description, "code": code})

    async def close_mid_turn(self, user: str, audio: bytes, code: int = 1011) -> None:
        """The agent starts answering, sends some audio, and the socket goes away."""
        await self.user_turn(user)
        await self.send(
            {"type": "AgentStartedSpeaking", "total_latency": 0.5, "tts_latency": 0.2, "ttt_latency": 0.3}
        )
        await self.send_audio(audio)
        await self.ws.close(code=code, message=b"NET-0000")


class FakeDeepgramAgent(LoopbackServer):
    """The agent endpoint. `settings_reply`: "applied" (normal), "error" (reject with
    `settings_error`), "silent" (never answer Settings). `dg_error` adds a `dg-error` header to
    the 401 that echoes the rejected header, as a hostile server might."""

    runner_options: ClassVar[dict[str, Any]] = {"shutdown_timeout": 60.0}  # aiohttp's default

    def __init__(
        self,
        key: str = KEY,
        *,
        settings_reply: str = "applied",
        settings_error: tuple[str, str] = ("Invalid think provider.", "INVALID_SETTINGS"),
        dg_error: bool = False,
    ) -> None:
        self.key = key
        self.settings_reply = settings_reply
        self.settings_error = settings_error
        self.dg_error = dg_error
        self.connections: list[AgentConnection] = []
        self.rejected: list[dict[str, str]] = []  # headers of refused upgrades
        self._new: asyncio.Queue[AgentConnection] = asyncio.Queue()

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}{PATH}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self._handle)

    async def stop(self) -> None:
        for conn in self.connections:
            with contextlib.suppress(Exception):
                await conn.ws.close()
        await super().stop()

    async def connection(self, within: float = 1.0) -> AgentConnection:
        """The next client to connect (after its upgrade, before Settings is checked)."""
        async with asyncio.timeout(within):
            return await self._new.get()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = dict(request.headers)
        if request.headers.get("Authorization") != f"Token {self.key}":
            self.rejected.append(headers)
            extra = {}
            if self.dg_error:
                extra["dg-error"] = f"Invalid credentials: {request.headers.get('Authorization', '')}"
            return web.json_response(
                {
                    "err_code": "INVALID_AUTH",
                    "err_msg": "Invalid credentials.",
                    "request_id": str(uuid.uuid4()),
                },
                status=401,
                headers=extra,
            )
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = AgentConnection(ws, headers)
        self.connections.append(conn)
        self._new.put_nowait(conn)
        try:
            await conn.send({"type": "Welcome", "request_id": str(uuid.uuid4())})
            if await self._settings(conn):
                async for msg in ws:
                    if msg.type is WSMsgType.TEXT:
                        await conn._record(text=msg.data)
                    elif msg.type is WSMsgType.BINARY:
                        await conn._record(data=msg.data)
        finally:
            conn.closed.set()
        return ws

    async def _settings(self, conn: AgentConnection) -> bool:
        """Check the first message; True when the session goes on."""
        msg = await conn.ws.receive()
        if msg.type is WSMsgType.BINARY:
            await conn.error("Audio was sent before Settings.", "SETTINGS_REQUIRED")
            await conn.ws.close()
            return False
        if msg.type is not WSMsgType.TEXT:
            return False
        settings = json.loads(msg.data)
        problems = settings_problems(settings)
        if problems:
            await conn.error("; ".join(problems), "INVALID_SETTINGS")
            await conn.ws.close(code=1008)
            return False
        conn.settings = settings
        if self.settings_reply == "error":
            await conn.error(*self.settings_error)
            await conn.ws.close(code=1008)
            return False
        if self.settings_reply == "applied":
            await conn.send({"type": "SettingsApplied"})
            conn.ready.set()
        return True
