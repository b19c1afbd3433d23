import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from saliency_audit.common.errors import AuditInputError
from saliency_audit.metrics import average_precision, pr_auc_trapezoid, ssim


def _blob(shape=(32, 32), box=(8, 8, 15, 15)):
    m = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def test_perfect_map_has_ap_one():
    mask = _blob()
    assert average_precision(mask.astype(float), mask) == pytest.approx(1.0)
    assert pr_auc_trapezoid(mask.astype(float), mask) == pytest.approx(1.0)


def test_inverted_map_scores_below_prevalence_and_constant_map_scores_prevalence():
    mask = _blob()
    prevalence = mask.mean()
    assert average_precision(1.0 - mask, mask) == pytest.approx(prevalence)
    assert average_precision(np.zeros(mask.shape), mask) == pytest.approx(prevalence)


def test_noise_map_scores_near_prevalence():
    rng = np.random.default_rng(0)
    mask = _blob((64, 64), (10, 10, 29, 29))
    aps = [average_precision(rng.random(mask.shape), mask) for _ in range(20)]
    assert abs(np.mean(aps) - mask.mean()) < 0.03


def test_empty_mask_is_nan_not_a_hit():
    assert np.isnan(average_precision(np.random.rand(8, 8), np.zeros((8, 8), bool)))


def test_bad_inputs_get_one_line_errors():
    with pytest.raises(AuditInputError, match="does not match"):
        average_precision(np.zeros((8, 8)), np.ones((9, 8), bool), what="img1")
    bad = np.zeros((8, 8))
    bad[0, 0] = np.nan
    with pytest.raises(AuditInputError, match="NaN"):
        average_precision(bad, _blob((8, 8), (1, 1, 2, 2)))


@settings(max_examples=40, deadline=None)
@given(
    # a grid of values: strictly monotone maps of nearly equal floats can round to ties
    arrays(np.int64, (12, 12), elements=st.integers(0, 1000)).map(lambda a: a / 1000.0),
    arrays(np.bool_, (12, 12)),
    st.sampled_from(["exp", "square", "affine", "log1p"]),
)
def test_ap_is_invariant_to_monotone_transforms(saliency, mask, transform):
    if not mask.any():
        mask[3, 4] = True
    f = {"exp": np.exp, "square": np.square, "affine": lambda x: 3.0 * x + 7.0, "log1p": np.log1p}[transform]
    assert average_precision(f(saliency), mask) == pytest.approx(average_precision(saliency, mask), abs=1e-12)


def test_ssim_identity_and_unrelated():
    rng = np.random.default_rng(1)
    a = rng.random((64, 64))
    assert ssim(a, a) == pytest.approx(1.0)
    assert abs(ssim(a, rng.random((64, 64)))) < 0.1


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (12, 12), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0, 1)),
       arrays(np.bool_, (12, 12)))
def test_one_curve_gives_both_localisation_scores_exactly(saliency, mask):
    """utility scores AP and the trapezoid PR-AUC from one precision-recall curve: bit for bit scikit-learn's
    average_precision_score and auc of the curve (ties, an empty or full mask included)."""
    from saliency_audit.metrics.localisation import localisation_scores

    got = localisation_scores(saliency, mask)
    want = (average_precision(saliency, mask), pr_auc_trapezoid(saliency, mask))
    assert all(g == w or (np.isnan(g) and np.isnan(w)) for g, w in zip(got, want)), (got, want)


def test_scores_on_grid_are_remembered_by_content_and_resample_like_resize_map():
    from saliency_audit.metrics import localisation as L

    rng = np.random.default_rng(1)
    m, mask = rng.random((16, 16)).astype(np.float32), _blob((32, 32), (4, 4, 20, 12))
    want = L.localisation_scores(L.resize_map(m, mask.shape), mask)
    assert L.scores_on_grid(m, mask) == want
    assert L.scores_on_grid(m.copy(), mask.copy()) == want  # same content, another array: remembered
    other = m.copy()
    other[0, 0] += 0.5
    assert L.scores_on_grid(other, mask) == L.localisation_scores(L.resize_map(other, mask.shape), mask)
    with pytest.raises(AuditInputError):
        L.scores_on_grid(np.full((16, 16), np.nan, np.float32), mask)
