"""Control checks: did each control get the verdict its criterion says it must?

A control result (method ``edge``, ``random`` or ``oracle``; :mod:`saliency_audit.methods.controls`) keeps
its own verdict, the criterion's outcome for that map, and carries ``details.control``:

    {"role": "negative" | "positive", "expected": "pass" | "fail" | None, "met": bool | None, "note": str}

``expected`` None: reported, never gated (e.g. the oracle's completeness is the model's lesion reliance).
The gate leaves control results out of its count of verdicts; a control whose ``met`` is False fails the
gate on its own, with the explanation that the audit does not discriminate on this model and data.  Works
on evidence dicts, so a merged (sharded) evidence file gets the same check.  Importing it is cheap.
"""
from __future__ import annotations

from ..methods.registry import METHODS
from ..common.criteria_registry import CRITERIA
from ..common.subjects import of


def control_of(result: dict) -> dict | None:
    """The control block of a result dict, or None for a method's result."""
    c = (result.get("details") or {}).get("control")
    return c if isinstance(c, dict) else None


def attach(result) -> None:
    """Mark a CriterionResult of a control method with what it had to show and whether it did."""
    spec = METHODS.get(result.method)
    if spec is None or not spec.control:
        return
    crit = CRITERIA.get(result.criterion)
    expected = crit.expected(result.method) if crit else None
    decided = result.verdict in ("pass", "fail")
    met = None
    if expected is not None and result.verdict != "skipped":
        met = decided and result.verdict == expected
    result.details["control"] = {"role": spec.control, "expected": expected, "met": met,
                                 "note": crit.control_note if crit else ""}


def message(result: dict) -> str:
    """Why this control's outcome means the audit is not discriminating (for a control whose ``met`` is False)."""
    c = control_of(result) or {}
    name = f"{result.get('criterion')}[{of(result)}]"
    got = str(result.get("verdict"))
    what = {"pass": "passed", "fail": "failed"}.get(got, "could not be evaluated")
    return (f"{name} {what}, but a {c.get('role')} control must {c.get('expected')} here ({c.get('note')}): "
            f"this criterion is not discriminating on this model and data, so no verdict of it can be trusted")


def summary(results: list[dict]) -> dict | None:
    """{"gated", "met", "report_only", "unmet": [messages]} over the control results; None without controls."""
    cs = [r for r in results if control_of(r)]
    if not cs:
        return None
    gated = [r for r in cs if control_of(r).get("met") is not None]
    unmet = [r for r in gated if control_of(r).get("met") is False]
    return {"gated": len(gated), "met": len(gated) - len(unmet),
            "report_only": sum(control_of(r).get("expected") is None for r in cs),
            "unmet": [message(r) for r in unmet], "unmet_pairs": [f"{r.get('criterion')}[{of(r)}]"
                                                                  for r in unmet]}
