"""Tool calls and call-control actions, shared by the pipeline and the realtime bridge.

`run_tool()` answers one tool call: a built-in call-control tool becomes its `Action` (the result
"done", or the `ToolError` for the model), a user tool runs. `send_dtmf()`, `play_out()` and
`hang_up()` carry the actions out on the call: keys on the call's own method or as in-band tones,
the words before a hang-up or transfer heard to their end, then the hang-up or the transfer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from voxgate.agent.record import CallRecord
from voxgate.agent.responder import Action, EndCall, Transfer
from voxgate.agent.tools import Tool, ToolContext, ToolError, builtin_action
from voxgate.audio.dtmf import dtmf_tones
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.audio.pacer import OutboundPacer
from voxgate.providers.base import ToolCallEvent
from voxgate.transports.base import CallAudio


async def run_tool(
    call: ToolCallEvent,
    *,
    builtin: Collection[str],
    tools: Mapping[str, Tool],
    context: ToolContext,
    transfer_targets: Sequence[str] | None = None,
) -> tuple[str, Action | None]:
    """(the result for the model, the action to take) for one tool call."""
    if call.name in builtin:
        try:
            action = builtin_action(call, transfer_targets=transfer_targets)
        except ToolError as exc:
            return f"error: {exc}", None
        if action is not None:
            return "done", action
    tool = tools.get(call.name)
    if tool is None:
        return f"error: there is no tool named {call.name!r}", None
    return await tool.call(call.arguments, context), None


async def send_dtmf(call: CallAudio, record: CallRecord, digits: str) -> float:
    """Press `digits` on the call: its own method when it has one, else in-band tones written to
    its output. Returns the ms of tones written (0 when sent out of band)."""
    record.event("send_dtmf", digits=digits)
    send = getattr(call, "send_dtmf", None)
    if send is not None:
        await send(digits)
        return 0.0
    out = call.output
    rate = out.wire_format.sample_rate
    tones = AudioFrame(dtmf_tones(digits, rate), AudioFormat(Encoding.PCM16, rate))
    out.write(tones)
    return tones.duration_ms


async def play_out(out: OutboundPacer, delay_s: float) -> None:
    """Let everything written so far be heard, then pause `delay_s` so the last words are not
    clipped (before a hang-up or a transfer)."""
    out.flush()
    await out.when_played_out()
    await asyncio.sleep(delay_s)


async def hang_up(
    call: CallAudio,
    record: CallRecord,
    action: EndCall | Transfer,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """End the call (`EndCall`) or hand it to `action.target` (`Transfer`), recording why."""
    if isinstance(action, EndCall):
        record.end_reason = action.reason
        record.event("end_call", reason=action.reason)
        await call.hangup(action.reason)
        return
    record.end_reason = f"transferred to {action.target}"
    record.event("transfer", target=action.target)
    transfer = getattr(call, "transfer", None)
    if transfer is not None:
        await transfer(action.target)
        return
    # AudioSocket alone cannot redirect a channel: ending the leg makes the dialplan continue at
    # its next priority, where the operator's Dial()/Queue() lives.
    log.info("transfer to %s: ending the AudioSocket leg; the dialplan continues", action.target)
    await call.hangup(f"transfer to {action.target}")
