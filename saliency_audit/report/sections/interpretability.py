"""Section of energy, focus and pointing (mednet's interpretability scores against the average-mask prior).

Same interface as every section module (:mod:`saliency_audit.report.sections`); the figures and per-image
tables are :mod:`saliency_audit.report.interpretability`'s.
"""
from __future__ import annotations

from .. import interpretability
from ..markup import fmt
from . import mean_ci


def headline(r: dict) -> str:
    v = r.get("value")
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return ""
    return f"{interpretability.SCORES[str(r.get('criterion'))][2]} {fmt(v, '+.2f')}"


def extra_head(criterion: str) -> str:
    return "mean score [CI]"


def extra_cell(r: dict) -> str:
    return mean_ci(r, "mean_score")


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return interpretability.rule_text(evidence, criterion, rs)


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return interpretability.section_body(evidence, criterion, rs)
