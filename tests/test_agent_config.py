"""Agent configuration: parsing, errors that name the field, `voxgate config check`, and a
`PipelineAgent` built from config by provider name, answering a simulated call."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from voxgate.agent.config import AgentConfig, ProviderConfig, default_agent_config
from voxgate.agent.pipeline import PipelineAgent, _options
from voxgate.agent.runner import ConversationRunner
from voxgate.cli import main
from voxgate.config import ConfigError, ServerConfig, load_config
from voxgate.providers.base import ChatMessage
from voxgate.providers.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from voxgate.providers.tts.cache import CachedTTS
from voxgate.testing import ScriptedTTS
from voxgate.testing.harness import SimulatedCall, tone

FLOW: dict[str, Any] = {
    "intents": {
        "hours": {
            "examples": ["what are your opening hours", "when are you open"],
            "say": "We're open nine to five.",
        }
    },
    "anything_else": None,
}


def agent(**fields: Any) -> AgentConfig:
    return AgentConfig.model_validate({"flow": FLOW, **fields})


class VoiceTTS(ScriptedTTS):
    """A scripted TTS that takes a voice, loaded as 'test_agent_config:VoiceTTS'."""

    def __init__(self, voice: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.voice = voice


# --- parsing ---------------------------------------------------------------------------------


def test_bare_names_single_values_and_lists_all_become_provider_lists() -> None:
    cfg = agent(stt="scripted", tts=["scripted", "espeak"], llm="scripted", vad="scripted")
    assert cfg.stt == [ProviderConfig(name="scripted")]
    assert cfg.tts == [ProviderConfig(name="scripted"), ProviderConfig(name="espeak")]
    assert cfg.llm == [ProviderConfig(name="scripted")]
    assert cfg.vad == ProviderConfig(name="scripted")


def test_a_mapping_puts_everything_but_the_name_into_options() -> None:
    cfg = agent(
        llm={"name": "openai-compatible", "base_url": "http://localhost:11434/v1", "model": "llama3.2"},
        tts=[{"name": "piper", "length_scale": 0.9}, "espeak"],
        stt={"name": "scripted", "options": {"transcripts": ["hi"]}},  # the explicit form
    )
    assert cfg.llm == [
        ProviderConfig(
            name="openai-compatible", options={"base_url": "http://localhost:11434/v1", "model": "llama3.2"}
        )
    ]
    assert cfg.tts[0].options == {"length_scale": 0.9} and cfg.tts[1] == ProviderConfig(name="espeak")
    assert cfg.stt == [ProviderConfig(name="scripted", options={"transcripts": ["hi"]})]


def test_defaults_work_offline() -> None:
    cfg = agent()
    assert [p.name for p in cfg.stt] == ["whisper"]
    assert [p.name for p in cfg.tts] == ["piper", "espeak"]
    assert cfg.vad.name == "silero" and cfg.llm == []
    assert cfg.builtin_tools == ["end_call", "transfer_call", "send_dtmf"]


def test_the_voice_shortcut_goes_to_the_first_tts_only() -> None:
    cfg = agent(
        stt={"name": "scripted"},
        tts=["test_agent_config:VoiceTTS", "test_agent_config:VoiceTTS"],
        vad="scripted",
        voice="amy",
    )
    built = PipelineAgent(cfg)
    assert isinstance(built.tts, CachedTTS) and isinstance(built.tts.tts, FallbackTTS)
    first, second = built.tts.tts.pool.providers
    assert (first.voice, second.voice) == ("amy", None)
    # For piper the voice is its model; an explicit option wins over the shortcut.
    assert _options("tts", 0, ProviderConfig(name="piper"), "en_US-amy") == {"model_path": "en_US-amy"}
    assert _options("tts", 0, ProviderConfig(name="x", options={"voice": "bob"}), "amy") == {"voice": "bob"}
    assert _options("stt", 0, ProviderConfig(name="x"), "amy") == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"flow": None}, "neither llm nor flow is set"),
        ({"stt": []}, "stt: at least one speech-to-text provider"),
        ({"tts": []}, "tts: at least one text-to-speech provider"),
    ],
)
def test_missing_essentials_are_explained(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        agent(**fields)


def test_unknown_fields_and_bad_values_are_located() -> None:
    with pytest.raises(ValidationError) as info:
        agent(greting="hi")
    assert [e["loc"] for e in info.value.errors()] == [("greting",)]
    with pytest.raises(ValidationError) as info:
        agent(builtin_tools=["end_call", "hang_up"])
    assert [e["loc"] for e in info.value.errors()] == [("builtin_tools", 1)]
    with pytest.raises(ValidationError) as info:
        agent(turn={"min_silence_ms": -5})
    assert [e["loc"] for e in info.value.errors()] == [("turn", "min_silence_ms")]


def test_the_default_agent_config_loads() -> None:
    cfg = default_agent_config()
    assert cfg.name == "default"
    assert cfg.flow is not None and cfg.flow.intents  # the offline demo answers with its flow
    assert cfg.greeting


# --- server config ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "voxgate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_server_config_names_its_agents_by_key_unless_named() -> None:
    config = ServerConfig.model_validate(
        {
            "agent": "reception",
            "agents": {"reception": {"flow": FLOW}, "sales": {"name": "sales-line", "flow": FLOW}},
        }
    )
    assert config.agents["reception"].name == "reception"
    assert config.agents["sales"].name == "sales-line"
    assert ServerConfig().agent == "default" and ServerConfig().agents == {}


def test_env_references_in_agent_fields_are_interpolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXGATE_TEST_GREETING", "Hello from the environment")
    monkeypatch.setenv("VOXGATE_TEST_MS", "650")
    monkeypatch.delenv("VOXGATE_TEST_UNSET", raising=False)
    path = write(
        tmp_path,
        """
        agents:
          reception:
            greeting: "${VOXGATE_TEST_GREETING}"
            prompt: "${VOXGATE_TEST_UNSET:-You are polite.}"
            turn: {min_silence_ms: ${VOXGATE_TEST_MS}}
            flow: {intents: {hi: {examples: [hello], say: Hi.}}}
        """,
    )
    reception = load_config(path).agents["reception"]
    assert reception.greeting == "Hello from the environment"
    assert reception.prompt == "You are polite."
    assert reception.turn.min_silence_ms == 650


def test_an_unset_env_reference_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOXGATE_TEST_UNSET", raising=False)
    path = write(tmp_path, "agents: {a: {greeting: '${VOXGATE_TEST_UNSET}', flow: {intents: {}}}}\n")
    with pytest.raises(ConfigError, match=r"\$\{VOXGATE_TEST_UNSET\} is used in the config but not set"):
        load_config(path)


def test_load_config_errors_name_the_agent_field(tmp_path: Path) -> None:
    path = write(tmp_path, "agents: {front: {turn: {min_silence_mss: 300}, flow: {intents: {}}}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "agents.front.turn.min_silence_mss: unknown field" in str(info.value)


# --- voxgate config check --------------------------------------------------------------------

GOOD = """
agent: reception
agents:
  reception:
    greeting: Thanks for calling.
    stt: scripted
    llm: {name: scripted, replies: ["Hello."]}
    tts: [scripted]
    vad: scripted
    tools:
      - {kind: python, name: to_json, function: "json:dumps", description: "Serialise a value"}
    flow:
      intents:
        hours: {examples: [what are your hours], say: Nine to five.}
