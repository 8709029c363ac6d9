"""`FlowResponder`: the flow/FAQ agent that answers calls when no language model is configured.

A flow (`FlowConfig`, usually from YAML) lists intents with example phrases, slots to fill and
what to say and do. Per call the responder is a small state machine:

- idle: a turn is matched against the intents (`IntentMatcher`, robust to STT errors) or, for a
  key press, the `dtmf` map. Two intents scoring about the same get a clarifying question.
- filling a slot: the turn is read as that slot (keypad digits count for phone numbers and
  digits, "#" ends the entry, "*" starts it again); an optional yes/no confirmation follows: a
  "no" asks again, a correction ("no, it's 555 0199") is confirmed instead. A caller who asks
  for another intent instead is switched to it; retries running out counts as a miss.
- misses in a row lead to `on_max_fallbacks` (e.g. a transfer). A silent turn gets `silence` and
  the open question again; the runner hangs up on a caller who stays silent.

"Say that again" (`flow.repeat`) repeats the last reply at any point. Values are spoken for a
TTS voice: phone numbers digit by digit in groups, days by name, times as "2:30 PM".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from voxgate.agent.flow_config import (
    REPEAT,
    FlowConfig,
    SlotConfig,
    record_value,
    speak_digits,
    speak_time,
)
from voxgate.agent.intents import IntentMatch, IntentMatcher, extract_phone_number, extract_yes_no, normalize
from voxgate.agent.responder import Action, Conversation, ResponseItem, UserInput

__all__ = ["FlowConfig", "FlowResponder", "speak_digits", "speak_time"]

_ANSWER_WORDS = frozenset({"no", "nope", "nah", "yes", "yeah", "yep", "ok", "okay", "thanks", "thank", "you"})
_FIRST = frozenset({"first", "former", "1"})
_SECOND = frozenset({"second", "latter", "last", "2"})
_CORRECTABLE = ("phone_number", "weekday", "time")


class _Reply:
    """The items of one reply, consecutive text joined into one piece."""

    def __init__(self) -> None:
        self.items: list[ResponseItem] = []

    def say(self, text: str | None) -> None:
        text = (text or "").strip()
        if not text:
            return
        if self.items and isinstance(self.items[-1], str):
            self.items[-1] = f"{self.items[-1]} {text}"
        else:
            self.items.append(text)

    def do(self, action: Action) -> None:
        self.items.append(action)

    @property
    def text(self) -> str:
        return " ".join(i for i in self.items if isinstance(i, str))


@dataclass
class _Filling:
    intent: str
    index: int = 0  # the slot being asked
    attempts: int = 0  # failed answers for this slot
    pending: Any = None  # a value waiting for the caller's yes
    keys: str = ""  # keypad digits entered so far
    values: dict[str, Any] = field(default_factory=dict)
    prefill: dict[str, Any] = field(default_factory=dict)  # values heard before they were asked


@dataclass
class _Clarifying:
    first: str
    second: str
    text: str
    question: str


class FlowResponder:
    """The brain of one call driven by a `FlowConfig` (a new one per call: it keeps call state).

    `collected` holds the slot values given so far (intent → slot → value as text: phone digits,
    ISO date, "HH:MM", "yes"/"no") and `last_intent` the last intent run, for the call record.
    `today` fixes the date weekdays resolve against (tests); default: the real date.
    """

    name = "flow"

    def __init__(self, config: FlowConfig, greeting: str | None = None, today: dt.date | None = None) -> None:
        self.config = config
        self._greeting = greeting
        self._today = today
        phrases = {name: intent.examples for name, intent in config.intents.items() if intent.examples}
        if config.repeat:
            phrases[REPEAT] = list(config.repeat)
        self._matcher = IntentMatcher(phrases, config.threshold, config.margin) if phrases else None
        self.collected: dict[str, dict[str, str]] = {}
        self.last_intent: str | None = None
        self._state: _Filling | _Clarifying | None = None
        self._misses = 0
        self._last_reply = ""
        self._asked_anything_else = False

    def greeting(self) -> str | None:
        if self._greeting:
            self._last_reply = self._greeting
        return self._greeting

    async def respond(self, turn: UserInput, conversation: Conversation) -> AsyncIterator[ResponseItem]:
        conversation.add_user(turn.as_message_text())
        said: list[str] = []
        try:
            for item in self._reply(turn).items:
                if isinstance(item, str):
                    item = f" {item}" if said else item  # whitespace between pieces for the splitter
                    said.append(item)
                yield item
        finally:
            conversation.add_assistant("".join(said).strip())

    # --- one turn -------------------------------------------------------------------------------

    def _reply(self, turn: UserInput) -> _Reply:
        out = _Reply()
        asked_anything_else, self._asked_anything_else = self._asked_anything_else, False
        text, keys = turn.text.strip(), turn.dtmf.strip()
        state = self._state
        if not text and not keys:
            self._asked_anything_else = asked_anything_else  # still the open question
            self._on_silence(out)
            return out  # not a reply to repeat: "say that again" gives the one before
        if isinstance(state, _Filling):
            self._on_slot_turn(state, text, keys, out)
        elif isinstance(state, _Clarifying):
            self._on_clarify(state, text, keys, out)
        else:
            self._on_idle(text, keys, out, asked_anything_else)
        if out.text:
            self._last_reply = out.text
        return out

    def _on_silence(self, out: _Reply) -> None:
        out.say(self.config.silence)  # the runner hangs up after too many (call.max_reprompts)
        state = self._state
        if isinstance(state, _Filling):
            out.say(self._question(state))
        elif isinstance(state, _Clarifying):
            out.say(state.question)

    def _on_idle(self, text: str, keys: str, out: _Reply, asked_anything_else: bool) -> None:
        cfg = self.config
        if keys:
            target = self._key_target(keys)
            if target is not None:
                self._run(target, "", out)
                return
            if not text:
                self._miss(out)
                return
        found = self._match(text)
        if found is None:
            answer = extract_yes_no(text) if asked_anything_else else None
            if answer is False and cfg.anything_else_no:
                self._run(cfg.anything_else_no, "", out)
            elif answer is True:
                self._misses = 0
                out.say(cfg.anything_else_yes)
            else:
                self._miss(out)
        elif found.ambiguous and found.runner_up and REPEAT not in (found.name, found.runner_up):
            first, second = found.name, found.runner_up
            question = cfg.clarify.format(first=cfg.label(first), second=cfg.label(second))
            self._state = _Clarifying(first, second, text, question)
            out.say(question)
        else:
            self._run(found.name, text, out)

    def _on_clarify(self, state: _Clarifying, text: str, keys: str, out: _Reply) -> None:
        self._state = None
        if keys and not text:
            target = self._key_target(keys)
            if target is not None:
                self._run(target, "", out)
            else:
                self._miss(out)
            return
        words = set(normalize(text).split())
        pick = state.second if words & _SECOND else state.first if words & _FIRST else None
        if pick is None:
            cfg = self.config
            pair = {
                name: [p for p in (*cfg.intents[name].examples, cfg.label(name)) if any(map(str.isalnum, p))]
                for name in (state.first, state.second)
            }
            found = IntentMatcher(pair, threshold=cfg.threshold * 0.8, margin=0.0).match(text)
            if found is None:
                found = self._match(text)
                found = None if found is None or found.ambiguous else found
            pick = found.name if found else None
        if pick is None:
            self._miss(out)
        else:
            self._run(pick, f"{state.text} {text}", out)

    # --- intents --------------------------------------------------------------------------------

    def _run(self, name: str, text: str, out: _Reply) -> None:
        """Start intent `name` (`text`: what the caller said, to take slot values from)."""
        self._misses = 0
        if name == REPEAT:
            out.say(self._last_reply or self.config.fallback)
            return
        self.last_intent = name
        filling = _Filling(name)
        self._state = filling
        if text:
            filling.prefill = self._extract(self.config.intents[name].slots, text)
        self._advance(filling, out)

    def _advance(self, f: _Filling, out: _Reply) -> None:
        """Ask the next slot still missing (taking values heard earlier), or finish the intent."""
        slots = self.config.intents[f.intent].slots
        while f.index < len(slots):
            slot = slots[f.index]
            value = f.prefill.pop(slot.name, None)
            if value is None:
                out.say(self._render(slot.question, f))
                return
            if slot.confirm:
                f.pending = value
                out.say(self._render(slot.confirm, f))
                return
            self._commit(f, slot, value)
        self._finish(f, out)

    def _finish(self, f: _Filling, out: _Reply) -> None:
        cfg = self.config
        intent = cfg.intents[f.intent]
        self._state = None
        out.say(self._render(intent.say, f))
        if intent.action is not None:
            out.do(intent.action.to_action(f"flow intent {f.intent!r}"))
        leaving = intent.action is not None and intent.action.ends_conversation
        if cfg.anything_else and intent.ask_anything_else and not leaving:
            out.say(cfg.anything_else)
            self._asked_anything_else = True

    def _miss(self, out: _Reply) -> None:
        cfg = self.config
        self._state = None
        self._misses += 1
        if cfg.on_max_fallbacks is not None and self._misses >= cfg.max_fallbacks:
            self._misses = 0
            out.say(cfg.fallback_final)
            out.do(cfg.on_max_fallbacks.to_action("caller not understood"))
        else:
            out.say(cfg.fallback)

    def _match(self, text: str) -> IntentMatch | None:
        return self._matcher.match(text) if self._matcher is not None and text else None

    def _key_target(self, keys: str) -> str | None:
        return next((self.config.dtmf[k] for k in keys if k in self.config.dtmf), None)

    def _switch_to(self, text: str, f: _Filling) -> str | None:
        """Another intent (or repeat) the caller clearly asked for while a slot was being filled."""
        found = self._match(text)
        if found is None or found.ambiguous or found.name == f.intent:
            return None
        if found.score < max(self.config.threshold, self.config.switch_threshold):
            return None
        return found.name

    # --- slots ----------------------------------------------------------------------------------

    def _on_slot_turn(self, f: _Filling, text: str, keys: str, out: _Reply) -> None:
        slot = self.config.intents[f.intent].slots[f.index]
        if f.pending is not None:
            self._on_confirm(f, slot, text, keys, out)
            return
        if keys:
            if slot.type in ("phone_number", "digits"):
                self._on_keys(f, slot, keys, out)
                return
            if slot.type == "yes_no" and keys[0] in "12":
                self._accept(f, slot, keys[0] == "1", "", out)
                return
            target = self._key_target(keys)
            if target is not None:
                self._run(target, "", out)
                return
            if not text:
                self._retry(f, slot, out)
                return
        switch = self._switch_to(text, f) if slot.type == "text" else None
        value = None if switch else slot.parse(text, self._today)
        if value is not None:
            self._accept(f, slot, value, text, out)
            return
        switch = switch or self._switch_to(text, f)
        if switch is not None:
            self._run(switch, text, out)
        elif slot.default is not None:
            self._accept(f, slot, slot.default, "", out)
        else:
            self._retry(f, slot, out)

    def _on_keys(self, f: _Filling, slot: SlotConfig, keys: str, out: _Reply) -> None:
        """Keypad entry, delivered in chunks (the runner sends keys after a pause or "#").

        "#" ends the entry and "*" starts it again. Without "#", a chunk that leaves too few
        digits, or a single key, is kept and nothing is said: the caller may still be typing.
        """
        if "*" in keys:
            f.keys, keys = "", keys.rsplit("*", 1)[1]
        digits = "".join(c for c in keys if c.isdigit())
        f.keys += digits
        low, high = (7, 15) if slot.type == "phone_number" else (slot.min_digits, slot.max_digits)
        if "#" not in keys and (len(f.keys) < low or len(digits) <= 1) and len(f.keys) < high:
            return
        entry, f.keys = f.keys, ""
        if low <= len(entry) <= high:
            self._accept(f, slot, entry, "", out)
        else:
            self._retry(f, slot, out)

    def _on_confirm(self, f: _Filling, slot: SlotConfig, text: str, keys: str, out: _Reply) -> None:
        if keys and not text:
            if slot.type in ("phone_number", "digits") and len(keys.rstrip("#")) > 1:
                f.pending = None  # a new number keyed in instead of a yes or no
                self._on_keys(f, slot, keys, out)
                return
            answer = {"1": True, "2": False}.get(keys[0])
            target = self._key_target(keys) if answer is None else None
            if target is not None:
                self._run(target, "", out)
                return
        else:
            answer = extract_yes_no(text)
            if self._apply_corrections(f, text):
                out.say(self._render(slot.confirm, f))
                return
        if answer is True:
            value, f.pending = f.pending, None
            self._commit(f, slot, value)
            self._advance(f, out)
            return
        rest = " ".join(t for t in normalize(text).split() if t not in _ANSWER_WORDS) if text else ""
        switch = self._switch_to(rest, f) if rest else None
        if switch is not None:
            self._run(switch, rest, out)
            return
        f.attempts += 1
        if f.attempts > slot.retries:
            self._miss(out)
        elif answer is False:
            f.pending = None
            out.say(self.config.slot_rejected)
            out.say(self._render(slot.question, f))
        else:
            out.say(self.config.slot_retry)
            out.say(self._render(slot.confirm, f))

    def _apply_corrections(self, f: _Filling, text: str) -> bool:
        """Take new values for this slot or earlier ones from a confirmation answer
        ("no, it's Wednesday at 4"); True if any changed."""
        slots = self.config.intents[f.intent].slots[: f.index + 1]
        current = {**f.values, slots[-1].name: f.pending}
        heard = self._extract([s for s in slots if s.type in _CORRECTABLE], text)
        changed = {k: v for k, v in heard.items() if record_value(v) != record_value(current.get(k))}
        for slot in slots[:-1]:
            if slot.name in changed:
                f.values[slot.name] = changed[slot.name]
                self.collected.setdefault(f.intent, {})[slot.name] = record_value(changed[slot.name])
        if slots[-1].name in changed:
            f.pending = changed[slots[-1].name]
        return bool(changed)

    def _accept(self, f: _Filling, slot: SlotConfig, value: Any, text: str, out: _Reply) -> None:
        self._misses = 0
        if text:  # "tuesday at 3" answers the time slot that comes next too
            later = self.config.intents[f.intent].slots[f.index + 1 :]
            f.prefill = {**self._extract(later, text), **f.prefill}
        if slot.confirm:
            f.pending = value
            out.say(self._render(slot.confirm, f))
            return
        self._commit(f, slot, value)
        self._advance(f, out)

    def _commit(self, f: _Filling, slot: SlotConfig, value: Any) -> None:
        f.values[slot.name] = value
        self.collected.setdefault(f.intent, {})[slot.name] = record_value(value)
        f.index += 1
        f.attempts, f.pending, f.keys = 0, None, ""

    def _retry(self, f: _Filling, slot: SlotConfig, out: _Reply) -> None:
        f.attempts += 1
        if f.attempts > slot.retries:
            self._miss(out)
            return
        out.say(self.config.slot_retry)
        out.say(self._render(slot.question, f))

    def _question(self, f: _Filling) -> str:
        slot = self.config.intents[f.intent].slots[f.index]
        return self._render(slot.confirm if f.pending is not None else slot.question, f)

    def _extract(self, slots: list[SlotConfig], text: str) -> dict[str, Any]:
        """Values for phone number, weekday and time slots found in what the caller said."""
        phone = extract_phone_number(text) if any(s.type == "phone_number" for s in slots) else None
        found: dict[str, Any] = {}
        for slot in slots:
            if slot.type == "phone_number":
                value: Any = phone
            elif slot.type == "weekday" or (slot.type == "time" and phone is None):
                value = slot.parse(text, self._today)
            else:
                continue
            if value is not None:
                found[slot.name] = value
        return found

    def _render(self, template: str | None, f: _Filling) -> str:
        if not template:
            return ""
        slots = self.config.intents[f.intent].slots
        values = dict(f.values)
        if f.pending is not None and f.index < len(slots):
            values[slots[f.index].name] = f.pending
        return template.format(**{s.name: s.speak(values[s.name]) for s in slots if s.name in values})
