"""A run against the evidence of an earlier release (``--audit-baseline OLD.json``).

The finished evidence gets a ``comparison`` (:func:`saliency_audit.decisions.comparison.compare`, Holm over the method
verdicts at ``stats.family_alpha``), which the HTML report shows as its "compared with" section.  With
``--audit-fail-on-regression`` a pair flagged worse fails its test even when its verdict passes: the
comparison is a family decision, so, as for ``stats.multiplicity``, every pair runs before the first test
reports (:meth:`saliency_audit.engine.audit.Audit.run_all`), and each regressed result carries
``details.regression`` (the row, ``gated: true``), which :func:`saliency_audit.testing.check` and the gate
line read.  The verdict itself is left as the criterion decided it: it answers "is this method trustworthy
here", the regression "is it worse than last release".
"""
from __future__ import annotations

from ..common.subjects import key as result_key


def _key(evidence: dict) -> tuple:
    return tuple((r.get("criterion"), r.get("method"), r.get("model"), r.get("finding"), r.get("verdict"),
                  r.get("value"), r.get("n"))
                 for r in evidence.get("results") or [])


def against(baseline: dict, evidence: dict, config, baseline_name: str) -> dict:
    """This run's ``evidence`` compared with the baseline: Holm over the method pairs at ``stats.family_alpha``
    (a single process's audit and pytest-xdist's merged evidence alike)."""
    from .comparison import compare

    return compare(baseline, evidence, alpha=config.stats.family_alpha, multiplicity="holm",
                   old_name=baseline_name, new_name="this run")


def comparison(audit, evidence: dict) -> dict:
    """The comparison of ``evidence`` (this run's, without its own comparison) with the audit's baseline,
    memoised on the results it compares."""
    key = _key(evidence)
    memo = getattr(audit, "_comparison_memo", None)
    if memo is None or memo[0] != key:
        memo = (key, against(audit.baseline, evidence, audit.config, audit.baseline_name))
        audit._comparison_memo = memo
    return memo[1]


def gate(audit, pairs: list[tuple[str, str]]) -> list[dict]:
    """Run every pair, compare, and mark the regressed results (``details.regression``); the regressed rows."""
    from .comparison import label, regressions

    audit.run_all(pairs)
    rows = regressions(audit.evidence(finished=True)["comparison"])  # as the finished run will compare
    for row in rows:
        for r in audit.results:
            if result_key(r) == result_key(row):
                r.details["regression"] = {**row, "gated": True}
                r.explanation += (f"; REGRESSION against {audit.baseline_name or 'the baseline'}: "
                                  f"{label(row)} {row['old_value']:+.3f} -> {row['new_value']:+.3f}, change "
                                  f"{row['delta']:+.3f} [{row['ci'][0]:+.3f}, {row['ci'][1]:+.3f}] "
                                  f"({row['test']}, Holm-adjusted p {row['p_worse_adjusted']:.2g})")
                audit.refresh(r)
    audit.write_evidence()
    return rows
