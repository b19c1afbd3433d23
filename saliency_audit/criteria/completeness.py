"""Faithfulness: ROAD completeness (Rong et al., ICML 2022), as Idiap mednet's ``completeness`` computes it.

Does removing what the map calls important change the model's output?  Per
image and map, pixels are ranked by the map (ties broken at random, seeded
by the image), and for each fraction f (default 0.2, 0.4, 0.6, 0.8) the
top-f pixels (MoRF) or the bottom-f pixels (LeRF) are removed and imputed
from their neighbours (noisy linear imputation, so the removal itself leaks
no shape information).  With p the explained class's probability,

    ROAD(image) = mean over f of (p_LeRF(f) − p_MoRF(f)) / 2      in [−0.5, 0.5]

A faithful map ranks the pixels the model uses first: removing them drops
p (low MoRF) while removing the rest does not (high LeRF).

Baselines, scored identically on the same images:

* a **random pixel order** — the verdict's baseline;
* the **randomized model's maps** — the same method on an untrained copy,
  scored on the trained model: a map that does not know the model;
* a **blurred-map control** — the method's map Gaussian-blurred: Song et
  al. (2023) show ROAD rewards blurry maps, so a blur scoring above the map
  says the map's detail is not what makes it faithful;
* the **lesion as a map** — the mask, lightly blurred: its ROAD minus the
  random order's is the *lesion reliance* of the model (does the model use
  the lesion at all?), the same for every method; it feeds the diagnosis
  (:mod:`saliency_audit.criteria.diagnosis`).

Verdict: pass iff the one-sided (1 − alpha) bootstrap lower bound of
mean(ROAD − ROAD_random) over images is above 0.

Beside ROAD, RISE's deletion and insertion curves (Petsiuk et al. 2018) and
their AUCs are reported for each method and for the random order
(report-only): deletion AUC low and insertion AUC high is faithful.

Images: the first ``completeness.n_images`` of the localisation set (lesion
images), so the lesion reliance and the diagnosis are defined on the very
images the verdict is.
"""
from __future__ import annotations

import numpy as np

from ..common.errors import Unavailable
from ..metrics.localisation import blurred, grid_sigma, lesion_maps
from ..stats import bootstrap_mean, clears, stable_seed
from .result import CriterionResult


def road_score(r: dict) -> np.ndarray:
    """Per-image ROAD score from :meth:`saliency_audit.engine.passes.Passes.road` output."""
    return np.mean((r["lerf"] - r["morf"]) / 2.0, axis=1)


def _bound(values: np.ndarray, config, *key):
    p = config.completeness
    return bootstrap_mean(values, alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method,
                          seed=stable_seed(config.seed, *key))


def reference_scores(ctx, model, loc) -> dict:
    """Method-independent scores on the localisation set, computed once per run: the random pixel order,
    the lesion as a map, the lesion reliance with its bound, and the random order's deletion/insertion curves."""
    P = ctx.passes
    cfg = ctx.config
    n = len(loc.samples)
    shape = loc.truths[0].shape
    flat = np.zeros((n, *shape), np.float32)  # all ties: the order is the seeded random permutation
    random = road_score(P.road(model, loc.samples, flat, seeds=P.random_seeds(loc.samples), desc="random order"))
    lesion = road_score(P.road(model, loc.samples, lesion_maps(loc.truths, grid_sigma(cfg.completeness.lesion_sigma,
                                                                                      shape)),
                                desc="lesion as map"))
    curves = P.curves(model, loc.samples, flat, seeds=P.random_seeds(loc.samples))
    b = _bound(lesion - random, cfg, "lesion-reliance")
    reliance = {"value": b.mean, "ci": [b.lo, b.hi], "bound": b.lo, "n": b.n,
                "uses_lesion": bool(np.isfinite(b.lo) and b.lo > 0),
                "lesion_road": float(np.nanmean(lesion)), "random_road": float(np.nanmean(random)),
                "per_image": [{"id": s.id, "lesion_road": float(x), "random_road": float(y)}
                              for s, x, y in zip(loc.samples, lesion, random)]}
    return {"random": random, "lesion": lesion, "reliance": reliance,
            "random_deletion_auc": float(np.mean(curves["deletion_auc"])),
            "random_insertion_auc": float(np.mean(curves["insertion_auc"]))}


