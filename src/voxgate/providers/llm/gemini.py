"""Gemini through the Gemini API's `streamGenerateContent`, streamed over SSE. No SDK: aiohttp only.

`POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse` with the key in the
`x-goog-api-key` header (never in the URL). Each SSE event's data is a whole
`GenerateContentResponse`; there is no `[DONE]`: the reply ends with a chunk carrying
`finishReason` (and the final `usageMetadata`), then the server ends the body. (A gateway that
ignores `alt=sse` and answers with the JSON-array framing is understood too.)

Request mapping: system messages → `systemInstruction`; `assistant` → role `model`; an
assistant's tool calls → `functionCall` parts; tool results → `functionResponse` parts in a
`user` turn (the function's name is looked up from the call it answers; a result that is a JSON
object is sent as is, anything else as `{"result": …}`); consecutive turns of one role merged;
tools → one `functionDeclarations` tool whose JSON Schema goes in `parametersJsonSchema`
(`schema_field="parameters"` for gateways that only know the older OpenAPI-subset field).

Response: `text` parts → `TextDelta`s at once; `thought` parts (reasoning summaries) are dropped;
a `functionCall` part arrives whole → a `ToolCallEvent`. Gemini may give no call id, so one is
made from the request, the reply and the call (stable: the same reply to the same request gives
the same ids). Gemini 3 models
sign their function calls (`thoughtSignature`) and answer 400 to a history whose calls come back
unsigned: each signature is remembered by call id on this instance and sent back with the call;
a call this instance never saw (another provider's, a restarted process) gets Google's
documented placeholder instead. `usageMetadata` → `Usage` (thinking tokens count as completion).

`finishReason` STOP / MAX_TOKENS (a warning) end the reply; SAFETY, RECITATION, BLOCKLIST,
PROHIBITED_CONTENT, SPII… and a blocked prompt (`promptFeedback.blockReason`) are non-retryable
`ProviderError`s saying so; MALFORMED_FUNCTION_CALL and other reasons are retryable ones. HTTP
errors carry the server's `error.message` and `status`, retryable for 408/409/429/5xx. Closing
the iterator closes the connection (barge-in). The key: `GEMINI_API_KEY`, else `GOOGLE_API_KEY`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

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
from voxgate.providers.llm.sse import SSEDecoder
from voxgate.providers.secrets import MissingSecret, Secret, resolve_secret

log = logging.getLogger("voxgate.providers.llm")

DEFAULT_MODEL = "gemini-3.5-flash"
"""A stable Gemini 3 Flash model: the API reference's own example; 2.5 Flash is being shut down."""
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
OPENING_USER_TEXT = "(call connected)"
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented stand-in for a function call's thought signature it did not issue."""
BLOCKED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "MODEL_ARMOR"}
)
"""finishReasons meaning the reply was withheld by a filter: asking again will not help."""
FINE = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"})
RETRYABLE_STATUS = frozenset({408, 409, 429})
RETRYABLE_ERROR_STATUS = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"})

_MAX_SIGNATURES = 4096


# --- request --------------------------------------------------------------------------------


def stream_url(base_url: str, model: str, api_version: str = "v1beta") -> str:
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {base_url!r}")
    if not base.endswith(f"/{api_version}"):
        base += f"/{api_version}"
    model = model.removeprefix("models/")
    return f"{base}/models/{quote(model, safe='.-_')}:streamGenerateContent?alt=sse"


def tool_to_wire(tool: ToolSpec, schema_field: str = "parametersJsonSchema") -> dict[str, Any]:
    wire: dict[str, Any] = {"name": tool.name}
    if tool.description:
        wire["description"] = tool.description
    wire[schema_field] = dict(tool.parameters)
    return wire


def _response_object(content: str) -> dict[str, Any]:
    """A tool result as `functionResponse.response`, which must be a JSON object."""
    try:
        value = json.loads(content)
    except ValueError:
        return {"result": content}
    return value if isinstance(value, dict) else {"result": value}


