"""Deepgram Voice Agent (v1): one speech-to-speech WebSocket per call.

Wire format: `../shared/protocols/deepgram-voice-agent.md` §1–§4. `start()` connects to
`wss://agent.deepgram.com/v1/agent/converse` with `Authorization: Token <key>`, waits for
`Welcome`, sends one `Settings` and waits for `SettingsApplied`. Then binary frames carry audio
both ways and JSON text frames carry control messages.

- Audio: the call leg's own format both ways, always set explicitly (the documented defaults
  disagree): μ-law 8 kHz → `mulaw`/8000, A-law → `alaw`/8000, pcm16 at R Hz → `linear16`/R,
  raw frames (`container: "none"`). Nothing is resampled here.
- Tools are sent as client-side functions (no `endpoint`): each `FunctionCallRequest` with
  `client_side: true` becomes a `ToolCall`, answered by `send_tool_result()` with a
  `FunctionCallResponse`. Server-side calls (`client_side: false`) are Deepgram's to run.
- Barge-in: Deepgram keeps its own turn state (it stops speaking and drops the rest of the
  reply when it hears the caller), so `interrupted()` has nothing to send.
- Liveness: aiohttp heartbeat pings keep the socket honest; a watchdog turns an agent that owes
  a reply (after the caller's turn, a tool result or mid-speech) but sends nothing for
  `stall_timeout_s` into `SessionError(fatal=True)`; `KeepAlive` goes out while no audio does.

The key only ever goes into the `Authorization` header: never into logs, `repr()` or errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import ProviderError, ProviderTimeout, ToolSpec
from voxgate.providers.http import dumps, status_error
from voxgate.providers.realtime.base import (
    AgentAudio,
    AgentAudioDone,
    RealtimeConfig,
    RealtimeEvent,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
)
from voxgate.providers.realtime.ws import close_socket
from voxgate.providers.secrets import Secret, redact, resolve_secret

log = logging.getLogger("voxgate.providers.realtime")

DEFAULT_URL = "wss://agent.deepgram.com/v1/agent/converse"

_ENCODINGS = {Encoding.ULAW: "mulaw", Encoding.ALAW: "alaw", Encoding.PCM16: "linear16"}
_KEEPALIVE = '{"type":"KeepAlive"}'
_QUIET = frozenset(
    {"AgentThinking", "AgentStartedSpeaking", "History", "LatencyReport", "FunctionCallResponse"}
    | {"PromptUpdated", "SpeakUpdated", "ThinkUpdated", "ListenUpdated"}
)
_CLOSE_TIMEOUT_S = 2.0
_END = object()  # ends the event stream


def wire_encoding(fmt: AudioFormat) -> dict[str, Any]:
    """`audio.input` for a call leg in `fmt` (`audio.output` adds `container`)."""
    return {"encoding": _ENCODINGS[fmt.encoding], "sample_rate": fmt.sample_rate}


def function_to_wire(tool: ToolSpec) -> dict[str, Any]:
    """A client-side function: no `endpoint`, so Deepgram asks us to run it."""
    return {"name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}


class DeepgramVoiceAgent:
    """A `RealtimeProvider` for Deepgram's Voice Agent API (listen → think → speak, hosted).

    Options:
    - `url`: the agent endpoint (a `ws://` URL for tests).
    - `api_key` / `api_key_env` / `api_key_file`: where the key is; default `DEEPGRAM_API_KEY`.
    - `listen_model`: Deepgram STT model (`nova-3`).
    - `think_provider`, `think_model`, `temperature`: the LLM Deepgram runs (`open_ai`,
      `gpt-4o-mini`); `think_endpoint` `{url, headers}` for a custom or BYO LLM.
    - `speak_model`: Aura voice (`aura-2-thalia-en`); a call's `RealtimeConfig.voice` overrides
      it when it names an Aura model.
    - `language`: `agent.language`; `None` takes the call's `RealtimeConfig.language`.
    - `connect_timeout_s`: each handshake step (connect, `Welcome`, `SettingsApplied`).
    - `stall_timeout_s`: silence allowed while a reply is owed; `keepalive_s`: `KeepAlive`
      after this long without audio; `heartbeat_s`: WebSocket ping interval (`None`: off).
    """

    name = "deepgram-agent"

    def __init__(
        self,
        *,
        url: str = DEFAULT_URL,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | None = None,
        listen_model: str = "nova-3",
        think_provider: str = "open_ai",
        think_model: str = "gpt-4o-mini",
        temperature: float | None = None,
        think_endpoint: Mapping[str, Any] | None = None,
        speak_model: str = "aura-2-thalia-en",
        language: str | None = None,
        connect_timeout_s: float = 5.0,
        stall_timeout_s: float = 10.0,
        keepalive_s: float = 5.0,
        heartbeat_s: float | None = 10.0,
    ) -> None:
        if not url.startswith(("wss://", "ws://")):
            raise ValueError(f"url must be a ws:// or wss:// URL, got {url!r}")
        if think_endpoint is not None and not think_endpoint.get("url"):
            raise ValueError("think_endpoint needs a 'url' (and optionally 'headers')")
        for option, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("stall_timeout_s", stall_timeout_s),
            ("keepalive_s", keepalive_s),
        ):
            if value <= 0:
                raise ValueError(f"{option} must be positive, got {value}")
        key = resolve_secret(
            "deepgram",
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="DEEPGRAM_API_KEY",
        )
        assert key is not None  # required=True
        self._key = key
        self.url = url
        self.listen_model = listen_model
        self.think_provider = think_provider
        self.think_model = think_model
        self.temperature = temperature
        self.think_endpoint = dict(think_endpoint) if think_endpoint is not None else None
        self.speak_model = speak_model
        self.language = language
        self.connect_timeout_s = connect_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.keepalive_s = keepalive_s
        self.heartbeat_s = heartbeat_s

    def __repr__(self) -> str:
        return (
            f"DeepgramVoiceAgent(url={self.url!r}, listen={self.listen_model!r}, "
            f"think={self.think_provider}/{self.think_model}, speak={self.speak_model!r}, api_key=***)"
        )

    def session(self, config: RealtimeConfig) -> DeepgramAgentSession:
        return DeepgramAgentSession(self, config, self._key)


class DeepgramAgentSession:
    """One call's agent socket. Not reusable: `start()` once, iterate, `aclose()`."""

    name = DeepgramVoiceAgent.name

    def __init__(self, provider: DeepgramVoiceAgent, config: RealtimeConfig, key: Secret) -> None:
        fmt = config.telephony_format
        if fmt.encoding not in _ENCODINGS:
            raise ValueError(f"{self.name}: no Deepgram encoding for {fmt}")
        self.input_format = fmt  # the leg's own format both ways: no conversion anywhere
        self.output_format = fmt
        self._p = provider
        self._config = config
        self._key = key
        self._log_extra = {"call_id": config.call_id, "provider": self.name}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outbox: asyncio.Queue[bytes | str] = asyncio.Queue()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closer: asyncio.Task[None] | None = None  # the socket's close after a failure
        self._started = False
        self._ended = False  # the event stream has its end (fatal error or aclose)
        self._closed = False
        self._carry = b""  # an odd byte of a linear16 frame, kept for the next one
        self._width = fmt.bytes_per_sample
        now = time.monotonic()
        self._last_server = now
        self._last_audio_out = now
        self._last_keepalive = now
        self._expecting: str | None = None  # what the agent owes us, for the stall watchdog
        self._expect_since = now
        self._pending_calls: set[str] = set()

    def __repr__(self) -> str:
        return f"DeepgramAgentSession(call_id={self._config.call_id!r}, format={self.input_format})"

    # -- the Settings message --

    def settings(self) -> dict[str, Any]:
        """The `Settings` message for this call (§2), audio formats explicit."""
        p, config = self._p, self._config
        think_provider: dict[str, Any] = {"type": p.think_provider, "model": p.think_model}
        if p.temperature is not None:
            think_provider["temperature"] = p.temperature
        think: dict[str, Any] = {"provider": think_provider}
        if p.think_endpoint is not None:
            think["endpoint"] = p.think_endpoint
        think["prompt"] = config.instructions
        if config.tools:
            think["functions"] = [function_to_wire(tool) for tool in config.tools]
        agent: dict[str, Any] = {
            "language": p.language or config.language,
            "listen": {"provider": {"type": "deepgram", "model": p.listen_model}},
            "think": think,
            "speak": {"provider": {"type": "deepgram", "model": self._speak_model()}},
        }
        if config.greeting:
            agent["greeting"] = config.greeting
        return {
            "type": "Settings",
            "audio": {
                "input": wire_encoding(self.input_format),
                "output": {**wire_encoding(self.output_format), "container": "none"},
            },
            "agent": agent,
        }

    def _speak_model(self) -> str:
        voice = self._config.voice
        if voice and voice.startswith("aura"):
            return voice
        if voice:
            log.info(
                "%s: voice %r is not a Deepgram Aura model; speaking with %s",
                self.name,
                voice,
                self._p.speak_model,
                extra=self._log_extra,
            )
        return self._p.speak_model

    # -- start --

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("a DeepgramAgentSession starts once")
        self._started = True
        try:
            await self._handshake()
        except BaseException:
            await self.aclose()
            raise
        now = time.monotonic()
        self._last_audio_out = self._last_keepalive = now
        if self._config.greeting:
            self._expect("the greeting")
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"deepgram-read-{self._config.call_id}"),
            asyncio.create_task(self._send_loop(), name=f"deepgram-send-{self._config.call_id}"),
            asyncio.create_task(self._tick_loop(), name=f"deepgram-tick-{self._config.call_id}"),
        ]

    async def _handshake(self) -> None:
        p = self._p
        self._http = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(p.connect_timeout_s):
                self._ws = await self._http.ws_connect(
                    p.url,
                    headers={"Authorization": f"Token {self._key.value}"},
                    heartbeat=p.heartbeat_s,
                    autoping=True,
                    max_msg_size=16 * 1024 * 1024,
                )
        except TimeoutError:
            raise ProviderTimeout(
                self.name, f"connecting to {p.url} took over {p.connect_timeout_s} s"
            ) from None
        except aiohttp.WSServerHandshakeError as exc:
            raise self._handshake_error(exc) from None
        except (aiohttp.ClientError, OSError) as exc:
            detail = self._redact(f"{type(exc).__name__}: {exc}")
            raise ProviderError(self.name, f"cannot connect to {p.url} ({detail})") from None
        welcome = await self._receive_until("Welcome")
        log.info(
            "%s: connected (request_id=%s)",
            self.name,
            welcome.get("request_id") or welcome.get("session_id") or "-",
            extra=self._log_extra,
        )
        try:
            await self._ws.send_str(dumps(self.settings()))
        except (aiohttp.ClientError, OSError) as exc:
            detail = self._redact(f"{type(exc).__name__}: {exc}")
            raise ProviderError(self.name, f"sending Settings failed ({detail})") from None
        await self._receive_until("SettingsApplied")

    def _handshake_error(self, exc: aiohttp.WSServerHandshakeError) -> ProviderError:
        status = exc.status or 0
        return status_error(
            self.name,
            status,
            f"the agent endpoint refused the WebSocket upgrade: HTTP {status}",
            (exc.headers or {}).get("dg-error"),  # Deepgram's error header (UNCONFIRMED for /agent)
            secret=self._key,
            key_hint=" (check the API key: DEEPGRAM_API_KEY, or api_key_env / api_key_file in the options)",
            retryable=(408, 429),
        )

    async def _receive_until(self, wanted: str) -> dict[str, Any]:
        """Read messages until one of type `wanted`; other messages are handled as usual."""
        assert self._ws is not None
        try:
            async with asyncio.timeout(self._p.connect_timeout_s):
                while True:
                    msg = await self._ws.receive()
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        obj = self._parse(msg.data)
                        if obj is None:
                            continue
                        kind = obj.get("type")
                        if kind == wanted:
                            self._last_server = time.monotonic()
                            return obj
                        if kind == "Error":
                            raise ProviderError(
                                self.name,
                                f"error before {wanted}: {self._error_text(obj)}",
                                retryable=False,
                            )
                        self._handle(obj)
                    elif msg.type is aiohttp.WSMsgType.BINARY:
                        self._audio(msg.data)
                    else:
                        raise ProviderError(
                            self.name, f"the socket closed while waiting for {wanted} ({self._close_text()})"
                        )
        except TimeoutError:
            raise ProviderTimeout(
                self.name, f"no {wanted} within {self._p.connect_timeout_s} s of asking"
            ) from None

    # -- the caller's side --

    def push_audio(self, frame: AudioFrame) -> None:
        """Queue the caller's audio for the sender task; frames before `start()` wait for it."""
        if frame.format is not self.input_format and frame.format != self.input_format:
            raise ValueError(
                f"{self.name} takes {self.input_format} audio (the call leg's format), got {frame.format}; "
                "convert at the boundary"
            )
        if self._ended or not frame.data:
            return
        self._outbox.put_nowait(frame.data)

    async def send_tool_result(self, call_id: str, name: str, output: str) -> None:
        """Answer a `ToolCall`: `FunctionCallResponse {id, name, content}` (§4)."""
        if self._ended:
            log.info(
                "%s: tool result for %s after the session ended", self.name, call_id, extra=self._log_extra
            )
            return
        self._outbox.put_nowait(
            dumps({"type": "FunctionCallResponse", "id": call_id, "name": name, "content": output})
        )
        self._pending_calls.discard(call_id)
        if not self._pending_calls:
            self._expect("the reply after a tool result")

    async def send_user_text(self, text: str) -> None:
        """Tell the agent something it cannot hear (keys the caller pressed): `InjectUserMessage`,
        which it answers as if the caller had said it (§4)."""
        if self._ended:
            return
        self._outbox.put_nowait(dumps({"type": "InjectUserMessage", "content": text}))
        self._expect("the reply to an injected user message")

    async def interrupted(self, played_ms: float) -> None:
        """Nothing to send: Deepgram detects the barge-in itself (it sent `UserStartedSpeaking`),
        stops its reply and keeps its own record of what was said; there is no truncate message."""

    # -- events --

    def __aiter__(self) -> AsyncIterator[RealtimeEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            item = await self._events.get()
            if item is _END:
                self._events.put_nowait(_END)  # a second iteration ends too
                return
            yield item

    def _emit(self, event: RealtimeEvent) -> None:
        if not self._ended:
            self._events.put_nowait(event)

    def _expect(self, what: str | None) -> None:
        self._expecting = what
        self._expect_since = time.monotonic()

    # -- tasks --

    async def _read_loop(self) -> None:
        assert self._ws is not None
        ws = self._ws
        while True:
            try:
                msg = await ws.receive()
            except (aiohttp.ClientError, OSError) as exc:
                self._fail(f"the socket failed ({self._redact(type(exc).__name__ + ': ' + str(exc))})")
                return
            if msg.type is aiohttp.WSMsgType.TEXT:
                obj = self._parse(msg.data)
                if obj is not None:
                    self._last_server = time.monotonic()
                    self._handle(obj)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                self._last_server = time.monotonic()
                self._audio(msg.data)
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                if msg.type is aiohttp.WSMsgType.ERROR:
                    self._fail(f"the socket failed ({self._redact(repr(msg.data))})")
                else:
                    self._fail(f"the agent closed the connection ({self._close_text()})")
                return

    async def _send_loop(self) -> None:
        assert self._ws is not None
        ws = self._ws
        timeout = self._p.stall_timeout_s
        while True:
            item = await self._outbox.get()
            try:
                async with asyncio.timeout(timeout):
                    if isinstance(item, bytes):
                        await ws.send_bytes(item)
                        self._last_audio_out = time.monotonic()
                    else:
                        await ws.send_str(item)
            except TimeoutError:
                self._fail(f"sending to the agent blocked for {timeout} s")
                return
            except (aiohttp.ClientError, OSError, RuntimeError) as exc:
                self._fail(f"sending failed ({self._redact(type(exc).__name__ + ': ' + str(exc))})")
                return

    async def _tick_loop(self) -> None:
        """KeepAlive while no audio goes out; the stall watchdog while a reply is owed."""
        p = self._p
        step = min(max(min(p.keepalive_s, p.stall_timeout_s) / 5, 0.01), 0.5)
        while not self._ended:
            await asyncio.sleep(step)
            now = time.monotonic()
            if (
                now - max(self._last_audio_out, self._last_keepalive) >= p.keepalive_s
                and self._outbox.empty()
            ):
                self._last_keepalive = now
                self._outbox.put_nowait(_KEEPALIVE)
            if self._expecting is not None and not self._pending_calls:
                silent = now - max(self._last_server, self._expect_since)
                if silent >= p.stall_timeout_s:
                    self._fail(
                        f"stalled: nothing from the agent for {silent:.1f} s while waiting for "
                        f"{self._expecting} (stall_timeout_s={p.stall_timeout_s})",
                        code="stalled",
                    )
                    return

    # -- server messages --

    def _parse(self, text: str) -> dict[str, Any] | None:
        try:
            obj = json.loads(text)
        except ValueError:
            log.warning("%s: a text frame that is not JSON: %.200r", self.name, text, extra=self._log_extra)
            return None
        if not isinstance(obj, dict):
            log.warning("%s: a JSON %s, not an object", self.name, type(obj).__name__, extra=self._log_extra)
            return None
        return obj

    def _handle(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "ConversationText":
            role, content = obj.get("role"), obj.get("content")
            if role in ("user", "assistant") and isinstance(content, str):
                self._emit(Transcript(role, content))
                if role == "user":
                    self._expect("a reply to the caller")  # the caller's turn is over
                elif self._expecting is None:
                    self._expect("the agent's speech")
        elif kind == "UserStartedSpeaking":
            self._expect(None)  # the caller may talk for as long as they like
            self._emit(UserSpeechStarted())
        elif kind == "AgentAudioDone":
            self._expect(None)
            self._carry = b""
            self._emit(AgentAudioDone())
        elif kind == "FunctionCallRequest":
            self._function_calls(obj.get("functions") or [])
        elif kind == "Error":
            description, code = self._error_parts(obj)
            log.warning("%s: agent error %s: %s", self.name, code or "-", description, extra=self._log_extra)
            self._emit(SessionError(description, fatal=False, code=code))
        elif kind == "Warning":
            description, code = self._error_parts(obj)
            log.warning(
                "%s: agent warning %s: %s", self.name, code or "-", description, extra=self._log_extra
            )
        elif kind == "InjectionRefused":
            log.info("%s: injection refused: %s", self.name, obj.get("message"), extra=self._log_extra)
        elif kind in ("AgentStartedSpeaking", "AgentThinking"):
            if self._expecting is None:
                self._expect("the agent's speech")
            log.debug("%s: %s %s", self.name, kind, obj, extra=self._log_extra)
        elif kind in _QUIET or kind in ("Welcome", "SettingsApplied"):
            log.debug("%s: %s", self.name, kind, extra=self._log_extra)
        else:
            log.debug("%s: unknown message type %r", self.name, kind, extra=self._log_extra)

    def _audio(self, data: bytes) -> None:
        if self._carry:
            data, self._carry = self._carry + data, b""
        if odd := len(data) % self._width:  # never split a sample across frames
            data, self._carry = data[:-odd], data[-odd:]
        if data:
            if self._expecting is None:
                self._expect("the end of the agent's speech")
            self._emit(AgentAudio(AudioFrame(data, self.output_format)))

    def _function_calls(self, functions: list[Any]) -> None:
        self._expect("the agent's reply after a function call")
        for fn in functions:
            if not isinstance(fn, dict):
                continue
            call_id, name = str(fn.get("id") or ""), str(fn.get("name") or "")
            if not fn.get("client_side", True):
                log.info(
                    "%s: Deepgram runs function %r itself (%s)",
                    self.name,
                    name,
                    call_id,
                    extra=self._log_extra,
                )
                continue
            try:
                arguments = _arguments(fn.get("arguments"))
            except ValueError as exc:
                message = f"function {name!r} ({call_id}) has arguments that are {exc}"
                log.warning("%s: %s", self.name, message, extra=self._log_extra)
                self._outbox.put_nowait(
                    dumps(
                        {
                            "type": "FunctionCallResponse",
                            "id": call_id,
                            "name": name,
                            "content": dumps(
                                {"error": f"invalid arguments: {exc}; call it again with a JSON object"}
                            ),
                        }
                    )
                )
                self._emit(SessionError(message, fatal=False, code="bad_arguments"))
                continue
            self._pending_calls.add(call_id)
            self._emit(ToolCall(call_id, name, arguments))

    def _error_parts(self, obj: dict[str, Any]) -> tuple[str, str | None]:
        description = self._redact(str(obj.get("description") or obj.get("message") or "no description"))
        code = obj.get("code")
        return description, str(code) if code is not None else None

    def _error_text(self, obj: dict[str, Any]) -> str:
        description, code = self._error_parts(obj)
        return f"{description} ({code})" if code else description

    def _close_text(self) -> str:
        ws = self._ws
        if ws is None:
            return "no socket"
        text = f"code {ws.close_code}" if ws.close_code is not None else "no close code"
        exc = ws.exception()
        if exc is not None:
            text += f", {type(exc).__name__}: {exc}"
        return self._redact(text)

    def _redact(self, text: str) -> str:
        return redact(text, self._key)

    # -- ending --

    def _fail(self, message: str, code: str | None = None) -> None:
        """The session is over: say so once, end the stream, drop the socket."""
        if self._ended:
            return
        log.warning("%s: session failed: %s", self.name, message, extra=self._log_extra)
        self._events.put_nowait(SessionError(message, fatal=True, code=code))
        self._end()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._closer is None:
            self._closer = asyncio.create_task(self._drop_socket())

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._events.put_nowait(_END)

    async def aclose(self) -> None:
        """Close the socket and end the event stream; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._end()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer
        await self._drop_socket()

    async def _drop_socket(self) -> None:
        """Close the WebSocket (bounded in time) and its HTTP session; never raises."""
        await close_socket(self._ws, self._http, _CLOSE_TIMEOUT_S)


def _arguments(raw: Any) -> dict[str, Any]:
    """A function's `arguments` (a JSON string, §3) as a dict; ValueError says what is wrong."""
    if isinstance(raw, dict):  # lenient: a server that sends the object itself
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise ValueError(f"a JSON {type(raw).__name__}, not a string")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        shown = raw if len(raw) <= 200 else raw[:200] + "…"
        raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos}): {shown!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value
