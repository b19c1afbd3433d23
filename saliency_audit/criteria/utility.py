"""Localisation utility (Arun et al. 2021): does the map find the lesion better than a prior?

Per audited image with a lesion: average precision (AP, primary) and the
trapezoid PR-AUC (the seed study's number) of the map's pixels against the
lesion mask, on the mask's native grid.  Baselines, scored identically:

* the *average-mask prior* — the mean lesion mask of other images (held out
  of the audited set, or leave-one-out: :mod:`saliency_audit.data.samplesets`):
  what a map that knows only where lesions usually are scores;
* the *fully randomized model* — the same method on an untrained copy of the
  model: what the architecture and image alone give (descriptive; a sequential
  run computes it on the first look's images only, and records that ``n``).

Verdict: pass iff the one-sided (1 − alpha) bootstrap lower bound of
mean(AP − AP_prior) is above 0 **and** mean AP ≥ ``utility.min_ap``.
"""
from __future__ import annotations

import numpy as np

from ..common.errors import Unavailable
from ..metrics.localisation import scores_on_grid
from ..stats import bootstrap_mean, clears, stable_seed
from .result import CriterionResult


def score_maps(maps: np.ndarray, truths: list[np.ndarray], ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(AP, trapezoid PR-AUC) per image, each map resampled to its mask's grid."""
    ap = np.empty(len(truths))
    pr = np.empty(len(truths))
    for i, (m, t) in enumerate(zip(maps, truths)):  # remembered by content: every look re-scores the same maps
        ap[i], pr[i] = scores_on_grid(m, t, what=f"image {ids[i]}")
    return ap, pr


def _randomized_text(baseline: dict, n: int) -> str:
    """The randomized-model baseline in the explanation, with the images it covers when fewer than ``n``."""
    first = f" (first {baseline['n']} images)" if baseline["n"] < n else ""
    return f"randomized-model AP {baseline['value']:.3f}{first}; "


def evaluate(
    method: str,
    *,
    ids: list[str],
    truths: list[np.ndarray],
    maps: np.ndarray,
    constant: np.ndarray,
    priors: list[np.ndarray],
    prior_n: int,
    prior_kind: str = "held-out",
    random_maps: np.ndarray | None,
    random_unavailable: str | None = None,
    config,
    details: dict | None = None,
) -> CriterionResult:
    p = config.utility
    ap, pr = score_maps(maps, truths, ids)
    ap_prior, pr_prior = score_maps(priors, truths, ids)
    diff = ap - ap_prior
    # the bootstrap resamples images, not methods: one seed for every method (paired resamples, and maps read
    # back with --maps under another name get the same bounds)
    b = bootstrap_mean(diff, alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method,
                       seed=stable_seed(config.seed, "utility"))
    ap_b = bootstrap_mean(ap, alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method,
                          seed=stable_seed(config.seed, "utility-ap"))
    mean_ap = float(np.nanmean(ap))
    baselines = [{"name": "average-mask prior", "value": float(np.nanmean(ap_prior)),
                  "pr_auc": float(np.nanmean(pr_prior)), "n_masks": prior_n, "kind": prior_kind}]
    ap_rand = np.full(len(ids), np.nan)
    if random_maps is not None:
        k = len(random_maps)  # the first k images (a sequential run maps the randomized model on its first look)
        ap_rand[:k], pr_rand = score_maps(random_maps, truths[:k], ids[:k])
        baselines.append({"name": "randomized model", "value": float(np.nanmean(ap_rand)),
                          "pr_auc": float(np.nanmean(pr_rand)), "n": k})
    elif random_unavailable:  # e.g. a TorchScript archive: no randomized copy; the verdict never needed it
        baselines.append({"name": "randomized model", "available": False, "reason": random_unavailable})
    beats_prior = clears(b.lo, 0.0, strict=True, what="the lower bound of mean(AP - AP_prior)")
    useful = mean_ap >= p.min_ap
    verdict = "pass" if (beats_prior and useful) else "fail"
    n_const = int(np.sum(constant))
    reasons = []
    if not beats_prior:
        reasons.append(f"lower bound of mean(AP - AP_prior) {b.lo:+.3f} is not above 0")
    if not useful:
        reasons.append(f"mean AP {mean_ap:.3f} is below the minimum {p.min_ap:.3f}")
    text = (
        f"mean AP {mean_ap:.3f} (trapezoid PR-AUC {np.nanmean(pr):.3f}) over {b.n} lesion images; "
        f"average-mask prior ({prior_kind}, {prior_n} masks) AP {baselines[0]['value']:.3f}; "
        + (_randomized_text(baselines[1], len(ids)) if len(baselines) > 1 and "value" in baselines[1] else "")
        + f"mean(AP - AP_prior) {b.mean:+.3f}, one-sided {100 * (1 - p.alpha):.0f}% lower bound {b.lo:+.3f}"
        + (f"; {n_const} constant map(s) scored as uninformative" if n_const else "")
        + ("" if verdict == "pass" else " -> " + "; ".join(reasons))
        + (f". Randomized-model baseline unavailable: {random_unavailable}" if random_maps is None and
           random_unavailable else "")
    )
    per_image = [
        {"id": i, "statistic": float(a - q), "score": float(a), "ap_prior": float(q), "pr_auc": float(r),
         "ap_randomized": float(z), "constant": bool(c)}
        for i, a, q, r, z, c in zip(ids, ap, ap_prior, pr, ap_rand, constant)
    ]
    return CriterionResult(
        criterion="utility", method=method, verdict=verdict, statistic="mean(AP - AP_prior)",
        value=b.mean, ci=[b.lo, b.hi], threshold=0.0, bound=b.lo,
        baseline=baselines[0], baselines=baselines, n=b.n, per_image=per_image, explanation=text,
        details={"mean_ap": mean_ap, "mean_ap_ci": [ap_b.lo, ap_b.hi], "mean_pr_auc": float(np.nanmean(pr)),
                 "min_ap": p.min_ap, "alpha": p.alpha, "bootstrap": b.to_dict(), "constant_maps": n_const,
                 **(details or {})},
    ).defer_p_value((diff, 0.0, True, stable_seed(config.seed, "utility")), otherwise=useful)


def run(ctx, method: str) -> CriterionResult:
    """Utility of ``method`` on the primary model over the localisation set."""
    from ..common.thumbs import map_thumbs

    def statistic(loc, maps):
        from ..stats.sequential import Check

        ap, ap_prior = score_maps(maps.maps, loc.truths, maps.ids)[0], score_maps(loc.priors, loc.truths, maps.ids)[0]
        return [Check("mean(AP - AP_prior)", ap - ap_prior, 0.0)], bool(np.nanmean(ap) >= ctx.config.utility.min_ap)

    loc, maps, looks = ctx.sequential_maps(method, statistic, ctx.config.utility.alpha)
    # maps made elsewhere (--maps) cannot be recomputed on the randomized model: no such baseline then.  It is
    # descriptive (the verdict is against the prior), so a sequential run maps the randomized model on the first
    # look's images only: the passes of the later looks go to the verdict.
    base = loc.samples if looks is None else loc.samples[: ctx.config.sequential_batch]
    rand = unavailable = None
    if not ctx.is_external(method):
        try:
            rand = ctx.maps(ctx.models.get("randomized"), method, base)
        except Unavailable as exc:  # no randomized copy of this model (TorchScript): the baseline says why
            unavailable = str(exc)
    result = evaluate(
        method, ids=maps.ids, truths=loc.truths, maps=maps.maps, constant=maps.constant, priors=loc.priors,
        prior_n=loc.prior_n, prior_kind=loc.prior_kind, random_maps=None if rand is None else rand.maps,
        random_unavailable=unavailable,
        config=ctx.config,
        details={"map_notes": maps.notes, "maps_computed": maps.computed, "map_seconds": maps.seconds,
                 "randomized_constant_maps": None if rand is None else int(rand.constant.sum()),
                 "method_params": ctx.method_params(method)},
    )
    result.details["thumbnails"] = map_thumbs(maps)
    if looks is not None:
        from ..stats.sequential import apply

        apply(result, looks)
    return result


# -- its cost in model passes (CriterionSpec.cost), beside the loop it replays: ``ledger`` is the plan's
# (saliency_audit.engine.plan), which counts the passes each ``ledger.maps``/``ledger.road`` would make.
def cost(ledger, method: str, stop=None) -> int:
    """The primary's maps look by look, then (not for maps made elsewhere) the randomized model's baseline on
    the images of the first look (sequential) or all of them."""
    cfg = ledger.config
    passes, loc = ledger.localisation(method, stop)
    if method not in ledger.ctx.store.external and ledger.randomized():
        passes += ledger.maps("randomized", method, loc[: cfg.sequential_batch] if cfg.sequential else loc)
    return passes
