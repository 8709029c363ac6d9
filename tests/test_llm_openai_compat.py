"""OpenAICompatibleLLM against a protocol-faithful fake server over real loopback TCP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from fake_openai import FakeOpenAI, RawHTTPServer, chunk, text_reply, usage_chunk
from voxgate.agent.sentences import sentences
from voxgate.providers import (
    ChatMessage,
    ConnectOptions,
    LLMDone,
    LLMEvent,
    ProviderError,
    ProviderTimeout,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
    Usage,
    create,
    resilient_stream,
)
from voxgate.providers.llm import OpenAICompatibleLLM
from voxgate.providers.llm.openai_compat import chat_completions_url

KEY = "sk-test-7f3a9c"
LOOKUP = ToolSpec(
    "lookup_order",
    "Look an order up by its id.",
    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
)
HELLO = [ChatMessage.user("hi")]


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def llm(server: FakeOpenAI) -> AsyncIterator[OpenAICompatibleLLM]:
    client = OpenAICompatibleLLM(server.base_url, "fake-model", read_timeout=5.0)
    yield client
    await client.aclose()


async def collect(events: AsyncIterator[LLMEvent]) -> list[LLMEvent]:
    async with aclosing(events):
        return [event async for event in events]


def text_of(events: list[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- the request ------------------------------------------------------------------------------


async def test_request_body_and_headers_are_exactly_the_wire_format(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    llm = OpenAICompatibleLLM(
        server.base_url,
        "gpt-4o-mini",
        api_key_env="FAKE_LLM_KEY",
        temperature=0.7,
        max_tokens=300,
        headers={"X-Title": "voxgate tests"},
    )
    server.reply_sse(text_reply(["Shipped."]))
    messages = [
        ChatMessage.system("You are a phone agent."),
        ChatMessage.user("Where is my order?"),
        ChatMessage.assistant(tool_calls=[ToolCallEvent("call_1", "lookup_order", {"id": "A7"})]),
        ChatMessage.tool_result("call_1", '{"status":"shipped"}'),
        ChatMessage.assistant("It shipped yesterday."),
        ChatMessage.user("Thanks, é ✓"),
    ]
    try:
        await collect(llm.chat(messages, [LOOKUP]))
    finally:
        await llm.aclose()
    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["X-Title"] == "voxgate tests"
    assert request.json() == json.loads(
        """
        {"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
         "messages": [{"role": "system", "content": "You are a phone agent."},
           {"role": "user", "content": "Where is my order?"},
           {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
              "function": {"name": "lookup_order", "arguments": "{\\"id\\":\\"A7\\"}"}}]},
           {"role": "tool", "tool_call_id": "call_1", "content": "{\\"status\\":\\"shipped\\"}"},
           {"role": "assistant", "content": "It shipped yesterday."},
           {"role": "user", "content": "Thanks, é ✓"}],
         "tools": [{"type": "function", "function": {"name": "lookup_order",
                    "description": "Look an order up by its id.",
                    "parameters": {"type": "object", "properties": {"id": {"type": "string"}},
                                   "required": ["id"]}}}],
         "tool_choice": "auto", "temperature": 0.7, "max_tokens": 300}
        """
    )
    assert "é ✓" in request.body.decode("utf-8")  # UTF-8 on the wire, not \\u escapes


async def test_minimal_request_has_no_optional_fields(server: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    server.reply_sse(text_reply(["ok"]))
    await collect(llm.chat(HELLO))
    (request,) = server.requests
    assert request.json() == {
        "model": "fake-model",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": True},
    }
    assert "Authorization" not in request.headers


def test_base_url_forms() -> None:
    assert chat_completions_url("https://api.openai.com/v1") == "https://api.openai.com/v1/chat/completions"
    assert chat_completions_url("https://api.groq.com/openai/v1/") == (
        "https://api.groq.com/openai/v1/chat/completions"
    )
    assert chat_completions_url("http://localhost:11434") == "http://localhost:11434/v1/chat/completions"
    assert chat_completions_url("http://h:8080/v1/chat/completions") == "http://h:8080/v1/chat/completions"
    with pytest.raises(ValueError, match="http"):
        chat_completions_url("localhost:8000")


def test_the_key_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    llm = OpenAICompatibleLLM("http://127.0.0.1:9/v1", "m", api_key_env="FAKE_LLM_KEY")
    assert KEY not in repr(llm) and "***" in repr(llm)
    monkeypatch.delenv("FAKE_LLM_KEY")
    with pytest.raises(ValueError, match="FAKE_LLM_KEY"):
        OpenAICompatibleLLM("http://127.0.0.1:9/v1", "m", api_key_env="FAKE_LLM_KEY")


# --- streaming text -------------------------------------------------------------------------


@pytest.mark.parametrize("split", [None, 1, 7, [3, 50, 11, 200]])
@pytest.mark.parametrize("crlf", [False, True])
async def test_text_streams_through_any_chunking(
    server: FakeOpenAI, llm: OpenAICompatibleLLM, split: int | list[int] | None, crlf: bool
) -> None:
    pieces = ["Hel", "lo", "! Your order", " A7 ", "shipped", " — ✓ émis.", "\n", "Bye"]
    server.reply_sse(text_reply(pieces, usage=(9, 12)), crlf=crlf, keepalive=True, split=split)
    events = await collect(llm.chat(HELLO))
    assert [e.text for e in events if isinstance(e, TextDelta)] == pieces
    assert events[-1] == LLMDone(Usage(prompt_tokens=9, completion_tokens=12))
    assert sum(isinstance(e, LLMDone) for e in events) == 1


async def test_multibyte_characters_split_between_writes(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    text = "Grüße 😀 日本"
    server.reply_sse(text_reply([text], usage=None), split=1)
    events = await collect(llm.chat(HELLO))
    assert text_of(events) == text
    assert events[-1] == LLMDone(None)


async def test_notes_exact_bytes_tool_call_over_a_body_that_ends_at_close() -> None:
    """The notes' fake-server script, byte for byte (no chunked encoding: the body ends at EOF)."""
    lines = [
        b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"fake","choices":[{"index":0,'
        b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
        b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"fake","choices":[{"index":0,'
        b'"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"lookup_order",'
        b'"arguments":""}}]},"finish_reason":null}]}',
        b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"fake","choices":[{"index":0,'
        b'"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"id\\":"}}]},"finish_reason":null}]}',
        b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"fake","choices":[{"index":0,'
        b'"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"A7\\"}"}}]},"finish_reason":null}]}',
        b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"fake","choices":[{"index":0,'
        b'"delta":{},"finish_reason":"tool_calls"}]}',
        b"data: [DONE]",
    ]
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    raw += b"".join(line + b"\n\n" for line in lines)
    server = await RawHTTPServer(raw).start()
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{server.port}/v1", "fake")
    try:
        events = await collect(llm.chat([ChatMessage.user("Where is my order?")], [LOOKUP]))
    finally:
        await llm.aclose()
        await server.stop()
    assert events == [ToolCallEvent("call_1", "lookup_order", {"id": "A7"}), LLMDone(None)]
    assert server.received.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")


async def test_parallel_tool_calls_interleaved_after_text(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    def frag(index: int, **kw: object) -> dict[str, object]:
        return chunk({"tool_calls": [{"index": index, **kw}]})

    server.reply_sse(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Let me check both."}),
            frag(0, id="call_a", type="function", function={"name": "lookup_order", "arguments": ""}),
            frag(1, id="call_b", type="function", function={"name": "lookup_order", "arguments": ""}),
            frag(1, function={"arguments": '{"id": "B'}),
            frag(0, function={"arguments": '{"id"'}),
            frag(0, function={"arguments": ': "A7"}'}),
            frag(1, function={"arguments": '9"}'}),
            chunk({}, "tool_calls"),
            usage_chunk(30, 40),
        ],
        split=13,
    )
    events = await collect(llm.chat(HELLO, [LOOKUP]))
    assert events == [
        TextDelta("Let me check both."),
        ToolCallEvent("call_a", "lookup_order", {"id": "A7"}),
        ToolCallEvent("call_b", "lookup_order", {"id": "B9"}),
        LLMDone(Usage(30, 40)),
    ]


async def test_tool_call_without_arguments(server: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    server.reply_sse(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c", "type": "function", "function": {"name": "end_call"}}
                    ]
                }
            ),
            chunk({}, "tool_calls"),
        ]
    )
    assert await collect(llm.chat(HELLO)) == [ToolCallEvent("c", "end_call", {}), LLMDone(None)]


async def test_bad_tool_arguments_json_is_a_clear_error(server: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    server.reply_sse(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_9", "type": "function", "function": {"name": "lookup_order"}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"id": A7'}}]}),
            chunk({}, "tool_calls"),
        ]
    )
    with pytest.raises(ProviderError) as info:
        await collect(llm.chat(HELLO, [LOOKUP]))
    message = str(info.value)
    assert "lookup_order" in message and "call_9" in message and "not valid JSON" in message
    assert '{"id": A7' in message
    assert not info.value.retryable


async def test_reasoning_text_is_not_spoken(server: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    server.reply_sse(
        [
            chunk({"role": "assistant", "reasoning_content": "The user greets me."}),
            chunk({"reasoning": "so I greet back"}),
            chunk({"content": "Hello!"}),
            chunk({}, "stop"),
        ]
    )
    events = await collect(llm.chat(HELLO))
    assert events == [TextDelta("Hello!"), LLMDone(None)]


async def test_a_server_that_ignores_stream_true(server: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    server.reply_json(
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Checking.",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "lookup_order", "arguments": '{"id":"A7"}'},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
        }
    )
    assert await collect(llm.chat(HELLO)) == [
        TextDelta("Checking."),
        ToolCallEvent("c1", "lookup_order", {"id": "A7"}),
        LLMDone(Usage(5, 6)),
    ]


# --- endings and errors ---------------------------------------------------------------------


async def test_stream_closed_without_done_and_unfinished_is_an_error(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    server.reply_sse([chunk({"content": "I was say"})], done=False)
    events: list[LLMEvent] = []
    with pytest.raises(ProviderError, match="ended before the reply finished"):
        async with aclosing(llm.chat(HELLO)) as stream:
            async for event in stream:
                events.append(event)
    assert events == [TextDelta("I was say")]


async def test_stream_finished_but_without_done_is_accepted(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    server.reply_sse(text_reply(["Done."], usage=(1, 2)), done=False)
    assert await collect(llm.chat(HELLO)) == [TextDelta("Done."), LLMDone(Usage(1, 2))]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
async def test_http_errors(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, status: int, retryable: bool
) -> None:
    server.reply_error(
        status,
        {
            "error": {
                "message": f"Incorrect API key provided: {KEY}. Or something else went wrong.",
                "type": "invalid_request_error" if status < 500 else "server_error",
                "param": None,
                "code": "some_code",
            }
        },
        headers={"Retry-After": "3"} if status == 429 else None,
    )
    llm = OpenAICompatibleLLM(server.base_url, "m", api_key=KEY)
    try:
        with pytest.raises(ProviderError) as info:
            await collect(llm.chat(HELLO))
    finally:
        await llm.aclose()
    err = info.value
    assert err.retryable is retryable
    assert f"HTTP {status}" in err.message
    assert "Incorrect API key provided: ***. Or something else went wrong." in err.message
    assert KEY not in str(err) and KEY not in repr(err)
    if status == 429:
        assert "retry after 3 s" in err.message


async def test_ollama_style_error_body(server: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    server.reply_error(404, {"error": 'model "llama9" not found, try pulling it first'})
    with pytest.raises(ProviderError, match='HTTP 404 Not Found: model "llama9" not found') as info:
        await collect(llm.chat(HELLO))
    assert not info.value.retryable


async def test_error_chunk_mid_stream(server: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    server.reply_sse(
        [chunk({"content": "Hi"}), {"error": {"message": "The server had an error", "type": "server_error"}}],
        done=False,
    )
    with pytest.raises(ProviderError, match="error in the stream: The server had an error") as info:
        await collect(llm.chat(HELLO))
    assert info.value.retryable


async def test_connection_refused_is_retryable() -> None:
    llm = OpenAICompatibleLLM("http://127.0.0.1:9/v1", "m")  # discard port: nothing listens
    try:
        with pytest.raises(ProviderError, match="connecting to") as info:
            await collect(llm.chat(HELLO))
    finally:
        await llm.aclose()
    assert info.value.retryable


async def test_retry_before_first_token_through_resilient_stream(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    server.reply_error(503, {"error": {"message": "overloaded", "type": "server_error"}})
    server.reply_sse(text_reply(["Second try."]))
    options = ConnectOptions(max_retries=1, backoff_base=0.01)
    events = await collect(resilient_stream(lambda: llm.chat(HELLO), options, provider=llm.name))
    assert text_of(events) == "Second try."
    assert len(server.requests) == 2


# --- stalls and cancellation ----------------------------------------------------------------


async def test_watchdog_fires_on_a_stream_that_stalls_behind_keepalives(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    """Two tokens, then only `: keep-alive` comments: TCP is busy, the reply is dead."""
    server.reply_sse(text_reply(["One", " two", " three"]), stall_after=3)
    options = ConnectOptions(first_item_timeout=2.0, idle_timeout=0.3, max_retries=0)
    got: list[LLMEvent] = []
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"no item for 0\.3 s after 2 item"):
        async with aclosing(resilient_stream(lambda: llm.chat(HELLO), options, provider=llm.name)) as stream:
            async for event in stream:
                got.append(event)
    assert got == [TextDelta("One"), TextDelta(" two")]
    assert time.monotonic() - started < 2.0
    async with asyncio.timeout(2.0):  # we hung up, so the server stops generating
        await server.disconnected.wait()


async def test_barge_in_closing_the_iterator_closes_the_connection(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    gate = asyncio.Event()
    story = ["Let me", " tell you", *[" a very long story"] * 200, "."]
    server.reply_sse(text_reply(story), gate_after=2, gate=gate, split=64, delay=0.005)
    stream = llm.chat(HELLO)
    assert await anext(stream) == TextDelta("Let me")
    await stream.aclose()  # the caller talked over the agent
    gate.set()
    async with asyncio.timeout(2.0):
        await server.disconnected.wait()


async def test_connection_is_reused_after_a_complete_reply(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    server.reply_sse(text_reply(["one"]))
    server.reply_sse(text_reply(["two"]))
    assert text_of(await collect(llm.chat(HELLO))) == "one"
    assert text_of(await collect(llm.chat(HELLO))) == "two"
    first, second = server.requests
    assert first.peer == second.peer  # same client port: the keep-alive connection was pooled


# --- streaming into sentences ---------------------------------------------------------------


async def test_first_sentence_is_out_before_the_llm_finishes(
    server: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    gate = asyncio.Event()
    pieces = ["Sure", ", I can", " help with that", ". Your order", " A7 shipped", " on Monday", "."]
    server.reply_sse(text_reply(pieces), gate_after=5, gate=gate)  # holds after " Your order"

    async def text(events: AsyncIterator[LLMEvent]) -> AsyncIterator[str]:
        async with aclosing(events):
            async for event in events:
                if isinstance(event, TextDelta):
                    yield event.text

    async with aclosing(sentences(text(llm.chat(HELLO)))) as out:
        async with asyncio.timeout(2.0):
            first = await anext(out)
        assert first == "Sure, I can help with that."
        assert not gate.is_set()  # the LLM is still mid-reply
        gate.set()
        rest = [s async for s in out]
    assert rest == ["Your order A7 shipped on Monday."]


# --- registration ---------------------------------------------------------------------------


async def test_registered_as_openai_compatible(server: FakeOpenAI) -> None:
    llm = create("llm", "openai-compatible", base_url=server.base_url, model="fake")
    assert isinstance(llm, OpenAICompatibleLLM)
    server.reply_sse(text_reply(["ok"]))
    try:
        assert text_of(await collect(llm.chat(HELLO))) == "ok"
    finally:
        await llm.aclose()
