"""Sample sizes for an audit: how many images a verdict needs to pass with a given probability.

A verdict passes when a one-sided (1 - alpha) lower bound of the mean per-image statistic clears the
criterion's threshold (fixed n: :func:`saliency_audit.stats.bootstrap_mean`; sequential, the default: the
group-sequential O'Brien-Fleming test of :mod:`saliency_audit.stats.sequential`).  Given the per-image terms a run
observed, :func:`plan` answers "how many images for a pass with probability 80 % (95 %) if the effect is what
we saw?".

The effect.  ``delta = (mean - threshold) / sd`` of the per-image terms (sd with ddof 1).  The terms are the
ones the verdict's mean is taken over; for the randomization criteria, whose d is normalized by a noise floor
estimated on the same images, they are :func:`saliency_audit.stats.floor_terms` of each check's d and the
images' floor terms (``per_image[].floor``), so the floor's share of the variance is in the sd and a noisy
floor asks for more images.  A verdict with several checks (randomization: the head stage against
``details.head_min`` and all layers against ``details.all_min``, both must clear) needs the largest of its
checks' n.  An effect at or below the threshold has no n: no number of images makes such a verdict pass
more often than alpha.  Utility also needs the mean AP to reach ``utility.min_ap``; that condition is not
statistical and is only named, not modelled.

Fixed n (``rule="fixed"``).  The exact power of the one-sided one-sample t test at level alpha under
normality, ``P(T >= t_{1-alpha, n-1})`` with ``T`` noncentral t (``n - 1`` degrees of freedom, noncentrality
``delta sqrt(n)``; :data:`scipy.stats.nct`); n is the smallest with power >= the target (a bisection, power
rises with n).  The product's fixed-n bound (:func:`saliency_audit.stats.bootstrap_mean`) is the further out
of an expanded bootstrap bound and the t bound guarded by Hall's skewness correction, so it passes only when
the t bound does and its power at the t test's n is at most the t test's -- a point or two on near-normal
terms, more on skewed ones.  That is why every n is checked by resampling (below).

Sequential (``rule="sequential"``, the product's default).  The n here is the *planned maximum*
(``n_images``): looks every ``batch`` images (8) up to n, each look's bound at the Lan-DeMets
O'Brien-Fleming boundary (:func:`saliency_audit.stats.groupseq.boundaries`) on the Student-t scale of its nominal
level, a look stopping as a fail when the mirrored bound falls short, and from half the images on when the
conditional power of a pass falls below ``futility`` -- the rule :class:`saliency_audit.stats.sequential.Looks`
applies.  A pair usually stops before n; what a team must provision is n.  The fixed n is inflated by the
design's maximum-sample-size factor ``R(N) = (eta_seq(N) / eta_fixed(N))^2`` (Jennison & Turnbull 2000,
ch. 2-7): ``eta_seq(N)`` is the drift ``delta sqrt(N)`` at which the design with N images reaches the target
power, computed by recursive numerical integration of the partial sums' density over the continuation
region (as :mod:`saliency_audit.stats.groupseq` does under the null, here with the drift and with the product's
per-look t critical values, mirrored fail bounds and futility bound), and ``eta_fixed(N) = t_{1-alpha,N-1} +
z_power`` the same for one look; both ignore the variance's estimation, which the exact fixed n carries.
n solves ``n = ceil(n_fixed R(n))`` (a fixed-point iteration; R changes slowly with n).  This was chosen
over searching n with :func:`saliency_audit.stats.sequential.decide` on resampled data because it is
deterministic and takes milliseconds per design where a Monte-Carlo search takes minutes and carries its
own noise; :func:`resampled_power` then checks the chosen n with the product's rule.  On normal terms the
simulated sequential power at the n found was within 1.5 points of the target for effects 0.35-0.8
(benchmarks/results/power.json).

R is a property of the design, not of the effect, so it is computed once per (n, target, alpha, batch,
futility): exactly up to :data:`EXACT_UP_TO` images, interpolated on log n between exact designs at
:data:`ANCHORS` above it (within 2 % of the exact factor: the futility looks make R uneven in n), and
extrapolated on log n from the last two anchors beyond 400 images (the boundaries of a long design cost
seconds: groupseq integrates every look).  With the default futility (0.05) R is 1.06 at 16 images, 1.13
at 48, 1.16 at 96, 1.19 at 200, 1.23 at 400, 1.25 at 800 and 1.27 at 1,600 for 80 % power (the
extrapolation gives 1.26 and 1.28 there: a little conservative); without futility it is 1.02-1.07.  With a
single look (n <= batch) and no futility R is 1.

Checking by resampling.  :func:`resampled_power` draws the images of an audit of n with replacement from the
observed ones (not shifted: the effect is the one observed), ``audits`` times, and applies the product's
rule: fixed n, :func:`saliency_audit.stats.bootstrap_mean` ``.lo`` against the threshold (``resamples``
resamples); sequential, :class:`saliency_audit.stats.sequential.Looks` over its looks (O'Brien-Fleming, with
futility).  Randomization draws images, so its two checks and the floor move together, and the floor terms
are recomputed on every drawn audit.  The share of passes is the resampled power (its Monte-Carlo standard
error at 300 audits is 2.3 points at 80 %, 1.3 at 95 %): it carries the terms' real distribution (skew, ties,
the product's bound) where the analytic n assumes normality.  Where it falls short of the target by more
than twice that error, :func:`check` tries larger n (10 % at a time) and reports the first that reaches the
target: on the demo that was mostly verdicts planned at 3-8 images (the product's bound at a handful of
images is wider than the t test's) and terms with a long lower tail.  An audit drawn from 24 observed images
repeats images, so at an n well above the observed one it is only as good as those images are typical.  It
is skipped above :data:`RESAMPLE_FIXED_UP_TO` (fixed) or :data:`RESAMPLE_SEQUENTIAL_UP_TO` (sequential)
images, where an audit costs too much to repeat hundreds of times.

The search is capped at :data:`CAP` images: beyond, "more than 5,000".  Importing this module is cheap (no
torch); the demo's effects ship in ``schemas/demo-effects.json`` (written by benchmarks/bench_power.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from ..common.subjects import of

CAP = 5000  # the largest n searched
EXACT_UP_TO = 128  # sequential designs up to this many images get their exact inflation factor
ANCHORS = (128, 192, 256, 400)  # exact designs the factor is interpolated between above EXACT_UP_TO
RESAMPLE_FIXED_UP_TO = 1000  # resampled checks of larger fixed-n audits are skipped (cost)
RESAMPLE_SEQUENTIAL_UP_TO = 400  # ... and of larger sequential designs
DEMO_EFFECTS = "schemas/demo-effects.json"
DEMO_FORMAT = "saliency-audit/demo-effects@1"
RULES = ("fixed", "sequential")
#: criteria whose verdict needs mean >= threshold (the others: mean > threshold; eMPRT: >)
NON_STRICT = frozenset({"randomization", "label_randomization", "repeatability", "reproducibility"})
_GRID = 401  # points of the partial sums' density grid per look
_SPAN = 9.0  # the grid's lower end, in standard deviations below the partial sum's mean


# -- the effect of one (criterion, method) -----------------------------------------------------------------------
@dataclass
class CheckTerms:
    """One condition of a verdict: the mean of the per-image ``values`` must clear ``threshold``."""

    name: str
    threshold: float
    values: np.ndarray  # each image's statistic (NaN: no value), before any floor correction


@dataclass
class Pair:
    """What a plan needs of one (criterion, method): its checks' per-image values, the images' noise-floor terms
    (randomization criteria; None otherwise) and what the verdict asks besides."""

    criterion: str
    method: str
    checks: list[CheckTerms]
    floors: np.ndarray | None = None
    strict: bool = True
    model: str = "primary"
    control: dict | None = None  # details.control of a control method's result
    alpha: float = 0.05
    min_ap: float | None = None  # utility: the mean AP a pass also needs (not modelled)
    mean_ap: float | None = None
    lesion_images: bool = False  # the criterion scores lesion images only

    @property
    def label(self) -> str:
        return f"{self.criterion}[{self.method}]" + ("" if self.model == "primary" else f" ({self.model})")

    @property
    def n(self) -> int:
        """Images with a value for every check."""
        ok = np.ones(len(self.checks[0].values), dtype=bool)
        for c in self.checks:
            ok &= np.isfinite(c.values)
        return int(ok.sum())

    def terms(self, check: CheckTerms, idx: np.ndarray | None = None) -> np.ndarray:
        """The check's per-image terms (finite only), of the images ``idx`` (default: all).  With floors, each d
        is first normalized by the drawn images' mean floor instead of the observed one (a run normalizes by its
        own images' floor) and then :func:`saliency_audit.stats.floor_terms` of the drawn images is taken, as a
        run over them would; a drawn floor of 1 or more leaves no terms (such a run cannot pass)."""
        from ..stats import floor_terms

        v = check.values if idx is None else check.values[idx]
        if self.floors is not None:
            f = self.floors if idx is None else self.floors[idx]
            if idx is not None:
                observed, drawn = _finite_mean(self.floors), _finite_mean(f)
                if drawn is not None and drawn >= 1.0:
                    return np.empty(0)
                if observed is not None and drawn is not None and observed < 1.0:
                    v = v * (1.0 - observed) / (1.0 - drawn)
            v = floor_terms(v, f)
        return v[np.isfinite(v)]


SMALL_N = 24  # an n at most this is always checked by resampling (plan)


def _finite_mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def _num(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _array(items, key) -> np.ndarray:
    return np.array([math.nan if _num(i.get(key)) is None else _num(i.get(key)) for i in items], dtype=np.float64)


def _lesion_criteria() -> frozenset:
    from ..common.criteria_registry import CRITERIA

    return frozenset(name for name, spec in CRITERIA.items() if "lesions" in spec.needs)


def pair_from_result(r: dict, default_alpha: float = 0.05) -> tuple[Pair | None, str | None]:
    """(the plan's view of one evidence result, None) or (None, why it cannot be planned)."""
    items = r.get("per_image")
    verdict = r.get("verdict")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return None, f"no per-image terms in the evidence (verdict {verdict})"
    criterion, method = str(r.get("criterion")), of(r)  # a finding's verdict is planned as its subject
    details = r.get("details") if isinstance(r.get("details"), dict) else {}
    statistic = str(r.get("statistic") or "")
    checks: list[CheckTerms] = []
    head, every = _num(details.get("head_min")), _num(details.get("all_min"))
    names = list(items[0]["checks"]) if isinstance(items[0].get("checks"), dict) else []
    if names and head is not None and every is not None \
            and all(isinstance(i.get("checks"), dict) and set(i["checks"]) >= set(names) for i in items):
        # randomization: the first stage's check (head, or input bottom-up) against head_min, all layers' all_min
        for name in names:
            checks.append(CheckTerms(name, every if name.endswith("all layers") else head, np.array(
                [math.nan if _num(i["checks"][name]) is None else _num(i["checks"][name]) for i in items])))
    else:
        threshold = _num(r.get("threshold"))
        if threshold is None:
            return None, "no threshold in the evidence"
        checks.append(CheckTerms(statistic or "statistic", threshold, _array(items, "statistic")))
    if not all(np.isfinite(c.values).sum() >= 2 for c in checks):
        return None, "fewer than 2 per-image values"
    floors = _array(items, "floor") if any("floor" in i for i in items) else None
    if floors is not None and not np.isfinite(floors).any():
        floors = None
    alpha = _num(details.get("alpha"))
    control = details.get("control") if isinstance(details.get("control"), dict) else None
    return Pair(criterion=criterion, method=method, checks=checks, floors=floors,
                strict=criterion not in NON_STRICT or "eMPRT" in statistic,
                model=str(r.get("model") or "primary"), control=control,
                alpha=alpha if alpha is not None and 0 < alpha < 0.5 else default_alpha,
                min_ap=_num(details.get("min_ap")) if criterion == "utility" else None,
                mean_ap=_num(details.get("mean_ap")) if criterion == "utility" else None,
                lesion_images=criterion in _lesion_criteria()), None


def pairs_from_evidence(evidence: dict) -> tuple[list[Pair], list[tuple[str, str]]]:
    """(every result's :class:`Pair`, [(label, why not) for the results that cannot be planned])."""
    pairs, skipped = [], []
    for r in evidence.get("results") or []:
        if not isinstance(r, dict):
            continue
        pair, why = pair_from_result(r)
        if pair is None:
            model = str(r.get("model") or "primary")
            skipped.append((f"{r.get('criterion')}[{r.get('method')}]" + ("" if model == "primary" else f" ({model})"),
                            why))
        else:
            pairs.append(pair)
    return pairs, skipped


# -- the shipped demo effects -------------------------------------------------------------------------------------
def _rounded(x: np.ndarray, digits: int = 5) -> list:
    return [None if not math.isfinite(v) else float(f"{v:.{digits}g}") for v in x.tolist()]


def summary(pair: Pair) -> list[dict]:
    """Per check: its threshold and the mean, sd and n of its terms (with the floor's share when there is one)."""
    out = []
    for c in pair.checks:
        t = pair.terms(c)
        out.append({"name": c.name, "threshold": c.threshold, "mean": float(t.mean()) if t.size else None,
                    "sd": float(t.std(ddof=1)) if t.size > 1 else None, "n": int(t.size)})
    return out


def effects_json(pairs: list[Pair], source: dict) -> dict:
    """The demo effects file: per pair its checks' summary and per-image values (5 significant digits)."""
    rows = []
    for p in pairs:
        row = {"criterion": p.criterion, "method": p.method, "model": p.model, "strict": p.strict,
               "alpha": p.alpha, "lesion_images": p.lesion_images, "n": p.n,
               "checks": [{**s, "values": _rounded(c.values)} for s, c in zip(summary(p), p.checks)]}
        if p.floors is not None:
            row["floors"] = _rounded(p.floors)
        if p.control is not None:
            row["control"] = {k: p.control.get(k) for k in ("role", "expected")}
        if p.min_ap is not None:
            row.update(min_ap=p.min_ap, mean_ap=p.mean_ap)
        rows.append(row)
    return {"format": DEMO_FORMAT, "source": source, "pairs": rows}


def pairs_from_effects(data: dict) -> list[Pair]:
    """The :class:`Pair` of every row of an effects file (:func:`effects_json`)."""
    if not isinstance(data, dict) or data.get("format") != DEMO_FORMAT:
        raise ValueError(f"not a {DEMO_FORMAT} file")

    def arr(values):
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)

    out = []
    for row in data["pairs"]:
        out.append(Pair(criterion=row["criterion"], method=row["method"], model=row.get("model", "primary"),
                        checks=[CheckTerms(c["name"], float(c["threshold"]), arr(c["values"])) for c in row["checks"]],
                        floors=arr(row["floors"]) if row.get("floors") is not None else None,
                        strict=bool(row.get("strict", True)), control=row.get("control"),
                        alpha=float(row.get("alpha", 0.05)), min_ap=row.get("min_ap"), mean_ap=row.get("mean_ap"),
                        lesion_images=bool(row.get("lesion_images"))))
    return out


