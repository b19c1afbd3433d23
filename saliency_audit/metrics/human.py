"""Localisation scores of the radiologist benchmark (Saporta et al. 2022, CheXlocalize), for a map and a reader.

CheXlocalize (github.com/rajpurkarlab/cheXlocalize) scores a saliency method and the human benchmark readers
on the same images with the same two numbers, and we add AP:

* **hit** (the pointing game).  A map hits when its maximum lies in the ground truth (CheXlocalize's
  ``eval.py:get_hitrates``: the argmax of the map resized to the image).  Our maps are clipped at their 99th
  percentile, so the maximum is a plateau: :func:`saliency_audit.metrics.interpretability.pointing_hit`
  scores the expected hit over it (0 or 1 with a single maximum).  A reader hits when *any* of the reader's
  most representative points lies in the ground truth, and a reader who marked nothing on a positive image
  misses (``eval.py:get_hb_hitrates``).  When the reader's annotation is a segmentation without points, its
  points are :func:`representative_points`: in each region of the reader's mask, the pixel deepest inside it.
* **IoU** of a binary segmentation with the ground truth.  A map becomes a segmentation as
  ``heatmap_to_segmentation.py:cam_to_segmentation`` makes one: min-max scaled, quantised to 8 bits, Otsu's
  threshold, and the regions' contours filled (holes inside a region belong to it); or, with a tuned
  threshold ``t``, ``map > t`` on the min-max scaled map (``tune_heatmap_threshold.py`` picks ``t`` from 0.2 to
  0.7 per finding to maximise mIoU on a validation set).  A reader's segmentation is the reader's mask.
* **AP**: the average precision of the map's pixels against the ground truth
  (:func:`saliency_audit.metrics.localisation.average_precision`); a reader's mask is a binary score, so its
  AP is ``recall * precision + (1 - recall) * prevalence`` (the same function, ties and all).

An image without ground-truth pixels has no score (NaN), as everywhere in the audit.
"""
from __future__ import annotations

import numpy as np

from ..common.errors import AuditInputError


def _pair(a, truth, what: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    t = np.asarray(truth).astype(bool)
    if a.ndim != 2 or a.shape != t.shape:
        raise AuditInputError(f"{what}: array of size {a.shape} does not match the ground truth of size {t.shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise AuditInputError(f"{what}: map contains NaN or infinite values")
    return a, t


def otsu_segmentation(saliency, *, threshold: float | None = None) -> np.ndarray:
    """The map as CheXlocalize binarises it: min-max scaled; with ``threshold`` None, quantised to 8 bits
    (``uint8(255 * map)``), thresholded at Otsu's level (pixels above it) and each region's holes filled;
    else ``map > threshold``.  A constant map has no salient region: an empty segmentation.

    Otsu's level is scikit-image's (CheXlocalize calls OpenCV's; both maximise the between-class variance
    of the 256-level histogram), and hole filling is scipy's ``binary_fill_holes`` (CheXlocalize draws every
    contour OpenCV finds as a filled polygon, which fills the holes too)."""
    s = np.asarray(saliency, dtype=np.float64)
    if s.ndim != 2 or not np.isfinite(s).all():
        raise AuditInputError(f"map of shape {s.shape}: expected a finite 2-D map")
    span = s.max() - s.min()
    if not span > 0:
        return np.zeros(s.shape, dtype=bool)
    scaled = (s - s.min()) / span
    if threshold is not None:
        return scaled > threshold
    from scipy.ndimage import binary_fill_holes
    from skimage.filters import threshold_otsu

    q = np.uint8(255 * scaled)  # truncation, as CheXlocalize's np.uint8(255 * mask)
    return binary_fill_holes(q > threshold_otsu(q))


def iou(segmentation, truth, *, what: str = "segmentation") -> float:
    """|S ∩ T| / |S ∪ T|; NaN when the ground truth is empty (an empty segmentation of a lesion scores 0)."""
    seg, t = _pair(segmentation, truth, what)
    seg = seg.astype(bool)
    if not t.any():
        return float("nan")
    return float(np.logical_and(seg, t).sum() / np.logical_or(seg, t).sum())


def representative_points(mask) -> list[tuple[int, int]]:
    """(x, y) of one point per connected region of ``mask`` (8-connected): the pixel farthest from the region's
    outside (the first in raster order on a tie).  None for an empty mask: the reader pointed at nothing.

    Why this point: a reader's most representative point lies inside what the reader outlined; the region's
    centroid need not (a crescent-shaped effusion), the deepest pixel always does."""
    from scipy import ndimage

    m = np.asarray(mask).astype(bool)
    if not m.any():
        return []
    labels, n = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
    depth = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]  # padded: the image border is outside
    points = []
    for k in range(1, n + 1):
        inside = np.where(labels == k, depth, -1.0)
        y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
        points.append((int(x), int(y)))
    return points


def points_hit(points, truth, *, what: str = "reader") -> float:
    """1 when any (x, y) point lies in the ground truth, else 0 (no points: 0, a miss); NaN without truth."""
    t = np.asarray(truth).astype(bool)
    if not t.any():
        return float("nan")
    h, w = t.shape
    for x, y in points:
        if not (0 <= x < w and 0 <= y < h):
            raise AuditInputError(f"{what}: point ({x}, {y}) lies outside the {h}x{w} grid")
        if t[int(y), int(x)]:
            return 1.0
    return 0.0


def map_scores(saliency, truth, *, threshold: float | None = None, what: str = "map") -> dict:
    """{"hit", "iou", "ap"} of a saliency map (postprocessed, in [0, 1]) against the ground truth."""
    from .interpretability import pointing_hit
    from .localisation import average_precision

    s, t = _pair(np.asarray(saliency, dtype=np.float64), truth, what)
    return {"hit": pointing_hit(s, t, what=what),
            "iou": iou(otsu_segmentation(s, threshold=threshold), t, what=what),
            "ap": average_precision(s, t, what=what)}


def reader_scores(mask, truth, *, points=None, what: str = "reader") -> dict:
    """{"hit", "iou", "ap"} of a reader's mask (and most representative points, when the reader gave them)
    against the ground truth."""
    from .localisation import average_precision

    m, t = _pair(np.asarray(mask).astype(bool), truth, what)
    pts = representative_points(m) if points is None else points
    return {"hit": points_hit(pts, t, what=what), "iou": iou(m, t, what=what),
            "ap": average_precision(m.astype(np.float64), t, what=what)}
