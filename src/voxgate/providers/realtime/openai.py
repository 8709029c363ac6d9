"""OpenAI Realtime speech-to-speech over one WebSocket per call (GA event shapes; beta on request).

Wire format: `../shared/protocols/openai-realtime.md`. `start()` connects with the key as a
Bearer header, waits for `session.created`, sends one `session.update` (§2, nested GA shape, or
the flat legacy one with `beta=True`) and waits for `session.updated`; any failure there is a
`ProviderError`, so the agent can fall back to its pipeline.

Audio: a G.711 leg (μ-law or A-law, 8 kHz) is spoken natively both ways (`audio/pcmu`,
`audio/pcma`): no conversion anywhere. Any other leg gets `audio/pcm` at 24 kHz, the only PCM
rate OpenAI takes, and the bridge resamples to and from `input_format` / `output_format`.

Three tasks run per session: a reader (server events → `RealtimeEvent`s), a single sender fed by
a queue (so `push_audio()` never blocks and queued audio goes out as one append), and a watchdog:
while a reply is owed (after `speech_stopped` or our `response.create`, until `response.done`) a
server silent for `stall_timeout_s` ends the session with `SessionError(fatal=True)`. WebSocket
pings (`heartbeat_s`) catch a dead peer when no reply is owed.

Tool calls: a `response.create` sent while a reply is in progress is refused by the server, so
after `send_tool_result()` the next reply is asked for once the current one is done and every
call it made has its output. Arguments that are not a JSON object are answered for the caller
with an error output, so the model sees a complete call/output pair and can go on.

Barge-in (§6): `interrupted(played_ms)` truncates the assistant item the caller was hearing to
what was played (never past the audio received), cancels the reply if it is still running
(ignoring the error a late cancel gets back) and drops the audio of that reply still arriving.

The API key only ever goes into the `Authorization` header: never into logs, `repr()` or errors.

Layout: `openai_wire` holds the wire shapes (audio formats, `session.update` GA and beta, tools,
event names), `openai_events` the conversation state the server events drive (`Conversation`:
replies owed and running, tool calls, the truncate and cancel of a barge-in), and this module the
provider, the connection, the session's tasks (reader, sender, watchdog) and its public methods.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import time
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.base import ProviderError, ProviderTimeout
from voxgate.providers.realtime.base import RealtimeConfig, RealtimeEvent, SessionError
from voxgate.providers.realtime.openai_events import Conversation
from voxgate.providers.realtime.openai_wire import (
    DUMPS,
    error_text,
    format_mismatch,
    negotiate_format,
    session_update,
    tool_to_wire,
)
from voxgate.providers.realtime.ws import close_socket
from voxgate.providers.secrets import Secret, redact, resolve_secret

__all__ = [
    "DEFAULT_URL",
    "Eagerness",
    "NoiseReduction",
    "OpenAIRealtime",
    "OpenAIRealtimeSession",
    "TurnDetection",
    "negotiate_format",
    "tool_to_wire",
]

log = logging.getLogger("voxgate.providers.realtime")

DEFAULT_URL = "wss://api.openai.com/v1/realtime"

TurnDetection = Literal["server_vad", "semantic_vad"]
Eagerness = Literal["low", "medium", "high", "auto"]
NoiseReduction = Literal["near_field", "far_field"]

_MAX_MESSAGE = 16 * 1024 * 1024  # server events (session.updated, response.done) can be large
_MAX_APPEND = 256 * 1024  # raw audio bytes merged into one input_audio_buffer.append at most
_CLOSE_TIMEOUT_S = 1.0  # closing a socket whose peer has gone quiet must not hold the call


def _append_event(audio: bytes) -> str:
    """`DUMPS({"type": "input_audio_buffer.append", "audio": <base64>})`, built directly: base64
    needs no JSON escaping, so the encoder need not scan the audio (many times a second)."""
    return f'{{"type":"input_audio_buffer.append","audio":"{base64.b64encode(audio).decode("ascii")}"}}'


def _with_model(url: str, model: str) -> str:
    """`url` with `?model=…` added, unless it already names one."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"url must be a ws:// or wss:// URL such as {DEFAULT_URL}, got {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "model" for key, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode([*query, ("model", model)])))


