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
