"""The radiologist benchmark (Saporta et al. 2022, CheXlocalize): does the map localise nearly as well as people?

Given a second set of annotations (``--human-annotations``: readers other than those who drew the ground
truth), each audited lesion image that a reader annotated is scored twice against the dataset's ground
truth, on the model's grid: by the method's map and by the reader's annotation, with the same three
numbers (:mod:`saliency_audit.metrics.human`):

* **hit rate** — the pointing game: the map's maximum in the ground truth; a reader's most representative
  point in it (CheXlocalize's definitions; a reader who marked nothing on the image misses);
* **IoU** — the map thresholded as CheXlocalize does (Otsu's level, holes filled; or a tuned threshold)
  against the ground truth; the reader's mask against the ground truth;
* **AP** — the map's pixels ranked against the ground truth; the reader's mask as a binary score.

Each number is reported as the method's mean over the readers' (``R``, the complement of CheXlocalize's
"percentage decrease") with a paired bootstrap bound (:mod:`saliency_audit.stats.ratio`: images resampled
with both readings, Fieller's construction).  Verdict — a non-inferiority test on the hit rate:

    pass iff the one-sided (1 − alpha) lower bound of R_hit is at least ``human.margin``,

decided as the bound of mean(hit_i − margin · readers' hit_i) ≥ 0 (the test the ratio's bound inverts).

Audited images without a reader's annotation are left out and listed (``details.annotations.missing``);
without ``--human-annotations`` the criterion is absent from the run (:func:`run` is never planned).
"""
from __future__ import annotations

import math

import numpy as np

from ..stats import clears, stable_seed
from ..stats import bootstrap_mean
from ..stats.ratio import noninferiority_terms, ratio_bound
from .result import CriterionResult

#: metric key -> (what it is called in words, per-image key of the method, of the readers)
METRICS = {"hit_rate": ("hit rate", "hit", "human_hit"), "iou": ("IoU", "iou", "human_iou"),
           "ap": ("AP", "ap", "human_ap")}


def annotations(ctx):
    """The readers' annotations of the localisation set (loaded once per run and finding), or None."""
    if not ctx.human_annotations:
        return None
    from ..data.human import load_human_annotations

    loc = ctx.samples.localisation()

    def load():
        native = {s.id: tuple(s.meta.get("native_size") or s.image.shape[-2:]) for s in loc.samples}
        return load_human_annotations(ctx.human_annotations, ctx.finding, [s.id for s in loc.samples],
                                      loc.truths[0].shape, native=native)

    return ctx.shared(("human_annotations", ctx.human_annotations, ctx.finding), load)


def score(maps, constant, truths, ids, readers, config) -> list[dict]:
    """Per image: the method's hit, IoU and AP and the reader's, against the ground truth."""
    from ..metrics.human import map_scores, reader_scores

    p = config.human
    threshold = p.fixed_threshold if p.threshold == "fixed" else None
    rows = []
    for m, c, t, i, a in zip(maps, constant, truths, ids, readers):
        from ..metrics.localisation import resize_map

        mine = map_scores(resize_map(m, t.shape), t, threshold=threshold, what=f"image {i}")
        theirs = reader_scores(a.mask, t, points=a.points, what=a.source)
        rows.append({"id": i, **mine, **{f"human_{k}": v for k, v in theirs.items()}, "constant": bool(c)})
    return rows


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if np.isfinite(x) else "undefined"


