"""Answering machines: Asterisk AMD() variables, voicemail greetings in transcripts, what to do."""

from __future__ import annotations

import re
from typing import Literal

from voxgate.telephony.outbound.request import AmdResult, OutboundRequest

# --- answering machines -------------------------------------------------------------------------

_AMD_STATUS: dict[str, AmdResult] = {"HUMAN": "human", "MACHINE": "machine", "NOTSURE": "notsure"}


def amd_result(variables: dict[str, str]) -> AmdResult | None:
    """Map `AMD()`'s AMDSTATUS to human/machine/notsure; None when AMD did not decide.

    Asterisk sets AMDSTATUS to MACHINE, HUMAN, NOTSURE or HANGUP (the callee hung up during
    analysis), or to '' when AMD could not run; AMDCAUSE says why, e.g. 'INITIALSILENCE-2500-2500',
    'MAXWORDS-4-3', 'LONGGREETING-1500-1500', 'TOOLONG-5000' or 'NOAUDIODATA-5000' (NOTSURE).
    """
    status = (variables.get("AMDSTATUS") or "").strip().upper()
    return _AMD_STATUS.get(status)


def amd_cause(variables: dict[str, str]) -> str | None:
    """AMDCAUSE without its numbers: 'INITIALSILENCE-2500-2500' → 'INITIALSILENCE'."""
    cause = (variables.get("AMDCAUSE") or "").strip().upper()
    return cause.split("-", 1)[0] or None


# One strong phrase is enough; weak ones ("not available", "voicemail") are things a person may
# say too ("sorry, she's not available"), so it takes two of them.
_VOICEMAIL_STRONG = [
    re.compile(p)
    for p in (
        r"\bleave (?:me |us )?(?:a |your )?(?:brief |short |detailed |quick )?message\b",
        r"\bleave your name and (?:phone )?number\b",
        r"\b(?:after|at) the (?:tone|beep|signal)\b",
        r"\brecord your message\b",
        r"\bmail ?box (?:is full|has not been set up)\b",
        r"\bvoice ?mail ?box\b",
        r"\bvoice messaging system\b",
        r"\b(?:person|party|number|subscriber|customer) you (?:are calling|have called|have dialled"
        r"|have dialed|called|dialled|dialed)\b",
        r"\bwhen you (?:are|have) finished recording\b",
    )
]
_VOICEMAIL_WEAK = [
    re.compile(p)
    for p in (
        r"\b(?:not|unable to be) available\b",
        r"\bunavailable\b",
        r"\bvoice ?mail\b",
        r"\bmail ?box\b",
        r"\byou(?:ve| have)? reached\b",
        r"\b(?:cant|cannot|can not|unable to) (?:come to|get to|answer|take) (?:the phone|your call)\b",
        r"\b(?:get|call) (?:back to you|you back)\b",
        r"\bnot (?:here|in) right now\b",
        r"\baway from (?:the phone|my desk)\b",
    )
]


def _words(transcript: str) -> str:
    text = re.sub(r"['’`]", "", transcript.lower())
    return " ".join(re.findall(r"[a-z0-9]+", text))


def looks_like_voicemail(transcript: str) -> bool:
    """True when an opening transcript reads like a voicemail greeting ("…leave a message after the
    tone"). Case, punctuation and apostrophes do not matter."""
    text = _words(transcript)
    if any(p.search(text) for p in _VOICEMAIL_STRONG):
        return True
    return sum(1 for p in _VOICEMAIL_WEAK if p.search(text)) >= 2


def might_be_voicemail(transcript: str) -> bool:
    """A hint, not a verdict ("you've reached Sam"): worth hearing the next sentence."""
    text = _words(transcript)
    return any(p.search(text) for p in (*_VOICEMAIL_STRONG, *_VOICEMAIL_WEAK))


MachineAction = Literal["agent", "voicemail_drop", "hangup"]


def machine_action(
    request: OutboundRequest, *, amd: AmdResult | None = None, transcript: str | None = None
) -> MachineAction:
    """What to do once a call is answered: hand it to the agent, drop the voicemail text
    (`request.voicemail_drop`, then hang up), or hang up on a machine when no drop is set.

    AMD's 'notsure' and no result count as a person: a human hung up on is worse than an agent
    greeting a machine, and the transcript check catches most greetings a moment later.
    """
    machine = amd == "machine" or (transcript is not None and looks_like_voicemail(transcript))
    if not machine:
        return "agent"
    return "voicemail_drop" if request.voicemail_drop else "hangup"
