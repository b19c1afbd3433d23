"""Spearman, HOG similarity and SSIM: the three similarity measures of Adebayo et al. (2018)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import gaussian_filter

from saliency_audit.common.errors import AuditInputError
from saliency_audit.metrics import hog_similarity, spearman, ssim

MEASURES = {"spearman": spearman, "hog": hog_similarity, "ssim": ssim}


def _smooth(seed, shape=(64, 64), sigma=1.5):
    """A smooth-ish random map in [0, 1], like a postprocessed saliency map."""
    m = gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return (m - m.min()) / (m.max() - m.min())


def _rescale(m):
    return (m - m.min()) / (m.max() - m.min())


@pytest.mark.parametrize("name", list(MEASURES))
def test_identity_is_one_and_independent_maps_are_near_zero(name):
    f = MEASURES[name]
    a = _smooth(0)
    assert f(a, a) == pytest.approx(1.0)
    unrelated = [f(_smooth(2 * s + 1), _smooth(2 * s + 2)) for s in range(8)]
    assert abs(np.mean(unrelated)) < 0.1
    assert max(abs(u) for u in unrelated) < 0.2


@pytest.mark.parametrize("name", list(MEASURES))
def test_blurred_map_scores_between_unrelated_and_identical(name):
    f = MEASURES[name]
    a = _smooth(3)
    blurred = f(a, _rescale(gaussian_filter(a, 2.0)))
    assert f(a, _smooth(4)) + 0.2 < blurred < 0.99


def test_spearman_is_rank_based():
    a = _smooth(5)
    assert spearman(a, np.exp(3 * a)) == pytest.approx(1.0)  # monotone, far from linear
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, 1.0 - a**3) == pytest.approx(-1.0)


def test_hog_similarity_drops_when_structures_move():
    a = _smooth(6)
    shifted = [hog_similarity(a, np.roll(a, k, axis=1)) for k in (1, 3, 5)]
    assert 1.0 - 1e-9 > shifted[0] > shifted[1] > shifted[2]
    assert shifted[1] < 0.9


def test_constant_maps_are_nan_not_a_score():
    a, flat = _smooth(7), np.full((64, 64), 0.3)
    assert np.isnan(spearman(a, flat)) and np.isnan(spearman(flat, flat))
    assert np.isnan(hog_similarity(flat, a)) and np.isnan(hog_similarity(flat, flat))


def test_small_maps():
    a, b = _smooth(8, (12, 20)), _smooth(9, (12, 20))
    assert hog_similarity(a, a) == pytest.approx(1.0)  # one cell high: 1x2-cell blocks
    assert -1.0 <= hog_similarity(a, b) <= 1.0
    with pytest.raises(ValueError, match="smaller than one cell"):
        hog_similarity(a[:6], b[:6])
    assert hog_similarity(a[:6], a[:6], pixels_per_cell=(4, 4)) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["spearman", "hog"])
def test_bad_inputs_get_one_line_errors(name):
    f = MEASURES[name]
    a = _smooth(10)
    with pytest.raises(AuditInputError, match="one size") as err:
        f(a, a[:, :32])
    assert "\n" not in str(err.value)
    with pytest.raises(AuditInputError, match="one size"):
        f(a.ravel(), a.ravel())
    for bad in (np.nan, np.inf):
        b = a.copy()
        b[3, 3] = bad
        with pytest.raises(AuditInputError, match="NaN or infinite"):
            f(a, b)


TRANSFORMS = {"exp": np.exp, "square": np.square, "affine": lambda x: 3.0 * x + 7.0, "log1p": np.log1p}
# a grid of values: a strictly monotone map of nearly equal floats can round two values into a tie
GRID = arrays(np.int64, (12, 12), elements=st.integers(0, 1000)).map(lambda a: a / 1000.0)


@settings(max_examples=40, deadline=None)
@given(GRID, GRID, st.sampled_from(list(TRANSFORMS)))
def test_spearman_is_invariant_to_strictly_monotone_transforms(a, b, transform):
    f = TRANSFORMS[transform]
    ref = spearman(a, b)
    if np.isnan(ref):  # a constant map: undefined before and after
        assert np.isnan(spearman(f(a), b))
        return
    assert spearman(f(a), b) == pytest.approx(ref, abs=1e-12)
    assert spearman(a, f(b)) == pytest.approx(ref, abs=1e-12)
    assert spearman(-f(a), b) == pytest.approx(-ref, abs=1e-12)
    assert spearman(a, f(a)) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(GRID, GRID, st.floats(-5.0, 5.0))
def test_hog_similarity_is_symmetric_and_ignores_offsets(a, b, offset):
    ref = hog_similarity(a, b)
    if np.isnan(ref):
        return
    assert hog_similarity(b, a) == pytest.approx(ref, abs=1e-12)
    # HOG sees gradients only, so adding a constant changes nothing -- up to rounding: an offset of 4 on values
    # of order 1e-3 leaves gradients with ~1e-13 absolute error, which normalisation can amplify to ~1e-8
    assert hog_similarity(a + offset, b) == pytest.approx(ref, abs=1e-6)


# -- the fast paths the randomization cascade uses (issue 15): the same numbers as the libraries' own calls --
def _maps_for_features():
    rng = np.random.default_rng(0)
    smooth = _smooth(11, (112, 112))
    return {"smooth": smooth, "sparse": (rng.random((112, 112)) > 0.97).astype(float), "flat": np.zeros((112, 112)),
            "clipped": np.clip(3 * rng.random((64, 40)) - 1, 0, 1), "odd": rng.random((17, 33)), "tiny": smooth[:8, :24]}


@pytest.mark.parametrize("cell", [(8, 8), (4, 4), (3, 5)])
@pytest.mark.parametrize("name", list(_maps_for_features()))
def test_hog_features_are_skimage_hog(name, cell, monkeypatch):
    from skimage.feature import hog

    from saliency_audit.metrics import similarity as sim

    m = _maps_for_features()[name]
    cells = (m.shape[0] // cell[0], m.shape[1] // cell[1])
    ref = hog(m, pixels_per_cell=cell, cells_per_block=(min(3, cells[0]), min(3, cells[1])), feature_vector=True)
    np.testing.assert_allclose(sim.hog_features(m, pixels_per_cell=cell), ref, rtol=0, atol=1e-13)
    monkeypatch.setattr(sim, "_hog_histograms", None)  # without skimage's private histograms: skimage's hog itself
    np.testing.assert_array_equal(sim.hog_features(m, pixels_per_cell=cell), ref)


def test_hog_correlation_is_pearsons_r():
    from scipy.stats import pearsonr

    from saliency_audit.metrics import similarity as sim

    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.random(1296)
        b = 0.5 * a + rng.random(1296)
        assert sim.hog_correlation(a, b) == pytest.approx(pearsonr(a, b).statistic, abs=1e-14)



def test_similarities_are_remembered_by_content_and_equal_the_computation():
    """SSIM values, ranks and HOG descriptors are kept by the maps' bytes (the looks compare the same maps again):
    the same numbers as skimage and scipy compute, and a changed map is computed afresh."""
    from scipy.stats import rankdata
    from skimage.metrics import structural_similarity

    from saliency_audit.metrics import similarity as sim

    rng = np.random.default_rng(3)
    a, b = rng.random((32, 32)), rng.random((32, 32))
    want = float(structural_similarity(a, b, data_range=1.0, win_size=7))
    assert sim.ssim(a, b) == want and sim.ssim(a.copy(), b.copy()) == want
    rounded = b.astype(np.float32)  # other bytes: computed afresh
    assert sim.ssim(a, rounded) == float(structural_similarity(a, rounded.astype(np.float64), data_range=1.0,
                                                               win_size=7)) != want
    assert sim.ssim(b, a) == float(structural_similarity(b, a, data_range=1.0, win_size=7))
    assert sim.ssim(a, b, data_range=2.0) == float(structural_similarity(a, b, data_range=2.0, win_size=7))
    r = sim.ranks(a)
    assert np.array_equal(r, rankdata(a.ravel())) and sim.ranks(a.copy()) is r and not r.flags.writeable
    c = a.copy()
    c[0, 0] = 2.0
    assert np.array_equal(sim.ranks(c), rankdata(c.ravel()))
    h = sim.hog_features(a)
    assert sim.hog_features(a.copy()) is h and not h.flags.writeable
    assert not np.array_equal(sim.hog_features(c), h)
    assert not np.array_equal(sim.hog_features(a, pixels_per_cell=(4, 4)).shape, h.shape)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 300), elements=st.sampled_from([0.0, 0.5, 1.0, -2.0])
              | st.floats(-1e6, 1e6, allow_nan=False)))
def test_average_ranks_are_scipys_bit_for_bit(x):
    from scipy.stats import rankdata

    from saliency_audit.metrics.similarity import _average_ranks

    want = rankdata(x)
    got = _average_ranks(x)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_average_ranks_leave_nan_and_infinity_to_scipy():
    from scipy.stats import rankdata

    from saliency_audit.metrics.similarity import _average_ranks

    for x in (np.array([1.0, np.nan, 0.0]), np.array([np.inf, 0.0, -np.inf, 0.0]), np.array([])):
        np.testing.assert_array_equal(_average_ranks(x), rankdata(x))