def evaluate(method: str, rows: list[dict], *, config, title: str, finding: str | None,
             details: dict | None = None) -> CriterionResult:
    p = config.human
    kw = dict(alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method)
    metrics = {}
    for key, (_, mine, theirs) in METRICS.items():
        x = np.array([r[mine] for r in rows], dtype=np.float64)
        y = np.array([r[theirs] for r in rows], dtype=np.float64)
        # one seed for every method: the bootstrap resamples images (as utility's), so methods get paired bounds
        b = ratio_bound(x, y, seed=stable_seed(config.seed, "human_benchmark", key), **kw)
        metrics[key] = {"method": float(np.nanmean(x)), "human": float(np.nanmean(y)), "ratio": b.mean,
                        "ci": [b.lo, b.hi], "difference": float(np.nanmean(x - y)), "n": b.n, "bootstrap": b.to_dict()}
    hit = metrics["hit_rate"]
    what = finding or "the lesion"
    if not hit["human"] > 0:
        from .context import Context

        Context.skip(f"the readers hit {what} on none of the {len(rows)} images both annotated: the ratio to their "
                     "hit rate is undefined")
    # the verdict: mean(hit - margin * readers' hit) >= 0, the same test the ratio's bound inverts (same seed)
    seed = stable_seed(config.seed, "human_benchmark", "hit_rate")
    terms = noninferiority_terms([r["hit"] for r in rows], [r["human_hit"] for r in rows], p.margin)
    test = bootstrap_mean(terms, seed=seed, **kw)
    ok = clears(test.lo, 0.0, strict=False, what="the lower bound of mean(hit - margin x readers' hit)")
    # the ratio's bound is this test inverted by bisection (to R / 2**12): on the margin's side the test says
    lo = hit["ci"][0]
    hit["ci"][0] = max(lo, p.margin) if ok else min(lo, math.nextafter(p.margin, -math.inf))
    others = "; ".join(f"{METRICS[k][0]} {m['method']:.3f} vs {m['human']:.3f} (ratio {_pct(m['ratio'])}, lower "
                       f"bound {_pct(m['ci'][0])})" for k, m in metrics.items() if k != "hit_rate")
    n_const = sum(r["constant"] for r in rows)
    missing = ((details or {}).get("annotations") or {}).get("n_missing", 0)
    text = (f"{title} localises {what} at {_pct(hit['ratio'])} of the radiologists' hit rate (lower bound "
            f"{_pct(hit['ci'][0])}): hit rate {hit['method']:.3f} vs the readers' {hit['human']:.3f} on {hit['n']} "
            f"images; {others}"
            + (f"; {missing} audited image(s) without a reader's annotation left out" if missing else "")
            + (f"; {n_const} constant map(s)" if n_const else "")
            + ("" if ok else f" -> the lower bound is below the non-inferiority margin {_pct(p.margin)}"))
    per_image = [dict(r, statistic=float(t)) for r, t in zip(rows, terms)]
    return CriterionResult(
        criterion="human_benchmark", method=method, verdict="pass" if ok else "fail",
        statistic="hit rate / readers' hit rate", value=hit["ratio"], ci=list(hit["ci"]), bound=hit["ci"][0],
        threshold=p.margin, n=hit["n"], explanation=text, per_image=per_image,
        baseline={"name": "radiologists", "value": hit["human"]},
        details={"alpha": p.alpha, "margin": p.margin, "hit_rate": hit["method"], "metrics": metrics,
                 "segmentation": "otsu" if p.threshold == "otsu" else f"map > {p.fixed_threshold:g}",
                 "noninferiority": {"statistic": "mean(hit - margin x readers' hit)", "mean": test.mean,
                                    "lower_bound": test.lo},
                 "constant_maps": n_const, **(details or {})},
    ).defer_p_value((terms, 0.0, False, seed))


def run(ctx, method: str) -> CriterionResult:
    """The method beside the readers on the audited lesion images both annotated."""
    ann = annotations(ctx)
    if ann is None:
        ctx.skip("human_benchmark runs only with --human-annotations")
    loc = ctx.samples.localisation()
    annotated = [s.id for s in loc.samples if ann.get(s.id) is not None]
    if len(annotated) < 2:
        ctx.skip(f"--human-annotations={ann.path}: {len(annotated)} of the {len(loc.samples)} audited lesion images "
                 f"have a reader's annotation{f' of {ctx.finding}' if ctx.finding else ''} (at least 2 needed; "
                 f"a mask folder names its files <image id>.png, e.g. {loc.samples[0].id}.png)")
    sub, maps = ctx.localised_maps(method, loc.only(annotated))
    rows = score(maps.maps, maps.constant, sub.truths, maps.ids, [ann.get(i) for i in maps.ids], ctx.config)
    from ..methods import METHODS

    title = METHODS[method].title if method in METHODS else method
    return evaluate(method, rows, config=ctx.config, title=title, finding=ctx.finding,
                    details={"annotations": ann.describe(), "method_params": ctx.method_params(method)})


# -- its cost in model passes (CriterionSpec.cost), beside the loop it replays (saliency_audit.engine.plan)
def cost(ledger, method: str, stop=None) -> int:
    """The primary's maps of the annotated lesion images (all of them: the verdict is fixed-n)."""
    ann = annotations(ledger.ctx)
    if ann is None:
        return 0
    samples = [s for s in ledger.ctx.samples.localisation().samples if ann.get(s.id) is not None]
    return ledger.maps("primary", method, samples) if len(samples) >= 2 else 0
