"""Small typed views of the ARI objects a voice app reads (Channel, Bridge, Playback, LiveRecording).

Each keeps the JSON it came from in `raw`, so fields we do not model are still reachable.
`from_json` raises KeyError/TypeError/ValueError on an object missing its id; callers decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"  # ARI writes %FT%T.%q%z: "2026-01-05T10:11:12.345+0000"


def parse_timestamp(text: str | None) -> datetime | None:
    """An ARI timestamp as an aware datetime, or None if absent or not in ARI's format."""
    if not text:
        return None
    try:
        return datetime.strptime(text, _TS_FORMAT)
    except ValueError:
        return None


def _require_str(obj: Any, key: str) -> str:
    if not isinstance(obj, dict):
        raise TypeError(f"expected an object, got {type(obj).__name__}")
    value = obj[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} is {type(value).__name__}, not a string")
    return value


def _sub(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Channel:
    """A call leg. `state` is Asterisk's: Down, Ring, Ringing, Up, Busy …"""

    id: str
    name: str = ""
    state: str = ""
    caller_name: str = ""
    caller_number: str = ""
    connected_number: str = ""
    context: str = ""
    exten: str = ""
    priority: int | None = None
    app_data: str = ""
    language: str = ""
    creationtime: str = ""
    channelvars: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> Channel:
        channel_id = _require_str(obj, "id")
        caller, connected, dialplan = _sub(obj, "caller"), _sub(obj, "connected"), _sub(obj, "dialplan")
        priority = dialplan.get("priority")
        return cls(
            id=channel_id,
            name=str(obj.get("name", "")),
            state=str(obj.get("state", "")),
            caller_name=str(caller.get("name", "")),
            caller_number=str(caller.get("number", "")),
            connected_number=str(connected.get("number", "")),
            context=str(dialplan.get("context", "")),
            exten=str(dialplan.get("exten", "")),
            priority=priority if isinstance(priority, int) else None,
            app_data=str(dialplan.get("app_data", "")),
            language=str(obj.get("language", "")),
            creationtime=str(obj.get("creationtime", "")),
            channelvars=_sub(obj, "channelvars"),
            raw=obj,
        )


@dataclass(frozen=True, slots=True)
class Bridge:
    """A mixing or holding bridge; `channels` are channel ids."""

    id: str
    bridge_type: str = ""
    technology: str = ""
    name: str = ""
    channels: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> Bridge:
        bridge_id = _require_str(obj, "id")
        channels = obj.get("channels") or []
        return cls(
            id=bridge_id,
            bridge_type=str(obj.get("bridge_type", "")),
            technology=str(obj.get("technology", "")),
            name=str(obj.get("name", "")),
            channels=tuple(str(c) for c in channels) if isinstance(channels, list) else (),
            raw=obj,
        )


@dataclass(frozen=True, slots=True)
class Playback:
    """Media playing to a channel or bridge. `state`: queued, playing, continuing, done, failed."""

    id: str
    media_uri: str = ""
    target_uri: str = ""
    state: str = ""
    next_media_uri: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> Playback:
        return cls(
            id=_require_str(obj, "id"),
            media_uri=str(obj.get("media_uri", "")),
            target_uri=str(obj.get("target_uri", "")),
            state=str(obj.get("state", "")),
            next_media_uri=obj.get("next_media_uri"),
            raw=obj,
        )


@dataclass(frozen=True, slots=True)
class LiveRecording:
    """A recording in progress. `state`: queued, recording, paused, done, failed, canceled."""

    name: str
    format: str = ""
    target_uri: str = ""
    state: str = ""
    duration: int | None = None
    cause: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> LiveRecording:
        duration = obj.get("duration") if isinstance(obj, dict) else None
        return cls(
            name=_require_str(obj, "name"),
            format=str(obj.get("format", "")),
            target_uri=str(obj.get("target_uri", "")),
            state=str(obj.get("state", "")),
            duration=duration if isinstance(duration, int) else None,
            cause=obj.get("cause"),
            raw=obj,
        )