def demo_effects() -> tuple[list[Pair], dict]:
    """(the demo audit's pairs, where they came from), from the file that ships with the package."""
    data = json.loads(resources.files("saliency_audit").joinpath(DEMO_EFFECTS).read_text(encoding="utf-8"))
    return pairs_from_effects(data), data.get("source", {})


# -- fixed n: the one-sided t test -------------------------------------------------------------------------------
def fixed_power(delta: float, n: int, alpha: float) -> float:
    """The exact power of the one-sided one-sample t test at level ``alpha`` with n images at effect ``delta``
    (normal terms): ``P(T >= t_{1-alpha, n-1})``, T noncentral t."""
    from scipy import stats

    if n < 2:
        return 0.0
    if math.isinf(delta):
        return 1.0 if delta > 0 else 0.0
    return float(stats.nct.sf(stats.t.isf(alpha, n - 1), n - 1, delta * math.sqrt(n)))


def fixed_n(delta: float, power: float, alpha: float, cap: int = CAP) -> int | None:
    """The smallest n >= 2 whose t-test power at ``delta`` (> 0) reaches ``power``; None beyond ``cap``."""
    if not delta > 0:
        raise ValueError(f"the effect must exceed the threshold (delta {delta})")
    if fixed_power(delta, 2, alpha) >= power:
        return 2
    if fixed_power(delta, cap, alpha) < power:
        return None
    lo, hi = 2, cap  # power(lo) < target <= power(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fixed_power(delta, mid, alpha) >= power else (mid, hi)
    return hi


