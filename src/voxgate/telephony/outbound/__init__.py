"""Outbound-call queue: rate limit (calls started per second), concurrency cap, retries on busy or
no answer, cancellation and graceful close — independent of how a call is dialled.

The dialling itself is an injected coroutine `originate(request) -> CallOutcome` (the ARI client
provides one); this module only decides *when* to dial and what to do with the outcome. It also
holds the answering-machine helpers: `amd_result` for Asterisk's `AMD()` channel variables,
`looks_like_voicemail` for transcripts, and `machine_action` to decide between the agent, a
voicemail drop and a hangup.
"""

from voxgate.telephony.outbound.machines import amd_cause, amd_result, looks_like_voicemail, machine_action
from voxgate.telephony.outbound.queue import OutboundCall, OutboundQueue, OutboundStats
from voxgate.telephony.outbound.rate import TokenBucket
from voxgate.telephony.outbound.request import (
    FINAL_STATUSES,
    AmdResult,
    CallOutcome,
    CallStatus,
    OutboundQueueClosed,
    OutboundQueueFull,
    OutboundRequest,
    dial_endpoint,
)

__all__ = [
    "FINAL_STATUSES",
    "AmdResult",
    "CallOutcome",
    "CallStatus",
    "OutboundCall",
    "OutboundQueue",
    "OutboundQueueClosed",
    "OutboundQueueFull",
    "OutboundRequest",
    "OutboundStats",
    "TokenBucket",
    "amd_cause",
    "amd_result",
    "dial_endpoint",
    "looks_like_voicemail",
    "machine_action",
]
