"""G.711 μ-law / A-law against the standard (ITU-T G.711), not against the module's own tables.

Every expected value here is either a literal from the standard or computed in this file from the
standard's segment (chord) rules, written out independently of voxgate.audio.g711.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxgate.audio import g711

INT16 = st.integers(min_value=-32768, max_value=32767)


def pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def samples(data: bytes) -> list[int]:
    return np.frombuffer(data, dtype="<i2").astype(int).tolist()


# --- reference G.711, written from the standard ------------------------------------------------
#
# μ-law (G.711 table 2a): chord c (0..7), step s (0..15). In the standard's 14-bit scale the decoder
# output is ((2s + 33) << c) - 33; the 16-bit sample is 4 times that. The transmitted byte is the
# bit inversion of (sign << 7 | c << 4 | s), sign = 1 for negative.
#
# A-law (G.711 table 1a): segment c, step s. In 12-bit magnitude units the output is 2s + 1 for
# c = 0 and (2s + 33) << (c - 1) for c >= 1; the 16-bit sample is 8 times that. The transmitted
# byte is (sign << 7 | c << 4 | s) with the even bits inverted (XOR 0x55), sign = 1 for positive.


def ref_ulaw_byte(negative: bool, c: int, s: int) -> int:
    return ~((int(negative) << 7) | (c << 4) | s) & 0xFF


def ref_ulaw_value(c: int, s: int) -> int:
    return 4 * (((2 * s + 33) << c) - 33)


def ref_ulaw_lower_edge(c: int, s: int) -> int:
    """Smallest 16-bit magnitude that encodes to (c, s): the decision value below it."""
    if c == 0 and s == 0:
        return 0
    # Half a step (1 << c in 14-bit units) below the output value.
    return 4 * ((((2 * s + 33) << c) - 33) - (1 << c))


def ref_alaw_byte(positive: bool, c: int, s: int) -> int:
    return ((int(positive) << 7) | (c << 4) | s) ^ 0x55


def ref_alaw_value(c: int, s: int) -> int:
    return 8 * (2 * s + 1) if c == 0 else 8 * ((2 * s + 33) << (c - 1))


def ref_alaw_lower_edge(c: int, s: int) -> int:
    return 8 * (2 * s) if c == 0 else 8 * ((s + 16) << c)


def ref_ulaw_decode(byte: int) -> int:
    code = ~byte & 0xFF
    c, s = (code >> 4) & 7, code & 15
    v = ref_ulaw_value(c, s)
    return -v if code & 0x80 else v


def ref_alaw_decode(byte: int) -> int:
    code = byte ^ 0x55
    c, s = (code >> 4) & 7, code & 15
    v = ref_alaw_value(c, s)
    return v if code & 0x80 else -v


# Half the quantisation step per segment, in 16-bit units. μ-law: step 2 << c (14-bit) = 8 << c.
# A-law: step 2 in segments 0 and 1, then doubling (12-bit units); times 8 for 16-bit.
ULAW_HALF_STEP = [4 << c for c in range(8)]
ALAW_HALF_STEP = [8] + [8 << (c - 1) for c in range(1, 8)]
ULAW_TOP = 4 * 8159  # the standard's largest decision value (14-bit 8159)


def ulaw_half_step(x: int) -> int:
    """Half the quantisation step of the μ-law segment that holds |x|."""
    a = min(abs(x), ULAW_TOP)
    c = max(c for c in range(8) if ref_ulaw_lower_edge(c, 0) <= a)
    return ULAW_HALF_STEP[c]


def alaw_half_step(x: int) -> int:
    a = x if x >= 0 else -x - 1
    c = max(c for c in range(8) if ref_alaw_lower_edge(c, 0) <= a)
    return ALAW_HALF_STEP[c]


def test_reference_formulas_agree_with_the_standards_literal_values() -> None:
    # Check the reference itself before trusting it for the tables below.
    assert ref_ulaw_decode(0x00) == -32124
    assert ref_ulaw_decode(0x80) == 32124
    assert ref_ulaw_decode(0xFF) == 0
    assert ref_ulaw_decode(0x7F) == 0
    assert ref_alaw_decode(0xD5) == 8
    assert ref_alaw_decode(0x55) == -8
    assert ref_alaw_decode(0xAA) == 32256
    assert ref_alaw_decode(0x2A) == -32256
    # The standard's 14-bit μ-law segment ends 31, 95, 223, ..., 8159 and 13-bit A-law ends 32, 64, ...
    assert [ref_ulaw_lower_edge(c, 0) // 4 for c in range(1, 8)] == [31, 95, 223, 479, 991, 2015, 4063]
    assert [ref_alaw_lower_edge(c, 0) // 8 for c in range(1, 8)] == [32, 64, 128, 256, 512, 1024, 2048]


# --- literal values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byte", "value"), [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0), (0x7E, -8), (0xFE, 8)]
)
def test_ulaw_decode_literals(byte: int, value: int) -> None:
    assert samples(g711.ulaw_decode(bytes([byte]))) == [value]


@pytest.mark.parametrize(("byte", "value"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256)])
def test_alaw_decode_literals(byte: int, value: int) -> None:
    assert samples(g711.alaw_decode(bytes([byte]))) == [value]


@pytest.mark.parametrize(
    ("sample", "byte"), [(0, 0xFF), (-1, 0x7F), (32767, 0x80), (-32768, 0x00), (100, 0xF2)]
)
def test_ulaw_encode_literals(sample: int, byte: int) -> None:
    assert g711.ulaw_encode(pcm(sample)) == bytes([byte])


@pytest.mark.parametrize(("sample", "byte"), [(0, 0xD5), (-1, 0x55), (32767, 0xAA), (-32768, 0x2A)])
def test_alaw_encode_literals(sample: int, byte: int) -> None:
    assert g711.alaw_encode(pcm(sample)) == bytes([byte])


def test_multi_sample_buffers_keep_order() -> None:
    assert g711.ulaw_encode(pcm(0, -1, 32767, -32768, 100)) == bytes([0xFF, 0x7F, 0x80, 0x00, 0xF2])
    assert samples(g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]


# --- full tables from the segment rules --------------------------------------------------------


def test_ulaw_decode_table_matches_segment_formula() -> None:
    expected: dict[int, int] = {}
    for negative in (False, True):
        for c in range(8):
            for s in range(16):
                v = ref_ulaw_value(c, s)
                expected[ref_ulaw_byte(negative, c, s)] = -v if negative else v
    assert sorted(expected) == list(range(256))
    decoded = samples(g711.ulaw_decode(bytes(range(256))))
    assert decoded == [expected[b] for b in range(256)]


def test_alaw_decode_table_matches_segment_formula() -> None:
    expected: dict[int, int] = {}
    for positive in (False, True):
        for c in range(8):
            for s in range(16):
                v = ref_alaw_value(c, s)
                expected[ref_alaw_byte(positive, c, s)] = v if positive else -v
    assert sorted(expected) == list(range(256))
    decoded = samples(g711.alaw_decode(bytes(range(256))))
    assert decoded == [expected[b] for b in range(256)]


def test_ulaw_encoder_decision_values() -> None:
    """At each decision value the code changes: x encodes to (c, s), x - 1 to the code below."""
    for c in range(8):
        for s in range(16):
            if c == 0 and s == 0:
                continue
            edge = ref_ulaw_lower_edge(c, s)
            below = (c, s - 1) if s else (c - 1, 15)
            assert g711.ulaw_encode(pcm(edge)) == bytes([ref_ulaw_byte(False, c, s)]), (c, s, edge)
            assert g711.ulaw_encode(pcm(edge - 1)) == bytes([ref_ulaw_byte(False, *below)]), (c, s, edge)
            # Negative side, one sample away from the decision value (ties are implementation-defined).
            assert g711.ulaw_encode(pcm(-edge - 1)) == bytes([ref_ulaw_byte(True, c, s)]), (c, s, edge)
            assert g711.ulaw_encode(pcm(-edge + 1)) == bytes([ref_ulaw_byte(True, *below)]), (c, s, edge)


def test_alaw_encoder_decision_values() -> None:
    for c in range(8):
        for s in range(16):
            if c == 0 and s == 0:
                continue
            edge = ref_alaw_lower_edge(c, s)
            below = (c, s - 1) if s else (c - 1, 15)
            assert g711.alaw_encode(pcm(edge)) == bytes([ref_alaw_byte(True, c, s)]), (c, s, edge)
            assert g711.alaw_encode(pcm(edge - 1)) == bytes([ref_alaw_byte(True, *below)]), (c, s, edge)
            assert g711.alaw_encode(pcm(-edge - 1)) == bytes([ref_alaw_byte(False, c, s)]), (c, s, edge)
            assert g711.alaw_encode(pcm(-edge + 1)) == bytes([ref_alaw_byte(False, *below)]), (c, s, edge)


def test_ulaw_encoder_clips_above_the_top_decision_value() -> None:
    top_pos, top_neg = ref_ulaw_byte(False, 7, 15), ref_ulaw_byte(True, 7, 15)
    assert g711.ulaw_encode(pcm(ULAW_TOP - 1, ULAW_TOP, 32767)) == bytes([top_pos] * 3)
    assert g711.ulaw_encode(pcm(-ULAW_TOP, -32768)) == bytes([top_neg] * 2)


def test_every_int16_sample_lands_in_its_standard_interval() -> None:
    """Exhaustive: each sample's code is the one whose decision interval holds it."""
    x = np.arange(-32768, 32768, dtype=np.int64)
    data = x.astype("<i2").tobytes()

    u_edges = np.array([ref_ulaw_lower_edge(c, s) for c in range(8) for s in range(16)])
    u_codes = np.frombuffer(g711.ulaw_encode(data), dtype=np.uint8).astype(np.int64)
    u_k = (~u_codes & 0xFF) & 0x7F  # c << 4 | s, which is also the index into u_edges
    u_neg = ((~u_codes & 0xFF) >> 7).astype(bool)
    a = np.abs(x)
    want = np.searchsorted(u_edges, a, side="right") - 1
    assert np.array_equal(u_neg, x < 0)
    ties = np.isin(a, u_edges) & (x < 0)  # a negative sample exactly on a decision value may go either way
    ok = (u_k == want) | (ties & (u_k == want - 1))
    assert ok.all(), x[~ok][:10]

    a_edges = np.array([ref_alaw_lower_edge(c, s) for c in range(8) for s in range(16)])
    a_codes = np.frombuffer(g711.alaw_encode(data), dtype=np.uint8).astype(np.int64) ^ 0x55
    a_k = a_codes & 0x7F
    a_pos = (a_codes >> 7).astype(bool)
    assert np.array_equal(a_pos, x >= 0)
    mag = np.where(x >= 0, x, -x)
    want = np.searchsorted(a_edges, mag, side="right") - 1
    ties = np.isin(mag, a_edges) & (x < 0)
    ok = (a_k == want) | (ties & (a_k == want - 1))
    assert ok.all(), x[~ok][:10]


