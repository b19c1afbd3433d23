"""Bootstrap confidence bounds for per-image audit statistics.

Verdicts are statistical: a criterion passes when a one-sided (1 − alpha)
bootstrap bound of the mean per-image statistic clears its threshold.  The
two-sided (1 − 2·alpha) interval is reported as ``ci``; its lower end *is*
the one-sided lower bound.  The resampling is seeded from the run seed and
the (criterion, method) key, so every number is reproducible and independent
of the order in which tests run (pytest-xdist).
"""
from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class Bound:
    mean: float
    lo: float  # one-sided (1 - alpha) lower bound == lower end of the two-sided (1 - 2 alpha) interval
    hi: float
    n: int
    level: float  # two-sided level of [lo, hi]
    method: str

    def to_dict(self) -> dict:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n": self.n, "level": self.level, "method": self.method}


def stable_seed(*parts: object) -> int:
    """A 32-bit seed from a run seed and names, stable across processes (no ``hash()``)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def bootstrap_mean(
    values: np.ndarray,
    *,
    alpha: float = 0.05,
    resamples: int = 4000,
    method: str = "BCa",
    seed: int = 0,
) -> Bound:
    """Mean of ``values`` (NaNs dropped) with its bootstrap interval at level 1 − 2·alpha."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    level = 1.0 - 2.0 * alpha
    if n == 0:
        return Bound(math.nan, math.nan, math.nan, 0, level, method)
    mean = float(x.mean())
    if n == 1 or np.ptp(x) == 0.0:
        # No spread: every resample has the same mean; scipy's BCa would divide by zero.
        return Bound(mean, mean, mean, n, level, "degenerate")

    def interval(how: str) -> tuple[float, float]:
        with warnings.catch_warnings():
            # BCa on near-degenerate data warns and returns NaN; that is detected and handled below.
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", getattr(_st, "DegenerateDataWarning", RuntimeWarning))
            res = _st.bootstrap((x,), np.mean, n_resamples=resamples, confidence_level=level, method=how,
                                rng=np.random.default_rng(seed), vectorized=True)
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    used = method
    lo, hi = interval(method)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        used = "percentile"
        lo, hi = interval(used)
    return Bound(mean, lo, hi, n, level, used)


def pass_p_value(values, threshold: float, *, strict: bool = False, resamples: int = 4000, method: str = "BCa",
                 seed: int = 0, steps: int = 14) -> float:
    """The p-value of a verdict that passes when the one-sided (1 − alpha) lower bound of the mean of
    ``values`` clears ``threshold``: the smallest alpha at which :func:`bootstrap_mean` (same resamples,
    same seed) gives a bound that clears it -- a verdict at level alpha passes exactly when p <= alpha.

    The bound grows with alpha, so the level is found by bisection (``steps`` halvings, on a log scale
    below 0.5: 14 halvings of the range 1e-8 to 0.5 give p to 0.11 % of itself, rounded up, so a p just
    above alpha may belong to a verdict that passes at alpha).  When even the median (alpha = 0.5) does
    not clear the threshold, p = 1 − q with q the smallest alpha at which the *upper* bound falls short of it (the mirrored test), so p runs on from
    0.5 to 1 as the evidence turns against a pass.  No spread: 0 when the mean clears, else 1.

    Hand-written bisection rather than a library call: scipy's bootstrap gives intervals, not the level
    at which an interval reaches a value, and inverting its BCa by hand would duplicate scipy's code.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]

    def clears(v: float) -> bool:
        return v > threshold if strict else v >= threshold

    if x.size == 0:
        return 1.0
    if x.size == 1 or np.ptp(x) == 0.0:
        return 0.0 if clears(float(x.mean())) else 1.0
    kw = dict(resamples=resamples, method=method, seed=seed)
    top = 0.5 - 1e-9

    def smallest(test) -> float:
        """The smallest alpha in (1e-8, 0.5) for which test(bound at alpha) holds (it holds at 0.5)."""
        lo, hi = math.log(1e-8), math.log(top)
        if test(bootstrap_mean(x, alpha=1e-8, **kw)):
            return 1e-8
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if test(bootstrap_mean(x, alpha=math.exp(mid), **kw)) else (mid, hi)
        return math.exp(hi)

    median = bootstrap_mean(x, alpha=top, **kw)
    if clears(median.lo):
        return smallest(lambda b: clears(b.lo))
    if clears(median.hi):  # the interval straddles it even at zero width
        return 0.5
    return 1.0 - smallest(lambda b: not clears(b.hi))