def evaluate(method: str, *, ids: list[str], road: dict, scores: dict[str, np.ndarray], curves: dict, ref: dict,
             constant: np.ndarray, config, details: dict | None = None,
             randomized_unavailable: str | None = None) -> CriterionResult:
    """``road``: the method's ROAD passes (morf, lerf, base); ``scores``: per-image ROAD of the baselines
    ``randomized`` and ``blurred``; ``ref``: :func:`reference_scores`; ``curves``: the method's
    deletion/insertion curves; ``randomized_unavailable``: why there are no randomized model's maps (their
    scores are then NaN), e.g. a TorchScript archive."""
    p = config.completeness
    s = road_score(road)
    diff = s - ref["random"]
    b = _bound(diff, config, "completeness", method)
    raw = _bound(s, config, "completeness-road", method)
    ok = clears(b.lo, 0.0, strict=True, what="the lower bound of the ROAD score's rise over random order")
    base = {"name": "random pixel order", "value": float(np.nanmean(ref["random"]))}
    baselines = [base,
                 {"name": "randomized model's maps", "available": False, "reason": randomized_unavailable}
                 if randomized_unavailable else
                 {"name": "randomized model's maps", "value": float(np.nanmean(scores["randomized"]))},
                 {"name": "blurred-map control", "value": float(np.nanmean(scores["blurred"])),
                  "sigma_px": details.get("blur_sigma_px") if details else None},
                 {"name": "lesion as map", "value": ref["reliance"]["lesion_road"]}]
    rel = ref["reliance"]
    blur_note = ("; the blurred map scores higher than the map (ROAD favours blur, Song et al. 2023)"
                 if np.nanmean(scores["blurred"]) > raw.mean else "")
    rand_text = "unavailable" if randomized_unavailable else f"{baselines[1]['value']:+.3f}"
    text = (f"mean ROAD {raw.mean:+.3f} over {b.n} images (random order {base['value']:+.3f}, randomized model's "
            f"maps {rand_text}, blurred map {baselines[2]['value']:+.3f}); mean(ROAD − random) "
            f"{b.mean:+.3f}, one-sided {100 * (1 - p.alpha):.0f}% lower bound {b.lo:+.3f}; deletion AUC "
            f"{np.mean(curves['deletion_auc']):.3f} / insertion AUC {np.mean(curves['insertion_auc']):.3f} "
            f"(random order {ref['random_deletion_auc']:.3f} / {ref['random_insertion_auc']:.3f}); lesion reliance "
            f"{rel['value']:+.3f} (lower bound {rel['bound']:+.3f}){blur_note}"
            + ("" if ok else " -> removing what the map highlights changes the output no more than a random order")
            + (f". Randomized model's maps unavailable: {randomized_unavailable}" if randomized_unavailable else ""))
    fractions = [float(f) for f in p.fractions]
    per_image = [{"id": i, "statistic": float(x - r), "score": float(x), "random": float(r), "randomized": float(z),
                  "blurred": float(w),
                  "base_probability": float(q), "morf": [float(v) for v in mo], "lerf": [float(v) for v in le],
                  "deletion_auc": float(da), "insertion_auc": float(ia), "constant": bool(c)}
                 for i, x, r, z, w, q, mo, le, da, ia, c in
                 zip(ids, s, ref["random"], scores["randomized"], scores["blurred"], road["base"], road["morf"],
                     road["lerf"], curves["deletion_auc"], curves["insertion_auc"], constant)]
    curve = [{"fraction": f, "morf": float(np.mean(road["morf"][:, k])), "lerf": float(np.mean(road["lerf"][:, k]))}
             for k, f in enumerate(fractions)]
    return CriterionResult(
        criterion="completeness", method=method, verdict="pass" if ok else "fail",
        statistic="mean(ROAD - ROAD of a random order)", value=b.mean, ci=[b.lo, b.hi], bound=b.lo, threshold=0.0,
        baseline=base, baselines=baselines, n=b.n, per_image=per_image, curve=curve, explanation=text,
        details={"alpha": p.alpha, "mean_road": raw.mean, "mean_road_ci": [raw.lo, raw.hi], "fractions": fractions,
                 "fill": p.fill, "noise": p.noise, "base_probability": float(np.mean(road["base"])),
                 "deletion_auc": float(np.mean(curves["deletion_auc"])),
                 "insertion_auc": float(np.mean(curves["insertion_auc"])),
                 "random_deletion_auc": ref["random_deletion_auc"], "random_insertion_auc": ref["random_insertion_auc"],
                 "curves": {"fractions": curves["fractions"],
                            "deletion": [float(v) for v in np.mean(curves["deletion"], axis=0)],
                            "insertion": [float(v) for v in np.mean(curves["insertion"], axis=0)],
                            "deletion_fill": p.deletion_fill, "insertion_start": p.insertion_start},
                 "lesion_reliance": rel, "constant_maps": int(np.sum(constant)), **(details or {})},
    ).defer_p_value((diff, 0.0, True, stable_seed(config.seed, "completeness", method)))


