"""Agents: what talks to the caller once a call's audio is connected."""

from voxgate.agent.base import Agent, AgentError, load_agent

__all__ = ["Agent", "AgentError", "load_agent"]
