"""Similarity between two saliency maps of the same image.

The three measures of Adebayo et al. (2018), "Sanity Checks for Saliency
Maps": SSIM, Spearman rank correlation and HOG similarity.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import rankdata
from skimage.feature import hog
from skimage.metrics import structural_similarity

from ..common.errors import AuditInputError
from ..common.hashing import array_digest

try:  # skimage's own cell histograms (Cython), for the vectorised block normalisation in hog_features
    from skimage.feature._hoghistogram import hog_histograms as _hog_histograms
except ImportError:  # pragma: no cover -- a future skimage without it: skimage.feature.hog does all of it
    _hog_histograms = None


# -- remembered by content ---------------------------------------------------------------------------------
# The same pair of maps is compared again at every sequential look and for the verdict (randomization's
# stages, consistency's models), and the same map ranked and described for each model it is compared with
# and for randomization's variants: each result is kept, keyed by a digest of the maps' bytes, for the process.
# SSIM values are small (many kept); ranks and HOG descriptors are a map's size (the most recent kept).
_SSIM: "OrderedDict[bytes, float]" = OrderedDict()
_SSIM_MAX = 262144
_FEATURES: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_FEATURES_BYTES = 64 * 2**20  # at most this much kept (512 ranks of a 128-px map)
_held = [0]


def _remember(memo: OrderedDict, limit: int, key, compute):
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = compute()
        if len(memo) > limit:
            memo.popitem(last=False)
    else:
        memo.move_to_end(key)
    return hit


def _feature(kind: str, m: np.ndarray, compute, *params) -> np.ndarray:
    """A map's ``kind`` feature (read-only: it is shared), remembered by the map's content."""
    key = (kind, params, array_digest(m))
    hit = _FEATURES.get(key)
    if hit is not None:
        _FEATURES.move_to_end(key)
        return hit
    out = _FEATURES[key] = compute()
    out.flags.writeable = False
    _held[0] += out.nbytes
    while _held[0] > _FEATURES_BYTES and len(_FEATURES) > 1:
        _held[0] -= _FEATURES.popitem(last=False)[1].nbytes
    return out


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0) -> float:
    """2-D SSIM (skimage) with an explicit data range; maps are never flattened.

    Maps are postprocessed into [0, 1] before they are compared, hence the
    default ``data_range=1``.  Two constant maps that are equal give 1.
    Remembered by the maps' content (the same pair is compared at every look).
    """
    key = array_digest(np.asarray(a), np.asarray(b)) + repr(float(data_range)).encode()  # their own bytes
    hit = _SSIM.get(key)
    if hit is not None:  # the same maps, checked before
        _SSIM.move_to_end(key)
        return hit
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise AuditInputError(f"ssim: maps must be 2-D and of one size, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise AuditInputError("ssim: a map contains NaN or infinite values")
    win = min(7, *a.shape)
    win -= (win + 1) % 2  # odd window no larger than the map
    return _remember(_SSIM, _SSIM_MAX, key,
                     lambda: float(structural_similarity(a, b, data_range=data_range, win_size=win)))


def _pair(name: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two finite 2-D float maps of one size, else a one-line AuditInputError."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.size == 0:
        raise AuditInputError(f"{name}: maps must be 2-D, non-empty and of one size, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise AuditInputError(f"{name}: a map contains NaN or infinite values")
    return a, b


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of the pixel values of two maps (Adebayo et al., 2018).

    Rank correlation ignores where pixels are, so flattening is harmless here
    (unlike SSIM), and it is invariant to any strictly increasing rescaling of
    either map -- what matters is which pixels a method ranks as important.
    Ties get average ranks.  A constant map has no ranking: the result
    is NaN (undefined), which the criterion reports rather than drops.
    """
    a, b = _pair("spearman", a, b)
    return spearman_from_ranks(ranks(a), ranks(b))


