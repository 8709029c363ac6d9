"""Built-in call-control tools: `end_call`, `transfer_call` and `send_dtmf`.

They are not run here: `builtin_action` turns a call of one into the responder's `Action`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from voxgate.agent.responder import Action, EndCall, SendDtmf, Transfer
from voxgate.agent.tools.base import ToolError, _json_type
from voxgate.providers.base import ToolCallEvent, ToolSpec

_DTMF = re.compile(r"[0-9*#A-D]+")
_MAX_DTMF_DIGITS = 64

BUILTIN_TOOL_NAMES = ("end_call", "transfer_call", "send_dtmf")


def builtin_tool_specs(
    names: Iterable[str] = BUILTIN_TOOL_NAMES, *, transfer_targets: Sequence[str] | None = None
) -> list[ToolSpec]:
    """The specs of the built-in tools in `names`, to offer the LLM.

    `transfer_targets`, when given, is the only places `transfer_call` may send a caller (an
    `enum` in the schema, enforced again by `builtin_action`): a caller cannot talk the model
    into dialling anywhere else.
    """
    specs: list[ToolSpec] = []
    for name in names:
        if name == "end_call":
            specs.append(_END_CALL)
        elif name == "transfer_call":
            target: dict[str, Any] = {
                "type": "string",
                "description": "Where to send the caller: an extension, queue or endpoint, "
                "e.g. '1000', 'support' or 'PJSIP/1000'.",
            }
            if transfer_targets is not None:
                target["enum"] = list(transfer_targets)
            specs.append(
                ToolSpec(
                    "transfer_call",
                    "Transfer the caller to a person or another line. First tell the caller in one "
                    "short sentence that you are transferring them; the transfer happens once they "
                    "have heard it.",
                    {"type": "object", "properties": {"target": target}, "required": ["target"]},
                )
            )
        elif name == "send_dtmf":
            specs.append(_SEND_DTMF)
        else:
            known = ", ".join(BUILTIN_TOOL_NAMES)
            raise ToolError(f"no built-in tool named {name!r}; built-in tools: {known}")
    return specs


_END_CALL = ToolSpec(
    "end_call",
    "End the phone call. Say a short goodbye in the same reply first; the line is hung up once "
    "the caller has heard it.",
    {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "description": "Why the call ends, for the call record."}
        },
    },
)
_SEND_DTMF = ToolSpec(
    "send_dtmf",
    "Press telephone keys on this call, e.g. to choose options in an automated phone menu on the "
    "other end. The keys are sent after the text before this call.",
    {
        "type": "object",
        "properties": {
            "digits": {
                "type": "string",
                "pattern": "^[0-9*#A-D]+$",
                "description": "The keys to press in order: 0-9, * and #, and A-D.",
            }
        },
        "required": ["digits"],
    },
)


def builtin_action(call: ToolCallEvent, *, transfer_targets: Sequence[str] | None = None) -> Action | None:
    """The `Action` for a call of a built-in tool; None when `call` is not one.

    Raises `ToolError` when the arguments are wrong; its message is written for the model, so a
    responder can hand it back as the tool result.
    """
    args = call.arguments if isinstance(call.arguments, Mapping) else {}
    if call.name == "end_call":
        reason = args.get("reason")
        if reason is None or reason == "":
            return EndCall()
        if not isinstance(reason, str):
            raise ToolError(f"end_call: 'reason' must be a string, not {_json_type(reason)}")
        return EndCall(reason)
    if call.name == "transfer_call":
        target = args.get("target")
        if not isinstance(target, str) or not target.strip():
            raise ToolError("transfer_call: 'target' is required: the extension, queue or endpoint")
        target = target.strip()
        if any(ch.isspace() or not ch.isprintable() for ch in target) or len(target) > 256:
            raise ToolError(f"transfer_call: {target[:80]!r} is not an extension, queue or endpoint")
        if transfer_targets is not None and target not in transfer_targets:
            allowed = ", ".join(transfer_targets)
            raise ToolError(f"transfer_call: {target!r} is not an allowed target; use one of: {allowed}")
        return Transfer(target)
    if call.name == "send_dtmf":
        digits = args.get("digits")
        if isinstance(digits, int) and not isinstance(digits, bool):
            digits = str(digits)  # models sometimes send keys as a number
        if not isinstance(digits, str) or not digits.strip():
            raise ToolError("send_dtmf: 'digits' is required: the keys to press, e.g. '1' or '1234#'")
        digits = "".join(digits.split())
        bad = next((ch for ch in digits if not _DTMF.fullmatch(ch.upper())), None)
        if bad is not None:
            raise ToolError(f"send_dtmf: {bad!r} is not a telephone key; use only 0-9, *, # and A-D")
        digits = digits.upper()
        if len(digits) > _MAX_DTMF_DIGITS:
            raise ToolError(f"send_dtmf: {len(digits)} keys is too many at once (at most {_MAX_DTMF_DIGITS})")
        return SendDtmf(digits)
    return None
