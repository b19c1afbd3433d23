"""Section of repeatability and reproducibility (SSIM to the primary model's maps).

Same interface as every section module (:mod:`saliency_audit.report.sections`).
"""
from __future__ import annotations

from ...common.criteria_registry import CRITERIA
from .. import figures
from ..markup import N, esc, figure, fmt, fmt_ci, guarded, table, verdict_of
from . import level, number

def headline(r: dict) -> str:
    return number(r, "SSIM", ".2f")


def extra_head(criterion: str) -> str:
    return "SSIM per replicate" if criterion == "repeatability" else "SSIM per model"


def extra_cell(r: dict) -> str:
    curve = r.get("curve") or []
    return "<br>".join(f"{esc(p.get('model'))}: {fmt(p.get('ssim'))}" for p in curve) if curve else "—"


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    cs = (evidence.get("config") or {}).get("consistency") or {}
    what = ("the same architecture trained with other seeds" if criterion == "repeatability" else
            "other architectures trained on the same task")
    return (f"The primary's maps against those of {what}. "
            f"<b>Pass</b> iff the one-sided {level(cs)} lower bound of mean SSIM is ≥ "
            f"{fmt(cs.get('min_ssim'), 'g')}.")


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    samples = evidence.get("samples") or {}
    ok = [r for r in rs if verdict_of(r) in ("pass", "fail")]
    other = ("replicates of the same architecture trained with other seeds" if criterion == "repeatability"
             else "models of other architectures trained on the same task")
    return "".join((
        figure(f"{criterion} box plots", figures.consistency_boxplot,
               (ok, f"{CRITERIA[criterion].title}: SSIM to the primary model's maps, per image"),
               f"Per-image SSIM between the primary model's maps and those of {other} (mean over the "
               "compared models). Red dashed line: the min-SSIM threshold (Arun et al.'s reference "
               "line); dotted marks: the noise floor. <b>Look for</b> boxes above the threshold: a "
               "trustworthy explanation survives retraining."),
        figure(f"{criterion} map strips", figures.map_strips, (ok, samples, "model", "primary"),
               "For each method, one image: the image, the primary model's map, then each "
               "compared model's map with its SSIM to the primary's on this image."),
        guarded("per-model table", _pair_table, ok),
    ))


def _pair_table(rs: list[dict]) -> str:
    rows = []
    for r in rs:
        for p in r.get("curve") or []:
            rows.append([esc(r.get("method")), esc(p.get("model")), N(p.get("ssim")), fmt_ci(p.get("ssim_ci")),
                         N(p.get("spearman_abs")), N(p.get("prediction_agreement"), ".2f"),
                         N(p.get("constant_maps"), "d")])
    if not rows:
        return ""
    return ("<details><summary>Per compared model</summary>"
            + table(["method", "compared model", "SSIM", "SSIM CI", "|Spearman|", "prediction agreement",
                     "constant maps"], rows)
            + "<p class='small muted'>Prediction agreement: fraction of audited images on which both models "
              "predict the same class — low agreement means the models, not only their maps, differ.</p></details>")
