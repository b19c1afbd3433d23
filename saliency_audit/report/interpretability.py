"""Report sections of mednet's interpretability criteria: ``energy``, ``focus`` and ``pointing``.

One section body serves all three: the rule, a box plot of each method's
per-image score beside the average-mask prior's, the mean difference the
verdict is decided on, and a per-image table.  Also the description of the
average-mask prior (held-out or leave-one-out, from how many masks), shared
with the utility section.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import figures as F
from .markup import N, esc, figure, fmt, guarded, table, verdict_of

CRITERIA = ("energy", "focus", "pointing")

#: criterion -> (score's name, axis label, headline prefix, what the score means (trusted HTML))
SCORES = {
    "energy": ("proportional energy", "share of the map's mass inside the lesion", "Δ",
               "<b>Proportional energy</b> Σ(S·M) / ΣS: the share of the map's total mass that lies inside the "
               "lesion (Idiap mednet; Wang et al. 2020). 1: the map is zero outside the lesion; a uniform map "
               "scores the lesion's area fraction."),
    "focus": ("average saliency focus", "mean map value over the lesion", "Δ",
              "<b>Average saliency focus</b> Σ(S·M) / ΣM: the mean map value over the lesion's pixels (Idiap "
              "mednet). 1: the map is at its maximum on every lesion pixel. It rewards maps that are high "
              "<i>everywhere</i>, which is why it is only ever judged against the prior scored the same way."),
    "pointing": ("pointing-game hit", "hit: the map's maximum inside the lesion", "Δhit",
                 "<b>Pointing game</b> (Zhang et al. 2018): is the map's maximum inside the lesion? Postprocessed "
                 "maps are clipped at their 99th percentile, so the maximum is often a plateau: the score is the "
                 "expected hit, the share of maximal pixels inside the lesion (0 or 1 for a single maximum). The "
                 "mean over images is the hit rate."),
}


def _alpha(p: dict) -> str:
    al = p.get("alpha") if isinstance(p, dict) else None
    return f"{100 * (1 - al):.0f} %" if isinstance(al, (int, float)) and not isinstance(al, bool) else "(1 − α)"


def prior_text(results: list[dict]) -> str:
    """What the average-mask prior of these results is (held-out / leave-one-out, from how many masks)."""
    kinds = []
    for r in results:
        b = r.get("baseline")
        if isinstance(b, dict) and b.get("kind") is not None and (b.get("kind"), b.get("n_masks")) not in kinds:
            kinds.append((b.get("kind"), b.get("n_masks")))
    if not kinds:
        return "the mean lesion mask of other images"
    out = []
    for kind, n in kinds:
        masks = f"{fmt(n)} masks" if n is not None else "other masks"
        if kind == "held-out":
            out.append(f"held-out: the mean of {masks} of lesion images outside the audited set")
        elif kind == "leave-one-out":
            out.append(f"leave-one-out: for each image, the mean of the {masks} of the other audited lesion images")
        else:
            out.append(f"{esc(kind)}, from {masks}")
    return "; ".join(out)


def rule_text(evidence: dict, criterion: str, results: list[dict]) -> str:
    cfg = evidence.get("config") or {}
    p = cfg.get("interpretability") or {}
    name = SCORES[criterion][0]
    tol = ""
    if criterion == "pointing":
        t = p.get("pointing_tolerance") if isinstance(p, dict) else None
        tol = (f" The lesion is dilated by {fmt(t)} px before the hit is decided." if t else
               " No tolerance: the maximum must lie on a lesion pixel.")
    return (f"{SCORES[criterion][3]} Per lesion image, the {name} of the map against the lesion mask is compared "
            f"with the {name} of the average-mask prior ({prior_text(results)}), scored identically; images "
            f"without a lesion are excluded.{tol} <b>Pass</b> iff the one-sided {_alpha(p)} bootstrap lower bound of "
            f"mean({name} − prior's) is above 0.")


def _prior_scores(results: list[dict]) -> list[float]:
    return next((F.finite(p.get("prior") for p in r["per_image"] if isinstance(p, dict))
                 for r in results if r.get("per_image")), [])


@F._draw
def score_boxplot(results: list[dict], criterion: str) -> str | None:
    """Per-image score of each method beside the prior's (left) and the mean difference with its CI (right)."""
    rs = [r for r in results if isinstance(r.get("per_image"), list) and r["per_image"]]
    if not rs:
        return None
    name, ylabel = SCORES[criterion][0], SCORES[criterion][1]
    prior = _prior_scores(rs)
    scores = [F.finite(p.get("score") for p in r["per_image"] if isinstance(p, dict)) for r in rs]
    colours = F.method_colours([str(r.get("method")) for r in rs])
    fig = F._figure(max(7.0, 0.95 * len(rs) + 4.2), 3.5)
    left, right = fig.subplots(1, 2, width_ratios=[max(3.0, len(rs) + 1.2), max(2.0, 0.5 * len(rs) + 1)])
    F._boxes(left, [prior], [0], "#bdbdbd", width=0.55)
    for i, (r, s) in enumerate(zip(rs, scores), start=1):
        F._boxes(left, [s], [i], colours[str(r.get("method"))], width=0.55)
    means = [(k, float(np.mean(v))) for k, v in enumerate([prior] + scores) if v]
    if means:
        left.plot([k for k, _ in means], [m for _, m in means], linestyle="none", marker="D", markersize=4,
                  markerfacecolor="white", markeredgecolor="black")
    if prior:
        left.axhline(float(np.mean(prior)), color="#555", linestyle="--", linewidth=1)
    F._tick_labels(left, ["average-mask\nprior"] + [F.method_label(r) for r in rs])
    for tick, r in zip(left.get_xticklabels()[1:], rs):
        tick.set_color(F.VERDICT_COLOURS.get(str(r.get("verdict")), "black"))
    left.set_xlim(-0.6, len(rs) + 0.6)
    left.set_ylim(-0.03, 1.03)
    left.set_ylabel(f"{name} per image\n({ylabel})")
    left.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    left.set_axisbelow(True)
    left.legend(handles=[Patch(facecolor="#bdbdbd", label="average-mask prior"),
                         Line2D([], [], color="#555", linestyle="--", label="prior: mean"),
                         Line2D([], [], marker="D", markersize=4, markerfacecolor="white", markeredgecolor="black",
                                linestyle="none", label="mean")],
                loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, frameon=False)
    # right: the verdict's statistic, mean(score - prior) with its CI
    for i, r in enumerate(rs):
        v = F.num(r.get("value"))
        ci = r.get("ci") if isinstance(r.get("ci"), list) and len(r["ci"]) == 2 else [None, None]
        lo, hi = F.num(ci[0]), F.num(ci[1])
        colour = F.VERDICT_COLOURS.get(str(r.get("verdict")), "black")
        if math.isfinite(v):
            err = [[max(v - lo, 0.0)], [max(hi - v, 0.0)]] if math.isfinite(lo) and math.isfinite(hi) else None
            right.errorbar([v], [i], xerr=err, marker="o", markersize=4, color=colour, capsize=3, linewidth=1.2)
    right.axvline(0, color="black", linewidth=0.9)
    right.set_yticks(range(len(rs)))
    right.set_yticklabels([F.short(r.get("method"), 12) for r in rs], parse_math=False)
    right.set_ylim(len(rs) - 0.5, -0.5)
    right.set_xlabel(f"mean({name} − prior's)\nwith its CI; pass: CI's lower end > 0")
    right.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    fig.suptitle(f"{name.capitalize()} per image: each method's maps against the average-mask prior", fontsize=9)
    return F.to_png(fig)


