"""What a call leaves behind: its turns (who said what, what was heard) and per-turn timings.

Every entry is logged with the call id the moment it happens and kept on the `CallRecord`, so
a store can write it as it happens (nothing said is lost if the process dies later) and tests
and benchmarks can read it back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class TurnTiming:
    """Latency of one agent reply, in ms from the end-of-turn decision (`decided_at`).

    `endpointing_ms` is the silence the turn detector waited after the caller's last speech
    before deciding the turn was over; `voice_to_voice_ms` adds it to `first_frame_out_ms`, so it
    runs from the true end of the caller's speech to the first reply audio on the wire.
    Fields stay None for stages a turn did not reach (e.g. interrupted before any audio).
    """

    turn: int
    decided_at: float  # time.monotonic() of the end-of-turn decision
    endpointing_ms: float = 0.0
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_audio_ms: float | None = None
    first_frame_out_ms: float | None = None
    source: Literal["speech", "dtmf", "silence", "greeting"] = "speech"
    early_stt: bool = False  # the transcript was started before the endpoint and was ready early

    def mark(self, stage: str) -> None:
        """Set `stage` (an attribute name ending in _ms) to now, if not set yet."""
        if getattr(self, stage) is None:
            setattr(self, stage, (time.monotonic() - self.decided_at) * 1000)

    @property
    def voice_to_voice_ms(self) -> float | None:
        if self.first_frame_out_ms is None:
            return None
        return self.endpointing_ms + self.first_frame_out_ms

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("decided_at")
        out["voice_to_voice_ms"] = self.voice_to_voice_ms
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


@dataclass
class TurnEntry:
    """One utterance in the call: the caller's transcript or keys, or what the agent said.

    For the agent, `text` is what it meant to say and `heard` what the caller heard before
    cutting in (equal unless `interrupted`)."""

    role: Literal["caller", "agent", "event"]
    text: str
    at: float = field(default_factory=time.time)
    heard: str | None = None
    interrupted: bool = False
    timing: TurnTiming | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "text": self.text, "at": round(self.at, 3)}
        if self.role == "agent":
            out["heard"] = self.heard
            out["interrupted"] = self.interrupted
        if self.timing is not None:
            out["timing"] = self.timing.as_dict()
        if self.meta:
            out["meta"] = self.meta
        return out


class CallRecord:
    """The running record of one call; `listeners` get each entry as it is added."""

    def __init__(self, call_id: str, agent: str, log: logging.LoggerAdapter[logging.Logger]) -> None:
        self.call_id = call_id
        self.agent = agent
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.end_reason: str | None = None
        self.entries: list[TurnEntry] = []
        self.timings: list[TurnTiming] = []
        self.listeners: list[Callable[[CallRecord, TurnEntry], None]] = []
        self.timing_listeners: list[Callable[[TurnTiming], None]] = []
        self._log = log

    def add(self, entry: TurnEntry) -> TurnEntry:
        self.entries.append(entry)
        if entry.role == "caller":
            self._log.info("caller: %s", entry.text)
        elif entry.role == "agent":
            self._log.info("agent: %s", entry.text)
        else:
            self._log.info("event: %s %s", entry.text, entry.meta or "")
        for listener in self.listeners:
            listener(self, entry)
        return entry

    def event(self, name: str, **meta: Any) -> TurnEntry:
        return self.add(TurnEntry("event", name, meta=meta))

    def log_timing(self, timing: TurnTiming) -> None:
        self.timings.append(timing)
        for listener in self.timing_listeners:
            listener(timing)
        t = timing.as_dict()
        self._log.info(
            "turn %d timing (ms): endpointing %s, stt %s, llm first token %s, tts first audio %s, "
            "first frame out %s, voice-to-voice %s",
            timing.turn,
            t["endpointing_ms"],
            t["stt_ms"],
            t["llm_first_token_ms"],
            t["tts_first_audio_ms"],
            t["first_frame_out_ms"],
            t["voice_to_voice_ms"],
        )

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) of what was said, the agent's as heard."""
        out = []
        for e in self.entries:
            if e.role == "caller":
                out.append(("caller", e.text))
            elif e.role == "agent":
                out.append(("agent", e.heard if e.heard is not None else e.text))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "agent": self.agent,
            "started_at": round(self.started_at, 3),
            "ended_at": None if self.ended_at is None else round(self.ended_at, 3),
            "end_reason": self.end_reason,
            "entries": [e.as_dict() for e in self.entries],
        }
