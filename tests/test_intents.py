"""Intent matching and slot extraction for the offline flow agent (voxgate.agent.intents)."""

from __future__ import annotations

import datetime as dt

import pytest

from voxgate.agent.intents import (
    IntentMatcher,
    extract_phone_number,
    extract_time,
    extract_weekday,
    extract_yes_no,
    normalize,
    phonetic_key,
    token_similarity,
)

INTENTS = {
    "transfer": [
        "talk to a human",
        "speak to someone",
        "speak to a person",
        "operator",
        "representative",
        "real person",
        "customer service agent",
    ],
    "hours": ["opening hours", "when are you open", "what time do you close", "business hours"],
    "billing": ["billing question", "my bill", "invoice", "payment", "charge on my account"],
    "appointment": ["appointment", "book an appointment", "schedule a visit", "reschedule"],
    "goodbye": ["goodbye", "bye", "that is all", "nothing else"],
}


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher(INTENTS, threshold=0.6)


# ---------------------------------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,   World!", "hello world"),
        ("I don't WANT that.", "i do not want that"),
        ("I can't; won't!", "i can not will not"),
        ("What's your name?", "what is your name"),
        ("I’m here", "i am here"),
        ("twenty five people", "25 people"),
        ("call me at five", "call me at 5"),
        ("three p.m.", "3 pm"),
        ("3pm", "3 pm"),
        ("  ", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_can_keep_number_words() -> None:
    assert normalize("Twenty five", numbers=False) == "twenty five"


def test_phonetic_key_and_similarity() -> None:
    assert phonetic_key("billing") != phonetic_key("building")
    assert phonetic_key("phone") == phonetic_key("fone")
    assert token_similarity("billing", "building") >= 0.75
    assert token_similarity("appointment", "apointmeant") >= 0.9
    assert token_similarity("billing", "weather") == 0.0
    assert token_similarity("hi", "i") == 0.0  # short words need an exact match
    assert token_similarity("5", "6") == 0.0
    assert token_similarity("opening", "open") == 0.9  # light stemming
    assert token_similarity("bills", "bill") == 0.9


# ------------------------------------------------------------------------------------------ intents


@pytest.mark.parametrize(
    ("utterance", "intent"),
    [
        ("I want to talk to a human", "transfer"),
        ("can I speak to someone", "transfer"),
        ("Operator, please.", "transfer"),
        ("Can I talk to a real person?", "transfer"),
        ("put me through to a representative", "transfer"),
        ("I'd like to speak to a representitive", "transfer"),  # STT misspelling
        ("um I want to talk to a humane", "transfer"),
        ("What are your opening hours?", "hours"),
        ("when are you open", "hours"),
        ("what time do you close today", "hours"),
        ("what are your business ours", "hours"),  # dropped h on a phone line
        ("I have a billing question", "billing"),
        ("I have a building question", "billing"),  # classic STT error
        ("there's a charge on my account I don't recognize", "billing"),
        ("I got an in voice from you", "billing"),
        ("I'd like to book an appointment", "appointment"),
        ("I need a point meant", "appointment"),  # word split by STT
        ("can I reschedule", "appointment"),
        ("speak to some one", "transfer"),  # "someone" split, and "one" must not become "1"
        ("what ours are you open", "hours"),
        ("what's the opening time", "hours"),
        ("my bills are too high", "billing"),
        ("I have a billing quest in", "billing"),
        ("can I speak with a customer agent", "transfer"),  # words from several phrases
        ("okay thanks, goodbye", "goodbye"),
        ("bye bye", "goodbye"),
        ("no that's all thank you", "goodbye"),
    ],
)
def test_match_intents(matcher: IntentMatcher, utterance: str, intent: str) -> None:
    m = matcher.match(utterance)
    assert m is not None, utterance
    assert m.name == intent, (utterance, m)
    assert 0.6 <= m.score <= 1.0


@pytest.mark.parametrize(
    "utterance",
    [
        "what's the weather like in Paris",
        "my dog ate my homework",
        "I have a question",
        "hello",
        "",
        "um uh",
        "the quick brown fox jumps over the lazy dog",
        "I have a question about time",  # one word each from two intents
    ],
)
def test_no_match_on_unrelated(matcher: IntentMatcher, utterance: str) -> None:
    assert matcher.match(utterance) is None


def test_match_reports_the_phrase(matcher: IntentMatcher) -> None:
    m = matcher.match("billing question")
    assert m is not None
    assert m.matched_phrase == "billing question"
    assert m.score == 1.0
    assert not m.ambiguous


def test_stt_error_scores_lower_than_exact(matcher: IntentMatcher) -> None:
    exact = matcher.match("billing question")
    noisy = matcher.match("building question")
    assert exact is not None and noisy is not None
    assert noisy.score < exact.score


def test_negated_intent_does_not_fire(matcher: IntentMatcher) -> None:
    m = matcher.match("I don't want to talk to a human, I have a billing question")
    assert m is not None and m.name == "billing"
    assert matcher.match("no, not the operator") is None


def test_ambiguity_is_reported(matcher: IntentMatcher) -> None:
    m = matcher.match("can I speak to someone about my bill")
    assert m is not None
    assert m.ambiguous
    assert {m.name, m.runner_up} == {"transfer", "billing"}
    assert m.score - m.runner_up_score < matcher.margin


def test_margin_zero_disables_ambiguity() -> None:
    m = IntentMatcher(INTENTS, margin=0.0).match("can I speak to someone about my bill")
    assert m is not None and not m.ambiguous


def test_threshold_controls_matching() -> None:
    strict = IntentMatcher(INTENTS, threshold=0.99)
    assert strict.match("building question") is None
    assert strict.match("billing question") is not None


def test_shared_words_weigh_less() -> None:
    m = IntentMatcher({"a": ["cancel my order"], "b": ["track my order"], "c": ["hello"]})
    got = m.match("I want to cancel")
    assert got is not None and got.name == "a"


def test_bad_intents_rejected() -> None:
    with pytest.raises(ValueError):
        IntentMatcher({})
    with pytest.raises(ValueError):
        IntentMatcher({"x": []})
    with pytest.raises(ValueError):
        IntentMatcher({"x": ["?!"]})


# -------------------------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("five five five, one two three four", "5551234"),
        ("my number is 555-123-4567", "5551234567"),
        ("(555) 123 4567", "5551234567"),
        ("double five five one two three four", "5551234"),
        ("oh seven seven double oh one two three four five six", "07700123456"),
        ("triple five one two three four", "5551234"),
        ("eight hundred five five five one two one two", "8005551212"),
        ("call me at five five five twelve thirty four", "5551234"),
        ("five five five dash one two three four", "5551234"),
        ("it's 555 one two three four", "5551234"),
        ("plus 44 20 7946 0958", "442079460958"),
        ("oh my number is nine one seven five five five oh one nine nine", "9175550199"),
        ("five five five uh one two three four", "5551234"),
        ("Five. Five. Five. One. Two. Three. Four.", "5551234"),
    ],
)
def test_phone_numbers(text: str, expected: str) -> None:
    assert extract_phone_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I have 2 kids",
        "five five five",  # too short
        "one two three four five six seven eight nine one two three four five six seven",  # 16 digits
        "I don't have a phone",
        "",
    ],
)
def test_phone_number_rejected(text: str) -> None:
    assert extract_phone_number(text) is None


