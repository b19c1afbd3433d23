"""Removal order, removal masks and fills of saliency_audit.metrics.perturbation.

The imputation is checked against hand-solved systems and against a scipy
sparse solve of the ROAD equations built here pixel by pixel (as
tleemann/road_evaluation's NoisyLinearImputer sets them up: the unknowns are
the removed pixels, only in-image neighbours count, normalised by their weights).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.sparse
import scipy.sparse.linalg
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from saliency_audit.metrics.perturbation import FILLS, fill, noisy_linear_impute, removal_masks, removal_order

FRACTIONS = (0.0, 0.1, 0.2, 0.25, 0.5, 0.8, 0.999, 1.0)
EDGE, DIAGONAL = 1 / 6, 1 / 12


def gradcam_like(h: int, w: int, zeros: float, seed: int = 0) -> np.ndarray:
    """A map exactly zero on a ``zeros`` share of its pixels (a CAM after its ReLU), distinct positives elsewhere."""
    rng = np.random.default_rng(seed)
    m = rng.random((h, w)) + 0.1
    m.flat[rng.permutation(h * w)[: round(zeros * h * w)]] = 0.0
    return m


# --- removal order and masks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["constant", "gradcam-like", "three-levels"])
@pytest.mark.parametrize("reverse", [False, True])
def test_exactly_round_f_p_pixels_removed_on_tied_maps(kind, reverse):
    h, w = 7, 9
    m = {"constant": np.full((h, w), 0.3),
         "gradcam-like": gradcam_like(h, w, 0.7),
         "three-levels": np.random.default_rng(1).integers(0, 3, (h, w)).astype(float)}[kind]
    masks = removal_masks(removal_order(m[None], [5]), FRACTIONS, (h, w), reverse=reverse)
    assert masks.shape == (1, len(FRACTIONS), h, w) and masks.dtype == torch.bool
    assert masks.flatten(2).sum(dim=2)[0].tolist() == [round(f * h * w) for f in FRACTIONS]


@settings(max_examples=60, deadline=None)
@given(m=arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.sampled_from([0.0, 0.5, 1.0])),
       fractions=st.lists(st.floats(0, 1), min_size=1, max_size=5), seed=st.integers(0, 2**32 - 1))
def test_masks_are_exact_nested_and_lerf_takes_the_other_end_of_the_order(m, fractions, seed):
    h, w = m.shape
    p = h * w
    fractions = sorted(fractions)
    order = removal_order(m[None], [seed])
    morf = removal_masks(order, fractions, (h, w)).flatten(2)[0]
    lerf = removal_masks(order, fractions, (h, w), reverse=True).flatten(2)[0]
    for i, f in enumerate(fractions):
        k = round(f * p)
        expected_morf = torch.zeros(p, dtype=torch.bool)
        expected_morf[order[0, :k]] = True
        expected_lerf = torch.zeros(p, dtype=torch.bool)
        expected_lerf[order[0, p - k:]] = True
        assert torch.equal(morf[i], expected_morf) and torch.equal(lerf[i], expected_lerf)
        if i:
            assert not (morf[i - 1] & ~morf[i]).any() and not (lerf[i - 1] & ~lerf[i]).any()  # nested
    # values along the order never increase: ties are only ever broken among equal values
    assert np.all(np.diff(m.ravel()[order[0].numpy()]) <= 0)


def test_distinct_values_are_strictly_ordered_by_value():
    m = np.random.default_rng(2).permutation(48).reshape(6, 8).astype(np.float32)
    order = removal_order(m[None], [0])[0].numpy()
    assert np.array_equal(order, np.argsort(-m.ravel()))


def test_order_is_reproducible_per_image_and_independent_of_the_batch():
    maps = np.stack([np.zeros((6, 6)), gradcam_like(6, 6, 0.7, seed=3), np.ones((6, 6))])
    seeds = [11, 12, 13]
    batch = removal_order(maps, seeds)
    assert batch.dtype == torch.int64 and batch.shape == (3, 36)
    assert torch.equal(batch, removal_order(maps, seeds))
    assert torch.equal(batch[1], removal_order(maps[1:2], [12])[0])
    assert torch.equal(batch[:2], removal_order(maps[[1, 0]], [12, 11])[[1, 0]])
    for row in batch:
        assert torch.equal(row.sort().values, torch.arange(36))


def test_a_different_seed_breaks_ties_differently_and_only_ties():
    m = gradcam_like(8, 8, 0.7, seed=4)
    a, b = (removal_order(m[None], [s])[0].numpy() for s in (0, 1))
    zero = m.ravel() == 0
    assert not np.array_equal(a[zero[a]], b[zero[b]])  # tied zeros come in another order
    assert np.array_equal(a[~zero[a]], b[~zero[b]])  # distinct positives do not move
    c, d = (removal_order(np.zeros((1, 8, 8)), [s])[0] for s in (0, 1))
    assert not torch.equal(c, d)


def test_order_and_mask_input_errors():
    with pytest.raises(ValueError, match="NaN"):
        removal_order(np.full((1, 3, 3), np.nan), [0])
    with pytest.raises(ValueError, match="2 maps but 1 seeds"):
        removal_order(np.zeros((2, 3, 3)), [0])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        removal_order(np.zeros((3, 3)), [0])
    order = removal_order(np.zeros((1, 3, 3)), [0])
    with pytest.raises(ValueError, match="fractions"):
        removal_masks(order, [1.5], (3, 3))
    with pytest.raises(ValueError, match="permutation"):
        removal_masks(torch.zeros(1, 9, dtype=torch.int64), [0.5], (3, 3))
    with pytest.raises(ValueError, match=r"\(N, 12\)"):
        removal_masks(order, [0.5], (3, 4))


@pytest.mark.parametrize("zeros, f", [(0.85, 0.2), (0.7, 0.4)])
def test_percentile_thresholding_removes_every_tied_pixel_ours_exactly_f(zeros, f):
    """pytorch-grad-cam's ROAD removes ``map >= np.percentile(map, 100 - 100 f)``; on a mostly-zero CAM
    that percentile is 0 and every pixel goes, where the fraction asked for was f."""
    m = gradcam_like(32, 32, zeros, seed=5)
    percentile_removed = m >= np.percentile(m, 100 - f * 100)
    assert percentile_removed.mean() == 1.0
    ours = removal_masks(removal_order(m[None], [0]), [f], m.shape)
    assert int(ours.sum()) == round(f * m.size)


# --- noisy linear imputation -------------------------------------------------------------------------------

def in_image_neighbours(p: tuple[int, int], shape: tuple[int, int]) -> list[tuple[tuple[int, int], float]]:
    """(neighbour, weight) of the in-image 8-neighbours of pixel p."""
    return [((p[0] + di, p[1] + dj), DIAGONAL if di and dj else EDGE) for di in (-1, 0, 1) for dj in (-1, 0, 1)
            if (di, dj) != (0, 0) and 0 <= p[0] + di < shape[0] and 0 <= p[1] + dj < shape[1]]


def road_system_solution(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD's equations built one pixel at a time and solved by scipy's sparse LU: the (C, H, W) filled image."""
    unknowns = list(zip(*np.nonzero(removed)))
    if not unknowns:
        return img.copy()
    index = {pixel: k for k, pixel in enumerate(unknowns)}
    a = scipy.sparse.lil_matrix((len(unknowns), len(unknowns)))
    b = np.zeros((len(unknowns), img.shape[0]))
    for k, pixel in enumerate(unknowns):
        for q, weight in in_image_neighbours(pixel, removed.shape):
            a[k, k] += weight
            if removed[q]:
                a[k, index[q]] -= weight
            else:
                b[k] += weight * img[:, q[0], q[1]]
    out = img.copy()
    out[:, removed] = scipy.sparse.linalg.spsolve(a.tocsc(), b).reshape(len(unknowns), -1).T
    return out


