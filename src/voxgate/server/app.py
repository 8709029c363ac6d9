"""`voxgate serve`: one process, one event loop — AudioSocket listener and HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from voxgate.agent.base import Agent, AgentError, load_agent
from voxgate.agent.runner import ConversationRunner
from voxgate.config import ServerConfig, parse_hostport
from voxgate.server.calls_api import add_calls_api
from voxgate.server.http import build_http_app
from voxgate.server.metrics import AriCollector, TurnMetrics
from voxgate.telephony.ari import AriClient, AriEvents
from voxgate.telephony.ari_calls import AriCallRouter
from voxgate.telephony.ari_media import MediaSettings
from voxgate.telephony.ari_outbound import AriOriginator
from voxgate.telephony.outbound import OutboundCall, OutboundQueue, OutboundRequest
from voxgate.telephony.outbound.answered import run_answered
from voxgate.telephony.session import CallSession
from voxgate.transports.audiosocket.server import AudioSocketCall, AudioSocketServer

log = logging.getLogger("voxgate.server")


def build_agent(config: ServerConfig, app: str | None = None) -> Agent:
    """The agent `config.agent` names: one defined under `agents`, or a registered one. With
    `app` ("module:attr", a `VoiceApp` or a no-argument factory of one), that app instead; agent
    names its routes use are looked up under `agents` first."""
    if app is not None:
        return _load_app(config, app)
    if config.agent in config.agents:
        from voxgate.agent.pipeline import make_agent

        return make_agent(config.agents[config.agent])  # type: ignore[no-any-return]
    return load_agent(config.agent)


def _load_app(config: ServerConfig, spec: str) -> Agent:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AgentError(f"--app {spec!r}: expected MODULE:ATTR, e.g. myivr:app")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AgentError(f"--app {spec!r}: cannot load it: {exc}") from exc
    if not isinstance(obj, Agent) and callable(obj):
        obj = obj()
    if not isinstance(obj, Agent):
        raise AgentError(f"--app {spec!r} is a {type(obj).__name__}, not a VoiceApp (or an Agent)")
    if hasattr(obj, "agent_loader"):  # a VoiceApp: let its routes name agents from the config
        obj.agent_loader = lambda name: build_agent(config.model_copy(update={"agent": name}))
    return obj


class VoxgateServer:
    def __init__(self, config: ServerConfig, app: str | None = None) -> None:
        self.config = config
        self.agent = build_agent(config, app)
        self._prepare: asyncio.Task[None] | None = None

        self.ari_client: AriClient | None = None
        self.ari_events: AriEvents | None = None
        self.ari_router: AriCallRouter | None = None
        self.outbound: OutboundQueue | None = None
        self._ari_watch: asyncio.Task[None] | None = None
        self._named_agents: dict[str, Agent] = {config.agent: self.agent} if app is None else {}

        async def handle(call: AudioSocketCall) -> None:
            if self.ari_router is not None:  # an ARI call's media leg, or a dialplan-only call
                self.ari_router.attach_media(call)
            await self.run_call(call)

        self.audiosocket = AudioSocketServer(config.audiosocket, handle)
        self._runner: web.AppRunner | None = None
        self.http_sockets: list[tuple[str, int]] = []

    async def start(self) -> None:
        # Everything loaded so far lives for the whole process: keep it out of the collector's
        # generations so full collections stay short on the media path.
        gc.collect()
        gc.freeze()
        host, port = parse_hostport(self.config.audiosocket.listen, field="audiosocket.listen")
        await self.audiosocket.start(host, port)
        await self._start_ari()
        http_app = build_http_app(self.audiosocket, self._not_ready, self._add_turn_metrics)
        add_calls_api(
            http_app,
            lambda: self.outbound,
            token=self.config.http.api_token,
            default_agent=self.config.agent,
        )
        self._runner = web.AppRunner(http_app, access_log=None)
        await self._runner.setup()
        prepare = getattr(self.agent, "prepare", None)
        if prepare is not None:  # load models in the background: the listeners are up already
            self._prepare = asyncio.create_task(self._prepare_agent(prepare), name="agent-prepare")
        h_host, h_port = parse_hostport(self.config.http.listen, field="http.listen")
        # A campaign tool may open hundreds of connections at once: a short accept queue drops
        # SYNs and the client retries a second later.
        site = web.TCPSite(self._runner, h_host, h_port, reuse_address=True, backlog=1024)
        await site.start()
        server = site._server
        if server is not None:
            self.http_sockets = [s.getsockname()[:2] for s in server.sockets]  # type: ignore[union-attr]
        log.info(
            "HTTP on %s (/health /ready /metrics /calls); agent %r",
            ", ".join(f"{h}:{p}" for h, p in self.http_sockets),
            self.agent.name,
        )

    async def _start_ari(self) -> None:
        """With `ari:` set, answer Stasis calls. The events socket connects in the background
        and keeps retrying: Asterisk being down must not stop the AudioSocket path."""
        ari = self.config.ari
        if ari is None:
            return
        if not ari.media_host and ari.media != "websocket":
            log.error("ari.media_host is not set; ARI calls will not be answered")
            return
        port = self.audiosocket.sockets[0][1]
        self.ari_client = AriClient(ari.url, ari.username, ari.password, ari.app)
        self.ari_events = AriEvents(
            self.ari_client, subscribe_all=ari.subscribe_all, backoff_max=ari.reconnect_max_s
        )
        media = MediaSettings(
            kind=ari.media,
            host=ari.media_host or "",
            audiosocket_port=port,
            audiosocket_format=ari.media_format,
            rtp_format=ari.rtp_format,
            rtp_bind=ari.rtp_bind,
            websocket_format=ari.websocket_format,
        )
        self.ari_router = AriCallRouter(
            self.ari_client,
            self.ari_events,
            app=ari.app,
            media=media,
            transfer_context=ari.transfer_context,
            clock=self.audiosocket.clock,
            run_call=self.run_call,
            media_for=getattr(self.agent, "media_for", None),
            admit=self._has_room,
        )
        out = self.config.outbound
        originator = AriOriginator(
            self.ari_router, amd_context=out.amd_context if out.amd else None, caller_id=out.caller_id
        )
        self.outbound = OutboundQueue(
            originator.originate,
            calls_per_second=out.calls_per_second,
            max_concurrent=out.max_concurrent,
            max_queued=out.max_queued,
            endpoint_template=out.endpoint_template,
        )
        if hasattr(self.agent, "originate_with"):  # a VoiceApp: app.originate() places calls here
            self.agent.originate_with = self.originate
        attach_router = getattr(self.agent, "attach_router", None)
        if attach_router is not None:  # a VoiceApp routes on the ARI call context
            attach_router(self.ari_router)
        await self.ari_events.start(wait=False)
        self._ari_watch = asyncio.create_task(self._watch_ari(ari.url), name="ari-watch")

    def originate(
        self,
        to: str,
        *,
        agent: str | None = None,
        handler: Callable[..., Awaitable[None]] | None = None,
        caller_id: str | None = None,
        variables: dict[str, str] | None = None,
        timeout_s: float = 30.0,
        **options: Any,
    ) -> OutboundCall:
        """Queue an outbound call that runs `agent` (a name; default: the serving agent) or
        `handler(session)` when answered; `options` are further `OutboundRequest` fields
        (voicemail_drop, max_attempts, retry_after_s, id). Returns the queue's handle."""
        if self.outbound is None:
            raise RuntimeError("outbound calls need ARI: set ari.url, ari.username and ari.password")
        request = OutboundRequest(
            to=to,
            agent=agent if agent is not None or handler is not None else self.config.agent,
            handler=handler,
            caller_id=caller_id,
            variables=variables or {},
            timeout_s=timeout_s,
            **options,
        )
        return self.outbound.submit(request)

    @property
    def active_calls(self) -> int:
        """Calls with live media: AudioSocket connections plus ARI calls on RTP / WebSocket legs."""
        own = self.ari_router.own_legs if self.ari_router is not None else 0
        return self.audiosocket.active_calls + own

    def _has_room(self) -> bool:
        return self.active_calls < self.config.audiosocket.max_calls

    async def run_call(self, call: Any) -> None:
        """Run the agent on one call's media leg (AudioSocket, or an ARI call's RTP / WebSocket);
        an outbound call runs its request's agent or handler, after the machine checks."""
        ctx = getattr(call, "context", None)
        request = getattr(ctx, "outbound", None)
        if request is None:
            await self.agent.handle(call)
            return
        screen_s = self.config.outbound.screen_s
        await self.session(call, ctx).run(
            lambda session: run_answered(session, request, amd=ctx.amd, screen_s=screen_s),
            "outbound call done",
        )

    def session(self, call: Any, ctx: Any = None) -> CallSession:
        """A `CallSession` on `call` with the providers of the agent that answers calls."""
        make = getattr(self.agent, "session", None)
        if make is not None:  # a VoiceApp
            return make(call, ctx)  # type: ignore[no-any-return]
        return CallSession(
            call,
            tts=getattr(self.agent, "tts", None),
            stt=getattr(self.agent, "stt", None),
            vad_factory=getattr(self.agent, "vad_factory", None),
            context=ctx,
            agents=self.agent_named,
            ari=self.ari_client,
        )

    def agent_named(self, name: str) -> Agent:
        """An agent by name (`agents:` in the config, or registered), built once."""
        resolve = getattr(self.agent, "resolve_agent", None)
        if resolve is not None:
            return resolve(name)  # type: ignore[no-any-return]
        found = self._named_agents.get(name)
        if found is None:
            found = self._named_agents[name] = build_agent(self.config.model_copy(update={"agent": name}))
        return found

    async def _watch_ari(self, url: str) -> None:
        events = self.ari_events
        assert events is not None
        try:
            await events.wait_connected(events.connect_timeout)
        except TimeoutError:
            log.error(
                "ARI: cannot connect to Asterisk at %s (%s); retrying in the background. Calls sent "
                "to Stasis(%s) are dropped until then; AudioSocket calls are served as usual",
                url,
                events.last_disconnect_cause or "no answer",
                events.apps,
            )
            await events.connected.wait()
            log.info("ARI: connected to %s after all", url)

    async def _prepare_agent(self, prepare: Callable[[], Awaitable[None]]) -> None:
        await prepare()
        # The models are loaded for good: move them out of the collector's generations too, or
        # every full collection walks them (~35 ms with the offline stack) and stalls all calls.
        gc.collect()
        gc.freeze()
        log.info("agent %r ready", self.agent.name)

    def _not_ready(self) -> str | None:
        if self._prepare is not None and not self._prepare.done():
            return "loading models"
        if self.ari_events is not None and not self.ari_events.is_connected:
            return "ARI events socket not connected: calls sent to Stasis() are dropped"
        if not self._has_room():  # RTP / WebSocket legs count too
            return "at call capacity"
        return None

    def _add_turn_metrics(self, registry: CollectorRegistry) -> None:
        registry.register(AriCollector(self))
        if not hasattr(self.agent, "on_runner"):
            return
        turns = TurnMetrics(registry)

        def attach(runner: ConversationRunner) -> None:
            runner.record.timing_listeners.append(turns.observe)

        self.agent.on_runner = attach

    async def stop(self) -> None:
        if self.outbound is not None:
            await self.outbound.close(drain_s=2.0)
        if self._ari_watch is not None:
            self._ari_watch.cancel()
        if self.ari_events is not None:
            await self.ari_events.close()
        await self.audiosocket.stop()
        if self.ari_router is not None:
            await self.ari_router.close()
        if self.ari_client is not None:
            await self.ari_client.close()
        if self._prepare is not None:
            self._prepare.cancel()
        from voxgate.agent.tools import aclose_tools

        await aclose_tools()
        if self._runner is not None:
            await self._runner.cleanup()

    async def run_forever(self) -> None:
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
            log.info("shutting down: hanging up %d calls", self.audiosocket.active_calls)
        finally:
            await self.stop()


def run_event_loop(main: object, use_uvloop: bool = True) -> None:
    """Run a coroutine on uvloop when it is installed, else on the standard asyncio loop."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            log.info("uvloop not installed; using the asyncio loop")
        else:
            uvloop.run(main)  # type: ignore[arg-type]
            return
    asyncio.run(main)  # type: ignore[arg-type]
