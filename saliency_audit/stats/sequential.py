"""Sequential verdicts (``--sequential``): audit images a batch at a time, stop a pair once it is decided.

Looking at a fixed-level bootstrap bound after every batch of images and stopping at the first pass
inflates the rate of wrong passes (tests/test_sequential.py measures it).  Two rules with a published
guarantee under optional stopping are offered (``sequential_rule``):

``"obf"`` (the default): a group-sequential test with Lan–DeMets O'Brien–Fleming alpha spending
(:mod:`saliency_audit.stats.groupseq`), the design clinical-trial statisticians and regulators know.  At each
look the per-image mean's one-sided bound uses the look's boundary instead of the fixed-n critical value,
on the Student-t scale with the look's nominal level, the lower of the t bound and Hall's
skewness-corrected one (:func:`saliency_audit.stats.mean_lower`: a long lower tail makes the t bound alone
pass too often; the rule's wrong-pass rates are benchmarks/results/error_rates.json); early looks demand an overwhelming effect, the last
one about the fixed-n bound.  A pair passes when every bound of its verdict clears its threshold, and
stops as a fail when some opposite bound falls short of its threshold (the same boundaries, mirrored).

Futility (``sequential_futility``, obf only): a pair whose verdict cannot plausibly become a pass stops
early as a fail.  At a look at information fraction ``t`` with standardised statistic ``z`` (mean minus
threshold, over its standard error), the conditional power under the current trend -- the chance that the
last look clears its boundary ``c_K`` if the effect stays as estimated -- is ``1 - Phi((c_K - z / sqrt(t)) /
sqrt(1 - t))`` (stochastic curtailment: Lan, Simon & Halperin 1982; Jennison & Turnbull 2000, ch. 10);
when it is below ``sequential_futility`` for some condition of the verdict, the pair stops.  It is looked
at from half the planned images on (``_FUTILITY_FROM``): the current trend at 8 of 48 images is too noisy,
and stopping there cost 14 points of power in the simulation, against 1-3 points from half on.  The rule is
non-binding: it only ever turns a later pass into an earlier fail, so the rate of wrong passes stays
what the efficacy boundaries give; what it costs is power (tests/test_sequential.py measures both).

``"betting"``: a confidence sequence for bounded means, distribution-free (no normal approximation) and
wider:

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

from ..common.errors import DegenerateBound
from . import clears

RULES = {
    "obf": ("group-sequential test, Lan-DeMets O'Brien-Fleming alpha spending over the planned looks, one-sided, "
            "Student-t bounds at each look's nominal level, guarded by Hall's skewness-corrected t (Jennison & Turnbull "
            "2000; Hall 1992)"),
    "betting": ("betting confidence sequence for a bounded mean (Waudby-Smith & Ramdas 2023, predictable plug-in "
                "bets capped at 1/2), one-sided, anytime-valid"),
}
_GRID = np.linspace(0.0, 1.0, 2001)
_FUTILITY_FROM = 0.5  # information fraction from which futility is looked at (see the module docstring)
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


def betting_p(x, threshold: float, alpha: float, lo: float = -1.0, hi: float = 1.0) -> float:
    """``1 / max_t K_t(threshold)``: the capital of :func:`lower_bounds`' bets (tuned for ``alpha``) against the
    threshold, at its highest so far.  Under a mean at most the threshold the capital is a nonnegative
    supermartingale, so by Ville's inequality the chance it ever reaches ``1 / p`` is at most ``p``: a valid
    p-value under optional stopping."""
    x = np.asarray(x, dtype=np.float64)
    u = np.clip((x[np.isfinite(x)] - lo) / (hi - lo), 0.0, 1.0)
    if not len(u):
        return 1.0
    m = min(max((threshold - lo) / (hi - lo), 0.0), 1.0)
    log_k = np.cumsum(np.log1p(_bets(u, alpha) * (u - m)))
    return float(min(1.0, math.exp(-max(0.0, float(log_k.max())))))


def upper_bounds(x, alpha: float, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Anytime-valid one-sided (1 - alpha) upper bounds of the mean after each value; nonincreasing."""
    x = np.asarray(x, dtype=np.float64)
    return (lo + hi) - lower_bounds((lo + hi) - x, alpha, lo, hi)


@dataclass
class Check:
    """One condition of a verdict at one look: the mean of the per-image ``values`` must reach ``threshold``
    (``strict``: exceed it).  ``lo``, ``hi``: the values' range (the betting rule needs one)."""

    name: str
    values: np.ndarray
    threshold: float
    strict: bool = True
    lo: float = -1.0
    hi: float = 1.0


def _obf_bounds(x: np.ndarray, fractions: tuple[float, ...], alpha: float) -> tuple[float, float, float]:
    """(lower, upper, critical value) of the mean of ``x`` (at least 2 values) at the last of looks at
    ``fractions``: finite for any planned n (the critical value comes from the look's nominal level kept as
    a logarithm, :func:`saliency_audit.stats.groupseq.t_critical_log`)."""
    from .groupseq import log_nominal_levels, t_critical_log

    from . import mean_lower, mean_upper

    crit = t_critical_log(log_nominal_levels(fractions, alpha)[-1], len(x))
    if np.ptp(x) == 0.0:
        m = float(x[0])
        return m, m, crit
    return mean_lower(x, crit), mean_upper(x, crit), crit