# -- sequential: the group-sequential design's inflation -------------------------------------------------------
@lru_cache(maxsize=512)
def _design(n: int, alpha: float, batch: int, futility: float) -> tuple[tuple, tuple, tuple]:
    """(information fractions, upper and lower stopping boundaries on the z scale) of the product's
    group-sequential rule with n planned images: looks at :func:`saliency_audit.stats.sequential.sizes`, each look's
    O'Brien-Fleming boundary taken to the Student-t critical value of its nominal level (as
    :class:`saliency_audit.stats.sequential.Looks` does), the mirrored bound for a fail and, from half the images on,
    the futility bound ``z < sqrt(t) (c_K + sqrt(1 - t) Phi^-1(futility))`` (the conditional power of a pass
    below ``futility``)."""
    from scipy import special

    from ..stats import groupseq, sequential

    sizes = sequential.sizes(n, batch)
    t = tuple(k / n for k in sizes)
    c = groupseq.boundaries(t, alpha)
    upper = tuple(groupseq.t_critical_log(level, k) for level, k in zip(groupseq.log_nominal_levels(t, alpha), sizes))
    start = sequential._FUTILITY_FROM
    lower = []
    for tk, u in zip(t, upper):
        lo = -u
        if futility > 0 and start <= tk < 1:
            lo = max(lo, math.sqrt(tk) * (c[-1] + math.sqrt(1 - tk) * float(special.ndtri(futility))))
        lower.append(lo)
    return t, upper, tuple(lower)


