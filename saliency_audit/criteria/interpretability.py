"""mednet-style interpretability: ``energy``, ``focus`` and ``pointing`` against the average-mask prior.

Per lesion image of the localisation set (masks, or boxes rasterised), the
map's score (:mod:`saliency_audit.metrics.interpretability`) and the score of
the average-mask prior for that image, computed identically.  A score alone
says little — a map that is high everywhere has a high focus, a map on the
usual lesion site points well — so the verdict is relative to what knowing
only where lesions usually are would score:

    pass iff the one-sided (1 − alpha) bootstrap lower bound of
    mean(score − score_prior) over images is above 0.

Images without a lesion are excluded (NaN), never counted as hits.
"""
from __future__ import annotations

import numpy as np

from ..metrics import interpretability as m
from ..metrics.localisation import resize_map
from ..stats import bootstrap_mean, clears, stable_seed
from .result import CriterionResult

#: criterion -> (score function, statistic's name, what a unit means)
SCORES = {
    "energy": (m.proportional_energy, "proportional energy", "share of the map's mass inside the lesion"),
    "focus": (m.saliency_focus, "average saliency focus", "mean map value over the lesion"),
    "pointing": (m.pointing_hit, "pointing-game hit rate", "the map's maximum lies in the lesion"),
}


def scores(criterion: str, maps, truths: list[np.ndarray], ids: list[str], config) -> np.ndarray:
    fn = SCORES[criterion][0]
    kw = {"tolerance": config.interpretability.pointing_tolerance} if criterion == "pointing" else {}
    return np.array([fn(resize_map(s, t.shape), t, what=f"image {i}", **kw) for s, t, i in zip(maps, truths, ids)])


def prior_maps(priors, config) -> np.ndarray:
    """The priors postprocessed exactly as every map is (clip, min-max per map): scored identically.

    Energy and pointing do not care, but focus does: a prior whose maximum is 0.1 would lose to any map
    scaled to a maximum of 1.
    """
    from ..methods.postprocess import postprocess

    return postprocess(np.stack(priors), clip_percentile=config.postprocess.clip_percentile, what="prior")[0]


def evaluate(criterion: str, method: str, *, ids, truths, maps, constant, priors, prior_n: int, prior_kind: str,
             config, details: dict | None = None) -> CriterionResult:
    p = config.interpretability
    _, statistic, unit = SCORES[criterion]
    s = scores(criterion, maps, truths, ids, config)
    q = scores(criterion, prior_maps(priors, config), truths, ids, config)
    kw = dict(alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method)
    # one seed for every method: the bootstrap resamples images (see utility)
    b = bootstrap_mean(s - q, seed=stable_seed(config.seed, criterion), **kw)
    raw = bootstrap_mean(s, seed=stable_seed(config.seed, criterion, "score"), **kw)
    prior_mean = float(np.nanmean(q))
    ok = clears(b.lo, 0.0, strict=True, what=f"the lower bound of the mean {statistic} difference")
    n_const = int(np.sum(constant))
    text = (f"mean {statistic} {raw.mean:.3f} ({unit}) over {b.n} lesion images; average-mask prior "
            f"({prior_kind}, {prior_n} masks) {prior_mean:.3f}; mean difference {b.mean:+.3f}, one-sided "
            f"{100 * (1 - p.alpha):.0f}% lower bound {b.lo:+.3f}"
            + (f"; {n_const} constant map(s) scored as uniform" if n_const else "")
            + ("" if ok else " -> the lower bound is not above 0: the map does no better than the prior"))
    return CriterionResult(
        criterion=criterion, method=method, verdict="pass" if ok else "fail",
        statistic=f"mean({statistic} - prior's)", value=b.mean, ci=[b.lo, b.hi], bound=b.lo, threshold=0.0,
        baseline={"name": "average-mask prior", "value": prior_mean, "n_masks": prior_n, "kind": prior_kind},
        n=b.n, explanation=text,
        per_image=[{"id": i, "statistic": float(x - y), "score": float(x), "prior": float(y), "constant": bool(c)}
                   for i, x, y, c in zip(ids, s, q, constant)],
        details={"mean_score": raw.mean, "mean_score_ci": [raw.lo, raw.hi], "alpha": p.alpha,
                 "constant_maps": n_const, **(details or {})},
    ).defer_p_value((s - q, 0.0, True, stable_seed(config.seed, criterion)))


def _run(ctx, criterion: str, method: str) -> CriterionResult:
    def statistic(loc, maps):
        from ..stats.sequential import Check

        priors = prior_maps(loc.priors, ctx.config)
        diff = (scores(criterion, maps.maps, loc.truths, maps.ids, ctx.config)
                - scores(criterion, priors, loc.truths, maps.ids, ctx.config))
        return [Check(f"mean({SCORES[criterion][1]} - prior's)", diff, 0.0)], True

    loc, maps, looks = ctx.sequential_maps(method, statistic, ctx.config.interpretability.alpha)
    details = {"method_params": ctx.method_params(method)}
    if criterion == "pointing":
        details["tolerance_px"] = ctx.config.interpretability.pointing_tolerance
    result = evaluate(criterion, method, ids=maps.ids, truths=loc.truths, maps=maps.maps, constant=maps.constant,
                      priors=loc.priors, prior_n=loc.prior_n, prior_kind=loc.prior_kind, config=ctx.config,
                      details=details)
    if looks is not None:
        from ..stats.sequential import apply

        apply(result, looks)
    return result


def run_energy(ctx, method: str) -> CriterionResult:
    return _run(ctx, "energy", method)


def run_focus(ctx, method: str) -> CriterionResult:
    return _run(ctx, "focus", method)


def run_pointing(ctx, method: str) -> CriterionResult:
    return _run(ctx, "pointing", method)


# -- its cost in model passes (CriterionSpec.cost), beside the loop it replays: ``ledger`` is the plan's
# (saliency_audit.engine.plan), which counts the passes each ``ledger.maps``/``ledger.road`` would make.
def cost(ledger, method: str, stop=None) -> int:
    """The primary's maps of the localisation set, look by look."""
    return ledger.localisation(method, stop)[0]