class OpenAIRealtime:
    """A `RealtimeProvider` for OpenAI's Realtime API; `session(config)` makes one per call.

    Options (all keyword):
    - `model`, `url`: the model is sent as `?model=` unless `url` already names one.
    - `api_key` / `api_key_env` / `api_key_file`: the key (see `voxgate.providers.secrets`);
      default: the `OPENAI_API_KEY` environment variable. Resolved here, once.
    - `voice`: the default voice (a call's `RealtimeConfig.voice` wins).
    - `transcription_model`: transcribes the caller (None: no user transcripts).
    - `turn_detection`: `server_vad` (with `threshold`, `prefix_padding_ms`,
      `silence_duration_ms`, `idle_timeout_ms`), `semantic_vad` (with `eagerness`) or None
      (manual: nothing answers until `commit()`). The server cuts its own reply when the
      caller talks over it (`interrupt_response`).
    - `noise_reduction`: `near_field` (handsets) or `far_field` (speakerphones); GA only.
    - `speed` (GA only), `temperature` (beta only), `max_output_tokens`: sent only when set.
    - `beta`: the legacy API (`OpenAI-Beta: realtime=v1`, flat session, beta event names).
    - `connect_timeout_s`: for the connection, `session.created` and `session.updated` each.
    - `stall_timeout_s`: the watchdog (see the module docstring); `heartbeat_s`: ping interval.
    """

    name = "openai-realtime"

    def __init__(
        self,
        *,
        model: str = "gpt-realtime",
        url: str = DEFAULT_URL,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | None = None,
        voice: str = "marin",
        transcription_model: str | None = "gpt-4o-mini-transcribe",
        turn_detection: TurnDetection | None = "server_vad",
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        idle_timeout_ms: int | None = None,
        eagerness: Eagerness = "auto",
        noise_reduction: NoiseReduction | None = None,
        speed: float | None = None,
        temperature: float | None = None,
        max_output_tokens: int | None = None,
        beta: bool = False,
        connect_timeout_s: float = 5.0,
        stall_timeout_s: float = 10.0,
        heartbeat_s: float | None = 15.0,
    ) -> None:
        if not model:
            raise ValueError("model is required, e.g. gpt-realtime")
        if turn_detection not in ("server_vad", "semantic_vad", None):
            raise ValueError(
                f"turn_detection must be server_vad, semantic_vad or None, not {turn_detection!r}"
            )
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        if eagerness not in ("low", "medium", "high", "auto"):
            raise ValueError(f"eagerness must be low, medium, high or auto, not {eagerness!r}")
        if noise_reduction not in ("near_field", "far_field", None):
            raise ValueError(
                f"noise_reduction must be near_field, far_field or None, not {noise_reduction!r}"
            )
        for option, value in (("connect_timeout_s", connect_timeout_s), ("stall_timeout_s", stall_timeout_s)):
            if value <= 0:
                raise ValueError(f"{option} must be positive, got {value}")
        other = "GA" if beta else "beta"
        misplaced = (
            {"noise_reduction": noise_reduction, "speed": speed, "idle_timeout_ms": idle_timeout_ms}
            if beta
            else {"temperature": temperature}
        )
        for option, value in misplaced.items():
            if value is not None:
                raise ValueError(
                    f"{option} is a field of the {other} session only, and beta is {beta}: remove it, "
                    f"or use the {other} API"
                )
        self.model = model
        self.url = _with_model(url, model)
        self.voice = voice
        self.transcription_model = transcription_model
        self.turn_detection = turn_detection
        self.threshold = threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.idle_timeout_ms = idle_timeout_ms
        self.eagerness = eagerness
        self.noise_reduction = noise_reduction
        self.speed = speed
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.beta = beta
        self.connect_timeout_s = connect_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.heartbeat_s = heartbeat_s
        secret = resolve_secret(
            self.name,
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="OPENAI_API_KEY",
        )
        assert secret is not None  # required=True
        self._secret = secret

    def __repr__(self) -> str:
        return f"OpenAIRealtime(model={self.model!r}, url={self.url!r}, beta={self.beta}, api_key=***)"

    def session(self, config: RealtimeConfig) -> OpenAIRealtimeSession:
        return OpenAIRealtimeSession(self, config)

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._secret.value}"}
        if self.beta:
            headers["OpenAI-Beta"] = "realtime=v1"
        return headers