def run(ctx, method: str) -> CriterionResult:
    loc = ctx.samples.localisation().head(ctx.config.completeness.n_images)
    primary = ctx.models.get("primary")
    P = ctx.passes
    ref = ctx.shared(("completeness", "reference"), lambda: reference_scores(ctx, primary, loc))
    looks = None
    if ctx.config.sequential:
        loc, looks = _sequential_images(ctx, method, loc, ref)
        ref = {**ref, "random": ref["random"][: len(loc.samples)]}
    maps = ctx.maps(primary, method, loc.samples)
    try:
        rand, unavailable = ctx.maps(ctx.models.get("randomized"), method, loc.samples), None
    except Unavailable as exc:  # no randomized copy of this model (TorchScript): the baseline says why
        rand, unavailable = None, str(exc)
    sigma = grid_sigma(ctx.config.completeness.blur_control_sigma, maps.maps.shape[-2:])
    road = ctx.shared(("completeness", "road", method, len(loc.samples)),
                      lambda: P.road(primary, loc.samples, maps.maps, desc=method))
    scores = {"randomized": np.full(len(loc.samples), np.nan) if rand is None else
              road_score(P.road(primary, loc.samples, rand.maps, desc=f"{method}, randomized model")),
              "blurred": road_score(P.road(primary, loc.samples, blurred(maps.maps, sigma),
                                           desc=f"{method}, blurred control"))}
    curves = P.curves(primary, loc.samples, maps.maps)
    result = evaluate(method, ids=maps.ids, road=road, scores=scores, curves=curves, ref=ref, constant=maps.constant,
                      config=ctx.config, details={"blur_sigma_px": sigma, "method_params": ctx.method_params(method),
                                                  "map_notes": maps.notes},
                      randomized_unavailable=unavailable)
    if looks is not None:
        from ..stats.sequential import apply

        apply(result, looks)
        result.details["lesion_reliance"]["note"] = ("over all planned images: it is the same for every method "
                                                    "and the diagnosis's, not this verdict's")
    return result


def _sequential_images(ctx, method: str, loc, ref):
    """(the images used, Looks): ROAD of the map against the random order, a batch of images at a time.
    The ROAD passes of each batch are kept, so the images the verdict used are scored once."""
    from ..stats.sequential import Check, run_looks

    primary, P = ctx.models.get("primary"), ctx.passes
    parts: list[dict] = []

    def look(k):
        done = sum(len(r["base"]) for r in parts)
        new = loc.head(k).samples[done:]
        maps = ctx.maps(primary, method, new)
        parts.append(P.road(primary, new, maps.maps, desc=method))
        road = {key: np.concatenate([r[key] for r in parts]) for key in parts[0]}
        diff = road_score(road) - ref["random"][:k]
        return [Check("mean(ROAD - ROAD of a random order)", diff, 0.0, lo=-1.0, hi=1.0)], True

    p = ctx.config.completeness
    k, looks = run_looks(ctx.config, p.alpha, len(loc.samples), look)
    road = {key: np.concatenate([r[key] for r in parts]) for key in parts[0]}
    ctx.shared(("completeness", "road", method, k), lambda: road)
    return loc.head(k), looks


# -- its cost in model passes (CriterionSpec.cost), beside the loop it replays: ``ledger`` is the plan's
# (saliency_audit.engine.plan), which counts the passes each ``ledger.maps``/``ledger.road`` would make.
def cost(ledger, method: str, stop=None) -> int:
    """The method-independent ROAD references once per run, the method's maps and ROAD look by look, then its
    randomized and blurred baselines.  ROAD and curves are given the maps they score where the plan knows them
    (the references; cached maps), so results in the cache cost none (engine.results.ResultCache)."""
    from ..metrics.perturbation import random_seeds

    ctx, cfg = ledger.ctx, ledger.config
    passes = 0
    head = ctx.samples.localisation().head(cfg.completeness.n_images)
    loc = head.samples
    if not ledger.road_reference:
        ledger.road_reference = True
        if loc:  # as reference_scores makes them: random order and lesion as map, random order's curves
            shape = head.truths[0].shape
            flat = (np.zeros((len(loc), *shape), np.float32), random_seeds(cfg, loc))
            lesion = (lesion_maps(head.truths, grid_sigma(cfg.completeness.lesion_sigma, shape)), None)
            passes += ledger.road(loc, maps=[flat, lesion], curves=[flat])
    if cfg.sequential:
        done = 0
        for k in ledger.looks(len(loc), stop):
            passes += ledger.maps("primary", method, loc[done:k])
            passes += ledger.road(loc[done:k], maps=[(ledger.known_maps("primary", method, loc[done:k]), None)])
            done = k
        loc = loc[:k]
    passes += ledger.maps("primary", method, loc)
    own = ledger.known_maps("primary", method, loc)
    blur = None if own is None else blurred(own, grid_sigma(cfg.completeness.blur_control_sigma, own.shape[-2:]))
    road = [] if cfg.sequential else [(own, None)]  # with looks, the method's own ROAD came from them
    if ledger.randomized():
        passes += ledger.maps("randomized", method, loc)
        road.append((ledger.known_maps("randomized", method, loc), None))
    return passes + ledger.road(loc, maps=[*road, (blur, None)], curves=[(own, None)])
