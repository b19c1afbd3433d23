"""The one reader of JSON from elsewhere: limits and one-line errors (saliency_audit/common/untrusted.py)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saliency_audit.common.errors import AuditInputError
from saliency_audit.common.untrusted import depth, parse_json, read_json


@pytest.mark.parametrize("text", ['{"clip_percentile": NaN}', "[Infinity]", '{"a": -Infinity}'])
def test_nan_and_infinity_are_refused(tmp_path, text):
    f = tmp_path / "maps.json"
    f.write_text(text)
    with pytest.raises(AuditInputError, match=r"maps.json: not valid JSON \(.*not a number JSON allows"):
        read_json(f)


def test_deep_nesting_is_refused_without_recursion(tmp_path):
    f = tmp_path / "evidence.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AuditInputError, match="nested 100000 deep"):
        read_json(f)


def test_size_limit_and_encoding(tmp_path):
    f = tmp_path / "big.json"
    f.write_text('{"a": "' + "x" * 1000 + '"}')
    with pytest.raises(AuditInputError, match="more than the 100 this reader accepts|bytes, more than the 100"):
        read_json(f, max_bytes=100)
    f.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(AuditInputError, match="not UTF-8"):
        read_json(f)
    with pytest.raises(AuditInputError, match="cannot read"):
        read_json(tmp_path / "missing.json")


def test_brackets_inside_strings_do_not_count():
    assert depth('{"a": "[[[[{{{{\\"]]]", "b": [1, [2]]}') == 3


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(), lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids), max_leaves=30))
def test_any_finite_json_reads_back(value):
    assert parse_json(json.dumps(value), "x") == value


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_json_or_one_line_error(text):
    try:
        parse_json(text, "f.json")
    except AuditInputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("f.json: ")


def test_a_number_too_large_for_a_float_is_refused():
    with pytest.raises(AuditInputError, match="too large for a number"):
        parse_json('{"clip_percentile": 1e999}', "maps.json")
    assert parse_json('{"a": 1e308}', "x") == {"a": 1e308}
