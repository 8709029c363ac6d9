"""JSON Schemas from Python signatures: how a function becomes a tool the model can call."""

from __future__ import annotations

import asyncio
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from voxgate.agent.tools.base import Handler, ToolContext, ToolError

_SIMPLE_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: Any, where: str) -> dict[str, Any]:
    """JSON Schema for a type hint of a tool parameter."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    if hint in _SIMPLE_TYPES:
        return {"type": _SIMPLE_TYPES[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        schema = _type_schema(args[0], where)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            schema["description"] = " ".join(notes)
        return schema
    if hint is list or origin is list:
        return {"type": "array", "items": _type_schema(args[0], where)} if args else {"type": "array"}
    if hint is dict or origin is dict:
        return {"type": "object"}
    if origin is Literal:
        kinds = {_SIMPLE_TYPES.get(type(a)) for a in args}
        schema: dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1 and None not in kinds:
            schema = {"type": kinds.pop(), **schema}
        return schema
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        alternatives = [_type_schema(a, where) for a in options]
        nullable = len(options) < len(args)
        if len(alternatives) == 1 and isinstance(alternatives[0].get("type"), str):
            schema = alternatives[0]
            if nullable:
                schema["type"] = [schema["type"], "null"]
            return schema
        return {"anyOf": alternatives + ([{"type": "null"}] if nullable else [])}
    raise ToolError(
        f"{where}: type {getattr(hint, '__name__', hint)!r} cannot be a tool argument; use str, int, float, "
        "bool, list, dict, Literal or Optional of those, or give the tool's `parameters` explicitly"
    )


@dataclass(slots=True)
class _CallPlan:
    schema: dict[str, Any]
    handler: Handler


def _plan_call(func: Callable[..., Any], parameters: Mapping[str, Any] | None) -> _CallPlan:
    """Read `func`'s signature: its schema, and a handler that calls it with keyword arguments."""
    label = getattr(func, "__qualname__", None) or repr(func)
    if not callable(func):
        raise ToolError(f"{label} is not callable")
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        if parameters is None:
            raise ToolError(
                f"cannot read the signature of {label} ({exc}); give `parameters` explicitly"
            ) from exc
        signature = None
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except NameError as exc:
        raise ToolError(f"cannot resolve the type hints of {label}: {exc}") from exc
    except TypeError:
        hints = {}  # callables without annotations (builtins, some callable objects)

    wants_context = False
    properties: dict[str, Any] = {}
    required: list[str] = []
    takes_any = signature is None
    for param in signature.parameters.values() if signature else ():
        hint = hints.get(param.name, param.annotation)
        if param.name == "context" or hint is ToolContext:
            if param.name != "context":
                raise ToolError(f"{label}: name the ToolContext parameter 'context', not {param.name!r}")
            wants_context = True
            continue
        if param.kind is param.VAR_KEYWORD:
            takes_any = True
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.POSITIONAL_ONLY:
            if param.default is param.empty:
                raise ToolError(
                    f"{label}: positional-only parameter {param.name!r} cannot be a tool argument; "
                    "tools are called with keyword arguments"
                )
            continue
        # with an explicit schema the hints are not needed (nor checked): only the names are
        schema = _type_schema(hint, f"{label} parameter {param.name!r}") if parameters is None else {}
        if param.default is param.empty:
            required.append(param.name)
        elif param.default is None or isinstance(param.default, str | int | float | bool):
            schema["default"] = param.default
        properties[param.name] = schema

    if parameters is not None and signature is not None:
        given = parameters.get("properties") or {}
        absent = [key for key in required if key not in given]
        if absent:
            raise ToolError(
                f"{label} needs {', '.join(repr(k) for k in absent)} but `parameters` does not declare "
                "them; add them to parameters.properties and parameters.required"
            )
        unknown = [key for key in given if key not in properties and not takes_any]
        if unknown:
            raise ToolError(
                f"`parameters` declares {', '.join(repr(k) for k in unknown)}, which {label} does not "
                "take; remove them or add them to the function"
            )

    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not takes_any:
        schema["additionalProperties"] = False
    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - an async callable object
    )

    async def handler(arguments: dict[str, Any], context: ToolContext) -> Any:
        kwargs = {**arguments, "context": context} if wants_context else arguments
        if is_async:
            return await func(**kwargs)
        result = await asyncio.to_thread(func, **kwargs)  # a hung sync tool keeps its thread
        return await result if inspect.isawaitable(result) else result

    return _CallPlan(schema, handler)


def _first_doc_line(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    return next((line.strip() for line in doc.splitlines() if line.strip()), "")
