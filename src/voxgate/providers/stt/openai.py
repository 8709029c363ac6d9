"""OpenAI speech-to-text (`POST /audio/transcriptions`), or any server that speaks it: a `BatchSTT`.

One request per utterance: a multipart form with `file` (a WAV built in memory from the
utterance's pcm16 at 16 kHz), `model` (`gpt-4o-mini-transcribe` by default; `whisper-1`, or
whatever a local server calls its model), `language`, an optional `prompt` (vocabulary, spelling
hints) and `response_format=json`; the answer's `text` is the transcript. Besides OpenAI this
works with the OpenAI-compatible servers that transcribe (faster-whisper-server/speaches,
whisper.cpp's server with its OpenAI route, vLLM, Groq).

Registered as `openai-stt`, the registry wraps it in `BatchSTTAdapter`: the turn detector ends
the utterance, then it is sent whole.

Errors: an HTTP error status becomes a `ProviderError` carrying the server's own message
(`error.message`), retryable for 408/409/429/5xx, as in `voxgate.providers.llm.openai_compat`.
Timeouts here are socket backstops; the deadline of a turn is the caller's (`transcribe_utterance`).
The API key only goes into the `Authorization: Bearer` header, never in logs, repr or errors.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from voxgate.audio.format import SLIN16, AudioFormat
from voxgate.providers.base import ProviderError, ProviderTimeout
from voxgate.providers.batch_stt import check_utterance
from voxgate.providers.http import HTTPClient
from voxgate.providers.llm.openai_compat import endpoint_url, error_message, http_error
from voxgate.providers.secrets import Secret, resolve_secret

log = logging.getLogger("voxgate.providers.stt")

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """`pcm` (mono 16-bit little-endian) in a canonical 44-byte-header RIFF/WAVE container."""
    return (
        struct.pack(
            "<4sI4s4sIHHIIHH4sI",
            b"RIFF",
            36 + len(pcm),
            b"WAVE",
            b"fmt ",
            16,  # fmt chunk size (PCM)
            1,  # format: PCM
            1,  # channels
            sample_rate,
            sample_rate * 2,  # byte rate
            2,  # block align
            16,  # bits per sample
            b"data",
            len(pcm),
        )
        + pcm
    )


def transcriptions_url(base_url: str) -> str:
    """`{base_url}/audio/transcriptions`; a bare `scheme://host[:port]` gets the usual `/v1` first."""
    return endpoint_url(base_url, "/audio/transcriptions", DEFAULT_BASE_URL)


class OpenAITranscribeSTT(HTTPClient):
    """Whole-utterance transcription over `/audio/transcriptions`; takes pcm16 at 16 kHz.

    Options:
    - `model`: `gpt-4o-mini-transcribe` (default), `gpt-4o-transcribe`, `whisper-1`, or the
      name a compatible server knows.
    - `base_url`: the API root with its version path; default OpenAI's.
    - `language`: ISO-639-1 code sent as a hint (None to let the model detect it).
    - `prompt`: text to guide the model (names, spellings); `temperature`: sent only when set.
    - `api_key` / `api_key_env` / `api_key_file`: the key. For OpenAI's own URL it is required
      and defaults to `OPENAI_API_KEY`; any other server gets a key only when one is given here
      (a local server needs none, and the OpenAI key is not sent to a third party unasked).
    - `extra_fields`: more form fields (e.g. a server's own options).
    - `connect_timeout_s`, `read_timeout_s`: socket backstops, in s.
    """

    input_format: AudioFormat = SLIN16
    _repr_fields = ("url", "model")

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini-transcribe",
        base_url: str = DEFAULT_BASE_URL,
        language: str | None = "en",
        prompt: str | None = None,
        temperature: float | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | Path | None = None,
        headers: Mapping[str, str] | None = None,
        extra_fields: Mapping[str, str] | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_connections: int = 100,
        name: str = "openai-stt",
    ) -> None:
        if not model:
            raise ValueError("model is required (e.g. gpt-4o-mini-transcribe or whisper-1)")
        self.name = name
        self.url = transcriptions_url(base_url)
        self.model = model
        self.language = language
        self.prompt = prompt
        self.temperature = temperature
        self.extra_fields = dict(extra_fields or {})
        is_openai = urlsplit(self.url).hostname == "api.openai.com"
        key = resolve_secret(
            name,
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="OPENAI_API_KEY" if is_openai else None,  # never sent to another server unasked
            required=is_openai,
        )
        super().__init__(
            key,
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            max_connections=max_connections,
        )
        self._headers = {"Accept": "application/json", **(headers or {})}
        if key is not None:
            self._headers["Authorization"] = f"Bearer {key.value}"

    def form(self, pcm: bytes) -> aiohttp.FormData:
        """The multipart form POSTed for one utterance (`pcm`: pcm16 at 16 kHz)."""
        form = aiohttp.FormData(quote_fields=False)
        form.add_field(
            "file",
            wav_bytes(pcm, self.input_format.sample_rate),
            filename="audio.wav",
            content_type="audio/wav",
        )
        form.add_field("model", self.model)
        form.add_field("response_format", "json")
        if self.language:
            form.add_field("language", self.language)
        if self.prompt:
            form.add_field("prompt", self.prompt)
        if self.temperature is not None:
            form.add_field("temperature", f"{self.temperature:g}")
        for key, value in self.extra_fields.items():
            form.add_field(key, str(value))
        return form

    async def transcribe(self, pcm: bytes, fmt: AudioFormat) -> str:
        check_utterance(self, pcm, fmt)
        if not pcm:
            return ""
        started = time.monotonic()
        failure: ProviderError | None = None
        body = b""
        try:
            async with self._session_now().post(self.url, data=self.form(pcm), headers=self._headers) as resp:
                if resp.status >= 400:
                    failure = await self._http_error(resp)
                else:
                    body = await resp.read()
        except TimeoutError:  # before ClientError: aiohttp's socket timeouts are both
            failure = ProviderTimeout(self.name, f"socket timeout talking to {self.url}")
        except aiohttp.ClientError as exc:
            detail = self._redact(exc)
            failure = ProviderError(self.name, f"POST {self.url} failed: {detail}", retryable=True)
        if failure is not None:
            raise failure  # outside the except: no chained aiohttp error carrying the headers
        text = self._text(body)
        log.debug(
            "%s: %.0f ms of audio transcribed in %.0f ms",
            self.name,
            self.input_format.duration_ms(len(pcm)),
            (time.monotonic() - started) * 1000,
            extra={"provider": self.name},
        )
        return text

    # -- helpers --

    def _text(self, body: bytes) -> str:
        try:
            obj: Any = json.loads(body)
        except ValueError:
            raise ProviderError(
                self.name, f"the answer is not JSON: {body[:200]!r}", retryable=False
            ) from None
        if isinstance(obj, dict) and obj.get("error") is not None:
            message, kind = error_message(obj)
            raise ProviderError(
                self.name, self._redact(message or "error without a message") + (f" ({kind})" if kind else "")
            )
        text = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(text, str):
            raise ProviderError(
                self.name, f"the answer has no 'text' string: {body[:200]!r}", retryable=False
            )
        return text.strip()

    async def _http_error(self, resp: aiohttp.ClientResponse) -> ProviderError:
        return await http_error(
            self.name,
            resp,
            secret=self._key,
            key_hint=" (check the API key: api_key, api_key_env, api_key_file or OPENAI_API_KEY)",
        )
