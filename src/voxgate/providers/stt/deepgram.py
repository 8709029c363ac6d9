"""Deepgram streaming STT over its `/v1/listen` WebSocket (aiohttp, no SDK): an `STT`.

Wire format: `../shared/protocols/deepgram-voice-agent.md` §5. Each `stream()` is one WebSocket:
the caller's audio goes out as binary frames (raw, in `input_format`: μ-law 8 kHz goes as it
comes off the phone line, nothing converted), control messages as JSON text. `end_input()` sends
`Finalize` then `CloseStream`; Deepgram flushes its last results, sends `Metadata` and closes.

Results become `SpeechEvent`s by the rules of §5. An utterance is built from `is_final` spans:
- `is_final: false`: an interim hypothesis for the current span; it comes out as an `interim`
  event whose text is the fixed spans so far plus this hypothesis;
- `is_final: true`: the span is fixed; it joins the utterance (and comes out as an `interim`
  with the fixed text so far);
- `speech_final: true` or `UtteranceEnd`: the utterance ended; its spans, joined, come out as
  one `final` event with `is_endpoint=True`, and the next utterance starts empty.
Final events are therefore disjoint: joining them (as `transcribe_utterance` does) gives the
whole transcript once. Spans still fixed but not yet endpointed when the stream ends (the
`from_finalize` results of `end_input()`) come out as a last endpointed final.

Errors: a refused upgrade (HTTP 401 bad key, 400 bad options: Deepgram puts its message in the
`dg-error` header) is a non-retryable `ProviderError` carrying that message; 429/5xx are
retryable. A close frame other than 1000 mid-stream (1008 `DATA-0000` bad audio, 1011
`NET-0000`/`NET-0001` timeouts) is a retryable `ProviderError` with the code and reason. The API
key only ever goes into the `Authorization: Token …` header: never in logs, repr or errors.

Timeouts here are socket backstops (connect, send, close). Noticing a stream that stalls is
`voxgate.providers.resilience.resilient_stream`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import aiohttp

from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import ProviderError, ProviderTimeout, SpeechEvent
from voxgate.providers.http import HTTPClient, status_error
from voxgate.providers.secrets import Secret, resolve_secret

log = logging.getLogger("voxgate.providers.stt")

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"

DeepgramEncoding = Literal["linear16", "mulaw", "alaw"]
_ENCODINGS: dict[str, Encoding] = {
    "linear16": Encoding.PCM16,
    "mulaw": Encoding.ULAW,
    "alaw": Encoding.ALAW,
}

_KEEPALIVE = '{"type":"KeepAlive"}'
_FINALIZE = '{"type":"Finalize"}'
_CLOSE_STREAM = '{"type":"CloseStream"}'
_STOP = object()  # the sender's last item, after CloseStream
_MAX_CHUNK_MS = 250  # a long frame (a whole utterance) goes out in chunks of at most this
_RETRYABLE_STATUS = frozenset({408, 429})


def _flag(value: bool) -> str:
    return "true" if value else "false"


class DeepgramSTT(HTTPClient):
    """Deepgram streaming speech-to-text (`nova-3` by default); register it as `deepgram`.

    Options:
    - `encoding`: `linear16`, `mulaw` or `alaw`: the audio sent, and this provider's
      `input_format`. Telephone audio is G.711 at 8 kHz: `mulaw` sends it unconverted.
    - `sample_rate`: default 16000 for linear16, 8000 for G.711.
    - `model`, `language`, `smart_format`, `keyterms` (nova-3 key terms, each a `keyterm`).
    - `interim_results`, `endpointing` (ms of silence before `speech_final`, or False),
      `utterance_end_ms` (needs interim results; None to leave it out).
    - `extra_params`: more query parameters, sent as given (`{"numerals": "true"}`).
    - `api_key` / `api_key_env` / `api_key_file`: the key, else `DEEPGRAM_API_KEY`.
    - `url`: the listen endpoint (a self-hosted Deepgram, a test server).
    - `connect_timeout_s`, `send_timeout_s`: socket backstops; `keepalive_interval_s`: idle time
      after which a `KeepAlive` goes out (Deepgram closes a stream silent for 10 s).
    """

    streams_during_speech = True  # the runner pushes the caller's audio as they speak

    def __init__(
        self,
        *,
        encoding: DeepgramEncoding = "linear16",
        sample_rate: int | None = None,
        model: str = "nova-3",
        language: str = "en",
        interim_results: bool = True,
        endpointing: int | Literal[False] = 300,
        utterance_end_ms: int | None = 1000,
        smart_format: bool = True,
        keyterms: Sequence[str] = (),
        extra_params: Mapping[str, str | Sequence[str]] | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | Path | None = None,
        url: str = DEFAULT_URL,
        connect_timeout_s: float = 5.0,
        send_timeout_s: float = 5.0,
        keepalive_interval_s: float = 4.0,
        name: str = "deepgram",
    ) -> None:
        if encoding not in _ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(_ENCODINGS)}, got {encoding!r}")
        if sample_rate is None:
            sample_rate = 16000 if encoding == "linear16" else 8000
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if endpointing is not False and (isinstance(endpointing, bool) or endpointing < 0):
            raise ValueError(f"endpointing is ms of silence (an int ≥ 0) or False, got {endpointing!r}")
        if keepalive_interval_s <= 0 or connect_timeout_s <= 0 or send_timeout_s <= 0:
            raise ValueError("connect_timeout_s, send_timeout_s and keepalive_interval_s must be positive")
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must be a ws:// or wss:// URL such as {DEFAULT_URL}, got {url!r}")
        self.name = name
        self.input_format = AudioFormat(_ENCODINGS[encoding], sample_rate)
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.send_timeout_s = send_timeout_s
        self.keepalive_interval_s = keepalive_interval_s
        key = resolve_secret(
            name,
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="DEEPGRAM_API_KEY",
        )
        assert key is not None  # required=True
        super().__init__(key)
        params: list[tuple[str, str]] = [
            ("model", model),
            ("language", language),
            ("encoding", encoding),
            ("sample_rate", str(sample_rate)),
            ("channels", "1"),
            ("interim_results", _flag(interim_results)),
            ("endpointing", "false" if endpointing is False else str(endpointing)),
        ]
        if interim_results and utterance_end_ms is not None:
            params.append(("utterance_end_ms", str(utterance_end_ms)))
        params.append(("smart_format", _flag(smart_format)))
        params += [("keyterm", term) for term in keyterms]
        for key, value in (extra_params or {}).items():
            values = [value] if isinstance(value, str) else list(value)
            params += [(key, str(v)) for v in values]
        self.params: tuple[tuple[str, str], ...] = tuple(params)

    def __repr__(self) -> str:
        return f"DeepgramSTT(url={self.url!r}, input_format={self.input_format}, api_key=***)"

    def stream(self) -> DeepgramSTTStream:
        """One utterance's stream; it connects on the first `push_audio()` (or iteration)."""
        return DeepgramSTTStream(self)

    # -- connecting --

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        """The listen WebSocket, or a `ProviderError` (raised outside any `except`, so no chained
        aiohttp exception carries the request headers, and with them the key)."""
        assert self._key is not None
        headers = {"Authorization": f"Token {self._key.value}"}
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                return await self._session_now().ws_connect(
                    self.url, params=list(self.params), headers=headers, autoping=True, **_ws_timeouts()
                )
        except aiohttp.WSServerHandshakeError as exc:
            failure = self._handshake_error(exc.status, exc.headers)
        except TimeoutError:
            failure = ProviderTimeout(
                self.name, f"no WebSocket handshake from {self.url} within {self.connect_timeout_s:g} s"
            )
        except (aiohttp.ClientError, OSError) as exc:
            detail = self._redact(exc)
            failure = ProviderError(self.name, f"cannot connect to {self.url}: {detail}", retryable=True)
        raise failure

    def _handshake_error(self, status: int, headers: Mapping[str, str] | None) -> ProviderError:
        headers = headers or {}
        if status < 400:
            return ProviderError(
                self.name,
                f"{self.url} answered HTTP {status} instead of upgrading to a WebSocket; is it a "
                "Deepgram listen endpoint?",
                retryable=False,
            )
        tail = ""
        if status == 400:
            tail = " (check the options: model, language, encoding, sample_rate, keyterms, extra_params)"
        if request_id := headers.get("dg-request-id"):
            tail += f" [request {request_id}]"
        return status_error(
            self.name,
            status,
            f"the server refused the stream: HTTP {status}",
            _dg_error_message(headers.get("dg-error", "")),
            secret=self._key,
            key_hint=" (check the API key: api_key, api_key_env, api_key_file or DEEPGRAM_API_KEY)",
            tail=tail,
            retryable=_RETRYABLE_STATUS,
        )