"""


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_config_check_accepts_a_good_file_and_summarises_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    code, out, err = check(path, capsys)
    assert code == 0, err
    assert (
        "agent reception: stt scripted, scripted (flow as fallback), tts scripted, vad scripted, 1 tool(s)"
        in out
    )
    assert f"{path}: ok" in out and err == ""


def bad(good: str, old: str, new: str) -> str:
    assert old in good
    return good.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    stt: scripted\n",
            "    stt: [scripted, assemblyai]\n",
            [
                "agents.reception.stt[1]: no stt provider named 'assemblyai'",
                "pip install 'voxgate[assemblyai]'",
            ],
        ),
        (
            "    vad: scripted\n",
            "    vad: nosuchvad\n",
            ["agents.reception.vad: no vad provider named 'nosuchvad'", "available: ", "scripted"],
        ),
        (
            'function: "json:dumps"',
            'function: "voxgate_no_such_module:lookup"',
            ["agents.reception.tools[0].function: cannot import 'voxgate_no_such_module'"],
        ),
        (
            'function: "json:dumps"',
            'function: "json:no_such_function"',
            ["agents.reception.tools[0].function:", "has no 'no_such_function'"],
        ),
        (
            "    vad: scripted\n",
            "    vad: scripted\n    barge_in: {min_speech_mss: 100}\n",
            ["agents.reception.barge_in.min_speech_mss: unknown field"],
        ),
        ("agent: reception", "agent: receptoin", ["agent: 'receptoin' is neither defined under agents"]),
    ],
    ids=[
        "unknown provider",
        "unknown vad",
        "bad tool import",
        "bad tool attribute",
        "bad field",
        "agent",
    ],
)
def test_config_check_names_what_is_wrong_and_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: list[str]
) -> None:
    code, out, err = check(write(tmp_path, bad(GOOD, old, new)), capsys)
    assert code == 2
    assert "problem(s)" in err
    for fragment in expected:
        assert fragment in err, err
    assert ": ok" not in out


def test_config_check_accepts_an_agent_without_an_llm_when_it_has_a_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(
        write(tmp_path, bad(GOOD, '    llm: {name: scripted, replies: ["Hello."]}\n', "")), capsys
    )
    assert code == 0, err
    assert "agent reception: stt scripted, flow, tts scripted" in out


def test_config_check_reports_an_unset_env_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOXGATE_TEST_KEY", raising=False)
    path = write(
        tmp_path, bad(GOOD, 'replies: ["Hello."]', "replies: [\"Hello.\"], api_key: '${VOXGATE_TEST_KEY}'")
    )
    code, _, err = check(path, capsys)
    assert code == 2 and "VOXGATE_TEST_KEY" in err and "export VOXGATE_TEST_KEY=" in err


def test_config_check_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path / "nope.yaml", capsys)
    assert code == 2 and "cannot read config file" in err


# --- PipelineAgent end to end ----------------------------------------------------------------


def pipeline_config(**fields: Any) -> AgentConfig:
    base: dict[str, Any] = {
        "name": "test-line",
        "greeting": "Hello, this is the test line.",
        "stt": {"name": "scripted", "transcripts": ["what are your opening hours"]},
        "tts": {"name": "scripted", "ms_per_char": 10},
        "vad": "scripted",
        "flow": FLOW,
        "call": {"hangup_delay_ms": 0, "silence_reprompt_ms": None},
    }
    return AgentConfig.model_validate(yaml.safe_load(yaml.safe_dump({**base, **fields})))


async def run_call(agent: PipelineAgent) -> tuple[ConversationRunner, SimulatedCall]:
    runners: list[ConversationRunner] = []
    agent.on_runner = runners.append
    call = SimulatedCall()
    task = asyncio.create_task(agent.handle(call))
    await call.step()
    await call.until(call.agent_talking, 200)
    await call.until(lambda: not call.agent_talking(), 3000)
    await call.silence(200)
    await call.say(tone(600))
    await call.until(call.agent_talking, 1500)
    await call.until(lambda: not call.agent_talking(), 3000)
    assert agent.runners == runners  # in progress
    call.end()
    await asyncio.wait_for(task, 5)
    assert agent.runners == []
    return runners[0], call


async def test_a_pipeline_agent_from_config_answers_a_call_with_its_flow() -> None:
    built = PipelineAgent(pipeline_config())
    assert isinstance(built.stt, FallbackSTT) and built.llm is None
    runner, call = await run_call(built)
    assert runner.record.agent == "test-line"
    assert runner.record.transcript() == [
        ("agent", "Hello, this is the test line."),
        ("caller", "what are your opening hours"),
        ("agent", "We're open nine to five."),
    ]
    [tts] = built.tts.tts.pool.providers
    assert call.agent_audio_ms == sum(tts.duration_ms(t) for t in tts.texts)
    assert runner.conversation.messages[0].role != "system"  # no prompt without an LLM


async def test_a_pipeline_agent_with_an_llm_by_name_uses_the_prompt() -> None:
    built = PipelineAgent(
        pipeline_config(llm={"name": "scripted", "replies": ["Nine to five, weekdays."]}, prompt="Be brief.")
    )
    assert isinstance(built.llm, FallbackLLM)
    runner, _ = await run_call(built)
    [llm] = built.llm.pool.providers
    assert llm.calls[0][:2] == [
        ChatMessage.system("Be brief."),
        ChatMessage.assistant("Hello, this is the test line."),
    ]
    assert runner.record.transcript()[-1] == ("agent", "Nine to five, weekdays.")


async def test_a_pipeline_agent_whose_llm_fails_falls_back_to_its_flow() -> None:
    built = PipelineAgent(
        pipeline_config(llm={"name": "scripted", "broken": True}, connect={"max_retries": 0})
    )
    runner, _ = await run_call(built)
    assert runner.record.transcript()[-1] == ("agent", "We're open nine to five.")


def test_config_check_covers_realtime_agents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = bad(
        GOOD,
        "    stt: scripted\n",
        "    mode: realtime\n    realtime: [openai-realtime, deepgram-agent]\n    stt: scripted\n",
    )
    code, out, err = check(write(tmp_path, good), capsys)
    assert code == 0, err
    assert (
        "agent reception: realtime openai-realtime → deepgram-agent; fallback pipeline: stt scripted" in out
    )
    wrong = bad(good, "[openai-realtime, deepgram-agent]", "[openai-realtime, nosuchagent]")
    code, out, err = check(write(tmp_path, wrong), capsys)
    assert code == 2 and "agents.reception.realtime[1]: no realtime provider named 'nosuchagent'" in err
