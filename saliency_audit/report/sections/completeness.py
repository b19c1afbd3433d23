"""Section of completeness (faithfulness: ROAD).

Same interface as every section module (:mod:`saliency_audit.report.sections`); the figures and tables are
:mod:`saliency_audit.report.faithfulness`'s.
"""
from __future__ import annotations

from .. import faithfulness
from ..markup import fmt, fmt_ci


def headline(r: dict) -> str:
    v = r.get("value")
    return f"ΔROAD {fmt(v, '+.3f')}" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def extra_head(criterion: str) -> str:
    return "mean ROAD [CI]"


def extra_cell(r: dict) -> str:
    d = r.get("details") or {}
    return f"{fmt(d.get('mean_road'))} {fmt_ci(d.get('mean_road_ci'))}" if "mean_road" in d else "—"


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return faithfulness.rule_text(evidence)


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return faithfulness.completeness_body(evidence, rs)