def ranks(m: np.ndarray) -> np.ndarray:
    """Average ranks of a map's pixels (scipy ``rankdata``), reusable across comparisons (read-only:
    remembered by the map's content)."""
    m = np.asarray(m)  # remembered by its own bytes (a float32 map: half of them to hash)
    return _feature("ranks", m, lambda: _average_ranks(np.asarray(m, dtype=np.float64).ravel()))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(x)`` (average ranks, float64) of a 1-D array, at half its cost: scipy sorts
    stably and reorders through generic array-API calls; ties get their mean rank whatever order a sort leaves
    them in, and every rank is a whole or half number, exact in float64, so the values are scipy's bit for bit
    (tests/test_similarity.py).  An array with a NaN is left to scipy (its ``nan_policy``)."""
    n = x.size
    if n == 0 or not np.isfinite(x).all():
        return rankdata(x)
    order = np.argsort(x)
    y = x[order]
    first = np.empty(n, dtype=bool)  # the first of each run of equal values
    first[0] = True
    np.not_equal(y[1:], y[:-1], out=first[1:])
    start = np.flatnonzero(first)
    counts = np.diff(start, append=n)
    out = np.empty(n)
    out[order] = np.repeat((start + 1.0) + (counts - 1.0) / 2, counts)
    return out


def spearman_from_ranks(ra: np.ndarray, rb: np.ndarray) -> float:
    """Spearman's rho as the Pearson correlation of average ranks (its definition, as scipy computes it)."""
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def hog_similarity(a: np.ndarray, b: np.ndarray, *, pixels_per_cell: tuple[int, int] = (8, 8)) -> float:
    """Pearson correlation of the HOG descriptors of two maps (Adebayo et al., 2018).

    HOG (skimage defaults: 9 orientations, 3x3-cell blocks, L2-Hys) describes
    the local edge structure of a map, so the score stays high when a map keeps
    its shapes but changes intensities, and drops when structures move.
    Blocks shrink to the number of cells a small map has (a 16x16 map with 8x8
    cells uses 2x2-cell blocks); both maps always get the same descriptor.
    A map smaller than one cell is a ValueError; a map without gradients
    (constant) has a constant descriptor and gives NaN (undefined, reported).
    """
    a, b = _pair("hog_similarity", a, b)
    return hog_correlation(hog_features(a, pixels_per_cell=pixels_per_cell), hog_features(b, pixels_per_cell=pixels_per_cell))


def hog_features(m: np.ndarray, *, pixels_per_cell: tuple[int, int] = (8, 8)) -> np.ndarray:
    """The HOG descriptor :func:`hog_similarity` compares, reusable across comparisons (read-only: remembered
    by the map's content)."""
    given = np.asarray(m)
    m = np.asarray(given, dtype=np.float64)
    if min(pixels_per_cell) < 1:
        raise ValueError(f"hog_similarity: pixels_per_cell must be positive, got {tuple(pixels_per_cell)}")
    cells = (m.shape[0] // pixels_per_cell[0], m.shape[1] // pixels_per_cell[1])
    if min(cells) < 1:
        raise ValueError(
            f"hog_similarity: maps of {m.shape} are smaller than one cell of {tuple(pixels_per_cell)} pixels; "
            f"use a smaller pixels_per_cell"
        )
    blocks = (min(3, cells[0]), min(3, cells[1]))
    if _hog_histograms is None:
        return hog(m, pixels_per_cell=pixels_per_cell, cells_per_block=blocks, feature_vector=True)
    return _feature("hog", given, lambda: _hog_l2hys(m, pixels_per_cell, blocks), tuple(pixels_per_cell))


def _hog_l2hys(m: np.ndarray, cell: tuple[int, int], block: tuple[int, int], orientations: int = 9,
               eps: float = 1e-5) -> np.ndarray:
    """``skimage.feature.hog(m, orientations, cell, block, "L2-Hys", feature_vector=True)``, block loop vectorised.

    skimage normalises its overlapping blocks one at a time in a Python loop
    (144 blocks of a 112-px map: most of its 3-6 ms per map, paid for every
    map of every cascade stage); here all blocks are normalised in a few array
    operations.  Gradients and cell histograms are skimage's own (the same
    code :func:`skimage.feature.hog` runs); each block is summed as the same
    contiguous run of values as skimage sums it, so the descriptor is skimage's
    (tests/test_similarity.py compares them).
    """
    g_row = np.zeros_like(m)  # skimage's _hog_channel_gradient: central differences, zero on the border
    g_col = np.zeros_like(m)
    g_row[1:-1, :] = m[2:, :] - m[:-2, :]
    g_col[:, 1:-1] = m[:, 2:] - m[:, :-2]
    cells = (m.shape[0] // cell[0], m.shape[1] // cell[1])
    hist = np.zeros((*cells, orientations))
    _hog_histograms(g_col, g_row, cell[1], cell[0], m.shape[1], m.shape[0], cells[1], cells[0], orientations, hist)
    # (blocks_row, blocks_col, block_row * block_col * orientations), one contiguous run per block
    b = sliding_window_view(hist, block, axis=(0, 1)).transpose(0, 1, 3, 4, 2)
    b = np.ascontiguousarray(b).reshape(b.shape[0], b.shape[1], -1)
    out = b / np.sqrt(np.sum(b ** 2, axis=-1, keepdims=True) + eps ** 2)
    out = np.minimum(out, 0.2)
    out = out / np.sqrt(np.sum(out ** 2, axis=-1, keepdims=True) + eps ** 2)
    return out.ravel()


def hog_correlation(fa: np.ndarray, fb: np.ndarray) -> float:
    """Pearson correlation of two HOG descriptors; NaN when one is constant.

    ``np.corrcoef``, not ``scipy.stats.pearsonr``: pearsonr's input checks and
    p-value cost ~10 ms a call (scipy 1.17), 100x the correlation itself, and
    a cascade calls it for every image at every stage.
    """
    if np.ptp(fa) == 0 or np.ptp(fb) == 0:
        return float("nan")
    return float(np.corrcoef(fa, fb)[0, 1])
