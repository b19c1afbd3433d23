"""Section of utility (localisation against the average-mask prior, AP).

Same interface as every section module (:mod:`saliency_audit.report.sections`).
"""
from __future__ import annotations

from .. import figures, interpretability
from ..markup import N, esc, figure, flatten, fmt, guarded, plain, table, verdict_of
from . import level, numbered


headline, extra_head, extra_cell = numbered("ΔAP", "+.3f", "mean AP [CI]", "mean_ap")


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    u = (evidence.get("config") or {}).get("utility") or {}
    return (f"Per image, the average precision (AP) of the map's pixels against the lesion mask is compared "
            f"with the AP of the average-mask prior ({interpretability.prior_text(rs)})."
            f" <b>Pass</b> iff "
            f"the one-sided {level(u)} bootstrap lower bound of mean(AP − AP_prior) is above 0 and mean AP ≥ "
            f"{fmt(u.get('min_ap'), 'g')}.")


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    samples = evidence.get("samples") or {}
    ok = [r for r in rs if verdict_of(r) in ("pass", "fail")]
    return "".join((
        figure("utility box plots", figures.utility_boxplot, (ok,),
               "Per-image AP of each method's maps from the trained model (blue box) beside the same "
               "method on the fully randomized model (hatched) and the average-mask prior (grey; dashed "
               "line: its mean). <b>Look for</b> boxes clearly above the prior line and above their "
               "randomized twin; a box at the prior's level means the maps know no more than where "
               "lesions usually are."),
        figure("overlays of the best, median and worst image", figures.overlay_grid, (ok, samples),
               "The best, median and worst image by mean AP across methods. First column: the image with "
               "the lesion outline (cyan); then each method's map overlaid (colour scale at right; "
               "opacity grows with the map value) with its AP on that image. <b>Look for</b> maps "
               "concentrated inside the outline, and whether methods fail together on the worst image "
               "(a hard image) or alone (a weak method)."),
        guarded("notes on the maps", _map_notes, rs),
        guarded("per-image table", _per_image_utility, ok),
    ))


def _map_notes(rs: list[dict]) -> str:
    items = []
    for r in rs:
        notes = (r.get("details") or {}).get("map_notes")
        if isinstance(notes, dict) and notes:
            items.append(f"<li><b>{esc(r.get('method'))}</b>: "
                         + "; ".join(f"{esc(k)} = {plain(v)}" for k, v in flatten(notes)) + "</li>")
    return f"<h3>Notes on the maps</h3><ul class='small'>{''.join(items)}</ul>" if items else ""


def _per_image_utility(rs: list[dict]) -> str:
    rs = [r for r in rs if r.get("per_image")]
    if not rs:
        return ""
    ranked = figures.rank_images(rs)
    ap = {(str(r.get("method")), str(p.get("id"))): p.get("score") for r in rs for p in r["per_image"]}
    prior = {str(p.get("id")): p.get("ap_prior") for r in rs for p in r["per_image"]}
    ids = [i for i, _ in ranked] + sorted(set(prior) - {i for i, _ in ranked})
    mean = dict(ranked)
    rows = [[N(k + 1, "d"), f"<code>{esc(i)}</code>", N(mean.get(i)), N(prior.get(i))]
            + [N(ap.get((str(r.get("method")), i))) for r in rs] for k, i in enumerate(ids)]
    head = ["rank", "image", "mean AP", "prior AP"] + [esc(r.get("method")) for r in rs]
    return (f"<details><summary>Per-image AP ({len(ids)} images, best first)</summary>"
            f"{table(head, rows)}</details>")
