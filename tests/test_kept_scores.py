"""The similarity scores the randomization and consistency criteria keep in the maps' cache folder: read back
equal to a computation, keyed by the maps' bytes, never written without a cache, recomputed over a torn file."""
import numpy as np
import pytest

from saliency_audit.criteria import consistency, randomization
from saliency_audit.methods.mapset import MapSet


def _maps(seed: int, cache, n: int = 3, size: int = 32) -> MapSet:
    rng = np.random.default_rng(seed)
    maps = rng.random((n, size, size)).astype(np.float32)
    maps[-1] = 0.5  # a constant map: its Spearman and HOG are NaN, and are kept as NaN
    return MapSet("m", [f"i{k}" for k in range(n)], maps, np.zeros(n, bool), maps * 2 - 1, 0, 0.0, {}, cache)


def _no_computing(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("computed, not read from the cache")

    for name in ("ssim", "spearman", "spearman_from_ranks", "hog_correlation", "ranks", "hog_features"):
        monkeypatch.setattr(randomization.sim, name, refuse)


def test_randomization_scores_are_kept_and_read_back_equal(tmp_path, monkeypatch):
    computed = randomization.similarities(_maps(0, tmp_path), _maps(1, tmp_path))
    assert len(list((tmp_path / "similarities").rglob("*.npz"))) == 1
    assert np.isnan(computed["hog"][-1]) and np.isfinite(computed["ssim"]).all()
    _no_computing(monkeypatch)
    again = randomization.similarities(_maps(0, tmp_path), _maps(1, tmp_path))  # new MapSets, same bytes
    assert set(again) == set(computed)
    for m in computed:
        np.testing.assert_array_equal(again[m], computed[m])
    with pytest.raises(AssertionError, match="computed"):  # other maps: another key
        randomization.similarities(_maps(0, tmp_path), _maps(2, tmp_path))


def test_consistency_scores_are_kept_per_grid(tmp_path, monkeypatch):
    grids = [(16, 16)] * 3
    computed = consistency.pair_scores(_maps(0, tmp_path), _maps(1, tmp_path), grids)
    _no_computing(monkeypatch)
    again = consistency.pair_scores(_maps(0, tmp_path), _maps(1, tmp_path), grids)
    for m in computed:
        np.testing.assert_array_equal(again[m], computed[m])
    with pytest.raises(AssertionError, match="computed"):  # another grid: another key
        consistency.pair_scores(_maps(0, tmp_path), _maps(1, tmp_path), [(8, 8)] * 3)


def test_nothing_is_kept_without_a_cache_and_a_torn_file_is_recomputed(tmp_path):
    randomization.similarities(_maps(0, None), _maps(1, None))
    assert not any(tmp_path.iterdir())
    first = randomization.similarities(_maps(0, tmp_path), _maps(1, tmp_path))
    (kept,) = (tmp_path / "similarities").rglob("*.npz")
    kept.write_bytes(b"torn")
    again = randomization.similarities(_maps(0, tmp_path), _maps(1, tmp_path))
    for m in first:
        np.testing.assert_array_equal(again[m], first[m])
    assert np.load(kept)["ssim"].shape == (3,)  # written again whole
