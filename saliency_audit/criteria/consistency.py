"""Repeatability and reproducibility (Arun et al. 2021): do maps survive retraining?

* ``repeatability`` — the primary model against replicates of its own
  architecture trained with other seeds;
* ``reproducibility`` — against models of other architectures trained on
  the same task.

Per image, SSIM (the verdict's measure) and Spearman rank correlation between
the primary's map and each other model's map, on a common grid: the image's
ground-truth (mask) grid, so models with different input sizes compare
pixel for pixel.  Stochastic methods use the same noise draws for every model
(common random numbers).  With several other models every pair counts: the
per-image score is the mean over pairs, the evidence keeps every pair.

Beside the map agreement stands the *prediction agreement*: how often the two
models predict the same class on the audited images, so "the maps disagree"
can be told from "the models disagree".  The SSIM noise floor (maps of
different images from the primary) shows what chance agreement looks like.

Verdict: pass iff the one-sided (1 − alpha) bootstrap lower bound of mean
SSIM is at least ``consistency.min_ssim`` (0.5, the reference line of Arun et
al.'s figure 4).
"""
from __future__ import annotations

import numpy as np

from ..metrics import similarity as sim
from ..metrics.localisation import resize_map
from ..stats import bootstrap_mean, clears, stable_seed
from .randomization import kept_scores_path, mean_noise_floors
from .result import CriterionResult


