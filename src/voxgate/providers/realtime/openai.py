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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from voxgate.audio.format import SLIN24, AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import ProviderError, ProviderTimeout, ToolSpec
from voxgate.providers.realtime.base import (
    AgentAudio,
    AgentAudioDone,
    RealtimeConfig,
    RealtimeEvent,
    ResponseDone,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
    UserSpeechStopped,
)
from voxgate.providers.secrets import Secret, redact, resolve_secret

log = logging.getLogger("voxgate.providers.realtime")

DEFAULT_URL = "wss://api.openai.com/v1/realtime"

TurnDetection = Literal["server_vad", "semantic_vad"]
Eagerness = Literal["low", "medium", "high", "auto"]
NoiseReduction = Literal["near_field", "far_field"]

_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_MAX_MESSAGE = 16 * 1024 * 1024  # server events (session.updated, response.done) can be large
_MAX_APPEND = 256 * 1024  # raw audio bytes merged into one input_audio_buffer.append at most
_CLOSE_TIMEOUT_S = 1.0  # closing a socket whose peer has gone quiet must not hold the call
_KEEP_ITEMS = 8  # assistant items whose received audio length we remember (for truncate)
_KEEP_CANCELLED = 16  # cancelled response ids whose late audio we still drop

# The legacy (beta) names of the GA server events that were renamed (§4).
_BETA_NAMES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}

# Events we know and have nothing to do with (logged at debug level, like unknown ones).
_QUIET = frozenset(
    {
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.created",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.timeout_triggered",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "rate_limits.updated",
    }
)


