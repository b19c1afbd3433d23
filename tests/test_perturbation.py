"""Pixel order, removal masks and ROAD's linear imputation against hand-computed solutions."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from saliency_audit.metrics import perturbation as pt

W_EDGE, W_DIAG = 1 / 6, 1 / 12


def _weights(h, w, y, x):
    """(neighbour (y, x), weight) of the in-image 8-neighbours of (y, x)."""
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dy or dx) and 0 <= y + dy < h and 0 <= x + dx < w:
                yield (y + dy, x + dx), (W_DIAG if dy and dx else W_EDGE)


def _reference(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Each removed pixel = weighted mean of its in-image neighbours, solved jointly (built independently)."""
    h, w = img.shape
    idx = {p: k for k, p in enumerate(zip(*np.nonzero(removed)))}
    a = sp.lil_matrix((len(idx), len(idx)))
    b = np.zeros(len(idx))
    for (y, x), k in idx.items():
        for q, wt in _weights(h, w, y, x):
            a[k, k] += wt
            if q in idx:
                a[k, idx[q]] -= wt
            else:
                b[k] += wt * img[q]
    out = img.copy()
    sol = spla.spsolve(a.tocsr(), b)
    for (y, x), k in idx.items():
        out[y, x] = sol[k]
    return out


def _impute(img, removed, **kw):
    x = torch.from_numpy(img)[None, None].double()
    return pt.noisy_linear_impute(x, torch.from_numpy(removed)[None], noise=0.0, tol=1e-10, **kw)[0, 0].numpy()


@pytest.mark.parametrize("f", [0.2, 0.4, 0.6, 0.8])
def test_exactly_k_percent_removed_for_a_constant_map(f):
    maps = np.zeros((3, 17, 23), np.float32)
    order = pt.removal_order(maps, [1, 2, 3])
    masks = pt.removal_masks(order, [f], (17, 23))
    assert masks.flatten(2).sum(-1).tolist() == [[round(f * 17 * 23)]] * 3
    lerf = pt.removal_masks(order, [f], (17, 23), reverse=True)
    assert not (masks & lerf).any() or f > 0.5  # opposite ends of the same order


def test_percentile_thresholding_removes_whole_tied_plateaus():
    rng = np.random.default_rng(0)
    cam = np.maximum(rng.standard_normal((64, 64)), 0)  # a GradCAM after its ReLU: about half zeros
    cam[rng.random((64, 64)) < 0.4] = 0.0  # ~70 % zeros
    f = 0.2
    percentile = cam >= np.percentile(cam, 100 - 100 * f)  # pytorch-grad-cam ROAD's LeRF-style tied cut
    lerf_percentile = cam <= np.percentile(cam, 100 * f)
    ours = pt.removal_masks(pt.removal_order(cam[None], [0]), [f], (64, 64), reverse=True)[0, 0].numpy()
    assert ours.sum() == round(f * 64 * 64)
    assert lerf_percentile.sum() > 3 * ours.sum()  # the whole zero plateau goes at once
    assert percentile.sum() <= round(f * 64 * 64) + 1  # top values are distinct: no difference there


def test_ties_are_broken_by_seed_and_values_strictly_ordered():
    m = np.zeros((1, 8, 8), np.float32)
    m[0, 0, :4] = [4, 3, 2, 1]
    a, b, c = (pt.removal_order(m, [s])[0].tolist() for s in (5, 5, 6))
    assert a == b and a != c
    assert a[:4] == [0, 1, 2, 3]


def test_single_interior_pixel_is_the_weighted_mean_of_its_neighbours():
    img = np.arange(25, dtype=np.float64).reshape(5, 5) ** 1.5
    removed = np.zeros((5, 5), bool)
    removed[2, 2] = True
    expect = sum(img[q] * wt for q, wt in _weights(5, 5, 2, 2)) / 1.0  # weights sum to 1 inside
    assert _impute(img, removed)[2, 2] == pytest.approx(expect, abs=1e-6)


def test_corner_pixel_is_normalised_by_the_weights_present():
    img = np.random.default_rng(1).random((4, 4))
    removed = np.zeros((4, 4), bool)
    removed[0, 0] = True
    expect = (W_EDGE * img[0, 1] + W_EDGE * img[1, 0] + W_DIAG * img[1, 1]) / (2 * W_EDGE + W_DIAG)
    assert _impute(img, removed)[0, 0] == pytest.approx(expect, abs=1e-6)


def test_two_adjacent_removed_pixels_solve_a_2x2_system():
    img = np.random.default_rng(2).random((5, 5))
    removed = np.zeros((5, 5), bool)
    removed[2, 1] = removed[2, 2] = True
    ba = sum(img[q] * wt for q, wt in _weights(5, 5, 2, 1) if q != (2, 2))
    bb = sum(img[q] * wt for q, wt in _weights(5, 5, 2, 2) if q != (2, 1))
    xa, xb = np.linalg.solve([[1.0, -W_EDGE], [-W_EDGE, 1.0]], [ba, bb])
    out = _impute(img, removed)
    assert out[2, 1] == pytest.approx(xa, abs=1e-6) and out[2, 2] == pytest.approx(xb, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_masks_equal_a_sparse_direct_solve(seed):
    rng = np.random.default_rng(seed)
    img = rng.random((20, 24))
    removed = rng.random((20, 24)) < 0.6
    removed[5:15, 6:18] = True  # a large contiguous hole too
    out = _impute(img, removed)
    np.testing.assert_allclose(out, _reference(img, removed), atol=1e-5)
    assert (out[~removed] == img[~removed]).all()  # kept pixels unchanged bit for bit


def test_batched_multichannel_float32_and_noise_only_on_removed_pixels():
    rng = np.random.default_rng(3)
    imgs = torch.from_numpy(rng.random((3, 2, 16, 16))).float()
    removed = torch.from_numpy(rng.random((3, 16, 16)) < 0.5)
    out = pt.noisy_linear_impute(imgs, removed, noise=0.0)
    for i in range(3):
        for c in range(2):
            ref = _reference(imgs[i, c].double().numpy(), removed[i].numpy())
            np.testing.assert_allclose(out[i, c].numpy(), ref, atol=1e-4)
    g = torch.Generator().manual_seed(0)
    noisy = pt.noisy_linear_impute(imgs, removed, noise=0.05, generator=g)
    again = pt.noisy_linear_impute(imgs, removed, noise=0.05, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    diff = (noisy - out)
    assert (diff[~removed[:, None].expand_as(diff)] == 0).all()
    assert diff[removed[:, None].expand_as(diff)].std().item() == pytest.approx(0.05, rel=0.15)


def test_fills_keep_kept_pixels_and_reject_unknown_names():
    rng = np.random.default_rng(4)
    imgs = torch.from_numpy(rng.random((2, 1, 12, 12))).float()
    removed = torch.from_numpy(rng.random((2, 12, 12)) < 0.3)
    for how in ("blur", "mean", "random"):
        out = pt.fill(imgs, removed, how, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out[~removed[:, None]], imgs[~removed[:, None]])
    mean = pt.fill(imgs, removed, "mean")
    assert mean[0, 0][removed[0]].allclose(imgs[0, 0].mean().expand(int(removed[0].sum())))
    with pytest.raises(ValueError, match="blur"):
        pt.fill(imgs, removed, "nope")