def impute_exact(img: np.ndarray, removed: np.ndarray, dtype=torch.float64) -> np.ndarray:
    """noisy_linear_impute without noise on one (C, H, W) image."""
    out = noisy_linear_impute(torch.tensor(img[None], dtype=dtype), torch.tensor(removed[None]), noise=0.0)
    return out[0].double().numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_single_interior_pixel_is_the_weighted_mean_of_its_8_neighbours(dtype):
    img = np.random.default_rng(6).random((1, 5, 5))
    removed = np.zeros((5, 5), bool)
    removed[2, 2] = True
    n = img[0, 1:4, 1:4]
    by_hand = (n[0, 1] + n[1, 0] + n[1, 2] + n[2, 1]) / 6 + (n[0, 0] + n[0, 2] + n[2, 0] + n[2, 2]) / 12
    assert impute_exact(img, removed, dtype)[0, 2, 2] == pytest.approx(by_hand, abs=1e-5)


@pytest.mark.parametrize("pixel, weights", [((0, 0), 5 / 12), ((5, 6), 5 / 12), ((0, 3), 2 / 3), ((2, 6), 2 / 3)])
def test_border_pixel_is_normalised_by_the_in_image_neighbour_weights(pixel, weights):
    """The reference's diagonal is the sum of the in-image weights: 5/12 in a corner, 2/3 along an edge."""
    img = np.random.default_rng(7).random((1, 6, 7))
    removed = np.zeros((6, 7), bool)
    removed[pixel] = True
    neighbours = in_image_neighbours(pixel, (6, 7))
    assert sum(w for _, w in neighbours) == pytest.approx(weights)
    by_hand = sum(w * img[0][q] for q, w in neighbours) / weights
    assert impute_exact(img, removed)[0][pixel] == pytest.approx(by_hand, abs=1e-5)


