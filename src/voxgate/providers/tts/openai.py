"""OpenAI TTS (`POST {base_url}/audio/speech`), streamed as raw 24 kHz PCM.

One request per sentence: `{"model", "voice", "input", "response_format": "pcm"}` (plus
`instructions` and `speed` when set). With `response_format` "pcm" the body is headerless 16-bit
little-endian mono at 24 kHz, sent chunked as it is generated; it is yielded as it arrives (an odd
byte waits for its pair). The API has no G.711 or 8/16 kHz raw format, so `output_format` is
always pcm16@24000 and the call converts it.

Also works with OpenAI-compatible speech servers: give their `base_url` (a bare
`http://host:port` gets `/v1`); the API key is then optional.

Stopping early closes the HTTP connection, which is how the server learns to stop; a stream read
to its end returns its connection to the keep-alive pool. An HTTP error status becomes a
`ProviderError` with the server's message (`error.message`), retryable for 408/409/429/5xx.
The API key goes into the `Authorization` header only, never into logs, errors or `repr()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from voxgate.audio.format import SLIN24, AudioFrame
from voxgate.providers.base import ProviderError, ProviderTimeout
from voxgate.providers.llm.openai_compat import RETRYABLE_STATUS, error_message
from voxgate.providers.secrets import Secret, redact, resolve_secret

log = logging.getLogger("voxgate.providers.tts")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini-tts"
DEFAULT_VOICE = "alloy"

_MAX_ERROR_BODY = 64 * 1024
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def speech_url(base_url: str) -> str:
    """`{base_url}/audio/speech`; a bare `scheme://host[:port]` gets the usual `/v1` first."""
    base = base_url.rstrip("/")
    if base.endswith("/audio/speech"):
        return base
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {base_url!r}")
    if not parts.path:
        base += "/v1"
    return base + "/audio/speech"


class OpenAITTS:
    """OpenAI speech. Options:

    - `voice` ("alloy", "ash", "coral", "marin", "cedar", …), `model` ("gpt-4o-mini-tts",
      "tts-1", "tts-1-hd").
    - `instructions`: how to speak (tone, pace); gpt-4o-mini-tts only. `speed`: 0.25–4.0.
    - `output`: only "pcm_24000" (the one raw format the API streams); accepted so a config can
      say it explicitly.
    - `api_key` / `api_key_env` / `api_key_file`: default the OPENAI_API_KEY variable; optional
      when `base_url` is not OpenAI's.
    - `frame_ms`: longest frame yielded; `connect_timeout`, `read_timeout`: socket backstops, s.
    """

    name = "openai-tts"
    output_format = SLIN24

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        model: str = DEFAULT_MODEL,
        instructions: str | None = None,
        speed: float | None = None,
        output: str = "pcm_24000",
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | Path | None = None,
        base_url: str = DEFAULT_BASE_URL,
        frame_ms: int = 20,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        if output != "pcm_24000":
            raise ValueError(
                f"OpenAI TTS streams raw audio only as pcm_24000, not {output!r}; the call converts it"
            )
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed is 0.25..4.0, got {speed}")
        if not voice or not model:
            raise ValueError("voice and model are required")
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {frame_ms}")
        self.url = speech_url(base_url)
        self._key = resolve_secret(
            "openai",
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="OPENAI_API_KEY",
            required=urlsplit(self.url).hostname == "api.openai.com",
        )
        self.voice = voice
        self.model = model
        self.instructions = instructions
        self.speed = speed
        self.frame_ms = frame_ms
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        key = ", api_key=***" if self._key is not None else ""
        return f"OpenAITTS(url={self.url!r}, model={self.model!r}, voice={self.voice!r}{key})"

    def request_body(self, text: str) -> dict[str, Any]:
        """The JSON body POSTed for one sentence."""
        body: dict[str, Any] = {
            "model": self.model,
            "voice": self.voice,
            "input": text,
            "response_format": "pcm",
        }
        if self.instructions:
            body["instructions"] = self.instructions
        if self.speed is not None:
            body["speed"] = self.speed
        return body

    def _session_now(self) -> aiohttp.ClientSession:
        session = self._session
        loop = asyncio.get_running_loop()
        if session is None or session.closed or self._loop is not loop:
            self._loop = loop  # a session belongs to one event loop
            session = self._session = aiohttp.ClientSession(timeout=self._timeout)
        return session

    async def aclose(self) -> None:
        """Close the connection pool (a later `synthesize()` opens a new one)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> OpenAITTS:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        text = " ".join(text.split())
        if not text:
            return
        headers = {"Content-Type": "application/json"}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.value}"
        try:
            response = await self._session_now().post(
                self.url, data=_DUMPS(self.request_body(text)).encode(), headers=headers
            )
        except (aiohttp.ClientError, OSError) as exc:
            raise self._network_error(exc, "connecting to") from None
        fmt = self.output_format
        step = fmt.frame_bytes(self.frame_ms)
        clean = False
        try:
            if response.status >= 400:
                raise await self._http_error(response)
            carry = b""  # an odd byte waits for its pair
            async for chunk in response.content.iter_any():
                data = carry + chunk if carry else chunk
                whole = len(data) - len(data) % 2
                carry = data[whole:]
                for start in range(0, whole, step):
                    yield AudioFrame(data[start : min(start + step, whole)], fmt)
            if carry:
                log.warning("%s: dropped a trailing odd byte of PCM audio", self.name)
            clean = True
        except (aiohttp.ClientError, OSError) as exc:
            raise self._network_error(exc, "reading the stream from") from None
        finally:
            if clean:
                response.release()  # read to its end: the connection goes back to the pool
            else:
                response.close()  # stopped early or failed: closing tells the server to stop

    async def _http_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        status = response.status
        try:
            body = await response.content.read(_MAX_ERROR_BODY)
        except (aiohttp.ClientError, OSError):
            body = b""
        message, kind = "", ""
        try:
            message, kind = error_message(json.loads(body))
        except ValueError:
            message = body[:300].decode("utf-8", "replace").strip()
        text = f"HTTP {status}"
        if message:
            text += f": {self._safe(message)}"
        if kind:
            text += f" ({kind})"
        if status == 429 and (after := response.headers.get("Retry-After")):
            text += f"; retry after {after} s"
        if status in (401, 403):
            text += " (check the OpenAI API key: OPENAI_API_KEY, api_key_env or api_key_file)"
        return ProviderError(self.name, text, retryable=status >= 500 or status in RETRYABLE_STATUS)

    def _network_error(self, exc: BaseException, doing: str) -> ProviderError:
        detail = self._safe(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, TimeoutError):
            return ProviderTimeout(self.name, f"socket timeout while {doing} {self.url} ({detail})")
        return ProviderError(self.name, f"{doing} {self.url} failed: {detail}", retryable=True)

    def _safe(self, text: str) -> str:
        return redact(text, self._key)
