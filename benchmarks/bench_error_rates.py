"""Wrong-pass rate of every gated rule with the true effect exactly at the threshold (calibration study).

    python benchmarks/bench_error_rates.py                 # the full study, then its confirmations (below)
    python benchmarks/bench_error_rates.py --quick         # a smoke run of every code path (prints, writes nothing)
    python benchmarks/bench_error_rates.py --confirm       # only redo the follow-ups (below) of the stored results
    python benchmarks/bench_error_rates.py --from-evidence reports/evidence.json   # re-extract the demo's terms first
    # writes benchmarks/results/error_rates.json (reads benchmarks/results/demo_terms.json)

The full study takes about 25 min on one idle core (38 min on a shared, loaded one); ``total_seconds`` records
it.  Flagged cells are rerun on fresh draws (``confirmation``): a row whose interval lay above alpha with fewer
than 2,000 audits, and every single method whose own count (``per_method``) had its interval above alpha --
a criterion's row mixes its 8 methods, so one badly behaved method can hide in it; and every single method
whose terms have a long lower tail (skewness <= -0.4) at a fixed n of 8-48 (``long_lower_tails``).

A verdict passes when a one-sided (1 - alpha) lower bound of the mean per-image statistic clears the
criterion's threshold; a reader takes "pass" to mean "at most alpha = 5 % chance this pass is wrong".  Here,
by Monte-Carlo, each rule's rate of passing when the population mean sits exactly on the threshold, with the
Monte-Carlo 95 % (Wilson) interval of that rate.  Every rule is the product's own code:

* fixed n: ``stats.bootstrap_mean(values, alpha, resamples, method="BCa", seed).lo`` against the threshold
  with the criterion's strictness (``stats.clears``), at 8, 16, 24, 48 and 200 images, with ``RESAMPLES``
  (1,000) bootstrap resamples where the product defaults to 4,000 (``resamples_check``: the same draws with
  4,000 at a few points);
* sequential (a look every 8 images, every look taken until decided) at 48, 200 and 2,000 planned images:
  ``obf`` without and with futility (0.05, the default; the same draws) and ``betting``.  Each audit runs
  ``sequential.run_looks`` -- the loop every criterion uses, of which ``sequential.decide`` is the
  threshold-0 special case -- with the criterion's own ``Check`` (threshold, strictness, betting range
  ``lo``/``hi``), so nothing is shifted or rescaled by hand; ``validation`` records that ``decide(values -
  threshold)`` gives the same obf verdicts.  Betting on values with a fixed range is read off one
  ``lower_bounds``/``upper_bounds`` pass over the whole sequence (the bound after k values is the same
  prefix computation either way; ``validation`` checks it against ``run_looks``);
* Holm over a gate of 72 verdicts (9 criteria x 8 methods of the demo, each at its demo image count,
  each drawn from its own method's demo terms at the threshold): p-values from ``stats.pass_p_value``
  (fixed n) or ``Looks.p_value()`` (sequential), family decision by ``multiplicity.decide(p, 0.05,
  "holm")``; the family passes wrongly when any of the 72 passes.

Per-image values ("distributions"), each shifted so that its population mean is exactly the threshold:

* synthetic shapes, threshold 0, strict, sd 0.1: normal; Student t with 3 df; lognormal (sigma 0.5,
  right-skewed) and its negative (left-skewed);
* the demo's recorded per-image terms per (criterion, method) (``benchmarks/results/demo_terms.json``,
  extracted from a fixed-n demo audit's evidence; controls and error/skipped verdicts left out), resampled
  with replacement; a cell cycles through the criterion's 8 methods (audit r uses method r mod 8) and
  records each method's count;
* ``randomization`` (each of its two checks: head stage >= 0.5, all layers >= 0.8) and
  ``label_randomization`` (>= 0.8) with their noise floor simulated: each image is a pair (s_i, f_i), d_i =
  (1 - s_i) / (1 - F), F the mean of the f_i of the audit's own images.  s_i = 1 - d_i (1 - F_obs) is
  recovered from the recorded d_i and floors, images are resampled as pairs, s is shifted so that
  (1 - E s) / (1 - E f) equals the threshold exactly, and every simulated audit (every look, sequentially)
  recomputes F, d and the product's ``stats.floor_terms(d, f)``, over which the bound is taken.  The old
  rule (the bound over d alone, the floor treated as known) runs on the same draws for contrast.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per process, before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

from saliency_audit.stats import multiplicity  # noqa: E402
from saliency_audit.common.errors import DegenerateBound  # noqa: E402
from saliency_audit.stats.sequential import Check, decide, lower_bounds, run_looks, sizes, upper_bounds  # noqa: E402
from saliency_audit.stats import bootstrap_mean, clears, floor_terms, pass_p_value, stable_seed  # noqa: E402

ALPHA = 0.05
BATCH = 8
FUTILITY = 0.05  # AuditConfig().sequential_futility
RESAMPLES = 1000  # the product's default (stats.resamples) is 4000: see resamples_check
PRODUCT_RESAMPLES = 4000
SEED = 20261207
HERE = Path(__file__).resolve().parent
SOURCES = ("stats/__init__.py", "stats/sequential.py", "stats/groupseq.py", "stats/multiplicity.py")  # the rules measured here
OUT = HERE / "results" / "error_rates.json"
TERMS = HERE / "results" / "demo_terms.json"

FIXED_SIZES = (8, 16, 24, 48, 200)
FULL = {"fixed": {n: 2000 for n in FIXED_SIZES},
        "obf": {48: 2000, 200: 2000, 2000: 400},
        "betting": {48: 1000, 200: 1000, 2000: 400},
        "betting_floor": {48: 1000, 200: 400},  # floor criteria: every look recomputes the bets (see below)
        "holm": 400, "holm_sequential": 400, "holm_resamples": RESAMPLES, "validate": 20, "holm_validate": 2,
        "resamples_check": 2000}
QUICK = {"fixed": {8: 60, 48: 60},
         "obf": {48: 40, 200: 20},
         "betting": {48: 20, 200: 10},
         "betting_floor": {48: 10},
         "holm": 3, "holm_sequential": 3, "holm_resamples": 200, "validate": 5, "holm_validate": 1,
         "resamples_check": 60}

#: each criterion's comparison (saliency_audit/criteria: consistency and the randomization criteria use
#: >=, the others >) and the range its sequential Check declares for the betting rule
STRICT = {"utility": True, "completeness": True, "energy": True, "focus": True, "pointing": True,
          "repeatability": False, "reproducibility": False, "randomization": False, "label_randomization": False}
CRITERIA = ("utility", "randomization", "label_randomization", "repeatability", "reproducibility", "completeness",
            "energy", "focus", "pointing")
FLOOR = ("randomization", "label_randomization")


# ---------------------------------------------------------------------------------------------------------------
# the demo's per-image terms


def extract(evidence: Path) -> dict:
    """The compact per-(criterion, method) table of per-image terms of a fixed-n demo audit's evidence."""
    ev = json.loads(Path(evidence).read_text())
    out: dict = {"source": str(evidence), "run": {k: ev["run"].get(k) for k in ("started", "finished", "seed", "argv")},
                 "n_images": ev["run"].get("plan", {}).get("images"), "criteria": {}, "left_out": []}
    for r in ev["results"]:
        d = r.get("details") or {}
        crit, meth = r["criterion"], r["method"]
        if d.get("control") or r["verdict"] not in ("pass", "fail"):
            out["left_out"].append(f"{crit}[{meth}]: " + ("control" if d.get("control") else r["verdict"]))
            continue
        c = out["criteria"].setdefault(crit, {"statistic": r["statistic"], "strict": STRICT[crit], "methods": {}})
        pi = r["per_image"]

        def col(key):
            return [float(p[key]) for p in pi]

        if crit == "randomization":
            names = list(pi[0]["checks"])
            head = next(n for n in names if not n.endswith("all layers"))
            c["thresholds"] = {"head": d["head_min"], "all": d["all_min"]}
            c["checks"] = {"head": head, "all": next(n for n in names if n.endswith("all layers"))}
            entry = {"floor": col("floor"), "d": {"head": [float(p["checks"][head]) for p in pi],
                                                  "all": [float(p["checks"][c["checks"]["all"]]) for p in pi]},
                     "binding": "all" if r["statistic"] == c["checks"]["all"] else "head"}
            s_binding = col("ssim")
            d_binding = entry["d"][entry["binding"]]
        elif crit == "label_randomization":
            c["threshold"] = r["threshold"]
            entry = {"floor": col("floor"), "d": col("statistic")}
            s_binding, d_binding = col("ssim"), entry["d"]
        else:
            c["threshold"] = r["threshold"]
            entry = {"values": col("statistic")}
        if crit in FLOOR:  # the recovery s_i = 1 - d_i (1 - F_obs), checked against the recorded SSIM
            f = np.array(entry["floor"])
            fo = float(f[np.isfinite(f)].mean())
            s = 1.0 - np.array(d_binding) * (1.0 - fo)
            entry["floor_mean"] = fo
            entry["s_recovery_max_error"] = float(np.nanmax(np.abs(s - np.array(s_binding))))
        c["methods"][meth] = entry
    return out


