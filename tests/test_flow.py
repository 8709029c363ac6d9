"""The offline flow/FAQ agent (voxgate.agent.flow): intents, slots, keypad, fallbacks, the default YAML.

Turns are written the way a small Whisper model hears a phone line: lowercase, no punctuation,
near-miss words ("what are you're opening ours", "could some one call me back").
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from voxgate.agent.flow import FlowConfig, FlowResponder, speak_digits, speak_time
from voxgate.agent.responder import (
    Conversation,
    EndCall,
    Responder,
    ResponseItem,
    SendDtmf,
    Transfer,
    UserInput,
)

SUNDAY = dt.date(2026, 11, 22)

FLOW = """
intents:
  hours:
    examples: ["what are your opening hours", "when are you open", "hours"]
    say: "We're open nine to five, Monday to Friday."
  callback:
    examples: ["can someone call me back", "call me back"]
    slots:
      - name: phone
        type: phone_number
        ask: "What number should we call you on? You can also type it on your keypad, then press hash."
        confirm: "I have {phone}. Is that right?"
        retries: 2
    say: "Thanks. We'll call you back on {phone}."
  operator:
    examples: ["speak to a person", "operator", "representative"]
    say: "Connecting you now."
    action: {transfer: "operator"}
  goodbye:
    examples: ["bye", "that's all thanks", "nothing else"]
    say: "Thanks for calling. Goodbye!"
    action: {end_call: true}
dtmf:
  "0": operator
  1: hours
fallback: "Sorry, I didn't catch that. You can ask about our hours, or ask for a callback."
max_fallbacks: 2
on_max_fallbacks: {transfer: "operator"}
fallback_final: "Let me put you through to someone who can help."
anything_else: "Is there anything else I can help with?"
anything_else_no: goodbye
silence: "Are you still there?"
threshold: 0.6
"""

ASK_PHONE = "What number should we call you on? You can also type it on your keypad, then press hash."
ANYTHING_ELSE = "Is there anything else I can help with?"
FALLBACK = "Sorry, I didn't catch that. You can ask about our hours, or ask for a callback."
HOURS = "We're open nine to five, Monday to Friday."


def config(text: str = FLOW, **changes: Any) -> FlowConfig:
    data = yaml.safe_load(text)
    data.update(changes)
    return FlowConfig.model_validate(data)


class Call:
    """One call's responder and conversation, driven turn by turn."""

    def __init__(
        self, cfg: FlowConfig | None = None, greeting: str | None = "Hello, how can I help?"
    ) -> None:
        self.responder = FlowResponder(cfg or config(), greeting=greeting, today=SUNDAY)
        self.conversation = Conversation()

    async def turn(self, text: str = "", dtmf: str = "", silence_ms: int = 0) -> list[ResponseItem]:
        turn = UserInput(text=text, dtmf=dtmf, silence_ms=silence_ms)
        return [item async for item in self.responder.respond(turn, self.conversation)]

    async def say(self, text: str = "", dtmf: str = "", silence_ms: int = 0) -> str:
        """The reply's words (the actions are checked by the tests that care)."""
        return spoken(await self.turn(text, dtmf, silence_ms))


def spoken(items: list[ResponseItem]) -> str:
    return "".join(i for i in items if isinstance(i, str)).strip()


def actions(items: list[ResponseItem]) -> list[Any]:
    return [i for i in items if not isinstance(i, str)]


# ----------------------------------------------------------------------------------------- basics


def test_implements_the_responder_protocol() -> None:
    responder = FlowResponder(config())
    assert isinstance(responder, Responder)
    assert responder.name == "flow"
    assert responder.greeting() is None
    assert FlowResponder(config(), greeting="Hi there.").greeting() == "Hi there."


