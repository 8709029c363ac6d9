"""The schema of the offline flow agent (`FlowResponder`): intents, slots, keypad, fallbacks.

A flow is checked when it loads: every `{placeholder}` names a slot the intent has by then, every
keypad entry and action is well formed, and an error names the field and how to fix it. Slot
types know how to read an answer (`SlotConfig.parse`) and how to say a value to a TTS voice
(`SlotConfig.speak`: phone numbers digit by digit in groups, days by name, times as "2:30 PM").
"""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from voxgate.agent.intents import (
    DayRef,
    extract_phone_number,
    extract_time,
    extract_weekday,
    extract_yes_no,
    normalize,
)
from voxgate.agent.responder import Action, EndCall, SendDtmf, Transfer

__all__ = [
    "REPEAT",
    "ActionConfig",
    "FlowConfig",
    "IntentConfig",
    "SlotConfig",
    "SlotType",
    "placeholders",
    "record_value",
    "speak_digits",
    "speak_time",
]

SlotType = Literal["phone_number", "weekday", "time", "yes_no", "digits", "text"]
DTMF_KEYS = "0123456789*#ABCD"
REPEAT = "repeat"
"""The built-in "say that again" behaviour; a keypad entry may point at it."""

_MERIDIEM = frozenset({"am", "pm", "morning", "afternoon", "evening", "night", "tonight", "noon", "midday",
                       "midnight"})  # fmt: skip
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_SLOT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def placeholders(template: str) -> list[str]:
    """The `{name}`s a template uses; ValueError for anything but plain `{name}` fields."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(
            f"{template!r} is not a valid template ({e}); write a literal brace as {{{{ or }}}}"
        ) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _SLOT_NAME.match(name) or spec or conversion:
            raise ValueError(f"{template!r} has placeholder {{{name}}}: only plain {{slot_name}} is allowed")
        names.append(name)
    return names


def speak_digits(digits: str) -> str:
    """Digits for a TTS voice, one by one in groups: "5551234567" → "5 5 5, 1 2 3, 4 5 6 7"."""
    n = len(digits)
    if n <= 4:
        sizes = [n]
    elif n % 3 == 0:
        sizes = [3] * (n // 3)
    elif n % 3 == 1:
        sizes = [3] * ((n - 4) // 3) + [4]
    else:
        sizes = [3] * ((n - 8) // 3) + [4, 4] if n >= 8 else [2, 3]
    groups, at = [], 0
    for size in sizes:
        groups.append(" ".join(digits[at : at + size]))
        at += size
    return ", ".join(groups)


def speak_time(t: dt.time) -> str:
    """A clock time for a TTS voice: "3 PM", "2:30 PM", "12 AM"."""
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def record_value(value: Any) -> str:
    """A slot value for the call record: digits, ISO date, "HH:MM", "yes"/"no" or the text."""
    if isinstance(value, DayRef):
        return value.date.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionConfig(_Model):
    """What the agent does after speaking: exactly one of the three."""

    transfer: str | None = Field(None, description="Hand the caller to this extension, queue or endpoint")
    end_call: bool = Field(False, description="Hang up once the text before has played")
    send_dtmf: str | None = Field(None, description="Send these keys to the far end (0-9 * # A-D)")

    @model_validator(mode="after")
    def _exactly_one(self) -> ActionConfig:
        if self.transfer is not None and not self.transfer.strip():
            raise ValueError("transfer: empty target; name an extension or queue, e.g. {transfer: operator}")
        if self.send_dtmf is not None:
            bad = sorted({c for c in self.send_dtmf if c not in DTMF_KEYS})
            if not self.send_dtmf or bad:
                raise ValueError(f"send_dtmf: {self.send_dtmf!r} must be keys from {DTMF_KEYS} (bad: {bad})")
        chosen = [k for k in ("transfer", "end_call", "send_dtmf") if getattr(self, k) not in (None, False)]
        if len(chosen) != 1:
            raise ValueError(
                f"an action is exactly one of {{transfer: <target>}}, {{end_call: true}} or "
                f"{{send_dtmf: <keys>}}; this one sets {', '.join(chosen) or 'none of them'}"
            )
        return self

    @property
    def ends_conversation(self) -> bool:
        """True when the caller leaves the agent (hang-up or transfer)."""
        return self.end_call or self.transfer is not None

    def to_action(self, reason: str) -> Action:
        if self.transfer is not None:
            return Transfer(self.transfer.strip())
        if self.send_dtmf is not None:
            return SendDtmf(self.send_dtmf)
        return EndCall(reason)


class SlotConfig(_Model):
    """One value to collect from the caller, by voice or keypad."""

    name: str = Field(description="Placeholder name used as {name} in texts, e.g. 'phone'")
    type: SlotType = Field(
        "text",
        description="phone_number (spoken or keyed, 7-15 digits), weekday (a day: 'tuesday', "
        "'tomorrow'), time ('3 pm', 'half past two'), yes_no, digits (keyed or spoken, "
        "min_digits..max_digits), text (whatever was said)",
    )
    ask: str | None = Field(
        None, description="The question; may use earlier slots. Default: 'What is your <name>?'"
    )
    confirm: str | None = Field(
        None, description="Optional yes/no check after an answer, e.g. 'I have {phone}. Is that right?'"
    )
    retries: int = Field(
        2, ge=0, le=10, description="Re-asks after a missed or rejected answer before giving up"
    )
    default: str | None = Field(
        None,
        description="Used at once when the answer can't be understood ('any day'); makes the slot "
        "optional. Without it, running out of retries abandons the request",
    )
    min_digits: int = Field(1, ge=1, le=32, description="digits slots: fewest digits accepted")
    max_digits: int = Field(20, ge=1, le=32, description="digits slots: most digits accepted")
    assume_pm_below: int = Field(
        7, ge=0, le=12, description="time slots: a bare hour below this ('at 4') means PM; 0 turns this off"
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _SLOT_NAME.match(v):
            raise ValueError(f"slot name {v!r} must be letters, digits and _ (it is used as {{{v}}})")
        return v

    @model_validator(mode="after")
    def _check_digits(self) -> SlotConfig:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) is more than max_digits ({self.max_digits})")
        return self

    @property
    def question(self) -> str:
        return self.ask or f"What is your {self.name.replace('_', ' ')}?"

    def parse(self, text: str, today: dt.date | None = None) -> Any:
        """The value in a spoken answer (str, DayRef, time or bool), or None if there is none."""
        if self.type == "phone_number":
            return extract_phone_number(text)
        if self.type == "digits":
            return extract_phone_number(text, min_len=self.min_digits, max_len=self.max_digits)
        if self.type == "weekday":
            return extract_weekday(text, today=today)
        if self.type == "yes_no":
            return extract_yes_no(text)
        if self.type == "text":
            return text.strip() or None
        t = extract_time(text)
        if t is None or not 1 <= t.hour < self.assume_pm_below or _MERIDIEM & set(normalize(text).split()):
            return t
        return t.replace(hour=t.hour + 12)  # "at 4" for an appointment is 4 PM

    def speak(self, value: Any) -> str:
        """A value as the agent says it (a `default` text stays as written)."""
        if isinstance(value, DayRef):
            return value.name.capitalize()
        if isinstance(value, dt.time):
            return speak_time(value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if self.type in ("phone_number", "digits") and str(value).isdigit():
            return speak_digits(str(value))
        return str(value)


class IntentConfig(_Model):
    """Something the caller can ask for: example phrases, slots to fill, what to say and do."""

    examples: list[str] = Field(
        default_factory=list,
        description="Phrases a caller might say; matching tolerates STT errors and rewording. "
        "May be empty only for an intent reached by a keypad key",
    )
    label: str | None = Field(
        None, description="How a clarifying question names this intent; default: the name with spaces"
    )
    slots: list[SlotConfig] = Field(default_factory=list, description="Values to collect, asked in order")
    say: str = Field("", description="The answer, said once all slots are filled; may use {slot} values")
    action: ActionConfig | None = Field(None, description="What to do after saying it")
    ask_anything_else: bool = Field(
        True,
        description="Follow the answer with the flow's anything_else (never after end_call/transfer)",
    )

    @model_validator(mode="after")
    def _check(self) -> IntentConfig:
        names = [s.name for s in self.slots]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"slots: {', '.join(dupes)} defined twice; give each slot its own name")
        if not (self.say.strip() or self.slots or self.action):
            raise ValueError("this intent does nothing: give it a say, slots or an action")

        def check(where: str, template: str | None, known: list[str], scope: str) -> None:
            for name in placeholders(template or ""):
                if name not in known:
                    raise ValueError(
                        f"{where}: placeholder {{{name}}} is not {scope} (known here: "
                        f"{', '.join(known) or 'none'}); use one of those or add a slot named {name!r}"
                    )

        for i, slot in enumerate(self.slots):
            check(f"slots[{i}].ask", slot.ask, names[:i], "a slot asked before this one")
            check(f"slots[{i}].confirm", slot.confirm, names[: i + 1], "this slot or an earlier one")
        check("say", self.say, names, "a slot of this intent")
        for ex in self.examples:
            if not re.search(r"[A-Za-z0-9]", ex):
                raise ValueError(f"examples: {ex!r} has no words; remove it")
        return self


class FlowConfig(_Model):
    """A flow/FAQ agent that needs no model: intents, keypad shortcuts and what to say when lost."""

    intents: dict[str, IntentConfig] = Field(default_factory=dict, description="Intents by name")
    dtmf: dict[str, str] = Field(
        default_factory=dict,
        description="Keypad shortcuts outside slot filling: key ('0'-'9', '*', '#') → intent or 'repeat'",
    )
    repeat: list[str] = Field(
        default_factory=lambda: ["say that again", "repeat that", "can you repeat", "come again", "pardon"],
        description="Phrases that make the agent say its last reply again (built in); [] turns it off",
    )
    fallback: str = Field(
        "Sorry, I didn't catch that. Could you say it another way?", description="Said on a miss"
    )
    max_fallbacks: int = Field(2, ge=1, description="Misses in a row before on_max_fallbacks happens")
    on_max_fallbacks: ActionConfig | None = Field(
        None, description="What to do after max_fallbacks misses (after fallback_final); none: keep trying"
    )
    fallback_final: str = Field(
        "Sorry, I'm having trouble understanding.", description="Said before on_max_fallbacks happens"
    )
    anything_else: str | None = Field(
        "Is there anything else I can help with?", description="Said after an answered intent; null: nothing"
    )
    anything_else_no: str | None = Field(
        None, description="Intent to run when the caller answers anything_else with a plain no (e.g. goodbye)"
    )
    anything_else_yes: str = Field(
        "Sure, what can I help with?", description="Said when the caller answers anything_else with a yes"
    )
    clarify: str = Field(
        "Sorry, did you mean {first}, or {second}?",
        description="Asked when two intents match about equally; {first} and {second} are their labels",
    )
    slot_retry: str = Field("Sorry, I didn't get that.", description="Said before asking for a slot again")
    slot_rejected: str = Field("Okay, let's try again.", description="Said before re-asking after a 'no'")
    silence: str = Field(
        "Are you still there?", description="Said when the caller stays silent, before the open question"
    )
    threshold: float = Field(0.6, gt=0.0, le=1.0, description="Lowest match score (0-1) that counts")
    switch_threshold: float = Field(
        0.75,
        gt=0.0,
        le=1.0,
        description="Lowest match score that leaves a slot being filled for another intent (an answer "
        "such as 'any day is fine' should rarely pass for a new request)",
    )
    margin: float = Field(
        0.08, ge=0.0, le=1.0, description="Two intents closer than this are ambiguous: ask; 0: never ask"
    )

    @field_validator("intents")
    @classmethod
    def _check_intents(cls, v: dict[str, IntentConfig]) -> dict[str, IntentConfig]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"intent name {name!r}: start with a letter, then letters, digits, _ or -")
            if name == REPEAT:
                raise ValueError(
                    "intent name 'repeat' is reserved for the built-in repeat; list its phrases "
                    "under flow.repeat instead"
                )
        return v

    @field_validator("dtmf", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        if isinstance(v, dict):  # YAML reads an unquoted 1: as the number 1
            return {str(k) if isinstance(k, int) else k: t for k, t in v.items()}
        return v

    @field_validator("dtmf")
    @classmethod
    def _check_dtmf(cls, v: dict[str, str], info: Any) -> dict[str, str]:
        intents = info.data.get("intents")
        for key, target in v.items():
            if len(key) != 1 or key not in DTMF_KEYS:
                raise ValueError(f"key {key!r} must be one keypad key, one of {DTMF_KEYS} (quote it in YAML)")
            if intents is not None and target != REPEAT and target not in intents:
                raise ValueError(
                    f"dtmf[{key!r}] → {target!r} is not an intent; use one of {', '.join([*intents, REPEAT])}"
                )
        return v

    @field_validator("clarify")
    @classmethod
    def _check_clarify(cls, v: str) -> str:
        for name in placeholders(v):
            if name not in ("first", "second"):
                raise ValueError(f"placeholder {{{name}}} is unknown here; use {{first}} and {{second}}")
        return v

    @model_validator(mode="after")
    def _check_reachable(self) -> FlowConfig:
        keyed = set(self.dtmf.values())
        for name, intent in self.intents.items():
            if not intent.examples and name not in keyed:
                raise ValueError(
                    f"intents.{name}: no examples and no dtmf key leads to it; add examples or a dtmf entry"
                )
        if self.anything_else_no is not None and self.anything_else_no not in self.intents:
            raise ValueError(
                f"anything_else_no: {self.anything_else_no!r} is not an intent; use one of "
                f"{', '.join(self.intents) or '(no intents defined)'}"
            )
        return self

    def label(self, intent: str) -> str:
        """How a clarifying question names `intent`."""
        if intent == REPEAT:
            return "hearing that again"
        cfg = self.intents[intent]
        return cfg.label or intent.replace("_", " ").replace("-", " ")
