"""Section of randomization (the model-parameter cascade) and label randomization (d, the normalized SSIM drop).

Same interface as every section module (:mod:`saliency_audit.report.sections`); the variants' table is
:mod:`saliency_audit.report.randomization`'s.
"""
from __future__ import annotations

from .. import figures, randomization
from ..markup import N, esc, figure, fmt, fmt_ci, guarded, table, verdict_of
from . import level, number


def headline(r: dict) -> str:
    return number(r, "d", ".2f")


def extra_head(criterion: str) -> str:
    return "lower bound of d" if criterion == "randomization" else "lower bound of d; SSIM [CI]"


def extra_cell(r: dict) -> str:
    d = r.get("details") or {}
    if r.get("criterion") == "randomization":
        if "head_d_lower" not in d:
            return "—"
        return (f"head {fmt(d.get('head_d_lower'), '.2f')} (≥ {fmt(d.get('head_min'), 'g')}), all "
                f"{fmt(d.get('all_d_lower'), '.2f')} (≥ {fmt(d.get('all_min'), 'g')})")
    curve = r.get("curve") or []
    if curve:  # label randomization: decided on d, like randomization; SSIM beside it
        return (f"{fmt(r.get('bound'), '.2f')} (≥ {fmt(r.get('threshold'), 'g')}); "
                f"SSIM {fmt(curve[0].get('ssim'))} {fmt_ci(curve[0].get('ssim_ci'))}")
    return "—"


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    rz = (evidence.get("config") or {}).get("randomization") or {}
    if criterion == "label_randomization":
        return (f"The maps of a model trained on permuted labels are compared with the trained "
                f"model's. <b>Pass</b> iff the one-sided {level(rz)} lower bound of mean d is ≥ "
                f"{fmt(rz.get('label_min'), 'g')}.")
    return (f"The model's blocks are re-initialised from the head down, cumulatively; after each stage "
            f"the maps are compared (SSIM) with the trained model's; "
            f"d = (1 − SSIM)/(1 − noise floor). "
            f"<b>Pass</b> iff the one-sided {level(rz)} lower bound of mean d is ≥ "
            f"{fmt(rz.get('head_min'), 'g')} at the head stage and ≥ {fmt(rz.get('all_min'), 'g')} "
            f"with every block randomized (BatchNorm policy: {esc(rz.get('bn_policy', '—'))}). "
            + (f"Each image is explained by its own random re-initialisation ({esc(rz.get('draws'))} "
               f"per image at those two stages, similarities averaged), so the bound covers the "
               f"randomization's variance as well as the images'."
               if rz.get("draw_design") == "per_image" else
               f"Every image is explained by the same {esc(rz.get('draws'))} random "
               f"re-initialisation(s) at those two stages (similarities averaged)."))


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    samples = evidence.get("samples") or {}
    ok = [r for r in rs if verdict_of(r) in ("pass", "fail")]
    if criterion == "label_randomization":
        return "".join((
            figure("label randomization bars", figures.label_bars, (ok,),
                   "Mean SSIM between the maps of the trained model and those of a model trained on randomly "
                   "permuted labels (whiskers: CI); dashed marks: each method's noise floor. <b>Look for</b> "
                   "bars down at their noise floor: a model that learned nothing about the finding should "
                   "not produce the trained model's maps."),
            figure("label randomization map strips", figures.map_strips, (ok, samples, "stage"),
                   "For each method, one image: the image, the trained model's map, and the "
                   "random-label model's map. They should look unrelated."),
        ))
    return "".join((
        figure("randomization curves", figures.randomization_curves, (ok,),
               "One panel per method: mean SSIM between the trained model's maps and the maps after "
               "re-initialising blocks from the head down (cumulatively), with its bootstrap CI (band); "
               "dashed: the method's noise floor, the SSIM between maps of different images; red "
               "triangles: the SSIM at which d reaches its threshold after the head and after all blocks "
               "(the verdict needs the bootstrap bound of d, i.e. the curve with its CI, below them). "
               "<b>Maps of a "
               "trustworthy method fall to the noise floor as layers are randomized</b>; a curve that "
               "stays high means the maps reflect the image or the architecture rather than what the "
               "model learned (Adebayo et al. 2018)."),
        figure("randomization map strips", figures.map_strips, (ok, samples, "stage"),
               "For each method, one image: the image with its lesion outline, the trained model's map, then "
               "the map after each cumulative randomization stage. <b>Look for</b> maps that change "
               "visibly from the first stage on; a map that survives randomization unchanged does not "
               "explain the model."),
        guarded("randomization variants", randomization.variants_table, ok),
        guarded("stage tables", _stage_tables, ok),
    ))


def _stage_tables(rs: list[dict]) -> str:
    out = []
    for r in rs:
        curve = r.get("curve") or []
        if not curve:
            continue
        rows = [[esc(c.get("stage")), N(c.get("n"), "d"), N(c.get("ssim")), fmt_ci(c.get("ssim_ci")), N(c.get("d"), ".2f"),
                 fmt_ci([c.get("d_lower"), c.get("d_upper")], ".2f"), N(c.get("spearman_abs")),
                 N(c.get("spearman_signed")), N(c.get("hog")), N(c.get("constant_maps"), "d")] for c in curve]
        floor = (r.get("details") or {}).get("noise_floor") or {}
        rows.append(["<i>noise floor</i>", N(r.get("n"), "d"), N(floor.get("ssim")), "", "", "", N(floor.get("spearman_abs")),
                     N(floor.get("spearman_signed")), N(floor.get("hog")), ""])
        out.append(f"<h3>{esc(r.get('method'))}</h3>" + table(
            ["stage", "images", "SSIM", "SSIM CI", "d", "d CI", "|Spearman|", "Spearman (signed)", "HOG", "constant maps"], rows))
        ind = (r.get("details") or {}).get("independent_curve") or []
        if ind:
            out.append("<p class='small'>Independent randomization (one block at a time):</p>" + table(
                ["block", "SSIM", "d", "d CI"],
                [[esc(c.get("stage")), N(c.get("ssim")), N(c.get("d"), ".2f"),
                  fmt_ci([c.get("d_lower"), c.get("d_upper")], ".2f")] for c in ind]))
    if not out:
        return ""
    return "<details><summary>Stage-by-stage numbers, per method</summary>" + "".join(out) + "</details>"