def _crossing(eta: float, t: tuple, upper: tuple, lower: tuple) -> float:
    """P(the standardised partial sums cross an upper boundary before a lower one) when the statistic at
    information fraction t has mean ``eta * sqrt(t)``: recursive integration of the density of the partial
    sum S_k = Z_k sqrt(t_k) (mean eta t_k, variance t_k) over the continuation region, on a grid per look
    (trapezoid rule)."""
    from scipy import special

    power, prev, grid, wdens = 0.0, 0.0, None, None
    root2pi = math.sqrt(2.0 * math.pi)
    for k, tk in enumerate(t):
        st = math.sqrt(tk)
        hi = upper[k] * st
        if k == 0:
            power += float(special.ndtr((eta * tk - hi) / st))
        else:
            step = math.sqrt(tk - prev)
            power += float(np.sum(wdens * special.ndtr((grid + eta * (tk - prev) - hi) / step)))
        lo = max(lower[k] * st, eta * tk - _SPAN * st)
        top = min(hi, eta * tk + _SPAN * st)  # an early look's boundary can lie far above any mass
        if k == len(t) - 1 or lo >= top:
            break
        new = np.linspace(lo, top, _GRID)
        if k == 0:
            dens = np.exp(-0.5 * ((new - eta * tk) / st) ** 2) / (st * root2pi)
        else:
            step = math.sqrt(tk - prev)
            dens = np.exp(-0.5 * ((new[:, None] - grid[None, :] - eta * (tk - prev)) / step) ** 2) @ wdens
            dens /= step * root2pi
        w = np.full(_GRID, new[1] - new[0])
        w[[0, -1]] /= 2.0
        grid, wdens, prev = new, w * dens, tk
    return min(1.0, power)


