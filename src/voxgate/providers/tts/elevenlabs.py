"""ElevenLabs streaming TTS: the HTTP stream (default) or the `stream-input` WebSocket.

Wire format: `../shared/protocols/elevenlabs.md` §1–2. The audio format is the `output_format`
query parameter; ask for the call leg's own (`output="ulaw_8000"` on a μ-law leg: no conversion
at all, `"pcm_16000"` for AudioSocket slin16). MP3/Opus formats are refused: frames here are
raw PCM or G.711 only.

- `mode="http"`: `POST /v1/text-to-speech/{voice_id}/stream?output_format=…` with a JSON body;
  the chunked response body is the raw audio, yielded as it arrives (an odd byte of PCM waits
  for its pair). Stopping early closes the HTTP connection, which is how ElevenLabs learns to
  stop; a stream read to its end returns its connection to the keep-alive pool, so the next
  sentence skips the handshake.
- `mode="websocket"`: one `stream-input` socket per sentence: initial message (`"text": " "`),
  the text with `"flush": true`, then `{"text": ""}` to end; audio comes back base64 in JSON
  messages until `"isFinal": true`. Stopping early closes the socket. It costs a handshake per
  sentence; its advantage (feeding text while an LLM writes it) needs a text-streaming TTS seam
  we do not have yet, so HTTP is the default.

Errors: an HTTP error status becomes a `ProviderError` with the server's own message (`detail`),
retryable for 408/429/5xx; an error message or a close before `isFinal` on the socket too. The
API key goes into the `xi-api-key` header only, never into logs, errors or `repr()`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

from voxgate.audio.format import ALAW8, ULAW8, AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import ProviderError, ProviderTimeout
from voxgate.providers.http import HTTPClient, dumps, error_body, status_error
from voxgate.providers.secrets import Secret, resolve_secret
from voxgate.providers.tts._stream import AudioFramer

log = logging.getLogger("voxgate.providers.tts")

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_flash_v2_5"
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", a premade voice every account has

OUTPUT_FORMATS: dict[str, AudioFormat] = {
    **{
        f"pcm_{rate}": AudioFormat(Encoding.PCM16, rate)
        for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)
    },
    "ulaw_8000": ULAW8,
    "alaw_8000": ALAW8,
}
"""`output` option (ElevenLabs' own `output_format` names) → the format of the frames yielded."""

RETRYABLE_STATUS = frozenset({408, 429})
"""HTTP statuses worth another try, besides every 5xx."""

_RETRYABLE_CLOSE = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
_CLOSE_TIMEOUT_S = 2.0


class ElevenLabsTTS(HTTPClient):
    """ElevenLabs TTS. Options:

    - `voice`: the voice_id; `model`: the model_id ("eleven_flash_v2_5": lowest latency).
    - `output`: "ulaw_8000", "alaw_8000" or "pcm_<rate>" (8000, 16000, 22050, 24000, 32000,
      44100, 48000); `output_format` follows.
    - `mode`: "http" (default) or "websocket" (see the module docstring).
    - `voice_settings`: {"stability", "similarity_boost", "style", "use_speaker_boost", "speed"},
      sent when given; `language_code`: e.g. "en", sent when given.
    - `generation_config`: websocket only, e.g. {"chunk_length_schedule": [120, 160, 250, 290]}.
    - `api_key` / `api_key_env` / `api_key_file`: default the ELEVENLABS_API_KEY variable.
    - `base_url`: the API root ("https://api.elevenlabs.io"; wss:// is derived for the socket).
    - `frame_ms`: longest frame yielded; `connect_timeout`, `read_timeout`: socket backstops, s.
    """

    name = "elevenlabs"
    _repr_fields = ("voice", "model", "output", "mode")

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        model: str = DEFAULT_MODEL,
        output: str = "pcm_16000",
        mode: Literal["http", "websocket"] = "http",
        voice_settings: Mapping[str, Any] | None = None,
        language_code: str | None = None,
        generation_config: Mapping[str, Any] | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | Path | None = None,
        base_url: str = DEFAULT_BASE_URL,
        frame_ms: int = 20,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        if output not in OUTPUT_FORMATS:
            raise ValueError(
                f"ElevenLabs output {output!r} cannot be played as is; use one of {', '.join(OUTPUT_FORMATS)}"
            )
        if mode not in ("http", "websocket"):
            raise ValueError(f"mode must be 'http' or 'websocket', got {mode!r}")
        if not voice:
            raise ValueError("voice (an ElevenLabs voice_id) is required")
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {frame_ms}")
        base = base_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {base_url!r}")
        key = resolve_secret(
            "elevenlabs",
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="ELEVENLABS_API_KEY",
        )
        assert key is not None
        super().__init__(key, connect_timeout=connect_timeout, read_timeout=read_timeout)
        self.voice = voice
        self.model = model
        self.output = output
        self.output_format = OUTPUT_FORMATS[output]
        self.mode = mode
        self.voice_settings = dict(voice_settings) if voice_settings is not None else None
        self.language_code = language_code
        self.generation_config = dict(generation_config) if generation_config is not None else None
        self.frame_ms = frame_ms
        path = f"/v1/text-to-speech/{quote(voice, safe='')}"
        self.url = f"{base}{path}/stream?{urlencode({'output_format': output})}"
        ws_query = [("model_id", model), ("output_format", output)]
        if language_code:
            ws_query.append(("language_code", language_code))
        ws_base = ("wss" if parts.scheme == "https" else "ws") + base[len(parts.scheme) :]
        self.ws_url = f"{ws_base}{path}/stream-input?{urlencode(ws_query)}"
        self._tasks: set[asyncio.Task[None]] = set()

    # -- requests --

    def request_body(self, text: str) -> dict[str, Any]:
        """The JSON body of the HTTP stream request."""
        body: dict[str, Any] = {"text": text, "model_id": self.model}
        if self.language_code:
            body["language_code"] = self.language_code
        if self.voice_settings is not None:
            body["voice_settings"] = self.voice_settings
        return body

    def initial_message(self) -> dict[str, Any]:
        """The socket's first message: a single space, then the settings that apply to it."""
        message: dict[str, Any] = {"text": " "}
        if self.voice_settings is not None:
            message["voice_settings"] = self.voice_settings
        if self.generation_config is not None:
            message["generation_config"] = self.generation_config
        return message

    # -- lifecycle --

    def _session_now(self) -> aiohttp.ClientSession:
        if self._loop is not asyncio.get_running_loop():
            self._tasks = set()  # like the session, the tasks closing its sockets belong to one loop
        return super()._session_now()

    async def aclose(self) -> None:
        """Close the connection pool (a later `synthesize()` opens a new one)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().aclose()

    # -- synthesis --

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        text = " ".join(text.split())
        return self._http(text) if self.mode == "http" else self._websocket(text)

    async def _http(self, text: str) -> AsyncIterator[AudioFrame]:
        if not text:
            return
        headers = {"xi-api-key": self._key.value, "Content-Type": "application/json"}
        data = dumps(self.request_body(text)).encode()
        async with self._post(self.url, data, headers) as response:
            framer = AudioFramer(self.output_format, self.frame_ms)
            async for chunk in response.content.iter_any():
                for frame in framer.frames(chunk):
                    yield frame
            if framer.pending:
                log.warning("%s: dropped a trailing odd byte of PCM audio", self.name)

    async def _websocket(self, text: str) -> AsyncIterator[AudioFrame]:
        if not text:
            return
        try:
            ws = await self._session_now().ws_connect(
                self.ws_url, headers={"xi-api-key": self._key.value}, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise self._status_error(
                exc.status, f"the WebSocket upgrade to {self.ws_url} was refused with HTTP {exc.status}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._network_error(exc, "connecting to", self.ws_url) from None
        try:
            for message in (self.initial_message(), {"text": text + " ", "flush": True}, {"text": ""}):
                await ws.send_str(dumps(message))
            framer = AudioFramer(self.output_format, self.frame_ms)
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    event = self._ws_event(msg.data)
                    audio = event.get("audio")
                    if audio:
                        try:
                            chunk = base64.b64decode(audio, validate=True)
                        except (binascii.Error, TypeError):
                            raise ProviderError(self.name, "an audio message is not valid base64") from None
                        for frame in framer.frames(chunk):
                            yield frame
                    if event.get("isFinal"):
                        break
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    code = ws.close_code if ws.close_code is not None else msg.data
                    reason = msg.extra if isinstance(msg.extra, str) and msg.extra else ""
                    raise ProviderError(
                        self.name,
                        f"ElevenLabs closed the socket before the end of the audio (code {code}"
                        f"{': ' + self._redact(reason) if reason else ''})",
                        retryable=code is None or code in _RETRYABLE_CLOSE,
                    )
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    raise ProviderError(
                        self.name, f"the socket to ElevenLabs failed: {self._redact(msg.data)}"
                    )
                # binary frames are not part of this protocol: ignored
            if framer.pending:
                log.warning("%s: dropped a trailing odd byte of PCM audio", self.name)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise self._network_error(exc, "talking to", self.ws_url) from None
        finally:
            self._spawn_close(ws)

    def _ws_event(self, raw: str) -> dict[str, Any]:
        try:
            event = json.loads(raw)
        except ValueError:
            raise ProviderError(self.name, f"a socket message is not JSON: {raw[:200]!r}") from None
        if not isinstance(event, dict):
            raise ProviderError(self.name, f"a socket message is a JSON {type(event).__name__}")
        error = event.get("error")
        if error or ("message" in event and "audio" not in event and "isFinal" not in event):
            message = event.get("message") or error  # the error message's shape is UNCONFIRMED
            detail = _detail_text(message) if not isinstance(message, str) else message
            kind = f" ({error})" if isinstance(error, str) and error != message else ""
            raise ProviderError(
                self.name,
                f"ElevenLabs error{kind}: {self._redact(detail)}",
                retryable=_retryable_kind(str(error or "")),
            )
        return event

    def _spawn_close(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Close the socket off the caller's path (a barge-in must not wait for the handshake)."""

        async def close() -> None:
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await ws.close()
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                log.debug("%s: closing the socket: %s", self.name, self._redact(exc))

        try:
            task = asyncio.get_running_loop().create_task(close())
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- errors --

    async def _http_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        payload, text = await error_body(response)
        message = _detail_text(payload.get("detail", payload) if isinstance(payload, dict) else payload)
        return self._status_error(
            response.status, f"HTTP {response.status}", message or text, response.headers.get("Retry-After")
        )

    def _status_error(
        self, status: int, head: str, message: str = "", retry_after: str | None = None
    ) -> ProviderError:
        return status_error(
            self.name,
            status,
            head,
            message,
            secret=self._key,
            retry_after=retry_after,
            key_hint=" (check the ElevenLabs API key: ELEVENLABS_API_KEY, api_key_env or api_key_file)",
            retryable=RETRYABLE_STATUS,
        )

    def _network_error(self, exc: BaseException, doing: str, url: str | None = None) -> ProviderError:
        if isinstance(exc, TimeoutError):
            return ProviderTimeout(
                self.name, f"socket timeout while {doing} ElevenLabs ({self._redact(exc)})"
            )
        return super()._network_error(exc, doing, url)


def _detail_text(detail: Any) -> str:
    """ElevenLabs' `detail`: {"status", "message"}, a string, or FastAPI's list of field errors."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        message = detail.get("message") or detail.get("msg")
        status = detail.get("status") or detail.get("code")
        if message:
            return f"{message} ({status})" if status else str(message)
        return json.dumps(detail)[:300]
    if isinstance(detail, list):
        return "; ".join(_detail_text(item) for item in detail[:5])
    return "" if detail is None else str(detail)[:300]


def _retryable_kind(kind: str) -> bool:
    kind = kind.lower()
    return any(word in kind for word in ("rate", "busy", "overload", "timeout", "unavailable", "internal"))
