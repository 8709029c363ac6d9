"""HTTP side of the server: /health, /ready, /metrics."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from voxgate.server.metrics import build_registry, drain_durations
from voxgate.transports.audiosocket.server import AudioSocketServer


def build_http_app(
    audiosocket: AudioSocketServer,
    not_ready: Callable[[], str | None] = lambda: None,
    registry_hook: Callable[[CollectorRegistry], None] | None = None,
) -> web.Application:
    """`not_ready()` returns why the server should not get calls yet (e.g. models loading)."""
    registry, durations = build_registry(audiosocket)
    if registry_hook is not None:
        registry_hook(registry)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        active, cap = audiosocket.active_calls, audiosocket.options.max_calls
        body = {"accepting": audiosocket.accepting, "active_calls": active, "max_calls": cap}
        waiting = not_ready()
        ok = audiosocket.accepting and active < cap and waiting is None
        if not audiosocket.accepting:
            body["reason"] = "AudioSocket listener is not accepting calls"
        elif waiting is not None:
            body["reason"] = waiting
        elif not ok:
            body["reason"] = "at call capacity"
        return web.json_response(body, status=200 if ok else 503)

    async def outcome(request: web.Request) -> web.Response:
        """How the call ended, for the dialplan after AudioSocket() (plain text, for CURL())."""
        found = audiosocket.outcomes.get(request.match_info["call_id"].lower())
        if found is None:
            return web.Response(status=404, text="unknown")
        return web.Response(text=found)

    async def metrics(_: web.Request) -> web.Response:
        drain_durations(audiosocket, durations)
        resp = web.Response(body=generate_latest(registry))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        resp.charset = "utf-8"
        return resp

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/calls/{call_id}/outcome", outcome)
    return app
