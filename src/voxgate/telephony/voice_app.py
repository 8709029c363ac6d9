"""`VoiceApp`: route each call to a Python handler or an agent, by dialed number, caller, UUID
or first Stasis argument.

    app = VoiceApp(tts=tts, stt=stt, vad_factory=vad_factory)

    @app.route("1000")
    async def main_menu(session: CallSession) -> None:
        await session.say("Press 1 for sales")
        if await session.listen_dtmf(5) == "1":
            await session.run_agent("sales")

    app.route("2000", agent="reception")

A VoiceApp is itself an `Agent` (`name`, `handle(call)`), so the server runs it like any other.
Dialed number, caller and args come from the ARI call context (`contexts(uuid)`, e.g. an
`AriCallRouter`'s `calls.get`); a dialplan-only AudioSocket call has only its UUID. Routes are
tried in the order they were added; every criterion a route gives must match.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from voxgate.agent.base import Agent, load_agent
from voxgate.providers.base import STT, TTS, VAD
from voxgate.transports.base import CallAudio

from .ari_media import MEDIA_KINDS
from .session import CallSession, NotSupported

log = logging.getLogger("voxgate.voice_app")

Handler = Callable[[CallSession], Awaitable[None]]


_PATTERN_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}


@lru_cache(maxsize=1024)
def number_pattern(pattern: str) -> re.Pattern[str]:
    """Asterisk's extension patterns: `_1XX`, `_NXXNXXXXXX`, `_+1.`, `_9[2-4]X!`. A pattern
    without the leading `_` matches only itself."""
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    out, rest = [], pattern[1:]
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == "[":
            end = rest.find("]", i)
            if end < 0:
                raise ValueError(f"route pattern {pattern!r}: '[' without ']'")
            body = rest[i + 1 : end]
            if not body or not re.fullmatch(r"[0-9*#+A-Za-z-]+", body):
                raise ValueError(f"route pattern {pattern!r}: bad class [{body}]")
            out.append(f"[{body}]")
            i = end + 1
            continue
        out.append(_PATTERN_CLASSES.get(ch.upper()) or re.escape(ch))
        i += 1
    return re.compile("".join(out))


def _number_matches(pattern: str | None, value: str) -> bool:
    return pattern is None or number_pattern(pattern).fullmatch(value) is not None


@dataclass(frozen=True)
class Route:
    dialed: str | None = None  # exact, or an Asterisk pattern such as _1XX
    caller: str | None = None  # exact, or a pattern
    uuid: str | None = None
    args: str | None = None
    handler: Handler | None = None
    agent: str | Agent | None = None
    media: str | None = None  # ARI calls: audiosocket / rtp / websocket; None = ari.media

    def matches(self, *, dialed: str, caller: str, uuid: str, args: tuple[str, ...]) -> bool:
        if self.uuid is not None and self.uuid != uuid:
            return False
        if not _number_matches(self.dialed, dialed) or not _number_matches(self.caller, caller):
            return False
        return self.args is None or (bool(args) and args[0] == self.args)

    @property
    def target(self) -> str:
        if self.handler is not None:
            return getattr(self.handler, "__name__", repr(self.handler))
        return self.agent if isinstance(self.agent, str) else getattr(self.agent, "name", "?")


class VoiceApp:
    """Routes calls; see the module docstring. Providers for sessions (`tts`, `stt`,
    `vad_factory`) default to those of `default_agent` when it has them (a `PipelineAgent`)."""

    def __init__(
        self,
        default_agent: str | Agent | None = None,
        *,
        name: str = "voice-app",
        tts: TTS | None = None,
        stt: STT | None = None,
        vad_factory: Callable[[], VAD] | None = None,
        agents: Mapping[str, Agent] | None = None,
        contexts: Callable[[str], Any] | None = None,
        ari: Any = None,
    ) -> None:
        self.name = name
        self.default_agent = default_agent
        self.agents: dict[str, Agent] = dict(agents or {})
        self.contexts = contexts
        self.ari = ari
        self.agent_loader: Callable[[str], Agent] = load_agent  # names not in `agents`
        self.originate_with: Callable[..., Any] | None = None  # set by `voxgate serve` with ARI
        self.routes: list[Route] = []
        self._default: Route | None = None
        if default_agent is not None:
            self._default = Route(agent=default_agent)
        provider_source = default_agent if not isinstance(default_agent, str) else None
        self.tts = tts or getattr(provider_source, "tts", None)
        self.stt = stt or getattr(provider_source, "stt", None)
        self.vad_factory = vad_factory or getattr(provider_source, "vad_factory", None)

    # --- registration --------------------------------------------------------------------------

    def route(
        self,
        dialed: str | None = None,
        *,
        caller: str | None = None,
        uuid: str | None = None,
        args: str | None = None,
        agent: str | Agent | None = None,
        media: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Add a route. `dialed` and `caller` are exact or Asterisk patterns (`_1XX`). With
        `agent=`, the route is added at once (the return value may be ignored); otherwise decorate
        the `async def handler(session)` to run. `media` picks the ARI media leg for its calls."""
        if dialed is None and caller is None and uuid is None and args is None:
            raise ValueError("route() needs dialed, caller, uuid or args; use default() for the rest")
        for pattern in (dialed, caller):
            if pattern is not None:
                number_pattern(pattern)  # a bad pattern fails here, not on the first call
        if media is not None and media not in MEDIA_KINDS:
            raise ValueError(f"route media {media!r}: use one of {', '.join(MEDIA_KINDS)}")
        criteria = {"dialed": dialed, "caller": caller, "uuid": uuid, "args": args, "media": media}
        if agent is not None:
            self.routes.append(Route(**criteria, agent=agent))
            return lambda handler: handler

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(**criteria, handler=handler))
            return handler

        return register

    def default(self, *, agent: str | Agent | None = None) -> Callable[[Handler], Handler]:
        """The route for calls no other route takes: a handler (decorate it) or an agent."""
        if agent is not None:
            self._default = Route(agent=agent)
            return lambda handler: handler

        def register(handler: Handler) -> Handler:
            self._default = Route(handler=handler)
            return handler

        return register

    def originate(self, to: str, **options: Any) -> Any:
        """Place an outbound call (`voxgate serve` with ARI): `agent=` a name or `handler=` an
        `async def handler(session)`, plus caller_id, variables, timeout_s, voicemail_drop,
        max_attempts. Returns the call's handle (`status`, `await wait()`, `cancel()`)."""
        if self.originate_with is None:
            raise NotSupported("originate() needs voxgate serve with ARI configured (ari.url, …)")
        return self.originate_with(to, **options)

    def attach_router(self, router: Any) -> None:
        """Look call contexts up in an `AriCallRouter` (and use its ARI client)."""
        self.contexts = router.calls.get
        if self.ari is None:
            self.ari = getattr(router, "client", None)

    async def prepare(self) -> None:
        """Let the agents known now (default, `agents`, routes) load their models; the server
        calls this at start."""
        default_route_agent = self._default.agent if self._default is not None else None
        routed = (r.agent for r in self.routes)
        known = [self.default_agent, default_route_agent, *self.agents.values(), *routed]
        agents = {id(a): a for a in known if a is not None and not isinstance(a, str)}
        for agent in agents.values():
            if (prepare := getattr(agent, "prepare", None)) is not None:
                await prepare()

    # --- routing -----------------------------------------------------------------------------

    def context_of(self, call: CallAudio) -> Any:
        ctx = getattr(call, "context", None)
        if ctx is None and self.contexts is not None:
            ctx = self.contexts(call.call_id)
        return ctx

    def find_route(self, call: CallAudio, context: Any = None) -> Route | None:
        ctx = context if context is not None else self.context_of(call)
        return self._route_for(ctx, call.call_id)

    def _route_for(self, ctx: Any, uuid: str) -> Route | None:
        facts = {
            "dialed": getattr(ctx, "exten", "") or "",
            "caller": getattr(ctx, "caller_number", "") or "",
            "uuid": uuid,
            "args": tuple(getattr(ctx, "args", ()) or ()),
        }
        return next((r for r in self.routes if r.matches(**facts)), self._default)

    def media_for(self, context: Any) -> str | None:
        """The media kind the route of an ARI call asks for (the router calls this at setup)."""
        route = self._route_for(context, getattr(context, "uuid", ""))
        return route.media if route is not None else None

    def resolve_agent(self, agent: str | Agent) -> Agent:
        if not isinstance(agent, str):
            return agent
        found = self.agents.get(agent)
        if found is None:
            found = self.agents[agent] = self.agent_loader(agent)
        return found

    def session(self, call: CallAudio, context: Any = None) -> CallSession:
        return CallSession(
            call,
            tts=self.tts,
            stt=self.stt,
            vad_factory=self.vad_factory,
            context=context,
            agents=self.resolve_agent,
            ari=self.ari,
        )

    async def handle(self, call: CallAudio) -> None:
        ctx = self.context_of(call)
        route = self.find_route(call, ctx)
        if route is None:
            log.warning(
                "call %s (dialed %r, caller %r): no route and no default; hanging up",
                call.call_id,
                getattr(ctx, "exten", ""),
                getattr(ctx, "caller_number", ""),
            )
            await call.hangup("no route")
            return
        log.info("call %s → %s", call.call_id, route.target)
        if route.handler is None:
            assert route.agent is not None
            await self.resolve_agent(route.agent).handle(call)
            return
        await self.session(call, ctx).run(route.handler, "handler returned")
