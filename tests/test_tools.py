"""Agent tools: built-in call control, Python tools, and webhooks against a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

import pytest
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from voxgate.agent.responder import EndCall, SendDtmf, Transfer
from voxgate.agent.tools import (
    MAX_RESULT_CHARS,
    PythonToolConfig,
    Tool,
    ToolConfig,
    ToolContext,
    ToolError,
    WebhookToolConfig,
    aclose_tools,
    build_tools,
    builtin_action,
    builtin_tool_specs,
)
from voxgate.providers.base import ToolCallEvent

HOST = "127.0.0.1"
CTX = ToolContext(call_id="call-1", caller="+15551234567", variables={"lang": "en"})
configs = TypeAdapter(list[ToolConfig])


@pytest.fixture(autouse=True)
async def _close_webhook_pool() -> AsyncIterator[None]:
    yield
    await aclose_tools()


# --- functions used as tools (importable as `test_tools:<name>`: pytest puts tests/ on sys.path)


def lookup_order(order_id: str, include_items: bool = False) -> dict[str, Any]:
    """Look up an order by its number.

    The second paragraph is not part of the description.
    """
    return {"order_id": order_id, "status": "shipped", "items": ["mug"] if include_items else None}


async def whoami(greeting: str, context: ToolContext) -> str:
    """Say who is calling."""
    await asyncio.sleep(0)
    return f"{greeting} {context.caller} on {context.call_id} ({context.variables['lang']})"


def no_args() -> None:
    return None


def every_hint(
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    names: list[str],
    table: dict[str, int],
    mode: Literal["fast", "slow"],
    maybe: Optional[int],  # noqa: UP045 - the typing spelling on purpose
    order_id: Annotated[str, "The order number, e.g. A7"],
    anything: list,  # type: ignore[type-arg]
    level: int | None = None,
    note: str = "none",
    *,
    context: ToolContext | None = None,
) -> str:
    return "ok"


# --- built-in call control ------------------------------------------------------------------


def test_builtin_specs() -> None:
    specs = builtin_tool_specs()
    assert [s.name for s in specs] == ["end_call", "transfer_call", "send_dtmf"]
    by_name = {s.name: s for s in specs}
    end_call = by_name["end_call"].parameters
    assert end_call["type"] == "object" and list(end_call["properties"]) == ["reason"]
    assert end_call["properties"]["reason"]["type"] == "string"
    assert "required" not in end_call
    assert by_name["transfer_call"].parameters["required"] == ["target"]
    assert (
        "say" in by_name["transfer_call"].description.lower()
        or "tell" in by_name["transfer_call"].description
    )
    digits = by_name["send_dtmf"].parameters["properties"]["digits"]
    assert digits["type"] == "string" and digits["pattern"] == "^[0-9*#A-D]+$"
    assert by_name["send_dtmf"].parameters["required"] == ["digits"]
    for spec in specs:
        json.dumps(spec.parameters)  # goes on the wire as it is

    assert [s.name for s in builtin_tool_specs(["send_dtmf"])] == ["send_dtmf"]
    with pytest.raises(ToolError, match="no built-in tool named 'dial'"):
        builtin_tool_specs(["dial"])
    limited = builtin_tool_specs(["transfer_call"], transfer_targets=["1000", "sales"])
    assert limited[0].parameters["properties"]["target"]["enum"] == ["1000", "sales"]


def call(name: str, **arguments: Any) -> ToolCallEvent:
    return ToolCallEvent(id="tc1", name=name, arguments=arguments)


def test_builtin_actions() -> None:
    assert builtin_action(call("end_call")) == EndCall()
    assert builtin_action(call("end_call", reason="caller is done")) == EndCall("caller is done")
    assert builtin_action(call("transfer_call", target=" 1000 ")) == Transfer("1000")
    assert builtin_action(call("transfer_call", target="PJSIP/1000")) == Transfer("PJSIP/1000")
    assert builtin_action(call("send_dtmf", digits="12#*")) == SendDtmf("12#*")
    assert builtin_action(call("send_dtmf", digits="1 2 3 a")) == SendDtmf("123A")
    assert builtin_action(call("send_dtmf", digits=5)) == SendDtmf("5")
    assert builtin_action(call("lookup_order", order_id="A7")) is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (call("send_dtmf", digits="12x4"), "'x' is not a telephone key"),
        (call("send_dtmf", digits="555-1234"), "'-' is not a telephone key"),
        (call("send_dtmf", digits=""), "'digits' is required"),
        (call("send_dtmf"), "'digits' is required"),
        (call("send_dtmf", digits="1" * 65), "too many"),
        (call("transfer_call"), "'target' is required"),
        (call("transfer_call", target="  "), "'target' is required"),
        (call("transfer_call", target="1000 ; Dial(evil)"), "is not an extension"),
        (call("end_call", reason=7), "'reason' must be a string"),
    ],
)
def test_builtin_bad_arguments(event: ToolCallEvent, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        builtin_action(event)


def test_transfer_targets_are_enforced() -> None:
    assert builtin_action(call("transfer_call", target="sales"), transfer_targets=["sales"]) == Transfer(
        "sales"
    )
    with pytest.raises(ToolError, match="'900555' is not an allowed target; use one of: sales"):
        builtin_action(call("transfer_call", target="900555"), transfer_targets=["sales"])


# --- schemas from signatures ----------------------------------------------------------------


def test_schema_from_every_supported_hint() -> None:
    tool = Tool.from_callable(every_hint)
    assert tool.name == "every_hint"
    assert tool.spec.description == ""
    assert tool.spec.parameters == {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "flag": {"type": "boolean"},
            "names": {"type": "array", "items": {"type": "string"}},
            "table": {"type": "object"},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "maybe": {"type": ["integer", "null"]},
            "order_id": {"type": "string", "description": "The order number, e.g. A7"},
            "anything": {"type": "array"},
            "level": {"type": ["integer", "null"], "default": None},
            "note": {"type": "string", "default": "none"},
        },
        "required": [
            "text",
            "count",
            "ratio",
            "flag",
            "names",
            "table",
            "mode",
            "maybe",
            "order_id",
            "anything",
        ],
        "additionalProperties": False,
    }


def test_description_is_the_first_docstring_line() -> None:
    tool = Tool.from_callable(lookup_order)
    assert tool.spec.description == "Look up an order by its number."
    assert tool.spec.parameters == {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "include_items": {"type": "boolean", "default": False},
        },
        "required": ["order_id"],
        "additionalProperties": False,
    }
    named = Tool.from_callable(lookup_order, name="find-order", description="Find an order.")
    assert (named.name, named.spec.description) == ("find-order", "Find an order.")


def test_kwargs_allow_any_argument_and_no_hints_mean_any_type() -> None:
    def loose(a, b=3, **rest):  # type: ignore[no-untyped-def]
        return None

    assert Tool.from_callable(loose).spec.parameters == {
        "type": "object",
        "properties": {"a": {}, "b": {"default": 3}},
        "required": ["a"],
    }


@dataclass
class Point:
    x: int


def test_unsupported_signatures_are_clear_errors() -> None:
    def takes_point(p: Point) -> None: ...

    def positional_only(a: str, /) -> None: ...

    def other_context_name(ctx: ToolContext) -> None: ...

    with pytest.raises(ToolError, match="parameter 'p': type 'Point' cannot be a tool argument"):
        Tool.from_callable(takes_point)
    with pytest.raises(ToolError, match="positional-only parameter 'a'"):
        Tool.from_callable(positional_only)
    with pytest.raises(ToolError, match="name the ToolContext parameter 'context'"):
        Tool.from_callable(other_context_name)
    # an explicit schema is the way out for types we cannot describe
    tool = Tool.from_callable(
        takes_point, parameters={"type": "object", "properties": {"p": {"type": "object"}}, "required": ["p"]}
    )
    assert tool.spec.parameters["properties"] == {"p": {"type": "object"}}


# --- running Python tools -------------------------------------------------------------------


async def test_sync_tool_runs_in_a_thread() -> None:
    threads: list[int] = []

    def where(x: int) -> str:
        threads.append(threading.get_ident())
        return f"x={x}"

    result = await Tool.from_callable(where).call({"x": 2}, CTX)
    assert result == "x=2"
    assert threads and threads[0] != threading.get_ident()


async def test_async_tool_and_context_injection() -> None:
    tool = Tool.from_callable(whoami)
    assert tool.spec.parameters["properties"] == {"greeting": {"type": "string"}}
    assert await tool.call({"greeting": "hi"}, CTX) == "hi +15551234567 on call-1 (en)"


async def test_sync_tool_gets_context_too() -> None:
    seen: list[ToolContext] = []

    def remember(context: ToolContext) -> str:
        seen.append(context)
        return "noted"

    assert await Tool.from_callable(remember).call({}, CTX) == "noted"
    assert seen == [CTX]


async def test_results_become_text() -> None:
    assert await Tool.from_callable(lookup_order).call({"order_id": "A7"}, CTX) == (
        '{"order_id": "A7", "status": "shipped", "items": null}'
    )
    assert await Tool.from_callable(no_args).call({}, CTX) == "ok"

    def huge() -> str:
        return "x" * 100_000

    text = await Tool.from_callable(huge).call({}, CTX)
    assert len(text) == MAX_RESULT_CHARS and text.endswith("…[truncated]")


async def test_a_raising_tool_returns_an_error_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    def broken(order_id: str) -> str:
        raise LookupError(f"no order {order_id}")

    with caplog.at_level(logging.WARNING, logger="voxgate.agent.tools"):
        result = await Tool.from_callable(broken).call({"order_id": "A7"}, CTX)
    assert result == "error: tool broken failed: LookupError: no order A7"
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.call_id == "call-1"  # type: ignore[attr-defined]
    assert record.exc_info is not None


@pytest.mark.parametrize("is_async", [True, False])
async def test_a_slow_tool_times_out(is_async: bool, caplog: pytest.LogCaptureFixture) -> None:
    async def slow_async() -> str:
        await asyncio.sleep(5)
        return "late"

    def slow_sync() -> str:
        time.sleep(0.3)
        return "late"

    tool = Tool.from_callable(slow_async if is_async else slow_sync, name="lookup_order", timeout_s=0.05)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="voxgate.agent.tools"):
        result = await tool.call({}, CTX)
    assert time.monotonic() - started < 0.25
    assert result == "error: tool lookup_order timed out after 0.05 s"
    assert caplog.records[0].call_id == "call-1"  # type: ignore[attr-defined]


async def test_a_tool_raising_timeout_error_itself_is_a_failure_not_a_timeout() -> None:
    async def gives_up() -> str:
        raise TimeoutError

    assert await Tool.from_callable(gives_up).call({}, CTX) == "error: tool gives_up failed: TimeoutError"


async def test_cancellation_propagates() -> None:
    async def forever() -> str:
        await asyncio.sleep(60)
        return "never"

    task = asyncio.create_task(Tool.from_callable(forever).call({}, CTX))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "error: tool lookup_order: missing required argument 'order_id'"),
        ({"order_id": 7}, "error: tool lookup_order: argument 'order_id' must be string, not integer"),
        ({"order_id": "A7", "include_items": "yes"},
         "error: tool lookup_order: argument 'include_items' must be boolean, not string"),
        ({"order_id": "A7", "colour": "red"}, "error: tool lookup_order: unexpected argument 'colour'"),
        (["A7"], "error: tool lookup_order: arguments must be a JSON object, not array"),
    ],
)  # fmt: skip
async def test_bad_arguments_are_reported_to_the_model(arguments: Any, expected: str) -> None:
    calls: list[str] = []

    def lookup(order_id: str, include_items: bool = False) -> str:
        calls.append(order_id)
        return "found"

    assert await Tool.from_callable(lookup, name="lookup_order").call(arguments, CTX) == expected
    assert calls == []


async def test_argument_types_enums_and_whole_floats() -> None:
    got: list[tuple[int, str, int | None]] = []

    def pick(count: int, mode: Literal["fast", "slow"], level: int | None = None) -> str:
        got.append((count, mode, level))
        return "ok"

    tool = Tool.from_callable(pick)
    assert await tool.call({"count": 3.0, "mode": "fast", "level": None}, CTX) == "ok"
    assert got == [(3, "fast", None)] and type(got[0][0]) is int
    assert await tool.call({"count": 3.5, "mode": "fast"}, CTX) == (
        "error: tool pick: argument 'count' must be integer, not number"
    )
    assert await tool.call({"count": True, "mode": "fast"}, CTX) == (
        "error: tool pick: argument 'count' must be integer, not boolean"
    )
    assert await tool.call({"count": 1, "mode": "medium"}, CTX) == (
        'error: tool pick: argument \'mode\' must be one of "fast", "slow"'
    )


# --- config and names -----------------------------------------------------------------------


async def test_python_tool_from_config() -> None:
    [tool] = build_tools(
        configs.validate_python(
            [{"kind": "python", "name": "find_order", "function": "test_tools:lookup_order"}]
        )
    )
    assert tool.name == "find_order"
    assert tool.spec.description == "Look up an order by its number."
    assert (
        await tool.call({"order_id": "B2"}, CTX) == '{"order_id": "B2", "status": "shipped", "items": null}'
    )
    assert tool.timeout_s == 10


def test_python_tool_config_with_explicit_schema_checked_against_the_function() -> None:
    params = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
    config = PythonToolConfig(
        name="o", function="test_tools:lookup_order", description="Orders.", parameters=params
    )
    [tool] = build_tools([config])
    assert tool.spec.parameters == params and tool.spec.description == "Orders."

    missing = PythonToolConfig(name="o", function="test_tools:lookup_order", parameters={"type": "object"})
    with pytest.raises(ToolError, match=r"tools\[0\]\.function: tool 'o': .* needs 'order_id'"):
        build_tools([missing])
    extra = {"type": "object", "properties": {"order_id": {"type": "string"}, "zip": {"type": "string"}}}
    with pytest.raises(ToolError, match=r"declares 'zip', which .* does not take"):
        build_tools([PythonToolConfig(name="o", function="test_tools:lookup_order", parameters=extra)])


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            "no_such_pkg_xyz.orders:lookup",
            "tools[1].function: cannot import 'no_such_pkg_xyz.orders' for tool 'bad': "
            "No module named 'no_such_pkg_xyz'; fix: install the package",
        ),
        ("math:no_such_function", "tools[1].function: 'math' has no 'no_such_function' for tool 'bad'; fix:"),
        ("math:pi", "tools[1].function: 'math:pi' for tool 'bad' is a float, not a function; fix:"),
    ],
)
def test_unresolvable_functions_name_the_tool_and_the_fix(function: str, message: str) -> None:
    tools = configs.validate_python(
        [
            {"kind": "python", "name": "good", "function": "test_tools:lookup_order"},
            {"kind": "python", "name": "bad", "function": function},
        ]
    )
    with pytest.raises(ToolError) as caught:
        build_tools(tools)
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.field == "tools[1].function"


def test_a_stdlib_function_can_be_a_tool() -> None:
    [tool] = build_tools(
        [PythonToolConfig(name="join", function="posixpath:join", description="Join paths.")]
    )
    assert tool.spec.parameters["required"] == ["a"]


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dot.ted", "ünï", "end_call", "send_dtmf"])
def test_bad_tool_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        PythonToolConfig(name=name, function="test_tools:lookup_order")
    with pytest.raises(ValidationError):
        WebhookToolConfig(name=name, url="http://x.example/", description="d")


@pytest.mark.parametrize("name", ["a", "lookup-order_2", "X" * 64])
def test_good_tool_names(name: str) -> None:
    assert PythonToolConfig(name=name, function="test_tools:lookup_order").name == name
    assert Tool.from_callable(lookup_order, name=name).name == name


def test_tool_name_errors_say_the_rule() -> None:
    with pytest.raises(ToolError, match="1-64 letters, digits, '_' or '-'"):
        Tool.from_callable(lookup_order, name="bad name")
    with pytest.raises(ValidationError, match="'end_call' is a built-in tool; give your tool another name"):
        PythonToolConfig(name="end_call", function="test_tools:lookup_order")
    with pytest.raises(ToolError, match="'send_dtmf' is a built-in tool"):
        Tool.from_callable(lookup_order, name="send_dtmf")
    with pytest.raises(ToolError, match="timeout_s must be more than 0"):
        Tool.from_callable(lookup_order, timeout_s=0)


def test_duplicate_names_are_refused() -> None:
    twice = [PythonToolConfig(name="x", function="test_tools:lookup_order")] * 2
    with pytest.raises(ToolError, match=r"tools\[1\]\.name: 'x' is already the name of tools\[0\]"):
        build_tools(twice)


@pytest.mark.parametrize(
    "entry",
    [
        {"kind": "python", "name": "x", "function": "no-colon"},
        {"kind": "python", "name": "x", "function": "test_tools:lookup_order", "typo": 1},
        {"kind": "python", "name": "x", "function": "test_tools:lookup_order", "timeout_s": 0},
        {
            "kind": "python",
            "name": "x",
            "function": "test_tools:lookup_order",
            "parameters": {"type": "string"},
        },
        {
            "kind": "python",
            "name": "x",
            "function": "m:f",
            "parameters": {"type": "object", "required": ["a"]},
        },
        {"kind": "webhook", "name": "x", "url": "http://x.example/"},  # a webhook needs a description
        {"kind": "webhook", "name": "x", "url": "ftp://x.example/", "description": "d"},
        {"kind": "webhook", "name": "x", "url": "/relative", "description": "d"},
        {"kind": "webhook", "name": "x", "url": "http://x.example/", "description": "d", "method": "PUT"},
        {"kind": "webhook", "name": "x", "url": "http://x.example/", "description": "d", "function": "m:f"},
        {"kind": "shell", "name": "x"},
        {"name": "x", "function": "m:f"},
    ],
)
def test_config_shape_errors(entry: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        configs.validate_python([entry])


def test_webhook_config_defaults_and_secret_headers() -> None:
    [config] = configs.validate_python(
        [{"kind": "webhook", "name": "crm", "url": "https://crm.example/t", "description": "CRM.",
          "method": "get", "headers": {"Authorization": "Bearer s3cret"}}]
    )  # fmt: skip
    assert isinstance(config, WebhookToolConfig)
    assert config.method == "GET" and config.timeout_s == 10
    assert config.parameters == {"type": "object", "properties": {}}
    assert "s3cret" not in repr(config)
    assert "s3cret" not in repr(build_tools([config])[0])


# --- webhooks against a real HTTP server ----------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer_port: int


@dataclass
class WebhookServer:
    url: str
    received: list[Received] = field(default_factory=list)


@pytest.fixture
async def webhook_server() -> AsyncIterator[WebhookServer]:
    server = WebhookServer(url="")

    async def record(request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        server.received.append(
            Received(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
                peer[1] if peer else 0,
            )
        )

    async def json_reply(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"status": "shipped", "eta": "Tuesday"})

    async def text_reply(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="  Order A7 has shipped.\n")

    async def json_string(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response("It is sunny.")

    async def echo_query(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(dict(request.query))

    async def fail(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500, text="<html>stack trace</html>", content_type="text/html")

    async def not_found(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"error": "order not found"}, status=404)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def huge(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="y" * 50_000)

    app = web.Application()
    app.router.add_post("/json", json_reply)
    app.router.add_post("/text", text_reply)
    app.router.add_post("/string", json_string)
    app.router.add_get("/query", echo_query)
    app.router.add_post("/fail", fail)
    app.router.add_post("/missing", not_found)
    app.router.add_post("/slow", slow)
    app.router.add_post("/huge", huge)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://{HOST}:{port}"
    yield server
    await runner.cleanup()


def webhook(server: WebhookServer, path: str, **options: Any) -> Tool:
    entry = {"kind": "webhook", "name": "lookup_order", "url": server.url + path, "description": "Orders."}
    [tool] = build_tools(configs.validate_python([{**entry, **options}]))
    return tool


async def test_webhook_posts_the_call_as_json(webhook_server: WebhookServer) -> None:
    tool = webhook(
        webhook_server,
        "/json",
        headers={"Authorization": "Bearer s3cret", "X-Tenant": "acme"},
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    )
    result = await tool.call({"order_id": "A7", "items": [1, 2]}, CTX)
    assert json.loads(result) == {"status": "shipped", "eta": "Tuesday"}
    [got] = webhook_server.received
    assert (got.method, got.path) == ("POST", "/json")
    assert json.loads(got.body) == {
        "tool": "lookup_order",
        "arguments": {"order_id": "A7", "items": [1, 2]},
        "call_id": "call-1",
    }
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Authorization"] == "Bearer s3cret"
    assert got.headers["X-Tenant"] == "acme"
    assert got.headers["X-Voxgate-Call-Id"] == "call-1"


async def test_webhook_text_and_json_string_results(webhook_server: WebhookServer) -> None:
    assert await webhook(webhook_server, "/text").call({}, CTX) == "Order A7 has shipped."
    assert await webhook(webhook_server, "/string").call({}, CTX) == "It is sunny."
    text = await webhook(webhook_server, "/huge").call({}, CTX)
    assert len(text) == MAX_RESULT_CHARS and text.startswith("yyyy")


async def test_webhook_get_sends_arguments_as_query(webhook_server: WebhookServer) -> None:
    tool = webhook(webhook_server, "/query?key=k1", method="GET")
    result = await tool.call({"q": "A 7&x", "n": 3, "flag": True, "skip": None}, CTX)
    expected = {"key": "k1", "q": "A 7&x", "n": "3", "flag": "true"}
    assert json.loads(result) == expected
    [got] = webhook_server.received
    assert (got.method, got.query, got.body) == ("GET", expected, b"")
    assert got.headers["X-Voxgate-Call-Id"] == "call-1"


async def test_webhook_http_error_is_a_result_and_a_warning(
    webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    tool = webhook(webhook_server, "/fail", headers={"Authorization": "Bearer s3cret"})
    with caplog.at_level(logging.DEBUG):
        result = await tool.call({}, CTX)
    assert result == "error: tool lookup_order failed: the service answered HTTP 500 Internal Server Error"
    warnings = [r for r in caplog.records if r.name == "voxgate.agent.tools"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert warnings[0].call_id == "call-1"  # type: ignore[attr-defined]
    assert "500" in warnings[0].getMessage()
    assert "s3cret" not in caplog.text


async def test_webhook_error_body_reaches_the_model(webhook_server: WebhookServer) -> None:
    result = await webhook(webhook_server, "/missing").call({}, CTX)
    prefix = "error: tool lookup_order failed: the service answered HTTP 404 Not Found: "
    assert result == prefix + '{"error": "order not found"}'


async def test_webhook_slow_server_times_out(webhook_server: WebhookServer) -> None:
    started = time.monotonic()
    result = await webhook(webhook_server, "/slow", timeout_s=0.2).call({}, CTX)
    assert result == "error: tool lookup_order timed out after 0.2 s"
    assert time.monotonic() - started < 1.0
    assert len(webhook_server.received) == 1


async def test_webhook_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    [tool] = build_tools(
        [WebhookToolConfig(name="crm", url=f"http://{HOST}:{port}/x?token=t0k", description="d")]
    )
    with caplog.at_level(logging.WARNING, logger="voxgate.agent.tools"):
        result = await tool.call({}, CTX)
    assert result.startswith("error: tool crm could not reach its service (")
    assert "t0k" not in result and "t0k" not in caplog.text


async def test_webhooks_share_one_pool_and_reuse_connections(webhook_server: WebhookServer) -> None:
    first, second = webhook(webhook_server, "/json"), webhook(webhook_server, "/text")
    for tool in (first, second, first):
        await tool.call({}, CTX)
    ports = {r.peer_port for r in webhook_server.received}
    assert len(webhook_server.received) == 3 and len(ports) == 1, ports
    await aclose_tools()
    assert await first.call({}, CTX)  # a new pool after closing
    assert webhook_server.received[-1].peer_port not in ports
