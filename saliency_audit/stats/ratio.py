"""A paired ratio of two means with its bootstrap bound (a method's score over the human readers').

``R = mean(x) / mean(y)`` over images scored by both, e.g. a saliency method's hit rate over the radiologists'
on the same images (Saporta et al. 2022 report the percentage decrease ``1 − R`` with a 95 % bootstrap
interval over images).  The bound is :func:`saliency_audit.stats.bootstrap_mean` of the ratio's linearised
per-image terms (the delta method, as :func:`saliency_audit.stats.floor_terms` does for a noise floor):

    t_i = R + (x_i − R·y_i) / mean(y),

whose mean is ``R`` exactly and whose spread is the ratio's to first order.  Each term holds both readings
of one image, so resampling terms resamples images with their pair intact: a paired bootstrap, with the
audit's calibrated bound (expanded bootstrap, Student t and Hall's skewness correction) rather than a bare
percentile interval.  Hand-written: no library offers a ratio of paired means with that bound.
"""
from __future__ import annotations

import math

import numpy as np

from . import Bound, bootstrap_mean


def ratio_terms(x, y) -> tuple[float, np.ndarray]:
    """(R, per-image linearised terms) over the pairs where both values are finite; (NaN, empty) when the
    denominator's mean is 0 (the ratio is undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if not x.size or not y.mean() > 0:
        return math.nan, np.empty(0)
    r = float(x.mean() / y.mean())
    return r, r + (x - r * y) / y.mean()


def ratio_bound(x, y, *, alpha: float = 0.05, resamples: int = 4000, method: str = "BCa", seed: int = 0) -> Bound:
    """mean(x) / mean(y) with its two-sided (1 − 2·alpha) interval; ``lo`` is the one-sided lower bound."""
    r, t = ratio_terms(x, y)
    if not t.size:
        return Bound(math.nan, math.nan, math.nan, 0, 1.0 - 2.0 * alpha, "undefined (denominator mean 0)")
    b = bootstrap_mean(t, alpha=alpha, resamples=resamples, method=method, seed=seed)
    return Bound(r, b.lo, b.hi, b.n, b.level, f"linearised ratio: {b.method}")
