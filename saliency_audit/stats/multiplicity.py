"""Family-wise error control over a set of verdicts (``stats.multiplicity``).

A gate of m verdicts, each passed at level alpha, has up to about ``1 - (1 - alpha)^m`` chance that some
pass is wrong (40 verdicts at 5 %: 87 %).  Holm's step-down procedure (Holm 1979, "A simple sequentially
rejective multiple test procedure", Scand. J. Statist. 6:65-70) and Bonferroni's bound keep the chance
that *any* pass in the family is wrong at most alpha, whatever the dependence between the verdicts; Holm
is never less powerful than Bonferroni.

A verdict's p-value here is the smallest level at which its own test would pass (see
:func:`saliency_audit.stats.pass_p_value`); a verdict that could not pass at any level (an error, a
non-statistical condition unmet) has p = 1.

Hand-written rather than ``statsmodels.stats.multitest``: a dozen lines, and statsmodels (with pandas and
patsy) is not otherwise a dependency; the test suite checks these against the textbook definitions.
"""
from __future__ import annotations

import math

METHODS = ("none", "holm", "bonferroni")

TEXT = {
    "none": "each verdict at its own level alpha (no family-wise correction)",
    "holm": "Holm's step-down procedure over the family (Holm 1979): at most alpha chance that any pass is wrong",
    "bonferroni": "Bonferroni: each verdict at alpha / m, at most alpha chance that any pass is wrong",
}


def _p(value) -> float:
    """A p-value as a float in [0, 1]; a missing one (an error, a verdict that cannot pass) is 1."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 1.0
    return min(max(float(value), 0.0), 1.0)


def decide(pvalues: list, alpha: float, method: str) -> list[dict]:
    """Per p-value (in the given order): ``{"p", "adjusted_p", "level", "rank", "passes"}``.

    ``level`` is the level that p-value was compared with (``alpha``, ``alpha / m`` or Holm's
    ``alpha / (m - rank + 1)``, rank 1 the smallest p); ``passes`` whether the verdict keeps its pass at the
    family-wise level; ``adjusted_p`` the smallest family-wise alpha at which it would (Holm's or
    Bonferroni's adjusted p-value, capped at 1).
    """
    if method not in METHODS:
        raise ValueError(f"multiplicity must be one of {', '.join(METHODS)}, not {method!r}")
    ps = [_p(v) for v in pvalues]
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out: list[dict] = [{} for _ in ps]
    running, stopped = 0.0, False
    for rank, i in enumerate(order, start=1):
        p = ps[i]
        if method == "none":
            level, adjusted = alpha, p
        elif method == "bonferroni":
            level, adjusted = alpha / m, min(1.0, m * p)
        else:
            level = alpha / (m - rank + 1)
            running = max(running, min(1.0, (m - rank + 1) * p))  # adjusted p-values are monotone in rank
            adjusted = running
        if method == "holm":
            stopped = stopped or p > level  # step-down: the first p above its level stops every later one
            passes = not stopped
        else:
            passes = p <= level
        out[i] = {"p": p, "adjusted_p": adjusted, "level": level, "rank": rank, "passes": passes}
    return out
