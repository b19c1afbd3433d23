"""The family-wise gate (``stats.multiplicity``): every verdict first, then Holm or Bonferroni over them.

A family decides a verdict from every other verdict's p-value, so :func:`decide` runs all the run's
(criterion, method) pairs before any test reports, adjusts the results in place (a pass whose p-value
misses its family-wise level becomes a fail, saying so) and leaves them with the :class:`~saliency_audit.
audit.Audit`, whose ``run`` then hands each test its decided result.  The family is the gate's verdicts:
every method's pass or fail (an error counts, with p = 1); the controls' verdicts are expected outcomes, and
skipped pairs did not run, so neither is in it.  See :mod:`saliency_audit.stats.multiplicity` for the procedures.
"""
from __future__ import annotations

import math

from ..stats.multiplicity import TEXT, decide as decide_levels


def _get(r, key: str):
    """A result's field, from a CriterionResult or its evidence dict."""
    return r.get(key) if isinstance(r, dict) else getattr(r, key)


def members(results) -> list:
    """The results (CriterionResults or evidence dicts) in the gate's family: a method's (not a control's)
    pass, fail or error."""
    return [r for r in results
            if _get(r, "verdict") in ("pass", "fail", "error") and not (_get(r, "details") or {}).get("control")]


def decide(audit, pairs: list[tuple[str, str]]) -> dict:
    """Run every pair of ``pairs`` on ``audit``, then apply ``audit.config.stats.multiplicity`` to the family;
    returns the family's summary (also kept as ``audit.family`` for the evidence)."""
    stats = audit.config.stats
    audit.run_all(pairs)
    wanted = set(pairs)
    family = members(r for r in audit.results if (r.criterion, r.subject) in wanted)
    levels = decide_levels([r.p_value if r.verdict != "error" else None for r in family], stats.family_alpha,
                           stats.multiplicity)
    changed = []
    for r, d in zip(family, levels):
        alone = r.verdict
        r.details["multiplicity"] = {"method": stats.multiplicity, "family_alpha": stats.family_alpha,
                                     "m": len(family), "verdict_alone": alone, **d}
        if alone == "pass":
            keeps = d["passes"]
            r.explanation += (f"; family-wise ({stats.multiplicity} over {len(family)} verdicts at "
                              f"{stats.family_alpha:g}): p {d['p']:.3g} {'<=' if keeps else '>'} its level "
                              f"{d['level']:.3g} -> {'pass kept' if keeps else 'fail'}")
            if not keeps:
                r.verdict = "fail"
                changed.append(f"{r.criterion}[{r.subject}]")
        audit.refresh(r)
    audit.family = summary(stats.multiplicity, stats.family_alpha, family, changed)
    audit.write_evidence()
    return audit.family


def summary(method: str, alpha: float, family: list, changed: list[str]) -> dict:
    """The evidence's ``multiplicity`` entry: how the gate's verdicts were decided, and what it guarantees."""
    m = len(family)
    out = {"method": method, "m": m, "text": TEXT[method]}
    if method == "none":
        alphas = [a for r in family if isinstance(a := (_get(r, "details") or {}).get("alpha"), float)]
        union = min(1.0, sum(alphas)) if alphas else None  # Boole's inequality: what holds whatever the dependence
        independent = 1.0 - math.prod(1.0 - a for a in alphas) if alphas else None
        levels = ", ".join(f"{a:g}" for a in sorted(set(alphas)))
        out.update(per_verdict_alphas=sorted(set(alphas)), any_wrong_pass_at_most=union,
                   any_wrong_pass_if_independent=independent,
                   sentence=(f"Each verdict is at its own level ({levels}): at most that chance that its pass is wrong. "
                             f"Over the {m} verdicts, the chance that some pass in this report is wrong is bounded "
                             f"only by {100 * union:.0f} % ({100 * independent:.0f} % if they were independent); "
                             f"stats.multiplicity = \"holm\" bounds it at a family-wise level."
                             if alphas and m > 1 else f"{m} verdict(s), each at its own level."))
        return out
    out.update(family_alpha=alpha, lost_pass=changed,
               sentence=(f"Family-wise gate ({method}, {m} verdicts): at most {100 * alpha:g} % chance that any "
                         f"pass in this report is wrong"
                         + (f"; {len(changed)} verdict(s) that pass alone fail at the family's level: "
                            f"{', '.join(changed)}" if changed else "") + "."))
    return out