def test_two_adjacent_interior_pixels_solve_their_2x2_system():
    img = np.random.default_rng(8).random((1, 5, 6))
    removed = np.zeros((5, 6), bool)
    removed[2, 2] = removed[2, 3] = True
    # x_a = s_a + x_b / 6 and x_b = s_b + x_a / 6, s the weighted sum of the kept neighbours (weights sum to 1)
    s_a = sum(w * img[0][q] for q, w in in_image_neighbours((2, 2), (5, 6)) if q != (2, 3))
    s_b = sum(w * img[0][q] for q, w in in_image_neighbours((2, 3), (5, 6)) if q != (2, 2))
    x_a, x_b = np.linalg.solve([[1, -1 / 6], [-1 / 6, 1]], [s_a, s_b])
    out = impute_exact(img, removed)
    assert out[0, 2, 2] == pytest.approx(x_a, abs=1e-5) and out[0, 2, 3] == pytest.approx(x_b, abs=1e-5)


def test_corner_and_its_diagonal_neighbour_solve_their_2x2_system():
    img = np.random.default_rng(9).random((1, 4, 4))
    removed = np.zeros((4, 4), bool)
    removed[0, 0] = removed[1, 1] = True
    # 5/12 x_a - x_b / 12 = s_a and x_b - x_a / 12 = s_b
    s_a = img[0, 0, 1] / 6 + img[0, 1, 0] / 6
    s_b = ((img[0, 0, 1] + img[0, 1, 0] + img[0, 1, 2] + img[0, 2, 1]) / 6
           + (img[0, 0, 2] + img[0, 2, 0] + img[0, 2, 2]) / 12)
    x_a, x_b = np.linalg.solve([[5 / 12, -1 / 12], [-1 / 12, 1]], [s_a, s_b])
    out = impute_exact(img, removed)
    assert out[0, 0, 0] == pytest.approx(x_a, abs=1e-5) and out[0, 1, 1] == pytest.approx(x_b, abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(st.integers(1, 20), st.integers(1, 20)), density=st.floats(0.05, 0.95),
       seed=st.integers(0, 2**32 - 1))