def design_power(delta: float, n: int, alpha: float, batch: int = 8, futility: float = 0.05) -> float:
    """The power of the sequential rule with n planned images at effect ``delta`` (normal terms, known sd: the
    z-scale approximation the inflation factor is computed in)."""
    return _crossing(delta * math.sqrt(n), *_design(n, alpha, batch, futility))


@lru_cache(maxsize=4096)
def _exact_inflation(n: int, power: float, alpha: float, batch: int, futility: float) -> float:
    from scipy import optimize, special

    from ..stats.groupseq import t_critical

    design = _design(n, alpha, batch, futility)
    if len(design[0]) == 1 and futility == 0:
        return 1.0
    eta_fixed = t_critical(alpha, n) + float(special.ndtri(power))
    lo, hi = 0.8 * eta_fixed, 1.6 * eta_fixed
    while _crossing(lo, *design) > power:
        lo /= 2.0
    while _crossing(hi, *design) < power:
        hi *= 1.5
    eta = optimize.brentq(lambda e: _crossing(e, *design) - power, lo, hi, xtol=1e-7)
    return (eta / eta_fixed) ** 2


def inflation(n: int, power: float, alpha: float, batch: int = 8, futility: float = 0.05) -> tuple[float, bool]:
    """(the maximum-sample-size factor R of the sequential design with n planned images, whether it is exact):
    exact up to :data:`EXACT_UP_TO` images, interpolated on log n between :data:`ANCHORS` above, the last
    anchor's beyond it."""
    if n <= EXACT_UP_TO:
        return _exact_inflation(n, power, alpha, batch, futility), True
    if n in ANCHORS:
        return _exact_inflation(n, power, alpha, batch, futility), True
    if n > ANCHORS[-1]:  # extrapolated on log n from the last two anchors (R still rises with more looks)
        a, b = ANCHORS[-2], ANCHORS[-1]
    else:
        i = next(k for k, a in enumerate(ANCHORS) if a > n)
        a, b = ANCHORS[i - 1], ANCHORS[i]
    ra, rb = (_exact_inflation(x, power, alpha, batch, futility) for x in (a, b))
    w = (math.log(n) - math.log(a)) / (math.log(b) - math.log(a))
    return ra + w * (rb - ra), False