class _Signatures:
    """Thought signatures of the function calls this instance streamed, by call id (bounded)."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, tuple[str | None, bool]] = OrderedDict()

    def remember(self, call_id: str, signature: str | None, server_id: bool) -> None:
        self._by_id[call_id] = (signature, server_id)
        self._by_id.move_to_end(call_id)
        while len(self._by_id) > _MAX_SIGNATURES:
            self._by_id.popitem(last=False)

    def get(self, call_id: str) -> tuple[str | None, bool]:
        return self._by_id.get(call_id, (None, False))


def to_wire(
    messages: Sequence[ChatMessage],
    signatures: _Signatures,
    *,
    opening_user_text: str = OPENING_USER_TEXT,
    placeholder_signature: str | None = PLACEHOLDER_SIGNATURE,
    provider: str = "gemini",
) -> tuple[str, list[dict[str, Any]]]:
    """(system instruction text, `contents`) for a request."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        parts: list[dict[str, Any]] = []
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            name = names.get(call_id)
            if name is None:
                raise ProviderError(
                    provider,
                    f"a tool result answers call {call_id!r}, which no assistant message in the context "
                    "made (Gemini needs the function's name): keep the call with its result",
                    retryable=False,
                )
            response: dict[str, Any] = {"name": name, "response": _response_object(message.content)}
            if signatures.get(call_id)[1]:
                response["id"] = call_id
            parts.append({"functionResponse": response})
        else:
            if message.content:
                parts.append({"text": message.content})
            for i, call in enumerate(message.tool_calls):
                signature, server_id = signatures.get(call.id)
                function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
                if server_id:
                    function_call["id"] = call.id
                part: dict[str, Any] = {"functionCall": function_call}
                signature = signature or (placeholder_signature if i == 0 else None)
                if signature:
                    part["thoughtSignature"] = signature
                parts.append(part)
        if not parts:
            continue
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if not contents or contents[0]["role"] != "user":
        contents.insert(0, {"role": "user", "parts": [{"text": opening_user_text}]})
    for content in contents:
        if content["role"] == "user":  # function responses first, as they answer the last turn
            content["parts"].sort(key=lambda p: "functionResponse" not in p)
    return system, contents


# --- response -------------------------------------------------------------------------------


class StreamParser:
    """The state of one streamed reply: feed it `GenerateContentResponse` chunks, get events."""

    def __init__(self, provider: str, signatures: _Signatures, salt: str) -> None:
        self.provider = provider
        self.signatures = signatures
        self.salt = salt  # makes the made-up call ids differ between turns of one conversation
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.calls = 0

    def chunk(self, obj: Any) -> list[LLMEvent]:
        if isinstance(obj, list):  # the JSON-array framing (no alt=sse): a list of chunks
            return [event for item in obj for event in self.chunk(item)]
        if not isinstance(obj, dict):
            raise ProviderError(
                self.provider, f"a stream chunk is a JSON {type(obj).__name__}, not an object"
            )
        if isinstance(obj.get("error"), dict):
            message, status = _error_fields(obj["error"])
            raise ProviderError(
                self.provider,
                f"error in the stream: {message or 'no message'}" + (f" ({status})" if status else ""),
                retryable=status in RETRYABLE_ERROR_STATUS or not status,
            )
        usage = obj.get("usageMetadata")
        if isinstance(usage, dict):
            self.usage = Usage(
                prompt_tokens=int(usage.get("promptTokenCount") or 0),
                completion_tokens=int(usage.get("candidatesTokenCount") or 0)
                + int(usage.get("thoughtsTokenCount") or 0),
            )
        block = (obj.get("promptFeedback") or {}).get("blockReason")
        if block:
            raise ProviderError(
                self.provider,
                f"Gemini blocked the prompt (blockReason={block}); rephrase it or adjust safetySettings",
                retryable=False,
            )
        out: list[LLMEvent] = []
        for candidate in obj.get("candidates") or ():
            if candidate.get("index", 0) != 0:
                continue
            for part in (candidate.get("content") or {}).get("parts") or ():
                out.extend(self._part(part, obj.get("responseId")))
            if candidate.get("finishReason"):
                self.finish_reason = str(candidate["finishReason"])
                self._check_finish(candidate)
        return out

    def _part(self, part: dict[str, Any], response_id: Any) -> list[LLMEvent]:
        if part.get("thought"):
            return []  # a reasoning summary: never spoken
        call = part.get("functionCall")
        if isinstance(call, dict):
            return [self._call(call, part.get("thoughtSignature"), response_id)]
        text = part.get("text")
        return [TextDelta(text)] if isinstance(text, str) and text else []

    def _call(self, call: dict[str, Any], signature: Any, response_id: Any) -> ToolCallEvent:
        name = call.get("name")
        if not name:
            raise ProviderError(self.provider, "a functionCall part has no name")
        args = call.get("args") or {}
        if not isinstance(args, dict):
            raise ProviderError(
                self.provider,
                f"functionCall {name!r} has args that are a JSON {type(args).__name__}, not an object",
                retryable=False,
            )
        index, self.calls = self.calls, self.calls + 1
        call_id = str(call.get("id") or "")
        server_id = bool(call_id)
        if not call_id:  # stable: a digest of the turn, the call's place in the reply and the call
            seed = f"{response_id or ''}|{self.salt}|{index}|{name}|{dumps(args)}"
            call_id = "call_" + hashlib.sha256(seed.encode()).hexdigest()[:20]
        self.signatures.remember(call_id, signature if isinstance(signature, str) else None, server_id)
        return ToolCallEvent(call_id, str(name), args)

    def _check_finish(self, candidate: dict[str, Any]) -> None:
        reason = self.finish_reason or ""
        if reason in FINE:
            return
        detail = candidate.get("finishMessage")
        detail = f": {detail}" if detail else ""
        if reason in BLOCKED:
            raise ProviderError(
                self.provider,
                f"Gemini withheld the reply (finishReason={reason}){detail}; rephrase the prompt or "
                "adjust safetySettings",
                retryable=False,
            )
        raise ProviderError(self.provider, f"the reply ended abnormally (finishReason={reason}){detail}")