def test_random_masks_match_a_sparse_direct_solve(shape, density, seed):
    rng = np.random.default_rng(seed)
    img = rng.random((2, 2, *shape))
    removed = rng.random((2, *shape)) < density
    assume(not removed.reshape(2, -1).all(axis=1).any())
    out = noisy_linear_impute(torch.tensor(img), torch.tensor(removed), noise=0.0).numpy()
    for k in range(2):
        np.testing.assert_allclose(out[k], road_system_solution(img[k], removed[k]), atol=1e-6)
        assert np.array_equal(out[k][:, ~removed[k]], img[k][:, ~removed[k]])


def blob_mask(h: int, w: int, fraction: float, centre: tuple[float, float]) -> np.ndarray:
    """MoRF-like removal: the ``fraction`` of pixels nearest ``centre`` (one contiguous blob)."""
    yy, xx = np.mgrid[:h, :w]
    distance = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 + 1e-6 * np.arange(h * w).reshape(h, w)
    return distance <= np.sort(distance.ravel())[round(fraction * h * w) - 1]


def test_large_multichannel_batch_matches_direct_solve_and_each_image_alone():
    """80 % removed in one blob (several multigrid levels) or scattered, three channels, three images."""
    rng = np.random.default_rng(10)
    h, w = 70, 45
    img = rng.random((3, 3, h, w))
    removed = np.stack([blob_mask(h, w, 0.8, (35, 22)), blob_mask(h, w, 0.8, (10, 40)), rng.random((h, w)) < 0.8])
    out = noisy_linear_impute(torch.tensor(img), torch.tensor(removed), noise=0.0)
    for k in range(3):
        np.testing.assert_allclose(out[k].numpy(), road_system_solution(img[k], removed[k]), atol=1e-6)
        alone = noisy_linear_impute(torch.tensor(img[k:k + 1]), torch.tensor(removed[k:k + 1]), noise=0.0)
        np.testing.assert_allclose(out[k].numpy(), alone[0].numpy(), atol=1e-8)
    single = noisy_linear_impute(torch.tensor(img, dtype=torch.float32), torch.tensor(removed), noise=0.0)
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), out.numpy(), atol=5e-5)  # float32's floor on an 80 % blob
    m = torch.tensor(removed)[:, None].expand(-1, 3, -1, -1)
    assert torch.equal(single[~m], torch.tensor(img, dtype=torch.float32)[~m])


def test_noise_has_the_right_std_only_on_removed_pixels_and_is_seeded():
    rng = np.random.default_rng(11)
    img = torch.tensor(rng.random((2, 1, 64, 64)), dtype=torch.float32)
    removed = torch.tensor(rng.random((2, 64, 64)) < 0.5)
    exact = noisy_linear_impute(img, removed, noise=0.0)
    noisy = noisy_linear_impute(img, removed, noise=0.05, generator=torch.Generator().manual_seed(1))
    again = noisy_linear_impute(img, removed, noise=0.05, generator=torch.Generator().manual_seed(1))
    other = noisy_linear_impute(img, removed, noise=0.05, generator=torch.Generator().manual_seed(2))
    assert torch.equal(noisy, again) and not torch.equal(noisy, other)
    m = removed[:, None]
    assert torch.equal(noisy[~m], img[~m])
    diff = (noisy - exact)[m]
    assert diff.std().item() == pytest.approx(0.05, rel=0.05) and abs(diff.mean().item()) < 0.005


def test_imputation_input_errors():
    img = torch.rand(2, 1, 4, 5)
    removed = torch.zeros(2, 4, 5, dtype=torch.bool)
    removed[1] = True
    with pytest.raises(ValueError, match="image 1 has all of its 20 pixels removed"):
        noisy_linear_impute(img, removed)
    with pytest.raises(ValueError, match="bool"):
        noisy_linear_impute(img, removed.float())
    with pytest.raises(ValueError, match="float"):
        noisy_linear_impute(img.long(), removed)
    with pytest.raises(ValueError, match="standard deviation"):
        noisy_linear_impute(img, torch.zeros_like(removed), noise=-1.0)


def test_nothing_removed_returns_the_images():
    img = torch.rand(2, 3, 9, 9)
    assert torch.equal(noisy_linear_impute(img, torch.zeros(2, 9, 9, dtype=torch.bool)), img)


# --- other fills ------------------------------------------------------------------------------------------------

