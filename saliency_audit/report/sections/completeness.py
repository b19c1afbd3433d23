"""Section of completeness (faithfulness: ROAD).

Same interface as every section module (:mod:`saliency_audit.report.sections`); the figures and tables are
:mod:`saliency_audit.report.faithfulness`'s.
"""
from __future__ import annotations

from .. import faithfulness
from . import numbered


headline, extra_head, extra_cell = numbered("ΔROAD", "+.3f", "mean ROAD [CI]", "mean_road")


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return faithfulness.rule_text(evidence)


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    return faithfulness.completeness_body(evidence, rs)
