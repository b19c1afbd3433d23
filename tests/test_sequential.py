"""Sequential verdicts keep their error rate under optional stopping; naive peeking does not.

The simulations (per-image statistics whose true mean sits exactly at the threshold, looked at after every 8
images up to 48 or 24, stopping at the first decision; a "wrong pass" is a pass at any look) run in
benchmarks/bench_verdict_guards.py, same draws as when they ran here; these tests check its stored counts
(tests/test_error_guarantees.py checks that they were measured on the rules in this tree):

* The group-sequential rule (``obf``, the default), 2,000 repetitions on normal values: at a true rate of
  0.05 the Monte-Carlo standard error is 0.0049, and the measured rate must stay within alpha + 2 standard
  errors (a guard; the calibration of every rule on every shape is benchmarks/bench_error_rates.py's).
* The anytime-valid bounds, 1,000 repetitions per shape: at or below alpha, distribution-free.
* A fixed-level one-sided 95 % percentile bootstrap, looked at after every batch, must exceed alpha by
  3 standard errors: this is why the rule exists.
"""
from __future__ import annotations

import numpy as np
import pytest

from saliency_audit.stats.groupseq import boundaries, spent
from saliency_audit.stats.sequential import Check, Looks, lower_bounds, sizes, upper_bounds
from tests.scripts import stored_result

ALPHA = 0.05
GUARDS = stored_result("verdict_guards")["studies"]  # benchmarks/bench_verdict_guards.py


def test_obrien_fleming_boundaries_match_the_published_values():
    """Lan-DeMets O'Brien-Fleming, 5 equally spaced looks, one-sided 0.025 (gsDesign / ldbounds)."""
    got = boundaries((0.2, 0.4, 0.6, 0.8, 1.0), 0.025)
    assert np.allclose(got, (4.877, 3.357, 2.680, 2.290, 2.031), atol=1e-3)
    assert spent(1.0, ALPHA) == pytest.approx(ALPHA) and spent(0.0, ALPHA) == 0.0
    assert boundaries((1.0,), ALPHA)[0] == pytest.approx(1.6449, abs=1e-4)  # one look: the fixed-n test
    assert boundaries((0.5, 1.0), ALPHA)[1] < boundaries((0.5, 1.0), ALPHA)[0]


def _se(reps: int) -> float:
    return float(np.sqrt(ALPHA * (1 - ALPHA) / reps))


def test_group_sequential_wrong_pass_rate():
    """A guard against a broken rule on the plainest shape; the wrong-pass rate of every rule, per criterion,
    shape and planned n, is benchmarks/bench_error_rates.py's (the calibration table of docs/ci-and-release.md)."""
    s = GUARDS["obf_wrong_pass"]
    rate = s["sequential_passes"] / s["reps"]
    assert s["n"] == 48 and s["reps"] == 2000
    assert rate <= ALPHA + 2 * _se(s["reps"]), f"normal, n 48: wrong-pass rate {rate:.4f}"


@pytest.mark.parametrize("n_max", [48, 24])
def test_futility_stops_only_turn_passes_into_fails_and_cost_little_power(n_max):
    """Futility is non-binding: on the same draws, every pass with it is a pass without it (so the wrong-pass
    rate cannot rise).  At an effect the fixed-n t-test finds with 80 % power it loses at most 4 points of
    power (benchmarks/results/sequential_error.json, other draws: 0.8 at 24 images, 2.4 at 48); on a pair that is
    clearly failing it saves a third of the images or more."""
    s = GUARDS[f"futility[{n_max}]"]
    with_f, without, reps = s["passes_with_futility"], s["passes_without_futility"], s["reps"]
    assert s["passes_with_both"] == with_f, "futility made a pass that the efficacy boundaries alone would not"
    assert (without - with_f) / reps <= 0.04, f"power {with_f / reps:.3f} vs {without / reps:.3f}"
    used, used_without = s["mean_images_failing_with_futility"], s["mean_images_failing_without_futility"]
    assert used <= 0.75 * used_without, (used, used_without)
    assert s["verdict_at_minus_the_effect"] in ("fail", "futility")