@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(12)
    img = torch.tensor(rng.random((3, 2, 40, 48)) * [[[[1.0]], [[4.0]]]] - 1.0, dtype=torch.float32)
    removed = torch.tensor(rng.random((3, 40, 48)) < 0.4)
    return img, removed


@pytest.mark.parametrize("how", FILLS)
def test_every_fill_keeps_kept_pixels_and_changes_removed_ones(batch, how):
    img, removed = batch
    out = fill(img, removed, how, generator=torch.Generator().manual_seed(0))
    m = removed[:, None].expand_as(img)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert torch.equal(out[~m], img[~m])
    assert not torch.equal(out[m], img[m])


def test_mean_fill_is_each_image_and_channel_mean(batch):
    img, removed = batch
    out = fill(img, removed, "mean")
    for k in range(3):
        for c in range(2):
            assert torch.allclose(out[k, c][removed[k]], img[k, c].mean().expand(int(removed[k].sum())))


def test_random_fill_is_uniform_within_each_image_and_channel_range(batch):
    img, removed = batch
    out = fill(img, removed, "random", generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, fill(img, removed, "random", generator=torch.Generator().manual_seed(3)))
    for k in range(3):
        for c in range(2):
            values = out[k, c][removed[k]]
            low, high = img[k, c].min(), img[k, c].max()
            assert low <= values.min() and values.max() <= high
            assert values.mean().item() == pytest.approx((low + high).item() / 2, abs=0.05 * (high - low).item())


def test_blur_fill_is_a_gaussian_blur_pasted_into_removed_pixels(batch):
    img, removed = batch
    out = fill(img, removed, "blur", blur_sigma=2.0)
    reference = scipy.ndimage.gaussian_filter(img.double().numpy(), sigma=(0, 0, 2.0, 2.0), truncate=3.0)
    inner = np.zeros(removed.shape, bool)
    inner[:, 6:-6, 6:-6] = True  # away from the border, where scipy reflects the image and we renormalise
    m = removed.numpy() & inner
    for c in range(2):
        np.testing.assert_allclose(out[:, c].numpy()[m], reference[:, c][m], atol=1e-5)
    assert torch.equal(fill(img, removed, "blur"), fill(img, removed, "blur", blur_sigma=48 / 32))
    constant = torch.full((1, 1, 20, 20), 0.7)
    everything = torch.ones(1, 20, 20, dtype=torch.bool)
    assert torch.allclose(fill(constant, everything, "blur", blur_sigma=5.0), constant)  # borders unbiased


def test_linear_fills_are_the_imputation(batch):
    img, removed = batch
    assert torch.equal(fill(img, removed, "linear-exact"), noisy_linear_impute(img, removed, noise=0.0))
    assert torch.equal(fill(img, removed, "linear", generator=torch.Generator().manual_seed(4)),
                       noisy_linear_impute(img, removed, noise=0.01, generator=torch.Generator().manual_seed(4)))


def test_unknown_fill_raises_listing_the_choices(batch):
    with pytest.raises(ValueError, match="unknown fill 'zeros'.*linear, linear-exact, blur, mean, random"):
        fill(*batch, "zeros")
    assert FILLS == ("linear", "linear-exact", "blur", "mean", "random")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    m = np.random.default_rng(13).random((4, 64, 64))
    order = removal_order(m, range(4))
    masks = removal_masks(order.cuda(), [0.2, 0.8], (64, 64))
    assert masks.is_cuda and torch.equal(masks.cpu(), removal_masks(order, [0.2, 0.8], (64, 64)))
    img = torch.rand(8, 3, 64, 64)
    removed = masks.view(8, 64, 64)
    on_gpu = noisy_linear_impute(img.cuda(), removed, noise=0.0)
    assert on_gpu.is_cuda
    assert torch.allclose(on_gpu.cpu(), noisy_linear_impute(img, removed.cpu(), noise=0.0), atol=1e-5)
    assert fill(img.cuda(), removed, "linear", generator=torch.Generator("cuda").manual_seed(0)).is_cuda
