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

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from voxgate.audio.format import SLIN24, AudioFrame
from voxgate.providers.base import ProviderError, ProviderTimeout
from voxgate.providers.http import HTTPClient, dumps
from voxgate.providers.llm.openai_compat import endpoint_url, http_error
from voxgate.providers.secrets import Secret, resolve_secret
from voxgate.providers.tts._stream import AudioFramer

log = logging.getLogger("voxgate.providers.tts")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini-tts"
DEFAULT_VOICE = "alloy"


def speech_url(base_url: str) -> str:
    """`{base_url}/audio/speech`; a bare `scheme://host[:port]` gets the usual `/v1` first."""
    return endpoint_url(base_url, "/audio/speech", DEFAULT_BASE_URL)


class OpenAITTS(HTTPClient):
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
    _repr_fields = ("url", "model", "voice")

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
        key = resolve_secret(
            "openai",
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="OPENAI_API_KEY",
            required=urlsplit(self.url).hostname == "api.openai.com",
        )
        super().__init__(key, connect_timeout=connect_timeout, read_timeout=read_timeout)
        self.voice = voice
        self.model = model
        self.instructions = instructions
        self.speed = speed
        self.frame_ms = frame_ms

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

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        text = " ".join(text.split())
        if not text:
            return
        headers = {"Content-Type": "application/json"}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.value}"
        async with self._post(self.url, dumps(self.request_body(text)).encode(), headers) as response:
            framer = AudioFramer(self.output_format, self.frame_ms)
            async for chunk in response.content.iter_any():
                for frame in framer.frames(chunk):
                    yield frame
            if framer.pending:
                log.warning("%s: dropped a trailing odd byte of PCM audio", self.name)

    async def _http_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        return await http_error(
            self.name,
            response,
            secret=self._key,
            key_hint=" (check the OpenAI API key: OPENAI_API_KEY, api_key_env or api_key_file)",
            head=f"HTTP {response.status}",
        )

    def _network_error(self, exc: BaseException, doing: str, url: str | None = None) -> ProviderError:
        if isinstance(exc, TimeoutError):
            detail = self._redact(exc)
            return ProviderTimeout(self.name, f"socket timeout while {doing} {url or self.url} ({detail})")
        return super()._network_error(exc, doing, url)
