"""The media leg of an ARI call: how voxgate asks Asterisk for the caller's audio.

Three kinds of `externalMedia` channel (ari.md §3, §6, §7):
- `audiosocket` (default): Asterisk connects over TCP to our AudioSocket listener with the call
  UUID as `data`; slin16 where Asterisk supports it. Nothing to open on our side.
- `rtp`: we open a UDP port, Asterisk sends RTP there and tells us (channelvars
  `UNICASTRTP_LOCAL_ADDRESS/PORT`) where to send ours. μ-law or A-law only: RTP slin16 is
  one-way on 22.10 (what we send back with PT 118 is discarded).
- `websocket` (chan_websocket, Asterisk 20.16 / 21.11 / 22.6 / 23.0+): we connect to
  `ws://ASTERISK:8088/media/<MEDIA_WEBSOCKET_CONNECTION_ID>`; the channel enters Stasis only
  after that socket connects.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args
from urllib.parse import urlsplit, urlunsplit

from voxgate.audio.pacer import MediaClock
from voxgate.config import format_hostport

from .ari import AriClient

log = logging.getLogger("voxgate.ari.media")

MediaKind = Literal["audiosocket", "rtp", "websocket"]
MEDIA_KINDS: tuple[MediaKind, ...] = get_args(MediaKind)
MEDIA_CHANNEL_PREFIXES = ("AudioSocket/", "UnicastRTP/", "WebSocket/")


class MediaCall(Protocol):  # what the router needs of a media leg (AudioSocketCall, RTP, WebSocket)
    call_id: str
    outcome: str | None
    end_cause: str | None

    async def wait_ended(self) -> None: ...
    async def hangup(self, reason: str = ...) -> None: ...


@dataclass(frozen=True)
class MediaSettings:
    """How ARI calls get their audio (from the validated `ari:` config); `kind` is the default,
    a route may pick another."""

    kind: MediaKind = "audiosocket"
    host: str = "127.0.0.1"  # voxgate's address as Asterisk sees it
    audiosocket_port: int = 0
    audiosocket_format: str = "slin16"
    rtp_format: str = "ulaw"
    rtp_bind: str = "0.0.0.0"
    websocket_format: str = "slin16"

    @property
    def audiosocket_host_port(self) -> str:
        return format_hostport(self.host, self.audiosocket_port)


def media_websocket_url(ari_base_url: str, connection_id: str) -> str:
    """`http://pbx:8088/ari` → `ws://pbx:8088/media/<id>` (https → wss)."""
    parts = urlsplit(ari_base_url)
    path = parts.path.rstrip("/")
    if path.endswith("/ari"):
        path = path[: -len("/ari")]
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, f"{path}/media/{connection_id}", "", ""))


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def open_media(
    client: AriClient,
    settings: MediaSettings,
    kind: MediaKind,
    call_uuid: str,
    *,
    clock: MediaClock,
    app: str,
) -> Any:
    """Ask Asterisk for the media channel (id = `call_uuid`). Returns the leg voxgate owns for
    rtp and websocket, None for audiosocket (Asterisk connects to our listener). Raises
    `AriError` from the request, `ConnectionError`/`OSError`/`TimeoutError` from our side; a
    leg opened before the failure is closed here."""
    if kind == "audiosocket":
        await client.external_media(
            settings.audiosocket_format,
            app=app,
            external_host=settings.audiosocket_host_port,
            encapsulation="audiosocket",
            transport="tcp",
            data=call_uuid,
            channel_id=call_uuid,
        )
        return None
    if kind == "rtp":
        return await _open_rtp(client, settings, call_uuid, clock=clock, app=app)
    return await _open_websocket(client, settings, call_uuid, clock=clock, app=app)


async def _open_rtp(
    client: AriClient, settings: MediaSettings, call_uuid: str, *, clock: MediaClock, app: str
) -> Any:
    from voxgate.transports.rtp import RtpMediaLeg

    leg = await RtpMediaLeg.open(
        call_uuid, codec=settings.rtp_format, bind_host=settings.rtp_bind, clock=clock
    )
    try:
        channel = await client.external_media(
            settings.rtp_format,
            app=app,
            external_host=format_hostport(settings.host, leg.local_port),
            encapsulation="rtp",
            transport="udp",
            channel_id=call_uuid,
        )
        address = str(channel.channelvars.get("UNICASTRTP_LOCAL_ADDRESS") or "")
        port = int(channel.channelvars.get("UNICASTRTP_LOCAL_PORT") or 0)
        if not port:
            raise ConnectionError(
                "externalMedia answered without UNICASTRTP_LOCAL_PORT: cannot send RTP to Asterisk"
            )
        # Asterisk bound to 0.0.0.0: it is reachable where ARI is (if that is an IP literal;
        # else the leg latches onto the source of Asterisk's first packet).
        ari_host = urlsplit(client.base_url).hostname or ""
        leg.set_remote(address, port, fallback_host=ari_host if _ip_literal(ari_host) else None)
    except BaseException:
        await leg.hangup("media setup failed")
        raise
    return leg


async def _open_websocket(
    client: AriClient, settings: MediaSettings, call_uuid: str, *, clock: MediaClock, app: str
) -> Any:
    from voxgate.transports.chan_websocket import WebSocketMediaLeg

    channel = await client.external_media(
        settings.websocket_format,
        app=app,
        encapsulation="none",
        transport="websocket",
        connection_type="server",
        channel_id=call_uuid,
    )
    connection_id = str(channel.channelvars.get("MEDIA_WEBSOCKET_CONNECTION_ID") or "")
    if not connection_id:
        raise ConnectionError(
            "externalMedia answered without MEDIA_WEBSOCKET_CONNECTION_ID: is this Asterisk 20.16 / "
            "21.11 / 22.6 / 23.0 or newer, with chan_websocket loaded?"
        )
    url = media_websocket_url(client.base_url, connection_id)
    return await WebSocketMediaLeg.connect(call_uuid, url, format=settings.websocket_format, clock=clock)
