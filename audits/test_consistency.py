"""Repeatability (replicates of the architecture) and reproducibility (other architectures) of the maps."""
import pytest


def _check(result):
    if result.verdict == "skipped":
        pytest.skip(result.explanation)
    assert result.passed, result.explain()


def test_repeatability(audit, method):
    _check(audit.repeatability(method))


def test_reproducibility(audit, method):
    _check(audit.reproducibility(method))
