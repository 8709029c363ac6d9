"""SSEDecoder: events out of bytes cut anywhere, with LF, CRLF or CR line ends."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxgate.providers.llm import sse
from voxgate.providers.llm.sse import SSEDecoder


def decode(body: bytes, cuts: list[int] | None = None) -> tuple[list[bytes], bytes | None]:
    decoder = SSEDecoder()
    out: list[bytes] = []
    points = [0, *sorted(set(cuts or [])), len(body)]
    for a, b in itertools.pairwise(points):
        out += decoder.feed(body[a:b])
    events, tail = decoder.close()
    return out + events, tail


STREAM = (
    b": keep-alive\n\n"
    b'data: {"a":1}\n\n'
    b"event: ignored\nid: 7\nretry: 100\n"
    b'data:{"b":2}\n\n'
    b"data: line one\ndata: line two\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [b'{"a":1}', b'{"b":2}', b"line one\nline two", b"[DONE]"]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_cut_point_gives_the_same_events(newline: bytes) -> None:
    body = STREAM.replace(b"\n", newline)
    for cut in range(len(body) + 1):
        assert decode(body, [cut]) == (EXPECTED, None), cut
    assert decode(body, list(range(len(body)))) == (EXPECTED, None)  # one byte at a time


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [b"x"]


def test_comments_only_produce_nothing() -> None:
    assert decode(b": ping\n\n: OPENROUTER PROCESSING\r\n\r\n\n\n") == ([], None)


def test_event_without_its_blank_line_is_left_for_close() -> None:
    assert decode(b'data: {"a":1}\n\ndata: [DONE]') == ([b'{"a":1}'], b"[DONE]")
    assert decode(b"data: [DONE]\n") == ([], b"[DONE]")
    assert decode(b'data: {"trunc') == ([], b'{"trunc')


def test_a_line_that_never_ends_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_LINE", 100)
    decoder = SSEDecoder()
    with pytest.raises(ValueError, match="longer than 100"):
        for _ in range(20):
            decoder.feed(b"x" * 10)


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
        ),
        max_size=8,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(0, 400), max_size=10),
)
def test_any_payloads_any_cuts(payloads: list[str], newline: bytes, cuts: list[int]) -> None:
    body = b"".join(b"data: " + p.encode() + newline + newline for p in payloads)
    expected = [p.encode() for p in payloads]
    got, tail = decode(body, [c for c in cuts if c <= len(body)])
    # an empty `data: ` line still makes an event with empty data
    assert got == expected
    assert tail is None