# --- properties ------------------------------------------------------------------------------


@given(st.lists(INT16, min_size=2, max_size=64))
def test_ulaw_encoding_is_monotonic(xs: list[int]) -> None:
    xs.sort()
    decoded = [ref_ulaw_decode(b) for b in g711.ulaw_encode(pcm(*xs))]
    assert decoded == sorted(decoded)


@given(st.lists(INT16, min_size=2, max_size=64))
def test_alaw_encoding_is_monotonic(xs: list[int]) -> None:
    xs.sort()
    decoded = [ref_alaw_decode(b) for b in g711.alaw_encode(pcm(*xs))]
    assert decoded == sorted(decoded)


def test_encoding_is_monotonic_over_all_int16() -> None:
    data = np.arange(-32768, 32768, dtype="<i2").tobytes()
    for encode, decode in ((g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)):
        decoded = np.frombuffer(decode(encode(data)), dtype="<i2")
        assert np.all(np.diff(decoded.astype(np.int64)) >= 0)


@given(INT16)
def test_ulaw_round_trip_error_within_half_a_step_of_its_segment(x: int) -> None:
    (byte,) = g711.ulaw_encode(pcm(x))
    y = ref_ulaw_decode(byte)
    assert samples(g711.ulaw_decode(bytes([byte]))) == [y]
    if abs(x) > ULAW_TOP:  # beyond the top decision value: clipped to the largest output
        assert y == (32124 if x > 0 else -32124)
    else:
        assert abs(y - x) <= ulaw_half_step(x), (x, y)


