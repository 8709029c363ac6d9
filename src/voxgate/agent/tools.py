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

import asyncio
import importlib
import inspect
import json
import re
import types
import typing
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from yarl import URL

from voxgate.agent.responder import Action, EndCall, SendDtmf, Transfer
from voxgate.log import call_logger
from voxgate.providers.base import ToolCallEvent, ToolSpec

_LOGGER = "voxgate.agent.tools"
MAX_RESULT_CHARS = 4000
_MAX_BODY_BYTES = 1 << 20
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_FUNCTION_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_DTMF = re.compile(r"[0-9*#A-D]+")
_MAX_DTMF_DIGITS = 64


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


# --- built-in call control ------------------------------------------------------------------

BUILTIN_TOOL_NAMES = ("end_call", "transfer_call", "send_dtmf")


def builtin_tool_specs(
    names: Iterable[str] = BUILTIN_TOOL_NAMES, *, transfer_targets: Sequence[str] | None = None
) -> list[ToolSpec]:
    """The specs of the built-in tools in `names`, to offer the LLM.

    `transfer_targets`, when given, is the only places `transfer_call` may send a caller (an
    `enum` in the schema, enforced again by `builtin_action`): a caller cannot talk the model
    into dialling anywhere else.
    """
    specs: list[ToolSpec] = []
    for name in names:
        if name == "end_call":
            specs.append(_END_CALL)
        elif name == "transfer_call":
            target: dict[str, Any] = {
                "type": "string",
                "description": "Where to send the caller: an extension, queue or endpoint, "
                "e.g. '1000', 'support' or 'PJSIP/1000'.",
            }
            if transfer_targets is not None:
                target["enum"] = list(transfer_targets)
            specs.append(
                ToolSpec(
                    "transfer_call",
                    "Transfer the caller to a person or another line. First tell the caller in one "
                    "short sentence that you are transferring them; the transfer happens once they "
                    "have heard it.",
                    {"type": "object", "properties": {"target": target}, "required": ["target"]},
                )
            )
        elif name == "send_dtmf":
            specs.append(_SEND_DTMF)
        else:
            known = ", ".join(BUILTIN_TOOL_NAMES)
            raise ToolError(f"no built-in tool named {name!r}; built-in tools: {known}")
    return specs


_END_CALL = ToolSpec(
    "end_call",
    "End the phone call. Say a short goodbye in the same reply first; the line is hung up once "
    "the caller has heard it.",
    {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "description": "Why the call ends, for the call record."}
        },
    },
)
_SEND_DTMF = ToolSpec(
    "send_dtmf",
    "Press telephone keys on this call, e.g. to choose options in an automated phone menu on the "
    "other end. The keys are sent after the text before this call.",
    {
        "type": "object",
        "properties": {
            "digits": {
                "type": "string",
                "pattern": "^[0-9*#A-D]+$",
                "description": "The keys to press in order: 0-9, * and #, and A-D.",
            }
        },
        "required": ["digits"],
    },
)


def builtin_action(call: ToolCallEvent, *, transfer_targets: Sequence[str] | None = None) -> Action | None:
    """The `Action` for a call of a built-in tool; None when `call` is not one.

    Raises `ToolError` when the arguments are wrong; its message is written for the model, so a
    responder can hand it back as the tool result.
    """
    args = call.arguments if isinstance(call.arguments, Mapping) else {}
    if call.name == "end_call":
        reason = args.get("reason")
        if reason is None or reason == "":
            return EndCall()
        if not isinstance(reason, str):
            raise ToolError(f"end_call: 'reason' must be a string, not {_json_type(reason)}")
        return EndCall(reason)
    if call.name == "transfer_call":
        target = args.get("target")
        if not isinstance(target, str) or not target.strip():
            raise ToolError("transfer_call: 'target' is required: the extension, queue or endpoint")
        target = target.strip()
        if any(ch.isspace() or not ch.isprintable() for ch in target) or len(target) > 256:
            raise ToolError(f"transfer_call: {target[:80]!r} is not an extension, queue or endpoint")
        if transfer_targets is not None and target not in transfer_targets:
            allowed = ", ".join(transfer_targets)
            raise ToolError(f"transfer_call: {target!r} is not an allowed target; use one of: {allowed}")
        return Transfer(target)
    if call.name == "send_dtmf":
        digits = args.get("digits")
        if isinstance(digits, int) and not isinstance(digits, bool):
            digits = str(digits)  # models sometimes send keys as a number
        if not isinstance(digits, str) or not digits.strip():
            raise ToolError("send_dtmf: 'digits' is required: the keys to press, e.g. '1' or '1234#'")
        digits = "".join(digits.split())
        bad = next((ch for ch in digits if not _DTMF.fullmatch(ch.upper())), None)
        if bad is not None:
            raise ToolError(f"send_dtmf: {bad!r} is not a telephone key; use only 0-9, *, # and A-D")
        digits = digits.upper()
        if len(digits) > _MAX_DTMF_DIGITS:
            raise ToolError(f"send_dtmf: {len(digits)} keys is too many at once (at most {_MAX_DTMF_DIGITS})")
        return SendDtmf(digits)
    return None


# --- user tools -----------------------------------------------------------------------------

Handler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


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


# --- schemas from signatures ----------------------------------------------------------------

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


# --- config ---------------------------------------------------------------------------------


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


# --- webhooks -------------------------------------------------------------------------------

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
            return _truncate(data, MAX_RESULT_CHARS) if isinstance(data, str) else _result_text(data)
        return _truncate(text.strip(), MAX_RESULT_CHARS) or f"ok (HTTP {status})"


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
