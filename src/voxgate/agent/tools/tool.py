"""`Tool`, a user tool the LLM can call, and the checks of its name and schema."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voxgate.agent.tools.base import (
    _LOGGER,
    Handler,
    ToolContext,
    ToolError,
    _check_arguments,
    _result_text,
    _truncate,
)
from voxgate.agent.tools.builtin import BUILTIN_TOOL_NAMES
from voxgate.agent.tools.signature import _first_doc_line, _plan_call
from voxgate.log import call_logger
from voxgate.providers.base import ToolSpec

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


class Tool:
    """A user tool: a spec for the LLM and a handler that runs it.

    `call()` checks the arguments against the spec (required keys, basic JSON types), runs the
    handler under `timeout_s` and returns the result as text; it raises only on cancellation.
    """

    def __init__(self, spec: ToolSpec, handler: Handler, *, timeout_s: float = 10.0) -> None:
        _check_user_name(spec.name)
        _check_parameters(spec.parameters)
        if not timeout_s > 0:
            raise ToolError(f"tool {spec.name!r}: timeout_s must be more than 0, not {timeout_s!r}")
        self.spec = spec
        self.timeout_s = float(timeout_s)
        self._handler = handler

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r}, timeout_s={self.timeout_s:g})"

    @classmethod
    def from_callable(
        cls,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> Tool:
        """A tool around a Python function, sync (run in a thread) or async.

        The schema comes from the signature and type hints unless `parameters` is given; the
        description from the docstring's first line. A parameter named `context` gets the
        call's `ToolContext` and is not shown to the model.
        """
        name = name if name is not None else getattr(func, "__name__", "")
        _check_user_name(name)
        plan = _plan_call(func, parameters)
        if description is None:
            description = _first_doc_line(func)
        spec = ToolSpec(name, description, parameters if parameters is not None else plan.schema)
        return cls(spec, plan.handler, timeout_s=timeout_s)

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> str:
        log = call_logger(_LOGGER, context.call_id)
        problem, args = _check_arguments(self.spec.parameters, arguments)
        if problem:
            log.warning("tool %s called with bad arguments: %s", self.name, problem)
            return f"error: tool {self.name}: {problem}"
        try:
            async with asyncio.timeout(self.timeout_s) as deadline:
                result = await self._handler(args, context)
        except TimeoutError:
            if not deadline.expired():
                log.warning("tool %s raised TimeoutError", self.name, exc_info=True)
                return f"error: tool {self.name} failed: TimeoutError"
            log.warning("tool %s timed out after %g s", self.name, self.timeout_s)
            return f"error: tool {self.name} timed out after {self.timeout_s:g} s"
        except Exception as exc:
            log.warning("tool %s failed", self.name, exc_info=True)
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return f"error: tool {self.name} failed: {_truncate(detail, 300)}"
        return _result_text(result)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ToolError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-' (what LLM APIs accept)")
    return name


def _check_user_name(name: str) -> str:
    _check_name(name)
    if name in BUILTIN_TOOL_NAMES:
        raise ToolError(f"{name!r} is a built-in tool; give your tool another name")
    return name


def _check_parameters(schema: Any) -> Mapping[str, Any]:
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise ToolError('parameters must be a JSON Schema object: {"type": "object", "properties": {...}}')
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping) or not all(isinstance(p, Mapping) for p in properties.values()):
        raise ToolError("parameters.properties must map each argument name to its JSON Schema")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ToolError("parameters.required must be a list of argument names")
    undeclared = [r for r in required if r not in properties]
    if undeclared:
        raise ToolError(f"parameters.required names {undeclared} that parameters.properties does not declare")
    return schema


class _ToolModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name the model calls the tool by: 1-64 of a-z, A-Z, 0-9, '_', '-'")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Seconds before the call counts as failed")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        return _check_user_name(v)

    @field_validator("parameters", check_fields=False)
    @classmethod
    def _valid_parameters(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            _check_parameters(v)
        return v