def _error_fields(err: dict[str, Any]) -> tuple[str, str]:
    return str(err.get("message") or ""), str(err.get("status") or "")


# --- the provider ---------------------------------------------------------------------------


class GeminiLLM(HTTPClient):
    """An `LLM` over the Gemini API's streaming `streamGenerateContent`.

    Options:
    - `model`: a Gemini model code (default `DEFAULT_MODEL`).
    - `api_key` / `api_key_env` / `api_key_file`: the key, the variable holding it, or a file
      holding it; none of them → `GEMINI_API_KEY`, else `GOOGLE_API_KEY`.
    - `temperature`, `max_output_tokens`: sent in `generationConfig` when set;
      `generation_config` adds more (e.g. `{"thinkingConfig": {"thinkingLevel": "low"}}`).
    - `safety_settings`: sent as `safetySettings` when given.
    - `schema_field`: where a tool's JSON Schema goes (`parametersJsonSchema` or `parameters`).
    - `placeholder_signature`: sent for calls with no known thought signature (None: nothing).
    - `base_url`, `api_version`: the API root and version path (a gateway or a fake server).
    - `opening_user_text`: the user turn put first when the conversation does not start with one.
    - `headers`, `extra_body`: extra HTTP headers and request fields.
    - `connect_timeout`, `read_timeout`: socket backstops, in s. `max_connections`: the pool size.
    """

    _repr_fields = ("url", "model")

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        api_key_file: str | Path | None = None,
        temperature: float | None = None,
        max_output_tokens: int | None = None,
        generation_config: Mapping[str, Any] | None = None,
        safety_settings: Sequence[Mapping[str, Any]] | None = None,
        schema_field: Literal["parametersJsonSchema", "parameters"] = "parametersJsonSchema",
        placeholder_signature: str | None = PLACEHOLDER_SIGNATURE,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = "v1beta",
        opening_user_text: str = OPENING_USER_TEXT,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_connections: int = 100,
        name: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("model is required (a Gemini model code such as gemini-3.5-flash)")
        self.name = name or "gemini"
        secret = resolve_secret(
            self.name,
            api_key=api_key,
            api_key_env=api_key_env,
            api_key_file=api_key_file,
            default_env="GEMINI_API_KEY",
            required=False,
        ) or resolve_secret(self.name, default_env="GOOGLE_API_KEY", required=False)
        if secret is None:
            raise MissingSecret(
                f"{self.name} needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), or give "
                "api_key_env (a variable name) or api_key_file (a file holding the key) in its options"
            )
        super().__init__(
            secret,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
        )
        self.model = model.removeprefix("models/")
        self.url = stream_url(base_url, self.model, api_version)
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.generation_config = dict(generation_config or {})
        self.safety_settings = [dict(s) for s in safety_settings] if safety_settings else None
        self.schema_field = schema_field
        self.placeholder_signature = placeholder_signature
        self.opening_user_text = opening_user_text
        self.extra_body = dict(extra_body or {})
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **(headers or {}),
            "x-goog-api-key": secret.value,
        }
        self._signatures = _Signatures()

    def request_body(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> dict[str, Any]:
        """The JSON object POSTed for one reply."""
        system, contents = to_wire(
            messages,
            self._signatures,
            opening_user_text=self.opening_user_text,
            placeholder_signature=self.placeholder_signature,
            provider=self.name,
        )
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [tool_to_wire(t, self.schema_field) for t in tools]}]
        config = dict(self.generation_config)
        if self.temperature is not None:
            config["temperature"] = self.temperature
        if self.max_output_tokens is not None:
            config["maxOutputTokens"] = self.max_output_tokens
        if config:
            body["generationConfig"] = config
        if self.safety_settings:
            body["safetySettings"] = self.safety_settings
        body.update(self.extra_body)
        return body

    async def chat(
        self, messages: list[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMEvent]:
        data = dumps(self.request_body(messages, tools)).encode()
        salt = hashlib.sha256(data).hexdigest()[:16]  # the same request makes the same call ids
        parser = StreamParser(self.name, self._signatures, salt)
        async with self._post(self.url, data, self._headers) as response:
            if response.content_type == "application/json":  # a gateway that ignored alt=sse
                for event in parser.chunk(await self._json(response)):
                    yield event
            else:
                async with aclosing(self._sse(response, parser)) as events:
                    async for event in events:
                        yield event
            if parser.finish_reason is None:
                raise ProviderError(self.name, "the stream ended before the reply finished (no finishReason)")
        level = logging.WARNING if parser.finish_reason == "MAX_TOKENS" else logging.DEBUG
        log.log(
            level,
            "%s: reply finished (finishReason=%s)",
            self.name,
            parser.finish_reason,
            extra={"provider": self.name},
        )
        yield LLMDone(parser.usage)

    async def _sse(self, response: aiohttp.ClientResponse, parser: StreamParser) -> AsyncIterator[LLMEvent]:
        decoder = SSEDecoder()
        async for raw in response.content.iter_any():
            try:
                payloads = decoder.feed(raw)
            except ValueError as exc:
                raise ProviderError(self.name, str(exc), retryable=False) from None
            for event in self._payloads(payloads, parser):
                yield event
        payloads, tail = decoder.close()
        if tail is not None:  # the last event without its blank line: still a whole chunk
            payloads.append(tail)
        for event in self._payloads(payloads, parser):
            yield event

    def _payloads(self, payloads: list[bytes], parser: StreamParser) -> Iterator[LLMEvent]:
        for payload in payloads:
            try:
                obj = json.loads(payload)
            except ValueError:
                shown = payload[:200].decode("utf-8", "replace")
                raise ProviderError(self.name, f"a stream event is not JSON: {shown!r}") from None
            yield from parser.chunk(obj)

    async def _http_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        payload, text = await error_body(response)
        if isinstance(payload, list) and payload:  # the JSON-array framing wraps errors too
            payload = payload[0]
        err = payload.get("error") if isinstance(payload, dict) else None
        message, err_status, key_problem = "", "", False
        if isinstance(err, dict):
            message, err_status = _error_fields(err)
            key_problem = "API_KEY" in json.dumps(err.get("details") or [])  # a bad key is a 400
        key_hint = f" (check the API key: {self._key.source})"
        return status_error(
            self.name,
            response.status,
            status_line(response),
            message or text,
            secret=self._key,
            kind=err_status,
            retry_after=response.headers.get("Retry-After"),
            key_hint=key_hint,
            tail=key_hint if key_problem and response.status not in (401, 403) else "",
            retryable=RETRYABLE_STATUS,
        )
