"""Asterisk AudioSocket: the TCP media transport (Asterisk connects to us)."""

from voxgate.transports.audiosocket.protocol import Kind, MessageReader, ProtocolError, encode
from voxgate.transports.audiosocket.server import AudioSocketCall, AudioSocketServer

__all__ = [
    "AudioSocketCall",
    "AudioSocketServer",
    "Kind",
    "MessageReader",
    "ProtocolError",
    "encode",
]
