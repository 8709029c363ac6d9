"""Deepgram Aura TTS over its streaming WebSocket, `wss://api.deepgram.com/v1/speak`.

Wire format: `../shared/protocols/deepgram-voice-agent.md` §6. The audio format is chosen in the
URL (`model`, `encoding`, `sample_rate`); each sentence is `{"type":"Speak","text":…}` then
`{"type":"Flush"}`, answered by binary audio chunks and `{"type":"Flushed"}` after the last one.
Ask for the call leg's own format (`output="ulaw_8000"` on a μ-law leg, `"pcm_16000"` for
AudioSocket slin16) and nothing is converted on the way out.

Connections: a socket costs a TLS and WebSocket handshake (100–300 ms to Deepgram), so each
instance keeps a small pool of open sockets and reuses them sentence after sentence. A socket
serves one `synthesize()` at a time (it is taken out of the pool while in use), so concurrent
calls sharing one provider each get their own. A socket that sat idle longer than `idle_ttl_s`
is closed rather than trusted; one that the server closed while idle is noticed before any
audio and the sentence is sent again on a fresh socket.

Barge-in (the iterator closed or cancelled before `Flushed`): `{"type":"Clear"}` is sent so the
server stops generating, and that socket is closed cleanly instead of going back to the pool,
because whether a cleared Flush still reports `Flushed` later is not confirmed, and a stray one
would end the next sentence early. A replacement socket is opened in the background, so the
next reply does not pay the handshake. All of this happens off the caller's path.

`Warning` messages are logged; an `Error` message, a close or a failed handshake raise
`ProviderError`. Timeouts and retries are `voxgate.providers.resilience`'s job. The API key
goes into the `Authorization: Token` header only, never into logs, errors or `repr()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from voxgate.audio.format import ALAW8, ULAW8, AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import ProviderError, ProviderTimeout
from voxgate.providers.http import HTTPClient, status_error
from voxgate.providers.secrets import Secret, resolve_secret
from voxgate.providers.tts._stream import AudioFramer

log = logging.getLogger("voxgate.providers.tts")

DEFAULT_URL = "wss://api.deepgram.com/v1/speak"
DEFAULT_MODEL = "aura-2-thalia-en"

OUTPUTS: dict[str, tuple[str, AudioFormat]] = {
    **{
        f"pcm_{rate}": ("linear16", AudioFormat(Encoding.PCM16, rate))
        for rate in (8000, 16000, 24000, 32000, 48000)
    },
    "ulaw_8000": ("mulaw", ULAW8),
    "alaw_8000": ("alaw", ALAW8),
}
"""`output` option → (Aura `encoding`, the format of the frames yielded)."""

_RETRYABLE_CLOSE = frozenset({1001, 1006, 1011, 1012, 1013, 1014})  # going away, abnormal, server error
_RETRYABLE_STATUS = frozenset({408, 429})
_CLOSE_TIMEOUT_S = 2.0
_FLUSH = '{"type":"Flush"}'
_CLEAR = '{"type":"Clear"}'


@dataclass(eq=False, slots=True)
class _Socket:
    ws: aiohttp.ClientWebSocketResponse
    idle_since: float = 0.0
    reused: bool = False


class _Dropped(ProviderError):
    """The socket closed or broke before the sentence finished."""


class DeepgramAuraTTS(HTTPClient):
    """Streaming Aura TTS. Options:

    - `model` (or `voice`, which wins when both are given: in Aura the model is the voice):
      e.g. "aura-2-thalia-en", "aura-2-andromeda-en".
    - `output`: "ulaw_8000", "alaw_8000" or "pcm_<rate>" for 8000/16000/24000/32000/48000 Hz.
    - `speed`, `mip_opt_out`: sent as query parameters when set.
    - `api_key` / `api_key_env` / `api_key_file`: default the DEEPGRAM_API_KEY variable.
    - `url`: the endpoint (a proxy, a self-hosted Deepgram, a test server).
    - `frame_ms`: longest frame yielded (audio is yielded as it arrives, cut to this size).
    - `max_idle`: sockets kept open between sentences; `idle_ttl_s`: how long one may sit idle.
    - `connect_timeout`: backstop for connecting and the handshake, in s.
    """

    name = "deepgram-tts"
    _repr_fields = ("model", "output")

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        voice: str | None = None,
        output: str = "pcm_16000",
        speed: float | None = None,
        mip_opt_out: bool | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | Path | None = None,
        url: str = DEFAULT_URL,
        frame_ms: int = 20,
        max_idle: int = 4,
        idle_ttl_s: float = 30.0,
        connect_timeout: float = 5.0,
    ) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"Deepgram Aura output {output!r} is not one of {', '.join(OUTPUTS)}")
        if frame_ms <= 0 or max_idle < 0 or idle_ttl_s < 0:
            raise ValueError("frame_ms must be > 0, max_idle and idle_ttl_s >= 0")
        key = resolve_secret(
            "deepgram",
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="DEEPGRAM_API_KEY",
        )
        assert key is not None
        # read_timeout bounds the handshake only: aiohttp lifts it once the socket is a WebSocket
        super().__init__(key, connect_timeout=connect_timeout, read_timeout=connect_timeout)
        self.model = voice or model
        encoding, self.output_format = OUTPUTS[output]
        self.output = output
        query: list[tuple[str, str]] = [
            ("model", self.model),
            ("encoding", encoding),
            ("sample_rate", str(self.output_format.sample_rate)),
        ]
        if speed is not None:
            query.append(("speed", f"{speed:g}"))
        if mip_opt_out is not None:
            query.append(("mip_opt_out", "true" if mip_opt_out else "false"))
        self.url = f"{url}?{urlencode(query)}"
        self.frame_ms = frame_ms
        self.max_idle = max_idle
        self.idle_ttl_s = idle_ttl_s
        self._idle: deque[_Socket] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def idle_connections(self) -> int:
        """Open sockets waiting for the next sentence."""
        return len(self._idle)

    # -- lifecycle --

    async def warm_up(self) -> None:
        """Open one socket now, so the first sentence skips the handshake."""
        if not self._idle_now():
            self._release(await self._connect())

    async def aclose(self) -> None:
        """Close every socket and the HTTP session (a later `synthesize()` opens new ones)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)  # closes and spares, all bounded
        idle, self._idle = list(self._idle), deque()
        await asyncio.gather(*(self._close(s.ws) for s in idle), return_exceptions=True)
        await super().aclose()

    # -- synthesis --

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        text = " ".join(text.split())
        if not text:
            return
        sock = await self._acquire()
        try:
            try:
                chunk = await self._speak(sock, text)
            except _Dropped as exc:
                if not sock.reused:
                    raise
                log.debug("%s: a pooled socket had closed (%s); reconnecting", self.name, exc.message)
                self._discard(sock)
                sock = await self._connect()
                chunk = await self._speak(sock, text)
            framer = AudioFramer(self.output_format, self.frame_ms)
            while chunk is not None:
                for frame in framer.frames(chunk):
                    yield frame
                chunk = await self._next_audio(sock)
            if framer.pending:
                log.warning("%s: dropped a trailing odd byte of linear16 audio", self.name)
        except ProviderError:
            self._discard(sock)
            raise
        except BaseException:  # closed or cancelled mid-sentence: barge-in
            self._discard(sock, clear=True)
            raise
        else:
            self._release(sock)

    async def _speak(self, sock: _Socket, text: str) -> bytes | None:
        """Send one sentence and its Flush; the first audio chunk (None: Flushed, no audio)."""
        try:
            await sock.ws.send_str(json.dumps({"type": "Speak", "text": text}, ensure_ascii=False))
            await sock.ws.send_str(_FLUSH)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise _Dropped(self.name, f"sending to Deepgram failed: {self._redact(exc)}") from None
        return await self._next_audio(sock)

    async def _next_audio(self, sock: _Socket) -> bytes | None:
        """The next binary chunk, or None at `Flushed`. Control messages are handled on the way."""
        ws = sock.ws
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                if self._control(msg.data):
                    return None
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                code = ws.close_code if ws.close_code is not None else msg.data
                reason = msg.extra if isinstance(msg.extra, str) and msg.extra else ""
                why = f": {self._redact(reason)}" if reason else ""
                raise _Dropped(
                    self.name,
                    f"Deepgram closed the connection (code {code}{why})",
                    retryable=code is None or code in _RETRYABLE_CLOSE,
                )
            elif msg.type is aiohttp.WSMsgType.ERROR:
                raise _Dropped(self.name, f"the connection to Deepgram failed: {self._redact(msg.data)}")

    def _control(self, raw: str) -> bool:
        """Handle one JSON message; True when it is the `Flushed` that ends the sentence."""
        try:
            event: Any = json.loads(raw)
        except ValueError:
            raise ProviderError(
                self.name, f"Deepgram sent a text frame that is not JSON: {raw[:200]!r}"
            ) from None
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "Flushed":
            return True
        if kind == "Warning":
            log.warning(
                "%s: Deepgram warning %s: %s",
                self.name,
                event.get("code", "-"),
                self._redact(event.get("description", "")),
                extra={"provider": self.name},
            )
        elif kind == "Error":  # not in the notes; Deepgram's other sockets use it
            message = event.get("description") or event.get("err_msg") or event.get("message") or raw[:200]
            code = event.get("code") or event.get("err_code")
            raise ProviderError(
                self.name, f"Deepgram error{f' {code}' if code else ''}: {self._redact(str(message))}"
            )
        elif kind == "Metadata":
            log.debug(
                "%s: request_id=%s model=%s", self.name, event.get("request_id"), event.get("model_name")
            )
        else:  # Cleared (of an earlier Clear) and anything newer
            log.debug("%s: ignoring %s", self.name, kind)
        return False

    # -- the pool --

    def _idle_now(self) -> deque[_Socket]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # sockets and sessions belong to one event loop
            self._loop, self._session, self._idle, self._tasks = loop, None, deque(), set()
        return self._idle

    async def _acquire(self) -> _Socket:
        idle = self._idle_now()
        now = asyncio.get_running_loop().time()
        while idle:
            sock = idle.pop()
            if sock.ws.closed or now - sock.idle_since > self.idle_ttl_s:
                self._discard(sock)
                continue
            sock.reused = True
            return sock
        return await self._connect()

    def _release(self, sock: _Socket) -> None:
        idle = self._idle_now()
        if sock.ws.closed or len(idle) >= self.max_idle:
            self._discard(sock)
            return
        sock.idle_since = asyncio.get_running_loop().time()
        idle.append(sock)

    def _discard(self, sock: _Socket, *, clear: bool = False) -> None:
        self._spawn(self._close(sock.ws, clear=clear))
        if clear:
            self._spawn(self._replace())

    async def _replace(self) -> None:
        """After a barge-in: have a socket ready for the next reply."""
        if self._idle:
            return
        try:
            self._release(await self._connect())
        except ProviderError as exc:
            log.debug("%s: could not open a spare socket: %s", self.name, exc.message)

    async def _close(self, ws: aiohttp.ClientWebSocketResponse, *, clear: bool = False) -> None:
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                if clear and not ws.closed:
                    await ws.send_str(_CLEAR)
                await ws.close()
        except (TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.debug("%s: closing a socket: %s", self.name, self._redact(exc))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop any more: the sockets die with it
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> _Socket:
        try:
            ws = await self._session_now().ws_connect(
                self.url, headers={"Authorization": f"Token {self._key.value}"}, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise self._handshake_error(exc) from None
        except TimeoutError:
            raise ProviderTimeout(self.name, f"connecting to {self.url} timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError(self.name, f"cannot connect to {self.url}: {self._redact(exc)}") from None
        return _Socket(ws)

    def _handshake_error(self, exc: aiohttp.WSServerHandshakeError) -> ProviderError:
        return status_error(
            self.name,
            exc.status,
            f"the WebSocket upgrade to {self.url} was refused with HTTP {exc.status}",
            (exc.headers or {}).get("dg-error"),  # UNCONFIRMED header name
            secret=self._key,
            key_hint=" (check the Deepgram API key: DEEPGRAM_API_KEY, api_key_env or api_key_file)",
            retryable=_RETRYABLE_STATUS,
        )
