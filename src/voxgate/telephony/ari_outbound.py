"""Outbound calls through ARI: the `originate` the `OutboundQueue` dials with.

One attempt: `POST /channels` with our own channel id, either straight into `Stasis(APP,
outbound, <request id>)` or, with answering-machine detection, into a dialplan context that runs
`AMD()` first and then `Stasis()` (`voxgate asterisk-config` prints it). The router turns the
channel's StasisStart into a call (bridge, media leg, agent) and hands back its context; a
`ChannelDestroyed` before that says how the dial failed (Q.850 cause → busy / no answer /
failed). What runs on the answered call is `outbound.answered.run_answered`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

from .ari import AriError
from .ari_calls import VANISHED, AriCallRouter, CallContext
from .outbound import CallOutcome, OutboundRequest

log = logging.getLogger("voxgate.ari.outbound")


_BUSY = {17}  # user busy
_NO_ANSWER = {18, 19}  # no user responding, no answer
_CAUSE_NAMES = {
    1: "unallocated",
    3: "no_route",
    21: "rejected",
    22: "number_changed",
    27: "destination_out_of_order",
    28: "number_incomplete",
    34: "congestion",
    38: "network_out_of_order",
    41: "failure",
    42: "congestion",
    58: "codec_mismatch",
    127: "interworking",
}


def outcome_for_cause(cause: int, state: str = "") -> CallOutcome:
    """A dial that ended before it was answered, by its hangup cause (Q.850) and the channel's
    last state. Asterisk 20-22 report an originate that rang out with cause 0 ("Unknown") or 16
    (normal clearing) instead of 19 (asterisk/asterisk#1660, #963): after ringing, that is no
    answer."""
    if cause in _BUSY:
        return CallOutcome.busy()
    if cause in _NO_ANSWER or (cause in (0, 16) and state in ("Ring", "Ringing")):
        return CallOutcome.no_answer()
    if cause == VANISHED:
        return CallOutcome.failed("vanished while ARI was disconnected")
    return CallOutcome.failed(_CAUSE_NAMES.get(cause, f"cause_{cause}"))


class AriOriginator:
    """`originate(request)` for `OutboundQueue`; `amd_context` set → dial through `AMD()`."""

    def __init__(
        self,
        router: AriCallRouter,
        *,
        amd_context: str | None = None,
        caller_id: str | None = None,
    ) -> None:
        self.router = router
        self.amd_context = amd_context
        self.caller_id = caller_id

    async def originate(self, request: OutboundRequest) -> CallOutcome:
        router, client = self.router, self.router.client
        assert request.endpoint is not None  # the queue fills it from `to`
        channel_id = str(uuid.uuid4())
        amd = self.amd_context is not None
        answered = router.expect_answer(channel_id, request, amd=amd)
        variables = {**request.variables, "VOXGATE_OUTBOUND_ID": request.id}
        params: dict[str, Any] = {
            "caller_id": request.caller_id or self.caller_id,
            "ring_timeout": max(1, math.ceil(request.timeout_s)),
            "channel_id": channel_id,
            "variables": variables,
        }
        if amd:
            params.update(context=self.amd_context, extension="s", priority=1)
        else:
            params.update(app=router.app, app_args=["outbound", request.id])
        try:
            await client.originate(request.endpoint, **params)
        except AriError as exc:
            router.forget_dialing(channel_id)
            return CallOutcome.failed(f"ari_{exc.status or 'error'}: {exc}")
        except BaseException:
            router.forget_dialing(channel_id)
            await self._hangup_quietly(channel_id)
            raise
        try:
            result = await answered
        except BaseException:  # cancelled while ringing: do not leave the phone ringing
            router.forget_dialing(channel_id)
            await self._hangup_quietly(channel_id)
            raise
        if not isinstance(result, CallContext):
            return outcome_for_cause(*result)
        ctx = result
        return CallOutcome.answered(
            ctx.done.wait(),
            hangup=lambda: router.end_call(ctx, "normal"),
            channel_id=channel_id,
            amd=ctx.amd,  # type: ignore[arg-type]
        )

    async def _hangup_quietly(self, channel_id: str) -> None:
        try:
            await asyncio.shield(self.router.client.hangup(channel_id, "normal", missing_ok=True))
        except (AriError, asyncio.CancelledError) as exc:
            log.warning("could not hang up outbound channel %s: %s", channel_id, exc)