def _ws_timeouts() -> dict[str, Any]:
    """A short close handshake: `aclose()` must not hold a call for aiohttp's default 10 s."""
    ws_timeout = getattr(aiohttp, "ClientWSTimeout", None)
    if ws_timeout is not None:  # aiohttp ≥ 3.10
        return {"timeout": ws_timeout(ws_receive=None, ws_close=1.0)}
    return {"timeout": 1.0}


def _dg_error_message(raw: str) -> str:
    """The message of a Deepgram error body (`dg-error` header): `err_msg` (older API) or
    `message`/`details` (newer), with its code; the raw text if it is not JSON."""
    raw = raw.strip()
    if not raw:
        return ""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:300]
    if not isinstance(body, dict):
        return raw[:300]
    message = body.get("err_msg") or body.get("message") or body.get("details") or body.get("description")
    code = body.get("err_code") or body.get("category") or body.get("code")
    if not message:
        return raw[:300]
    return f"{message} ({code})" if code else str(message)


class _Utterance:
    """§5: fixed (`is_final`) spans of the current utterance, and what each message makes of them."""

    __slots__ = ("confidences", "spans")

    def __init__(self) -> None:
        self.spans: list[str] = []
        self.confidences: list[float] = []

    def text(self, hypothesis: str = "") -> str:
        return " ".join([*self.spans, hypothesis] if hypothesis else self.spans)

    def confidence(self) -> float | None:
        return min(self.confidences) if self.confidences else None

    def results(self, obj: Mapping[str, Any]) -> list[SpeechEvent]:
        alternatives = (obj.get("channel") or {}).get("alternatives") or [{}]
        best = alternatives[0] if isinstance(alternatives[0], dict) else {}
        text = str(best.get("transcript") or "").strip()
        confidence = best.get("confidence")
        confidence = float(confidence) if isinstance(confidence, int | float) else None
        if not obj.get("is_final"):
            return [SpeechEvent("interim", self.text(text), confidence)] if text else []
        if text:
            self.spans.append(text)
            if confidence is not None:
                self.confidences.append(confidence)
        if obj.get("speech_final"):
            return self.end()
        return [SpeechEvent("interim", self.text(), self.confidence())] if text else []

    def end(self) -> list[SpeechEvent]:
        """The utterance's final, endpointed event (nothing if no span was fixed); starts afresh."""
        if not self.spans:
            return []
        event = SpeechEvent("final", self.text(), self.confidence(), is_endpoint=True)
        self.spans.clear()
        self.confidences.clear()
        return [event]