@given(INT16)
def test_alaw_round_trip_error_within_half_a_step_of_its_segment(x: int) -> None:
    (byte,) = g711.alaw_encode(pcm(x))
    y = ref_alaw_decode(byte)
    assert samples(g711.alaw_decode(bytes([byte]))) == [y]
    assert abs(y - x) <= alaw_half_step(x), (x, y)


@pytest.mark.parametrize(("x", "bound"), [(0, 4), (123, 4), (124, 8), (1000, 32), (32000, 512)])
def test_ulaw_half_step_helper(x: int, bound: int) -> None:
    # Sanity check of the per-segment bound the property test relies on.
    assert ulaw_half_step(x) == bound


@given(st.lists(INT16, max_size=200))
def test_output_lengths(xs: list[int]) -> None:
    data = pcm(*xs) if xs else b""
    assert len(g711.ulaw_encode(data)) == len(xs)
    assert len(g711.alaw_encode(data)) == len(xs)
    codes = bytes(x & 0xFF for x in xs)
    assert len(g711.ulaw_decode(codes)) == 2 * len(xs)
    assert len(g711.alaw_decode(codes)) == 2 * len(xs)


@given(st.integers(min_value=0, max_value=255))
def test_ulaw_code_survives_decode_encode(code: int) -> None:
    back = g711.ulaw_encode(g711.ulaw_decode(bytes([code])))
    # 0x7F is μ-law's negative zero: it decodes to 0, which encodes as positive zero 0xFF.
    assert back == bytes([0xFF if code == 0x7F else code])


@given(st.integers(min_value=0, max_value=255))
def test_alaw_code_survives_decode_encode(code: int) -> None:
    assert g711.alaw_encode(g711.alaw_decode(bytes([code]))) == bytes([code])


def test_every_code_survives_decode_encode() -> None:
    codes = bytes(range(256))
    expected_u = bytes(0xFF if c == 0x7F else c for c in range(256))
    assert g711.ulaw_encode(g711.ulaw_decode(codes)) == expected_u
    assert g711.alaw_encode(g711.alaw_decode(codes)) == codes


def test_tables_are_read_only() -> None:
    for table in (g711.ULAW_DECODE, g711.ALAW_DECODE, g711.ULAW_ENCODE, g711.ALAW_ENCODE):
        with pytest.raises(ValueError):
            table[0] = 1