@pytest.mark.parametrize(
    ("heard", "intent"),
    [
        ("what are you're opening ours", "hours"),
        ("when are you guys open", "hours"),
        ("opening ours", "hours"),
        ("could some one call me back", "callback"),
        ("i want to speak to a persons", "operator"),
        ("represent a tive", "operator"),
        ("ok thats all thanks", "goodbye"),
    ],
)
async def test_misheard_requests_reach_their_intent(heard: str, intent: str) -> None:
    call = Call()
    await call.turn(heard)
    assert call.responder.last_intent == intent


async def test_answer_then_anything_else() -> None:
    call = Call()
    items = await call.turn("what are you're opening ours")
    assert items == [f"{HOURS} {ANYTHING_ELSE}"]
    assert actions(items) == []


async def test_anything_else_answered_no_runs_goodbye_and_yes_invites() -> None:
    call = Call()
    await call.turn("opening hours")
    assert await call.say("yeah") == "Sure, what can I help with?"
    await call.turn("when are you open")
    items = await call.turn("no thank you")
    assert items == ["Thanks for calling. Goodbye!", EndCall("flow intent 'goodbye'")]


async def test_goodbye_ends_the_call_after_the_text() -> None:
    items = await Call().turn("ok bye")
    assert len(items) == 2
    assert items[0] == "Thanks for calling. Goodbye!"
    assert isinstance(items[1], EndCall)


async def test_operator_transfers_after_the_text_without_anything_else() -> None:
    items = await Call().turn("can i talk to an operator please")
    assert items == ["Connecting you now.", Transfer("operator")]


# ---------------------------------------------------------------------------------- phone number slot


async def test_callback_by_voice_with_confirmation() -> None:
    call = Call()
    assert await call.say("can some one call me back") == ASK_PHONE
    got = await call.say("yeah its five five five one two three four five six seven")
    assert got == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    got = await call.say("yes that's right")
    assert got == f"Thanks. We'll call you back on 5 5 5, 1 2 3, 4 5 6 7. {ANYTHING_ELSE}"
    assert call.responder.collected == {"callback": {"phone": "5551234567"}}
    assert call.responder.last_intent == "callback"


async def test_number_given_with_the_request_skips_the_question() -> None:
    call = Call()
    got = await call.say("call me back on 555 123 4567")
    assert got == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"


async def test_phone_number_keyed_in_ending_with_hash() -> None:
    call = Call()
    await call.turn("call me back")
    assert await call.say(dtmf="5551234567#") == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    assert (
        await call.say(dtmf="1") == f"Thanks. We'll call you back on 5 5 5, 1 2 3, 4 5 6 7. {ANYTHING_ELSE}"
    )


async def test_keys_arriving_in_pieces_wait_for_hash_and_star_starts_again() -> None:
    call = Call()
    await call.turn("call me back")
    assert await call.turn(dtmf="9") == []  # a single key: the caller is still typing
    assert await call.turn(dtmf="99") == []  # too short for a phone number yet
    assert await call.turn(dtmf="*") == []  # start again
    for key in "555123":
        assert await call.turn(dtmf=key) == []
    assert await call.say(dtmf="4#") == "I have 5 5 5, 1 2 3 4. Is that right?"


async def test_keyed_number_without_hash_counts_when_long_enough() -> None:
    call = Call()
    await call.turn("call me back")
    assert await call.say(dtmf="5551234567") == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"


async def test_too_short_keyed_entry_asks_again() -> None:
    call = Call()
    await call.turn("call me back")
    assert await call.say(dtmf="123#") == f"Sorry, I didn't get that. {ASK_PHONE}"


async def test_no_asks_again_and_a_new_number_is_confirmed() -> None:
    call = Call()
    await call.turn("call me back")
    await call.turn("five five five one two three four")
    assert await call.say("no that's wrong") == f"Okay, let's try again. {ASK_PHONE}"
    got = await call.say("nine one seven five five five oh one nine nine")
    assert got == "I have 9 1 7, 5 5 5, 0 1 9 9. Is that right?"
    await call.turn("yep")
    assert call.responder.collected["callback"]["phone"] == "9175550199"