class Dist:
    """Per-image values of one simulated audit, at the threshold.  ``draw(rng, n, r)`` gives audit r's sample
    of n images; ``terms(sample, k)`` the product's per-image terms of its first k images (what the bound is
    taken over); ``known(sample, k)`` the old rule's (floor as known; floor distributions only);
    ``check(sample, k)`` the criterion's sequential Check of the first k images."""

    floor = False

    def __init__(self, name: str, threshold: float, strict: bool, methods: list[str]):
        self.name, self.threshold, self.strict, self.methods = name, float(threshold), strict, methods

    def method_of(self, r: int) -> int:
        return r % len(self.methods)

    def terms(self, sample, k=None):
        return sample[:k]

    def check(self, sample, k=None) -> Check:
        return Check(self.name, self.terms(sample, k), self.threshold, strict=self.strict)

    def info(self) -> dict:
        return {"threshold": self.threshold, "strict": self.strict, "methods": self.methods}


class Shape(Dist):
    """Synthetic values: mean 0 (the threshold), sd 0.1, strict (as utility and the interpretability criteria)."""

    def __init__(self, name: str, draw):
        super().__init__(name, 0.0, True, ["-"])
        self._draw = draw

    def draw(self, rng, n, r=0):
        return self._draw(rng, n)


_LN_MEAN, _LN_SD = math.exp(0.125), math.sqrt((math.exp(0.25) - 1.0) * math.exp(0.25))
SHAPES = {
    "normal": lambda rng, n: rng.normal(0.0, 0.1, n),
    "heavy-tailed (t, 3 df)": lambda rng, n: 0.1 * rng.standard_t(3, n) / math.sqrt(3.0),
    "right-skewed (lognormal)": lambda rng, n: 0.1 * (rng.lognormal(0.0, 0.5, n) - _LN_MEAN) / _LN_SD,
    "left-skewed (-lognormal)": lambda rng, n: -0.1 * (rng.lognormal(0.0, 0.5, n) - _LN_MEAN) / _LN_SD,
}


