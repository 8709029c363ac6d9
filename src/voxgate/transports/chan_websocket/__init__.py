"""Asterisk chan_websocket: the media of an ARI externalMedia channel over a WebSocket we open
(`transport=websocket, encapsulation=none, connection_type=server`; Asterisk 20.16 / 21.11 /
22.6 / 23.0+). Wire facts: shared/protocols/ari.md §6, §7."""

from voxgate.transports.chan_websocket.control import (
    COMMANDS,
    CONTROL_FORMATS,
    EVENTS,
    ControlError,
    ControlFormat,
    ControlMessage,
    format_command,
    parse_control,
)
from voxgate.transports.chan_websocket.leg import FORMATS, SUBPROTOCOL, MediaLegError, WebSocketMediaLeg

__all__ = [
    "COMMANDS",
    "CONTROL_FORMATS",
    "EVENTS",
    "FORMATS",
    "SUBPROTOCOL",
    "ControlError",
    "ControlFormat",
    "ControlMessage",
    "MediaLegError",
    "WebSocketMediaLeg",
    "format_command",
    "parse_control",
]
