"""Run-length encoded masks (SIIM-ACR Pneumothorax): both forms, column-major pixel order."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from saliency_audit.data.rle import (
    FORMS,
    RLEError,
    consistent_forms,
    decode,
    detect_form,
    encode,
    parse,
    union,
)

shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))
masks = shapes.flatmap(lambda shape: arrays(bool, shape))
forms = st.sampled_from(FORMS)


def _example() -> np.ndarray:
    # H=4, W=3; lesion at (row 1, col 0), (row 2, col 0), (row 0, col 2).
    # Column-major flat index col*H + row: 0*4+1 = 1, 0*4+2 = 2, 2*4+0 = 8.
    # relative: run [1, 3) -> "1 2"; next run starts at 8, previous ended at 3, gap 5 -> "5 1".
    # absolute (1-based): pixels 2, 3 -> "2 2"; pixel 9 -> "9 1".
    m = np.zeros((4, 3), bool)
    m[1, 0] = m[2, 0] = m[0, 2] = True
    return m


# --- known values -----------------------------------------------------------------------------------------------


def test_known_values_both_forms():
    m = _example()
    assert encode(m) == "1 2 5 1"
    assert encode(m, "relative") == "1 2 5 1"
    assert encode(m, "absolute") == "2 2 9 1"
    np.testing.assert_array_equal(decode("1 2 5 1", (4, 3)), m)
    np.testing.assert_array_equal(decode("2 2 9 1", (4, 3), "absolute"), m)
    assert parse("1 2 5 1").tolist() == [[1, 2], [5, 1]]
    assert parse("1 2 5 1").dtype == np.int64


def test_pixel_order_is_column_major_and_transposition_matters():
    # the same string on the transposed (3, 4) shape: flat 1, 2 -> (row 1, col 0), (row 2, col 0); 8 -> (row 2, col 2)
    got = decode("1 2 5 1", (3, 4))
    assert got.shape == (3, 4)
    assert sorted(zip(*np.nonzero(got))) == [(1, 0), (2, 0), (2, 2)]
    # a run crossing a column boundary wraps to the top of the next column, not to the next row
    got = decode("3 2", (4, 3))  # flat 3, 4 -> (row 3, col 0), (row 0, col 1)
    assert sorted(zip(*np.nonzero(got))) == [(0, 1), (3, 0)]
    m = np.zeros((2, 5), bool)
    m[0, :] = True  # the first row: pixels 0, 2, 4, 6, 8 in column-major order, five single-pixel runs
    assert encode(m) == "0 1 1 1 1 1 1 1 1 1"
    assert encode(m, "absolute") == "1 1 3 1 5 1 7 1 9 1"


def test_relative_gap_zero_and_absolute_adjacent_runs_decode():
    # non-maximal but valid strings: adjacent runs; encode merges them back
    m = decode("2 1 0 2", (3, 3))
    assert np.flatnonzero(m.ravel(order="F")).tolist() == [2, 3, 4]
    assert encode(m) == "2 3"
    assert np.array_equal(decode("3 1 4 2", (3, 3), "absolute"), m)
    assert encode(m, "absolute") == "3 3"


def test_single_run_differs_by_one_pixel_between_forms():
    rel, ab = decode("5 2", (4, 4)), decode("5 2", (4, 4), "absolute")
    assert np.flatnonzero(rel.ravel(order="F")).tolist() == [5, 6]
    assert np.flatnonzero(ab.ravel(order="F")).tolist() == [4, 5]


@pytest.mark.parametrize("empty", ["-1", " -1", " -1 ", "", "   ", "\t-1\n"])
@pytest.mark.parametrize("form", FORMS)
def test_empty_strings(empty, form):
    got = decode(empty, (5, 7), form)
    assert got.shape == (5, 7) and got.dtype == bool and not got.any()
    assert parse(empty).shape == (0, 2)


@pytest.mark.parametrize("form", FORMS)
def test_encode_empty(form):
    assert encode(np.zeros((3, 8), bool), form) == "-1"


@pytest.mark.parametrize("form", FORMS)
def test_first_and_last_pixel(form):
    m = np.zeros((5, 3), bool)
    m[0, 0] = m[-1, -1] = True  # flat 0 and 14, the first and the last pixel in column-major order
    s = encode(m, form)
    assert s == ("0 1 13 1" if form == "relative" else "1 1 15 1")
    np.testing.assert_array_equal(decode(s, m.shape, form), m)
    full = np.ones((5, 3), bool)
    assert encode(full, form) == ("0 15" if form == "relative" else "1 15")
    np.testing.assert_array_equal(decode(encode(full, form), full.shape, form), full)


@pytest.mark.parametrize("form", FORMS)
def test_1024_mask_round_trips(form):
    rng = np.random.default_rng(0)
    m = np.zeros((1024, 1024), bool)
    for r, c in rng.integers(0, 1000, size=(40, 2)):
        m[r : r + 25, c : c + 15] = True
    m[-3:, -1] = True
    s = encode(m, form)
    assert len(parse(s)) > 200
    np.testing.assert_array_equal(decode(s, (1024, 1024), form), m)


# --- malformed strings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rle", "form", "message"),
    [
        ("1 2 3", "relative", "odd number of values"),
        ("1 2 3", "absolute", "odd number of values"),
        ("1 x", "relative", 'value "x" is not an integer'),
        ("1.5 2", "absolute", 'value "1.5" is not an integer'),
        ("1 99999999999999999999", "relative", "too large"),
        ("1 -2", "relative", "negative length"),
        ("4 2 1 -2", "absolute", "run 2 of 2: negative length"),
        ("1 0", "relative", "zero length"),
        ("1 0", "absolute", "zero length"),
        ("-3 2", "relative", "start -3 is below 0"),
        ("5 2 -1 2", "relative", "run 2 of 2: start (gap after the previous run) -1"),
        ("0 2", "absolute", "start 0 is below 1"),
        ("10 3", "relative", "run 1 of 1: ends at pixel 13, beyond the 12 pixels of a 4x3 mask"),
        ("10 4", "absolute", "run 1 of 1: ends at pixel 13, beyond the 12 pixels of a 4x3 mask"),
        ("1 2 8 2", "relative", "run 2 of 2: ends at pixel 13, beyond"),
        ("1 2 100 2", "relative", "run 2 of 2: goes beyond the 12 pixels of a 4x3 mask"),
        ("5 2 3 2", "absolute", "run 2 of 2: start 3 is not after the previous start 5"),
        ("5 2 5 2", "absolute", "not after the previous start 5"),
        ("2 3 4 1", "absolute", "run 2 of 2: starts at pixel 4, inside the previous run, which ends at pixel 4"),
    ],
)
def test_malformed_strings_raise_one_line_messages(rle, form, message):
    with pytest.raises(RLEError) as info:
        decode(rle, (4, 3), form)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_string_and_bad_form():
    with pytest.raises(RLEError, match="expected a run-length string"):
        parse(float("nan"))
    with pytest.raises(ValueError, match="form must be one of"):
        decode("1 2", (4, 3), "rle")
    with pytest.raises(ValueError, match="form must be one of"):
        encode(np.ones((2, 2), bool), "Absolute")


def test_union_names_the_bad_row():
    with pytest.raises(RLEError, match=r"^row 1: run 1 of 1: zero length$"):
        union(["1 2", "3 0"], (4, 3))


# --- form detection ---------------------------------------------------------------------------------------------


def test_consistent_forms_known_values():
    n = 12
    assert consistent_forms("5 2 1 1", n) == {"relative"}  # as absolute, start 1 is not after 5
    assert consistent_forms("2 2 9 1", n) == {"absolute"}  # as relative, the end 2+2+9+1 = 14 is past 12
    assert consistent_forms("1 2 5 1", n) == {"relative", "absolute"}  # absolute runs [0, 2) and [4, 5) are fine too
    assert consistent_forms("5 2", n) == {"relative", "absolute"}
    assert consistent_forms("-1", n) == {"relative", "absolute"}
    assert consistent_forms("0 2", n) == {"relative"}  # absolute starts are 1-based
    assert consistent_forms("12 1", n) == {"absolute"}  # relative 0-based pixel 12 is past the end
    assert consistent_forms("1 x", n) == set()
    assert consistent_forms("5 2 3 9", n) == set()  # absolute: not increasing; relative: ends at 5+2+3+9 = 19


def test_consistent_forms_typical_siim_rows():
    n = 1024 * 1024
    # relative: a large first start, then gaps of about a column
    assert consistent_forms("491350 6 1017 10 1013 14 1010 16", n) == {"relative"}
    # absolute: large increasing starts whose sum overflows the mask
    assert consistent_forms("491351 6 492374 10 493397 14 494420 16", n) == {"absolute"}


def test_detect_form_rules():
    n = 12
    assert detect_form([], n) == "relative"
    assert detect_form(["-1", " -1", "5 2"], n) == "relative"  # no evidence: tie-break
    assert detect_form(["-1", "5 2", "2 2 9 1"], n) == "absolute"
    assert detect_form(["5 2 1 1", "-1", "3 1"], n) == "relative"
    assert detect_form(["1 2 5 1"], n) == "relative"  # valid both ways: tie-break
    assert detect_form(iter(["12 1"]), n) == "absolute"  # any iterable
    with pytest.raises(RLEError, match=r"^rows disagree: row 1 is only valid as relative, row 3 only as absolute$"):
        detect_form(["5 2", "5 2 1 1", "-1", "2 2 9 1"], n)
    with pytest.raises(RLEError, match=r"^row 2: .*relative.*absolute"):
        detect_form(["-1", "1 2 5 1", "5 2 3 9"], n)
    with pytest.raises(RLEError, match=r'^row 1: value "y" is not an integer$'):
        detect_form(["5 2 1 1", "1 y"], n)


# --- properties -------------------------------------------------------------------------------------------------


@given(masks, forms)
def test_round_trip(mask, form):
    s = encode(mask, form)
    got = decode(s, mask.shape, form)
    assert got.shape == mask.shape and got.dtype == bool
    np.testing.assert_array_equal(got, mask)
    assert form in consistent_forms(s, mask.size)


@given(masks, forms)
def test_first_and_last_pixels_survive(mask, form):
    mask = mask.copy()
    mask[0, 0] = mask[-1, -1] = True
    np.testing.assert_array_equal(decode(encode(mask, form), mask.shape, form), mask)


@given(masks, forms)
def test_runs_are_maximal(mask, form):
    runs = parse(encode(mask, form))
    flat = mask.ravel(order="F")
    assert runs[:, 1].sum() == flat.sum()
    n_runs = int(flat[0]) + int(np.count_nonzero(flat[1:] & ~flat[:-1]))
    assert len(runs) == n_runs
    if form == "relative" and len(runs) > 1:
        assert (runs[1:, 0] >= 1).all()  # gaps between maximal runs are at least one pixel


@given(shapes.flatmap(lambda s: st.lists(arrays(bool, s), min_size=1, max_size=5)), forms)
def test_union_is_logical_or(ms, form):
    shape = ms[0].shape
    np.testing.assert_array_equal(union([encode(m, form) for m in ms], shape, form), np.logical_or.reduce(ms))


@settings(max_examples=200)
@given(shapes.flatmap(lambda s: st.lists(arrays(bool, s), max_size=6)), forms)
def test_detect_form_follows_the_evidence(ms, form):
    # Small masks encoded in one form are often valid in the other too (absolute "1 1 3 1" is also relative
    # runs [1, 2) and [5, 6)), so the form is only recoverable when some row is valid in one form alone.
    rles = [encode(m, form) for m in ms]
    n = ms[0].size if ms else 1
    evidence = any(consistent_forms(r, n) == {form} for r in rles)
    assert detect_form(rles, n) == (form if evidence else "relative")


@settings(max_examples=200)
@given(
    shapes.filter(lambda s: s[0] * s[1] >= 3).flatmap(
        lambda s: st.tuples(arrays(bool, s), st.lists(arrays(bool, s), max_size=5))
    ),
    forms,
    st.data(),
)
def test_detect_form_recovers_the_encoding(pair, form, data):
    # One mask with several runs that touches the first and the last pixel: encoded relative it starts "0 ...",
    # an impossible absolute start; encoded absolute its runs end at pixel n and the relative sum overflows n.
    m, others = pair[0].copy(), pair[1]
    m[0, 0] = m[-1, -1] = True
    gap = data.draw(st.integers(1, m.size - 2))  # a pixel strictly between, in column-major order
    m[gap % m.shape[0], gap // m.shape[0]] = False
    rles = [encode(x, form) for x in others]
    rles.insert(data.draw(st.integers(0, len(others))), encode(m, form))
    assert detect_form(rles, m.size) == form