class Table(Dist):
    """A criterion's demo terms, each method's shifted to the threshold, resampled with replacement."""

    def __init__(self, name, threshold, strict, tables: dict):
        super().__init__(name, threshold, strict, list(tables))
        self.tables = []
        for v in tables.values():
            v = np.asarray(v, dtype=np.float64)
            v = v[np.isfinite(v)]
            self.tables.append(v - v.mean() + self.threshold)
        self.sd = {m: float(np.std(v, ddof=1)) for m, v in zip(self.methods, self.tables)}

    def draw(self, rng, n, r=0):
        t = self.tables[self.method_of(r)]
        return t[rng.integers(0, len(t), n)]

    def info(self) -> dict:
        return {**super().info(), "images": {m: len(t) for m, t in zip(self.methods, self.tables)},
                "sd": self.sd}


class FloorTable(Dist):
    """A randomization check's images as pairs (s_i, f_i), s shifted so that (1 - E s) / (1 - E f) is the
    threshold; each audit recomputes F, d and floor_terms on its own images."""

    floor = True

    def __init__(self, name, threshold, entries: dict, key=None):
        super().__init__(name, threshold, False, list(entries))
        self.pairs = []
        self.shift = {}
        for m, e in entries.items():
            d = np.asarray(e["d"][key] if key else e["d"], dtype=np.float64)
            f = np.asarray(e["floor"], dtype=np.float64)
            ok = np.isfinite(d) & np.isfinite(f)
            fo = float(f[np.isfinite(f)].mean())
            s, f = 1.0 - d[ok] * (1.0 - fo), f[ok]
            delta = (1.0 - self.threshold * (1.0 - f.mean())) - s.mean()
            self.shift[m] = float(delta)
            self.pairs.append((s + delta, f))

    def draw(self, rng, n, r=0):
        s, f = self.pairs[self.method_of(r)]
        i = rng.integers(0, len(s), n)
        return s[i], f[i]

    @staticmethod
    def _d(sample, k):
        s, f = sample[0][:k], sample[1][:k]
        return (1.0 - s) / (1.0 - f.mean()), f

    def terms(self, sample, k=None):
        d, f = self._d(sample, k)
        return floor_terms(d, f)

    def known(self, sample, k=None):
        return self._d(sample, k)[0]

    def check(self, sample, k=None, known=False) -> Check:
        """As randomization._drop_checks builds it: the terms, >=, and the range of a term given the floor."""
        fl = float(sample[1][:k].mean())
        lo, hi = -2.0 * (1.0 + fl) / (1.0 - fl) ** 2, 4.0 / (1.0 - fl)
        return Check(self.name, self.known(sample, k) if known else self.terms(sample, k), self.threshold,
                     strict=False, lo=lo, hi=hi)

    def info(self) -> dict:
        return {**super().info(), "images": {m: len(p[0]) for m, p in zip(self.methods, self.pairs)},
                "s_shift": self.shift}


