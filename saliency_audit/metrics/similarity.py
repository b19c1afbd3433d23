"""Similarity between two saliency maps of the same image."""
from __future__ import annotations

import numpy as np
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