async def test_correction_in_the_confirmation_answer() -> None:
    call = Call()
    await call.turn("call me back")
    await call.turn("555 123 4567")
    got = await call.say("no it's five five five nine eight seven six five four three")
    assert got == "I have 5 5 5, 9 8 7, 6 5 4 3. Is that right?"
    await call.turn("correct")
    assert call.responder.collected["callback"]["phone"] == "5559876543"


async def test_new_number_keyed_in_at_the_confirmation() -> None:
    call = Call()
    await call.turn("call me back")
    await call.turn("555 123 4567")
    assert await call.say(dtmf="5550000#") == "I have 5 5 5, 0 0 0 0. Is that right?"


async def test_unclear_confirmation_asks_again() -> None:
    call = Call()
    await call.turn("call me back")
    await call.turn("555 123 4567")
    got = await call.say("hmm i'm not sure")
    assert got == "Sorry, I didn't get that. I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"


async def test_retries_run_out_into_the_fallback() -> None:
    call = Call()
    await call.turn("call me back")
    assert await call.say("i don't know it") == f"Sorry, I didn't get that. {ASK_PHONE}"
    assert await call.say("it's on my fridge") == f"Sorry, I didn't get that. {ASK_PHONE}"
    assert await call.say("hmm hang on") == FALLBACK  # retries: 2 → the third miss gives up
    # back at the top: the next turn is matched as a request again
    assert await call.say("hours") == f"{HOURS} {ANYTHING_ELSE}"


async def test_asking_for_something_else_mid_slot_switches() -> None:
    call = Call()
    await call.turn("call me back")
    items = await call.turn("actually can i speak to a representative")
    assert items == ["Connecting you now.", Transfer("operator")]
    assert call.responder.last_intent == "operator"

    call = Call()
    await call.turn("call me back")
    items = await call.turn("no forget it bye")
    assert spoken(items) == "Thanks for calling. Goodbye!"
    assert actions(items) == [EndCall("flow intent 'goodbye'")]


async def test_asking_for_something_else_at_the_confirmation_switches() -> None:
    call = Call()
    await call.turn("call me back")
    await call.turn("555 123 4567")
    items = await call.turn("no let me speak to a person")
    assert items == ["Connecting you now.", Transfer("operator")]


async def test_keypad_shortcut_mid_slot_of_another_type_switches() -> None:
    call = Call(config(FLOW.replace("type: phone_number", "type: weekday")))
    await call.turn("call me back")
    items = await call.turn(dtmf="0")
    assert items == ["Connecting you now.", Transfer("operator")]


# -------------------------------------------------------------------------------- misses, silence


async def test_max_fallbacks_transfers_after_the_final_text() -> None:
    call = Call()
    assert await call.turn("the quick brown fox") == [FALLBACK]
    items = await call.turn("my dog ate my homework")
    assert items == ["Let me put you through to someone who can help.", Transfer("operator")]


async def test_a_match_resets_the_miss_count() -> None:
    call = Call()
    await call.turn("what's the weather in paris")
    await call.turn("hours")
    assert await call.turn("blah blah") == [FALLBACK]


async def test_without_on_max_fallbacks_the_fallback_repeats() -> None:
    call = Call(config(on_max_fallbacks=None))
    for _ in range(4):
        assert await call.turn("the weather") == [FALLBACK]


async def test_silence_reprompts_with_the_open_question() -> None:
    call = Call()
    assert await call.turn(silence_ms=8000) == ["Are you still there?"]
    await call.turn("call me back")
    assert await call.say(silence_ms=8000) == f"Are you still there? {ASK_PHONE}"
    await call.turn("555 123 4567")
    got = await call.say(silence_ms=8000)
    assert got == "Are you still there? I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    assert await call.say("yes") == f"Thanks. We'll call you back on 5 5 5, 1 2 3, 4 5 6 7. {ANYTHING_ELSE}"