class OpenAIRealtimeSession:
    """One call's Realtime session (see the module docstring). Iterate it for its events."""

    def __init__(self, provider: OpenAIRealtime, config: RealtimeConfig) -> None:
        self.name = provider.name
        self.config = config
        self._p = provider
        fmt, self._wire_format = negotiate_format(config.telephony_format, beta=provider.beta)
        self.input_format: AudioFormat = fmt
        self.output_format: AudioFormat = fmt
        self.server_session: dict[str, Any] = {}  # the effective session from session.updated
        self._log_extra = {"call_id": config.call_id, "provider": provider.name}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._events: asyncio.Queue[tuple[str | None, RealtimeEvent] | None] = asyncio.Queue()
        self._outbox: collections.deque[bytes | dict[str, Any]] = collections.deque()
        self._wake = asyncio.Event()
        self._started = False
        self._ended = False
        self._last_event = time.monotonic()  # when the server last sent anything (for the watchdog)
        self._conv = Conversation(
            name=self.name,
            output_format=fmt,
            server_turns=provider.turn_detection is not None,
            secret=provider._secret,
            log_extra=self._log_extra,
            emit=self._emit,
            send=self._send,
            ended=lambda: self._ended,
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIRealtimeSession(call_id={self.config.call_id!r}, model={self._p.model!r}, "
            f"format={self.input_format})"
        )

    # -- the session.update event --

    def session_update(self) -> dict[str, Any]:
        """The `session.update` event `start()` sends (§2): GA nested shape, or beta flat."""
        return session_update(self._p, self.config, self._wire_format)

    # -- start --

    async def start(self) -> None:
        """Connect and configure the session; `ProviderError` (or `ProviderTimeout`) if not."""
        if self._started:
            raise RuntimeError("this session was already started; make a new one per call")
        self._started = True
        try:
            await self._connect()
            await self._expect("session.created")
            await self._send_now(self.session_update())
            updated = await self._expect("session.updated")
            self._check_session(updated.get("session"))
        except BaseException:
            await self._end(None)
            raise
        self._last_event = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._read(), name=f"openai-realtime-read-{self.config.call_id}"),
            asyncio.create_task(self._write(), name=f"openai-realtime-write-{self.config.call_id}"),
            asyncio.create_task(self._watch(), name=f"openai-realtime-watch-{self.config.call_id}"),
        ]
        log.info(
            "%s: session ready (model %s, audio %s)",
            self.name,
            self._p.model,
            self.input_format,
            extra=self._log_extra,
        )
        if self.config.greeting:
            self._conv.create_response(
                {"instructions": f"Say exactly this to greet the caller: {self.config.greeting}"}
            )

    async def _connect(self) -> None:
        p = self._p
        url = p.url
        self._http = aiohttp.ClientSession()
        error: ProviderError | None = None
        try:
            async with asyncio.timeout(p.connect_timeout_s):
                self._ws = await self._http.ws_connect(
                    url,
                    headers=p._headers(),
                    heartbeat=p.heartbeat_s,
                    max_msg_size=_MAX_MESSAGE,
                )
        except aiohttp.WSServerHandshakeError as exc:
            error = self._handshake_error(exc.status)
        except TimeoutError:
            error = ProviderTimeout(
                self.name, f"no WebSocket connection to {url} within {p.connect_timeout_s:g} s"
            )
        except (aiohttp.ClientError, OSError) as exc:
            detail = redact(f"{type(exc).__name__}: {exc}", p._secret)
            error = ProviderError(self.name, f"cannot connect to {url}: {detail}", retryable=True)
        if error is not None:
            raise error  # outside the except block: no chained exception carrying the request headers

    def _handshake_error(self, status: int) -> ProviderError:
        url, source = self._p.url, self._p._secret.source
        if status == 401:
            return ProviderError(
                self.name, f"key rejected (HTTP 401) by {url}: check the API key ({source})", retryable=False
            )
        if status == 403:
            return ProviderError(
                self.name,
                f"access denied (HTTP 403) by {url}: the key ({source}) may not use model {self._p.model!r}",
                retryable=False,
            )
        if status == 404:
            return ProviderError(
                self.name, f"HTTP 404 from {url}: check the url and the model name", retryable=False
            )
        retryable = status >= 500 or status in (408, 409, 429)
        return ProviderError(
            self.name, f"HTTP {status} on the WebSocket upgrade to {url}", retryable=retryable
        )

    async def _send_now(self, event: dict[str, Any]) -> None:
        """Send during `start()`, before the sender task runs."""
        assert self._ws is not None
        error: ProviderError | None = None
        try:
            async with asyncio.timeout(self._p.connect_timeout_s):
                await self._ws.send_str(DUMPS(event))
        except TimeoutError:
            error = ProviderTimeout(self.name, f"sending {event['type']} to {self._p.url} timed out")
        except (aiohttp.ClientError, ConnectionError) as exc:
            error = ProviderError(
                self.name, f"sending {event['type']} to {self._p.url} failed: {type(exc).__name__}"
            )
        if error is not None:
            raise error

    async def _expect(self, kind: str) -> dict[str, Any]:
        """The next `kind` event during `start()`; an `error` event or a close is a `ProviderError`."""
        assert self._ws is not None
        url, timeout_s = self._p.url, self._p.connect_timeout_s
        error: ProviderError | None = None
        try:
            async with asyncio.timeout(timeout_s):
                while error is None:
                    msg = await self._ws.receive()
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        event = self._parse(msg.data)
                        if event is None:
                            continue
                        if event["type"] == kind:
                            return event
                        if event["type"] == "error":
                            message, code = error_text(event, self._p._secret)
                            error = ProviderError(
                                self.name,
                                f"the session was refused: {message}" + (f" ({code})" if code else ""),
                                retryable=False,
                            )
                        else:
                            log.debug(
                                "%s: %s before %s", self.name, event["type"], kind, extra=self._log_extra
                            )
                    elif msg.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED,
                    ):
                        error = self._closed_during_start(kind, msg)
                    elif msg.type is aiohttp.WSMsgType.ERROR:
                        error = ProviderError(
                            self.name,
                            f"the connection to {url} failed before {kind}: {type(msg.data).__name__}",
                        )
        except TimeoutError:
            error = ProviderTimeout(self.name, f"no {kind} from {url} within {timeout_s:g} s")
        raise error

    def _closed_during_start(self, kind: str, msg: aiohttp.WSMessage) -> ProviderError:
        assert self._ws is not None
        code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else self._ws.close_code
        reason = redact(str(msg.extra or ""), self._p._secret)
        why = f"code {code}: {reason}" if reason else f"code {code}"
        text = f"{self._p.url} closed the connection before {kind} ({why})"
        if code == 4000 or "beta_api_shape" in reason:
            text += "; the server refuses this API shape: " + (
                "set beta: false" if self._p.beta else "check the url and model"
            )
            return ProviderError(self.name, text, retryable=False)
        return ProviderError(self.name, text, retryable=True)

    def _check_session(self, session: Any) -> None:
        """Refuse to run when the server's effective audio format is not the one we asked for."""
        if not isinstance(session, dict):
            return
        self.server_session = session
        problem = format_mismatch(session, self._wire_format, beta=self._p.beta)
        if problem is not None:
            raise ProviderError(self.name, problem, retryable=False)

    # -- the caller's side --

    def push_audio(self, frame: AudioFrame) -> None:
        """Queue the caller's audio (in `input_format`); sent as soon as the socket takes it."""
        if frame.format is not self.input_format and frame.format != self.input_format:
            raise ValueError(
                f"{self.name} takes {self.input_format} audio (the session's input_format), got "
                f"{frame.format}; convert it first"
            )
        if self._ended or not frame.data:
            return
        self._outbox.append(bytes(frame.data))
        self._wake.set()

    async def commit(self) -> None:
        """With `turn_detection=None`: the caller's turn is over, answer it."""
        if self._ended:
            return
        self._conv.commit()

    async def send_tool_result(self, call_id: str, name: str, output: str) -> None:
        """Give the model a tool's output; it answers once its current reply (if any) is done."""
        if self._ended:
            log.debug(
                "%s: result of %s (%s) after the session ended",
                self.name,
                name,
                call_id,
                extra=self._log_extra,
            )
            return
        self._conv.tool_result(call_id, output)

    async def send_user_text(self, text: str) -> None:
        """Tell the model something it cannot hear (keys the caller pressed); it answers."""
        if not self._ended:
            self._conv.user_text(text)

    async def interrupted(self, played_ms: float) -> None:
        """Barge-in (§6): truncate what the caller heard, cancel the reply, drop its late audio."""
        if self._ended:
            return
        self._conv.interrupt(played_ms)

    # -- events out --

    def __aiter__(self) -> OpenAIRealtimeSession:
        return self

    async def __anext__(self) -> RealtimeEvent:
        """The next event; safe to cancel (a timed-out wait loses nothing)."""
        while True:
            entry = await self._events.get()
            if entry is None:
                self._events.put_nowait(None)  # every later call ends too
                raise StopAsyncIteration
            response_id, event = entry
            if self._conv.hand_out(response_id, event):
                return event
            # else: audio of a reply the caller cut off, queued before the cut

    # -- close --

    async def aclose(self) -> None:
        """Close the socket and stop the tasks; the event iteration ends. Idempotent."""
        await self._end(None)
        current = asyncio.current_task()
        pending = [task for task in self._tasks if task is not current]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _end(self, error: SessionError | None) -> None:
        if self._ended:
            return
        self._ended = True
        if error is not None:
            log.warning("%s: session ended: %s", self.name, error.message, extra=self._log_extra)
            self._events.put_nowait((None, error))
        self._events.put_nowait(None)
        self._outbox.clear()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        await close_socket(self._ws, self._http, _CLOSE_TIMEOUT_S)

    # -- tasks --

    async def _write(self) -> None:
        """The one sender: queued events in order, consecutive audio merged into one append."""
        ws = self._ws
        assert ws is not None
        while True:
            while not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            item = self._outbox.popleft()
            if isinstance(item, bytes):
                chunks, size = [item], len(item)
                while self._outbox and isinstance(self._outbox[0], bytes) and size < _MAX_APPEND:
                    chunk = self._outbox.popleft()
                    assert isinstance(chunk, bytes)
                    chunks.append(chunk)
                    size += len(chunk)
                text = _append_event(b"".join(chunks))
            else:
                text = DUMPS(item)
            failure: str | None = None
            try:
                async with asyncio.timeout(self._p.stall_timeout_s):
                    await ws.send_str(text)
            except TimeoutError:
                failure = f"sending to OpenAI stalled for {self._p.stall_timeout_s:g} s"
            except (aiohttp.ClientError, ConnectionError) as exc:
                failure = f"sending to OpenAI failed: {type(exc).__name__}"
            if failure is not None:
                await self._end(SessionError(failure, fatal=True, code="connection_lost"))
                return

    async def _watch(self) -> None:
        stall = self._p.stall_timeout_s
        tick = min(stall / 4, 0.5)
        while True:
            await asyncio.sleep(tick)
            response_id, awaiting_since = self._conv.response_id, self._conv.awaiting_since
            if response_id is None and awaiting_since is None:
                continue
            since = max(self._last_event, awaiting_since or 0.0)
            quiet = time.monotonic() - since
            if quiet > stall:
                waiting = "a reply" if response_id is None else f"reply {response_id}"
                await self._end(
                    SessionError(
                        f"stalled: no event from OpenAI for {quiet:.1f} s while waiting for {waiting}",
                        fatal=True,
                        code="stalled",
                    )
                )
                return

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            try:
                msg = await ws.receive()
            except Exception as exc:  # the socket failing under us is the session ending
                await self._end(
                    SessionError(
                        f"the connection to OpenAI failed: {type(exc).__name__}",
                        fatal=True,
                        code="connection_lost",
                    )
                )
                return
            if msg.type is aiohttp.WSMsgType.TEXT:
                self._last_event = time.monotonic()
                event = self._parse(msg.data)
                if event is not None:
                    self._conv.handle(event)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                log.debug("%s: ignoring a binary message", self.name, extra=self._log_extra)
            else:
                await self._end(self._connection_ended(msg))
                return

    def _connection_ended(self, msg: aiohttp.WSMessage) -> SessionError:
        assert self._ws is not None
        if msg.type is aiohttp.WSMsgType.ERROR:
            detail = redact(f"{type(msg.data).__name__}: {msg.data}", self._p._secret)
            return SessionError(
                f"the connection to OpenAI failed ({detail})", fatal=True, code="connection_lost"
            )
        code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else self._ws.close_code
        reason = redact(str(msg.extra or ""), self._p._secret)
        if code is None or code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
            return SessionError("the connection to OpenAI was lost", fatal=True, code="connection_lost")
        return SessionError(
            f"OpenAI closed the session (code {code}{': ' + reason if reason else ''})",
            fatal=True,
            code=str(code),
        )

    # -- server messages --

    def _parse(self, data: str) -> dict[str, Any] | None:
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("%s: a server message is not JSON: %r", self.name, data[:200], extra=self._log_extra)
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            log.warning("%s: a server message has no type: %r", self.name, data[:200], extra=self._log_extra)
            return None
        return event

    def _emit(self, event: RealtimeEvent, response_id: str | None) -> None:
        self._events.put_nowait((response_id, event))

    def _send(self, event: dict[str, Any]) -> None:
        self._outbox.append(event)
        self._wake.set()
