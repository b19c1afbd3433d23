"""Anytime-valid bounds for sequential verdicts (``--sequential``): stop auditing a pair once it is decided.

Looking at a fixed-level bootstrap bound after every batch of images and stopping at the first pass
inflates the rate of wrong passes (tests/test_sequential.py measures it).  Here the bound is a confidence
sequence for the mean of bounded per-image statistics, valid simultaneously at every look, so stopping
whenever it clears the threshold keeps the error rate at alpha (Ville's inequality):

Waudby-Smith & Ramdas (2023), "Estimating means of bounded random variables by betting", JRSS-B: for a
candidate mean ``m`` of values rescaled to [0, 1], the capital ``K_t(m) = prod_i (1 + lambda_i (x_i - m))``
of bets ``lambda_i`` chosen before seeing ``x_i`` (their predictable plug-in rule, capped at 1/2) is a
nonnegative martingale when the true mean is ``m``; every ``m`` whose capital reaches ``1 / alpha`` is
rejected, and the one-sided lower bound at look ``t`` is the smallest ``m`` not rejected so far.  Bets
are positive, so each factor is decreasing in ``m`` and the rejected set is an interval: the bound is found
on a grid and moved down one grid step, which keeps it conservative.  The upper bound is the lower bound
of the mirrored values.  Each bound is one-sided at level alpha, as the fixed-n verdicts are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

RULE = ("betting confidence sequence for a bounded mean (Waudby-Smith & Ramdas 2023, predictable plug-in "
        "bets capped at 1/2), one-sided, anytime-valid")
_GRID = np.linspace(0.0, 1.0, 2001)
_CAP = 0.5


def _bets(x: np.ndarray, alpha: float) -> np.ndarray:
    """The predictable plug-in bets lambda_1..lambda_n (each from the values before it)."""
    n = len(x)
    t = np.arange(1, n + 1)
    sq = np.concatenate(([0.0], np.cumsum((x - (0.5 + np.cumsum(x)) / (t + 1)) ** 2)[:-1]))
    var = (0.25 + sq) / t  # variance estimate before x_t (its plug-in means include each value)
    lam = np.sqrt(2 * math.log(1 / alpha) / (var * t * np.log1p(t)))
    return np.minimum(lam, _CAP)


def lower_bounds(x, alpha: float, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Anytime-valid one-sided (1 - alpha) lower bounds of the mean of ``x`` (values in [lo, hi]) after each
    value; nondecreasing.  NaN values (an image without a score) are skipped."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.isfinite(x)
    u = np.clip((x[keep] - lo) / (hi - lo), 0.0, 1.0)
    out = np.full(len(x), lo, dtype=np.float64)
    if not len(u):
        return out
    lam = _bets(u, alpha)
    # log capital for every candidate mean on the grid, after each value
    log_k = np.cumsum(np.log1p(lam[:, None] * (u[:, None] - _GRID[None, :])), axis=0)
    rejected = log_k >= math.log(1 / alpha)
    rejected = np.maximum.accumulate(rejected, axis=0)  # once rejected, always (the running intersection)
    first_kept = np.argmin(rejected, axis=1)  # the rejected set is [0, m): its first False
    all_rejected = rejected.all(axis=1)
    bound = np.where(all_rejected, 1.0, _GRID[np.maximum(first_kept - 1, 0)])
    bound = np.maximum.accumulate(bound) * (hi - lo) + lo
    out[np.flatnonzero(keep)] = bound
    return np.maximum.accumulate(out)


def upper_bounds(x, alpha: float, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Anytime-valid one-sided (1 - alpha) upper bounds of the mean after each value; nonincreasing."""
    x = np.asarray(x, dtype=np.float64)
    return (lo + hi) - lower_bounds((lo + hi) - x, alpha, lo, hi)


@dataclass
class Looks:
    """The sequential record of one (criterion, method): the bounds at each look, and why it stopped."""

    alpha: float
    threshold: float
    batch: int
    looks: list[dict] = field(default_factory=list)
    stopped: str = ""  # "pass" (lower bound cleared), "fail" (upper bound below), "n_images" (ran out)

    def look(self, values, extra_pass: bool = True) -> bool:
        """Record a look at ``values`` (all so far); True when the pair is decided.  ``extra_pass``: the
        criterion's other condition for a pass (e.g. utility's minimum AP), checked at the same look."""
        lower = float(lower_bounds(values, self.alpha)[-1])
        upper = float(upper_bounds(values, self.alpha)[-1])
        self.looks.append({"n": int(np.isfinite(np.asarray(values, dtype=float)).sum()), "lower": lower,
                           "upper": upper})
        if lower > self.threshold and extra_pass:
            self.stopped = "pass"
        elif upper < self.threshold:
            self.stopped = "fail"
        return bool(self.stopped)

    def to_dict(self, n_max: int) -> dict:
        return {"rule": RULE, "alpha": self.alpha, "threshold": self.threshold, "batch": self.batch,
                "n_max": n_max, "n_used": self.looks[-1]["n"] if self.looks else 0,
                "stopped": self.stopped or "n_images", "looks": self.looks}


def sizes(n: int, batch: int) -> list[int]:
    """The look sizes: batch, 2 batch, ..., n."""
    return sorted({min(k, n) for k in range(batch, n + batch, batch)})


def apply(result, looks: Looks, n_max: int):
    """``result`` (a fixed-n CriterionResult of the images used) decided by ``looks`` instead: its bound and
    interval become the confidence sequence's, its verdict the sequential rule's; the looks go in details."""
    last = looks.looks[-1]
    result.bound, result.ci = last["lower"], [last["lower"], last["upper"]]
    result.verdict = "pass" if looks.stopped == "pass" else "fail"
    record = looks.to_dict(n_max)
    result.details["sequential"] = record
    how = {"pass": "its lower bound cleared", "fail": "its upper bound fell below"}.get(looks.stopped)
    result.explanation += (f"; sequential (anytime-valid, alpha {looks.alpha:g}): "
                           + (f"stopped at {record['n_used']} of {n_max} images, {how} {looks.threshold:+g}"
                              if how else f"all {record['n_used']} images used")
                           + f", bounds [{last['lower']:+.3f}, {last['upper']:+.3f}] -> {result.verdict}")
    return result