# ------------------------------------------------------------------------------------------ keypad


async def test_top_level_keys_pick_intents() -> None:
    call = Call()
    assert await call.say(dtmf="1") == f"{HOURS} {ANYTHING_ELSE}"  # YAML's unquoted 1: works too
    assert await call.turn(dtmf="0") == ["Connecting you now.", Transfer("operator")]


async def test_unmapped_key_is_a_miss() -> None:
    assert await Call().turn(dtmf="7") == [FALLBACK]


# ---------------------------------------------------------------------------------------- repeat


async def test_repeat_says_the_last_reply_again() -> None:
    call = Call(greeting="Hello, you've reached Acme.")
    call.responder.greeting()
    assert await call.say("sorry can you say that again") == "Hello, you've reached Acme."
    await call.turn("when are you open")
    assert await call.say("pardon") == f"{HOURS} {ANYTHING_ELSE}"
    await call.turn(silence_ms=8000)
    assert await call.say("come again") == f"{HOURS} {ANYTHING_ELSE}"  # not "are you still there"


async def test_repeat_mid_slot_keeps_the_slot() -> None:
    call = Call()
    await call.turn("call me back")
    assert await call.say("what could you repeat that") == ASK_PHONE
    assert await call.say("555 123 4567") == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"


async def test_repeat_by_key_and_turned_off() -> None:
    text = FLOW.replace("  1: hours\n", '  1: hours\n  "*": repeat\n')
    call = Call(config(text))
    await call.turn("hours")
    assert await call.say(dtmf="*") == f"{HOURS} {ANYTHING_ELSE}"
    quiet = Call(config(repeat=[]))
    assert await quiet.turn("say that again") == [FALLBACK]


# ------------------------------------------------------------------------------------- ambiguity


async def test_ambiguous_request_asks_which_one() -> None:
    call = Call()
    assert await call.say("call me back about the hours") == "Sorry, did you mean callback, or hours?"
    assert await call.say("the hours") == f"{HOURS} {ANYTHING_ELSE}"


async def test_clarification_by_position_and_labels() -> None:
    text = FLOW.replace("  hours:\n", "  hours:\n    label: our opening hours\n")
    call = Call(config(text))
    got = await call.say("speak to a person about opening hours")
    assert got == "Sorry, did you mean our opening hours, or operator?"
    assert await call.turn("the second one") == ["Connecting you now.", Transfer("operator")]

    call = Call(config(text))
    await call.turn("speak to a person about opening hours")
    assert await call.say("the opening hours") == f"{HOURS} {ANYTHING_ELSE}"


async def test_unclear_clarification_answer_is_a_miss() -> None:
    call = Call()
    await call.turn("call me back about the hours")
    assert await call.turn("what is the weather") == [FALLBACK]


async def test_margin_zero_never_asks() -> None:
    call = Call(config(margin=0.0))
    await call.turn("call me back about the hours")
    assert call.responder.last_intent in ("callback", "hours")


# ------------------------------------------------------------------------------ more slot types

APPOINTMENT = """
intents:
  appointment:
    examples: ["book an appointment", "make an appointment", "appointment"]
    slots:
      - name: day
        type: weekday
        ask: "What day would you like?"
      - name: time
        type: time
        ask: "What time on {day}?"
        confirm: "That's {day} at {time}. Shall I book it?"
    say: "Booked for {day} at {time}."
  survey:
    examples: ["take the survey"]
    slots:
      - {name: member, type: yes_no, ask: "Are you a member?"}
      - {name: account, type: digits, ask: "Your account number?", min_digits: 4, max_digits: 6}
      - {name: comment, type: text, ask: "Any comment?"}
      - {name: day, type: weekday, ask: "Which day?", default: "any day"}
    say: "Thanks: {member}, {account}, {comment}, {day}."
    action: {send_dtmf: "42"}
anything_else: null
"""


