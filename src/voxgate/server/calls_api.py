"""The calls API: place, follow and cancel outbound calls over HTTP.

    POST   /calls        {"to": "+15551234567", "agent": "reminders", "voicemail_drop": "…"} → 202
    GET    /calls        queue figures and the recent calls
    GET    /calls/{id}   one call: status, attempts, cause
    DELETE /calls/{id}   cancel it (queued, ringing or talking)

Placing calls costs money and can be abused (toll fraud), so the API wants the bearer token of
`http.api_token` (`VOXGATE_API_TOKEN`); with none set, only clients on this machine may use it.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from voxgate.telephony.outbound import (
    OutboundCall,
    OutboundQueue,
    OutboundQueueClosed,
    OutboundQueueFull,
    OutboundRequest,
)

KEPT_CALLS = 10_000
_JSON_FIELDS = {
    "id",
    "to",
    "caller_id",
    "agent",
    "variables",
    "timeout_s",
    "max_attempts",
    "retry_after_s",
    "voicemail_drop",
}


def call_json(call: OutboundCall) -> dict[str, Any]:
    req = call.request
    outcome = call.outcome
    return {
        "id": call.id,
        "to": req.to,
        "endpoint": req.endpoint,
        "agent": req.agent,
        "status": call.status.value,
        "finished": call.finished,
        "attempts": call.attempts,
        "cause": call.cause,
        "amd": outcome.amd if outcome is not None else None,
        "channel_id": outcome.channel_id if outcome is not None else None,
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def add_calls_api(
    app: web.Application,
    queue: Callable[[], OutboundQueue | None],
    *,
    token: str | None,
    default_agent: str,
) -> None:
    """Mount the routes; `queue()` is None while outbound calls are off (no ARI)."""
    calls: OrderedDict[str, OutboundCall] = OrderedDict()

    def denied(request: web.Request) -> web.Response | None:
        if token is None:
            if _loopback(request):
                return None
            return _error(
                403,
                "the calls API is open to this machine only; set http.api_token "
                "(VOXGATE_API_TOKEN) and send 'Authorization: Bearer <token>'",
            )
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            return _error(401, "missing or wrong bearer token (http.api_token)")
        return None

    def guarded(
        handler: Callable[[web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def checked(request: web.Request) -> web.Response:
            refused = denied(request)
            return refused if refused is not None else await handler(request)

        return checked

    def running() -> OutboundQueue | web.Response:
        q = queue()
        if q is None:
            return _error(503, "outbound calls need ARI: set ari.url, ari.username and ari.password")
        return q

    async def place(request: web.Request) -> web.Response:
        q = running()
        if isinstance(q, web.Response):
            return q
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, 'the body must be a JSON object, e.g. {"to": "+15551234567"}')
        unknown = sorted(set(body) - _JSON_FIELDS)
        if unknown:
            return _error(
                400, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_JSON_FIELDS))}"
            )
        body.setdefault("agent", default_agent)
        try:
            outbound = OutboundRequest.model_validate(body)
            call = q.submit(outbound)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return _error(400, f"{where}: {first['msg']}")
        except ValueError as exc:  # a bad 'to', a duplicate id
            return _error(400, str(exc))
        except OutboundQueueFull as exc:
            return _error(429, str(exc))
        except OutboundQueueClosed as exc:
            return _error(503, str(exc))
        calls[call.id] = call
        while len(calls) > KEPT_CALLS:
            calls.popitem(last=False)
        return web.json_response(call_json(call), status=202)

    async def listing(request: web.Request) -> web.Response:
        q = running()
        if isinstance(q, web.Response):
            return q
        recent = [call_json(c) for c in list(calls.values())[-100:]]
        return web.json_response({"queue": dataclasses.asdict(q.stats), "calls": recent})

    async def one(request: web.Request) -> web.Response:
        call = calls.get(request.match_info["id"])
        if call is None:
            return _error(404, "no such outbound call (or too old)")
        return web.json_response(call_json(call))

    async def cancel(request: web.Request) -> web.Response:
        call = calls.get(request.match_info["id"])
        if call is None:
            return _error(404, "no such outbound call (or too old)")
        if call.finished:
            return _error(409, f"call {call.id} has already ended ({call.status.value})")
        call.cancel()
        return web.json_response(call_json(call))

    app.router.add_post("/calls", guarded(place))
    app.router.add_get("/calls", guarded(listing))
    app.router.add_get("/calls/{id}", guarded(one))
    app.router.add_delete("/calls/{id}", guarded(cancel))