def conditional_power(x: np.ndarray, threshold: float, t: float, final_boundary: float) -> float:
    """The chance that the last look's statistic clears ``final_boundary`` (z scale) if the mean of ``x``
    stays at its estimate: ``1 - Phi((c_K - z_t / sqrt(t)) / sqrt(1 - t))`` at information fraction ``t``."""
    from scipy import special

    n = len(x)
    if n < 2 or t >= 1:
        return 1.0
    diff = float(np.mean(x)) - threshold
    sd = float(np.std(x, ddof=1))
    if sd == 0.0:
        return 1.0 if diff > 0 else 0.0
    z = diff / (sd / math.sqrt(n))
    return float(special.ndtr(-(final_boundary - z / math.sqrt(t)) / math.sqrt(1.0 - t)))


@dataclass
class Looks:
    """The sequential record of one (criterion, method): the bounds at each look, and why it stopped."""

    alpha: float
    batch: int
    n_max: int
    rule: str = "obf"
    futility: float = 0.0  # stop as a fail when the conditional power falls below this (obf only; 0: never)
    looks: list[dict] = field(default_factory=list)
    stopped: str = ""  # "pass" (every lower bound cleared), "fail" (an upper bound fell short), "futility"
    # (the conditional power of a pass fell below ``futility``), "" (ran on)
    _fractions: list[float] = field(default_factory=list)
    _last: tuple = ((), True)  # the last look's (finite values, threshold, lo, hi) per check, its other condition

    def _final_boundary(self) -> float:
        """The planned last look's boundary (z scale), for the conditional power."""
        from .groupseq import boundaries

        planned = tuple(k / self.n_max for k in sizes(self.n_max, self.batch))
        return boundaries(planned, self.alpha)[-1]

    def look(self, checks: list[Check], extra_pass: bool = True, final: bool = False) -> bool:
        """Record a look at ``checks`` (each with all its values so far); True when the pair is decided.
        ``extra_pass``: the criterion's other condition for a pass (e.g. utility's minimum AP).  ``final``:
        the last planned look, which spends what is left of alpha."""
        finite = [np.asarray(c.values, dtype=np.float64) for c in checks]
        finite = [x[np.isfinite(x)] for x in finite]
        n = min(len(x) for x in finite)
        record: dict = {"n": n, "checks": []}
        self._fractions.append(1.0 if final else min(n / self.n_max, 1.0))
        fractions = self._monotone()
        passes, fails = extra_pass, False
        for c, x in zip(checks, finite):
            entry = {"name": c.name, "threshold": c.threshold}
            if len(x) < 2:  # no spread to bound yet: this look decides nothing; the last one must have it
                if final:
                    raise DegenerateBound(f"{c.name}: {len(x)} image(s) with a finite value at the last look of "
                                          f"{self.n_max}; no bound can be computed, so no verdict")
                entry.update(lower=None, upper=None, mean=float(np.mean(x)) if len(x) else None)
                record["checks"].append(entry)
                passes = False
                continue
            if self.rule == "obf":
                lower, upper, crit = _obf_bounds(x, fractions, self.alpha)
                entry["critical_t"] = crit
            else:
                lower = float(lower_bounds(x, self.alpha, c.lo, c.hi)[-1])
                upper = float(upper_bounds(x, self.alpha, c.lo, c.hi)[-1])
            entry.update(lower=lower, upper=upper, mean=float(np.mean(x)))
            record["checks"].append(entry)
            passes = clears(lower, c.threshold, strict=c.strict, what=f"{c.name}'s lower bound") and passes
            fails = fails or not clears(upper, c.threshold, strict=c.strict, what=f"{c.name}'s upper bound")
        futile = False
        if self.rule == "obf" and self.futility > 0 and not final and not passes and not fails:
            t = fractions[-1]
            if _FUTILITY_FROM <= t < 1:
                c_k = self._final_boundary()
                for c, x, entry in zip(checks, finite, record["checks"]):
                    if entry["lower"] is None:
                        continue
                    entry["conditional_power"] = conditional_power(x, c.threshold, t, c_k)
                    futile = futile or entry["conditional_power"] < self.futility
        self._last = (tuple((x, c.threshold, c.lo, c.hi) for c, x in zip(checks, finite)), bool(extra_pass))
        first = record["checks"][0]
        record["lower"], record["upper"] = first["lower"], first["upper"]  # the first check's, for the table
        self.looks.append(record)
        if passes:
            self.stopped = "pass"
        elif fails:
            self.stopped = "fail"
        elif futile:
            self.stopped = "futility"
        return bool(self.stopped)

    def p_value(self) -> float:
        """The verdict's p-value: the smallest level at which this record's test would have passed by its
        stopping look.  ``obf``: the stage-wise ordering p-value (:func:`saliency_audit.stats.groupseq.stagewise_p`)
        of each check's look statistic, on the z scale of the look's nominal level (as its bound is); ``betting``:
        ``1 / (the largest capital reached against the threshold)`` (Ville's inequality makes it anytime-valid).
        A verdict with several checks passes when all do (an intersection-union test), so its p is their
        largest; a verdict whose other, non-statistical condition is unmet (e.g. utility's minimum AP) has 1."""
        checks, extra = self._last
        if not checks or not extra:
            return 1.0
        return max(self._check_p(*check) for check in checks)

    def _check_p(self, x: np.ndarray, threshold: float, lo: float, hi: float) -> float:
        from scipy import special

        if len(x) < 2:
            return 1.0
        if self.rule == "betting":
            return betting_p(x, threshold, self.alpha, lo, hi)
        from .groupseq import stagewise_p

        from . import mean_statistic

        diff = float(np.mean(x)) - threshold
        if np.ptp(x) == 0.0:
            z = math.inf if diff > 0 else -math.inf
        else:
            t_obs = mean_statistic(x, threshold)
            # the look's t statistic as a z of the same one-sided nominal level (as the look's bound uses)
            z = float(-special.ndtri(special.stdtr(len(x) - 1, -t_obs)))
        return stagewise_p(self._monotone(), self.alpha, z)

    def _monotone(self) -> tuple[float, ...]:
        """The looks' information fractions, each a little above the one before (a look that added no
        value repeats a fraction; it then spends next to nothing)."""
        out: list[float] = []
        for f in self._fractions:
            out.append(max(f, out[-1] + 1e-6) if out else max(f, 1e-6))
        return tuple(out)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "rule_text": RULES[self.rule], "alpha": self.alpha, "batch": self.batch,
                "futility": self.futility if self.rule == "obf" else 0.0,
                "n_max": self.n_max, "n_used": self.looks[-1]["n"] if self.looks else 0,
                "stopped": self.stopped or "n_images", "looks": self.looks}