def distributions(terms: dict) -> dict[str, Dist]:
    out: dict[str, Dist] = {name: Shape(name, draw) for name, draw in SHAPES.items()}
    cr = terms["criteria"]
    for crit in CRITERIA:
        c = cr[crit]
        if crit == "randomization":
            for key, label in (("head", "head stage"), ("all", "all layers")):
                out[f"randomization ({label})"] = FloorTable(f"randomization ({label})", c["thresholds"][key],
                                                             c["methods"], key)
        elif crit == "label_randomization":
            out[crit] = FloorTable(crit, c["threshold"], c["methods"])
        else:
            out[crit] = Table(crit, c["threshold"], c["strict"], {m: e["values"] for m, e in c["methods"].items()})
    return out


# ---------------------------------------------------------------------------------------------------------------
# the rules


def wilson(k: int, n: int, z: float = 1.959963984540054) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [0.0 if k == 0 else max(0.0, mid - half), 1.0 if k == n else min(1.0, mid + half)]


def fixed_pass(values, threshold, strict, resamples, seed) -> bool:
    b = bootstrap_mean(values, alpha=ALPHA, resamples=resamples, method="BCa", seed=seed)
    try:
        return clears(b.lo, threshold, strict=strict)
    except DegenerateBound:  # no bound (one finite value): no verdict, so no pass
        return False


def seq_config(rule: str, futility: float = 0.0):
    return SimpleNamespace(sequential_batch=BATCH, sequential_rule=rule, sequential_futility=futility)


def sequential(dist: Dist, sample, n_max: int, rule: str, futility: float = 0.0, known: bool = False):
    """The product's sequential audit of ``sample`` (run_looks with the criterion's Check at every look)."""
    if dist.floor:
        def look(k):
            return [dist.check(sample, k, known)], True
    else:
        def look(k):
            return [dist.check(sample, k)], True
    return run_looks(seq_config(rule, futility), ALPHA, n_max, look)


def betting_fast(dist: Dist, x, n_max: int) -> tuple[str, int]:
    """The betting rule on values of a fixed range, from one pass of the product's bounds over the whole
    sequence: lower_bounds(x)[k - 1] is the bound the look at k computes on x[:k] (the bets are predictable,
    the bound a running maximum), so the looks are read off it."""
    c = dist.check(x)
    lower = lower_bounds(x, ALPHA, c.lo, c.hi)
    upper = upper_bounds(x, ALPHA, c.lo, c.hi)
    for k in sizes(n_max, BATCH):
        if clears(lower[k - 1], c.threshold, strict=c.strict):
            return "pass", k
        if not clears(upper[k - 1], c.threshold, strict=c.strict):
            return "fail", k
    return "", n_max


def rate_entry(k: int, n: int) -> dict:
    return {"wrong_passes": k, "audits": n, "rate": k / n if n else None, "wilson": wilson(k, n),
            "above_alpha": bool(wilson(k, n)[0] > ALPHA)}


# ---------------------------------------------------------------------------------------------------------------
# cells: each a pure function of (distribution, rule, size, audits) with its own seed


def cell_fixed(dist: Dist, n: int, audits: int, resamples: int = RESAMPLES, tag: str = "") -> list[dict]:
    t0 = time.perf_counter()
    rng = np.random.default_rng(stable_seed(SEED, "fixed", dist.name, n, tag))
    k = known = 0
    per: dict = {m: [0, 0, 0] for m in dist.methods}  # wrong passes, audits, (old rule's wrong passes)
    for r in range(audits):
        sample = dist.draw(rng, n, r)
        m = dist.methods[dist.method_of(r)]
        ok = fixed_pass(dist.terms(sample), dist.threshold, dist.strict, resamples, r)
        k += ok
        per[m][0] += ok
        per[m][1] += 1
        if dist.floor:
            ko = fixed_pass(dist.known(sample), dist.threshold, dist.strict, resamples, r)
            known += ko
            per[m][2] += ko
    sec = time.perf_counter() - t0
    base = {"distribution": dist.name, "n": n, "resamples": resamples, "seconds": sec}
    out = [{**base, "rule": "fixed", **rate_entry(k, audits),
            "per_method": {m: v[:2] for m, v in per.items()} if len(per) > 1 else None}]
    if dist.floor:
        out.append({**base, "rule": "fixed, floor as known", **rate_entry(known, audits), "same_draws_as": "fixed",
                    "per_method": {m: [v[2], v[1]] for m, v in per.items()}})
    return out


