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

Large planned audits.  With looks every 8 images of 2,000 the first look sits at t = 0.004, where the
spending function is about 1e-211 and the boundary near 31: written as ``2 - 2 Phi(.)`` it rounds to 0,
its boundary and nominal level become infinite and 0, and a Student-t critical value of level 0 is not a
number (scipy's ``stdtrit(7, 0)`` is +inf, which turned every early bound into +inf and every verdict into
a pass).  Here every amount of alpha is kept as its logarithm (``log_ndtr``, ``ndtri_exp``), so a look's
boundary is finite for any planned n.  A look whose share of alpha is below 1e-250 (planned audits beyond
about 2,500 images at 8 per look) gets the boundary of its share alone, ``P(Z_k >= c_k) = share``: the
chance of crossing there without having crossed before is smaller than that, so the look spends at most its
share (conservative, and by less than 1e-250); the recursive integration starts at the first look whose
share is representable, from the partial sum's normal density (what the earlier looks cut off is below
1e-250).  The Student-t critical value of a nominal level too small for a double is replaced by the
closed-form bound ``P(T > t) <= K t^-nu`` (the t density is below ``K' (t^2 / nu)^-(nu+1)/2``), which is
larger than the exact value: a bound there is lower than it needs to be, never higher.

The probabilities are computed by recursive numerical integration of the partial sums' density over the
continuation region (Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19).  Written here
because none of our dependencies offers group-sequential boundaries (R's ``gsDesign`` and ``ldbounds`` are
the references); the tests check the classic published values (K = 5 equal looks, one-sided 0.025:
4.877, 3.357, 2.680, 2.290, 2.031).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special, stats

_GRID = 1001  # points of the density grid per look
_LOW = -9.0  # the grid's lower end, in standard deviations of the partial sum
_TOP = 40.0  # the grid's upper end at most, in standard deviations (the density there is below 1e-300)
_TINY = -575.0  # log(1e-250): a share of alpha below this gets the boundary of its share alone (see above)
_CACHE: OrderedDict = OrderedDict()  # (alpha, fractions so far) -> _State
_CACHE_SIZE = 2048


def log_spent(t: float, alpha: float) -> float:
    """The logarithm of the O'Brien–Fleming-type alpha spent by information fraction ``t`` (-inf at 0)."""
    if t <= 0:
        return -np.inf
    return float(np.log(2.0) + special.log_ndtr(-stats.norm.isf(alpha / 2.0) / np.sqrt(min(t, 1.0))))


def spent(t: float, alpha: float) -> float:
    """The O'Brien–Fleming-type alpha spent by information fraction ``t``: ``2 Phi(-z_{alpha/2} / sqrt(t))``
    (written with the upper tail, which does not round to 0 as ``2 - 2 Phi(.)`` does at small t)."""
    return float(np.exp(log_spent(t, alpha)))


def _log_share(t: tuple, k: int, alpha: float) -> float:
    """log(alpha(t_k) - alpha(t_{k-1})): the share of alpha look k may spend."""
    a = log_spent(t[k], alpha)
    if k == 0:
        return a
    b = log_spent(t[k - 1], alpha)
    if not b < a:
        raise ValueError(f"information fractions {t[k - 1]!r} and {t[k]!r} are too close to spend any alpha between them")
    return float(a + np.log(-np.expm1(b - a)))


@dataclass(frozen=True)
class _State:
    """The design after its first looks: their boundaries, per look what came before it (grid,
    trapezoid-weighted density of the partial sum on the continuation region, increment sd; None where the
    look's boundary is its share's alone), and the continuation density after the last look (None before
    the integration starts)."""

    c: tuple = ()
    before: tuple = ()
    grid: np.ndarray | None = None
    dens: np.ndarray | None = None


def _extend(state: _State, t: tuple, alpha: float) -> _State:
    """``state`` (the design of looks t[:k]) with look k = len(state.c) added."""
    k = len(state.c)
    tk = float(t[k])
    log_share = _log_share(t, k, alpha)
    if k == 0 or log_share < _TINY:
        c = float(-special.ndtri_exp(log_share))
        if log_share < _TINY:
            return _State(state.c + (c,), state.before + (None,))
        grid = np.linspace(_LOW * np.sqrt(tk), min(c, _TOP) * np.sqrt(tk), _GRID)
        return _State((c,), (None,), grid, stats.norm.pdf(grid, scale=np.sqrt(tk)))
    grid, dens = state.grid, state.dens
    if dens is None:  # the first look whose share is representable: start from the normal density
        tp, cp = float(t[k - 1]), state.c[-1]
        grid = np.linspace(_LOW * np.sqrt(tp), min(cp, _TOP) * np.sqrt(tp), _GRID)
        dens = stats.norm.pdf(grid, scale=np.sqrt(tp))
    step = np.sqrt(tk - t[k - 1])
    w = np.full(len(grid), grid[1] - grid[0])
    w[[0, -1]] /= 2.0  # trapezoid weights
    here = (grid, w * dens, step)
    target = float(np.exp(log_share))
    c = float(optimize.brentq(lambda c: _exit(here, tk, c) - target, -10.0, _TOP, xtol=1e-10))
    new = np.linspace(_LOW * np.sqrt(tk), c * np.sqrt(tk), _GRID)
    # density of S_k below the boundary: the previous density convolved with the increment's
    dens = np.sum((w * dens)[None, :] * stats.norm.pdf((new[:, None] - grid[None, :]) / step) / step, axis=1)
    return _State(state.c + (c,), state.before + (here,), new, dens)


def _design(fractions: tuple[float, ...], alpha: float) -> _State:
    """The design of looks at ``fractions``, built look by look from the longest prefix already built (a
    sequential audit asks for its looks one more at a time)."""
    t = tuple(float(x) for x in fractions)
    if not t:
        return _State()
    if any(b <= a for a, b in zip(t, t[1:])) or t[0] <= 0:
        raise ValueError(f"information fractions must increase from above 0: {fractions}")
    if t[-1] > 1:
        raise ValueError(f"information fractions must be at most 1: {fractions}")
    k = len(t)
    while k and (alpha, t[:k]) not in _CACHE:
        k -= 1
    state = _CACHE[(alpha, t[:k])] if k else _State()
    if k:
        _CACHE.move_to_end((alpha, t[:k]))
    for j in range(k, len(t)):
        state = _extend(state, t, alpha)
        _CACHE[(alpha, t[: j + 1])] = state
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return state


def _exit(before, tk: float, c: float) -> float:
    """P(no boundary crossed before look k, Z_k >= c) from the continuation density before look k."""
    grid, wdens, step = before
    return float(np.sum(wdens * stats.norm.sf((c * np.sqrt(tk) - grid) / step)))


def boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """The one-sided boundaries c_1..c_K (z scale) for looks at ``fractions`` (increasing, at most 1; a look
    at 1 spends what is left of alpha).  Every boundary is finite."""
    return _design(tuple(fractions), alpha).c


def stagewise_p(fractions: tuple[float, ...], alpha: float, z: float) -> float:
    """The stage-wise ordering p-value of a test that stopped at the last of looks at ``fractions`` with
    statistic ``z`` (Jennison & Turnbull 2000, section 8.4): the chance under the null of crossing at an
    earlier look, plus of reaching this look without crossing and seeing at least ``z``.  It is at most the
    alpha spent by this look exactly when ``z`` reaches this look's boundary, so the test passes at ``alpha``
    when p <= alpha at its stopping look; with the early looks' stops for a fail ignored (non-binding) it is a
    valid p-value.  At a look whose boundary is its share's alone the second term is ``P(Z_k >= z)``, which
    is larger (conservative)."""
    fr = tuple(fractions)
    if not fr:
        return 1.0
    before = _design(fr, alpha).before
    k = len(fr) - 1
    earlier = spent(fr[k - 1], alpha) if k else 0.0
    if not np.isfinite(z):
        return earlier if z > 0 else 1.0
    here = float(stats.norm.sf(z)) if before[k] is None else _exit(before[k], fr[k], z)
    return float(min(1.0, earlier + here))


def log_nominal_levels(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """The logarithm of each look's one-sided nominal significance level, log(1 - Phi(c_k)): finite where
    the level itself underflows."""
    return tuple(float(special.log_ndtr(-c)) for c in boundaries(tuple(fractions), alpha))


def nominal_levels(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """The one-sided nominal significance level of each look's boundary: 1 - Phi(c_k) (0 where it underflows:
    use :func:`log_nominal_levels`)."""
    return tuple(float(np.exp(x)) for x in log_nominal_levels(fractions, alpha))


@lru_cache(maxsize=4096)
def t_critical_log(log_level: float, n: int) -> float:
    """The Student-t critical value with n - 1 degrees of freedom at one-sided level ``exp(log_level)``: with
    an estimated variance each look keeps the boundary's nominal significance level (the "significance level
    approach" of Jennison & Turnbull 2000, section 3.8), which holds the error rate better than z at small n.
    Always finite: a level too small for a double gets the closed-form tail bound (module docstring)."""
    nu = max(n - 1, 1)
    if not (np.isfinite(log_level) and log_level < 0):
        raise ValueError(f"a one-sided level must lie in (0, 1), got exp({log_level!r})")
    if log_level > -700.0:
        return float(-special.stdtrit(nu, float(np.exp(log_level))))
    # P(T > t) <= K nu^((nu+1)/2) t^-nu / nu with K the density's constant: solve for t (an upper bound of the
    # exact critical value, so the bound it gives is conservative); never below the normal's critical value
    log_k = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
    log_t = (log_k + 0.5 * (nu + 1) * np.log(nu) - np.log(nu) - log_level) / nu
    return float(max(np.exp(log_t), -special.ndtri_exp(log_level)))


def t_critical(level: float, n: int) -> float:
    """:func:`t_critical_log` of a level given as itself (in (0, 1); 0 is refused, not +inf)."""
    if not 0 < level < 1:
        raise ValueError(f"a one-sided level must lie in (0, 1), got {level!r}")
    return t_critical_log(float(np.log(level)), n)
