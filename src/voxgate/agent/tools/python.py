"""Python tools: config for a tool that calls a function in the server process."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator

from voxgate.agent.tools.base import ToolError
from voxgate.agent.tools.tool import _ToolModel

_FUNCTION_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class PythonToolConfig(_ToolModel):
    """A tool that calls a Python function in the server process."""

    kind: Literal["python"] = "python"
    function: str = Field(
        description="'package.module:function' to call (importable by the server); sync functions "
        "run in a thread. A parameter named `context` receives the call's ToolContext."
    )
    description: str | None = Field(
        None, description="What the tool does, for the model (default: the docstring's first line)"
    )
    parameters: dict[str, Any] | None = Field(
        None, description="JSON Schema of the arguments (default: from the signature and type hints)"
    )

    @field_validator("function")
    @classmethod
    def _valid_ref(cls, v: str) -> str:
        if not _FUNCTION_REF.fullmatch(v):
            raise ValueError(f"{v!r} is not 'package.module:function' (e.g. 'myapp.tools:lookup_order')")
        return v

    def resolve(self) -> Callable[..., Any]:
        """Import the function; `ToolError` (field 'function') saying why and how to fix it."""
        module_name, _, attr = self.function.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception as exc:
            raise ToolError(
                f"cannot import {module_name!r} for tool {self.name!r}: {exc}; fix: install the package "
                "that provides it or correct the module path (it must be importable by the server, "
                "e.g. on PYTHONPATH)",
                field="function",
            ) from exc
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ToolError(
                    f"{module_name!r} has no {attr!r} for tool {self.name!r}; fix: check the name after ':'",
                    field="function",
                ) from None
        if not callable(obj):
            raise ToolError(
                f"{self.function!r} for tool {self.name!r} is a {type(obj).__name__}, not a function; "
                "fix: point it at a function",
                field="function",
            )
        return obj
