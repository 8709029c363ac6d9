"""Claude through Anthropic's Messages API, streamed over SSE. No SDK: one aiohttp POST per reply.

Wire format: `../shared/protocols/openai-compatible-llm.md` §3. `POST {base_url}/v1/messages` with
`x-api-key`, `anthropic-version: 2023-06-01` and `"stream": true`; the reply is a stream of named
SSE events whose JSON repeats the name in `type`:

- `message_start` carries the prompt's `usage`; `message_delta` the `stop_reason` and the
  cumulative output tokens; `message_stop` ends the reply (→ `LLMDone`).
- `content_block_start` opens block `index` (`text`, or `tool_use` with its `id` and `name`);
  `text_delta`s come out as `TextDelta`s at once; `input_json_delta` pieces are joined and parsed
  at that block's `content_block_stop`, which yields the `ToolCallEvent` (no pieces → `{}`).
- `ping`, thinking deltas and event types added later are ignored. An `error` event mid-stream
  (`overloaded_error`…) is a `ProviderError`, retryable unless it says the request was bad.

The request differs from Chat Completions in ways this module takes care of: system messages go
in the separate `system` field (all of them, in order); an assistant's tool calls are `tool_use`
blocks; tool results are `tool_result` blocks in a *user* message, ahead of any text there; roles
must alternate, so consecutive messages of one role are merged; and the first message must be
the user's, so a conversation the agent opens (a greeting, or nothing yet) gets
`opening_user_text` first.

HTTP errors carry the server's `error.message` and are retryable for 408/409/429/5xx (529 is
Anthropic's "overloaded"). A `refusal` stop is a non-retryable `ProviderError`; `max_tokens` is a
warning. Cancelling (barge-in) = closing the iterator: the connection is closed, which is how the
server learns to stop. The API key (`ANTHROPIC_API_KEY` by default, see `providers.secrets`)
only ever goes into the `x-api-key` header.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from voxgate.providers.base import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    ProviderError,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
    Usage,
)
from voxgate.providers.http import HTTPClient, dumps, error_body, status_error, status_line
from voxgate.providers.llm.openai_compat import parse_arguments
from voxgate.providers.llm.sse import SSEDecoder
from voxgate.providers.secrets import MissingSecret, Secret, resolve_secret

log = logging.getLogger("voxgate.providers.llm")

DEFAULT_MODEL = "claude-haiku-4-5"
"""Claude Haiku 4.5: Anthropic's fastest current model; on a phone line time to first token rules."""
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
OPENING_USER_TEXT = "(call connected)"
RETRYABLE_STATUS = frozenset({408, 409, 429})
"""HTTP statuses worth another try, besides every 5xx (529 = overloaded)."""
FATAL_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "billing_error",
    }
)
"""`error.type`s that another try will not fix; any other (overloaded_error, api_error…) may pass."""

_PROMPT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


# --- request --------------------------------------------------------------------------------


def messages_url(base_url: str) -> str:
    """`{base_url}/v1/messages`; a base that already ends in `/v1` or `/v1/messages` is kept."""
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {base_url!r}")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return base + "/messages"
    return base + "/v1/messages"


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    wire: dict[str, Any] = {"name": tool.name}
    if tool.description:
        wire["description"] = tool.description
    wire["input_schema"] = dict(tool.parameters)
    return wire


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    """The content blocks one `ChatMessage` contributes to its (user or assistant) turn."""
    if message.role == "tool":
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.content:
            block["content"] = message.content
        return [block]
    blocks: list[dict[str, Any]] = []
    if message.content:  # the API rejects empty text blocks
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return blocks


