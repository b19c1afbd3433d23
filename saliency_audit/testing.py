"""What an audit test does with a criterion's result: pass, fail with the explanation, or skip.

A failing verdict is ``pytest.fail`` with the verdict line and its explanation; this module's frames are hidden
(``__tracebackhide__``), so the report shows the test's own line and the explanation, whatever ``--tb`` asks.

A criterion that cannot run here (no ``--replicate``, maps made elsewhere for a criterion that needs the
model) is a pytest skip with the reason naming the option (a failure under ``--audit-strict``, where the
result's verdict is already ``fail``).  Controls (``--controls``) are checked against their expectation.
"""
from __future__ import annotations

import pytest


def check(result, criterion: str | None = None, method: str | None = None):
    """A method's test passes with its verdict; a control's (``--controls``) passes when the control got the
    verdict its criterion expects, and is skipped as "reported, not gated" when the criterion expects none.

    ``check(audit, criterion, method)`` runs the pair first (``audit.run``) and returns its result: a third
    party's audit test of its own registered criterion (the bundled suite has a test per built-in only)::

        @pytest.mark.parametrize("method", ["gradcam", "centre"])
        def test_map_entropy(audit, method):
            saliency_audit.testing.check(audit, "map_entropy", method)
    """
    __tracebackhide__ = True  # a failing audit test shows its verdict and explanation, not this module's source
    if criterion is not None or method is not None:
        if criterion is None or method is None:
            raise TypeError("check(audit, criterion, method): give both the criterion and the method")
        result = result.run(criterion, method)
        _check(result)
        return result
    _check(result)
    return result


def _check(result) -> None:
    __tracebackhide__ = True
    if result.verdict == "skipped":
        pytest.skip(result.explanation)
    control = result.details.get("control")
    if control:
        from .criteria.controls import message

        if control["expected"] is None:
            pytest.skip(f"control {result.method} is reported, not gated, for {result.criterion} "
                        f"({control['note']}); its verdict: {result.verdict}")
        if not control["met"]:
            pytest.fail(message(result.to_dict()) + f". {result.explain()}")
        return
    if not result.passed:
        pytest.fail(result.explain())
    regression = result.details.get("regression")
    if regression and regression.get("gated"):  # --audit-fail-on-regression
        pytest.fail(f"{result.criterion}[{result.subject}] passes, but regressed against the baseline: "
                    f"{result.explain()}", pytrace=False)
