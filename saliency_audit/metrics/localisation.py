"""Localisation scores of a saliency map against a lesion mask.

Each pixel of the map is treated as the score of a binary classifier whose
positives are the lesion pixels (Arun et al. 2021, "utility").  Two numbers:

* ``average_precision`` — scikit-learn's step-wise AP, the primary number: it
  has no interpolation bias and is invariant to monotone transforms of the map.
* ``pr_auc_trapezoid`` — the trapezoid area under the PR curve, which is what
  the seed study's code reported; kept so our numbers compare with the paper.

An image without lesion pixels has no defined localisation score: NaN is
returned (and excluded downstream), never a hit or a miss.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve

from ..common.errors import AuditInputError
from ..common.hashing import array_digest


def _check(saliency: np.ndarray, mask: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    saliency = np.asarray(saliency, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    if saliency.ndim != 2 or mask.ndim != 2:
        raise AuditInputError(f"{what}: map and mask must be 2-D, got {saliency.shape} and {mask.shape}")
    if saliency.shape != mask.shape:
        raise AuditInputError(f"{what}: map of size {saliency.shape} does not match mask of size {mask.shape}")
    if not np.all(np.isfinite(saliency)):
        raise AuditInputError(f"{what}: saliency map contains NaN or infinite values")
    return saliency.ravel(), mask.ravel()


def average_precision(saliency: np.ndarray, mask: np.ndarray, *, what: str = "map") -> float:
    """AP of the map's pixels against the mask; NaN when the mask is empty."""
    scores, truth = _check(saliency, mask, what)
    if not truth.any():
        return float("nan")
    return float(average_precision_score(truth, scores))


def pr_auc_trapezoid(saliency: np.ndarray, mask: np.ndarray, *, what: str = "map") -> float:
    """Trapezoid area under the precision-recall curve (the seed study's AUPRC)."""
    scores, truth = _check(saliency, mask, what)
    if not truth.any():
        return float("nan")
    precision, recall, _ = precision_recall_curve(truth, scores)
    return float(auc(recall, precision))


def localisation_scores(saliency: np.ndarray, mask: np.ndarray, *, what: str = "map") -> tuple[float, float]:
    """(:func:`average_precision`, :func:`pr_auc_trapezoid`) of the map against the mask, from one
    precision-recall curve: the same two numbers (scikit-learn's binary AP is the step integral of this very
    curve), at half the cost; NaN for both when the mask is empty."""
    scores, truth = _check(saliency, mask, what)
    if not truth.any():
        return float("nan"), float("nan")
    precision, recall, _ = precision_recall_curve(truth, scores)
    # sklearn.metrics.average_precision_score's binary case, step for step (its -0.0 clipped the same way)
    ap = float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))
    return ap, float(auc(recall, precision))


#: (map bytes, mask bytes) digest -> (AP, PR-AUC): a criterion scores the same map against the same mask at
#: every sequential look and again for its verdict, and the average-mask prior once per method
_SCORED: "OrderedDict[bytes, tuple[float, float]]" = OrderedDict()
_SCORED_MAX = 65536


def scores_on_grid(saliency: np.ndarray, mask: np.ndarray, *, what: str = "map") -> tuple[float, float]:
    """:func:`localisation_scores` of the map resampled onto the mask's grid (:func:`resize_map`), remembered
    by content for the process: the same map and mask give the same numbers without a second curve."""
    m = np.asarray(saliency, dtype=np.float32)
    t = np.asarray(mask)
    key = array_digest(m, t)
    hit = _SCORED.get(key)
    if hit is None:
        hit = _SCORED[key] = localisation_scores(resize_map(m, t.shape), t, what=what)
        if len(_SCORED) > _SCORED_MAX:
            _SCORED.popitem(last=False)
    return hit


def resize_map(saliency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of a map onto another grid (e.g. the mask's native grid)."""
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.shape == tuple(shape):
        return saliency
    from skimage.transform import resize

    return resize(saliency, shape, order=1, mode="edge", anti_aliasing=False, preserve_range=True).astype(
        np.float32
    )


def blurred(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Each map Gaussian-blurred by ``sigma`` px (edges: nearest)."""
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(np.asarray(m, np.float64), sigma, mode="nearest") for m in maps])


def grid_sigma(sigma_128: float, shape) -> float:
    """A length given in pixels of a 128-px grid, on this grid."""
    return sigma_128 * max(shape) / 128.0


def lesion_maps(truths: list[np.ndarray], sigma: float) -> np.ndarray:
    """The lesion as a map: each mask softened by ``sigma`` px (ties inside it are broken at random)."""
    masks = np.stack([t.astype(np.float64) for t in truths])
    return blurred(masks, sigma) if sigma > 0 else masks
