"""Sanity checks: maps must change when the model's weights, or the labels it learned, are randomized."""
import pytest


def test_randomization(audit, method):
    result = audit.randomization(method)
    assert result.passed, result.explain()


def test_label_randomization(audit, method):
    result = audit.label_randomization(method)
    if result.verdict == "skipped":
        pytest.skip(result.explanation)
    assert result.passed, result.explain()