def sequential_n(delta: float, power: float, alpha: float, batch: int = 8, futility: float = 0.05,
                 cap: int = CAP) -> tuple[int | None, bool]:
    """(the planned maximum n of the sequential rule for ``power`` at ``delta`` -- None beyond ``cap`` --,
    whether its factor was exact): the fixed n inflated by the design's factor, ``n = ceil(n_fixed R(n))``."""
    base = fixed_n(delta, power, alpha, cap)
    if base is None:
        return None, True
    n, exact, seen = base, True, set()
    while True:
        r, exact = inflation(n, power, alpha, batch, futility)
        nxt = max(base, math.ceil(base * r - 1e-9))
        if nxt == n:
            break
        if nxt in seen:  # R(n) is not monotone at a partial last batch: take the larger of the two
            n = max(n, nxt)
            exact = inflation(n, power, alpha, batch, futility)[1]
            break
        seen.add(n)
        n = nxt
        if n > cap:
            return None, exact
    return n, exact


# -- a plan -------------------------------------------------------------------------------------------------------
@dataclass
class Need:
    """The images one check needs for one target power."""

    check: str
    threshold: float
    mean: float
    sd: float
    n_observed: int
    delta: float | None  # (mean - threshold) / sd; None: no spread
    n: int | None  # None: see why
    why: str | None = None  # "effect" (at or below the threshold), "cap" (more than CAP)
    exact: bool = True


def need(terms, threshold: float, power: float, alpha: float = 0.05, rule: str = "sequential", *, batch: int = 8,
         futility: float = 0.05, cap: int = CAP, name: str = "mean") -> Need:
    """The images a check needs: ``terms`` its per-image terms (finite values used), a pass when the bound of
    their mean clears ``threshold`` (strictly or not: the same for continuous terms)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, not {rule!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), not {power!r}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), not {alpha!r}")
    x = np.asarray(terms, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError("at least 2 per-image terms are needed")
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    base = Need(name, float(threshold), mean, sd, int(x.size), None, None)
    spread = sd > 1e-12 * max(1.0, abs(mean))
    if mean <= threshold:  # even where a non-strict verdict would pass on the threshold, no power to plan for
        base.delta = (mean - threshold) / sd if spread else None
        base.why = "effect"
        return base
    if not spread:  # every image the same, above the threshold: any audit passes
        base.n = 2
        return base
    base.delta = (mean - threshold) / sd
    if rule == "fixed":
        base.n = fixed_n(base.delta, power, alpha, cap)
    else:
        base.n, base.exact = sequential_n(base.delta, power, alpha, batch, futility, cap)
    if base.n is None:
        base.why = "cap"
    return base


@dataclass
class Target:
    """A pair's plan for one target power: its checks' needs and the verdict's n (the largest)."""

    power: float
    needs: list[Need]
    n: int | None
    why: str | None
    binding: str | None  # the check whose n is the verdict's (several checks)
    resampled: float | None = None  # the share of resampled audits of n that passed
    audits: int = 0
    resampled_n: int | None = None  # resampled power short of the target: the first larger n that reached it
    searched_to: int | None = None  # ... or the largest n tried without reaching it


@dataclass
class PairPlan:
    pair: Pair
    rule: str
    alpha: float
    batch: int
    futility: float
    targets: list[Target] = field(default_factory=list)

    def to_dict(self) -> dict:
        p = self.pair
        return {"criterion": p.criterion, "method": p.method, "model": p.model, "control": p.control,
                "rule": self.rule, "alpha": self.alpha, "n_observed": p.n, "checks": summary(p),
                "floor_terms": p.floors is not None,
                **({"min_ap": p.min_ap, "mean_ap": p.mean_ap} if p.min_ap is not None else {}),
                "targets": [{"power": t.power, "n": t.n, "why": t.why, "binding": t.binding,
                             "exact": all(x.exact for x in t.needs),
                             "resampled_power": t.resampled, "audits": t.audits,
                             "resampled_n": t.resampled_n, "searched_to": t.searched_to,
                             "per_check": {x.check: x.n for x in t.needs}} for t in self.targets]}


