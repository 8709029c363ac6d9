"""`parse_event`: one events-WebSocket frame → a typed event. It never raises.

An event type we do not model becomes `UnknownEvent`; a modelled type with missing or mistyped
fields (no `channel`, `digit` not a string …) or a frame that is not a JSON object becomes
`MalformedEvent`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .events import (
    ApplicationRegistered,
    ApplicationReplaced,
    AriEvent,
    BridgeCreated,
    BridgeDestroyed,
    ChannelCreated,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelHold,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelTalkingFinished,
    ChannelTalkingStarted,
    ChannelUnhold,
    ChannelUserevent,
    ChannelVarset,
    Dial,
    MalformedEvent,
    PlaybackContinuing,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
)
from .models import Bridge, Channel, LiveRecording, Playback


def _int(obj: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = obj.get(key, default)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"{key!r} is {type(value).__name__}, not an integer")


def _str(obj: dict[str, Any], key: str, default: str | None = None) -> str:
    value = obj.get(key, default) if default is not None else obj[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} is {type(value).__name__}, not a string")
    return value


def _opt_channel(obj: dict[str, Any], key: str) -> Channel | None:
    return Channel.from_json(obj[key]) if obj.get(key) is not None else None


def _args(obj: dict[str, Any]) -> tuple[str, ...]:
    args = obj.get("args", [])
    if not isinstance(args, list):
        raise TypeError("'args' is not a list")
    return tuple(str(a) for a in args)


def _channel(o: dict[str, Any]) -> dict[str, Any]:
    return {"channel": Channel.from_json(o["channel"])}


def _bridge(o: dict[str, Any]) -> dict[str, Any]:
    return {"bridge": Bridge.from_json(o["bridge"])}


def _channel_bridge(o: dict[str, Any]) -> dict[str, Any]:
    return {**_channel(o), **_bridge(o)}


def _playback(o: dict[str, Any]) -> dict[str, Any]:
    return {"playback": Playback.from_json(o["playback"])}


def _recording(o: dict[str, Any]) -> dict[str, Any]:
    return {"recording": LiveRecording.from_json(o["recording"])}


_Fields = Callable[[dict[str, Any]], dict[str, Any]]

_PARSERS: dict[str, tuple[type[AriEvent], _Fields]] = {
    "StasisStart": (
        StasisStart,
        lambda o: {**_channel(o), "args": _args(o), "replace_channel": _opt_channel(o, "replace_channel")},
    ),
    "StasisEnd": (StasisEnd, _channel),
    "ChannelCreated": (ChannelCreated, _channel),
    "ChannelStateChange": (ChannelStateChange, _channel),
    "ChannelDtmfReceived": (
        ChannelDtmfReceived,
        lambda o: {**_channel(o), "digit": _str(o, "digit"), "duration_ms": _int(o, "duration_ms", 0)},
    ),
    "ChannelHangupRequest": (
        ChannelHangupRequest,
        lambda o: {
            **_channel(o),
            "cause": _int(o, "cause"),
            "tech_cause": _int(o, "tech_cause"),
            "soft": bool(o.get("soft", False)),
        },
    ),
    "ChannelDestroyed": (
        ChannelDestroyed,
        lambda o: {
            **_channel(o),
            "cause": _int(o, "cause", 0),
            "cause_txt": _str(o, "cause_txt", ""),
            "tech_cause": _int(o, "tech_cause"),
        },
    ),
    "ChannelVarset": (
        ChannelVarset,
        lambda o: {
            "variable": _str(o, "variable"),
            "value": str(o.get("value", "")),
            "channel": _opt_channel(o, "channel"),
        },
    ),
    "ChannelTalkingStarted": (ChannelTalkingStarted, _channel),
    "ChannelTalkingFinished": (
        ChannelTalkingFinished,
        lambda o: {**_channel(o), "duration": _int(o, "duration", 0)},
    ),
    "ChannelHold": (ChannelHold, _channel),
    "ChannelUnhold": (ChannelUnhold, _channel),
    "ChannelEnteredBridge": (ChannelEnteredBridge, _channel_bridge),
    "ChannelLeftBridge": (ChannelLeftBridge, _channel_bridge),
    "BridgeCreated": (BridgeCreated, _bridge),
    "BridgeDestroyed": (BridgeDestroyed, _bridge),
    "PlaybackStarted": (PlaybackStarted, _playback),
    "PlaybackContinuing": (PlaybackContinuing, _playback),
    "PlaybackFinished": (PlaybackFinished, _playback),
    "RecordingStarted": (RecordingStarted, _recording),
    "RecordingFinished": (RecordingFinished, _recording),
    "RecordingFailed": (RecordingFailed, _recording),
    "Dial": (
        Dial,
        lambda o: {
            "peer": Channel.from_json(o["peer"]),
            "caller": _opt_channel(o, "caller"),
            "dialstatus": _str(o, "dialstatus", ""),
            "dialstring": _str(o, "dialstring", ""),
            "forward": _str(o, "forward", ""),
        },
    ),
    "ChannelUserevent": (
        ChannelUserevent,
        lambda o: {
            "eventname": _str(o, "eventname"),
            "userevent": o.get("userevent") if isinstance(o.get("userevent"), dict) else {},
            "channel": _opt_channel(o, "channel"),
            "bridge": Bridge.from_json(o["bridge"]) if o.get("bridge") is not None else None,
        },
    ),
    "ApplicationReplaced": (ApplicationReplaced, lambda o: {}),
    "ApplicationRegistered": (ApplicationRegistered, lambda o: {}),
}

EVENT_TYPES: dict[str, type[AriEvent]] = {name: cls for name, (cls, _) in _PARSERS.items()}


def parse_event(obj: dict[str, Any] | str | bytes) -> AriEvent:
    """One WebSocket frame (text, bytes or already-decoded JSON) → a typed event. Never raises."""
    text = ""
    if isinstance(obj, (str, bytes, bytearray)):
        text = obj.decode("utf-8", "replace") if isinstance(obj, (bytes, bytearray)) else obj
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return MalformedEvent(type="", reason=f"not JSON: {exc}", text=text[:1000])
    if not isinstance(obj, dict):
        return MalformedEvent(type="", reason=f"not a JSON object: {type(obj).__name__}", text=text[:1000])
    event_type = obj.get("type")
    common = {
        "application": str(obj.get("application", "")),
        "timestamp": str(obj.get("timestamp", "")),
        "asterisk_id": str(obj.get("asterisk_id", "")),
        "raw": obj,
    }
    if not isinstance(event_type, str) or not event_type:
        return MalformedEvent(type="", reason="no 'type' field", **common)
    entry = _PARSERS.get(event_type)
    if entry is None:
        return UnknownEvent(type=event_type, **common)
    cls, fields = entry
    try:
        return cls(type=event_type, **fields(obj), **common)
    except KeyError as exc:
        reason = f"{event_type} without {exc.args[0]!r}"
    except Exception as exc:  # never raise: one odd frame must not stop the event loop
        reason = f"{event_type}: {exc}"
    return MalformedEvent(type=event_type, reason=reason, **common)