def sizes(n: int, batch: int) -> list[int]:
    """The look sizes: batch, 2 batch, ..., n."""
    return sorted({min(k, n) for k in range(batch, n + batch, batch)})


def run_looks(config, alpha: float, n_max: int, look) -> tuple[int, "Looks"]:
    """Look at the first k images for k in :func:`sizes` until decided: ``look(k)`` returns (checks, extra
    pass condition).  Returns (images used, the record)."""
    looks = Looks(alpha, config.sequential_batch, n_max, config.sequential_rule, config.sequential_futility)
    ks = sizes(n_max, config.sequential_batch)
    for k in ks:
        checks, extra = look(k)
        if looks.look(checks, extra, final=k == ks[-1]):
            break
    return k, looks


def decide(values, n_max: int, alpha: float, batch: int = 8, rule: str = "obf", futility: float = 0.0) -> Looks:
    """The rule on one sequence of per-image values against threshold 0: a look after every ``batch`` of the
    first ``n_max``, stopping at the first decision (the simulations' audit)."""
    x = np.asarray(values, dtype=np.float64)
    ks = sizes(n_max, batch)
    looks = Looks(alpha, batch, n_max, rule, futility)
    for k in ks:
        if looks.look([Check("mean", x[:k], 0.0)], final=k == ks[-1]):
            break
    return looks


def apply(result, looks: Looks):
    """``result`` (a fixed-n CriterionResult of the images used) decided by ``looks`` instead: its bound and
    interval become the sequential rule's (the check its statistic reports), its verdict the rule's; the
    looks go in details."""
    last = looks.looks[-1]
    entry = next((c for c in last["checks"] if c["name"] == result.statistic), last["checks"][0])
    result.bound, result.ci = entry["lower"], [entry["lower"], entry["upper"]]
    result.verdict = "pass" if looks.stopped == "pass" else "fail"
    result.__dict__.pop("_p_checks", None)  # the fixed-n p-value would not be this rule's
    result.p_value = looks.p_value()
    record = looks.to_dict()
    result.details["sequential"] = record
    how = {"pass": "every lower bound cleared its threshold",
           "fail": "an upper bound fell short of its threshold",
           "futility": (f"the conditional power of a pass under the current trend fell below {looks.futility:g} "
                        "(futility)")}.get(looks.stopped)
    def num(v):
        return "n/a" if v is None else f"{v:+.3f}"

    bounds = "; ".join(f"{c['name']} [{num(c['lower'])}, {num(c['upper'])}] vs {c['threshold']:+g}"
                       for c in last["checks"])
    result.explanation += (f"; sequential ({looks.rule}, alpha {looks.alpha:g}): "
                           + (f"stopped at {record['n_used']} of {looks.n_max} images, {how}"
                              if how else f"all {record['n_used']} images used")
                           + f", {bounds} -> {result.verdict}")
    return result