def test_phone_prefers_the_valid_run() -> None:
    assert extract_phone_number("I have 2 kids and my number is 5551234") == "5551234"


# ------------------------------------------------------------------------------------------ weekday

SUNDAY = dt.date(2026, 11, 22)  # a Sunday
WEDNESDAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    ("text", "today", "weekday", "date"),
    [
        ("monday please", SUNDAY, 0, dt.date(2026, 11, 23)),
        ("how about Tuesday?", SUNDAY, 1, dt.date(2026, 11, 24)),
        ("next tuesday", SUNDAY, 1, dt.date(2026, 11, 24)),
        ("on wensday", SUNDAY, 2, dt.date(2026, 11, 25)),  # STT spelling
        ("fry day works", SUNDAY, 4, dt.date(2026, 11, 27)),  # split word
        ("thirsday", SUNDAY, 3, dt.date(2026, 11, 26)),
        ("tomorrow", SUNDAY, 0, dt.date(2026, 11, 23)),
        ("today if possible", WEDNESDAY, 2, WEDNESDAY),
        ("the day after tomorrow", WEDNESDAY, 4, dt.date(2026, 11, 27)),
        ("wednesday", WEDNESDAY, 2, WEDNESDAY),
        ("next wednesday", WEDNESDAY, 2, dt.date(2026, 12, 2)),
        ("monday", WEDNESDAY, 0, dt.date(2026, 11, 30)),
        ("saturday morning", WEDNESDAY, 5, dt.date(2026, 11, 28)),
    ],
)
def test_weekday(text: str, today: dt.date, weekday: int, date: dt.date) -> None:
    got = extract_weekday(text, today=today)
    assert got is not None, text
    assert (got.weekday, got.date) == (weekday, date)