def negotiate_format(telephony: AudioFormat, *, beta: bool = False) -> tuple[AudioFormat, Any]:
    """(the session's audio format, its wire value) for a call leg in `telephony` format.

    G.711 at 8 kHz goes as is; anything else is PCM16 at 24 kHz (§2: the only PCM rate)."""
    if telephony.sample_rate == 8000 and telephony.encoding is Encoding.ULAW:
        return telephony, ("g711_ulaw" if beta else {"type": "audio/pcmu"})
    if telephony.sample_rate == 8000 and telephony.encoding is Encoding.ALAW:
        return telephony, ("g711_alaw" if beta else {"type": "audio/pcma"})
    return SLIN24, ("pcm16" if beta else {"type": "audio/pcm", "rate": 24000})


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    """A tool as the Realtime API wants it: flat, unlike Chat Completions' nested `function`."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
    }


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

    def _turn_detection(self) -> dict[str, Any] | None:
        if self.turn_detection is None:
            return None
        if self.turn_detection == "semantic_vad":
            detection: dict[str, Any] = {"type": "semantic_vad", "eagerness": self.eagerness}
        else:
            detection = {
                "type": "server_vad",
                "threshold": self.threshold,
                "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms,
            }
        if self.beta:  # the legacy shape of §2: no create/interrupt flags
            return detection
        detection["create_response"] = True
        detection["interrupt_response"] = True
        if self.idle_timeout_ms is not None and self.turn_detection == "server_vad":
            detection["idle_timeout_ms"] = self.idle_timeout_ms
        return detection


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
        self._event_ids = itertools.count(1)
        # conversation state
        self._response_id: str | None = None  # the reply in progress (response.created → done)
        self._awaiting_since: float | None = None  # a reply is owed but not created yet
        self._last_event = time.monotonic()
        self._want_response = False  # tool outputs sent: ask for a reply once nothing blocks it
        self._open_calls: set[str] = set()  # tool calls not answered yet
        self._cancel_ids: set[str] = set()  # event_ids of our response.cancel (their errors are moot)
        self._create_id: str | None = None  # event_id of our last response.create
        self._cancelled: dict[str, None] = {}  # response ids whose audio we drop (ordered set)
        self._item_bytes: dict[str, int] = {}  # assistant item → audio bytes received
        self._playing_item: str | None = None  # item of the last AgentAudio handed out
        self._assistant_text: dict[str, str] = {}
        self._user_text: dict[str, str] = {}

    def __repr__(self) -> str:
        return (
            f"OpenAIRealtimeSession(call_id={self.config.call_id!r}, model={self._p.model!r}, "
            f"format={self.input_format})"
        )

    # -- the session.update event --

    def session_update(self) -> dict[str, Any]:
        """The `session.update` event `start()` sends (§2): GA nested shape, or beta flat."""
        p, config = self._p, self.config
        tools = [tool_to_wire(tool) for tool in config.tools]
        voice = config.voice or p.voice
        if p.beta:
            session: dict[str, Any] = {
                "modalities": ["audio", "text"],
                "instructions": config.instructions,
                "voice": voice,
                "input_audio_format": self._wire_format,
                "output_audio_format": self._wire_format,
            }
            if p.transcription_model:
                session["input_audio_transcription"] = {"model": p.transcription_model}
            session["turn_detection"] = p._turn_detection()
            session["tools"] = tools
            session["tool_choice"] = "auto"
            if p.temperature is not None:
                session["temperature"] = p.temperature
            if p.max_output_tokens is not None:
                session["max_response_output_tokens"] = p.max_output_tokens
            return {"type": "session.update", "session": session}
        audio_in: dict[str, Any] = {"format": dict(self._wire_format)}
        if p.noise_reduction:
            audio_in["noise_reduction"] = {"type": p.noise_reduction}
        if p.transcription_model:
            audio_in["transcription"] = {"model": p.transcription_model, "language": config.language}
        audio_in["turn_detection"] = p._turn_detection()
        audio_out: dict[str, Any] = {"format": dict(self._wire_format), "voice": voice}
        if p.speed is not None:
            audio_out["speed"] = p.speed
        session = {
            "type": "realtime",
            "model": p.model,
            "instructions": config.instructions,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": audio_out},
            "tools": tools,
            "tool_choice": "auto",
        }
        if p.max_output_tokens is not None:
            session["max_output_tokens"] = p.max_output_tokens
        return {"type": "session.update", "session": session}

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
            self._create_response(
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
                await self._ws.send_str(_DUMPS(event))
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
                            message, code = self._error_text(event)
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
        if self._p.beta:
            got = [session.get("input_audio_format"), session.get("output_audio_format")]
        else:
            audio = session.get("audio") or {}
            got = [(audio.get(way) or {}).get("format") for way in ("input", "output")]
        want = self._wire_format if self._p.beta else self._wire_format["type"]
        for way, value in zip(("input", "output"), got, strict=True):
            if isinstance(value, dict):
                value = value.get("type")
            if value is not None and value != want:
                raise ProviderError(
                    self.name,
                    f"the server set the {way} audio format to {value!r}, not the {want!r} asked for",
                    retryable=False,
                )

    # -- the caller's side --

    def push_audio(self, frame: AudioFrame) -> None:
        """Queue the caller's audio (in `input_format`); sent as soon as the socket takes it."""
        if frame.format != self.input_format:
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
        self._send({"type": "input_audio_buffer.commit"})
        self._want_response = True
        self._maybe_create_response()

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
        self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )
        self._open_calls.discard(call_id)
        self._want_response = True
        self._maybe_create_response()

    async def interrupted(self, played_ms: float) -> None:
        """Barge-in (§6): truncate what the caller heard, cancel the reply, drop its late audio."""
        if self._ended:
            return
        item = self._playing_item
        if item is not None and played_ms > 0:
            received_ms = self.output_format.duration_ms(self._item_bytes.get(item, 0))
            end_ms = int(min(played_ms, received_ms))
            self._send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item,
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                }
            )
            self._playing_item = None  # truncated once is enough
        response_id = self._response_id
        if response_id is not None:
            event_id = f"voxgate_cancel_{next(self._event_ids)}"
            self._cancel_ids.add(event_id)
            self._send({"type": "response.cancel", "event_id": event_id, "response_id": response_id})
            self._drop(response_id)

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
            if response_id is not None and response_id in self._cancelled:
                continue  # audio of a reply the caller cut off, queued before the cut
            if isinstance(event, AgentAudio):
                self._playing_item = event.item_id
            return event

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
        ws, http = self._ws, self._http
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await ws.close()
        if http is not None:
            await http.close()

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
                audio = base64.b64encode(b"".join(chunks)).decode("ascii")
                text = _DUMPS({"type": "input_audio_buffer.append", "audio": audio})
            else:
                text = _DUMPS(item)
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
            if self._response_id is None and self._awaiting_since is None:
                continue
            since = max(self._last_event, self._awaiting_since or 0.0)
            quiet = time.monotonic() - since
            if quiet > stall:
                waiting = "a reply" if self._response_id is None else f"reply {self._response_id}"
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
                    self._on_event(event)
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

    # -- server events --

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

    def _emit(self, event: RealtimeEvent, response_id: str | None = None) -> None:
        self._events.put_nowait((response_id, event))

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = _BETA_NAMES.get(event["type"], event["type"])
        if kind in _QUIET:
            return
        handler = self._HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)
        else:
            log.debug("%s: ignoring %s", self.name, kind, extra=self._log_extra)

    def _on_speech_started(self, event: dict[str, Any]) -> None:
        self._emit(UserSpeechStarted())

    def _on_speech_stopped(self, event: dict[str, Any]) -> None:
        if self._p.turn_detection is not None and self._response_id is None:
            self._awaiting_since = time.monotonic()  # the server VAD owes us a reply now
        self._emit(UserSpeechStopped())

    def _on_user_transcript_delta(self, event: dict[str, Any]) -> None:
        item = str(event.get("item_id"))
        text = self._user_text[item] = self._user_text.get(item, "") + str(event.get("delta") or "")
        self._emit(Transcript("user", text, final=False))

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        self._user_text.pop(str(event.get("item_id")), None)
        self._emit(Transcript("user", str(event.get("transcript") or "")))

    def _on_user_transcript_failed(self, event: dict[str, Any]) -> None:
        message, code = self._error_text(event)
        log.warning(
            "%s: transcribing the caller failed: %s (%s)", self.name, message, code, extra=self._log_extra
        )

    def _on_response_created(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        self._response_id = str(response.get("id") or "")
        self._awaiting_since = None

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        response_id = event.get("response_id")
        if response_id in self._cancelled:
            return
        try:
            data = base64.b64decode(event.get("delta") or "", validate=True)
        except (binascii.Error, ValueError):
            log.warning("%s: an audio delta is not base64; dropped", self.name, extra=self._log_extra)
            return
        item = event.get("item_id")
        if item is not None:
            if item not in self._item_bytes and len(self._item_bytes) >= _KEEP_ITEMS:
                del self._item_bytes[next(iter(self._item_bytes))]
            self._item_bytes[item] = self._item_bytes.get(item, 0) + len(data)
        self._emit(AgentAudio(AudioFrame(data, self.output_format), item), response_id)

    def _on_audio_done(self, event: dict[str, Any]) -> None:
        response_id = event.get("response_id")
        if response_id not in self._cancelled:
            self._emit(AgentAudioDone(event.get("item_id")), response_id)

    def _on_assistant_transcript_delta(self, event: dict[str, Any]) -> None:
        item = str(event.get("item_id"))
        text = self._assistant_text[item] = self._assistant_text.get(item, "") + str(event.get("delta") or "")
        self._emit(Transcript("assistant", text, final=False))

    def _on_assistant_transcript(self, event: dict[str, Any]) -> None:
        partial = self._assistant_text.pop(str(event.get("item_id")), "")
        self._emit(Transcript("assistant", str(event.get("transcript") or partial)))

    def _on_function_call(self, event: dict[str, Any]) -> None:
        call_id = str(event.get("call_id") or "")
        name = str(event.get("name") or "")
        raw = event.get("arguments") or ""
        problem: str | None = None
        arguments: Any = {}
        try:
            arguments = json.loads(raw) if str(raw).strip() else {}
        except (TypeError, ValueError) as exc:
            problem = f"the arguments are not valid JSON ({exc})"
        if problem is None and not isinstance(arguments, dict):
            problem = f"the arguments are a JSON {type(arguments).__name__}, not an object"
        if problem is None:
            self._open_calls.add(call_id)
            self._emit(ToolCall(call_id, name, arguments))
            return
        # Answer the call ourselves: a call with no output would leave the model waiting for one.
        shown = raw if len(raw) <= 200 else raw[:200] + "…"
        self._emit(
            SessionError(
                f"tool call {name!r} ({call_id}): {problem}: {shown!r}", code="invalid_tool_arguments"
            )
        )
        output = {"error": f"{problem}; call {name} again with a JSON object as its arguments"}
        self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": _DUMPS(output)},
            }
        )
        self._want_response = True
        self._maybe_create_response()

    def _on_response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        status = str(response.get("status") or "completed")
        details = response.get("status_details") or {}
        error = details.get("error") or {}
        reason = details.get("reason") or error.get("message") or error.get("code")
        if status == "failed":
            log.warning("%s: reply failed: %s", self.name, reason, extra=self._log_extra)
        self._response_id = None
        self._emit(ResponseDone(status, str(reason) if reason is not None else None))
        self._maybe_create_response()

    def _on_error(self, event: dict[str, Any]) -> None:
        message, code = self._error_text(event)
        err = event.get("error") or {}
        if err.get("event_id") in self._cancel_ids:
            log.debug(
                "%s: our response.cancel came too late (%s); ignored",
                self.name,
                message,
                extra=self._log_extra,
            )
            return
        if err.get("event_id") == self._create_id:
            self._awaiting_since = None  # our response.create was refused: no reply is coming
        log.warning("%s: server error: %s (%s)", self.name, message, code, extra=self._log_extra)
        self._emit(SessionError(message, fatal=False, code=code))

    _HANDLERS: ClassVar[dict[str, Callable[[OpenAIRealtimeSession, dict[str, Any]], None]]] = {
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.speech_stopped": _on_speech_stopped,
        "conversation.item.input_audio_transcription.delta": _on_user_transcript_delta,
        "conversation.item.input_audio_transcription.completed": _on_user_transcript,
        "conversation.item.input_audio_transcription.failed": _on_user_transcript_failed,
        "response.created": _on_response_created,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio.done": _on_audio_done,
        "response.output_audio_transcript.delta": _on_assistant_transcript_delta,
        "response.output_audio_transcript.done": _on_assistant_transcript,
        "response.function_call_arguments.done": _on_function_call,
        "response.done": _on_response_done,
        "error": _on_error,
    }

    # -- helpers --

    def _error_text(self, event: dict[str, Any]) -> tuple[str, str | None]:
        err = event.get("error") or {}
        if not isinstance(err, dict):
            return redact(str(err), self._p._secret), None
        message = str(err.get("message") or "no message")
        if err.get("param"):
            message += f" (param {err['param']})"
        code = err.get("code") or err.get("type")
        return redact(message, self._p._secret), str(code) if code else None

    def _send(self, event: dict[str, Any]) -> None:
        self._outbox.append(event)
        self._wake.set()

    def _create_response(self, response: dict[str, Any] | None = None) -> None:
        self._create_id = f"voxgate_response_{next(self._event_ids)}"
        event: dict[str, Any] = {"type": "response.create", "event_id": self._create_id}
        if response:
            event["response"] = response
        self._send(event)
        self._awaiting_since = time.monotonic()

    def _maybe_create_response(self) -> None:
        """Ask for the reply to tool outputs once no reply is running and no call is unanswered."""
        if (
            self._want_response
            and self._response_id is None
            and self._awaiting_since is None
            and not self._open_calls
            and not self._ended
        ):
            self._want_response = False
            self._create_response()

    def _drop(self, response_id: str) -> None:
        self._cancelled[response_id] = None
        while len(self._cancelled) > _KEEP_CANCELLED:
            del self._cancelled[next(iter(self._cancelled))]