def cell_obf(dist: Dist, n: int, audits: int, validate: int = 0, seed_tag: str = "") -> list[dict]:
    """obf without and with futility (and, for the floor criteria, the floor as known) on the same draws."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(stable_seed(SEED, "obf", dist.name, n, *([seed_tag] if seed_tag else [])))
    rules = {"obf": (0.0, False), "obf + futility": (FUTILITY, False)}
    if dist.floor:
        rules["obf, floor as known"] = (0.0, True)
    k = {r: 0 for r in rules}
    used = {r: 0 for r in rules}
    per = {r: {m: [0, 0] for m in dist.methods} for r in rules}
    checked = mismatched = 0
    for a in range(audits):
        sample = dist.draw(rng, n, a)
        m = dist.methods[dist.method_of(a)]
        for rule, (fut, known) in rules.items():
            n_used, looks = sequential(dist, sample, n, "obf", fut, known)
            ok = looks.stopped == "pass"
            k[rule] += ok
            used[rule] += n_used
            per[rule][m][0] += ok
            per[rule][m][1] += 1
            if a < validate and not dist.floor:  # sequential.decide on values - threshold: the same verdict
                d = decide(sample - dist.threshold, n, ALPHA, batch=BATCH, rule="obf", futility=fut)
                checked += 1
                mismatched += (d.stopped, d.looks[-1]["n"]) != (looks.stopped, n_used)
    sec = time.perf_counter() - t0
    out = []
    for rule in rules:
        out.append({"distribution": dist.name, "rule": rule, "n": n, **rate_entry(k[rule], audits),
                    "mean_images": used[rule] / audits, "seconds": sec / len(rules),
                    "per_method": per[rule] if len(dist.methods) > 1 else None})
    if checked:
        out[0]["validated_against_decide"] = {"audits": checked, "mismatches": mismatched}
    return out


def cell_betting(dist: Dist, n: int, audits: int, validate: int = 0) -> list[dict]:
    t0 = time.perf_counter()
    rng = np.random.default_rng(stable_seed(SEED, "betting", dist.name, n))
    k = used = checked = mismatched = 0
    per = {m: [0, 0] for m in dist.methods}
    for a in range(audits):
        sample = dist.draw(rng, n, a)
        m = dist.methods[dist.method_of(a)]
        if dist.floor:  # the floor moves with every look, so every look's terms and bets are new
            n_used, looks = sequential(dist, sample, n, "betting")
            stopped = looks.stopped
        else:
            stopped, n_used = betting_fast(dist, sample, n)
            if a < validate:
                n2, looks = sequential(dist, sample, n, "betting")
                checked += 1
                mismatched += (looks.stopped, n2) != (stopped, n_used)
        ok = stopped == "pass"
        k += ok
        used += n_used
        per[m][0] += ok
        per[m][1] += 1
    entry = {"distribution": dist.name, "rule": "betting", "n": n, **rate_entry(k, audits),
             "mean_images": used / audits, "seconds": time.perf_counter() - t0,
             "per_method": per if len(dist.methods) > 1 else None}
    if checked:
        entry["validated_against_run_looks"] = {"audits": checked, "mismatches": mismatched}
    return [entry]


def cell_resamples(dist: Dist, n: int, audits: int) -> list[dict]:
    """The fixed-n rule with RESAMPLES and with the product's default PRODUCT_RESAMPLES on the same draws
    and seeds."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(stable_seed(SEED, "resamples", dist.name, n))
    a = b = differ = 0
    for r in range(audits):
        x = dist.terms(dist.draw(rng, n, r))
        pa = fixed_pass(x, dist.threshold, dist.strict, RESAMPLES, r)
        pb = fixed_pass(x, dist.threshold, dist.strict, PRODUCT_RESAMPLES, r)
        a, b, differ = a + pa, b + pb, differ + (pa != pb)
    return [{"distribution": dist.name, "rule": "fixed", "n": n, "audits": audits,
             f"rate_{RESAMPLES}": a / audits, f"wilson_{RESAMPLES}": wilson(a, audits),
             f"rate_{PRODUCT_RESAMPLES}": b / audits, f"wilson_{PRODUCT_RESAMPLES}": wilson(b, audits),
             "verdicts_that_differ": differ, "seconds": time.perf_counter() - t0}]


def gate(dists: dict, terms: dict) -> list[tuple[Dist, int, int, str]]:
    """The demo's 72 verdicts: (distribution, method index, images, method); a randomization verdict is its
    binding check at the threshold with the other check certain to pass (the least favourable case of an
    intersection-union test, whose p is the larger of the two)."""
    out = []
    for crit in CRITERIA:
        for i, (m, e) in enumerate(terms["criteria"][crit]["methods"].items()):
            if crit == "randomization":
                d = dists["randomization (head stage)" if e["binding"] == "head" else "randomization (all layers)"]
                n = len(e["floor"])
            elif crit == "label_randomization":
                d, n = dists[crit], len(e["floor"])
            else:
                d, n = dists[crit], len(e["values"])
            out.append((d, d.methods.index(m), n, f"{crit}[{m}]"))
    return out


