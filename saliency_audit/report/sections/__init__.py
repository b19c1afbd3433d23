"""One report section module per criterion (or family of criteria), all with the same interface.

A criterion's spec names its module (``CriterionSpec.report``); :func:`section_of` gives it, or
:mod:`.generic` for a criterion with none (a third party's, or a name the registry does not know), so a
criterion is never drawn as another.  Every function takes the evidence's dicts and returns HTML whose
strings from the evidence are escaped:

* ``headline(r) -> str``: the number in the verdict matrix's cell;
* ``extra_head(criterion) -> str`` / ``extra_cell(r) -> str``: the results table's criterion-specific column;
* ``rule(evidence, criterion, rs) -> str``: the decision rule, in words ("" for none);
* ``body(evidence, criterion, rs) -> str``: figures and tables after the results table ("" for none).

``rs``: the criterion's results, in the report's order.
"""
from __future__ import annotations

from types import ModuleType

INTERFACE = ("headline", "extra_head", "extra_cell", "rule", "body")


def section_of(criterion: str) -> ModuleType:
    """The section module of ``criterion``: its spec's ``report``, else the generic one."""
    from ...common.criteria_registry import CRITERIA
    from . import generic

    spec = CRITERIA.get(criterion)
    module = spec.report_module() if spec is not None else None
    return module if module is not None else generic


def number(r: dict, label: str, spec: str) -> str:
    """A verdict's value as its cell's headline ("ΔAP +0.123"), or "" when it has none."""
    from ..markup import fmt

    v = r.get("value")
    return f"{label} {fmt(v, spec)}" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def mean_ci(r: dict, key: str) -> str:
    """A detail's mean and its interval (``key`` and ``key_ci`` of the result's details), or "—"."""
    from ..markup import fmt, fmt_ci

    d = r.get("details") or {}
    return f"{fmt(d.get(key))} {fmt_ci(d.get(key + '_ci'))}" if key in d else "—"


def numbered(label: str, spec: str, column: str, key: str):
    """``headline``, ``extra_head`` and ``extra_cell`` of a section whose cell is its value (``label``, format
    ``spec``) and whose extra column is a detail's mean with its interval (``key``)."""
    return (lambda r: number(r, label, spec)), (lambda criterion: column), (lambda r: mean_ci(r, key))


def level(p: dict) -> str:
    """A criterion's one-sided confidence level from its config section ("95 %"), or "(1 − α)"."""
    al = p.get("alpha")
    return f"{100 * (1 - al):.0f} %" if isinstance(al, (int, float)) and not isinstance(al, bool) else "(1 − α)"
