"""Energy, focus and pointing: the scores on hand-built maps, and the verdicts against the prior."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saliency_audit.config import AuditConfig
from saliency_audit.criteria.interpretability import evaluate, prior_maps
from saliency_audit.common.errors import AuditInputError
from saliency_audit.metrics.interpretability import pointing_hit, proportional_energy, saliency_focus


def _box(shape, x0, y0, x1, y1):
    m = np.zeros(shape, bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def test_the_mask_itself_has_energy_and_focus_one():
    mask = _box((32, 32), 4, 6, 13, 20)
    assert proportional_energy(mask.astype(float), mask) == 1.0
    assert saliency_focus(mask.astype(float), mask) == 1.0


def test_half_overlapping_boxes_have_known_energy_and_focus():
    shape = (40, 40)
    lesion = _box(shape, 10, 10, 19, 19)  # 10 x 10
    saliency = _box(shape, 15, 10, 24, 19).astype(float)  # 10 x 10, half of it on the lesion
    assert proportional_energy(saliency, lesion) == pytest.approx(0.5)
    assert saliency_focus(saliency, lesion) == pytest.approx(0.5)
    wide = _box(shape, 15, 10, 34, 19).astype(float)  # 20 x 10: a quarter of it on the lesion
    assert proportional_energy(wide, lesion) == pytest.approx(0.25)
    assert saliency_focus(wide, lesion) == pytest.approx(0.5)  # focus ignores the mass outside the lesion


def test_pointing_hits_inside_and_misses_outside():
    lesion = _box((20, 20), 2, 2, 6, 6)
    inside, outside = np.zeros((20, 20)), np.zeros((20, 20))
    inside[4, 4], outside[15, 15] = 1.0, 1.0
    assert pointing_hit(inside, lesion) == 1.0
    assert pointing_hit(outside, lesion) == 0.0
    near = np.zeros((20, 20))
    near[4, 9] = 1.0  # three pixels right of the lesion
    assert pointing_hit(near, lesion) == 0.0
    assert pointing_hit(near, lesion, tolerance=3) == 1.0


def test_a_plateau_scores_its_expected_hit():
    lesion = _box((10, 10), 0, 0, 4, 9)  # left half
    plateau = np.zeros((10, 10))
    plateau[5, 3:7] = 1.0  # two maximal pixels inside, two outside
    assert pointing_hit(plateau, lesion) == 0.5


def test_empty_masks_never_count():
    empty = np.zeros((8, 8), bool)
    m = np.random.default_rng(0).random((8, 8))
    for fn in (proportional_energy, saliency_focus, pointing_hit):
        assert math.isnan(fn(m, empty))


def test_constant_maps_score_as_uniform():
    lesion = _box((10, 10), 0, 0, 4, 1)  # 10 of 100 pixels
    zero = np.zeros((10, 10))
    assert proportional_energy(zero, lesion) == pytest.approx(0.1)
    assert pointing_hit(zero, lesion) == pytest.approx(0.1)
    assert saliency_focus(zero, lesion) == 0.0


def test_bad_maps_are_one_line_errors():
    lesion = _box((10, 10), 0, 0, 4, 4)
    with pytest.raises(AuditInputError, match="image x: map of size"):
        proportional_energy(np.zeros((5, 5)), lesion, what="image x")
    bad = np.zeros((10, 10))
    bad[0, 0] = np.nan
    with pytest.raises(AuditInputError, match="NaN"):
        saliency_focus(bad, lesion)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_scores_stay_in_range_and_energy_is_scale_invariant(seed):
    rng = np.random.default_rng(seed)
    s = rng.random((12, 12))
    m = rng.random((12, 12)) < 0.3
    if not m.any():
        m[0, 0] = True
    for fn in (proportional_energy, saliency_focus, pointing_hit):
        assert 0.0 <= fn(s, m) <= 1.0
    assert proportional_energy(3 * s, m) == pytest.approx(proportional_energy(s, m))


def _world(n=24, size=32, seed=0):
    """Lesions at random places; maps that sit on them, away from them, and the prior."""
    rng = np.random.default_rng(seed)
    truths, on, off = [], [], []
    for _ in range(n):
        x, y = rng.integers(2, size - 10, 2)
        t = _box((size, size), x, y, x + 6, y + 6)
        truths.append(t)
        on.append(t * (0.5 + 0.5 * rng.random((size, size))))
        off.append(np.roll(t, size // 2, axis=(0, 1)) * rng.random((size, size)))
    prior = np.mean(truths, axis=0)
    return truths, np.stack(on), np.stack(off), prior


@pytest.mark.parametrize("criterion", ["energy", "focus", "pointing"])
def test_verdicts_against_the_prior(criterion):
    truths, on, off, prior = _world()
    kw = dict(ids=[f"i{k}" for k in range(len(truths))], truths=truths, constant=np.zeros(len(truths), bool),
              priors=[prior] * len(truths), prior_n=50, prior_kind="held-out", config=AuditConfig())
    good = evaluate(criterion, "on", maps=on, **kw)
    assert good.passed and good.bound > 0, good.explain()
    bad = evaluate(criterion, "off", maps=off, **kw)
    assert bad.verdict == "fail" and bad.value < 0, bad.explain()
    as_map = prior_maps([prior], AuditConfig())[0]  # postprocessed like every map
    itself = evaluate(criterion, "prior", maps=np.stack([as_map] * len(truths)), **kw)
    assert itself.verdict == "fail" and itself.value == pytest.approx(0.0)  # the prior never beats itself
    assert good.baseline["name"] == "average-mask prior" and good.baseline["kind"] == "held-out"
    assert len(good.per_image) == len(truths) and good.n == len(truths)


def test_focus_scores_the_prior_on_the_maps_scale():
    """An unscaled prior (max ~0.1) would lose to any map scaled to max 1; postprocessed, it does not."""
    truths, _, _, prior = _world()
    rng = np.random.default_rng(3)
    uniformish = np.stack([0.9 + 0.1 * rng.random(prior.shape) for _ in truths])  # high everywhere, postprocessed
    flat = prior_maps(list(uniformish), AuditConfig())
    r = evaluate("focus", "flat", ids=[f"i{k}" for k in range(len(truths))], truths=truths, maps=flat,
                 constant=np.zeros(len(truths), bool), priors=[prior] * len(truths), prior_n=50,
                 prior_kind="held-out", config=AuditConfig())
    assert r.verdict == "fail", r.explain()


def test_images_without_lesion_are_excluded_from_the_verdict():
    truths, on, _, prior = _world()
    truths[0] = np.zeros_like(truths[0])
    r = evaluate("pointing", "on", ids=[f"i{k}" for k in range(len(truths))], truths=truths, maps=on,
                 constant=np.zeros(len(truths), bool), priors=[prior] * len(truths), prior_n=5,
                 prior_kind="leave-one-out", config=AuditConfig())
    assert r.n == len(truths) - 1
    assert r.to_dict()["per_image"][0]["score"] is None  # NaN in the evidence: neither a hit nor a miss
