"""The agent seam: one `Agent` object per server, `handle(call)` once per call.

Agents register by name under the `voxgate.agents` entry-point group and are imported only
when asked for.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from voxgate.transports.base import CallAudio

ENTRY_POINT_GROUP = "voxgate.agents"


@runtime_checkable
class Agent(Protocol):
    name: str

    async def handle(self, call: CallAudio) -> None:
        """Run one call. Return to hang up; the call's inbound stream ends when the caller leaves."""
        ...


class AgentError(LookupError):
    pass


def available_agents() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_agent(name: str, **options: Any) -> Agent:
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        raise AgentError(
            f"no agent named {name!r}; available: {', '.join(available_agents()) or 'none'} "
            f"(agents register under the '{ENTRY_POINT_GROUP}' entry-point group)"
        )
    factory = matches[0].load()
    agent = factory(**options)
    if not isinstance(agent, Agent):
        raise AgentError(f"entry point {name!r} ({matches[0].value}) did not build an Agent")
    return agent