def plan(pair: Pair, powers=(0.8, 0.95), *, alpha: float | None = None, rule: str = "sequential", batch: int = 8,
         futility: float = 0.05, cap: int = CAP, audits: int = 0, resamples: int = 1000, seed: int = 0,
         small: int = SMALL_N, small_audits: int = 200) -> PairPlan:
    """The n of ``pair`` for each target power (the largest over its checks); with ``audits`` > 0 each n is
    checked by :func:`resampled_power`, and an n of at most ``small`` always is (``small_audits`` audits):
    there the t test's power is the most optimistic about the product's bound (52 % instead of 80 % for
    utility[ggcam] on the demo at 3 images)."""
    a = pair.alpha if alpha is None else alpha
    out = PairPlan(pair, rule, a, batch, futility)
    for power in powers:
        needs = [need(pair.terms(c), c.threshold, power, a, rule, batch=batch, futility=futility, cap=cap,
                      name=c.name) for c in pair.checks]
        short = [x for x in needs if x.why == "effect"]
        beyond = [x for x in needs if x.why == "cap"]
        if short:
            n, why, binding = None, "effect", short[0].check
        elif beyond:
            n, why, binding = None, "cap", beyond[0].check
        else:
            top = max(needs, key=lambda x: x.n)
            n, why, binding = top.n, None, top.check
        target = Target(power, needs, n, why, binding)
        if n is not None and (audits > 0 or n <= small):
            check(target, pair, a, rule, batch=batch, futility=futility, audits=audits or small_audits,
                  resamples=resamples, seed=seed)
        out.targets.append(target)
    return out


def check(target: Target, pair: Pair, alpha: float, rule: str, *, batch: int = 8, futility: float = 0.05,
          audits: int = 300, resamples: int = 1000, seed: int = 0, steps: int = 8) -> Target:
    """Fill in ``target``'s resampled power at its n; when it falls short of the target by more than twice its
    Monte-Carlo standard error (the product's bound is more conservative than the t test's, most at a few
    images, and the terms need not be normal), try larger n -- up 10 % (at least 1) at a time, ``steps`` times
    at most, the same draws' seed each time -- until one reaches the target (``resampled_n``; else
    ``searched_to``)."""
    def at(m):
        return resampled_power(pair, m, alpha, rule, batch=batch, futility=futility, audits=audits,
                               resamples=resamples, seed=seed)

    target.resampled = at(target.n)
    target.audits = audits if target.resampled is not None else 0
    noise = math.sqrt(target.power * (1.0 - target.power) / audits)
    if target.resampled is None or target.resampled >= target.power - 2.0 * noise:
        return target
    m = target.n
    for _ in range(steps):
        m = max(m + 1, math.ceil(m * 1.1))
        got = at(m)
        if got is None:
            break
        target.searched_to = m
        if got >= target.power:
            target.resampled_n, target.searched_to = m, None
            break
    return target


def resampled_power(pair: Pair, n: int, alpha: float, rule: str = "fixed", *, batch: int = 8,
                    futility: float = 0.05, audits: int = 300, resamples: int = 1000, seed: int = 0) -> float | None:
    """The share of ``audits`` audits of n images, drawn with replacement from the pair's observed images, that
    the product's rule passes (every check must); None above the resampling limits (see the module
    docstring)."""
    from ..common.errors import DegenerateBound
    from ..stats.sequential import Check, Looks, sizes
    from ..stats import bootstrap_mean

    if n > (RESAMPLE_FIXED_UP_TO if rule == "fixed" else RESAMPLE_SEQUENTIAL_UP_TO):
        return None
    ok = np.ones(len(pair.checks[0].values), dtype=bool)
    for c in pair.checks:
        ok &= np.isfinite(c.values)
    pool = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)

    def clears(v: float, threshold: float) -> bool:
        return v > threshold if pair.strict else v >= threshold

    passes = 0
    for audit in range(audits):
        idx = rng.choice(pool, size=n, replace=True)
        if rule == "fixed":
            passes += all(clears(bootstrap_mean(pair.terms(c, idx), alpha=alpha, resamples=resamples,
                                                seed=seed + audit).lo, c.threshold) for c in pair.checks)
            continue
        looks = Looks(alpha, batch, n, "obf", futility)
        ks = sizes(n, batch)
        try:
            for k in ks:
                checks = [Check(c.name, pair.terms(c, idx[:k]), c.threshold, pair.strict) for c in pair.checks]
                if looks.look(checks, final=k == ks[-1]):
                    break
        except DegenerateBound:  # a bound that is not a number: the product decides nothing, so no pass
            continue
        passes += looks.stopped == "pass"
    return passes / audits


