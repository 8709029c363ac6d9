"""A fake Asterisk ARI on loopback, written from shared/protocols/ari.md (not from voxgate's client).

REST under /ari with an in-memory model of channels, bridges, playbacks and recordings; status
codes as the notes give them (404 unknown id, 409 not in Stasis / id exists / name in use, 422
not in this bridge / unknown format / endpoint mismatch / not yet in Stasis, 501 unsupported
externalMedia combination, 400 missing parameter). Every request is recorded (method, path
relative to /ari, query, JSON body) for assertions. The events WebSocket at /ari/events pushes
what the REST calls cause, in the orders of ari.md §7, plus anything a test pushes by hand.

Faults: `fail_next(status)` (e.g. 503), `malformed_next()` (a 200 with a body that is not JSON),
`unsupported` (endpoints answering 501), `drop()` (kill the events sockets; `refuse_s` then
answers 503 to new events connections for that long), `push_raw()`.

Media (off by default): with `connect_audiosocket=True`, `POST /channels/externalMedia` with
encapsulation=audiosocket acts like Asterisk's AudioSocket channel driver (audiosocket.md §1-§6,
§11): it opens a TCP connection to `external_host` (2 s connect timeout; failure destroys the
channel with cause 41), sends the UUID message (`data`), then 20 ms frames of quiet noise in real
time (kind 0x12 for slin16, 0x10 for slin), and parses and counts what the server sends back
(`audiosocket_legs`). Hanging the media channel up (REST DELETE, or any `destroy_channel`)
closes the TCP connection; the server closing it, sending HANGUP (0x00) or a message Asterisk
rejects hangs the media channel up (ChannelHangupRequest → StasisEnd → ChannelDestroyed).

Run alone (`python tests/fake_ari.py --port 0 [--connect-audiosocket]`) it prints its port and
adds a control API for the benchmarks: POST /_fake/drop[?graceful=1][&refuse_ms=N],
POST /_fake/burst?n=&rate=, GET /_fake/stats, POST /_fake/inbound?n=N (N callers enter Stasis
as `inbound_call()` does), POST /_fake/hangup?n=N|all=1|ids=A,B (those callers hang up),
GET /_fake/calls (live callers, AudioSocket legs and their frame counters, bridges),
GET /_fake/requests[?method=POST][&path=/channels][&prefix=/bridges] (the recorded requests with
`t`, the time.monotonic() of their arrival), POST /_fake/originate?hangup_after_s=N (the far end
of every originated channel hangs up, cause 16, N s after it answered; empty N: never) and
GET /_fake/originated (each originated channel's answered_at / destroyed_at / cause).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import random
import re
import socket
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from fake_http import HOST, serve

BODY = web.RequestKey("ari_body", object) if hasattr(web, "RequestKey") else "ari_body"
ASTERISK_ID = "52:54:00:12:34:56"
HANGUP_REASONS = {  # ari.md §3 DELETE /channels/{id} reasons → Q.850 cause
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 19,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 41,
    "answered_elsewhere": 26,
}
CAUSE_TXT = {
    16: "Normal Clearing",
    17: "User busy",
    19: "No user responding",
    34: "Circuit/channel congestion",
}
MEDIA_SCHEMES = ("sound:", "recording:", "number:", "digits:", "characters:", "tone:")
RECORD_FORMATS = {"wav", "gsm", "ulaw", "alaw", "sln", "slin", "slin16", "g722"}
EXTERNAL_MEDIA_COMBOS = {("rtp", "udp"), ("audiosocket", "tcp"), ("none", "websocket")}
FRAME_BYTES_20MS = {"ulaw": 160, "alaw": 160, "slin": 320, "slin16": 640, "slin24": 960, "slin48": 1920}
BRIDGE_TYPES = {"mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single", "sdp_label"}
# audiosocket.md §3: message kinds. slin variants map to their own kind; any other codec is still
# sent as 0x10 carrying that codec's bytes.
AS_HANGUP, AS_UUID = 0x00, 0x01
AS_AUDIO_KINDS = {
    "slin": 0x10,
    "slin12": 0x11,
    "slin16": 0x12,
    "slin24": 0x13,
    "slin32": 0x14,
    "slin44": 0x15,
    "slin48": 0x16,
    "slin96": 0x17,
    "slin192": 0x18,
}
AS_ACCEPTED_KINDS = {AS_HANGUP, *AS_AUDIO_KINDS.values()}  # what Asterisk takes from the server
AS_CONNECT_TIMEOUT_S = 2.0
AS_FRAME_S = 0.020
GAP_RECORD_MS = 30.0  # inter-arrival gaps of server audio at least this long are kept with a time
GAPS_KEPT = 2000


def ari_timestamp() -> str:
    """%FT%T.%q%z as in ari.md §2: milliseconds and a +0000 offset without a colon."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


