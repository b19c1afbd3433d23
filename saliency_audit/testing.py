"""What an audit test does with a criterion's result: pass, fail with the explanation, or skip.

A criterion that cannot run here (no ``--replicate``, maps made elsewhere for a criterion that needs the
model) is a pytest skip with the reason naming the option (a failure under ``--audit-strict``, where the
result's verdict is already ``fail``).
"""
from __future__ import annotations

import pytest


def check(result) -> None:
    if result.verdict == "skipped":
        pytest.skip(result.explanation)
    assert result.passed, result.explain()
