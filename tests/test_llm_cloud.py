"""AnthropicLLM and GeminiLLM against protocol-faithful fake servers over real loopback TCP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from fake_llm_servers import (
    NOTES_TOOL_STREAM,
    PING,
    FakeLLMServer,
    a_end,
    a_error_body,
    a_event,
    a_message_start,
    a_text_block,
    a_text_reply,
    a_tool_block,
    g_chunk,
    g_error_body,
    g_event,
    g_text_reply,
)
from voxgate.providers import (
    ChatMessage,
    ConnectOptions,
    LLMDone,
    LLMEvent,
    ProviderError,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
    Usage,
    create,
    resilient_stream,
)
from voxgate.providers.llm.anthropic import AnthropicLLM
from voxgate.providers.llm.gemini import GeminiLLM
from voxgate.providers.secrets import MissingSecret

KEY = "sk-ant-test-5d1e8b2f"
GKEY = "AIza-test-0c9f7e3a1b"
LOOKUP = ToolSpec(
    "lookup_order",
    "Look an order up by its id.",
    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
)
HELLO = [ChatMessage.user("hi")]


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    fake = await FakeLLMServer().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def claude(server: FakeLLMServer) -> AsyncIterator[AnthropicLLM]:
    client = AnthropicLLM("claude-x", api_key=KEY, base_url=server.base_url, read_timeout=5.0)
    yield client
    await client.aclose()


@pytest.fixture
async def gemini(server: FakeLLMServer) -> AsyncIterator[GeminiLLM]:
    client = GeminiLLM("gemini-x", api_key=GKEY, base_url=server.base_url, read_timeout=5.0)
    yield client
    await client.aclose()


async def collect(events: AsyncIterator[LLMEvent]) -> list[LLMEvent]:
    async with aclosing(events):
        return [event async for event in events]


async def collect_until_error(events: AsyncIterator[LLMEvent]) -> tuple[list[LLMEvent], ProviderError]:
    got: list[LLMEvent] = []
    with pytest.raises(ProviderError) as info:
        async with aclosing(events):
            async for event in events:
                got.append(event)
    return got, info.value


CONVERSATION = [
    ChatMessage.system("You are a phone agent."),
    ChatMessage.assistant("Hello, this is Acme. How can I help?"),  # the agent speaks first
    ChatMessage.user("Where are my orders?"),
    ChatMessage.assistant(
        "Let me look.",
        tool_calls=[
            ToolCallEvent("call_1", "lookup_order", {"id": "A7"}),
            ToolCallEvent("call_2", "lookup_order", {"id": "B9"}),
        ],
    ),
    ChatMessage.system("Keep answers short."),
    ChatMessage.tool_result("call_1", '{"status":"shipped"}'),
    ChatMessage.user("Hello? Still there?"),  # the caller talked while the tools ran
    ChatMessage.tool_result("call_2", "not found"),
]


# --- Anthropic: the request -----------------------------------------------------------------


async def test_anthropic_request_is_exactly_the_wire_format(server: FakeLLMServer) -> None:
    llm = AnthropicLLM("claude-x", api_key=KEY, base_url=server.base_url, max_tokens=300, temperature=0.5)
    server.reply_sse(a_text_reply(["ok"]))
    try:
        await collect(llm.chat(CONVERSATION, [LOOKUP]))
    finally:
        await llm.aclose()
    (request,) = server.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "model": "claude-x",
        "max_tokens": 300,
        "stream": True,
        "system": "You are a phone agent.\n\nKeep answers short.",
        "messages": [
            {"role": "user", "content": "(call connected)"},
            {"role": "assistant", "content": "Hello, this is Acme. How can I help?"},
            {"role": "user", "content": "Where are my orders?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "lookup_order", "input": {"id": "A7"}},
                    {"type": "tool_use", "id": "call_2", "name": "lookup_order", "input": {"id": "B9"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": '{"status":"shipped"}'},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "not found"},
                    {"type": "text", "text": "Hello? Still there?"},
                ],
            },
        ],
        "tools": [
            {
                "name": "lookup_order",
                "description": "Look an order up by its id.",
                "input_schema": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                },
            }
        ],
        "temperature": 0.5,
    }


def test_anthropic_minimal_bodies() -> None:
    llm = AnthropicLLM(api_key=KEY)
    assert llm.url == "https://api.anthropic.com/v1/messages"
    assert llm.request_body(HELLO) == {
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    # only a system prompt (the agent's greeting is the first reply): a user turn opens it
    greeting = llm.request_body([ChatMessage.system("Greet the caller.")])
    assert greeting["messages"] == [{"role": "user", "content": "(call connected)"}]
    assert greeting["system"] == "Greet the caller."
    # consecutive user turns merge; empty messages vanish
    body = llm.request_body([ChatMessage.user("one"), ChatMessage.assistant(""), ChatMessage.user("two")])
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}
    ]


def test_anthropic_key_from_env_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingSecret, match="ANTHROPIC_API_KEY"):
        AnthropicLLM()
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    llm = AnthropicLLM()
    assert llm._headers["x-api-key"] == KEY
    assert KEY not in repr(llm)


# --- Anthropic: the stream ------------------------------------------------------------------


async def test_anthropic_the_notes_stream_byte_for_byte(server: FakeLLMServer, claude: AnthropicLLM) -> None:
    server.reply_sse([NOTES_TOOL_STREAM], split=[7, 1, 13, 2, 31])
    assert await collect(claude.chat(HELLO, [LOOKUP])) == [
        TextDelta("Let me check"),
        ToolCallEvent("toolu_1", "lookup_order", {"id": "A7"}),
        LLMDone(Usage(25, 42)),
    ]


async def test_anthropic_text_streamed_in_order_with_pings(
    server: FakeLLMServer, claude: AnthropicLLM
) -> None:
    pieces = ["Sure", ", your order", " A7 shipped", " on Monday", " — é ✓."]
    events = a_text_reply(pieces, input_tokens=31, output_tokens=17)
    events.insert(4, a_event(PING))
    server.reply_sse(events, split=[5, 17, 3])
    got = await collect(claude.chat(HELLO))
    assert got == [*(TextDelta(p) for p in pieces), LLMDone(Usage(31, 17))]


async def test_anthropic_tool_call_from_input_json_fragments(
    server: FakeLLMServer, claude: AnthropicLLM
) -> None:
    fragments = ["", '{"id"', ': "A', '7", "no', 'te": "rush é"}']
    events = [
        a_message_start(40),
        *a_text_block(0, ["Checking."]),
        *a_tool_block(1, "toolu_9", "lookup_order", fragments),
        *a_tool_block(2, "toolu_10", "end_call", []),  # no input at all → {}
        *a_end("tool_use", 55),
    ]
    server.reply_sse([a_event(e) for e in events], split=11)
    assert await collect(claude.chat(HELLO, [LOOKUP])) == [
        TextDelta("Checking."),
        ToolCallEvent("toolu_9", "lookup_order", {"id": "A7", "note": "rush é"}),
        ToolCallEvent("toolu_10", "end_call", {}),
        LLMDone(Usage(40, 55)),
    ]


async def test_anthropic_error_event_mid_stream_is_retryable(
    server: FakeLLMServer, claude: AnthropicLLM
) -> None:
    events = [a_message_start(), *a_text_block(0, ["Let me"])[:2]]
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    server.reply_sse([*(a_event(e) for e in events), a_event(error)], split=9)
    got, err = await collect_until_error(claude.chat(HELLO))
    assert got == [TextDelta("Let me")]
    assert err.retryable
    assert "Overloaded" in err.message and "overloaded_error" in err.message


async def test_anthropic_stream_cut_before_message_stop(server: FakeLLMServer, claude: AnthropicLLM) -> None:
    server.reply_sse([a_event(e) for e in [a_message_start(), *a_text_block(0, ["I was say"])[:2]]])
    got, err = await collect_until_error(claude.chat(HELLO))
    assert got == [TextDelta("I was say")]
    assert "no message_stop" in err.message and err.retryable


async def test_anthropic_refusal_is_not_retryable(server: FakeLLMServer, claude: AnthropicLLM) -> None:
    server.reply_sse([a_event(e) for e in [a_message_start(), *a_end("refusal", 3)]])
    _, err = await collect_until_error(claude.chat(HELLO))
    assert "refused" in err.message and not err.retryable


async def test_anthropic_401_names_the_cause_and_never_the_key(
    server: FakeLLMServer, claude: AnthropicLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reply_error(
        401,
        a_error_body("authentication_error", f"invalid x-api-key {KEY}"),  # a hostile echo
        headers={"request-id": "req_011"},
    )
    _, err = await collect_until_error(claude.chat(HELLO))
    assert not err.retryable
    assert "HTTP 401" in err.message and "invalid x-api-key ***" in err.message
    assert "authentication_error" in err.message and "check the API key" in err.message
    assert "req_011" in err.message
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in caplog.text


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (400, "invalid_request_error", False),
        (404, "not_found_error", False),
        (429, "rate_limit_error", True),
        (500, "api_error", True),
        (529, "overloaded_error", True),
    ],
)
async def test_anthropic_http_errors(
    server: FakeLLMServer, claude: AnthropicLLM, status: int, kind: str, retryable: bool
) -> None:
    headers = {"retry-after": "7"} if status == 429 else None
    server.reply_error(status, a_error_body(kind, f"the server says {kind}"), headers=headers)
    _, err = await collect_until_error(claude.chat(HELLO))
    assert err.retryable is retryable
    assert f"HTTP {status}" in err.message and f"the server says {kind} ({kind})" in err.message
    if status == 429:
        assert "retry after 7 s" in err.message


async def test_anthropic_retry_after_overloaded(server: FakeLLMServer, claude: AnthropicLLM) -> None:
    server.reply_error(529, a_error_body("overloaded_error", "Overloaded"))
    server.reply_sse(a_text_reply(["Second try."]))
    options = ConnectOptions(max_retries=1, backoff_base=0.01)
    got = await collect(resilient_stream(lambda: claude.chat(HELLO), options, provider=claude.name))
    assert got[0] == TextDelta("Second try.")
    assert len(server.requests) == 2


async def test_anthropic_barge_in_closes_the_connection(server: FakeLLMServer, claude: AnthropicLLM) -> None:
    gate = asyncio.Event()
    server.reply_sse(
        a_text_reply(["Let me", " tell you a story"]), gate_after=4, gate=gate, keep_alive=a_event(PING)
    )
    stream = claude.chat(HELLO)
    async with asyncio.timeout(2.0):
        assert await anext(stream) == TextDelta("Let me")  # out while the server still holds the rest
    await stream.aclose()  # the caller talked over the agent
    gate.set()
    async with asyncio.timeout(2.0):
        await server.disconnected.wait()


async def test_anthropic_from_the_registry(server: FakeLLMServer) -> None:
    llm = create("llm", "voxgate.providers.llm.anthropic:AnthropicLLM", api_key=KEY, base_url=server.base_url)
    server.reply_sse(a_text_reply(["ok"]))
    try:
        assert (await collect(llm.chat(HELLO)))[0] == TextDelta("ok")
    finally:
        await llm.aclose()


# --- Gemini: the request --------------------------------------------------------------------


async def test_gemini_request_is_exactly_the_wire_format(server: FakeLLMServer) -> None:
    llm = GeminiLLM(
        "gemini-x", api_key=GKEY, base_url=server.base_url, temperature=0.4, max_output_tokens=200
    )
    server.reply_sse(g_text_reply(["ok"]))
    try:
        await collect(llm.chat(CONVERSATION, [LOOKUP]))
    finally:
        await llm.aclose()
    (request,) = server.requests
    assert request.path == "/v1beta/models/gemini-x:streamGenerateContent"
    assert request.query == {"alt": "sse"}  # and the key is not in the URL
    assert request.headers["x-goog-api-key"] == GKEY
    assert request.headers["Content-Type"] == "application/json"
    placeholder = "skip_thought_signature_validator"  # calls this instance never streamed
    assert request.json() == {
        "contents": [
            {"role": "user", "parts": [{"text": "(call connected)"}]},
            {"role": "model", "parts": [{"text": "Hello, this is Acme. How can I help?"}]},
            {"role": "user", "parts": [{"text": "Where are my orders?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Let me look."},
                    {
                        "functionCall": {"name": "lookup_order", "args": {"id": "A7"}},
                        "thoughtSignature": placeholder,
                    },
                    {"functionCall": {"name": "lookup_order", "args": {"id": "B9"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "lookup_order", "response": {"status": "shipped"}}},
                    {"functionResponse": {"name": "lookup_order", "response": {"result": "not found"}}},
                    {"text": "Hello? Still there?"},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "You are a phone agent.\n\nKeep answers short."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "lookup_order",
                        "description": "Look an order up by its id.",
                        "parametersJsonSchema": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}},
                            "required": ["id"],
                        },
                    }
                ]
            }
        ],
        "generationConfig": {"temperature": 0.4, "maxOutputTokens": 200},
    }


def test_gemini_minimal_body_url_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(MissingSecret, match=r"GEMINI_API_KEY.*GOOGLE_API_KEY"):
        GeminiLLM()
    monkeypatch.setenv("GOOGLE_API_KEY", GKEY)
    llm = GeminiLLM()
    assert llm._headers["x-goog-api-key"] == GKEY and GKEY not in repr(llm)
    assert llm.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse"
    )
    assert llm.request_body(HELLO) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_gemini_orphan_tool_result_is_a_clear_error() -> None:
    llm = GeminiLLM(api_key=GKEY)
    with pytest.raises(ProviderError, match=r"call 'call_x'.*no assistant message") as info:
        llm.request_body([ChatMessage.user("hi"), ChatMessage.tool_result("call_x", "{}")])
    assert not info.value.retryable


# --- Gemini: the stream ---------------------------------------------------------------------


async def test_gemini_text_streamed_in_order_with_usage(server: FakeLLMServer, gemini: GeminiLLM) -> None:
    chunks = [
        g_chunk([{"text": "The caller wants an order.", "thought": True}]),  # a thought summary
        g_chunk([{"text": "Sure"}]),
        g_chunk([{"text": ", your order"}, {"text": " A7 shipped"}]),
        g_chunk([{"text": " — é ✓."}], finish="STOP", usage=(30, 8, 120)),
    ]
    server.reply_sse([g_event(c) for c in chunks], split=[3, 29, 8])
    assert await collect(gemini.chat(HELLO)) == [
        TextDelta("Sure"),
        TextDelta(", your order"),
        TextDelta(" A7 shipped"),
        TextDelta(" — é ✓."),
        LLMDone(Usage(30, 128)),  # thinking tokens are completion tokens
    ]


async def test_gemini_function_call_ids_and_signatures_round_trip(
    server: FakeLLMServer, gemini: GeminiLLM
) -> None:
    call = {"functionCall": {"name": "lookup_order", "args": {"id": "A7"}}, "thoughtSignature": "c2lnLTE="}
    parallel = {"functionCall": {"name": "lookup_order", "args": {"id": "B9"}}}
    reply = [g_event(g_chunk([{"text": "Checking."}, call, parallel], finish="STOP", usage=(20, 9)))]
    server.reply_sse(reply, split=17)
    server.reply_sse(reply)
    first = await collect(gemini.chat(HELLO, [LOOKUP]))
    again = await collect(gemini.chat(HELLO, [LOOKUP]))
    assert first == again  # the same reply to the same request: the same made-up ids
    text, a7, b9, done = first
    assert text == TextDelta("Checking.") and done == LLMDone(Usage(20, 9))
    assert isinstance(a7, ToolCallEvent) and isinstance(b9, ToolCallEvent)
    assert (a7.name, a7.arguments, b9.arguments) == ("lookup_order", {"id": "A7"}, {"id": "B9"})
    assert a7.id.startswith("call_") and a7.id != b9.id

    # a server-issued id is used as is, and goes back with the call and its response
    server_call = {"functionCall": {"id": "fc-7", "name": "end_call"}, "thoughtSignature": "c2lnLTI="}
    server.reply_sse([g_event(g_chunk([server_call], finish="STOP"))])
    (end_call, _) = await collect(gemini.chat(HELLO, [LOOKUP]))
    assert end_call == ToolCallEvent("fc-7", "end_call", {})

    server.reply_sse(g_text_reply(["Done."]))
    history = [
        *HELLO,
        ChatMessage.assistant("Checking.", tool_calls=[a7, b9]),
        ChatMessage.tool_result(a7.id, '{"status":"shipped"}'),
        ChatMessage.tool_result(b9.id, '{"status":"lost"}'),
        ChatMessage.assistant(tool_calls=[end_call]),
        ChatMessage.tool_result("fc-7", "[]"),
    ]
    await collect(gemini.chat(history, [LOOKUP]))
    contents = server.requests[-1].json()["contents"]
    assert contents[1:] == [
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {
                    "functionCall": {"name": "lookup_order", "args": {"id": "A7"}},
                    "thoughtSignature": "c2lnLTE=",
                },
                {"functionCall": {"name": "lookup_order", "args": {"id": "B9"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "lookup_order", "response": {"status": "shipped"}}},
                {"functionResponse": {"name": "lookup_order", "response": {"status": "lost"}}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "end_call", "args": {}, "id": "fc-7"},
                    "thoughtSignature": "c2lnLTI=",
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "end_call", "response": {"result": []}, "id": "fc-7"}}],
        },
    ]


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
async def test_gemini_withheld_reply_is_not_retryable(
    server: FakeLLMServer, gemini: GeminiLLM, reason: str
) -> None:
    chunks = [g_chunk([{"text": "Well,"}]), g_chunk([], finish=reason, usage=(5, 1))]
    server.reply_sse([g_event(c) for c in chunks])
    got, err = await collect_until_error(gemini.chat(HELLO))
    assert got == [TextDelta("Well,")]
    assert not err.retryable
    assert f"withheld the reply (finishReason={reason})" in err.message


async def test_gemini_blocked_prompt_and_malformed_call(server: FakeLLMServer, gemini: GeminiLLM) -> None:
    server.reply_sse([g_event({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}})])
    _, err = await collect_until_error(gemini.chat(HELLO))
    assert "blocked the prompt (blockReason=SAFETY)" in err.message and not err.retryable
    server.reply_sse([g_event(g_chunk([], finish="MALFORMED_FUNCTION_CALL"))])
    _, err = await collect_until_error(gemini.chat(HELLO))
    assert "finishReason=MALFORMED_FUNCTION_CALL" in err.message and err.retryable


async def test_gemini_error_mid_stream_and_cut_stream(server: FakeLLMServer, gemini: GeminiLLM) -> None:
    error = g_error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    server.reply_sse([g_event(g_chunk([{"text": "One"}])), g_event(error)])
    got, err = await collect_until_error(gemini.chat(HELLO))
    assert got == [TextDelta("One")]
    assert err.retryable and "The model is overloaded" in err.message and "UNAVAILABLE" in err.message
    server.reply_sse([g_event(g_chunk([{"text": "I was say"}]))])
    got, err = await collect_until_error(gemini.chat(HELLO))
    assert got == [TextDelta("I was say")] and "no finishReason" in err.message


async def test_gemini_bad_key_names_the_cause_and_never_the_key(
    server: FakeLLMServer, gemini: GeminiLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    message = f"API key not valid. Please pass a valid API key. ({GKEY})"  # a hostile echo
    server.reply_error(400, g_error_body(400, "INVALID_ARGUMENT", message, reason="API_KEY_INVALID"))
    _, err = await collect_until_error(gemini.chat(HELLO))
    assert not err.retryable
    assert "HTTP 400" in err.message and "API key not valid" in err.message
    assert "INVALID_ARGUMENT" in err.message and "check the API key" in err.message
    assert GKEY not in str(err) and GKEY not in caplog.text


@pytest.mark.parametrize(
    ("status", "retryable"), [(403, False), (404, False), (429, True), (500, True), (503, True)]
)
async def test_gemini_http_errors(
    server: FakeLLMServer, gemini: GeminiLLM, status: int, retryable: bool
) -> None:
    server.reply_error(status, [g_error_body(status, "SOME_STATUS", f"the server says {status}")])
    _, err = await collect_until_error(gemini.chat(HELLO))
    assert err.retryable is retryable
    assert f"HTTP {status}" in err.message and f"the server says {status} (SOME_STATUS)" in err.message


async def test_gemini_json_array_framing_is_understood(server: FakeLLMServer, gemini: GeminiLLM) -> None:
    server.reply_json(
        [g_chunk([{"text": "Hi"}]), g_chunk([{"text": " there."}], finish="STOP", usage=(3, 2))]
    )
    assert await collect(gemini.chat(HELLO)) == [TextDelta("Hi"), TextDelta(" there."), LLMDone(Usage(3, 2))]


async def test_gemini_barge_in_closes_the_connection(server: FakeLLMServer, gemini: GeminiLLM) -> None:
    gate = asyncio.Event()
    chunks = [g_event(g_chunk([{"text": "Let me"}])), *g_text_reply([" tell you", " a story"])]
    server.reply_sse(chunks, gate_after=1, gate=gate, keep_alive=b": keep-alive\r\n\r\n")
    stream = gemini.chat(HELLO)
    async with asyncio.timeout(2.0):
        assert await anext(stream) == TextDelta("Let me")
    await stream.aclose()
    gate.set()
    async with asyncio.timeout(2.0):
        await server.disconnected.wait()


async def test_gemini_from_the_registry(server: FakeLLMServer) -> None:
    llm = create("llm", "voxgate.providers.llm.gemini:GeminiLLM", api_key=GKEY, base_url=server.base_url)
    server.reply_sse(g_text_reply(["ok"]))
    try:
        assert (await collect(llm.chat(HELLO)))[0] == TextDelta("ok")
    finally:
        await llm.aclose()
