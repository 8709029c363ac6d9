"""Streaming Chat Completions over SSE: OpenAI, Groq, vLLM, llama.cpp server, Ollama `/v1`, OpenRouter.

Wire format: `../shared/protocols/openai-compatible-llm.md` §1. One `POST {base_url}/chat/completions`
with `"stream": true` per reply; the answer is a Server-Sent Events stream of
`chat.completion.chunk` objects ended by `data: [DONE]`:

- `delta.content` pieces come out as `TextDelta`s as soon as they arrive (`delta.refusal` too:
  it is what the model says to the caller). Reasoning text (`reasoning_content`, `reasoning`)
  is never spoken and is dropped.
- `delta.tool_calls` fragments are put together per `index` (parallel calls interleave); the
  arguments JSON is parsed once the choice finishes and each call comes out as a
  `ToolCallEvent`, in index order. Arguments that are not a JSON object raise `ProviderError`.
- `usage` (asked for with `stream_options.include_usage`; the last one seen wins) goes on the
  final `LLMDone`.

`base_url` is what the OpenAI SDK calls it: the API root including its version path
(`https://api.openai.com/v1`, `https://api.groq.com/openai/v1`, `http://localhost:11434/v1`).
A bare `http://host:port` gets `/v1` appended, and a URL that already ends in
`/chat/completions` is used as is.

Errors: an HTTP error status becomes a `ProviderError` carrying the server's own message
(`error.message`), retryable for 408/409/429/5xx; so does an `{"error": …}` chunk mid-stream. A
stream that ends before `[DONE]` without having finished its choice is an error (a truncated
reply); one that finished its choice but omits `[DONE]` is accepted (some servers do that).
Timeouts here are only backstops for the socket: the watchdog that notices a stalled stream is
`voxgate.providers.resilience.resilient_stream`, around every provider.

Cancelling (barge-in) = closing the iterator: the HTTP connection is closed, which is how the
server learns to stop generating. A reply read to its end returns its connection to the pool.

The API key is given directly or, better, by the name of the environment variable holding it; it
only ever goes into the `Authorization` header and is never logged, put in `repr()` or error text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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

# RETRYABLE_STATUS (worth another try, besides every 5xx) lived here first: still importable from here
from voxgate.providers.http import RETRYABLE_STATUS as RETRYABLE_STATUS
from voxgate.providers.http import HTTPClient, dumps, error_body, status_error, status_line
from voxgate.providers.llm.sse import SSEDecoder
from voxgate.providers.secrets import Secret, resolve_secret

log = logging.getLogger("voxgate.providers.llm")

_DONE = b"[DONE]"


# --- request --------------------------------------------------------------------------------


def message_to_wire(message: ChatMessage) -> dict[str, Any]:
    """One `ChatMessage` as a Chat Completions message (§1 of the notes)."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": dumps(call.arguments)},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = dict(tool.parameters)
    return {"type": "function", "function": function}


def endpoint_url(base_url: str, endpoint: str, example: str) -> str:
    """`{base_url}{endpoint}` on an OpenAI-compatible API: a bare `scheme://host[:port]` gets the
    usual `/v1` first, and a URL that already ends in `endpoint` is used as is. `example` is the
    kind of URL the error for a non-http(s) one suggests."""
    base = base_url.rstrip("/")
    if base.endswith(endpoint):
        return base
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {example}, got {base_url!r}")
    if not parts.path:
        base += "/v1"
    return base + endpoint


def chat_completions_url(base_url: str) -> str:
    """`{base_url}/chat/completions`; a bare `scheme://host[:port]` gets the usual `/v1` first."""
    return endpoint_url(base_url, "/chat/completions", "http://localhost:8000/v1")


