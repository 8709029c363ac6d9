"""`voxgate config check FILE`: everything that can be checked without taking a call."""

from __future__ import annotations

from voxgate.agent.config import AgentConfig
from voxgate.agent.tools import ToolError, build_tools
from voxgate.config import ConfigError, load_config
from voxgate.providers import registry


def _check_agent(key: str, agent: AgentConfig) -> list[str]:
    problems: list[str] = []
    for kind in ("stt", "llm", "tts", "realtime"):
        for i, p in enumerate(getattr(agent, kind)):
            try:
                registry.load(kind, p.name)
            except registry.ProviderNotFound as exc:
                problems.append(f"agents.{key}.{kind}[{i}]: {exc}")
    try:
        registry.load("vad", agent.vad.name)
    except registry.ProviderNotFound as exc:
        problems.append(f"agents.{key}.vad: {exc}")
    try:
        build_tools(agent.tools)
    except ToolError as exc:
        where = f"agents.{key}.{exc.field}" if exc.field else f"agents.{key}.tools"
        problems.append(f"{where}: {exc.message}")
    return problems


def _describe(key: str, agent: AgentConfig) -> str:
    brain = " → ".join(p.name for p in agent.llm) if agent.llm else "flow"
    if agent.llm and agent.flow is not None:
        brain += " (flow as fallback)"
    pipeline = (
        f"stt {' → '.join(p.name for p in agent.stt)}, {brain}, "
        f"tts {' → '.join(p.name for p in agent.tts)}, vad {agent.vad.name}, {len(agent.tools)} tool(s)"
    )
    if agent.mode == "realtime":
        sessions = " → ".join(p.name for p in agent.realtime)
        return f"agent {key}: realtime {sessions}; fallback pipeline: {pipeline}"
    return f"agent {key}: {pipeline}"


def check_config(path: str) -> tuple[list[str], list[str]]:
    """(problems, summary lines) for the config file at `path`."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return str(exc).splitlines(), []
    problems: list[str] = []
    summary: list[str] = []
    for key, agent in config.agents.items():
        problems += _check_agent(key, agent)
        summary.append(_describe(key, agent))
    if config.agent not in config.agents:
        try:
            from voxgate.agent.base import available_agents

            registered = available_agents()
            if config.agent not in registered:
                defined = ", ".join(config.agents) or "none"
                problems.append(
                    f"agent: {config.agent!r} is neither defined under agents ({defined}) nor a "
                    f"registered agent ({', '.join(registered)}); fix the name or add it under agents"
                )
        except ImportError:  # pragma: no cover
            pass
    return problems, summary