async def test_appointment_day_time_and_confirmation() -> None:
    call = Call(config(APPOINTMENT))
    assert await call.say("i need a point meant") == "What day would you like?"
    assert await call.say("on wensday") == "What time on Wednesday?"
    assert await call.say("at four") == "That's Wednesday at 4 PM. Shall I book it?"  # a bare 4 is PM
    assert (
        await call.say("no make it thursday at ten thirty") == "That's Thursday at 10:30 AM. Shall I book it?"
    )
    assert await call.say("yes please") == "Booked for Thursday at 10:30 AM."
    assert call.responder.collected == {"appointment": {"day": "2026-11-26", "time": "10:30"}}


async def test_values_given_with_the_request_are_taken() -> None:
    call = Call(config(APPOINTMENT))
    got = await call.say("can i book an appointment for tomorrow at half past two")
    assert got == "That's Monday at 2:30 PM. Shall I book it?"
    assert await call.say("no") == "Okay, let's try again. What time on Monday?"
    assert await call.say("nine a.m.") == "That's Monday at 9 AM. Shall I book it?"


async def test_yes_no_digits_text_and_default_slots_then_send_dtmf() -> None:
    call = Call(config(APPOINTMENT))
    assert await call.say("take the survey") == "Are you a member?"
    assert await call.say("yeah i am") == "Your account number?"
    assert await call.say(dtmf="12#") == "Sorry, I didn't get that. Your account number?"
    assert await call.say("one two three four five") == "Any comment?"
    assert await call.say("the music on hold is too loud") == "Which day?"
    items = await call.turn("whenever really")
    assert items == ["Thanks: yes, 1 2, 3 4 5, the music on hold is too loud, any day.", SendDtmf("42")]
    assert call.responder.collected["survey"] == {
        "member": "yes",
        "account": "12345",
        "comment": "the music on hold is too loud",
        "day": "any day",
    }


async def test_correcting_an_earlier_slot_at_the_confirmation() -> None:
    call = Call(config(APPOINTMENT))
    await call.turn("make an appointment for tuesday")
    assert await call.say("at 4") == "That's Tuesday at 4 PM. Shall I book it?"
    assert await call.say("no sorry wednesday") == "That's Wednesday at 4 PM. Shall I book it?"
    assert await call.say("yes") == "Booked for Wednesday at 4 PM."
    assert call.responder.collected["appointment"] == {"day": "2026-11-25", "time": "16:00"}


async def test_keypad_yes_and_leaving_a_text_slot() -> None:
    call = Call(config(APPOINTMENT))
    await call.turn("take the survey")
    assert await call.say(dtmf="1") == "Your account number?"  # 1 = yes, 2 = no
    assert await call.say(dtmf="1234#") == "Any comment?"
    assert await call.say("can i book an appointment instead") == "What day would you like?"
    assert call.responder.collected["survey"] == {"member": "yes", "account": "1234"}


def test_speaking_values() -> None:
    assert speak_digits("5551234567") == "5 5 5, 1 2 3, 4 5 6 7"
    assert speak_digits("5551234") == "5 5 5, 1 2 3 4"
    assert speak_digits("07700123456") == "0 7 7, 0 0 1 2, 3 4 5 6"
    assert speak_digits("1234") == "1 2 3 4"
    assert speak_digits("12345") == "1 2, 3 4 5"
    assert speak_time(dt.time(14, 30)) == "2:30 PM"
    assert speak_time(dt.time(9, 5)) == "9:05 AM"
    assert speak_time(dt.time(12, 0)) == "12 PM"
    assert speak_time(dt.time(0, 0)) == "12 AM"


# ---------------------------------------------------------------------------- the conversation


