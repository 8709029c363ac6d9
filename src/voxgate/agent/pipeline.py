"""`PipelineAgent`: an `Agent` built from an `AgentConfig` — VAD → STT → LLM or flow → TTS.

Providers are built once per agent (heavy models load once per process and are shared by
calls); a VAD, a responder and a runner are built per call. A provider in a fallback list that
cannot be built here (an extra not installed, a binary missing) is skipped with a warning as
long as another one can stand in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from voxgate.agent.base import AgentError
from voxgate.agent.config import AgentConfig, ProviderConfig, default_agent_config
from voxgate.agent.flow import FlowResponder
from voxgate.agent.llm_responder import LLMResponder
from voxgate.agent.responder import Conversation, Responder
from voxgate.agent.runner import ConversationRunner
from voxgate.agent.sentences import SentenceSplitter, for_speech
from voxgate.agent.tools import Tool, ToolContext, build_tools
from voxgate.providers import registry
from voxgate.providers.base import LLM, STT, TTS, VAD, ProviderError, provider_name, warm_up
from voxgate.providers.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from voxgate.providers.tts.cache import CachedTTS
from voxgate.providers.vad.gate import EnergyGatedVAD
from voxgate.transports.base import CallAudio

log = logging.getLogger("voxgate.agent")


def _options(kind: str, index: int, p: ProviderConfig, voice: str | None) -> dict[str, Any]:
    options = dict(p.options)
    if kind == "tts" and index == 0 and voice:
        options.setdefault("model_path" if p.name == "piper" else "voice", voice)
    return options


def build_providers(kind: str, configs: Sequence[ProviderConfig], voice: str | None = None) -> list[Any]:
    """Build each configured provider; skip (with a warning) those that cannot run here if
    another can. Raises `AgentError` naming every cause when none can."""
    built: list[Any] = []
    causes: list[str] = []
    for i, p in enumerate(configs):
        try:
            built.append(registry.create(kind, p.name, **_options(kind, i, p, voice)))
        except (registry.ProviderNotFound, ProviderError, OSError, TypeError, ValueError) as exc:
            causes.append(f"{kind}[{i}] {p.name}: {exc}")
    if not built and configs:
        raise AgentError(f"no {kind} provider can run here: " + "; ".join(causes))
    for cause in causes:
        log.warning("skipping %s; the next in the list stands in", cause)
    return built


class PipelineAgent:
    """Answers calls with the cascaded pipeline. Pass providers to override the configured ones
    (tests, benchmarks, or objects built in Python)."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        stt: STT | None = None,
        tts: TTS | None = None,
        llm: LLM | None = None,
        vad_factory: Callable[[], VAD] | None = None,
        tools: Sequence[Tool] = (),
    ) -> None:
        self.config = config
        self.name = config.name
        opts = config.connect
        self.stt: STT = stt or FallbackSTT(build_providers("stt", config.stt), options=opts)
        tts = tts or FallbackTTS(build_providers("tts", config.tts, config.voice), options=opts)
        self.tts: TTS = CachedTTS(tts, max_entries=config.tts_cache) if config.tts_cache else tts
        if llm is None and config.llm:
            llm = FallbackLLM(build_providers("llm", config.llm), options=opts)
        self.llm = llm
        if vad_factory is None:
            build_providers("vad", [config.vad])  # fail now, not on the first call
            vad_config = config.vad

            def vad_factory() -> VAD:
                return registry.create("vad", vad_config.name, **vad_config.options)

        floor = config.vad_floor_dbfs
        if floor is not None:
            inner_factory = vad_factory

            def vad_factory() -> VAD:
                return EnergyGatedVAD(inner_factory(), floor)

        self.vad_factory = vad_factory
        self.tools = [*build_tools(config.tools), *tools]
        self.runners: list[ConversationRunner] = []  # calls in progress
        self.on_runner: Callable[[ConversationRunner], None] | None = None

    def responder(self, call: CallAudio, greeting: str | None = None) -> Responder:
        """`greeting` replaces the configured one (a realtime agent's apology when it hands over)."""
        greeting = greeting if greeting is not None else self.config.greeting
        flow = None
        if self.config.flow is not None:
            flow = FlowResponder(self.config.flow, greeting=greeting)
        if self.llm is None:
            assert flow is not None  # AgentConfig guarantees llm or flow
            return flow
        return LLMResponder(
            self.llm,
            greeting=greeting,
            tools=self.tools,
            builtin_tools=self.config.builtin_tools,
            context=ToolContext(call_id=call.call_id),
            fallback=flow,
            transfer_targets=self.config.transfer_targets,
        )

    async def handle(self, call: CallAudio, greeting: str | None = None) -> None:
        runner = ConversationRunner(
            call,
            responder=self.responder(call, greeting),
            stt=self.stt,
            tts=self.tts,
            vad=self.vad_factory(),
            turn=self.config.turn,
            barge_in=self.config.barge_in,
            options=self.config.call,
            conversation=Conversation(self.config.prompt if self.llm is not None else None),
            agent_name=self.name,
        )
        self.runners.append(runner)
        if self.on_runner is not None:
            self.on_runner(runner)
        try:
            await runner.run()
        finally:
            self.runners.remove(runner)

    async def prepare(self) -> None:
        """Load models now (at server start) rather than on the first call, and synthesise the
        sentences the agent is sure to say."""
        try:  # the first VAD loads the shared model session: not on the event loop, mid-call
            await asyncio.to_thread(self.vad_factory)
        except Exception as exc:
            log.warning("loading the VAD failed: %s", exc)
        for provider in (self.stt, self.tts):
            try:
                await warm_up(provider)
            except Exception as exc:  # a provider that cannot warm up fails on its first call
                log.warning("warming up %s failed: %s", provider_name(provider), exc)
        if isinstance(self.tts, CachedTTS):
            texts = fixed_sentences(self.config)
            added = await self.tts.prefill(texts)
            log.info("pre-synthesised %d of %d fixed sentences", added, len(texts))


