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
from scipy import special
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


def clears(bound, threshold, *, strict: bool, what: str = "the bound") -> bool:
    """Whether ``bound`` clears ``threshold`` (``strict``: exceeds it): the one comparison every verdict is
    decided by.  A bound or threshold that is not a finite number (NaN, +inf, -inf, None) raises
    :class:`~saliency_audit.common.errors.DegenerateBound`: an infinite lower bound once passed every sequential
    verdict of a large audit, so no verdict is ever decided on one."""
    from ..common.errors import DegenerateBound

    for name, v in ((what, bound), ("its threshold", threshold)):
        if v is None or not math.isfinite(float(v)):
            raise DegenerateBound(f"{what} is {v!r}, not a finite number: no verdict can be decided on it"
                                  if name == what else f"{what}'s threshold is {v!r}, not a finite number")
    return bool(bound > threshold) if strict else bool(bound >= threshold)


def floor_terms(d, floors, floor: float | None = None) -> np.ndarray:
    """Per-image terms of a statistic normalized by a noise floor estimated on the same images, carrying the
    floor's share of the variance.

    The randomization criteria's ``d_i = (1 - s_i) / (1 - f)``, ``f`` the mean of the images' own floor terms
    ``f_i`` (each image's map against another image's), so the mean of ``d`` is a ratio of two means and every
    ``d_i`` moves with ``f``.  Treating ``f`` as known understates the ratio's variance: on the demo the
    CAM maps, whose floors vary most, had the most optimistic bounds.  Each image's term here is its
    influence-function term (the delta method for a ratio of means),

        t_i = d_i + mean(d) * (f_i - f) / (1 - f),

    so the terms average to ``mean(d)`` exactly and their spread is the ratio's: a bound, p-value or paired
    comparison over the ``t_i`` carries the floor's uncertainty.  Images without a finite floor term or
    value keep ``d_i``; a floor of 1 or more (maps that do not depend on the image) leaves ``d`` unchanged.
    ``floor``: the floor ``d`` was normalized by, when it is not the mean of ``floors`` (a stage scored on
    the first images only, normalized by every image's floor)."""
    d = np.asarray(d, dtype=np.float64)
    f = np.asarray(floors, dtype=np.float64)
    ok = np.isfinite(f) & np.isfinite(d)
    if not ok.any():
        return d
    fb = float(f[ok].mean()) if floor is None else float(floor)
    db = float(d[ok].mean())
    if not fb < 1.0:
        return d
    return np.where(ok, d + db * (f - fb) / (1.0 - fb), d)


def stable_seed(*parts: object) -> int:
    """A 32-bit seed from a run seed and names, stable across processes (no ``hash()``)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def _skewness(x: np.ndarray) -> float:
    """The sample skewness m3 / m2^1.5 (0 without spread)."""
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d ** 3)) / m2 ** 1.5 if m2 > 0 else 0.0


def _hall_inverse(y: float, g: float) -> float:
    """The inverse of Hall's transform ``u + g u^2 / 3 + g^2 u^3 / 27 = ((1 + g u / 3)^3 - 1) / g``."""
    return y if abs(g) < 1e-12 else 3.0 / g * (float(np.cbrt(1.0 + g * y)) - 1.0)


def mean_lower(x: np.ndarray, crit: float) -> float:
    """The lower confidence bound of the mean of ``x`` (at least 2 finite values with spread) at critical
    value ``crit`` on the Student-t scale: the lower of the t bound and the bound of Hall's skewness-corrected
    t (Hall 1992, "On the removal of skewness by transformation", JRSS-B 54).

    The t bound alone passes too often when the per-image values have a long lower tail (a method that
    fails badly on a few images: tests/test_error_guarantees.py shows it on Beta(5, 2) values at 24 images).
    Hall's statistic ``sqrt(n) (g(U) + gamma / (6 n))``, ``U`` the mean's distance over the sd, ``gamma``
    the sample skewness and ``g`` the monotone cubic above, removes the skewness term of the t statistic's
    distribution; alone it is too liberal on heavy symmetric tails, where the t bound holds, so the bound
    is the lower of the two.  Neither can see a tail the sample did not draw: at 8 to 24 images strongly
    left-skewed values still pass more often than alpha (the calibration table of docs/ci-and-release.md flags
    them).
    Hand-written: no dependency offers it."""
    n = len(x)
    m, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    t_bound = m - crit * sd / math.sqrt(n)
    g = _skewness(x)
    hall = m - sd * _hall_inverse(crit / math.sqrt(n) - g / (6.0 * n), g)
    return min(t_bound, hall)