def to_wire(
    messages: Sequence[ChatMessage], opening_user_text: str = OPENING_USER_TEXT
) -> tuple[str, list[dict[str, Any]]]:
    """(`system`, `messages`) for a request: system text apart, turns merged so roles alternate."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks = _blocks(message)
        if not blocks:
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": opening_user_text}]})
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user":  # tool results must lead their user turn
            content.sort(key=lambda b: b["type"] != "tool_result")
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return system, turns


# --- response -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    input: Any = None
    json_parts: list[str] = field(default_factory=list)


class StreamParser:
    """The state of one streamed reply: feed it event objects, get the events to yield."""

    __slots__ = ("blocks", "done", "provider", "stop_reason", "tokens")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.blocks: dict[int, _Block] = {}
        self.tokens: dict[str, int] = {}  # usage field → its latest value (they are cumulative)
        self.stop_reason: str | None = None
        self.done = False

    @property
    def usage(self) -> Usage | None:
        if not self.tokens:
            return None
        prompt = sum(self.tokens.get(k, 0) for k in _PROMPT_FIELDS)  # cached prompt tokens count too
        return Usage(prompt_tokens=prompt, completion_tokens=self.tokens.get("output_tokens", 0))

    def event(self, obj: Any) -> list[LLMEvent]:
        if not isinstance(obj, dict):
            raise ProviderError(
                self.provider, f"a stream event is a JSON {type(obj).__name__}, not an object"
            )
        kind = obj.get("type")
        if kind == "content_block_delta":
            return self._delta(obj)
        if kind == "content_block_start":
            return self._start(obj)
        if kind == "content_block_stop":
            return self._stop(obj)
        if kind == "message_start":
            self._usage((obj.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            self.stop_reason = (obj.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._usage(obj.get("usage"))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            err = obj.get("error") or {}
            err_type = str(err.get("type") or "")
            raise ProviderError(
                self.provider,
                f"error in the stream: {err.get('message') or 'no message'}"
                + (f" ({err_type})" if err_type else ""),
                retryable=err_type not in FATAL_ERROR_TYPES,
            )
        return []  # ping, and event types added after these notes

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key in (*_PROMPT_FIELDS, "output_tokens"):
                if isinstance(usage.get(key), int):
                    self.tokens[key] = usage[key]

    def _start(self, obj: dict[str, Any]) -> list[LLMEvent]:
        block = obj.get("content_block") or {}
        kind = str(block.get("type") or "")
        self.blocks[obj.get("index", len(self.blocks))] = _Block(
            kind, str(block.get("id") or ""), str(block.get("name") or ""), block.get("input")
        )
        text = block.get("text") if kind == "text" else None
        return [TextDelta(text)] if text else []

    def _delta(self, obj: dict[str, Any]) -> list[LLMEvent]:
        delta = obj.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [TextDelta(text)] if text else []
        if kind == "input_json_delta":
            block = self.blocks.get(obj.get("index", -1))
            if block is None:
                raise ProviderError(
                    self.provider, f"input_json_delta for block {obj.get('index')} never opened"
                )
            block.json_parts.append(delta.get("partial_json") or "")
        return []  # thinking_delta, signature_delta, citations_delta: not spoken

    def _stop(self, obj: dict[str, Any]) -> list[LLMEvent]:
        block = self.blocks.pop(obj.get("index", -1), None)
        if block is None or block.kind != "tool_use":
            return []
        if not block.name:
            raise ProviderError(self.provider, f"tool_use block {block.id or '(no id)'} has no name")
        raw = "".join(block.json_parts)
        if raw.strip():
            arguments = parse_arguments(self.provider, block.id, block.name, raw)
        else:
            arguments = dict(block.input) if isinstance(block.input, dict) else {}
        return [ToolCallEvent(block.id, block.name, arguments)]


# --- the provider ---------------------------------------------------------------------------


class AnthropicLLM(HTTPClient):
    """An `LLM` over Anthropic's Messages API, streamed.

    Options:
    - `model`: a Claude model name or alias (default `DEFAULT_MODEL`).
    - `api_key` / `api_key_env` / `api_key_file`: the key, the variable holding it, or a file
      holding it; none of them → `ANTHROPIC_API_KEY`.
    - `max_tokens`: the reply's token cap (the API requires one). `temperature`: sent when set.
    - `base_url`: the API root (`https://api.anthropic.com`; a gateway or a fake server).
    - `opening_user_text`: the user turn put first when the conversation does not start with one.
    - `headers`: extra HTTP headers (`anthropic-beta`…). `extra_body`: extra request fields
      (`top_k`, `metadata`, `thinking`…).
    - `connect_timeout`, `read_timeout`: socket backstops, in s; the stall watchdog and retries
      are `resilient_stream`'s job. `max_connections`: pooled keep-alive connections.
    """

    _repr_fields = ("url", "model")

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | Path | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        base_url: str = DEFAULT_BASE_URL,
        opening_user_text: str = OPENING_USER_TEXT,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_connections: int = 100,
        name: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("model is required (a Claude model name such as claude-haiku-4-5)")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.name = name or "anthropic"
        secret = resolve_secret(
            self.name,
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="ANTHROPIC_API_KEY",
        )
        if secret is None:  # resolve_secret raises first when a key is required; this is for typing
            raise MissingSecret(f"{self.name} needs an API key: set ANTHROPIC_API_KEY")
        super().__init__(
            secret,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
        )
        self.url = messages_url(base_url)
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.opening_user_text = opening_user_text
        self.extra_body = dict(extra_body or {})
        self._headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "anthropic-version": API_VERSION,
            **(headers or {}),
            "x-api-key": secret.value,
        }

    def request_body(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> dict[str, Any]:
        """The JSON object POSTed for one reply."""
        system, turns = to_wire(messages, self.opening_user_text)
        body: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, "stream": True}
        if system:
            body["system"] = system
        body["messages"] = turns
        if tools:
            body["tools"] = [tool_to_wire(t) for t in tools]
        if self.temperature is not None:
            body["temperature"] = self.temperature
        body.update(self.extra_body)
        return body

    async def chat(
        self, messages: list[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMEvent]:
        parser = StreamParser(self.name)
        data = dumps(self.request_body(messages, tools)).encode()
        async with self._post(self.url, data, self._headers) as response:
            decoder = SSEDecoder()
            async for raw in response.content.iter_any():
                try:
                    payloads = decoder.feed(raw)
                except ValueError as exc:
                    raise ProviderError(self.name, str(exc), retryable=False) from None
                for event in self._payloads(payloads, parser):
                    yield event
                if parser.done:
                    break
            else:
                for event in self._payloads(decoder.close()[0], parser):
                    yield event
                if not parser.done:
                    raise ProviderError(
                        self.name, "the stream ended before the reply finished (no message_stop)"
                    )
        self._check_stop(parser.stop_reason)
        yield LLMDone(parser.usage)

    def _payloads(self, payloads: list[bytes], parser: StreamParser) -> Iterator[LLMEvent]:
        for payload in payloads:
            try:
                obj = json.loads(payload)
            except ValueError:
                shown = payload[:200].decode("utf-8", "replace")
                raise ProviderError(self.name, f"a stream event is not JSON: {shown!r}") from None
            yield from parser.event(obj)

    def _check_stop(self, reason: str | None) -> None:
        extra = {"provider": self.name}
        if reason == "refusal":
            raise ProviderError(
                self.name, "the model refused to answer (stop_reason=refusal)", retryable=False
            )
        if reason in ("max_tokens", "model_context_window_exceeded"):
            log.warning("%s: reply cut short (stop_reason=%s)", self.name, reason, extra=extra)
        else:
            log.debug("%s: reply finished (stop_reason=%s)", self.name, reason, extra=extra)

    async def _http_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        payload, text = await error_body(response)
        err = payload.get("error") if isinstance(payload, dict) else None
        message, kind = "", ""
        if isinstance(err, dict):
            message, kind = str(err.get("message") or ""), str(err.get("type") or "")
        request_id = response.headers.get("request-id")
        return status_error(
            self.name,
            response.status,
            status_line(response),
            message or text,
            secret=self._key,
            kind=kind,
            retry_after=response.headers.get("retry-after"),
            key_hint=f" (check the API key: {self._key.source})",
            tail=f" [request-id {request_id}]" if request_id else "",
            retryable=RETRYABLE_STATUS,
        )
