"""The Monte-Carlo guards of the verdict rules that ran in the test suite, run here instead.

    python benchmarks/bench_verdict_guards.py      # about 20 s on one core
    # writes benchmarks/results/verdict_guards.json

Each study is one that tests/ ran on every commit (same draws: same seeds, repetitions and sizes); the suite now
reads its stored counts and checks the same claims on them, and checks that they were measured on the rules in
this tree (the code hashes of :data:`SOURCES`, as for benchmarks/bench_error_rates.py).  A change to the code of
those files needs this rerun (and bench_error_rates.py's, which the suite asks for the same way).

* ``obf_wrong_pass`` (was tests/test_sequential.py::test_group_sequential_wrong_pass_rate): the shipped
  group-sequential rule (O'Brien-Fleming looks after every 8 images, futility) on normal values whose mean is
  on the threshold, 48 images, 2,000 audits; the fixed-n one-sided t-test's rate on the same draws beside it.
* ``futility[48]``, ``futility[24]`` (was test_futility_stops_only_turn_passes_into_fails_and_cost_little_power):
  at an effect the fixed-n t-test finds with 80 % power, 2,000 audits with and without futility on the same
  draws (passes with, without, with both); the images used on 500 clearly failing audits each way; the verdict
  of one audit at minus the effect.
* ``optional_stopping[NAME]`` (was test_wrong_pass_rate_under_optional_stopping[NAME]): the anytime-valid
  bounds (:func:`saliency_audit.stats.sequential.lower_bounds`) against a fixed-level percentile bootstrap
  looked at after every 8 of 48 images, 1,000 audits per distribution, mean on the threshold.
* ``noisy_floor`` (was tests/test_error_guarantees.py::test_a_noisy_floor_is_carried_by_the_randomization_bound):
  randomization's normalized drop on the threshold with a noisy floor, 800 audits of 24 images: the bound with
  the floor treated as known against the bound over the floor-carrying terms (:func:`saliency_audit.stats.floor_terms`).
* ``long_lower_tail`` (was test_a_long_lower_tail_is_guarded_by_the_skewness_corrected_bound): beta(5, 2) values
  centred on the threshold, 4,000 audits of 24 images: the t bound alone against the guarded bound
  (:func:`saliency_audit.stats.mean_lower`).
* ``stagewise_p`` (was tests/test_multiplicity.py::test_the_stagewise_p_value_is_valid_under_the_null): the
  sequential rule's p-value on 1,500 audits of 48 standard normal values.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results" / "verdict_guards.json"
SOURCES = ("stats/__init__.py", "stats/sequential.py", "stats/groupseq.py")  # the rules these studies measure
ALPHA = 0.05
OBF_REPS = 2000
OPTIONAL_REPS, LOOKS = 1000, (8, 16, 24, 32, 40, 48)

DISTRIBUTIONS = {
    "coin flips +-1": lambda rng, n: rng.choice([-1.0, 1.0], n),
    "uniform [-1, 1]": lambda rng, n: rng.uniform(-1, 1, n),
    "skewed (beta(2, 5), centred)": lambda rng, n: rng.beta(2, 5, n) - 2 / 7,
}


def _decide(x, n_max: int, futility: float):
    from saliency_audit.stats.sequential import decide

    return decide(x, n_max, ALPHA, futility=futility)


def obf_wrong_pass(futility: float) -> dict:
    from saliency_audit.stats.groupseq import t_critical

    rng, n = np.random.default_rng(20261201), 48
    seq = fixed = 0
    for _ in range(OBF_REPS):
        x = np.clip(rng.normal(0, 0.3, n), -1, 1)
        seq += _decide(x, n, futility).stopped == "pass"
        fixed += bool(x.mean() - t_critical(ALPHA, n) * x.std(ddof=1) / np.sqrt(n) > 0)
    return {"n": n, "reps": OBF_REPS, "sequential_passes": int(seq), "fixed_t_passes": int(fixed)}


def futility_study(n_max: int, futility: float) -> dict:
    from scipy import stats

    rng = np.random.default_rng(20261202)
    effect = (stats.norm.ppf(1 - ALPHA) + stats.norm.ppf(0.8)) * 0.3 / np.sqrt(n_max)
    with_f = without = both = 0
    for _ in range(OBF_REPS):
        x = rng.normal(effect, 0.3, n_max)
        a, b = _decide(x, n_max, futility).stopped == "pass", _decide(x, n_max, 0.0).stopped == "pass"
        with_f, without, both = with_f + a, without + b, both + (a and b)
    used = [_decide(rng.normal(-effect / 2, 0.3, n_max), n_max, futility).looks[-1]["n"] for _ in range(500)]
    used_without = [_decide(rng.normal(-effect / 2, 0.3, n_max), n_max, 0.0).looks[-1]["n"] for _ in range(500)]
    failing = _decide(rng.normal(-effect, 0.3, n_max), n_max, futility).stopped
    return {"n": n_max, "reps": OBF_REPS, "effect": float(effect), "passes_with_futility": int(with_f),
            "passes_without_futility": int(without), "passes_with_both": int(both),
            "mean_images_failing_with_futility": float(np.mean(used)),
            "mean_images_failing_without_futility": float(np.mean(used_without)),
            "verdict_at_minus_the_effect": failing}


def naive_bootstrap_lower(x: np.ndarray, rng, resamples: int = 400) -> float:
    """The fixed-level one-sided 95 % percentile bootstrap lower bound of the mean."""
    means = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    return float(np.quantile(means, ALPHA))


def optional_stopping(name: str) -> dict:
    from saliency_audit.stats.sequential import lower_bounds

    draw, rng = DISTRIBUTIONS[name], np.random.default_rng(20261201)
    sequential = naive = 0
    for _ in range(OPTIONAL_REPS):
        x = draw(rng, LOOKS[-1])
        sequential += bool((lower_bounds(x, ALPHA)[np.array(LOOKS) - 1] > 0).any())
        naive += any(naive_bootstrap_lower(x[:k], rng) > 0 for k in LOOKS)
    return {"reps": OPTIONAL_REPS, "looks": list(LOOKS), "anytime_passes": int(sequential),
            "naive_bootstrap_passes": int(naive)}


def noisy_floor() -> dict:
    from saliency_audit.stats import bootstrap_mean, floor_terms

    rng = np.random.default_rng(1)
    threshold, mean_floor, n, reps = 0.8, 0.3, 24, 800
    mean_s = 1 - threshold * (1 - mean_floor)
    old = new = 0
    for r in range(reps):
        f = np.clip(rng.normal(mean_floor, 0.25, n), -1, 1)
        s = np.clip(rng.normal(mean_s, 0.05, n), -1, 1)
        d = (1 - s) / (1 - f.mean())
        old += bool(bootstrap_mean(d, resamples=500, seed=r).lo >= threshold)
        new += bool(bootstrap_mean(floor_terms(d, f), resamples=500, seed=r).lo >= threshold)
    return {"n": n, "reps": reps, "floor_known_passes": old, "floor_carried_passes": new}


def long_lower_tail() -> dict:
    from scipy import special

    from saliency_audit.stats import mean_lower

    rng = np.random.default_rng(24)
    n, reps = 24, 4000
    crit = -float(special.stdtrit(n - 1, ALPHA))
    t_only = guarded = 0
    for _ in range(reps):
        x = rng.beta(5, 2, n) - 5 / 7
        t_only += bool(x.mean() - crit * x.std(ddof=1) / math.sqrt(n) > 0)
        guarded += bool(mean_lower(x, crit) > 0)
    return {"n": n, "reps": reps, "t_alone_passes": t_only, "guarded_passes": guarded}


def stagewise_p() -> dict:
    from saliency_audit.stats.sequential import decide

    rng = np.random.default_rng(1)
    ps = np.array([decide(rng.normal(0, 1, 48), 48, 0.05, batch=8).p_value() for _ in range(1500)])
    return {"n": 48, "reps": len(ps), "at_most": {str(u): int((ps <= u).sum()) for u in (0.01, 0.05, 0.5)}}


def code_hash_of(name: str) -> str:
    """The code hash of ``saliency_audit/NAME`` (benchmarks/bench_error_rates.py:code_hash: docstrings and imports
    left out)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from bench_error_rates import code_hash

    return code_hash(ROOT / "saliency_audit" / name)


def source_hashes() -> dict:
    return {name: code_hash_of(name) for name in SOURCES}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from saliency_audit import AuditConfig

    futility = AuditConfig().sequential_futility
    hashes, t0 = source_hashes(), time.perf_counter()
    studies = {"obf_wrong_pass": obf_wrong_pass(futility)}
    for n in (48, 24):
        studies[f"futility[{n}]"] = futility_study(n, futility)
    for name in DISTRIBUTIONS:
        studies[f"optional_stopping[{name}]"] = optional_stopping(name)
    studies["noisy_floor"] = noisy_floor()
    studies["long_lower_tail"] = long_lower_tail()
    studies["stagewise_p"] = stagewise_p()
    out = {"alpha": ALPHA, "futility": futility, "sources": hashes,
           "sources_changed_during_run": source_hashes() != hashes,
           "seconds": round(time.perf_counter() - t0, 1), "studies": studies}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
