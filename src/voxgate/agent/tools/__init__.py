"""Tools the LLM agent can call: built-in call control, and user tools (Python or webhooks).

Built-in tools (`end_call`, `transfer_call`, `send_dtmf`) are not run here: `builtin_action`
turns a call of one into the responder's `Action`. A user `Tool` runs and always answers with a
string for the model: a failure (exception, timeout, bad arguments, HTTP error) becomes a short
`"error: ..."` result and a warning in the log, never an exception in the call.

Config is two steps so `voxgate config check` can say what is wrong and where: the pydantic
models check the shape; `build_tools()` imports functions and reads signatures, raising a
`ToolError` that names the tool, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from voxgate.agent.tools.base import MAX_RESULT_CHARS, ToolContext, ToolError
from voxgate.agent.tools.builtin import BUILTIN_TOOL_NAMES, builtin_action, builtin_tool_specs
from voxgate.agent.tools.python import PythonToolConfig
from voxgate.agent.tools.tool import Tool
from voxgate.agent.tools.webhook import WebhookToolConfig, _Webhook, aclose_tools
from voxgate.providers.base import ToolSpec

ToolConfig = Annotated[PythonToolConfig | WebhookToolConfig, Field(discriminator="kind")]


def build_tool(config: PythonToolConfig | WebhookToolConfig) -> Tool:
    """The runnable `Tool` for one config entry; `ToolError` when it cannot be built."""
    if isinstance(config, PythonToolConfig):
        func = config.resolve()
        try:
            return Tool.from_callable(
                func,
                name=config.name,
                description=config.description,
                parameters=config.parameters,
                timeout_s=config.timeout_s,
            )
        except ToolError as exc:
            raise ToolError(f"tool {config.name!r}: {exc.message}", field=exc.field or "function") from exc
    spec = ToolSpec(config.name, config.description, config.parameters)
    return Tool(spec, _Webhook(config), timeout_s=config.timeout_s)


def build_tools(configs: Sequence[PythonToolConfig | WebhookToolConfig]) -> list[Tool]:
    """Build every configured tool; errors name the entry (`tools[2].function: ...`)."""
    tools: list[Tool] = []
    seen: dict[str, int] = {}
    for i, config in enumerate(configs):
        if config.name in seen:
            raise ToolError(
                f"{config.name!r} is already the name of tools[{seen[config.name]}]; names must be unique",
                field=f"tools[{i}].name",
            )
        seen[config.name] = i
        try:
            tools.append(build_tool(config))
        except ToolError as exc:
            where = f"tools[{i}].{exc.field}" if exc.field else f"tools[{i}]"
            raise ToolError(exc.message, field=where) from exc
    return tools


__all__ = [
    "BUILTIN_TOOL_NAMES",
    "MAX_RESULT_CHARS",
    "PythonToolConfig",
    "Tool",
    "ToolConfig",
    "ToolContext",
    "ToolError",
    "WebhookToolConfig",
    "aclose_tools",
    "build_tool",
    "build_tools",
    "builtin_action",
    "builtin_tool_specs",
]
