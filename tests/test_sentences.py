"""SentenceSplitter, sentences() and for_speech(): where LLM text is cut for TTS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxgate.agent.sentences import SentenceSplitter, for_speech, sentences


def split(text: str, step: int = 0, **options: int | None) -> list[str]:
    """All sentences of `text` fed whole (step 0) or `step` characters at a time."""
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    out: list[str] = []
    if step:
        for i in range(0, len(text), step):
            out += splitter.push(text[i : i + step])
    else:
        out += splitter.push(text)
    return out + splitter.flush()


CASES = [
    # plain ends
    (
        "I can help with that. What is your order number?",
        ["I can help with that.", "What is your order number?"],
    ),
    ("That's great! Anything else?", ["That's great!", "Anything else?"]),
    ("Really?! I did not know that.", ["Really?! I did not know that."]),  # a short one joins the next
    ("A short one at the end is sent alone. Bye.", ["A short one at the end is sent alone.", "Bye."]),
    (
        "Your order shipped today. It should arrive on Monday.",
        ["Your order shipped today.", "It should arrive on Monday."],
    ),
    # abbreviations and titles
    (
        "Dr. Smith can see you on Tuesday. Shall I book it?",
        ["Dr. Smith can see you on Tuesday.", "Shall I book it?"],
    ),
    (
        "Mrs. Jones and Mr. Brown are here. They are waiting.",
        ["Mrs. Jones and Mr. Brown are here.", "They are waiting."],
    ),
    (
        "Bring an ID, e.g. a passport or a licence. Thank you.",
        ["Bring an ID, e.g. a passport or a licence.", "Thank you."],
    ),
    ("Use the app, i.e. the blue one. It is free.", ["Use the app, i.e. the blue one.", "It is free."]),
    ("It's us vs. them today. Fun, right?", ["It's us vs. them today.", "Fun, right?"]),
    ("I like apples, pears, etc. but not plums.", ["I like apples, pears, etc. but not plums."]),
    ("I like apples, pears, etc. Do you like plums?", ["I like apples, pears, etc.", "Do you like plums?"]),
    ("The store is on Main St. near the park.", ["The store is on Main St. near the park."]),
    ("Ask for J. R. Smith at the desk. He knows.", ["Ask for J. R. Smith at the desk.", "He knows."]),
    # numbers, times, decimals, money
    ("It costs $3.50 per month. That is cheap.", ["It costs $3.50 per month.", "That is cheap."]),
    ("Pi is about 3.14159 and e is 2.718. Neat.", ["Pi is about 3.14159 and e is 2.718.", "Neat."]),
    ("Come at 10:30 tomorrow. We open at 9.", ["Come at 10:30 tomorrow.", "We open at 9."]),
    (
        "We open at 9 a.m. tomorrow and close at 5 p.m. on Friday.",
        ["We open at 9 a.m. tomorrow and close at 5 p.m. on Friday."],
    ),
    ("We close at 5 p.m. See you then!", ["We close at 5 p.m.", "See you then!"]),
    ("Call ext. 204 for billing. Bye now.", ["Call ext. 204 for billing.", "Bye now."]),
    ("Your seat is No. 14 on the left. Enjoy it.", ["Your seat is No. 14 on the left.", "Enjoy it."]),
    ("Did you get it? No. I did not get it.", ["Did you get it?", "No. I did not get it."]),
    ("The total is 42. Would you like a receipt?", ["The total is 42.", "Would you like a receipt?"]),
    # ellipses
    ("Well... I suppose that works.", ["Well... I suppose that works."]),
    ("Let me think... maybe next week works.", ["Let me think... maybe next week works."]),
    (
        "Let me look that up for you… Found it, it shipped.",
        ["Let me look that up for you…", "Found it, it shipped."],
    ),
    # quotes and brackets after the mark
    (
        'She said "hello there." Then she left the room.',
        ['She said "hello there."', "Then she left the room."],
    ),
    (
        "Press the green button (the big one). Then wait.",
        ["Press the green button (the big one).", "Then wait."],
    ),
    # URLs, e-mails, versions
    (
        "Visit example.com/help for details. It is quick.",
        ["Visit example.com/help for details.", "It is quick."],
    ),
    ("Mail help@shop.co.uk any time. We answer fast.", ["Mail help@shop.co.uk any time.", "We answer fast."]),
    (
        "Update to version 2.4.1 first. Then restart it.",
        ["Update to version 2.4.1 first.", "Then restart it."],
    ),
    # newlines and lists
    (
        "Here are the steps:\n1. Open the app.\n2. Tap settings.\n3. Choose help.",
        ["Here are the steps:", "1. Open the app.", "2. Tap settings.", "3. Choose help."],
    ),
    (
        "First line without a period\nSecond line without one",
        ["First line without a period", "Second line without one"],
    ),
    (
        "Paragraph one is here.\n\nParagraph two is here.",
        ["Paragraph one is here.", "Paragraph two is here."],
    ),
    # the whole reply is tiny
    ("Hi.", ["Hi."]),
    ("Okay!", ["Okay!"]),
    ("", []),
    ("   ", []),
    ("No trailing punctuation", ["No trailing punctuation"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
@pytest.mark.parametrize("step", [0, 1, 3, 7])
def test_sentences(text: str, expected: list[str], step: int) -> None:
    assert split(text, step) == expected


def test_short_sentences_are_held_and_joined() -> None:
    assert split("Hi. Sure. How can I help you today?") == ["Hi. Sure. How can I help you today?"]
    assert split("Hi. Sure. How can I help you today?", min_chars=0) == [
        "Hi.",
        "Sure.",
        "How can I help you today?",
    ]
    assert split("Yes. No.", min_chars=20) == ["Yes. No."]


def test_a_sentence_is_out_as_soon_as_the_next_delta_confirms_it() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Your order shipped today") == []
    assert splitter.push(".") == []  # could still be "today.com" or "3.5"
    assert splitter.push(" It") == ["Your order shipped today."]
    assert splitter.push(" arrives Monday.") == []
    assert splitter.flush() == ["It arrives Monday."]
    assert splitter.flush() == []


def test_an_abbreviation_at_the_end_waits_for_the_next_word() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("We close at 5 p.m. ") == []  # "p.m. tomorrow" or "p.m. See you"?
    assert splitter.push("See you then.") == ["We close at 5 p.m."]


def test_long_run_on_sentences_are_cut_at_a_clause() -> None:
    text = "I checked your account and your order, " * 8 + "all good."
    out = split(text, 5, max_chars=100)
    assert all(len(s) <= 100 for s in out)
    assert all(s.endswith(",") for s in out[:-1])
    assert " ".join(out) == text.strip()


def test_long_text_without_any_break_is_cut_at_a_space() -> None:
    out = split("word " * 100, max_chars=60)
    assert all(len(s) <= 60 for s in out)
    assert " ".join(out).split() == ["word"] * 100


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        SentenceSplitter(min_chars=-1)
    with pytest.raises(ValueError):
        SentenceSplitter(min_chars=20, max_chars=10)


@given(st.text(alphabet="ab .!?…\n,3:e.g()\"'", max_size=120), st.integers(1, 9))
def test_no_text_is_lost_or_reordered(text: str, step: int) -> None:
    """Whatever the input and however it is chunked, the words come out in order, all of them."""
    out = split(text, step, min_chars=4, max_chars=30)
    assert " ".join(out).split() == text.split()
    assert all(s == s.strip() and s for s in out)


@given(st.text(alphabet="ab .!?…\n,3:e.g()\"'", max_size=120), st.integers(1, 9))
def test_chunking_does_not_change_the_result(text: str, step: int) -> None:
    assert split(text, step) == split(text)


async def test_sentences_helper_streams() -> None:
    async def deltas() -> AsyncIterator[str]:
        for piece in [
            "**Sure**",
            ", I can",
            " help. ",
            "Your order",
            " is [here](https://x.y/a.b).",
            "\n- Bye",
        ]:
            yield piece

    assert [s async for s in sentences(deltas())] == [
        "**Sure**, I can help.",
        "Your order is [here](https://x.y/a.b).",
        "- Bye",
    ]
    assert [s async for s in sentences(deltas(), speech=True)] == [
        "Sure, I can help.",
        "Your order is here.",
        "Bye",
    ]


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        ("**Important:** bring your ID.", "Important: bring your ID."),
        ("This is *really* easy and __very__ quick.", "This is really easy and very quick."),
        ("Run `reset` then wait.", "Run reset then wait."),
        ("## Opening hours", "Opening hours"),
        ("- Monday to Friday", "Monday to Friday"),
        ("* Saturday", "Saturday"),
        ("> Quoted policy text.", "Quoted policy text."),
        ("See [our website](https://example.com/help_(faq)) for more.", "See our website for more."),
        ("![a map](map.png) We are here.", "a map We are here."),
        ("Call <tel:+15551234567> now.", "Call tel:+15551234567 now."),
        ("```python", ""),
        ("---", ""),
        ("~~old~~ new price", "old new price"),
        # left alone
        ("Press # to confirm.", "Press # to confirm."),
        ("Room #5 is free.", "Room #5 is free."),
        ("5 * 3 is 15.", "5 * 3 is 15."),
        ("Type snake_case_name exactly.", "Type snake_case_name exactly."),
        ("It is -5 degrees - cold.", "It is -5 degrees - cold."),
        ("Plain text.", "Plain text."),
        # half of an emphasis pair whose other half is in another sentence
        ("**Open daily.", "Open daily."),
    ],
)
def test_for_speech(markdown: str, spoken: str) -> None:
    assert for_speech(markdown) == spoken
