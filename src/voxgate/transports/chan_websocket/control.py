"""chan_websocket control messages (ari.md §6): the text frames beside the binary audio.

Asterisk sends events, we send commands, in one of two formats chosen on the Asterisk side
(`chan_websocket.conf control_message_format`, or `f(json)` in the dial string):

- plain-text (the default): `MEDIA_START connection_id:… channel:… format:slin16 …` and `MARK_MEDIA m1`;
- json: `{"event": "MEDIA_START", "format": "slin16", …}` and
  `{"command": "MARK_MEDIA", "correlation_id": "m1"}`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, NamedTuple

ControlFormat = Literal["plain-text", "json"]
CONTROL_FORMATS: tuple[ControlFormat, ...] = ("plain-text", "json")

EVENTS = frozenset(
    {
        "MEDIA_START",
        "MEDIA_XOFF",
        "MEDIA_XON",
        "QUEUE_DRAINED",
        "MEDIA_BUFFERING_COMPLETED",
        "MEDIA_MARK_PROCESSED",
        "DTMF_END",
        "STATUS",
        "ERROR",
    }
)

# Command → the JSON field its one optional argument goes in; None: it takes no argument.
_COMMAND_ARG: dict[str, str | None] = {
    "ANSWER": None,
    "HANGUP": None,
    "START_MEDIA_BUFFERING": None,
    "STOP_MEDIA_BUFFERING": "correlation_id",
    "MARK_MEDIA": "correlation_id",
    "FLUSH_MEDIA": None,
    "REPORT_QUEUE_DRAINED": None,
    "GET_STATUS": None,
    "PAUSE_MEDIA": None,
    "CONTINUE_MEDIA": None,
    "SET_MEDIA_DIRECTION": "direction",
}
COMMANDS = frozenset(_COMMAND_ARG)
_JSON_ONLY = frozenset({"SET_MEDIA_DIRECTION"})

# Plain-text events whose bare argument (no `key:`) is an id: `MEDIA_BUFFERING_COMPLETED m1`.
# Named as in the json form so callers read one field either way.
_BARE_ARG_FIELD = {"MEDIA_BUFFERING_COMPLETED": "correlation_id", "MEDIA_MARK_PROCESSED": "correlation_id"}

_FREE_TEXT = frozenset({"error_text"})
_EVENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"[a-z_][a-z0-9_]*")


class ControlError(ValueError):
    """A text frame that is not a control message in either format."""


class ControlMessage(NamedTuple):
    """One parsed control message: the event name and its fields (strings in plain-text; in json
    whatever JSON gave, e.g. an int `optimal_frame_size` or a `channel_variables` object)."""

    event: str
    fields: dict[str, Any]


def is_json(text: str) -> bool:
    """Whether a control text frame is in the json form (Asterisk's configured format shows here)."""
    return text.lstrip().startswith("{")


def parse_control(text: str) -> ControlMessage:
    """Parse an event in either format; unknown event names are returned as they are.

    Plain-text: `EVENT key:value key:value…`, split on whitespace; each `key:value` is split on
    its first ':' (a value may contain ':'). Keys are lower-case names: a word that is not
    `key:value` continues the previous value (a text with spaces), and before any key it is the
    event's bare argument. `error_text` is free text: it takes the rest of the line.
    """
    if is_json(text):
        return _parse_json(text)
    words = text.split()
    if not words:
        raise ControlError("empty control message")
    event = words[0]
    if not _EVENT_NAME.fullmatch(event):
        raise ControlError(f"control message does not start with an event name: {_clip(text)!r}")
    fields: dict[str, Any] = {}
    bare: list[str] = []
    key: str | None = None
    for i, word in enumerate(words[1:], 1):
        name, colon, value = word.partition(":")
        if colon and not name:
            raise ControlError(f"empty field name in {_clip(text)!r}")
        if colon and _KEY.fullmatch(name):
            key = name
            fields[key] = value
            if key in _FREE_TEXT:
                fields[key] = " ".join([value, *words[i + 1 :]]).strip()
                break
        elif key is not None:
            fields[key] = f"{fields[key]} {word}"
        else:
            bare.append(word)
    if bare:
        fields.setdefault(_BARE_ARG_FIELD.get(event, "arg"), " ".join(bare))
    return ControlMessage(event, fields)


def _parse_json(text: str) -> ControlMessage:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ControlError(f"control message is not valid JSON ({exc}): {_clip(text)!r}") from None
    if not isinstance(data, dict):
        raise ControlError(f"JSON control message is not an object: {_clip(text)!r}")
    event = data.pop("event", None)
    if not isinstance(event, str) or not event:
        raise ControlError(f'JSON control message has no "event": {_clip(text)!r}')
    return ControlMessage(event, data)


def format_command(
    command: str, arg: str | None = None, *, control_format: ControlFormat = "plain-text"
) -> str:
    """A command as Asterisk reads it: `MARK_MEDIA m1` or `{"command": "MARK_MEDIA", "correlation_id": "m1"}`.

    Commands are case-sensitive on the Asterisk side; an unknown one, or an argument to a command
    that takes none, raises ValueError rather than being silently ignored there."""
    if command not in _COMMAND_ARG:
        raise ValueError(f"unknown chan_websocket command {command!r}; known: {', '.join(sorted(COMMANDS))}")
    field = _COMMAND_ARG[command]
    if arg is not None and field is None:
        raise ValueError(f"chan_websocket command {command} takes no argument (got {arg!r})")
    if control_format == "json":
        message: dict[str, str] = {"command": command}
        if arg is not None and field is not None:
            message[field] = arg
        return json.dumps(message)
    if control_format != "plain-text":
        raise ValueError(f"control format {control_format!r}: use plain-text or json")
    if command in _JSON_ONLY:
        raise ValueError(f"chan_websocket command {command} exists only in the json control format")
    if arg is None:
        return command
    if not arg or any(c.isspace() for c in arg):
        raise ValueError(f"argument {arg!r} of {command} must be one word in the plain-text format")
    return f"{command} {arg}"


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