def pair_scores(ref, other, grids: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Per-image SSIM and Spearman of two MapSets after resampling both onto each image's grid; kept in the
    maps' cache folder like randomization's (:func:`~saliency_audit.criteria.randomization.similarities`)."""
    from ..common.kept_arrays import load_arrays, save_arrays

    path = kept_scores_path(ref, other, f"consistency {[list(map(int, g)) for g in grids]}")
    out = load_arrays(path, {"ssim": (len(grids),), "spearman_abs": (len(grids),)})
    if out is not None:
        return out
    out = {"ssim": np.empty(len(grids)), "spearman_abs": np.empty(len(grids))}
    for i, g in enumerate(grids):
        a, b = resize_map(ref.maps[i], g), resize_map(other.maps[i], g)
        out["ssim"][i] = sim.ssim(a, b)
        out["spearman_abs"][i] = sim.spearman(a, b)
    save_arrays(path, out)
    return out


def evaluate(criterion: str, method: str, ref, others: list[tuple[str, object, float]], grids, config,
             *, details: dict | None = None) -> CriterionResult:
    """``others``: (model spec, MapSet, prediction agreement with the primary) per compared model."""
    p = config.consistency
    pairs, per_pair = [], []
    for spec, maps, agreement in others:
        scores = pair_scores(ref, maps, grids)
        b = bootstrap_mean(scores["ssim"], alpha=p.alpha, resamples=config.stats.resamples,
                           method=config.stats.method, seed=stable_seed(config.seed, criterion, method, spec))
        sp = scores["spearman_abs"][np.isfinite(scores["spearman_abs"])]
        pairs.append({"model": spec, "ssim": b.mean, "ssim_ci": [b.lo, b.hi],
                      "spearman_abs": float(sp.mean()) if sp.size else None,
                      "prediction_agreement": agreement, "constant_maps": int(np.sum(maps.constant)),
                      "per_image": [{"id": i, "ssim": float(s)} for i, s in zip(ref.ids, scores["ssim"])]})
        per_pair.append(scores["ssim"])
    per_image = np.mean(per_pair, axis=0)
    b = bootstrap_mean(per_image, alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method,
                       seed=stable_seed(config.seed, criterion, method))
    floor = mean_noise_floors(ref)["ssim"]
    ok = clears(b.lo, p.min_ssim, strict=False, what="the lower bound of the mean SSIM")
    pairs_txt = "; ".join(f"{q['model']}: SSIM {q['ssim']:.3f}, prediction agreement {q['prediction_agreement']:.2f}"
                          for q in pairs)
    text = (f"mean SSIM {b.mean:.3f} over {b.n} images and {len(pairs)} model pair(s), one-sided "
            f"{100 * (1 - p.alpha):.0f}% lower bound {b.lo:.3f} (noise floor {floor:.3f}); {pairs_txt}"
            + ("" if ok else f" -> lower bound below {p.min_ssim}"))
    return CriterionResult(
        criterion=criterion, method=method, verdict="pass" if ok else "fail", statistic="mean SSIM to primary",
        value=b.mean, ci=[b.lo, b.hi], bound=b.lo, threshold=p.min_ssim,
        baseline={"name": "SSIM noise floor", "value": floor}, n=b.n,
        per_image=[{"id": i, "statistic": float(s), "score": float(s)} for i, s in zip(ref.ids, per_image)],
        curve=pairs,
        explanation=text, details={"alpha": p.alpha, "grid": "each image's ground-truth grid (bilinear resampling)",
                                   **(details or {})},
    ).defer_p_value((per_image, p.min_ssim, False, stable_seed(config.seed, criterion, method)))


def _run(ctx, criterion: str, method: str, kind: str, option: str) -> CriterionResult:
    from .randomization import _sequential, with_thumbs

    specs = ctx.models.specs(kind)
    if not specs:
        ctx.skip(f"no model to compare with: pass {option} SPEC")
    primary = ctx.models.get("primary")
    models = [ctx.models.get(f"{kind}{i}") for i in range(len(specs))]

    def grids(samples):
        return [tuple((s.truth() if s.truth() is not None else s.image[0].numpy()).shape) for s in samples]

    def checks(samples):
        from ..stats.sequential import Check

        ref, g = ctx.maps(primary, method, samples), grids(samples)
        ssim = np.mean([pair_scores(ref, ctx.maps(m, method, samples), g)["ssim"] for m in models], axis=0)
        return [Check("mean SSIM to primary", ssim, ctx.config.consistency.min_ssim, strict=False)], True

    p = ctx.config.consistency
    samples, looks = ctx.sequential_samples(ctx.samples.first(p.n_images), p.alpha, checks)
    ref = ctx.maps(primary, method, samples)
    others = [(spec, ctx.maps(m, method, samples), ctx.prediction_agreement(primary, m, samples))
              for spec, m in zip(specs, models)]
    result = evaluate(criterion, method, ref, others, grids(samples), ctx.config,
                      details={"models": specs, "method_params": ctx.method_params(method)})
    return _sequential(with_thumbs(result, ref, [maps for _, maps, _ in others]), looks)


def run_repeatability(ctx, method: str) -> CriterionResult:
    """Maps of the primary against replicates of its architecture (other training seeds)."""
    return _run(ctx, "repeatability", method, "replicate", "--replicate")


def run_reproducibility(ctx, method: str) -> CriterionResult:
    """Maps of the primary against models of other architectures trained on the task."""
    return _run(ctx, "reproducibility", method, "reference", "--reference-model")


# -- its cost in model passes (CriterionSpec.cost), beside the loop it replays: ``ledger`` is the plan's
# (saliency_audit.engine.plan), which counts the passes each ``ledger.maps``/``ledger.road`` would make.
def _cost(ledger, method: str, stop, kind: str) -> int:
    ctx, cfg = ledger.ctx, ledger.config
    others = [f"{kind}{i}" for i in range(len(ctx.models.specs(kind)))]
    if not others:
        return 0
    passes = 0
    samples = ctx.samples.first(cfg.consistency.n_images)
    if cfg.sequential:
        for k in ledger.looks(len(samples), stop):
            passes += sum(ledger.maps(m, method, samples[:k]) for m in ["primary", *others])
        samples = samples[:k]
    passes += sum(ledger.maps(m, method, samples) for m in ["primary", *others])
    # prediction agreement: both models, every image, each image's logits once per model (cached: none)
    return passes + sum(ledger.predictions(m, samples) for o in others for m in ("primary", o))


def repeatability_cost(ledger, method: str, stop=None) -> int:
    return _cost(ledger, method, stop, "replicate")


def reproducibility_cost(ledger, method: str, stop=None) -> int:
    return _cost(ledger, method, stop, "reference")
