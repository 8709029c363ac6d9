"""RTP over UDP: the media leg of ARI externalMedia with encapsulation=rtp (ulaw/alaw, 20 ms)."""

from voxgate.transports.rtp.leg import RtpMediaLeg
from voxgate.transports.rtp.packet import (
    RtpPacket,
    RtpPacketError,
    TelephoneEvent,
    build_packet,
    parse_packet,
    parse_telephone_event,
)

__all__ = [
    "RtpMediaLeg",
    "RtpPacket",
    "RtpPacketError",
    "TelephoneEvent",
    "build_packet",
    "parse_packet",
    "parse_telephone_event",
]
