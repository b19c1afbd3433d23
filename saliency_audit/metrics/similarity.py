"""Similarity between two saliency maps of the same image.

The three measures of Adebayo et al. (2018), "Sanity Checks for Saliency
Maps": SSIM, Spearman rank correlation and HOG similarity.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, rankdata
from skimage.feature import hog
from skimage.metrics import structural_similarity

from ..errors import AuditInputError


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0) -> float:
    """2-D SSIM (skimage) with an explicit data range; maps are never flattened.

    Maps are postprocessed into [0, 1] before they are compared, hence the
    default ``data_range=1``.  Two constant maps that are equal give 1.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise AuditInputError(f"ssim: maps must be 2-D and of one size, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise AuditInputError("ssim: a map contains NaN or infinite values")
    win = min(7, *a.shape)
    win -= (win + 1) % 2  # odd window no larger than the map
    return float(structural_similarity(a, b, data_range=data_range, win_size=win))


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
    """Average ranks of a map's pixels (scipy ``rankdata``), reusable across comparisons."""
    return rankdata(np.asarray(m, dtype=np.float64).ravel())


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
    """The HOG descriptor :func:`hog_similarity` compares, reusable across comparisons."""
    m = np.asarray(m, dtype=np.float64)
    if min(pixels_per_cell) < 1:
        raise ValueError(f"hog_similarity: pixels_per_cell must be positive, got {tuple(pixels_per_cell)}")
    cells = (m.shape[0] // pixels_per_cell[0], m.shape[1] // pixels_per_cell[1])
    if min(cells) < 1:
        raise ValueError(
            f"hog_similarity: maps of {m.shape} are smaller than one cell of {tuple(pixels_per_cell)} pixels; "
            f"use a smaller pixels_per_cell"
        )
    blocks = (min(3, cells[0]), min(3, cells[1]))
    return hog(m, pixels_per_cell=pixels_per_cell, cells_per_block=blocks, feature_vector=True)


def hog_correlation(fa: np.ndarray, fb: np.ndarray) -> float:
    """Pearson correlation of two HOG descriptors; NaN when one is constant."""
    if np.ptp(fa) == 0 or np.ptp(fb) == 0:
        return float("nan")
    return float(pearsonr(fa, fb).statistic)