def mean_upper(x: np.ndarray, crit: float) -> float:
    """:func:`mean_lower` mirrored: the upper bound."""
    return -mean_lower(-np.asarray(x, dtype=np.float64), crit)


def mean_statistic(x: np.ndarray, threshold: float) -> float:
    """The studentized statistic :func:`mean_lower` passes on: ``mean_lower(x, c) > threshold`` exactly when
    this exceeds ``c`` (the smaller of the t statistic and Hall's, both against the same critical value)."""
    n = len(x)
    m, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    u = (m - threshold) / sd
    g = _skewness(x)
    hall = math.sqrt(n) * (u + g * u * u / 3.0 + g * g * u ** 3 / 27.0 + g / (6.0 * n))
    return min(math.sqrt(n) * u, hall)


def expanded_alpha(alpha: float, n: int) -> float:
    """The one-sided level a bootstrap interval of ``n`` values is computed at so that it is as wide as the
    Student-t interval at ``alpha`` for normal data: ``Phi(sqrt(n / (n - 1)) t_{alpha, n-1})`` (Hesterberg's
    "expanded" bootstrap intervals, Hesterberg 2015, The American Statistician 69(4)).  A bootstrap interval
    is too narrow at small n by the factors ``sqrt((n - 1) / n)`` (the plug-in variance) and ``z / t``."""
    return float(special.ndtr(math.sqrt(n / (n - 1)) * special.stdtrit(n - 1, alpha)))


def bootstrap_mean(
    values: np.ndarray,
    *,
    alpha: float = 0.05,
    resamples: int = 4000,
    method: str = "BCa",
    seed: int = 0,
) -> Bound:
    """Mean of ``values`` (NaNs dropped) with its interval at level 1 − 2·alpha: each end the further out of
    the expanded bootstrap interval (``method``, at :func:`expanded_alpha`) and the skewness-guarded Student-t
    interval (:func:`mean_lower`, :func:`mean_upper`).

    Why not scipy's BCa alone: at a true mean on the threshold, the one-sided BCa bound of a few dozen normal
    values passes more often than alpha (a bootstrap interval is too narrow at small n by the factors
    ``sqrt((n - 1) / n)`` and ``z / t``); expanding its level fixes normal tails but not heavy ones, where
    the t interval holds; long lower tails defeat the t interval, where BCa's and Hall's skewness
    corrections help.  A bound that takes the further-out end passes only when every one would, so its
    wrong-pass rate is at most the smallest of theirs.  The shipped rule's wrong-pass rates, per criterion,
    shape and n, are benchmarks/results/error_rates.json (the calibration table of docs/ci-and-release.md).
    One value gives no interval (NaN: no verdict can be decided on it); values without
    spread give their mean (nothing to resample)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    level = 1.0 - 2.0 * alpha
    if n == 0:
        return Bound(math.nan, math.nan, math.nan, 0, level, method)
    mean = float(x.mean())
    if n == 1:
        return Bound(mean, math.nan, math.nan, 1, level, "degenerate")
    if np.ptp(x) == 0.0:
        # No spread: every resample has the same mean; scipy's BCa would divide by zero.
        return Bound(mean, mean, mean, n, level, "degenerate")
    expanded = 1.0 - 2.0 * expanded_alpha(alpha, n)

    def interval(how: str) -> tuple[float, float]:
        with warnings.catch_warnings():
            # BCa on near-degenerate data warns and returns NaN; that is detected and handled below.
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", getattr(_st, "DegenerateDataWarning", RuntimeWarning))
            res = _st.bootstrap((x,), np.mean, n_resamples=resamples, confidence_level=expanded, method=how,
                                rng=np.random.default_rng(seed), vectorized=True)
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    used = method
    lo, hi = interval(method)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        used = "percentile"
        lo, hi = interval(used)
    crit = -float(special.stdtrit(n - 1, alpha))
    return Bound(mean, min(lo, mean_lower(x, crit)), max(hi, mean_upper(x, crit)), n, level,
                 f"{used} (expanded), t and Hall's skewness-corrected t")


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