async def test_turns_are_recorded_in_the_conversation() -> None:
    call = Call()
    await call.turn("call me back")
    await call.turn(dtmf="5551234#")
    await call.turn(silence_ms=8000)
    roles = [(m.role, m.content) for m in call.conversation.messages]
    assert roles == [
        ("user", "call me back"),
        ("assistant", ASK_PHONE),
        ("user", "[pressed keys: 5551234#]"),
        ("assistant", "I have 5 5 5, 1 2 3 4. Is that right?"),
        ("user", "[caller silent for 8 s]"),
        ("assistant", "Are you still there? I have 5 5 5, 1 2 3 4. Is that right?"),
    ]


async def test_a_reply_closed_early_is_recorded_as_far_as_it_went() -> None:
    call = Call(config(APPOINTMENT.replace("anything_else: null", "anything_else: Anything else?")))
    for text in ("take the survey", "yes", "1234", "fine"):
        await call.turn(text)
    gen = call.responder.respond(UserInput(text="any day"), call.conversation)
    assert await anext(gen) == "Thanks: yes, 1 2 3 4, fine, any day."
    await gen.aclose()  # the caller barged in: the keys and "Anything else?" never came
    assert [(m.role, m.content) for m in call.conversation.messages[-2:]] == [
        ("user", "any day"),
        ("assistant", "Thanks: yes, 1 2 3 4, fine, any day."),
    ]


async def test_pieces_are_separated_for_the_sentence_splitter() -> None:
    call = Call(config(APPOINTMENT.replace("anything_else: null", "anything_else: Anything else?")))
    for text in ("take the survey", "yes", "1234", "fine"):
        await call.turn(text)
    items = await call.turn("tuesday")
    assert items[0] == "Thanks: yes, 1 2 3 4, fine, Tuesday."
    assert items[1] == SendDtmf("42")
    assert items[2] == " Anything else?"  # leading space: "Tuesday.Anything" would not split


# ------------------------------------------------------------------------------ config validation


def error_of(text: str) -> str:
    with pytest.raises(ValidationError) as info:
        config(text)
    return str(info.value)


def test_unknown_placeholder_names_the_field_and_the_fix() -> None:
    msg = error_of(FLOW.replace("back on {phone}.", "back on {phon}."))
    assert "intents.callback" in msg
    assert "say: placeholder {phon} is not a slot of this intent" in msg
    assert "known here: phone" in msg


def test_placeholder_of_a_later_slot_is_refused_in_ask() -> None:
    msg = error_of(APPOINTMENT.replace('ask: "What day would you like?"', 'ask: "Day for {time}?"'))
    assert "slots[0].ask: placeholder {time} is not a slot asked before this one" in msg


def test_bad_dtmf_target_and_key() -> None:
    msg = error_of(FLOW.replace("1: hours", "1: hourz"))
    assert "dtmf" in msg and "'hourz' is not an intent" in msg and "hours" in msg
    msg = error_of(FLOW.replace("1: hours", '"12": hours'))
    assert "key '12' must be one keypad key" in msg


def test_unknown_field_is_named() -> None:
    msg = error_of(FLOW.replace("max_fallbacks: 2", "max_fallback: 2"))
    assert "max_fallback" in msg and "Extra inputs are not permitted" in msg
    msg = error_of(FLOW.replace("      retries: 2", "      retry: 2"))
    assert "intents.callback.slots.0.retry" in msg


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("{}", "exactly one of {transfer: <target>}, {end_call: true} or {send_dtmf: <keys>}"),
        ('{transfer: "operator", end_call: true}', "this one sets transfer, end_call"),
        ('{send_dtmf: "12x"}', "send_dtmf: '12x' must be keys"),
        ('{transfer: " "}', "transfer: empty target"),
        ("{hangup: true}", "hangup"),
    ],
)
def test_bad_actions(action: str, expected: str) -> None:
    msg = error_of(FLOW.replace('action: {transfer: "operator"}', f"action: {action}"))
    assert "intents.operator.action" in msg
    assert expected in msg