# -- words ----------------------------------------------------------------------------------------------------------
def _signed(x: float) -> str:
    return f"{x:+.3g}"


def _percent(share: float, target: float) -> str:
    """``share`` in percent, to one decimal where whole percent would hide that it is short of ``target``."""
    whole = f"{100 * share:.0f}"
    return f"{100 * share:.1f}" if share < target and float(whole) >= 100 * target else whole


def _count(n: int) -> str:
    return f"{n:,}"


def _control(pair: Pair) -> str:
    if not pair.control:
        return ""
    expected = pair.control.get("expected")
    return f" (control, must {expected})" if expected in ("pass", "fail") else " (control, reported only)"


def _short(name: str) -> str:
    """A check's name without its statistic (``SSIM drop d, head stage`` -> ``head stage``)."""
    return name.split(", ")[-1]


def line(p: PairPlan, where: str = "this run's effect") -> str:
    """One line: ``utility[gradcam]: 80 % power needs ≈ 14 lesion images, 95 % ≈ 24 at this run's effect (mean
    +0.21, sd 0.18 over 48 lesion images; threshold 0)``."""
    pair = p.pair
    images = "lesion images" if pair.lesion_images else "images"
    label = pair.label + _control(pair)
    stats = summary(pair)
    if len(stats) == 1:
        s = stats[0]
        effect = (f"mean {_signed(s['mean'])}, sd {s['sd']:.2g} over {s['n']} {images}; "
                  f"threshold {s['threshold']:g}")
    else:
        effect = "; ".join(f"{_short(s['name'])}: mean {_signed(s['mean'])}, sd {s['sd']:.2g}, "
                           f"threshold {s['threshold']:g}" for s in stats) + f"; over {pair.n} {images}"
    if pair.floors is not None:
        effect += "; terms carry the noise floor's share"
    short = next((t for t in p.targets if t.why == "effect"), None)
    if short is not None:
        check = f" ({_short(short.binding)} check)" if len(pair.checks) > 1 else ""
        return f"{label}: no n: the observed effect does not exceed the threshold{check} ({effect})"
    parts = []
    for i, t in enumerate(p.targets):
        count = f"more than {_count(CAP)}" if t.n is None else f"≈ {_count(t.n)}"
        part = f"{100 * t.power:g} % power needs {count} {images}" if i == 0 else f"{100 * t.power:g} % {count}"
        if t.resampled is not None:
            part += f" (resampled: {_percent(t.resampled, t.power)} % pass"
            if t.resampled_n is not None:
                part += f"; {100 * t.power:g} % at ≈ {_count(t.resampled_n)}"
            elif t.searched_to is not None:
                part += f"; under {100 * t.power:g} % up to {_count(t.searched_to)}"
            part += ")"
        parts.append(part)
    text = f"{label}: " + ", ".join(parts) + f" at {where} ({effect})"
    binding = sorted({_short(t.binding) for t in p.targets if t.binding and t.n is not None})
    if len(pair.checks) > 1 and binding:
        text += "; binding check: " + " / ".join(binding)
    if any(not x.exact for t in p.targets for x in t.needs):
        text += f"; approximate beyond {EXACT_UP_TO} images (design factor interpolated)"
    if pair.min_ap is not None:
        now = f", now {pair.mean_ap:.3g}" if pair.mean_ap is not None else ""
        text += f"; a pass also needs mean AP >= {pair.min_ap:g}{now} (not modelled)"
    return text


def rule_text(rule: str, alpha: float | None, batch: int, futility: float) -> str:
    """What the numbers are, for a header line."""
    level = "each pair's alpha" if alpha is None else f"alpha {alpha:g}"
    if rule == "fixed":
        return (f"fixed-n verdicts, one-sided at {level}: n from the exact power of the one-sided t test "
                "(noncentral t) at the observed effect")
    return (f"sequential verdicts (O'Brien-Fleming looks every {batch} images, futility {futility:g}), one-sided at "
            f"{level}: n is the planned maximum (n_images), the fixed n times the design's inflation factor; "
            "a pair usually stops earlier")
