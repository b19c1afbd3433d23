"""Sequential verdicts keep their error rate under optional stopping; naive peeking does not.

The simulation: per-image statistics whose true mean sits exactly at the threshold (0), looked at after
every 8 images up to 48 (the audit's defaults), 1,000 repetitions per distribution.  A "wrong pass" is a
lower bound above 0 at any look.  At a true rate of 0.05 the Monte-Carlo standard error of the measured
rate is 0.007; the confidence sequence must stay at or below alpha = 0.05, while a fixed-level one-sided
95 % percentile bootstrap, looked at after every batch, must exceed it (this is why the rule exists).
"""
from __future__ import annotations

import numpy as np
import pytest

from saliency_audit.sequential import Looks, lower_bounds, sizes, upper_bounds

ALPHA, REPS, LOOKS = 0.05, 1000, (8, 16, 24, 32, 40, 48)

DISTRIBUTIONS = {
    "coin flips +-1": lambda rng, n: rng.choice([-1.0, 1.0], n),
    "uniform [-1, 1]": lambda rng, n: rng.uniform(-1, 1, n),
    "skewed (beta(2, 5), centred)": lambda rng, n: rng.beta(2, 5, n) - 2 / 7,
}


def naive_bootstrap_lower(x: np.ndarray, rng, resamples: int = 400) -> float:
    """The fixed-level one-sided 95 % percentile bootstrap lower bound of the mean."""
    means = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    return float(np.quantile(means, ALPHA))


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_wrong_pass_rate_under_optional_stopping(name):
    draw = DISTRIBUTIONS[name]
    rng = np.random.default_rng(20261201)
    sequential = naive = 0
    for _ in range(REPS):
        x = draw(rng, LOOKS[-1])
        sequential += bool((lower_bounds(x, ALPHA)[np.array(LOOKS) - 1] > 0).any())
        naive += any(naive_bootstrap_lower(x[:k], rng) > 0 for k in LOOKS)
    assert sequential / REPS <= ALPHA, f"{name}: sequential wrong-pass rate {sequential / REPS:.3f}"
    assert naive / REPS > ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / REPS), \
        f"{name}: naive peeking's rate {naive / REPS:.3f} does not show the inflation"


def test_bounds_are_monotone_nested_and_find_a_real_effect():
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0.4, 0.3, 48), -1, 1)
    lo, hi = lower_bounds(x, ALPHA), upper_bounds(x, ALPHA)
    assert (np.diff(lo) >= 0).all() and (np.diff(hi) <= 0).all() and (lo <= hi).all()
    assert lo[0] == -1 and lo[-1] > 0 and hi[-1] < 1
    looks = Looks(ALPHA, 0.0, 8)
    for k in sizes(48, 8):
        if looks.look(x[:k]):
            break
    assert looks.stopped == "pass" and looks.looks[-1]["n"] < 48  # decided before the end
    bad = Looks(ALPHA, 0.0, 8)
    for k in sizes(48, 8):
        if bad.look(-x[:k]):
            break
    assert bad.stopped == "fail"
    assert sizes(20, 8) == [8, 16, 20]
    with_nan = x.copy()
    with_nan[3] = np.nan
    assert np.isfinite(lower_bounds(with_nan, ALPHA)).all()


def test_localisation_criteria_record_their_looks_on_the_demo():
    """``--sequential`` on the demo: each look's bounds are in the evidence, the verdict follows the
    anytime-valid bound, and an undecided pair uses every image."""
    from saliency_audit import Audit, AuditConfig

    audit = Audit(model="demo", methods=["gradcam", "sg"], config=AuditConfig(sequential=True))
    strong, weak = audit.run("utility", "gradcam"), audit.run("utility", "sg")
    for r in (strong, weak):
        seq = r.details["sequential"]
        assert [look["n"] for look in seq["looks"]] == sizes(48, 8)[: len(seq["looks"])]
        assert r.bound == seq["looks"][-1]["lower"] and r.ci == [seq["looks"][-1]["lower"], seq["looks"][-1]["upper"]]
    assert strong.verdict == "pass" and strong.details["sequential"]["stopped"] == "pass"
    assert weak.verdict == "fail" and weak.details["sequential"]["n_used"] == 48
    fixed = Audit(model="demo", methods=["gradcam"]).run("utility", "gradcam")
    assert fixed.value == strong.value and "sequential" not in fixed.details
    pointing = audit.run("pointing", "gradcam")  # the interpretability criteria take the same rule
    assert pointing.details["sequential"]["alpha"] == audit.config.interpretability.alpha
    assert pointing.verdict == ("pass" if pointing.details["sequential"]["stopped"] == "pass" else "fail")


def test_image_passes_are_counted_per_result(tmp_path):
    """The deterministic cost figure: IG's 10 steps on 8 images, for the primary and its randomized copy,
    are 160 image-passes; the same result from the map cache costs none."""
    from saliency_audit import Audit, AuditConfig

    audit = Audit(model="demo", methods=["ig"], config=AuditConfig(n_images=8, cache_dir=str(tmp_path)))
    assert audit.run("utility", "ig").details["image_passes"] == 2 * 8 * 10
    assert audit.run("utility", "ig").details["image_passes"] == 0
    assert audit.evidence()["run"]["image_passes"] == 0  # the second result replaced the first