_SPOKEN_KEYS = frozenset(
    "say ask confirm fallback fallback_final anything_else silence slot_retry slot_rejected".split()
)


def _spoken(node: object, key: str = "") -> Iterator[str]:
    if isinstance(node, str):
        if key in _SPOKEN_KEYS and "{" not in node:
            yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _spoken(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _spoken(v, key)


def fixed_sentences(config: AgentConfig) -> list[str]:
    """The sentences, as the runner will hand them to TTS, of everything the agent says verbatim:
    the greeting, the flow's replies and questions without slot values, the call's fixed lines."""
    texts = [config.greeting or ""]
    if config.flow is not None:
        texts += _spoken(config.flow.model_dump())
    call = config.call
    texts += [call.error_message, call.silence_goodbye, call.max_call_goodbye]
    out: list[str] = []
    for text in texts:
        splitter = SentenceSplitter()
        for sentence in [*splitter.push(text), *splitter.flush()]:
            if spoken := for_speech(sentence):
                out.append(spoken)
    return list(dict.fromkeys(out))


def make_agent(config: AgentConfig) -> Any:
    """The agent a config describes: a `PipelineAgent`, or for mode: realtime a `RealtimeAgent`
    whose fallback is the pipeline the same config describes."""
    if config.mode != "realtime":
        return PipelineAgent(config)
    from voxgate.agent.realtime import RealtimeAgent

    return RealtimeAgent(config, build_providers("realtime", config.realtime), PipelineAgent(config))


def default_agent(**overrides: Any) -> PipelineAgent:
    """The offline default agent: Whisper tiny.en, Piper (espeak-ng fallback), Silero, the demo flow."""
    config = default_agent_config()
    if overrides:
        config = config.model_copy(update=overrides)
    return PipelineAgent(config)
