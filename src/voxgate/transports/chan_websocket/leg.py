"""`WebSocketMediaLeg`: the media of one ARI externalMedia channel over chan_websocket.

With `transport=websocket, encapsulation=none, connection_type=server` Asterisk waits for us to
connect to `ws://HOST:8088/media/<MEDIA_WEBSOCKET_CONNECTION_ID>` (subprotocol `media`); it
then sends MEDIA_START, and the channel enters Stasis (ari.md §6, §7). Binary frames are raw
audio in the channel format both ways; text frames are control (`control.py`).

Asterisk queues and re-times what we send, but we still send one 20 ms frame per `MediaClock`
tick: its queue then stays near empty, so a barge-in (`output.clear()`, which also sends
FLUSH_MEDIA) silences the caller's side at once. Ticks never await: frames go to a small
per-leg sender task through a deque, which aiohttp usually writes without suspending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from voxgate.audio.dtmf import DTMF_KEYS
from voxgate.audio.format import ALAW8, SLIN8, SLIN16, ULAW8, AudioFormat, AudioFrame
from voxgate.audio.pacer import MediaClock, OutboundPacer
from voxgate.log import call_logger
from voxgate.transports.base import CallLeg, Dtmf, unframed
from voxgate.transports.chan_websocket.control import (
    CONTROL_FORMATS,
    ControlError,
    ControlFormat,
    format_command,
    is_json,
    parse_control,
)

log = logging.getLogger("voxgate.chan_websocket")

SUBPROTOCOL = "media"
FORMATS: dict[str, AudioFormat] = {"slin16": SLIN16, "slin": SLIN8, "ulaw": ULAW8, "alaw": ALAW8}
ASTERISK_VERSIONS = "20.16 / 21.11 / 22.6 / 23.0"

_SEND_BACKLOG_MAX = 50  # messages (1 s of frames) waiting for the socket before audio is dropped
_WRITE_STALL_S = 5.0  # a backlog that long: Asterisk stopped reading, end the call
_CLOSE_TIMEOUT_S = 2.0  # for the last commands and the close handshake
_READER_GRACE_S = 0.5  # a write failed: how long the reader may take to say why
_INVALID_LOG_EVERY = 100
_BINARY, _TEXT, _ERROR = aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.ERROR


class MediaLegError(ConnectionError):
    """The media WebSocket could not be opened, or Asterisk did not start the media on it."""


class _FlushingPacer(OutboundPacer):
    """An `OutboundPacer` that reports a `clear()` that dropped audio, so the leg can flush what
    Asterisk still holds of it too (FLUSH_MEDIA). The pacer has `__slots__`, so the hook is a
    subclass rather than a patched instance."""

    __slots__ = ("on_cleared",)

    def __init__(self, wire_format: AudioFormat, on_cleared: Callable[[float], None]) -> None:
        # chan_websocket audio has no framing of its own: one WebSocket binary message per frame.
        super().__init__(wire_format, unframed)
        self.on_cleared = on_cleared

    def clear(self) -> float:
        dropped = super().clear()
        if dropped > 0:
            self.on_cleared(dropped)
        return dropped


def _audio_format(name: str) -> AudioFormat:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(
            f"chan_websocket format {name!r} is not supported; use one of {', '.join(FORMATS)} "
            "(codecs such as opus need passthrough framing voxgate does not do)"
        )
    return fmt


class WebSocketMediaLeg(CallLeg):
    """One chan_websocket media channel, connected by us. Implements `CallAudio`.

    Open it with `await WebSocketMediaLeg.connect(...)`. The caller's channel is redirected by
    whoever owns it (the ARI router): `transfer()` records the target and ends this media leg."""

    def __init__(
        self,
        call_id: str,
        url: str,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        format_name: str,
        media_start: dict[str, Any],
        clock: MediaClock,
        control_format: ControlFormat,
        own_session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__()
        self.call_id = call_id
        self.url = url
        self.format_name = format_name
        self.media_start = media_start  # MEDIA_START's fields (json adds channel_variables)
        self.channel: str | None = media_start.get("channel")
        self.optimal_frame_size = _int_field(media_start.get("optimal_frame_size"))
        self.control_format: ControlFormat = control_format
        self._ws = ws
        self._own_session = own_session
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._in_format = _audio_format(format_name)
        self._sample_width = self._in_format.bytes_per_sample  # read on every inbound frame
        self.output: OutboundPacer = _FlushingPacer(self._in_format, self._on_output_cleared)
        self.output.send_now = self._send_now
        self.context: Any = None  # whatever the router wants to keep with the leg
        self.frames_in = 0
        self.frames_dropped = 0  # outbound frames not sent (XOFF, a socket not being read)
        self.frames_invalid = 0  # inbound frames dropped (odd-length slin)
        self.dtmf_in = 0
        self.flushes = 0  # FLUSH_MEDIA sent (barge-ins that dropped queued audio)
        self.xoff = False  # Asterisk's queue is full: send no audio until MEDIA_XON
        self.started_at = self._loop.time()
        self._rebuffer = False  # re-send START_MEDIA_BUFFERING after every FLUSH_MEDIA
        self._sendq: deque[bytes | str] = deque()
        self._send_wake: asyncio.Future[None] | None = None
        self._backlog_since: float | None = None
        self._unknown_events: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._log = call_logger(log.name, call_id)

    # --- opening -----------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        call_id: str,
        url: str,
        *,
        format: str = "slin16",
        clock: MediaClock,
        session: aiohttp.ClientSession | None = None,
        connect_timeout_s: float = 5.0,
        start_timeout_s: float = 5.0,
        control_format: ControlFormat = "plain-text",
    ) -> WebSocketMediaLeg:
        """Connect to Asterisk's media WebSocket, wait for MEDIA_START and start the media.

        `format` is the one asked of externalMedia; MEDIA_START's wins if they differ. Raises
        ValueError for an unsupported format, `MediaLegError` (a ConnectionError) when the socket
        cannot be opened or the media does not start in time."""
        _audio_format(format)
        if control_format not in CONTROL_FORMATS:
            raise ValueError(f"control format {control_format!r}: use plain-text or json")
        clog = call_logger(log.name, call_id)
        own_session = aiohttp.ClientSession() if session is None else None
        http = session or own_session
        assert http is not None
        ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            ws = await _open(http, url, connect_timeout_s)
            if ws.protocol != SUBPROTOCOL:
                clog.warning(
                    "%s did not accept the WebSocket subprotocol %r (answered %r); going on",
                    url,
                    SUBPROTOCOL,
                    ws.protocol,
                )
            start, json_seen = await _wait_media_start(ws, url, start_timeout_s, clog)
            format_name = _started_format(start, format, url, clog)
            seen_format: ControlFormat = "json" if json_seen else "plain-text"
            if seen_format != control_format:
                clog.info(
                    "Asterisk sends %s control messages (asked for %s); sending commands as %s",
                    seen_format,
                    control_format,
                    seen_format,
                )
            leg = cls(
                call_id,
                url,
                ws,
                format_name=format_name,
                media_start=start,
                clock=clock,
                control_format=seen_format,
                own_session=own_session,
            )
        except BaseException:
            if ws is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                        await ws.close()
            if own_session is not None:
                await own_session.close()
            raise
        leg._start()
        return leg

    def _start(self) -> None:
        self._log.info(
            "media started on %s (%s, channel %s, optimal frame %d bytes)",
            self.url,
            self._in_format,
            self.channel or "?",
            self.optimal_frame_size,
        )
        frame_bytes = self.output.frame_bytes
        if self.optimal_frame_size and frame_bytes % self.optimal_frame_size:
            # Asterisk drops the part of a message that does not fill its frames; buffering
            # makes it join our 20 ms messages across message boundaries instead.
            self._log.warning(
                "Asterisk's optimal frame is %d bytes but we send %d-byte (20 ms) frames; "
                "asking it to buffer (START_MEDIA_BUFFERING)",
                self.optimal_frame_size,
                frame_bytes,
            )
            self._rebuffer = True
            self.send_command("START_MEDIA_BUFFERING")
        name = f"chan-websocket-{self.call_id}"
        self._reader = self._loop.create_task(self._read_loop(), name=f"{name}-read")
        self._sender = self._loop.create_task(self._send_loop(), name=f"{name}-send")
        self._clock.add(self)

    # --- CallAudio ---------------------------------------------------------------------

    def _hang_up(self, reason: str) -> None:
        """Send HANGUP (Asterisk hangs the media channel up) and close the socket."""
        if self.end_cause is None:
            self.send_command("HANGUP")
            self._end(reason)

    def send_command(self, command: str, arg: str | None = None) -> None:
        """Queue a control command (`control.COMMANDS`) behind the audio already queued."""
        if self.end_cause is None:
            self._enqueue(format_command(command, arg, control_format=self.control_format))

    # --- outbound ----------------------------------------------------------------------

    def on_tick(self, now: float) -> None:
        """Clock tick: exactly one outbound frame (or none if it went out early)."""
        if self.end_cause is not None:
            return
        message = self.output.next_message()
        if not message:  # this period's frame already went out (a talkspurt's early start)
            return
        if self.xoff:
            self.frames_dropped += 1
            return
        if len(self._sendq) >= _SEND_BACKLOG_MAX:
            self.frames_dropped += 1
            if self._backlog_since is None:
                self._backlog_since = now
                self._log.warning("Asterisk is not reading our audio; dropping frames")
            elif now - self._backlog_since > _WRITE_STALL_S:
                self._end(f"connection lost: Asterisk stopped reading for {_WRITE_STALL_S:g} s")
            return
        self._backlog_since = None
        self._enqueue(message)

    def _send_now(self, message: bytes) -> None:
        """A talkspurt's first frame, sent as soon as it is ready (between ticks)."""
        if self.end_cause is not None or self.xoff or len(self._sendq) >= _SEND_BACKLOG_MAX:
            self.frames_dropped += 1
            return
        self._enqueue(message)

    def _on_output_cleared(self, dropped_ms: float) -> None:
        """Barge-in dropped our queued audio: drop what Asterisk holds of it too."""
        if self.end_cause is not None:
            return
        self.flushes += 1
        self._log.debug("output cleared (%.0f ms dropped); FLUSH_MEDIA", dropped_ms)
        self.send_command("FLUSH_MEDIA")
        if self._rebuffer:  # a flush ends Asterisk's buffering mode
            self.send_command("START_MEDIA_BUFFERING")

    def _enqueue(self, message: bytes | str) -> None:
        self._sendq.append(message)
        self._wake_sender()

    def _wake_sender(self) -> None:
        waiter = self._send_wake
        if waiter is not None:
            self._send_wake = None
            if not waiter.done():
                waiter.set_result(None)

    async def _send_loop(self) -> None:
        """Writes what ticks and commands queue, in order; after the end, the rest, then stops."""
        ws, queue = self._ws, self._sendq
        try:
            while True:
                while queue:
                    message = queue.popleft()
                    if isinstance(message, bytes):
                        await ws.send_bytes(message)
                    else:
                        await ws.send_str(message)
                if self.end_cause is not None:
                    return
                self._send_wake = self._loop.create_future()
                await self._send_wake
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            queue.clear()
            # The reader usually knows better why (a close frame: the caller left); give it a moment.
            cause = f"connection lost: {exc or type(exc).__name__}"
            self._loop.call_later(_READER_GRACE_S, self._end, cause)

    # --- inbound -----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        ws = self._ws
        cause: str | None = None
        try:
            async for msg in ws:
                kind = msg.type
                if kind is _BINARY:
                    self._on_audio(msg.data)
                elif kind is _TEXT:
                    self._on_control(msg.data)
                elif kind is _ERROR:
                    cause = f"connection lost: {ws.exception() or msg.data or 'socket error'}"
                    break
        except (aiohttp.ClientError, OSError) as exc:
            cause = f"connection lost: {exc or type(exc).__name__}"
        self._end(cause or self._close_cause())

    def _close_cause(self) -> str:
        """Why the socket ended without an error message: Asterisk closing it is the caller leaving
        (it hangs the media channel up and closes); a connection gone without a close frame is not."""
        ws = self._ws
        if ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
            return "connection lost without a close frame"
        error = ws.exception()
        if error is not None:
            return f"connection lost: {error}"
        if ws.close_code not in (None, aiohttp.WSCloseCode.OK, aiohttp.WSCloseCode.GOING_AWAY):
            self._log.info("Asterisk closed the media socket with code %s", ws.close_code)
        return "caller hung up"

    def _on_audio(self, data: bytes) -> None:
        if self.end_cause is not None or not data:
            return
        if len(data) % self._sample_width:
            self.frames_invalid += 1
            if self.frames_invalid % _INVALID_LOG_EVERY == 1:
                self._log.warning(
                    "dropped an odd-length %s frame of %d bytes (%d such frames so far)",
                    self.format_name,
                    len(data),
                    self.frames_invalid,
                )
            return
        self.frames_in += 1
        self._inbound.put(AudioFrame(data, self._in_format))

    def _on_control(self, text: str) -> None:
        try:
            event, fields = parse_control(text)
        except ControlError as exc:
            self._log.warning("dropped a malformed control message: %s", exc)
            return
        if event == "DTMF_END":
            digit = str(fields.get("digit", ""))
            if digit not in DTMF_KEYS:
                self._log.warning("DTMF_END with digit %r is not one of 0-9 * # A-D; dropped", digit)
                return
            self.dtmf_in += 1
            self._inbound.put(Dtmf(digit))
        elif event == "MEDIA_XOFF":
            if not self.xoff:
                self._log.info("MEDIA_XOFF: Asterisk's queue is full; pausing our audio")
            self.xoff = True
        elif event == "MEDIA_XON":
            if self.xoff:
                self._log.info("MEDIA_XON after %d dropped frames; sending audio again", self.frames_dropped)
            self.xoff = False
        elif event == "ERROR":
            self._log.warning("Asterisk reported an error: %s", fields.get("error_text") or fields or text)
        elif event in ("STATUS", "QUEUE_DRAINED", "MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED"):
            self._log.debug("%s %s", event, fields)
        elif event == "MEDIA_START":
            self._log.debug("a second MEDIA_START ignored: %s", fields)
        elif event not in self._unknown_events:
            self._unknown_events.add(event)
            self._log.info("ignoring unknown chan_websocket event %s (%s)", event, fields)

    # --- ending ------------------------------------------------------------------------

    def _end(self, cause: str) -> None:
        if self.end_cause is not None:
            return
        self.end_cause = cause
        self._clock.discard(self)
        self._inbound.close()
        self._wake_sender()  # it writes what is queued (a HANGUP) and stops
        dropped = f", dropped {self.frames_dropped}" if self.frames_dropped else ""
        self._log.info(
            "call ended (%s) after %.1f s; frames in %d, out %d%s",
            cause,
            self._loop.time() - self.started_at,
            self.frames_in,
            self.output.frames_sent,
            dropped,
        )
        self._closer = self._loop.create_task(self._close(), name=f"chan-websocket-{self.call_id}-close")

    async def _close(self) -> None:
        current = asyncio.current_task()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                if self._sender is not None and self._sender is not current:
                    await asyncio.wait([self._sender])
                await self._ws.close()
        except TimeoutError:
            self._log.debug("media socket did not close within %.0f s; dropped", _CLOSE_TIMEOUT_S)
        except (aiohttp.ClientError, OSError) as exc:
            self._log.debug("closing the media socket: %s", exc)
        finally:
            for task in (self._sender, self._reader):
                if task is not None and not task.done() and task is not current:
                    task.cancel()
            if self._own_session is not None:
                await self._own_session.close()
            self._ended.set()


