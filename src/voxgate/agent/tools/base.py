"""The ground every tool stands on: errors, the call context, results and argument checks.

A user tool always answers with a string for the model; `_result_text` makes one of whatever a
handler returns, and `_check_arguments` checks what the model sent against the tool's schema.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_LOGGER = "voxgate.agent.tools"  # the package, not __name__: one logger for every tool module
MAX_RESULT_CHARS = 4000


class ToolError(ValueError):
    """A tool is misconfigured, or a built-in tool was called with bad arguments.

    `field` says where (e.g. `tools[0].function`) when the error is about config.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know about the call it runs in."""

    call_id: str
    caller: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


Handler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


def _result_text(result: Any) -> str:
    if result is None:
        return "ok"
    if isinstance(result, str):
        text = result
    else:
        try:
            text = json.dumps(result, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(result)
    return _truncate(text, MAX_RESULT_CHARS)


def _truncate(text: str, limit: int) -> str:
    marker = " …[truncated]"
    return text if len(text) <= limit else text[: limit - len(marker)] + marker


# --- argument checks ------------------------------------------------------------------------

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPE_CHECKS[name](value):
            return name
    return type(value).__name__


def _schema_types(schema: Mapping[str, Any]) -> list[str] | None:
    """The JSON types a property schema allows (None: any)."""
    if "type" in schema:
        kind = schema["type"]
        return [kind] if isinstance(kind, str) else list(kind)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(alternatives, list):
        out: list[str] = []
        for alternative in alternatives:
            kinds = _schema_types(alternative) if isinstance(alternative, Mapping) else None
            if kinds is None:
                return None
            out += kinds
        return out
    return None


def _check_arguments(schema: Mapping[str, Any], arguments: Any) -> tuple[str | None, dict[str, Any]]:
    """(problem, arguments): required keys, basic types and enums, without a jsonschema library.

    Whole floats are accepted for integers and passed on as ints.
    """
    if not isinstance(arguments, Mapping):
        return f"arguments must be a JSON object, not {_json_type(arguments)}", {}
    args = dict(arguments)
    properties: Mapping[str, Any] = schema.get("properties") or {}
    missing = [key for key in schema.get("required") or () if key not in args]
    if missing:
        return f"missing required argument {', '.join(repr(k) for k in missing)}", args
    if schema.get("additionalProperties") is False:
        extra = [key for key in args if key not in properties]
        if extra:
            return f"unexpected argument {', '.join(repr(k) for k in extra)}", args
    for key, value in args.items():
        prop = properties.get(key)
        if not isinstance(prop, Mapping):
            continue
        kinds = _schema_types(prop)
        if kinds is not None and not any(_TYPE_CHECKS.get(k, lambda _v: True)(value) for k in kinds):
            return f"argument {key!r} must be {' or '.join(kinds)}, not {_json_type(value)}", args
        if "enum" in prop and value not in prop["enum"]:
            choices = ", ".join(json.dumps(c) for c in prop["enum"][:20])
            return f"argument {key!r} must be one of {choices}", args
        if isinstance(value, float) and kinds is not None and "integer" in kinds and "number" not in kinds:
            args[key] = int(value)
    return None, args