def _per_image(rs: list[dict], criterion: str) -> str:
    rs = [r for r in rs if isinstance(r.get("per_image"), list) and r["per_image"]]
    if not rs:
        return ""
    score = {(str(r.get("method")), str(p.get("id"))): p.get("score") for r in rs for p in r["per_image"]}
    prior: dict[str, object] = {}
    for r in rs:
        for p in r["per_image"]:
            prior.setdefault(str(p.get("id")), p.get("prior"))
    ids = list(prior)
    rows = [[f"<code>{esc(i)}</code>", N(prior.get(i))] + [N(score.get((str(r.get("method")), i))) for r in rs]
            for i in ids]
    head = ["image", "prior"] + [esc(r.get("method")) for r in rs]
    return (f"<details><summary>Per-image {esc(SCORES[criterion][0])} ({len(ids)} images)</summary>"
            f"{table(head, rows)}</details>")


def _constant_note(rs: list[dict]) -> str:
    items = [f"{esc(r.get('method'))}: {fmt((r.get('details') or {}).get('constant_maps'))}" for r in rs
             if (r.get("details") or {}).get("constant_maps")]
    if not items:
        return ""
    return ("<p class='small muted'>Constant maps (no information; scored as a uniform map would be): "
            + ", ".join(items) + ".</p>")


def section_body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    """Everything of the ``energy`` / ``focus`` / ``pointing`` section below its results table."""
    ok = [r for r in rs if verdict_of(r) in ("pass", "fail")]
    name = SCORES[criterion][0]
    parts = [figure(f"{criterion} box plots", score_boxplot, (ok, criterion),
                    f"Left: per-image {name} of each method's maps (coloured boxes; white diamonds: means) beside "
                    f"the average-mask prior scored the same way (grey box; dashed line: its mean). Right: the "
                    f"statistic the verdict is decided on, mean({name} − prior's) with its bootstrap CI (green: "
                    "pass, red: fail). <b>Look for</b> boxes above the prior's line and a CI clear of 0: a score "
                    "at the prior's level means the map knows no more than where lesions usually are."),
             guarded("constant maps", _constant_note, ok),
             guarded("per-image table", _per_image, ok, criterion)]
    return "".join(parts)