class Reject(Exception):
    """Answer with `status` and ARI's error body {"message": ...}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Recorded:
    method: str
    path: str  # relative to /ari, e.g. "/channels/1.1/answer"
    query: dict[str, str]
    json: Any
    t: float = field(default=0.0, compare=False)  # time.monotonic() when the request arrived


@dataclass
class Failure:
    status: int
    message: str
    count: int
    method: str | None
    path: str | None


@dataclass
class EventSocket:
    ws: web.WebSocketResponse
    request: web.Request
    apps: set[str]
    subscribe_all: bool


Route = Callable[..., Awaitable[web.StreamResponse]]


@dataclass
class FakeAri:
    """`await FakeAri().start()`; point AriClient at `base_url` with user "voxgate" / "secret"."""

    users: dict[str, str] = field(default_factory=lambda: {"voxgate": "secret"})
    read_only: set[str] = field(default_factory=set)
    send_registered: bool = True
    playback_seconds: float = 0.05
    requests: list[Recorded] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_stasis: set[str] = field(default_factory=set)
    channel_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    bridges: dict[str, dict[str, Any]] = field(default_factory=dict)
    playbacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    live_recordings: dict[str, dict[str, Any]] = field(default_factory=dict)
    stored_recordings: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsupported: set[str] = field(default_factory=set)  # "POST /channels/externalMedia" → 501
    sockets: list[EventSocket] = field(default_factory=list)
    connect_times: list[float] = field(default_factory=list)  # time.monotonic() of each accepted socket
    drop_times: list[float] = field(default_factory=list)
    port: int = 0
    connect_audiosocket: bool = False  # externalMedia audiosocket really connects (module docstring)
    audiosocket_legs: dict[str, AudioSocketLeg] = field(default_factory=dict)  # media channel id → leg
    audiosocket_failures: int = 0  # connects that failed (channel destroyed with cause 41)
    media_ws: Any = None  # a fake_media_ws.FakeMediaWs served at /media/{id} (chan_websocket, §6)
    media_ws_channels: dict[str, str] = field(default_factory=dict)  # connection id → channel id
    refuse_until: float = 0.0  # time.monotonic() until which events connections get 503
    refused_times: list[float] = field(default_factory=list)
    inbound_ids: list[str] = field(default_factory=list)  # callers started through /_fake/inbound
    originated_ids: list[str] = field(default_factory=list)  # channels made by POST /channels
    answered_at: dict[str, float] = field(default_factory=dict)  # originated id → entered Stasis (Up)
    destroyed_at: dict[str, tuple[float, int]] = field(default_factory=dict)  # id → (time, cause)
    originate_hangup_after_s: float | None = None  # the far end hangs up this long after answering
    _failures: list[Failure] = field(default_factory=list)
    _malformed: int = 0
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _timers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _connected: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    _routes: list[tuple[str, re.Pattern[str], Route]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, port: int = 0, *, control: bool = False) -> FakeAri:
        _install_routes(self)
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._dispatch)
        if self.media_ws is not None:
            from fake_media_ws import add_media_routes

            self.media_ws.on_connected = self._media_ws_started
            add_media_routes(app, self.media_ws)
        if control:
            app.router.add_post("/_fake/drop", self._control_drop)
            app.router.add_post("/_fake/burst", self._control_burst)
            app.router.add_get("/_fake/stats", self._control_stats)
            app.router.add_post("/_fake/inbound", self._control_inbound)
            app.router.add_post("/_fake/hangup", self._control_hangup)
            app.router.add_get("/_fake/calls", self._control_calls)
            app.router.add_get("/_fake/requests", self._control_requests)
            app.router.add_post("/_fake/originate", self._control_originate)
            app.router.add_get("/_fake/originated", self._control_originated)
        self._runner = await serve(app, port=port)
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for task in [*self._timers.values(), *self._tasks]:
            task.cancel()
        for leg in self.audiosocket_legs.values():
            leg.close_from_asterisk()
        for sock in list(self.sockets):
            await sock.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def route(self, method: str, pattern: str, handler: Route) -> None:
        """`pattern` is a path under /ari with {name} parts, e.g. "/channels/{id}/answer"."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    # -- faults ---------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        message: str = "Internal Server Error",
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next `count` matching requests answer `status` with {"message": message}."""
        self._failures.append(Failure(status, message, count, method, path))

    def malformed_next(self, count: int = 1) -> None:
        """The next `count` requests answer 200 with a body that is not JSON."""
        self._malformed += count

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if (method in (None, r.method)) and (path in (None, r.path))]

    # -- middleware: record, auth, faults ---------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Route) -> web.StreamResponse:
        if not request.path.startswith("/ari/"):
            return await handler(request)
        arrived = time.monotonic()
        path = request.path[len("/ari") :]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return _error(400, "Invalid JSON body")
        self.requests.append(Recorded(request.method, path, dict(request.query), body, t=arrived))
        user = self._authenticate(request)
        if user is None:
            return web.json_response(
                {"message": "Authentication required"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
            )
        if user in self.read_only and request.method != "GET":
            return _error(403, "Write access denied")
        for failure in self._failures:
            if (
                failure.count > 0
                and failure.method in (None, request.method)
                and failure.path in (None, path)
            ):
                failure.count -= 1
                return _error(failure.status, failure.message)
        if self._malformed > 0:
            self._malformed -= 1
            return web.Response(status=200, text='{"id": "truncat', content_type="application/json")
        request[BODY] = body
        return await handler(request)

    def _authenticate(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            with contextlib.suppress(ValueError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user if self.users.get(user) == password else None
            return None
        key = request.query.get("api_key")
        if key is not None:
            user, _, password = key.partition(":")
            return user if self.users.get(user) == password else None
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len("/ari") :]
        body = request.get(BODY)
        params = dict(request.query)
        if isinstance(body, dict):  # any parameter may also come in the JSON body (ari.md §1)
            params.update({k: _param(v) for k, v in body.items() if k != "variables"})
        variables = body.get("variables", {}) if isinstance(body, dict) else {}
        if f"{request.method} {path}" in self.unsupported:
            return _error(501, "Not implemented")
        for method, regex, handler in self._routes:
            match = regex.match(path)
            if match and method == request.method:
                try:
                    return await handler(params, variables, **match.groupdict())
                except Reject as exc:
                    return _error(exc.status, exc.message)
        return _error(404, "Resource not found")

    # -- events WebSocket -----------------------------------------------------------------------
    async def _events(self, request: web.Request) -> web.StreamResponse:
        apps = {a for a in request.query.get("app", "").split(",") if a}
        if not apps:
            return _error(400, "Missing param 'app'")
        if time.monotonic() < self.refuse_until:  # fault: Asterisk not taking connections yet
            self.refused_times.append(time.monotonic())
            return _error(503, "Service Unavailable (fake: refusing events connections)")
        ws = web.WebSocketResponse(protocols=("ari",), autoping=True)
        await ws.prepare(request)
        for old in [s for s in self.sockets if s.apps & apps]:  # one socket per app: newest wins
            self.sockets.remove(old)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await old.ws.send_str(json.dumps(self._stamp({"type": "ApplicationReplaced"}, old)))
                await old.ws.close()
        sock = EventSocket(ws, request, apps, request.query.get("subscribeAll") == "true")
        self.sockets.append(sock)
        self.connect_times.append(time.monotonic())
        async with self._connected:
            self._connected.notify_all()
        if self.send_registered:
            await ws.send_str(json.dumps(self._stamp({"type": "ApplicationRegistered"}, sock)))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            if sock in self.sockets:
                self.sockets.remove(sock)
        return ws

    def _stamp(self, event: dict[str, Any], sock: EventSocket | None = None) -> dict[str, Any]:
        app = next(iter(sorted(sock.apps))) if sock else ""
        return {"application": app, "timestamp": ari_timestamp(), "asterisk_id": ASTERISK_ID, **event}

    async def push(self, event: dict[str, Any]) -> None:
        """Send one event to every connected socket; application/timestamp/asterisk_id are added."""
        for sock in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sock.ws.send_str(json.dumps(self._stamp(event, sock)))

    async def push_raw(self, text: str) -> None:
        """Send a frame exactly as given (malformed JSON, odd shapes …)."""
        for sock in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sock.ws.send_str(text)

    async def drop(self, *, graceful: bool = False, refuse_s: float = 0.0) -> int:
        """Kill every events socket (abort the TCP connection, or a close frame if `graceful`);
        with `refuse_s`, new events connections are answered 503 for that long."""
        socks, self.sockets = list(self.sockets), []
        self.drop_times.append(time.monotonic())
        if refuse_s > 0:
            self.refuse_until = self.drop_times[-1] + refuse_s
        for sock in socks:
            if graceful:
                await sock.ws.close(code=1011, message=b"fake drop")
            elif sock.request.transport is not None:
                sock.request.transport.abort()
        return len(socks)

    async def wait_connections(self, count: int, within: float = 2.0) -> None:
        """Until `count` sockets have been accepted since start (reconnects included)."""
        async with asyncio.timeout(within), self._connected:
            await self._connected.wait_for(lambda: len(self.connect_times) >= count)

    def later(self, coro: Awaitable[None], delay: float = 0.0, key: str | None = None) -> None:
        """Run `coro` after the current HTTP response (events follow the REST answer)."""

        async def run() -> None:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                coro.close()  # type: ignore[attr-defined]
                raise
            await coro

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if key is not None:
            self._timers[key] = task

    # -- model helpers ----------------------------------------------------------------------------
    def new_channel(
        self,
        name: str,
        *,
        state: str = "Down",
        channel_id: str | None = None,
        caller_number: str = "",
        caller_name: str = "",
        context: str = "default",
        exten: str = "s",
        app_data: str = "",
        channelvars: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        seq = next(self._seq)
        channel_id = channel_id or f"{int(time.time())}.{seq}"
        channel = {
            "id": channel_id,
            "name": f"{name}-{seq:08x}",
            "state": state,
            "protocol_id": "",
            "caller": {"name": caller_name, "number": caller_number},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": context,
                "exten": exten,
                "priority": 1,
                "app_name": "Stasis",
                "app_data": app_data,
            },
            "creationtime": ari_timestamp(),
            "language": "en",
        }
        if channelvars:
            channel["channelvars"] = channelvars
        self.channels[channel_id] = channel
        return channel

    def channel(self, channel_id: str, *, stasis: bool = True) -> dict[str, Any]:
        """The channel, or 404; with `stasis`, 409 when it is not in a Stasis app."""
        if channel_id not in self.channels:
            raise Reject(404, "Channel not found")
        if stasis and channel_id not in self.in_stasis:
            raise Reject(409, "Channel not in Stasis application")
        return self.channels[channel_id]

    async def enter_stasis(self, channel: dict[str, Any], args: list[str]) -> None:
        self.in_stasis.add(channel["id"])
        await self.push({"type": "StasisStart", "args": args, "channel": channel})

    async def destroy_channel(self, channel_id: str, cause: int) -> None:
        """ChannelHangupRequest → StasisEnd → ChannelDestroyed (ari.md §2, §7)."""
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            return
        self.destroyed_at[channel_id] = (time.monotonic(), cause)
        leg = self.audiosocket_legs.get(channel_id)
        if leg is not None:  # chan_audiosocket closes its socket when the channel hangs up
            leg.close_from_asterisk()
        for connection_id, ws_channel in self.media_ws_channels.items():
            conn = self.media_ws.connections.get(connection_id) if ws_channel == channel_id else None
            if conn is not None and not conn.ws.closed:  # chan_websocket closes its socket too
                self.later(conn.ws.close())
        for bridge in self.bridges.values():
            if channel_id in bridge["channels"]:
                bridge["channels"].remove(channel_id)
                await self.push({"type": "ChannelLeftBridge", "bridge": bridge, "channel": channel})
        await self.push({"type": "ChannelHangupRequest", "cause": cause, "channel": channel})
        if channel_id in self.in_stasis:
            self.in_stasis.discard(channel_id)
            await self.push({"type": "StasisEnd", "channel": channel})
        # The snapshot keeps the channel's last state: an originate that rang out is destroyed
        # in state Ringing (asterisk/asterisk#963, #1660 show such events from a real Asterisk).
        await self.push(
            {
                "type": "ChannelDestroyed",
                "cause": cause,
                "cause_txt": CAUSE_TXT.get(cause, "Unknown"),
                "channel": channel,
            }
        )

    # -- scripted call flows (ari.md §5, §7) ------------------------------------------------------
    async def inbound_call(
        self,
        *,
        args: tuple[str, ...] = (),
        caller_number: str = "+15551230000",
        caller_name: str = "Alice",
        exten: str = "+15559870000",
        context: str = "from-trunk",
    ) -> dict[str, Any]:
        """Dialplan `Stasis(app,args…)`: StasisStart with the channel in state Ring (unanswered)."""
        channel = self.new_channel(
            "PJSIP/trunk",
            state="Ring",
            caller_number=caller_number,
            caller_name=caller_name,
            context=context,
            exten=exten,
            app_data=",".join(["agent", *args]),
        )
        await self.enter_stasis(channel, list(args))
        return channel

    async def caller_hangup(self, channel_id: str, cause: int = 16) -> None:
        await self.destroy_channel(channel_id, cause)

    async def dtmf(self, channel_id: str, digit: str, duration_ms: int = 120) -> None:
        channel = self.channels[channel_id]
        await self.push(
            {"type": "ChannelDtmfReceived", "digit": digit, "duration_ms": duration_ms, "channel": channel}
        )

    async def _media_ws_started(self, connection_id: str) -> None:
        """MEDIA_START is out: the channel enters Stasis (§7); when the socket closes (the app sent
        HANGUP or went away) the channel hangs up."""
        channel_id = self.media_ws_channels.get(connection_id)
        if channel_id is None or channel_id not in self.channels:
            return
        conn = self.media_ws.connections[connection_id]

        async def hang_up_when_closed() -> None:
            await conn.closed.wait()
            await self.destroy_channel(channel_id, 16)

        self.later(hang_up_when_closed())
        await self.media_ws_connected(channel_id)

    async def media_ws_connected(self, channel_id: str) -> None:
        """chan_websocket: StasisStart comes only once the media socket connects (ari.md §7)."""
        channel = self.channels[channel_id]
        channel["state"] = "Up"
        await self.enter_stasis(channel, [])

    async def audiosocket_connect(
        self, channel: dict[str, Any], external_host: str, data: str, fmt: str
    ) -> None:
        """chan_audiosocket for an externalMedia channel: connect to `external_host`, send the
        UUID, stream audio; the channel enters Stasis (args [data], state Up) once connected."""
        channel_id = channel["id"]
        try:
            uuid_bytes = uuid.UUID(data).bytes  # must be a textual UUID (audiosocket.md §7)
            host, _, port = external_host.rpartition(":")
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(AS_CONNECT_TIMEOUT_S):
                _, leg = await loop.create_connection(
                    lambda: AudioSocketLeg(self, channel_id, data, fmt), host.strip("[]"), int(port)
                )
        except (OSError, TimeoutError, ValueError):
            self.audiosocket_failures += 1
            await self.destroy_channel(channel_id, 41)  # Dial fails with cause FAILURE (§6)
            return
        self.audiosocket_legs[channel_id] = leg
        leg.send(AS_UUID, uuid_bytes)
        if channel_id not in self.channels:  # hung up while connecting
            leg.close_from_asterisk()
            return
        leg.start_streaming()
        await self.enter_stasis(channel, [data])

    # -- control API (benchmark, separate process) ------------------------------------------------
    async def _control_drop(self, request: web.Request) -> web.StreamResponse:
        refuse_s = float(request.query.get("refuse_ms", "0")) / 1000
        dropped = await self.drop(graceful=request.query.get("graceful") == "1", refuse_s=refuse_s)
        return web.json_response(
            {"dropped": dropped, "t": self.drop_times[-1], "refuse_until": self.refuse_until}
        )

    async def _control_inbound(self, request: web.Request) -> web.StreamResponse:
        """n callers enter Stasis (state Ring), one after the other, as `inbound_call()` does."""
        n = int(request.query.get("n", "1"))
        ids = []
        for _ in range(n):
            number = f"+1555{len(self.inbound_ids) + 1:07d}"
            channel = await self.inbound_call(caller_number=number, caller_name=f"Caller {number}")
            self.inbound_ids.append(channel["id"])
            ids.append(channel["id"])
        return web.json_response({"ids": ids, "t": time.monotonic()})

    async def _control_hangup(self, request: web.Request) -> web.StreamResponse:
        """Callers hang up: `ids=A,B`, the first `n` live ones, or `all=1`. Answers which media
        channels shared a bridge with each caller (what the ARI app should now tear down)."""
        live = [c for c in self.inbound_ids if c in self.channels]
        if request.query.get("ids"):
            chosen = [c for c in request.query["ids"].split(",") if c in self.channels]
        elif request.query.get("all") == "1":
            chosen = live
        else:
            chosen = live[: int(request.query.get("n", "1"))]
        hung_up = []
        t = time.monotonic()
        for caller in chosen:
            media = [
                other
                for bridge in self.bridges.values()
                if caller in bridge["channels"]
                for other in bridge["channels"]
                if other != caller
            ]
            await self.caller_hangup(caller)
            hung_up.append({"caller": caller, "media": media})
        return web.json_response({"hung_up": hung_up, "t": t, "t_done": time.monotonic()})

    async def _control_calls(self, request: web.Request) -> web.StreamResponse:
        legs = list(self.audiosocket_legs.values())
        return web.json_response(
            {
                "t": time.monotonic(),
                "callers_live": [c for c in self.inbound_ids if c in self.channels],
                "callers_started": len(self.inbound_ids),
                "media_live": sum(1 for leg in legs if leg.closed_by is None),
                "media_total": len(legs),
                "media_connect_failures": self.audiosocket_failures,
                "channels": len(self.channels),
                "bridges": len(self.bridges),
                "legs": [leg.summary() for leg in legs],
            }
        )

    async def _control_requests(self, request: web.Request) -> web.StreamResponse:
        """The recorded requests (`method`, exact `path`, path `prefix` filters), each with `t`."""
        method, path, prefix = (request.query.get(k) for k in ("method", "path", "prefix"))
        found = [
            {"method": r.method, "path": r.path, "query": r.query, "json": r.json, "t": r.t}
            for r in self.requests
            if method in (None, r.method)
            and path in (None, r.path)
            and (prefix is None or r.path.startswith(prefix))
        ]
        return web.json_response({"t": time.monotonic(), "requests": found})

    async def _control_originate(self, request: web.Request) -> web.StreamResponse:
        """`hangup_after_s=N`: the far end hangs up each originated channel N s after it answered
        (cause 16, normal clearing); empty or absent: it never hangs up by itself."""
        after = request.query.get("hangup_after_s", "")
        self.originate_hangup_after_s = float(after) if after else None
        return web.json_response({"hangup_after_s": self.originate_hangup_after_s})

    async def _control_originated(self, request: web.Request) -> web.StreamResponse:
        channels = []
        for channel_id in self.originated_ids:
            destroyed = self.destroyed_at.get(channel_id)
            channels.append(
                {
                    "id": channel_id,
                    "answered_at": self.answered_at.get(channel_id),
                    "destroyed_at": destroyed[0] if destroyed else None,
                    "cause": destroyed[1] if destroyed else None,
                }
            )
        live = sum(1 for c in self.originated_ids if c in self.channels)
        return web.json_response({"t": time.monotonic(), "live": live, "channels": channels})

    async def _control_burst(self, request: web.Request) -> web.StreamResponse:
        """n ChannelVarset events, each stamped with `sent_ns` (time.monotonic_ns) as it is sent."""
        n, rate = int(request.query.get("n", "1000")), float(request.query.get("rate", "0"))
        channel = self.new_channel("PJSIP/bench", state="Up")
        start = time.monotonic()
        for i in range(n):
            if rate > 0 and (ahead := start + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(ahead)
            await self.push(
                {
                    "type": "ChannelVarset",
                    "variable": "BENCH",
                    "value": str(i),
                    "channel": channel,
                    "sent_ns": time.monotonic_ns(),
                }
            )
        return web.json_response({"sent": n, "seconds": time.monotonic() - start})

    async def _control_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"connects": self.connect_times, "drops": self.drop_times, "refused": self.refused_times}
        )


class AudioSocketLeg(asyncio.Protocol):
    """Asterisk's end of one externalMedia AudioSocket connection (audiosocket.md): the TCP
    client. Sends the UUID, then a 20 ms frame of quiet noise every 20 ms (one write per
    message); reads the server's messages by header length and counts them."""

    def __init__(self, fake: FakeAri, channel_id: str, call_uuid: str, fmt: str) -> None:
        self.fake = fake
        self.channel_id = channel_id
        self.uuid = call_uuid
        self.format = fmt
        self.kind = AS_AUDIO_KINDS.get(fmt, 0x10)
        frame_bytes = FRAME_BYTES_20MS.get(fmt, 160)
        rng = random.Random(channel_id)  # low-level noise, never all zeros: echoes are visible
        self._frames = [
            struct.pack(">BH", self.kind, frame_bytes)
            + struct.pack(
                f"<{frame_bytes // 2}h", *(rng.randint(-24, 24) or 1 for _ in range(frame_bytes // 2))
            )
            for _ in range(8)
        ]
        self.transport: asyncio.Transport | None = None
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.closed_by: str | None = None  # "server" (it closed / hung up) or "asterisk" (we did)
        self.close_reason = ""
        self.frames_sent = 0
        self.frames_received = 0
        self.frames_nonsilent = 0  # audio frames with a non-zero sample (e.g. our noise echoed)
        self.bytes_received = 0
        self.hangups_received = 0
        self.first_rx: float | None = None
        self.first_nonsilent_rx: float | None = None  # first audio frame with a non-zero sample
        self.last_rx: float | None = None
        self.max_gap_ms = 0.0
        self.gaps: list[tuple[float, float]] = []  # (arrival time, gap ms) for gaps ≥ GAP_RECORD_MS
        self.errors: list[str] = []
        self._buf = bytearray()
        self._sender: asyncio.Task[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self._buf
        buf += data
        pos = 0
        while len(buf) - pos >= 3 and self.closed_by is None:
            kind, length = struct.unpack_from(">BH", buf, pos)
            if len(buf) - pos - 3 < length:
                break
            payload = bytes(buf[pos + 3 : pos + 3 + length])
            pos += 3 + length
            if kind == AS_HANGUP:
                self.hangups_received += 1
                self._server_ended("hangup message", 16)
            elif kind not in AS_ACCEPTED_KINDS or length == 0:  # §3: Asterisk fails the session
                self.errors.append(f"kind 0x{kind:02x} length {length}")
                self._server_ended(f"bad message (kind 0x{kind:02x}, length {length})", 41)
            else:
                self._audio(payload, now)
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed_by is None:
            self._server_ended(f"connection lost: {exc!r}" if exc else "EOF", 16)
        self._stop_sender()

    # -- ours -----------------------------------------------------------------------------------
    def send(self, kind: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack(">BH", kind, len(payload)) + payload)

    def start_streaming(self) -> None:
        self._sender = asyncio.ensure_future(self._stream())
        self.fake._tasks.add(self._sender)
        self._sender.add_done_callback(self.fake._tasks.discard)

    def close_from_asterisk(self, reason: str = "channel hung up") -> None:
        """The media channel hung up: close the socket (Asterisk never sends 0x00, §3)."""
        if self.closed_by is not None:
            return
        self.closed_by, self.closed_at, self.close_reason = "asterisk", time.monotonic(), reason
        self._stop_sender()
        if self.transport is not None:
            self.transport.close()

    def summary(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "uuid": self.uuid,
            "kind": self.kind,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "close_reason": self.close_reason,
            "frames_sent": self.frames_sent,
            "frames_received": self.frames_received,
            "frames_nonsilent": self.frames_nonsilent,
            "bytes_received": self.bytes_received,
            "hangups_received": self.hangups_received,
            "first_rx": self.first_rx,
            "first_nonsilent_rx": self.first_nonsilent_rx,
            "last_rx": self.last_rx,
            "max_gap_ms": round(self.max_gap_ms, 3),
            "gaps": self.gaps,
            "errors": self.errors,
        }

    def _audio(self, payload: bytes, now: float) -> None:
        self.frames_received += 1
        self.bytes_received += len(payload)
        if payload.strip(b"\0"):
            self.frames_nonsilent += 1
            if self.first_nonsilent_rx is None:
                self.first_nonsilent_rx = now
        if self.last_rx is None:
            self.first_rx = now
        else:
            gap_ms = (now - self.last_rx) * 1000
            self.max_gap_ms = max(self.max_gap_ms, gap_ms)
            if gap_ms >= GAP_RECORD_MS and len(self.gaps) < GAPS_KEPT:
                self.gaps.append((now, round(gap_ms, 3)))
        self.last_rx = now

    def _server_ended(self, reason: str, cause: int) -> None:
        """The server hung up: the AudioSocket channel hangs up (§6) and Asterisk closes."""
        self.closed_by, self.closed_at, self.close_reason = "server", time.monotonic(), reason
        self._stop_sender()
        if self.transport is not None:
            self.transport.close()
        self.fake.later(self.fake.destroy_channel(self.channel_id, cause))

    def _stop_sender(self) -> None:
        if self._sender is not None and self._sender is not asyncio.current_task():
            self._sender.cancel()

    async def _stream(self) -> None:
        """One frame per 20 ms on an absolute schedule; after a long stall, skip ahead rather
        than burst (the channel produces frames in real time, it does not queue them)."""
        next_at = time.monotonic()
        i = 0
        while self.closed_by is None and self.transport is not None and not self.transport.is_closing():
            self.transport.write(self._frames[i % len(self._frames)])
            self.frames_sent += 1
            i += 1
            next_at += AS_FRAME_S
            delay = next_at - time.monotonic()
            if delay < -0.2:
                next_at, delay = time.monotonic(), 0.0
            await asyncio.sleep(max(delay, 0.0))


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def new_id() -> str:
    return str(uuid.uuid4())


# -- REST endpoints ---------------------------------------------------------------------------------


def _need(params: dict[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise Reject(400, f"{name} is required" if name != "dtmf" else "DTMF is required")


def _check_choice(params: dict[str, str], name: str, allowed: set[str]) -> None:
    if name in params and params[name] not in allowed:
        raise Reject(400, f"Invalid {name} {params[name]!r}")


def _install_routes(fake: FakeAri) -> None:
    ok = web.json_response

    def no_content() -> web.Response:
        return web.Response(status=204)

    # channels ---------------------------------------------------------------------------------
    async def list_channels(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        return ok(list(fake.channels.values()))

    async def originate(p: dict[str, str], v: dict[str, Any], id: str | None = None) -> web.StreamResponse:
        _need(p, "endpoint")
        channel_id = id or p.get("channelId")
        if channel_id in fake.channels:
            raise Reject(409, "Channel with given unique ID already exists")
        tech_resource = p["endpoint"].split("@")[0]
        channel = fake.new_channel(
            tech_resource,
            channel_id=channel_id,
            context=p.get("context", "default"),
            exten=p.get("extension", "s"),
            caller_number=p.get("callerId", ""),
        )
        fake.channel_vars[channel["id"]] = {k: str(val) for k, val in v.items()}
        fake.originated_ids.append(channel["id"])
        if p.get("app"):
            args = p["appArgs"].split(",") if p.get("appArgs") else []

            async def answered() -> None:
                channel["state"] = "Up"
                fake.answered_at[channel["id"]] = time.monotonic()
                if fake.originate_hangup_after_s is not None:  # the far end hangs up later
                    hangup = fake.destroy_channel(channel["id"], 16)
                    fake.later(hangup, fake.originate_hangup_after_s)
                await fake.enter_stasis(channel, args)

            fake.later(answered(), 0.01)
        return ok(channel)

    async def create(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        _need(p, "endpoint", "app")
        if p.get("channelId") in fake.channels:
            raise Reject(409, "Channel with given unique ID already exists")
        channel = fake.new_channel(p["endpoint"].split("@")[0], channel_id=p.get("channelId"))
        fake.in_stasis.add(channel["id"])
        return ok(channel)

    async def get_channel(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        return ok(fake.channel(id, stasis=False))

    async def hangup(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        fake.channel(id, stasis=False)
        if "reason" in p and "reason_code" in p:
            raise Reject(400, "The reason and reason_code can't both be specified")
        if "reason" in p and p["reason"] not in HANGUP_REASONS:
            raise Reject(400, "Invalid reason for hangup provided")
        cause = int(p["reason_code"]) if "reason_code" in p else HANGUP_REASONS[p.get("reason", "normal")]
        fake.later(fake.destroy_channel(id, cause))
        return no_content()

    async def answer(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        channel = fake.channel(id)
        if channel["state"] != "Up":
            channel["state"] = "Up"
            fake.later(fake.push({"type": "ChannelStateChange", "channel": dict(channel)}))
        return no_content()

    async def simple_action(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        fake.channel(id)
        return no_content()

    async def dial(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        fake.channel(id)
        return no_content()

    async def dtmf(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        fake.channel(id)
        _need(p, "dtmf")
        return no_content()

    async def mute(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        fake.channel(id)
        _check_choice(p, "direction", {"both", "in", "out"})
        return no_content()

    async def play(
        p: dict[str, str], v: dict[str, Any], id: str, target: str = "channel"
    ) -> web.StreamResponse:
        if target == "channel":
            fake.channel(id)
        elif id not in fake.bridges:
            raise Reject(404, "Bridge not found")
        _need(p, "media")
        playback_id = p.get("playbackId") or new_id()
        if playback_id in fake.playbacks:
            raise Reject(409, "Playback with given id already exists")
        media = p["media"].split(",")
        playback = {
            "id": playback_id,
            "media_uri": media[0],
            "target_uri": f"{target}:{id}",
            "language": p.get("lang", "en"),
            "state": "queued",
        }
        if len(media) > 1:
            playback["next_media_uri"] = media[1]
        fake.playbacks[playback_id] = playback

        async def run() -> None:
            playback["state"] = "playing"
            await fake.push({"type": "PlaybackStarted", "playback": dict(playback)})
            if not media[0].startswith(MEDIA_SCHEMES):
                playback["state"] = "failed"
            else:
                await asyncio.sleep(fake.playback_seconds)
                playback["state"] = "done"
            fake.playbacks.pop(playback_id, None)
            await fake.push({"type": "PlaybackFinished", "playback": dict(playback)})

        fake.later(run(), key=f"playback:{playback_id}")
        return web.json_response(playback, status=201, headers={"Location": f"/playbacks/{playback_id}"})

    async def record(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        fake.channel(id)
        _need(p, "name", "format")
        if p["format"] not in RECORD_FORMATS:
            raise Reject(422, f"Format {p['format']} not supported")
        name = p["name"]
        exists = name in fake.stored_recordings and p.get("ifExists", "fail") == "fail"
        if name in fake.live_recordings or exists:
            raise Reject(409, "Recording with same name already in use")
        if any(id in b["channels"] for b in fake.bridges.values()):
            raise Reject(409, "Channel is in a bridge")
        recording = {"name": name, "format": p["format"], "target_uri": f"channel:{id}", "state": "recording"}
        fake.live_recordings[name] = recording
        fake.later(fake.push({"type": "RecordingStarted", "recording": dict(recording)}))
        return web.json_response(recording, status=201, headers={"Location": f"/recordings/live/{name}"})

    async def get_var(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        channel = fake.channel(id, stasis=False)
        _need(p, "variable")
        functions = {
            "CALLERID(num)": channel["caller"]["number"],
            "CALLERID(name)": channel["caller"]["name"],
        }
        value = functions.get(p["variable"], fake.channel_vars.get(id, {}).get(p["variable"]))
        if value is None:
            raise Reject(404, "Provided variable was not found")
        return ok({"value": value})

    async def set_var(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        channel = fake.channel(id, stasis=False)
        _need(p, "variable")
        fake.channel_vars.setdefault(id, {})[p["variable"]] = p.get("value", "")
        event = {
            "type": "ChannelVarset",
            "variable": p["variable"],
            "value": p.get("value", ""),
            "channel": channel,
        }
        fake.later(fake.push(event))
        return no_content()

    async def continue_(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        channel = fake.channel(id)
        fake.in_stasis.discard(id)
        fake.later(fake.push({"type": "StasisEnd", "channel": channel}))
        return no_content()

    async def move(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        _need(p, "app")
        return await continue_(p, v, id)

    async def redirect(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        channel = fake.channel(id)
        _need(p, "endpoint")
        if p["endpoint"].split("/")[0].lower() != channel["name"].split("/")[0].lower():
            raise Reject(422, "Endpoint technology does not match channel")
        return no_content()

    async def snoop(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        fake.channel(id)
        _need(p, "app")
        for name in ("spy", "whisper"):
            _check_choice(p, name, {"none", "both", "out", "in"})
        channel = fake.new_channel(f"Snoop/{id}", state="Up", channel_id=p.get("snoopId"))
        args = p["appArgs"].split(",") if p.get("appArgs") else []
        fake.later(fake.enter_stasis(channel, args))
        return ok(channel)

    async def external_media(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        _need(p, "app", "format")
        encapsulation, transport = p.get("encapsulation", "rtp"), p.get("transport", "udp")
        if (encapsulation, transport) not in EXTERNAL_MEDIA_COMBOS:
            raise Reject(501, "encapsulation and/or transport is not supported")
        server = p.get("connection_type", "client") == "server"
        if server and transport != "websocket":
            raise Reject(400, "connection_type server is only valid for websocket")
        if not p.get("external_host") and not (transport == "websocket" and server):
            raise Reject(400, "external_host is required")
        if encapsulation == "audiosocket" and not p.get("data"):
            raise Reject(400, "data is required for audiosocket (it becomes the UUID)")
        if p.get("channelId") in fake.channels:
            raise Reject(409, "Channel with given unique ID already exists")
        host, channel_id, data = p.get("external_host", ""), p.get("channelId"), p.get("data", "")
        if encapsulation == "rtp":
            port = 17000 + 2 * len(fake.channels)
            channelvars = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": str(port)}
            channel = fake.new_channel(f"UnicastRTP/{host}", channel_id=channel_id, channelvars=channelvars)
        elif encapsulation == "audiosocket":
            channel = fake.new_channel(f"AudioSocket/{host}", channel_id=channel_id)
            if fake.connect_audiosocket:
                channel["state"] = "Up"
                fake.later(fake.audiosocket_connect(channel, host, data, p["format"]))
                return ok(channel)
        else:
            connection_id = new_id()
            frame = FRAME_BYTES_20MS.get(p["format"], 160)
            channelvars = {
                "MEDIA_WEBSOCKET_CONNECTION_ID": connection_id,
                "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": str(frame),
            }
            channel = fake.new_channel(
                f"WebSocket/{host or 'INCOMING'}", channel_id=channel_id, channelvars=channelvars
            )
            if fake.media_ws is not None:
                fake.media_ws.expect(connection_id, p["format"])
                fake.media_ws_channels[connection_id] = channel["id"]
            return ok(channel)  # enters Stasis only when the media socket connects
        channel["state"] = "Up"
        fake.later(fake.enter_stasis(channel, [data] if data else []))
        return ok(channel)

    # bridges ----------------------------------------------------------------------------------
    async def create_bridge(
        p: dict[str, str], v: dict[str, Any], id: str | None = None
    ) -> web.StreamResponse:
        types = p.get("type", "mixing").split(",")
        if not set(types) <= BRIDGE_TYPES:
            raise Reject(400, f"Invalid bridge type {p['type']!r}")
        bridge_id = id or p.get("bridgeId") or new_id()
        if bridge_id in fake.bridges:
            raise Reject(409, "Bridge with given id already exists")
        bridge = {
            "id": bridge_id,
            "technology": "simple_bridge",
            "bridge_type": "holding" if "holding" in types else "mixing",
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": p.get("name", ""),
            "channels": [],
            "creationtime": ari_timestamp(),
        }
        fake.bridges[bridge_id] = bridge
        return ok(bridge)

    def bridge_of(id: str) -> dict[str, Any]:
        if id not in fake.bridges:
            raise Reject(404, "Bridge not found")
        return fake.bridges[id]

    async def list_bridges(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        return ok(list(fake.bridges.values()))

    async def get_bridge(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        return ok(bridge_of(id))

    async def destroy_bridge(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        bridge = bridge_of(id)
        del fake.bridges[id]

        async def events() -> None:
            for channel_id in bridge["channels"]:
                if channel_id in fake.channels:
                    await fake.push(
                        {"type": "ChannelLeftBridge", "bridge": bridge, "channel": fake.channels[channel_id]}
                    )
            await fake.push({"type": "BridgeDestroyed", "bridge": bridge})

        fake.later(events())
        return no_content()

    async def add_channel(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        _need(p, "channel")
        bridge = bridge_of(id)
        ids = p["channel"].split(",")
        for channel_id in ids:
            if channel_id not in fake.channels:
                raise Reject(400, "Channel not found")
            if channel_id not in fake.in_stasis:
                raise Reject(422, "Channel not in Stasis application")
        for channel_id in ids:
            if channel_id not in bridge["channels"]:
                bridge["channels"].append(channel_id)
                event = {
                    "type": "ChannelEnteredBridge",
                    "bridge": dict(bridge, channels=list(bridge["channels"])),
                    "channel": fake.channels[channel_id],
                }
                fake.later(fake.push(event))
        return no_content()

    async def remove_channel(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        _need(p, "channel")
        bridge = bridge_of(id)
        for channel_id in p["channel"].split(","):
            if channel_id not in fake.channels:
                raise Reject(400, "Channel not found")
            if channel_id not in bridge["channels"]:
                raise Reject(422, "Channel not in this bridge")
            bridge["channels"].remove(channel_id)
            fake.later(
                fake.push(
                    {"type": "ChannelLeftBridge", "bridge": bridge, "channel": fake.channels[channel_id]}
                )
            )
        return no_content()

    async def bridge_play(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        return await play(p, v, id, target="bridge")

    # playbacks, recordings, sounds, modules -----------------------------------------------------
    def playback_of(id: str) -> dict[str, Any]:
        if id not in fake.playbacks:
            raise Reject(404, "Playback not found")
        return fake.playbacks[id]

    async def get_playback(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        return ok(playback_of(id))

    async def stop_playback(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        playback = playback_of(id)
        timer = fake._timers.pop(f"playback:{id}", None)
        if timer is not None:
            timer.cancel()
        fake.playbacks.pop(id, None)
        playback["state"] = "done"
        fake.later(fake.push({"type": "PlaybackFinished", "playback": dict(playback)}))
        return no_content()

    async def control_playback(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        playback = playback_of(id)
        _need(p, "operation")
        _check_choice(p, "operation", {"restart", "pause", "unpause", "reverse", "forward"})
        if p["operation"] == "unpause" and playback["state"] != "paused":
            raise Reject(409, "Playback not paused")
        playback["state"] = {"pause": "paused", "unpause": "playing"}.get(p["operation"], playback["state"])
        return no_content()

    def live_of(name: str) -> dict[str, Any]:
        if name not in fake.live_recordings:
            raise Reject(404, "Recording not found")
        return fake.live_recordings[name]

    async def get_live(p: dict[str, str], v: dict[str, Any], name: str) -> web.StreamResponse:
        return ok(live_of(name))

    async def stop_live(p: dict[str, str], v: dict[str, Any], name: str) -> web.StreamResponse:
        recording = fake.live_recordings.pop(live_of(name)["name"])
        recording["state"] = "done"
        fake.stored_recordings[name] = {"name": name, "format": recording["format"]}
        fake.later(fake.push({"type": "RecordingFinished", "recording": recording}))
        return no_content()

    async def cancel_live(p: dict[str, str], v: dict[str, Any], name: str) -> web.StreamResponse:
        fake.live_recordings.pop(live_of(name)["name"])
        return no_content()

    async def list_stored(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        return ok(list(fake.stored_recordings.values()))

    async def get_stored(p: dict[str, str], v: dict[str, Any], name: str) -> web.StreamResponse:
        if name not in fake.stored_recordings:
            raise Reject(404, "Recording not found")
        return ok(fake.stored_recordings[name])

    async def delete_stored(p: dict[str, str], v: dict[str, Any], name: str) -> web.StreamResponse:
        if fake.stored_recordings.pop(name, None) is None:
            raise Reject(404, "Recording not found")
        return no_content()

    sounds = [
        {
            "id": "hello-world",
            "text": "Hello world.",
            "formats": [{"language": "en", "format": "gsm"}, {"language": "en", "format": "ulaw"}],
        },
        {"id": "demo-congrats", "formats": [{"language": "en", "format": "gsm"}]},
        {"id": "vm-goodbye", "formats": [{"language": "fr", "format": "gsm"}]},
    ]

    async def list_sounds(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        def fits(sound: dict[str, Any]) -> bool:
            return any(
                p.get("lang", f["language"]) == f["language"] and p.get("format", f["format"]) == f["format"]
                for f in sound["formats"]
            )

        return ok([s for s in sounds if fits(s)])

    async def get_sound(p: dict[str, str], v: dict[str, Any], id: str) -> web.StreamResponse:
        for sound in sounds:
            if sound["id"] == id:
                return ok(sound)
        raise Reject(404, "Sound not found")

    modules = [
        {
            "name": "res_ari.so",
            "description": "Asterisk RESTful Interface",
            "use_count": 0,
            "status": "Running",
            "support_level": "core",
        },
        {
            "name": "chan_websocket.so",
            "description": "Websocket Media Channel",
            "use_count": 0,
            "status": "Running",
            "support_level": "core",
        },
    ]

    async def list_modules(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        return ok(modules)

    async def get_module(p: dict[str, str], v: dict[str, Any], name: str) -> web.StreamResponse:
        for module in modules:
            if module["name"] == name:
                return ok(module)
        raise Reject(404, "Module could not be found in running modules")

    async def ping(p: dict[str, str], v: dict[str, Any]) -> web.StreamResponse:
        return ok({"asterisk_id": ASTERISK_ID, "ping": "pong", "timestamp": ari_timestamp()})

    r = fake.route
    r("GET", "/channels", list_channels)
    r("POST", "/channels", originate)
    r("POST", "/channels/create", create)
    r("POST", "/channels/externalMedia", external_media)
    r("POST", "/channels/{id}", originate)
    r("GET", "/channels/{id}", get_channel)
    r("DELETE", "/channels/{id}", hangup)
    r("POST", "/channels/{id}/answer", answer)
    r("POST", "/channels/{id}/dial", dial)
    for action in ("ring", "hold", "progress", "moh", "silence"):
        r("POST", f"/channels/{{id}}/{action}", simple_action)
    for action in ("ring", "hold", "moh", "silence"):
        r("DELETE", f"/channels/{{id}}/{action}", simple_action)
    r("POST", "/channels/{id}/dtmf", dtmf)
    r("POST", "/channels/{id}/mute", mute)
    r("DELETE", "/channels/{id}/mute", mute)
    r("POST", "/channels/{id}/play", play)
    r("POST", "/channels/{id}/record", record)
    r("GET", "/channels/{id}/variable", get_var)
    r("POST", "/channels/{id}/variable", set_var)
    r("POST", "/channels/{id}/continue", continue_)
    r("POST", "/channels/{id}/move", move)
    r("POST", "/channels/{id}/redirect", redirect)
    r("POST", "/channels/{id}/snoop", snoop)
    r("POST", "/bridges", create_bridge)
    r("GET", "/bridges", list_bridges)
    r("POST", "/bridges/{id}", create_bridge)
    r("GET", "/bridges/{id}", get_bridge)
    r("DELETE", "/bridges/{id}", destroy_bridge)
    r("POST", "/bridges/{id}/addChannel", add_channel)
    r("POST", "/bridges/{id}/removeChannel", remove_channel)
    r("POST", "/bridges/{id}/play", bridge_play)
    r("GET", "/playbacks/{id}", get_playback)
    r("DELETE", "/playbacks/{id}", stop_playback)
    r("POST", "/playbacks/{id}/control", control_playback)
    r("GET", "/recordings/live/{name}", get_live)
    r("DELETE", "/recordings/live/{name}", cancel_live)
    r("POST", "/recordings/live/{name}/stop", stop_live)
    r("GET", "/recordings/stored", list_stored)
    r("GET", "/recordings/stored/{name}", get_stored)
    r("DELETE", "/recordings/stored/{name}", delete_stored)
    r("GET", "/sounds", list_sounds)
    r("GET", "/sounds/{id}", get_sound)
    r("GET", "/asterisk/modules", list_modules)
    r("GET", "/asterisk/modules/{name}", get_module)
    r("GET", "/asterisk/ping", ping)


async def _main() -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--connect-audiosocket",
        action="store_true",
        help="externalMedia audiosocket connects to external_host and streams audio, as Asterisk does",
    )
    opts = parser.parse_args()
    fake = await FakeAri(connect_audiosocket=opts.connect_audiosocket).start(opts.port, control=True)
    print(fake.port, flush=True)
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