# --- response -------------------------------------------------------------------------------


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def parse_arguments(provider: str, call_id: str, name: str, raw: str) -> dict[str, Any]:
    """A tool call's accumulated arguments string as a dict, or a `ProviderError` saying why not."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
        if isinstance(value, str):  # some models double-encode: "{\"id\": 1}"
            value = json.loads(value)
    except json.JSONDecodeError as exc:
        shown = raw if len(raw) <= 200 else raw[:200] + "…"
        raise ProviderError(
            provider,
            f"tool call {name!r} ({call_id}) has arguments that are not valid JSON ({exc.msg} at "
            f"char {exc.pos}): {shown!r}",
            retryable=False,
        ) from None
    if not isinstance(value, dict):
        raise ProviderError(
            provider,
            f"tool call {name!r} ({call_id}) has arguments that are a JSON {type(value).__name__}, "
            "not an object",
            retryable=False,
        )
    return value


def error_message(payload: Any) -> tuple[str, str]:
    """(message, type-or-code) from an error body: OpenAI `{"error": {…}}`, Ollama `{"error": "…"}`,
    FastAPI `{"detail": …}` or `{"message": …}`."""
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, str):
            return err, ""
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or err.get("msg")
            kind = err.get("type") or err.get("code") or ""
            if message:
                return str(message), str(kind)
        if "detail" in payload:
            return str(payload["detail"]), ""
    return "", ""


async def http_error(
    provider: str,
    response: aiohttp.ClientResponse,
    *,
    secret: Secret | None,
    key_hint: str,
    head: str | None = None,
) -> ProviderError:
    """The `ProviderError` for an error status from an OpenAI-compatible server: the server's
    `error_message()` (keys scrubbed), retryable for 408/409/429/5xx, `key_hint` on a 401/403.
    `head` opens the message (default: the status line with its reason phrase)."""
    payload, text = await error_body(response)
    message, kind = error_message(payload)
    return status_error(
        provider,
        response.status,
        head or status_line(response),
        message or text,
        secret=secret,
        kind=kind,
        retry_after=response.headers.get("Retry-After"),
        key_hint=key_hint,
    )


class ChunkParser:
    """The state of one streamed reply: feed it chunk objects, get the events to yield."""

    __slots__ = ("calls", "done", "finish_reason", "provider", "usage")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls: dict[int, _PartialCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False

    def chunk(self, obj: Any) -> list[LLMEvent]:
        if not isinstance(obj, dict):
            raise ProviderError(
                self.provider, f"a stream chunk is a JSON {type(obj).__name__}, not an object"
            )
        if obj.get("error") is not None:
            message, kind = error_message(obj)
            raise ProviderError(
                self.provider,
                f"error in the stream: {message or 'no message'}" + (f" ({kind})" if kind else ""),
                retryable=_retryable_kind(kind),
            )
        usage = obj.get("usage")
        if usage:
            self.usage = Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        out: list[LLMEvent] = []
        for choice in obj.get("choices") or ():
            if choice.get("index", 0) != 0:  # we ask for one choice (n=1)
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                out.append(TextDelta(text))
            refusal = delta.get("refusal")
            if refusal:
                out.append(TextDelta(refusal))
            for fragment in delta.get("tool_calls") or ():
                self._fragment(fragment)
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = reason
                out.extend(self.tool_calls())
        return out

    def _fragment(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        if index is None:  # not per the spec; a new id opens a call, anything else continues the last
            index = len(self.calls) if fragment.get("id") or not self.calls else max(self.calls)
        call = self.calls.get(index)
        if call is None:
            call = self.calls[index] = _PartialCall()
        if fragment.get("id") and not call.id:
            call.id = fragment["id"]
        function = fragment.get("function") or {}
        if function.get("name") and not call.name:
            call.name = function["name"]
        arguments = function.get("arguments")
        if arguments:
            if isinstance(arguments, str):
                call.arguments.append(arguments)
            else:  # a server that sends the object itself
                call.arguments.append(dumps(arguments))

    def tool_calls(self) -> list[LLMEvent]:
        """The calls assembled so far, parsed, in index order (and forgotten)."""
        out: list[LLMEvent] = []
        for index in sorted(self.calls):
            call = self.calls[index]
            if not call.name:
                raise ProviderError(self.provider, f"tool call #{index} ({call.id or 'no id'}) has no name")
            call_id = call.id or f"call_{index}"
            out.append(
                ToolCallEvent(
                    call_id,
                    call.name,
                    parse_arguments(self.provider, call_id, call.name, "".join(call.arguments)),
                )
            )
        self.calls.clear()
        return out

    def message(self, obj: Any) -> list[LLMEvent]:
        """A whole (non-streamed) `chat.completion`, from a server that ignored `stream: true`."""
        if not isinstance(obj, dict) or obj.get("error") is not None:
            return self.chunk(obj)
        out: list[LLMEvent] = []
        for choice in obj.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            message = choice.get("message") or {}
            out.extend(self.chunk({"choices": [{"delta": message, "finish_reason": None}]}))
            self.finish_reason = choice.get("finish_reason") or "stop"
            out.extend(self.tool_calls())
        self.chunk({"usage": obj.get("usage")})
        self.done = True
        return out


def _retryable_kind(kind: str) -> bool:
    kind = kind.lower()
    return any(word in kind for word in ("server", "overload", "rate", "timeout", "unavailable", "capacity"))


# --- the provider ---------------------------------------------------------------------------


class OpenAICompatibleLLM(HTTPClient):
    """An `LLM` over any OpenAI-compatible `/chat/completions` endpoint, streamed.

    Options:
    - `base_url`: the API root with its version path (see the module docstring).
    - `model`: the model name the server knows.
    - `api_key` / `api_key_env` / `api_key_file`: the key itself, the name of the environment
      variable holding it, or a file holding it (read once, here). None → no `Authorization`
      header (local servers).
    - `temperature`, `max_tokens`: sent only when set. `max_tokens_param` renames the latter
      (`max_completion_tokens` for OpenAI's newer models).
    - `include_usage`: ask for the usage chunk (`stream_options`); off for servers that reject it.
    - `headers`: extra HTTP headers (OpenRouter's `HTTP-Referer`, an org header…).
    - `extra_body`: extra top-level request fields (`top_p`, `seed`, vLLM or Ollama options…).
    - `connect_timeout`, `read_timeout`: socket backstops, in s. The stall watchdog and retries
      are `resilient_stream`'s job.
    - `max_connections`: pooled keep-alive connections (the pool is per provider instance).
    """

    _repr_fields = ("url", "model")

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        api_key_file: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_tokens_param: str = "max_tokens",
        include_usage: bool = True,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_connections: int = 100,
        name: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("model is required (the name the server knows it by)")
        secret = resolve_secret(
            name or "openai-compatible",
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            required=False,  # local servers (Ollama, llama.cpp, vLLM) take none
        )
        key = secret if secret is not None and secret.value else None
        super().__init__(
            key,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
        )
        self.url = chat_completions_url(base_url)
        self.model = model
        self.name = name or f"openai-compatible({model})"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_tokens_param = max_tokens_param
        self.include_usage = include_usage
        self.extra_body = dict(extra_body or {})
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **(headers or {}),
        }
        if key is not None:
            self._headers["Authorization"] = f"Bearer {key.value}"

    # -- request --

    def request_body(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> dict[str, Any]:
        """The JSON object POSTed for one reply."""
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "messages": [message_to_wire(m) for m in messages],
        }
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = [tool_to_wire(t) for t in tools]
            body["tool_choice"] = "auto"
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body[self.max_tokens_param] = self.max_tokens
        body.update(self.extra_body)
        return body

    # -- the stream --

    async def chat(
        self, messages: list[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMEvent]:
        parser = ChunkParser(self.name)
        data = dumps(self.request_body(messages, tools)).encode()
        async with self._post(self.url, data, self._headers) as response:
            if response.content_type == "application/json":
                pending = parser.message(await self._json(response))
            else:
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
                    payloads, tail = decoder.close()
                    if tail is not None and tail.strip() == _DONE:  # `data: [DONE]` without its blank line
                        payloads.append(_DONE)
                    for event in self._payloads(payloads, parser):
                        yield event
                    if not parser.done:
                        if parser.finish_reason is None:
                            raise ProviderError(
                                self.name, "the stream ended before the reply finished (no [DONE])"
                            )
                        log.debug("%s: the stream ended without [DONE] after its finish_reason", self.name)
                pending = parser.tool_calls()  # a server that never sent a finish_reason
        for event in pending:  # the response is done with: its connection went back to the pool
            yield event
        reason = parser.finish_reason
        if reason in ("length", "content_filter"):
            log.warning(
                "%s: reply cut short (finish_reason=%s)", self.name, reason, extra={"provider": self.name}
            )
        else:
            log.debug(
                "%s: reply finished (finish_reason=%s)", self.name, reason, extra={"provider": self.name}
            )
        yield LLMDone(parser.usage)

    def _payloads(self, payloads: list[bytes], parser: ChunkParser) -> Iterator[LLMEvent]:
        """The events of some SSE data payloads; stops at `[DONE]` (and sets `parser.done`)."""
        for payload in payloads:
            if payload == _DONE:
                parser.done = True
                return
            try:
                obj = json.loads(payload)
            except ValueError:
                shown = payload[:200].decode("utf-8", "replace")
                raise ProviderError(self.name, f"a stream event is not JSON: {shown!r}") from None
            yield from parser.chunk(obj)

    async def _http_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        return await http_error(self.name, response, secret=self._key, key_hint=" (check the API key)")
