"""Agent configuration: what an agent says, hears and speaks with, as validated YAML.

    agents:
      reception:
        greeting: "Thanks for calling Acme. How can I help?"
        prompt: "You are the receptionist of Acme Plumbing. ..."
        stt: whisper                      # a name, or {name: ..., <options>}, or a list (fallbacks)
        llm:                              # none: the flow below answers (no model needed)
          - {name: openai-compatible, base_url: "http://localhost:11434/v1", model: llama3.2}
        tts: [piper, espeak]
        voice: null                       # shortcut for the first TTS's voice option
        turn: {min_silence_ms: 500}
        barge_in: {min_speech_ms: 150}
        tools: [{kind: webhook, name: book, url: "https://…", description: "Book a visit"}]
        flow: {intents: {...}}

Everything has a default that works offline: Whisper tiny.en, Piper (espeak-ng as fallback),
Silero VAD, and the flow agent when no LLM is configured.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from voxgate.agent.flow_config import FlowConfig
from voxgate.agent.runner import RunnerOptions
from voxgate.agent.tools import ToolConfig
from voxgate.agent.turns import BargeInOptions, TurnOptions
from voxgate.providers.resilience import ConnectOptions

DEFAULT_PROMPT = (
    "You are a friendly, efficient phone agent. You are speaking on a phone call: answer in one or "
    "two short sentences of plain spoken English, with no lists, markdown or emoji. Spell out "
    "numbers the way you would say them. If the caller wants to end the call, say a short goodbye "
    "and call end_call. If you cannot help, offer to transfer them with transfer_call."
)

BuiltinTool = Literal["end_call", "transfer_call", "send_dtmf"]


class ProviderConfig(BaseModel):
    """One provider: its registered `name` and the options its constructor takes.

    In YAML either a bare name (`whisper`) or a mapping with `name` and options side by side
    (`{name: piper, length_scale: 0.9}`).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Registered provider name (see `voxgate providers`) or module:Class")
    options: dict[str, Any] = Field(default_factory=dict, description="Constructor options")

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "options" not in value:
            rest = {k: v for k, v in value.items() if k != "name"}
            return {"name": value.get("name"), "options": rest}
        return value


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class AgentConfig(BaseModel):
    """One agent of the cascaded pipeline kind (speech-to-speech agents come with their own mode)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("default", description="How calls and logs refer to this agent")
    mode: Literal["pipeline", "realtime"] = Field(
        "pipeline",
        description="pipeline: VAD → STT → LLM/flow → TTS; realtime: a speech-to-speech session "
        "(`realtime:` providers), with this agent's pipeline as its fallback",
    )
    realtime: list[ProviderConfig] = Field(
        default_factory=list,
        description="Speech-to-speech providers for mode: realtime, first choice first, e.g. "
        "{name: openai-realtime, model: gpt-realtime} or {name: deepgram-agent}",
    )
    realtime_apology: str = Field(
        "Sorry, I had a problem on my side. I'm still here: what were you saying?",
        description="Said by the pipeline when a realtime session dies mid-call and it takes over",
    )
    greeting: str | None = Field(None, description="Said when the call starts; none: wait for the caller")
    prompt: str = Field(DEFAULT_PROMPT, description="System prompt for the LLM (unused by the flow agent)")
    stt: list[ProviderConfig] = Field(
        default_factory=lambda: [ProviderConfig(name="whisper")],
        description="Speech-to-text, first choice first; the rest are fallbacks",
    )
    llm: list[ProviderConfig] = Field(
        default_factory=list, description="LLMs, first choice first. Empty: the flow answers"
    )
    tts: list[ProviderConfig] = Field(
        default_factory=lambda: [ProviderConfig(name="piper"), ProviderConfig(name="espeak")],
        description="Text-to-speech, first choice first; the rest are fallbacks",
    )
    vad: ProviderConfig = Field(
        default_factory=lambda: ProviderConfig(name="silero"), description="Voice activity detector"
    )
    vad_floor_dbfs: float | None = Field(
        -50.0,
        lt=0,
        description="Windows quieter than this are silence without running the VAD model (a phone "
        "line idles below -60 dBFS; speech is far above). Saves the model's CPU on quiet stretches. "
        "None: run the model on every window",
    )
    voice: str | None = Field(
        None, description="Voice of the first TTS (its `voice` option, or `model_path` for piper)"
    )
    turn: TurnOptions = Field(default_factory=TurnOptions, description="When the caller's turn ends")
    barge_in: BargeInOptions = Field(default_factory=BargeInOptions, description="Interruption policy")
    call: RunnerOptions = Field(default_factory=RunnerOptions, description="Silence, time limits, errors")
    connect: ConnectOptions = Field(
        default_factory=ConnectOptions, description="Provider timeouts, retries and watchdog"
    )
    tools: list[ToolConfig] = Field(default_factory=list, description="User tools the LLM may call")
    builtin_tools: list[BuiltinTool] = Field(
        default_factory=lambda: ["end_call", "transfer_call", "send_dtmf"],
        description="Call-control tools offered to the LLM",
    )
    tts_cache: int = Field(
        512,
        ge=0,
        description="Sentences whose audio is kept and replayed instantly (greeting, the flow's fixed "
        "replies, anything said before); 0: off",
    )
    transfer_targets: list[str] | None = Field(
        None,
        description="The only places transfer_call may send a caller (extensions, queues); None: "
        "any. Set it: a caller must not be able to talk the model into dialling elsewhere",
    )
    flow: FlowConfig | None = Field(
        None, description="Flow/FAQ agent: answers without an LLM, and when the LLM fails"
    )

    _as_lists = model_validator(mode="before")(
        classmethod(
            lambda cls, v: (
                {**v, **{k: _as_list(v[k]) for k in ("stt", "llm", "tts", "realtime") if k in v}}
                if isinstance(v, dict)
                else v
            )
        )
    )

    @model_validator(mode="after")
    def _check(self) -> AgentConfig:
        if not self.stt:
            raise ValueError("stt: at least one speech-to-text provider is needed, e.g. stt: whisper")
        if not self.tts:
            raise ValueError("tts: at least one text-to-speech provider is needed, e.g. tts: [piper, espeak]")
        if self.mode == "realtime" and not self.realtime:
            raise ValueError(
                "mode: realtime needs a speech-to-speech provider: realtime: openai-realtime "
                "(or deepgram-agent, or a list of them)"
            )
        if not self.llm and self.flow is None:
            if self.mode == "realtime":
                raise ValueError(
                    "mode: realtime takes its fallback from the pipeline, which has nothing to say: set "
                    "llm (e.g. {name: openai-compatible, model: gpt-4o-mini}) or a flow, so a call whose "
                    "realtime session fails goes on"
                )
            raise ValueError(
                "neither llm nor flow is set: configure an LLM (llm: {name: openai-compatible, ...}) "
                "or a flow (flow: {intents: ...}) so the agent has something to say"
            )
        return self


def default_agent_config() -> AgentConfig:
    """The offline default agent shipped with voxgate (agent/default_agent.yaml)."""
    text = resources.files("voxgate.agent").joinpath("default_agent.yaml").read_text()
    return AgentConfig.model_validate(yaml.safe_load(text))