def test_weekday_name() -> None:
    got = extract_weekday("friday", today=SUNDAY)
    assert got is not None and got.name == "friday"


@pytest.mark.parametrize("text", ["someday", "my birthday", "whenever", "", "the day"])
def test_weekday_none(text: str) -> None:
    assert extract_weekday(text, today=SUNDAY) is None


# --------------------------------------------------------------------------------------------- time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ten thirty", dt.time(10, 30)),
        ("10:30", dt.time(10, 30)),
        ("at 3 pm", dt.time(15, 0)),
        ("3pm", dt.time(15, 0)),
        ("three p.m.", dt.time(15, 0)),
        ("nine a.m.", dt.time(9, 0)),
        ("12 am", dt.time(0, 0)),
        ("noon", dt.time(12, 0)),
        ("around midday", dt.time(12, 0)),
        ("midnight", dt.time(0, 0)),
        ("half past two", dt.time(2, 30)),
        ("half past two in the afternoon", dt.time(14, 30)),
        ("quarter to four", dt.time(3, 45)),
        ("quarter past nine", dt.time(9, 15)),
        ("twenty past six", dt.time(6, 20)),
        ("five o'clock", dt.time(5, 0)),
        ("at 4 in the afternoon", dt.time(16, 0)),
        ("ten oh five", dt.time(10, 5)),
        ("two forty five pm", dt.time(14, 45)),
        ("14:00", dt.time(14, 0)),
        ("can we do it at eleven", dt.time(11, 0)),
    ],
)
def test_time(text: str, expected: dt.time) -> None:
    assert extract_time(text) == expected


@pytest.mark.parametrize("text", ["I have three kids", "whenever", "", "sometime next week", "25:99"])
def test_time_none(text: str) -> None:
    assert extract_time(text) is None


# ------------------------------------------------------------------------------------------- yes/no


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "Yeah.",
        "yep",
        "sure",
        "sure thing",
        "correct",
        "that's right",
        "that is correct",
        "yes please",
        "of course",
        "absolutely",
        "uh huh",
        "sounds good",
        "no problem",
        "no wait, yes",
        "I think so",
        "go ahead",
        "ok",
    ],
)
def test_yes(text: str) -> None:
    assert extract_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "no",
        "No.",
        "nope",
        "nah",
        "not really",
        "wrong",
        "that's wrong",
        "no I don't want that",
        "absolutely not",
        "definitely not",
        "that's not right",
        "that is not correct",
        "I don't think so",
        "no thanks",
        "yeah no",
        "incorrect",
        "yes, actually no",
    ],
)
def test_no(text: str) -> None:
    assert extract_yes_no(text) is False


@pytest.mark.parametrize(
    "text",
    ["", "hello", "I'm not sure", "maybe", "I don't know", "what was the question", "yes no yes no"],
)
def test_yes_no_unclear(text: str) -> None:
    assert extract_yes_no(text) is None
