import numpy as np
import pytest

from saliency_audit.common.errors import AuditInputError
from saliency_audit.methods.postprocess import postprocess
from saliency_audit.stats import bootstrap_mean, stable_seed


def test_postprocess_is_per_map_not_per_batch():
    rng = np.random.default_rng(0)
    a = rng.random((1, 3, 16, 16))
    both, _ = postprocess(np.concatenate([a, 1000 * a]))
    alone, _ = postprocess(a)
    np.testing.assert_allclose(both[0], alone[0], atol=1e-6)
    np.testing.assert_allclose(both[1], alone[0], atol=1e-6)
    assert both.min() == 0.0 and both.max() == 1.0


def test_postprocess_abs_sums_channels_and_clips_99th_percentile():
    raw = np.zeros((1, 2, 10, 10))
    raw[0, 0] = np.arange(100).reshape(10, 10)
    raw[0, 1] = -np.arange(100).reshape(10, 10)  # abs-sum, not sum: must not cancel
    out, const = postprocess(raw)
    assert not const[0]
    assert out[0, 9, 9] == 1.0 and out[0, 9, 8] > 0.999  # at / just under the 99th percentile
    assert out[0, 0, 1] > 0


def test_constant_maps_are_flagged_and_sparse_maps_survive_the_clip():
    raw = np.zeros((2, 1, 20, 20))
    raw[1, 0, 3, 3] = 5.0  # one pixel in 400: below 1 %, percentile clipping would erase it
    out, const = postprocess(raw)
    assert const.tolist() == [True, False]
    assert out[0].max() == 0.0
    assert out[1, 3, 3] == 1.0 and out[1].sum() == 1.0


def test_postprocess_rejects_nan():
    raw = np.ones((1, 1, 4, 4))
    raw[0, 0, 0, 0] = np.nan
    with pytest.raises(AuditInputError, match="NaN"):
        postprocess(raw, what="grad maps")


def test_bootstrap_bound_is_reproducible_and_one_sided():
    x = np.random.default_rng(3).normal(0.2, 0.5, 60)
    a = bootstrap_mean(x, seed=7)
    b = bootstrap_mean(x, seed=7)
    assert a == b
    assert a.lo < a.mean < a.hi
    assert a.lo > 0  # mean 0.2, se ~0.065: the 95 % lower bound is positive
    z = bootstrap_mean(np.random.default_rng(4).normal(0.0, 0.5, 60), seed=7)
    assert z.lo < 0


def test_bootstrap_handles_degenerate_and_nan():
    b = bootstrap_mean(np.array([0.3, 0.3, np.nan]))
    assert (b.mean, b.lo, b.hi, b.n) == (0.3, 0.3, 0.3, 2)
    assert np.isnan(bootstrap_mean(np.array([np.nan])).mean)


def test_stable_seed_is_process_independent():
    assert stable_seed(0, "utility", "grad") == stable_seed(0, "utility", "grad")
    assert stable_seed(0, "utility", "grad") != stable_seed(1, "utility", "grad")
    assert stable_seed(0, "a") == 751133650  # crc32: fixed across Python processes and versions