async def _open(http: aiohttp.ClientSession, url: str, timeout_s: float) -> aiohttp.ClientWebSocketResponse:
    try:
        async with asyncio.timeout(timeout_s):
            return await http.ws_connect(url, protocols=(SUBPROTOCOL,), autoping=True)
    except TimeoutError:
        raise MediaLegError(f"no WebSocket handshake from {url} within {timeout_s:g} s") from None
    except aiohttp.WSServerHandshakeError as exc:
        raise MediaLegError(
            f"Asterisk refused the media WebSocket {url} (HTTP {exc.status} {exc.message}): the "
            "connection id may be unknown or already used, or chan_websocket is not loaded"
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise MediaLegError(f"cannot connect the media WebSocket {url}: {exc}") from exc


async def _wait_media_start(
    ws: aiohttp.ClientWebSocketResponse,
    url: str,
    timeout_s: float,
    clog: logging.LoggerAdapter[logging.Logger],
) -> tuple[dict[str, Any], bool]:
    """MEDIA_START's fields, and whether it came as json. What comes before it is dropped."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    try:
                        event, fields = parse_control(msg.data)
                    except ControlError as exc:
                        clog.warning("dropped a malformed control message before MEDIA_START: %s", exc)
                        continue
                    if event == "MEDIA_START":
                        return fields, is_json(msg.data)
                    clog.debug("%s before MEDIA_START ignored", event)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    clog.debug("%d bytes of audio before MEDIA_START dropped", len(msg.data))
                else:
                    raise MediaLegError(
                        f"{url} closed before MEDIA_START ({msg.type.name}, code {ws.close_code})"
                    )
    except TimeoutError:
        raise MediaLegError(
            f"no MEDIA_START from {url} within {timeout_s:g} s: Asterisk older than "
            f"{ASTERISK_VERSIONS} has no chan_websocket media protocol, or chan_websocket is not "
            "loaded (module load chan_websocket.so)"
        ) from None


def _started_format(
    start: dict[str, Any], requested: str, url: str, clog: logging.LoggerAdapter[logging.Logger]
) -> str:
    """The format MEDIA_START announced; it is what Asterisk sends, whatever was asked for."""
    started = start.get("format")
    if not started or started == requested:
        return requested
    if started not in FORMATS:
        raise MediaLegError(
            f"{url} started the media as {started!r} (asked for {requested!r}), which voxgate does "
            f"not support; use one of {', '.join(FORMATS)}"
        )
    clog.warning("Asterisk started the media as %s, not %s as asked; using %s", started, requested, started)
    return str(started)


def _int_field(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
