"""The RTP media leg of an ARI call (externalMedia with encapsulation=rtp, transport=udp).

Asterisk's UnicastRTP channel sends 20 ms G.711 packets to our UDP socket; we send ours, paced
by the shared `MediaClock`, to `UNICASTRTP_LOCAL_ADDRESS:PORT` from the externalMedia response
(ari.md §3, §7). Only ulaw/alaw: Asterisk 22 discards L16 sent back over RTP.

A bad datagram is dropped and counted, never the end of a call. Symmetric RTP: the first valid
packet's source becomes where we send, whatever the channelvars said (NAT, 0.0.0.0).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
from typing import Any, cast

from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.audio.pacer import MediaClock, OutboundPacer
from voxgate.log import call_logger
from voxgate.transports.base import CallLeg, Dtmf, unframed
from voxgate.transports.rtp.packet import (
    PT_CN,
    PT_PCMA,
    PT_PCMU,
    PT_TELEPHONE_EVENT,
    RtpPacket,
    RtpPacketError,
    build_packet,
    parse_packet,
    parse_telephone_event,
)

log = logging.getLogger("voxgate.rtp")

SAMPLE_RATE = 8000
MAX_MALFORMED_IN_A_ROW = 50  # one more than this from the peer ends the leg
RESTART_JUMP = 3000  # sequence moves larger than this (either way) are a new stream, not reordering

_CODECS = {"ulaw": (Encoding.ULAW, PT_PCMU), "alaw": (Encoding.ALAW, PT_PCMA)}
_PT_NAMES = {
    PT_PCMU: "PCMU (ulaw)",
    PT_PCMA: "PCMA (alaw)",
    PT_CN: "comfort noise",
    118: "L16 (Asterisk's slin16)",
    **{pt: "RTCP (multiplexed on the RTP port)" for pt in range(72, 77)},
}

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(host: str) -> _IP:
    """An IP literal, IPv4-mapped IPv6 unwrapped so both spellings compare equal."""
    addr = ipaddress.ip_address(host)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class RtpMediaLeg(CallLeg, asyncio.DatagramProtocol):
    """One call's RTP stream over one UDP socket. Implements `CallAudio`.

    There is no in-band hangup in RTP: `hangup()` and `transfer()` end the leg here and record
    `outcome`; the ARI side acts on the channels (it redirects the caller on a transfer).
    """

    def __init__(
        self,
        call_id: str,
        *,
        clock: MediaClock,
        codec: str = "ulaw",
        media_timeout_s: float = 30.0,
        dtmf_payload_type: int = PT_TELEPHONE_EVENT,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if codec not in _CODECS:
            raise ValueError(
                f"the RTP media leg carries ulaw or alaw, not {codec!r}: Asterisk 22 discards L16 "
                "(slin16, PT 118) sent back over externalMedia RTP, so the caller would hear silence; "
                "use media=audiosocket or media=websocket for 16 kHz audio"
            )
        if media_timeout_s <= 0:
            raise ValueError(f"media_timeout_s must be positive, got {media_timeout_s}")
        super().__init__()
        encoding, self._pt = _CODECS[codec]
        self._in_format = AudioFormat(encoding, SAMPLE_RATE)
        self._clock = clock
        self._loop = loop or asyncio.get_running_loop()
        self._media_timeout_s = media_timeout_s
        self._dtmf_pt = dtmf_payload_type
        self._log: logging.LoggerAdapter[logging.Logger] = call_logger(log.name, call_id)
        self._transport: asyncio.DatagramTransport | None = None
        self._family = socket.AF_INET
        self.call_id = call_id
        # The RTP header is added at send time: its seq/timestamp change per packet.
        self.output = OutboundPacer(self._in_format, unframed)
        self.context: Any = None  # set by whoever runs the call
        self.opened_at = 0.0
        # Where we send: the raw source address once latched, else what set_remote gave.
        self._remote_addr: tuple[Any, ...] | None = None
        self._remote_key: tuple[_IP, int] | None = None
        self._locked = False  # latched to the source of the first valid packet
        self._last_rx = 0.0
        # Outbound stream state (RFC 3550 §5.1: random initial values).
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._talking = False  # the last packet sent carried audio, not filler
        # Inbound stream state.
        self._in_ssrc: int | None = None
        self._in_seq: int | None = None
        self._dtmf_ts: int | None = None  # timestamp (= identity) of the last event reported
        self._dtmf_ssrc: int | None = None
        self._seen_pts: set[int] = set()
        self._malformed_run = 0
        # Counters.
        self.frames_in = 0  # audio frames delivered to the agent
        self.frames_dropped = 0  # inbound audio packets dropped as duplicate or late
        self.dtmf_in = 0
        self._dtmf_source: str | None = None  # "rtp" or "ari": see _deliver_dtmf
        self.packets_in = 0  # valid RTP packets from the peer, any payload type
        self.packets_out = 0
        self.packets_malformed = 0
        self.packets_foreign = 0  # from a source other than the one we latched to
        self.packets_ignored = 0  # comfort noise, other payload types, non-DTMF events
        self.send_errors = 0

    @classmethod
    async def open(
        cls,
        call_id: str,
        *,
        codec: str = "ulaw",
        bind_host: str = "0.0.0.0",
        port: int = 0,
        clock: MediaClock,
        media_timeout_s: float = 30.0,
        dtmf_payload_type: int = PT_TELEPHONE_EVENT,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> RtpMediaLeg:
        """Bind the leg's UDP socket (`port=0`: any free port; see `local_port`)."""
        leg = cls(
            call_id,
            clock=clock,
            codec=codec,
            media_timeout_s=media_timeout_s,
            dtmf_payload_type=dtmf_payload_type,
            loop=loop,
        )
        try:
            await leg._loop.create_datagram_endpoint(lambda: leg, local_addr=(bind_host, port))
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot bind the RTP socket of call {call_id} to {bind_host}:{port}: {exc.strerror or exc}",
            ) from exc
        return leg

    @property
    def local_port(self) -> int:
        """The UDP port Asterisk must send to (externalMedia's external_host)."""
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    @property
    def remote(self) -> tuple[str, int] | None:
        """Where our RTP goes, once known."""
        return None if self._remote_key is None else (str(self._remote_key[0]), self._remote_key[1])

    def set_remote(self, host: str, port: int, *, fallback_host: str | None = None) -> None:
        """Send to `host:port` (the externalMedia channelvars UNICASTRTP_LOCAL_ADDRESS/PORT).

        An unspecified host (empty, 0.0.0.0, ::) means "any of Asterisk's addresses": then
        `fallback_host` (e.g. the ARI server's IP) is used, or without one we wait for Asterisk's
        first packet and answer its source. Once latched to that source, this changes nothing.
        """
        if not 0 < port < 0x10000:
            raise ValueError(f"RTP remote port {port} is outside 1-65535")
        target = (host or "").strip().strip("[]")
        if not target or _unspecified(target):
            if not fallback_host:
                self._log.info(
                    "externalMedia gave no usable RTP address (%r); sending to the source of "
                    "Asterisk's first packet",
                    host,
                )
                return
            target = fallback_host.strip().strip("[]")
        try:
            ip = _ip(target)
        except ValueError:
            raise ValueError(
                f"RTP remote host {target!r} is not an IP address; resolve it first (the externalMedia "
                "channelvar UNICASTRTP_LOCAL_ADDRESS is always one)"
            ) from None
        key = (ip, port)
        if self._locked:
            if key != self._remote_key:
                self._log.info(
                    "keeping the RTP source we latched to, %s, rather than %s:%d", self._remote_text, ip, port
                )
            return
        self._remote_addr = self._sendto_address(ip, port)
        self._remote_key = key
        self._start_output()

    # --- CallAudio ---------------------------------------------------------------------

    def _hang_up(self, reason: str) -> None:
        """End the leg here (RTP has no hangup message); the ARI side hangs up the channels."""
        self._end(reason)

    # --- asyncio.DatagramProtocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._family = sock.family
        self.opened_at = self._last_rx = self._loop.time()
        # Ticks from the start: the media timeout needs them; nothing is sent before a remote.
        self._clock.add(self)
        self._log.debug("RTP leg listening on UDP port %d (%s)", self.local_port, self._in_format)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.end_cause is not None:
            return
        if self._locked and addr != self._remote_addr and self._key(addr) != self._remote_key:
            self.packets_foreign += 1
            if self.packets_foreign == 1:
                self._log.warning(
                    "ignoring RTP from %s: this leg is latched to %s (further ones are counted)",
                    _text(addr),
                    self._remote_text,
                )
            return
        try:
            packet = parse_packet(data)
        except RtpPacketError as exc:
            self._malformed(exc, addr)
            return
        self._malformed_run = 0
        self._last_rx = self._loop.time()
        self.packets_in += 1
        if not self._locked:
            self._latch(addr)
        pt = packet.payload_type
        if pt == self._pt:
            self._audio(packet)
        elif pt == self._dtmf_pt:
            self._telephone_event(packet)
        else:
            self._other(pt)

    def error_received(self, exc: Exception) -> None:
        # On Linux a UDP send to a closed port comes back as ConnectionRefusedError (ICMP).
        self.send_errors += 1
        if self.send_errors == 1:
            self._log.warning(
                "RTP socket error: %s (is Asterisk listening at %s?); further ones are counted",
                exc,
                self._remote_text,
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("socket closed" if exc is None else f"connection lost: {exc}")

    # --- inbound -----------------------------------------------------------------------

    def _latch(self, addr: tuple[Any, ...]) -> None:
        key = self._key(addr)
        if self._remote_key is None:
            self._log.info("sending RTP to %s, the source of Asterisk's first packet", _text(addr))
        elif key != self._remote_key:
            self._log.info(
                "Asterisk's RTP comes from %s, not %s as externalMedia said: sending there (symmetric RTP)",
                _text(addr),
                self._remote_text,
            )
        self._remote_addr = addr
        self._remote_key = key
        self._locked = True
        self._start_output()

    def _audio(self, packet: RtpPacket) -> None:
        seq = packet.sequence
        last = self._in_seq
        if last is None or packet.ssrc != self._in_ssrc:
            if last is not None:
                self._log.info("inbound RTP SSRC changed to %08x: a new stream", packet.ssrc)
            self._in_ssrc = packet.ssrc
        else:
            ahead = (seq - last) & 0xFFFF
            if ahead == 0 or 0x10000 - ahead <= RESTART_JUMP:
                self.frames_dropped += 1  # a duplicate, or older than what the agent already has
                return
            if RESTART_JUMP < ahead < 0x10000 - RESTART_JUMP:
                self._log.info("inbound RTP sequence jumped from %d to %d: taken as a restart", last, seq)
        self._in_seq = seq
        if not packet.payload:
            return
        self.frames_in += 1
        self._inbound.put(AudioFrame(packet.payload, self._in_format))

    def _telephone_event(self, packet: RtpPacket) -> None:
        """One `Dtmf` per event: its packets (updates, the end sent 3 times) share a timestamp."""
        try:
            event = parse_telephone_event(packet.payload)
        except RtpPacketError as exc:
            self._malformed(exc, None)
            return
        last = self._dtmf_ts if packet.ssrc == self._dtmf_ssrc else None
        if last is not None and not 0 < (packet.timestamp - last) & 0xFFFFFFFF < 0x80000000:
            return  # a repeat of an event already reported, or a late one from before it
        self._dtmf_ts = packet.timestamp
        self._dtmf_ssrc = packet.ssrc
        digit = event.digit
        if digit is None:
            self.packets_ignored += 1
            self._log.debug("ignoring telephone-event %d: not a DTMF key", event.event)
            return
        self._deliver_dtmf(digit, "rtp")

    def receive_dtmf(self, digit: str) -> None:
        """A key reported by ARI (`ChannelDtmfReceived` on the caller's channel)."""
        self._deliver_dtmf(digit, "ari")

    def _deliver_dtmf(self, digit: str, source: str) -> None:
        # Keys may reach us twice: as RFC 4733 events in the RTP and as ARI events. The first
        # source to deliver one becomes the call's; the other is ignored from then on.
        if self._dtmf_source is None:
            self._dtmf_source = source
            self._log.info(
                "DTMF keys come from %s", "RFC 4733 events in the RTP" if source == "rtp" else "ARI"
            )
        elif source != self._dtmf_source:
            return
        self.dtmf_in += 1
        self._inbound.put(Dtmf(digit))

    def _other(self, pt: int) -> None:
        self.packets_ignored += 1
        if pt in self._seen_pts:
            return
        self._seen_pts.add(pt)
        name = _PT_NAMES.get(pt, "unknown")
        if pt in (PT_PCMU, PT_PCMA, 118):
            self._log.warning(
                "ignoring RTP payload type %d (%s): this leg expects %d (%s); give externalMedia format=%s",
                pt,
                name,
                self._pt,
                _PT_NAMES[self._pt],
                self._in_format.encoding.value,
            )
        elif pt == PT_CN:
            self._log.debug("ignoring comfort-noise packets (PT 13)")
        else:
            self._log.info("ignoring RTP payload type %d (%s)", pt, name)

    def _malformed(self, exc: RtpPacketError, addr: tuple[Any, ...] | None) -> None:
        self.packets_malformed += 1
        self._malformed_run += 1
        source = _text(addr) if addr is not None else self._remote_text
        if self.packets_malformed == 1:
            self._log.warning(
                "dropping a malformed RTP datagram from %s: %s (further ones are counted)", source, exc
            )
        if self._malformed_run > MAX_MALFORMED_IN_A_ROW:
            self._log.warning(
                "%d malformed RTP datagrams in a row from %s, the last: %s; ending the media leg",
                self._malformed_run,
                source,
                exc,
            )
            self._end("error:malformed_rtp")

    # --- outbound ----------------------------------------------------------------------

    def _start_output(self) -> None:
        if self.end_cause is None and self.output.send_now is None:
            self.output.send_now = self._send_now

    def on_tick(self, now: float) -> None:
        """Clock tick: the media watchdog, then exactly one outbound packet once a remote is known."""
        if self.end_cause is not None:
            return
        if now - self._last_rx > self._media_timeout_s:
            self._log.warning(
                "no RTP from Asterisk for %.1f s (%s); ending the media leg",
                now - self._last_rx,
                "after its last packet" if self.packets_in else "since the leg opened",
            )
            self._end("media timeout")
            return
        if self._remote_addr is None:
            return
        output = self.output
        audio_before = output.audio_frames_sent
        payload = output.next_message()
        if not payload:  # this period's frame already went out (a talkspurt's early start)
            return
        self._send(payload, audio=output.audio_frames_sent != audio_before)

    def _send_now(self, payload: bytes) -> None:
        """A talkspurt's first frame, sent as soon as it is written (it takes the next tick's slot)."""
        if self.end_cause is None and self._remote_addr is not None:
            self._send(payload, audio=True)

    def _send(self, payload: bytes, *, audio: bool) -> None:
        # Marker bit (RFC 3551 §4.1): the first packet of the stream and of every talkspurt.
        marker = self.packets_out == 0 or (audio and not self._talking)
        self._talking = audio
        packet = build_packet(self._pt, self._seq, self._ts, self._ssrc, payload, marker=marker)
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + len(payload)) & 0xFFFFFFFF  # G.711: one byte per sample
        assert self._transport is not None and self._remote_addr is not None
        self._transport.sendto(packet, self._remote_addr)
        self.packets_out += 1

    # --- ending ------------------------------------------------------------------------

    def _end(self, cause: str) -> None:
        if self.end_cause is not None:
            return
        self.end_cause = cause
        self._clock.discard(self)
        self.output.send_now = None
        if self._transport is not None:
            self._transport.close()
        self._inbound.close()
        self._log.info(
            "RTP leg ended (%s) after %.1f s; packets in %d, out %d; audio frames in %d; dropped: "
            "%d late/duplicate, %d malformed, %d foreign, %d other",
            cause,
            self._loop.time() - self.opened_at if self.opened_at else 0.0,
            self.packets_in,
            self.packets_out,
            self.frames_in,
            self.frames_dropped,
            self.packets_malformed,
            self.packets_foreign,
            self.packets_ignored,
        )
        self._ended.set()

    # --- addresses ---------------------------------------------------------------------

    def _key(self, addr: tuple[Any, ...]) -> tuple[_IP, int]:
        return _ip(addr[0]), addr[1]

    def _sendto_address(self, ip: _IP, port: int) -> tuple[str, int]:
        if self._family == socket.AF_INET6:
            return (f"::ffff:{ip}" if ip.version == 4 else str(ip)), port
        if ip.version == 6:
            raise ValueError(
                f"cannot send RTP to the IPv6 address {ip} from a socket bound to IPv4; open the leg "
                "with bind_host='::'"
            )
        return str(ip), port

    @property
    def _remote_text(self) -> str:
        remote = self.remote
        return "nowhere yet" if remote is None else _text(remote)


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _text(addr: tuple[Any, ...]) -> str:
    host = str(addr[0])
    return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