@pytest.mark.parametrize("name", ["coin flips +-1", "uniform [-1, 1]", "skewed (beta(2, 5), centred)"])
def test_wrong_pass_rate_under_optional_stopping(name):
    s = GUARDS[f"optional_stopping[{name}]"]
    reps = s["reps"]
    assert s["looks"] == [8, 16, 24, 32, 40, 48] and reps == 1000
    assert s["anytime_passes"] / reps <= ALPHA, f"{name}: sequential wrong-pass rate {s['anytime_passes'] / reps:.3f}"
    assert s["naive_bootstrap_passes"] / reps > ALPHA + 3 * _se(reps), \
        f"{name}: naive peeking's rate {s['naive_bootstrap_passes'] / reps:.3f} does not show the inflation"


def test_bounds_are_monotone_nested_and_find_a_real_effect():
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0.4, 0.3, 48), -1, 1)
    lo, hi = lower_bounds(x, ALPHA), upper_bounds(x, ALPHA)
    assert (np.diff(lo) >= 0).all() and (np.diff(hi) <= 0).all() and (lo <= hi).all()
    assert lo[0] == -1 and lo[-1] > 0 and hi[-1] < 1
    for rule in ("obf", "betting"):
        looks = Looks(ALPHA, 8, 48, rule)
        for k in sizes(48, 8):
            if looks.look([Check("mean", x[:k], 0.0)], final=k == 48):
                break
        assert looks.stopped == "pass" and looks.looks[-1]["n"] < 48  # decided before the end
        bad = Looks(ALPHA, 8, 48, rule)
        for k in sizes(48, 8):
            if bad.look([Check("mean", -x[:k], 0.0)], final=k == 48):
                break
        assert bad.stopped == "fail"
    both = Looks(ALPHA, 8, 48)  # a verdict of two conditions passes only when both clear
    assert not both.look([Check("a", x[:16], 0.0), Check("b", x[:16], 0.9, strict=False)]) or both.stopped == "fail"
    assert both.looks[-1]["checks"][1]["name"] == "b"
    assert sizes(20, 8) == [8, 16, 20]
    with_nan = x.copy()
    with_nan[3] = np.nan
    assert np.isfinite(lower_bounds(with_nan, ALPHA)).all()


def test_every_criterion_records_its_looks_on_the_demo():
    """``--sequential`` on the demo: every criterion looks at its images a batch at a time, each look's
    bounds are in the evidence, the verdict follows the rule, the result describes exactly the images
    used, and pairs stop early both ways."""
    from saliency_audit import Audit, AuditConfig
    from saliency_audit.common.criteria_registry import CRITERIA

    cfg = AuditConfig(sequential=True)
    cfg.completeness.fill = "mean"  # ROAD without the noisy linear imputation (40 % of this test's time): looks alike
    audit = Audit(model="demo", methods=["gradcam", "grad"], config=cfg)
    stopped = set()
    for criterion in CRITERIA:
        if audit.absent(criterion):  # human_benchmark: absent without --human-annotations
            continue
        for method in ("gradcam", "grad"):
            r = audit.run(criterion, method)
            seq = r.details["sequential"]
            plan = sizes(seq["n_max"], 8)
            assert [look["n"] for look in seq["looks"]] == plan[: len(seq["looks"])], (criterion, method)
            assert len(r.per_image) == seq["n_used"] == r.n, (criterion, method)
            last = seq["looks"][-1]["checks"]
            assert r.bound == next(c["lower"] for c in last if c["name"] == r.statistic), (criterion, method)
            assert r.verdict == ("pass" if seq["stopped"] == "pass" else "fail"), (criterion, method)
            assert "sequential (obf" in r.explanation
            if seq["n_used"] < seq["n_max"]:
                stopped.add(seq["stopped"])
    assert stopped == {"pass", "fail", "futility"}
    fixed = Audit(model="demo", methods=["gradcam"], config=AuditConfig(sequential=False)).run(
        "randomization", "gradcam")
    assert "sequential" not in fixed.details and fixed.n == audit.config.randomization.n_images


def test_image_passes_are_counted_per_result(tmp_path):
    """The deterministic cost figure: IG's 10 steps on 8 images, for the primary and its randomized copy,
    are 160 image-passes; the same result from the map cache costs none."""
    from saliency_audit import Audit, AuditConfig

    audit = Audit(model="demo", methods=["ig"], config=AuditConfig(n_images=8, cache_dir=str(tmp_path)))
    assert audit.run("utility", "ig").details["image_passes"] == 2 * 8 * 10
    assert audit.run("utility", "ig").details["image_passes"] == 0
    assert audit.evidence()["run"]["image_passes"] == 0  # the second result replaced the first