def cell_holm_fixed(verdicts, audits: int, resamples: int, validate: int = 0) -> list[dict]:
    """Holm over the gate, fixed n.  A verdict whose bound at alpha = 0.05 does not clear its threshold has
    p > 0.05 (pass_p_value is the smallest level at which that bound clears), and under Holm at family alpha
    0.05 such a p never passes and never moves another verdict's level (it ranks after every p <= 0.05), so
    its p is set to 1 instead of bisected; ``validate`` audits compute all 72 p-values and check the decision."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(stable_seed(SEED, "holm-fixed", len(verdicts)))
    fam = {"holm": 0, "bonferroni": 0, "none": 0}
    checked = mismatched = 0
    for a in range(audits):
        ps, alone = [], 0
        full = []
        for j, (d, i, n, _) in enumerate(verdicts):
            x = d.terms(d.draw(rng, n, i))
            seed = a * 1000 + j
            ok = fixed_pass(x, d.threshold, d.strict, resamples, seed)
            alone += ok
            ps.append(pass_p_value(x, d.threshold, strict=d.strict, resamples=resamples, seed=seed) if ok else 1.0)
            if a < validate:
                full.append(pass_p_value(x, d.threshold, strict=d.strict, resamples=resamples, seed=seed))
        fam["none"] += alone > 0
        for how in ("holm", "bonferroni"):
            fam[how] += any(v["passes"] for v in multiplicity.decide(ps, ALPHA, how))
        if full:
            checked += 1
            mismatched += ([v["passes"] for v in multiplicity.decide(full, ALPHA, "holm")]
                           != [v["passes"] for v in multiplicity.decide(ps, ALPHA, "holm")])
    sec = time.perf_counter() - t0
    return [{"rule": "fixed", "verdicts": len(verdicts), "resamples": resamples, "seconds": sec,
             "family": {how: rate_entry(k, audits) for how, k in fam.items()},
             "validated_full_p_values": {"audits": checked, "mismatches": mismatched}}]


def cell_holm_sequential(verdicts, audits: int, rule: str, futility: float) -> list[dict]:
    t0 = time.perf_counter()
    rng = np.random.default_rng(stable_seed(SEED, "holm-seq", rule, futility, len(verdicts)))
    fam = {"holm": 0, "bonferroni": 0, "none": 0}
    for _ in range(audits):
        ps, alone = [], 0
        for d, i, n, _ in verdicts:
            _, looks = sequential(d, d.draw(rng, n, i), n, rule, futility)
            alone += looks.stopped == "pass"
            ps.append(looks.p_value())
        fam["none"] += alone > 0
        for how in ("holm", "bonferroni"):
            fam[how] += any(v["passes"] for v in multiplicity.decide(ps, ALPHA, how))
    return [{"rule": rule + (" + futility" if futility else ""), "verdicts": len(verdicts),
             "seconds": time.perf_counter() - t0, "family": {how: rate_entry(k, audits) for how, k in fam.items()}}]


def only(dist: Dist, method: str) -> Dist:
    """``dist`` restricted to one method's terms (every audit draws from that method)."""
    import copy

    i = dist.methods.index(method)
    one = copy.copy(dist)
    one.methods = [method]
    if isinstance(dist, FloorTable):
        one.pairs = [dist.pairs[i]]
    elif isinstance(dist, Table):
        one.tables = [dist.tables[i]]
    return one


CONFIRM_AUDITS = {"fixed": 2000, "sequential": 2000, "sequential_2000": 800}
QUICK_CONFIRM = {"fixed": 40, "sequential": 20, "sequential_2000": 2}


def confirmations(results: dict, dists: dict, plan: dict = CONFIRM_AUDITS) -> list[dict]:
    """Fresh draws (their own seeds) for every flagged cell of the product's rules: a whole row whose interval
    lay above alpha with fewer than 2,000 audits, and every single method whose own count (a row's per_method)
    had its interval above alpha.  Fixed cells use ``fixed`` audits, obf cells ``sequential`` (at N = 2,000
    ``sequential_2000``)."""
    todo = []
    index = {(r["distribution"], r["rule"], r["n"]): r for r in results["fixed"] + results["sequential"]}
    for row in results["fixed"] + results["sequential"]:
        rule = row["rule"]
        if "floor as known" in rule or rule == "betting":
            continue
        d = dists[row["distribution"]]
        if row["above_alpha"] and row["audits"] < 2000:
            todo.append((d, None, rule, row["n"]))
        for m, (k, a) in (row.get("per_method") or {}).items():
            if wilson(k, a)[0] > ALPHA:
                todo.append((only(d, m), m, rule, row["n"]))
    out, seen = [], set()
    for d, m, rule, n in todo:
        key = (d.name, m, "obf" if rule.startswith("obf") else rule, n)
        if key in seen:
            continue
        seen.add(key)
        if rule == "fixed":
            rows = cell_fixed(d, n, plan["fixed"], tag=f"confirm-{m}")
        else:
            rows = cell_obf(d, n, plan["sequential_2000"] if n >= 2000 else plan["sequential"], seed_tag=f"confirm-{m}")
        for r in rows:
            if "floor as known" in r["rule"]:
                continue
            first = index.get((d.name, r["rule"], n), {})
            k, a = (first.get("wrong_passes"), first.get("audits")) if m is None else \
                (first.get("per_method") or {}).get(m, (None, None))
            r["method"] = m
            r["first_run"] = {"wrong_passes": k, "audits": a, "rate": k / a if a else None}
            r.pop("per_method", None)
            out.append(r)
            print(f"confirm: {d.name} [{m or 'all methods'}] {r['rule']} n {n}: {r['rate']:.3f} "
                  f"[{r['wilson'][0]:.3f}, {r['wilson'][1]:.3f}] of {r['audits']}", flush=True)
    return out


