"""The randomization test as the 2023-24 literature revises it (Hedström et al. 2024, "Sanity Checks Revisited").

* **Efficient MPRT** (eMPRT): instead of comparing maps stage by stage, the *relative rise* of each map's
  complexity from the trained to the fully randomized model, (H_random − H_trained) / H_trained, with H the
  discrete entropy of the map's histogram (``randomization.emprt_bins`` = 100 bins over [0, 1]).  A map that
  ignores the model rises by 0; a map that tracks what the model learned becomes noise-like on the random
  model and rises.  It needs two model states only.
* **Smooth MPRT** (sMPRT): the SSIM-drop test on denoised maps, each the average of the method's raw
  attributions over ``randomization.smooth_samples`` noisy copies of the image
  (:meth:`saliency_audit.engine.maps.MapStore.maps`, ``smooth=``), so the comparison is about the signal, not the
  gradient's shot noise.

Deviation from Quantus (whose eMPRT histograms the raw attribution by default): the maps are this audit's
postprocessed maps (abs-sum, clip at the 99th percentile, min-max), the same maps every other criterion
compares; the histogram's range is then [0, 1] for every map.
"""
from __future__ import annotations

import math

import numpy as np

#: the rise clipped to this range for the sequential look (the betting rule needs bounded values; a tenfold
#: rise in entropy is "unrelated" already)
RISE_RANGE = (-1.0, 10.0)


def entropy(m: np.ndarray, bins: int) -> float:
    """Discrete (Shannon, nats) entropy of the histogram of a map in [0, 1]; 0 for a constant map."""
    from scipy.stats import entropy as shannon

    counts, _ = np.histogram(np.asarray(m, np.float64), bins=bins, range=(0.0, 1.0))
    return float(shannon(counts)) if counts.sum() else 0.0


def entropy_rise(trained, randomized: list, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rise, H trained, H randomized) per image; H randomized and the rise averaged over the draws.
    A trained map of entropy 0 (constant) has no relative rise: NaN."""
    h0 = np.array([entropy(m, bins) for m in trained.maps])
    per_draw = np.array([[entropy(m, bins) for m in d.maps] for d in randomized])
    with np.errstate(divide="ignore", invalid="ignore"):
        # each draw's rise, then their mean: a map that ignores the model rises by exactly 0 (the mean of the
        # draws' entropies first would leave rounding noise that a bound "above 0" could read as a rise)
        rises = (per_draw - h0) / np.where(h0 > 0, h0, 1.0)
        rise = np.where(h0 > 0, rises.mean(axis=0), np.nan)
    return rise, h0, per_draw.mean(axis=0)


def emprt_check(trained, randomized: list, p):
    """A sequential look's check on the entropy rise."""
    from ..stats.sequential import Check

    rise = entropy_rise(trained, randomized, p.emprt_bins)[0]
    return Check("entropy rise (eMPRT)", np.clip(rise, *RISE_RANGE), p.emprt_min, strict=True, lo=RISE_RANGE[0],
                 hi=RISE_RANGE[1])


def emprt_summary(trained, randomized: list, config, key: str) -> dict:
    """The eMPRT numbers of one method: mean rise with its one-sided bound, and the mean entropies."""
    from ..stats import bootstrap_mean, stable_seed

    p = config.randomization
    rise, h0, h1 = entropy_rise(trained, randomized, p.emprt_bins)
    b = bootstrap_mean(rise, alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method,
                       seed=stable_seed(config.seed, key, "emprt"))
    ok = b.lo is not None and math.isfinite(b.lo) and b.lo > p.emprt_min
    return {"statistic": "entropy rise (eMPRT)", "value": b.mean, "lower": b.lo, "upper": b.hi,
            "threshold": p.emprt_min, "would_pass": bool(ok), "n": len(trained.ids),
            "undefined": int(np.sum(~np.isfinite(rise))), "bins": p.emprt_bins,
            "entropy_trained": float(np.mean(h0)), "entropy_randomized": float(np.mean(h1)),
            "per_image": [{"id": i, "rise": float(r), "entropy_trained": float(a), "entropy_randomized": float(z)}
                          for i, r, a, z in zip(trained.ids, rise, h0, h1)]}
