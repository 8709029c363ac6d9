"""Webhook tools: config for a tool that calls an HTTP endpoint, and its handler.

Every webhook tool shares one aiohttp connection pool per event loop; `aclose_tools` closes it.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any, Literal

import aiohttp
from pydantic import Field, field_validator
from yarl import URL

from voxgate.agent.tools.base import _LOGGER, MAX_RESULT_CHARS, ToolContext, _result_text, _truncate
from voxgate.agent.tools.tool import _ToolModel
from voxgate.log import call_logger

_MAX_BODY_BYTES = 1 << 20


class WebhookToolConfig(_ToolModel):
    """A tool that calls an HTTP endpoint."""

    kind: Literal["webhook"] = "webhook"
    url: str = Field(description="http(s) URL to call")
    method: Literal["POST", "GET"] = Field(
        "POST",
        description='POST sends {"tool", "arguments", "call_id"} as JSON; GET sends the arguments '
        "as query parameters. The call id also goes in the X-Voxgate-Call-Id header.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False, description="Extra request headers, e.g. Authorization"
    )
    description: str = Field(min_length=1, description="What the tool does, for the model")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the arguments",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("url")
    @classmethod
    def _valid_url(cls, v: str) -> str:
        try:
            url = URL(v)
        except ValueError as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http:// or https:// URL with a host")
        return v


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def _shared_session() -> aiohttp.ClientSession:
    """One connection pool per event loop for every webhook tool, opened on first use."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(limit=100, limit_per_host=20, ttl_dns_cache=300)
        session = _sessions[loop] = aiohttp.ClientSession(connector=connector, raise_for_status=False)
    return session


async def aclose_tools() -> None:
    """Close this event loop's webhook connection pool (the next webhook call opens a new one)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


class _Webhook:
    """The handler of a webhook tool. Header values are secrets: they are never logged."""

    def __init__(self, config: WebhookToolConfig) -> None:
        self._name = config.name
        self._url = URL(config.url)
        self._method = config.method
        self._headers = dict(config.headers)

    def __repr__(self) -> str:
        return f"_Webhook({self._name!r}, {self._method} {self._url.host})"

    async def __call__(self, arguments: dict[str, Any], context: ToolContext) -> str:
        headers = {"X-Voxgate-Call-Id": context.call_id, **self._headers}
        url, body = self._url, None
        if self._method == "GET":
            url = url.update_query(
                {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items() if v is not None}
            )
        else:
            body = {"tool": self._name, "arguments": arguments, "call_id": context.call_id}
        log = call_logger(_LOGGER, context.call_id)
        try:
            async with _shared_session().request(self._method, url, json=body, headers=headers) as response:
                raw = await response.content.read(_MAX_BODY_BYTES)
                status, reason = response.status, response.reason or ""
                content_type = response.content_type
                text = raw.decode(response.charset or "utf-8", errors="replace")
        except aiohttp.ClientError as exc:
            log.warning("tool %s could not reach %s: %s", self._name, self._url.host, type(exc).__name__)
            return f"error: tool {self._name} could not reach its service ({type(exc).__name__})"
        if not 200 <= status < 300:
            log.warning("tool %s: %s answered HTTP %d %s", self._name, self._url.host, status, reason)
            result = f"error: tool {self._name} failed: the service answered HTTP {status} {reason}".rstrip()
            if text.strip() and (content_type == "application/json" or content_type.startswith("text/plain")):
                result += f": {_truncate(text.strip(), 300)}"
            return result
        if content_type == "application/json" or content_type.endswith("+json"):
            try:
                data = json.loads(text)
            except ValueError:
                return _truncate(text.strip(), MAX_RESULT_CHARS)
            return _result_text(data)
        return _truncate(text.strip(), MAX_RESULT_CHARS) or f"ok (HTTP {status})"
