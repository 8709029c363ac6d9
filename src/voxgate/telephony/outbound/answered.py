"""What runs on an answered outbound call: the agent, a voicemail drop, or a hangup.

Order: Asterisk's `AMD()` verdict (when the call was dialled through it) decides first. A call
AMD did not mark as a person is screened: voxgate listens for up to `screen_s` for the callee's
first words ("Hello?" from a person, "…leave a message after the tone" from a machine) and
checks them with `looks_like_voicemail`. A person's first words are consumed there; the agent
then starts with its greeting, as a caller expects after saying hello.

A voicemail drop waits for the greeting to end (no speech for `DROP_QUIET_S`, at most
`DROP_MAX_WAIT_S`), speaks the request's `voicemail_drop` text and hangs up.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from voxgate.log import call_logger
from voxgate.telephony.session import CallSession

from .machines import looks_like_voicemail, machine_action, might_be_voicemail
from .request import AmdResult, OutboundRequest

log = logging.getLogger("voxgate.telephony.outbound")

DROP_QUIET_S = 2.0  # no new speech this long after the greeting: the beep has gone, speak
DROP_MAX_WAIT_S = 40.0  # longest greeting we wait out
SCREEN_MAX_UTTERANCES = 4


async def run_answered(
    session: CallSession,
    request: OutboundRequest,
    *,
    amd: AmdResult | None = None,
    screen_s: float = 3.0,
) -> str:
    """Run the answered call; returns what was done: "agent", "voicemail_drop" or "hangup"."""
    clog = call_logger(log.name, session.call_id)
    first_words = ""
    if amd != "human" and screen_s > 0 and _can_listen(session):
        first_words = await _screen(session, screen_s)
        if first_words:
            clog.info("outbound call: callee's first words %r", first_words)
    action = machine_action(request, amd=amd, transcript=first_words or None)
    if action == "hangup":
        clog.info("outbound call: answering machine and no voicemail_drop set; hanging up")
        await session.hangup("answering machine")
    elif action == "voicemail_drop":
        await drop_voicemail(session, request.voicemail_drop or "")
    else:
        await _run_talker(session, request)
    return action


async def _screen(session: CallSession, screen_s: float) -> str:
    """The callee's opening words: one utterance, or more while they hint at a greeting ("Hi,
    you've reached Sam." is followed by "leave a message…"); a person's "Hello?" ends it."""
    heard = await session.listen(timeout_s=screen_s)
    words = [heard] if heard else []
    while words and len(words) < SCREEN_MAX_UTTERANCES:
        text = " ".join(words)
        if looks_like_voicemail(text) or not might_be_voicemail(text):
            break
        more = await session.listen(timeout_s=DROP_QUIET_S)
        if not more:
            break
        words.append(more)
    return " ".join(words)


async def drop_voicemail(session: CallSession, text: str) -> None:
    """Wait out the greeting and its beep, leave `text`, hang up."""
    clog = call_logger(log.name, session.call_id)
    if _can_listen(session):
        started = time.monotonic()
        while not session.ended and time.monotonic() - started < DROP_MAX_WAIT_S:
            if not await session.listen(timeout_s=DROP_QUIET_S):
                break  # quiet for DROP_QUIET_S: the greeting and its beep are over
    if session.ended:
        return
    clog.info("outbound call: leaving the voicemail message (%d chars)", len(text))
    await session.say(text)
    await session.hangup("voicemail left")


def _can_listen(session: CallSession) -> bool:
    return session.stt is not None and session.vad_factory is not None


async def _run_talker(session: CallSession, request: OutboundRequest) -> None:
    handler: Any = request.handler
    if handler is not None:
        await handler(session)
    else:
        assert request.agent is not None  # OutboundRequest checks one of them is set
        await session.run_agent(request.agent)
