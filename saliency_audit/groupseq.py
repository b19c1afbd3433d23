"""Group-sequential boundaries with Lan–DeMets O'Brien–Fleming alpha spending (one-sided).

A group-sequential test looks at the data K times, at information fractions t_1 < ... < t_K = 1 (here:
images used / images planned), and rejects at look k when the standardised statistic Z_k reaches c_k.
The boundaries spend the type-I error a little at a time: with the O'Brien–Fleming-type spending function
of Lan & DeMets (1983)

    alpha(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)),

c_k solves P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = alpha(t_k) - alpha(t_{k-1}) under the null,
where (Z_1..Z_K) are the partial-sum statistics of independent observations (Corr(Z_j, Z_k) =
sqrt(t_j / t_k)).  Early looks get very high boundaries (about 4.9 at t = 0.2), so stopping early takes an
overwhelming effect, and the last look's boundary stays close to the fixed-n critical value.  Because the
spending function fixes how much error each look may use, looks may fall at any fractions (images that
give no value shift them) and the error stays at alpha.

The probabilities are computed by recursive numerical integration of the partial sums' density over the
continuation region (Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19).  Written here
because none of our dependencies offers group-sequential boundaries (R's ``gsDesign`` and ``ldbounds`` are
the references); the tests check the classic published values (K = 5 equal looks, one-sided 0.025:
4.877, 3.357, 2.680, 2.290, 2.031).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import optimize, special, stats

_GRID = 1001  # points of the density grid per look
_LOW = -9.0  # the grid's lower end, in standard deviations of the partial sum


def spent(t: float, alpha: float) -> float:
    """The O'Brien–Fleming-type alpha spent by information fraction ``t``."""
    if t <= 0:
        return 0.0
    return float(2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1.0 - alpha / 2.0) / np.sqrt(min(t, 1.0))))


@lru_cache(maxsize=256)
def _design(fractions: tuple[float, ...], alpha: float) -> tuple[tuple[float, ...], tuple]:
    """(boundaries c_1..c_K, per look k the continuation density before it: (grid, trapezoid-weighted density,
    increment sd), None at the first look)."""
    t = np.asarray(fractions, dtype=np.float64)
    if len(t) == 0:
        return (), ()
    if np.any(np.diff(t) <= 0) or t[0] <= 0:
        raise ValueError(f"information fractions must increase from above 0: {fractions}")
    if t[-1] > 1:
        raise ValueError(f"information fractions must be at most 1: {fractions}")
    cum = [spent(x, alpha) for x in t]
    out: list[float] = []
    before: list = []
    # the density of the partial sum S_k = Z_k sqrt(t_k) on the continuation region, on a grid
    grid = dens = None
    for k, tk in enumerate(t):
        target = cum[k] - (cum[k - 1] if k else 0.0)
        if k == 0:
            c = float(stats.norm.isf(target))
            out.append(c)
            before.append(None)
            hi = c * np.sqrt(tk)
            grid = np.linspace(_LOW * np.sqrt(tk), hi, _GRID)
            dens = stats.norm.pdf(grid, scale=np.sqrt(tk))
            continue
        step = np.sqrt(tk - t[k - 1])
        w = np.full(len(grid), grid[1] - grid[0])
        w[[0, -1]] /= 2.0  # trapezoid weights
        before.append((grid, w * dens, step))

        if target <= 0:
            c = np.inf
        else:
            c = float(optimize.brentq(lambda c: _exit(before[k], tk, c) - target, -10.0, 40.0, xtol=1e-10))
        out.append(c)
        hi = (c if np.isfinite(c) else 40.0) * np.sqrt(tk)
        new = np.linspace(_LOW * np.sqrt(tk), hi, _GRID)
        # density of S_k below the boundary: the previous density convolved with the increment's
        dens = np.sum((w * dens)[None, :] * stats.norm.pdf((new[:, None] - grid[None, :]) / step) / step, axis=1)
        grid = new
    return tuple(out), tuple(before)


def _exit(before, tk: float, c: float) -> float:
    """P(no boundary crossed before look k, Z_k >= c) from the continuation density before look k."""
    grid, wdens, step = before
    return float(np.sum(wdens * stats.norm.sf((c * np.sqrt(tk) - grid) / step)))


def boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """The one-sided boundaries c_1..c_K (z scale) for looks at ``fractions`` (increasing, at most 1; a look
    at 1 spends what is left of alpha)."""
    return _design(tuple(fractions), alpha)[0]


def stagewise_p(fractions: tuple[float, ...], alpha: float, z: float) -> float:
    """The stage-wise ordering p-value of a test that stopped at the last of looks at ``fractions`` with
    statistic ``z`` (Jennison & Turnbull 2000, section 8.4): the chance under the null of crossing at an
    earlier look, plus of reaching this look without crossing and seeing at least ``z``.  It is at most the
    alpha spent by this look exactly when ``z`` reaches this look's boundary, so the test passes at ``alpha``
    when p <= alpha at its stopping look; with the early looks' stops for a fail ignored (non-binding) it is a
    valid p-value."""
    fr = tuple(fractions)
    if not fr:
        return 1.0
    _, before = _design(fr, alpha)
    k = len(fr) - 1
    earlier = spent(fr[k - 1], alpha) if k else 0.0
    if not np.isfinite(z):
        return earlier if z > 0 else 1.0
    here = float(stats.norm.sf(z)) if k == 0 else _exit(before[k], fr[k], z)
    return float(min(1.0, earlier + here))


@lru_cache(maxsize=256)
def nominal_levels(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """The one-sided nominal significance level of each look's boundary: 1 - Phi(c_k)."""
    return tuple(float(special.ndtr(-c)) for c in boundaries(tuple(fractions), alpha))


@lru_cache(maxsize=4096)
def t_critical(level: float, n: int) -> float:
    """The Student-t critical value with n - 1 degrees of freedom at one-sided ``level``: with an estimated
    variance each look keeps the boundary's nominal significance level (the "significance level approach"
    of Jennison & Turnbull 2000, section 3.8), which holds the error rate better than z at small n."""
    return float(-special.stdtrit(max(n - 1, 1), level))