class DeepgramSTTStream:
    """One listen WebSocket. `push_audio()` never blocks: frames queue for one sender task,
    which also sends `KeepAlive` when idle and `Finalize` + `CloseStream` after `end_input()`."""

    def __init__(self, stt: DeepgramSTT) -> None:
        self._stt = stt
        self.input_format = stt.input_format
        self._max_chunk = max(
            self.input_format.bytes_per_sample, self.input_format.frame_bytes(_MAX_CHUNK_MS)
        )
        self._outbox: asyncio.Queue[object] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[aiohttp.ClientWebSocketResponse] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._send_failure: ProviderError | None = None
        self._events: AsyncIterator[SpeechEvent] | None = None
        self._audio_bytes = 0
        self._ended = False
        self._closed = False

    # -- the caller's side --

    def push_audio(self, frame: AudioFrame) -> None:
        if frame.format != self.input_format:
            raise ValueError(
                f"{self._stt.name} needs {self.input_format} audio, got a {frame.format} frame; "
                "convert it with voxgate.audio.convert.AudioConverter first (or set this provider's "
                "encoding/sample_rate to the call's format)"
            )
        if len(frame.data) % self.input_format.bytes_per_sample:
            raise ValueError(f"{len(frame.data)} bytes is not a whole number of {self.input_format} samples")
        if self._ended:
            raise RuntimeError("push_audio() after end_input(): open a new stream for the next utterance")
        if self._closed or not frame.data:  # an empty binary frame would mean "close" to older servers
            return
        self._start()
        data = frame.data
        for start in range(0, len(data), self._max_chunk):
            self._outbox.put_nowait(data[start : start + self._max_chunk])
        self._audio_bytes += len(data)

    def end_input(self) -> None:
        """No more audio: ask Deepgram to flush (`Finalize`) and finish (`CloseStream`)."""
        if self._ended or self._closed:
            return
        self._ended = True
        if self._sender is None:  # no audio was ever pushed: nothing to recognise, no connection
            return
        self._outbox.put_nowait(_FINALIZE)
        self._outbox.put_nowait(_CLOSE_STREAM)
        self._outbox.put_nowait(_STOP)

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        if self._events is None:
            self._events = self._read()
        return self._events

    async def aclose(self) -> None:
        """Abandon the stream: stop sending, close the WebSocket. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        sender, self._sender = self._sender, None
        if sender is not None and not sender.done():
            sender.cancel()
            await asyncio.wait({sender})  # our own cancellation still propagates
        if self._ready is not None and self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: no "exception was never retrieved" warning
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()

    # -- sending --

    def _start(self) -> None:
        if self._sender is None and not self._closed:
            self._ready = asyncio.get_running_loop().create_future()
            self._sender = asyncio.create_task(self._send_loop(), name=f"{self._stt.name}-sender")

    async def _send_loop(self) -> None:
        assert self._ready is not None
        try:
            ws = await self._stt._connect()
        except ProviderError as exc:
            self._ready.set_exception(exc)
            return
        except BaseException:  # cancelled by aclose() while connecting
            self._ready.set_exception(ProviderError(self._stt.name, "closed while connecting", False))
            raise
        self._ws = ws
        self._ready.set_result(ws)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._stt.keepalive_interval_s):
                        item = await self._outbox.get()
                except TimeoutError:
                    await self._send(ws, _KEEPALIVE)
                    continue
                if item is _STOP:
                    return
                await self._send(ws, item)
        except ProviderError as exc:
            self._send_failure = exc
            with contextlib.suppress(Exception):  # a stuck socket may not take a close frame either
                async with asyncio.timeout(1.0):
                    await ws.close()  # wakes the reader first, which reports the failure
        except (aiohttp.ClientError, ConnectionError, OSError) as exc:
            # The server went away; the reader sees the close frame and reports that cause.
            self._send_failure = ProviderError(
                self._stt.name, f"sending failed: {type(exc).__name__}: {self._stt._redact(str(exc))}"
            )

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, item: object) -> None:
        try:
            async with asyncio.timeout(self._stt.send_timeout_s):
                if isinstance(item, bytes):
                    await ws.send_bytes(item)
                else:
                    await ws.send_str(str(item))
        except TimeoutError:
            raise ProviderTimeout(
                self._stt.name, f"a send took over {self._stt.send_timeout_s:g} s (the socket is stuck)"
            ) from None

    # -- receiving --

    async def _read(self) -> AsyncIterator[SpeechEvent]:
        if self._closed or (self._ended and self._sender is None):
            return
        self._start()
        assert self._ready is not None
        started = time.monotonic()
        utterance = _Utterance()
        try:
            try:
                ws = await self._ready  # raises the connect failure
            except ProviderError:
                if self._closed:
                    return
                raise
            while True:
                msg = await ws.receive()
                if self._closed:
                    return
                if msg.type is aiohttp.WSMsgType.TEXT:
                    events, done = self._message(msg.data, utterance)
                    for event in events:
                        yield event
                    if done:
                        break
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    log.debug("%s: ignoring a binary frame from the server", self._stt.name)
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    self._check_close(msg.data, msg.extra)
                    break
                else:  # CLOSING / CLOSED / ERROR: the connection went away without a close frame
                    self._check_close(ws.close_code, None)
                    break
            for event in utterance.end():  # spans fixed by Finalize/CloseStream, not yet endpointed
                yield event
            log.debug(
                "%s: stream done (%.0f ms of audio, %.0f ms)",
                self._stt.name,
                self.input_format.duration_ms(self._audio_bytes),
                (time.monotonic() - started) * 1000,
                extra={"provider": self._stt.name},
            )
        finally:
            await self.aclose()

    def _message(self, data: str, utterance: _Utterance) -> tuple[list[SpeechEvent], bool]:
        """The events of one server message, and whether the stream is over."""
        try:
            obj = json.loads(data)
        except ValueError:
            raise ProviderError(self._stt.name, f"a server message is not JSON: {data[:200]!r}") from None
        if not isinstance(obj, dict):
            return [], False
        kind = obj.get("type")
        if kind == "Results":
            return utterance.results(obj), False
        if kind == "UtteranceEnd":
            return utterance.end(), False
        if kind == "Metadata":
            log.debug(
                "%s: Metadata (request %s, %s s of audio)",
                self._stt.name,
                obj.get("request_id"),
                obj.get("duration"),
                extra={"provider": self._stt.name},
            )
            return [], self._ended  # after CloseStream: the last message before the close
        if kind == "Error" or "err_code" in obj:
            message = _dg_error_message(json.dumps(obj)) or data[:200]
            raise ProviderError(self._stt.name, f"error from the server: {self._stt._redact(message)}")
        return [], False  # SpeechStarted (vad_events) and anything newer: nothing to say

    def _check_close(self, code: int | None, reason: object) -> None:
        """A normal close (1000) ends the stream; anything else is a retryable error."""
        if self._closed:
            return
        if code == 1000 and self._send_failure is None:
            return
        if code == 1000 and self._send_failure is not None:
            raise self._send_failure
        why = str(reason or "").strip()
        text = f"the server closed the stream with code {code}" if code else "the connection was lost"
        if why:
            text += f" ({self._stt._redact(why[:300])})"
        if code == 1008:
            text += ": Deepgram could not decode the audio; check encoding and sample_rate"
        elif code == 1011 and "NET-0001" in why:
            text += ": no audio or KeepAlive reached Deepgram for 10 s"
        if self._send_failure is not None:
            text += f"; {self._send_failure.message}"
        raise ProviderError(self._stt.name, text, retryable=True)