def long_lower_tails(dists: dict, audits: int = 2000, sizes_=(8, 16, 24, 48), skew: float = -0.4) -> list[dict]:
    """The fixed-n rule on every single demo method whose per-image terms (floor terms for the floor
    criteria) have a sample skewness of ``skew`` or below: long lower tails are where a bound on a mean is
    optimistic, and a criterion's row averages them away over its 8 methods."""
    from scipy import stats as st

    out = []
    for name, d in dists.items():
        if not isinstance(d, (Table, FloorTable)):
            continue
        for m in d.methods:
            one = only(d, m)
            g = float(st.skew(one.terms(one.draw(np.random.default_rng(0), 4000, 0))))
            if g > skew:
                continue
            for n in sizes_:
                r = cell_fixed(one, n, audits, tag="long-lower-tail")[0]
                r.pop("per_method", None)
                out.append({**r, "method": m, "skewness": g})
                print(f"long lower tail: {name} [{m}] skew {g:+.2f} n {n}: {r['rate']:.3f} "
                      f"[{r['wilson'][0]:.3f}, {r['wilson'][1]:.3f}]", flush=True)
    return out


# ---------------------------------------------------------------------------------------------------------------


def code_hash(path: Path) -> str:
    """sha256 (first 12 hex digits) of a module's code: its syntax tree without docstrings and without import
    statements (``import`` / ``from ... import``, anywhere), so a change of wording or comments, or a move of the
    module that changes its imports' paths, keeps the study current and any change of what runs does not."""
    import ast
    import hashlib

    class _NoImports(ast.NodeTransformer):
        def visit_Import(self, node):
            return None

        visit_ImportFrom = visit_Import

    tree = _NoImports().visit(ast.parse(path.read_text(encoding="utf-8")))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:]
        if isinstance(body, list) and not node.body:
            node.body = [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def source_hashes() -> dict:
    """:func:`code_hash` of the product modules whose rules are measured, and the commit: the study measures
    the code as it was when the run started (a working tree may be ahead of the commit)."""
    import subprocess

    import saliency_audit

    root = Path(saliency_audit.__file__).resolve().parent
    out = {name: code_hash(root / name) for name in SOURCES}
    try:
        out["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                       text=True, check=True).stdout.strip()
        out["modified_since_commit"] = bool(subprocess.run(
            ["git", "status", "--porcelain", "--", *SOURCES], cwd=root, capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def jobs(dists: dict, plan: dict, terms: dict) -> list[tuple]:
    out = []
    for name, d in dists.items():
        for n, a in plan["fixed"].items():
            out.append(("fixed", cell_fixed, (d, n, a)))
        for n, a in plan["obf"].items():
            out.append(("sequential", cell_obf, (d, n, a, plan["validate"])))
        for n, a in (plan["betting_floor"] if d.floor else plan["betting"]).items():
            v = plan["validate"] if n <= 200 else (1 if name == "normal" else 0)
            out.append(("sequential", cell_betting, (d, n, a, v)))
    checks = [("normal", 8), ("heavy-tailed (t, 3 df)", 16), ("left-skewed (-lognormal)", 24),
              ("randomization (head stage)", 24), ("pointing", 48)]
    for name, n in checks:
        if name in dists:
            out.append(("resamples_check", cell_resamples, (dists[name], n, plan["resamples_check"])))
    verdicts = gate(dists, terms)
    out.append(("holm", cell_holm_fixed, (verdicts, plan["holm"], plan["holm_resamples"], plan["holm_validate"])))
    out.append(("holm", cell_holm_sequential, (verdicts, plan["holm_sequential"], "obf", FUTILITY)))
    out.append(("holm", cell_holm_sequential, (verdicts, plan["holm_sequential"], "betting", 0.0)))
    return out


def _run(job):
    section, fn, args = job
    return section, fn(*args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (a few audits per cell); writes nothing "
                                                         "unless --out is given")
    ap.add_argument("--from-evidence", type=Path, help="re-extract benchmarks/results/demo_terms.json from a fixed-n "
                                                       "demo audit's evidence.json first")
    ap.add_argument("--workers", type=int, default=1, help="processes (1 or 2)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--confirm", action="store_true", help="only redo the follow-ups of an existing error_rates.json "
                                                           "(flagged cells on fresh draws, long lower tails) and "
                                                           "store them in it")
    args = ap.parse_args(argv)
    if args.from_evidence:
        TERMS.write_text(json.dumps(extract(args.from_evidence), indent=1) + "\n")
        print(f"wrote {TERMS}", flush=True)
    terms = json.loads(TERMS.read_text())
    plan = QUICK if args.quick else FULL
    out_path = args.out if args.out else (None if args.quick else OUT)
    dists = distributions(terms)
    if args.confirm:
        path = args.out or OUT
        stored = json.loads(Path(path).read_text())
        t0 = time.perf_counter()
        stored["confirmation"] = confirmations(stored, dists, QUICK_CONFIRM if args.quick else CONFIRM_AUDITS)
        stored["long_lower_tails"] = long_lower_tails(dists, 40 if args.quick else 2000)
        stored["confirmation_sources"] = source_hashes()
        stored["confirmation_seconds"] = time.perf_counter() - t0
        Path(path).write_text(json.dumps(stored, indent=1) + "\n")
        print(f"wrote {path} ({stored['confirmation_seconds']:.0f} s)", flush=True)
        return 0
    hashes = source_hashes()
    todo = jobs(dists, plan, terms)
    t0 = time.perf_counter()
    results: dict = {"fixed": [], "sequential": [], "resamples_check": [], "holm": []}

    def record(section, rows):
        results[section] += rows
        for row in rows:
            short = {k: row[k] for k in ("distribution", "rule", "n", "rate", "wilson", "audits", "seconds",
                                         "family", "verdicts_that_differ", f"rate_{PRODUCT_RESAMPLES}")
                     if k in row}
            print(f"[{time.perf_counter() - t0:6.0f} s] {section}: {short}", flush=True)

    if args.workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(min(args.workers, 2)) as pool:
            for section, rows in pool.imap_unordered(_run, sorted(todo, key=lambda j: j[1] is cell_fixed)):
                record(section, rows)
    else:
        for job in todo:
            record(*_run(job))
    total = time.perf_counter() - t0
    order = {name: i for i, name in enumerate(dists)}
    for section in ("fixed", "sequential", "resamples_check"):
        results[section].sort(key=lambda r: (order[r["distribution"]], r["rule"], r["n"]))
    above = [f"{r['distribution']} / {r['rule']} / n {r['n']}: {r['rate']:.3f} "
             f"[{r['wilson'][0]:.3f}, {r['wilson'][1]:.3f}]"
             for r in results["fixed"] + results["sequential"] if r["above_alpha"]]
    out = {"alpha": ALPHA, "seed": SEED, "quick": args.quick, "workers": min(max(args.workers, 1), 2),
           "total_seconds": total, "threads_per_process": os.environ.get("OMP_NUM_THREADS"),
           "sources": hashes,
           "sources_changed_during_run": any(source_hashes()[k] != hashes[k] for k in SOURCES),
           "settings": {"resamples": RESAMPLES, "product_default_resamples": PRODUCT_RESAMPLES,
                        "holm_resamples": plan["holm_resamples"], "bootstrap_method": "BCa", "batch": BATCH,
                        "futility": FUTILITY, "fixed_sizes": list(plan["fixed"]),
                        "sequential_sizes": sorted(set(plan["obf"]) | set(plan["betting"])),
                        "audits": {k: (v if isinstance(v, int) else {str(n): a for n, a in v.items()})
                                   for k, v in plan.items()},
                        "interval": "Wilson score, 95 %",
                        "demo_terms": str(TERMS.relative_to(HERE.parent)), "demo_source": terms.get("source"),
                        "notes": [
                            "a cell's audits cycle through the criterion's 8 methods (audit r: method r mod 8)",
                            "betting at 2,000 planned images is not run for the floor criteria: every look "
                            "recomputes the floor and with it every bet (about 14 s per audit)",
                            "the Holm gate sets p = 1 for a verdict whose bound at 0.05 does not clear (its p is "
                            "above 0.05, where it changes no Holm decision); validated_full_p_values checks it",
                        ]},
           "distributions": {name: {"kind": type(d).__name__, **d.info()} for name, d in dists.items()},
           "above_alpha": above, **results}
    print(f"total {total:.0f} s; cells whose interval lies above {ALPHA}: {above or 'none'}", flush=True)
    t1 = time.perf_counter()
    out["confirmation"] = confirmations(results, dists, QUICK_CONFIRM if args.quick else CONFIRM_AUDITS)
    out["long_lower_tails"] = long_lower_tails(dists, 40 if args.quick else 2000)
    out["confirmation_sources"] = source_hashes()
    out["confirmation_seconds"] = time.perf_counter() - t1
    if out_path:
        Path(out_path).write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {out_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