def test_other_checks() -> None:
    assert "reserved for the built-in repeat" in error_of(FLOW.replace("  goodbye:\n", "  repeat:\n"))
    assert "anything_else_no: 'farewell' is not an intent" in error_of(
        FLOW.replace("anything_else_no: goodbye", "anything_else_no: farewell")
    )
    assert "type" in error_of(FLOW.replace("type: phone_number", "type: phone"))
    assert "does nothing" in error_of(
        FLOW.replace("  goodbye:\n", "  idle:\n    examples: [idle]\n  goodbye:\n")
    )
    assert "no examples and no dtmf key" in error_of(
        FLOW.replace('examples: ["bye", "that\'s all thanks", "nothing else"]', "examples: []")
    )
    assert "{first} and {second}" in error_of(FLOW + 'clarify: "Did you mean {a}?"\n')


def test_defaults_work() -> None:
    cfg = FlowConfig()
    assert cfg.intents == {} and cfg.threshold == 0.6
    assert all(f.description for f in FlowConfig.model_fields.values())


async def test_empty_flow_still_answers() -> None:
    call = Call(FlowConfig())
    assert await call.say("hello") == FlowConfig().fallback
    assert await call.say("say that again") == FlowConfig().fallback


# ----------------------------------------------------------------------------- the default agent


def default_agent() -> dict[str, Any]:
    text = resources.files("voxgate.agent").joinpath("default_agent.yaml").read_text()
    return yaml.safe_load(text)


def test_default_agent_yaml_is_a_valid_flow() -> None:
    data = default_agent()
    assert data["name"] == "default"
    assert len(data["greeting"].split()) <= 20
    assert "automated" in data["greeting"]
    cfg = FlowConfig.model_validate(data["flow"])
    assert {"hours", "address", "about", "callback", "appointment", "operator", "goodbye"} <= set(cfg.intents)
    assert cfg.dtmf["0"] == "operator"


async def test_default_agent_callback_conversation() -> None:
    data = default_agent()
    call = Call(FlowConfig.model_validate(data["flow"]), greeting=data["greeting"])
    assert "voxgate demo line" in (call.responder.greeting() or "")
    got = await call.say("hi um what are you're opening ours")
    assert got.startswith("We're open nine to five, Monday to Friday.")
    assert got.endswith("Is there anything else I can help with?")
    got = await call.say("yeah could somebody call me back")
    assert got.startswith("What number should we call you on?")
    assert await call.say("what was that") == f"Sorry, I didn't get that. {got}"  # asked again
    assert await call.say(dtmf="5551234567#") == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    assert await call.say("yep") == "Which day suits you best?"
    got = await call.say("fry day works")
    assert got == (
        "Thanks. We'll call you on 5 5 5, 1 2 3, 4 5 6 7, on Friday. Is there anything else I can help with?"
    )
    assert call.responder.collected == {"callback": {"phone": "5551234567", "day": "2026-11-27"}}
    assert await call.say("sorry say that again") == got
    items = await call.turn("no thanks")
    assert items == ["Thanks for calling. Goodbye!", EndCall("flow intent 'goodbye'")]


async def test_default_agent_other_paths() -> None:
    cfg = FlowConfig.model_validate(default_agent()["flow"])
    call = Call(cfg)
    assert (await call.say("call me back")).startswith("What number")
    assert await call.say("555 123 4567") == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    await call.turn("yes")
    got = await call.say("any day is fine")  # not a weekday: the slot's default, not another intent
    assert "on the next working day." in got

    call = Call(cfg)
    assert await call.say("i'd like to book a point meant for tomorrow") == "And what time on Monday?"
    assert await call.say("three p.m.") == "That's Monday at 3 PM. Shall I book it?"
    assert (await call.say("yes")).startswith("You're booked for Monday at 3 PM.")

    call = Call(cfg)
    assert (await call.say("what is box gate")).startswith("This is a demo of voxgate")
    assert await call.turn("can i talk to a real human") == [
        "Sure, connecting you now.",
        Transfer("operator"),
    ]
