"""The section of a criterion with no section module of its own: its verdicts and numbers, nothing drawn.

Same interface as every section module (:mod:`saliency_audit.report.sections`).
"""
from __future__ import annotations

from ..markup import fmt


def headline(r: dict) -> str:
    v = r.get("value")
    return fmt(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def extra_head(criterion: str) -> str:
    return "more"


def extra_cell(r: dict) -> str:
    return "—"


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return ""


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return ""
