"""Shared postprocessing: every map that is compared goes through exactly this.

Channel reduction by absolute sum, clip at the 99th percentile, min-max per
map (PAIR's ``VisualizeImageGrayscale``, the seed study's visualisation).
Never normalised across a batch: one image's outlier must not dim another's
map.  A constant map (e.g. GradCAM of a randomized model, all zero after the
ReLU) has no min-max scaling; it becomes all zeros and is *flagged*, so the
criteria can count and report it instead of silently scoring it.

One deviation from PAIR: when the 99th percentile equals the map's minimum (a sparse
map: under 1 % of pixels non-zero, e.g. a sharp GradCAM on a small lesion),
clipping would flatten a non-constant map to a constant; such a map is
scaled by its maximum instead and keeps its information.
"""
from __future__ import annotations

import numpy as np

from ..common.errors import AuditInputError


def postprocess(raw: np.ndarray, *, clip_percentile: float = 99.0, what: str = "map") -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) or (N, H, W) raw attributions -> (maps (N, H, W) float32 in [0, 1], constant flags (N,))."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 4:
        maps = np.abs(raw).sum(axis=1)
    elif raw.ndim == 3:
        maps = np.abs(raw)
    else:
        raise ValueError(f"expected (N,C,H,W) or (N,H,W) attributions, got shape {raw.shape}")
    bad = ~np.isfinite(maps).reshape(len(maps), -1).all(axis=1)
    if bad.any():
        raise AuditInputError(f"{what}: {int(bad.sum())} saliency map(s) contain NaN or infinite values")
    flat = maps.reshape(len(maps), -1)
    if clip_percentile < 100:
        top = np.percentile(flat, clip_percentile, axis=1, keepdims=True)
        sparse = top <= flat.min(axis=1, keepdims=True)
        flat = np.where(sparse, flat, np.minimum(flat, top))
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    constant = span[:, 0] <= 0
    out = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1.0), 0.0)
    return out.reshape(maps.shape).astype(np.float32), constant


def signed_maps(raw: np.ndarray, *, clip_percentile: float = 99.0) -> np.ndarray:
    """Signed companion maps for rank correlations on signed attributions (Adebayo et al. 2018).

    Channel *sum* (signs kept), scaled per map by the ``clip_percentile`` of
    |values| and clipped to [-1, 1]; an all-zero map stays zero.
    """
    raw = np.asarray(raw, dtype=np.float64)
    maps = raw.sum(axis=1) if raw.ndim == 4 else raw
    flat = maps.reshape(len(maps), -1)
    scale = np.percentile(np.abs(flat), clip_percentile, axis=1, keepdims=True)
    top = np.abs(flat).max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, np.where(top > 0, top, 1.0))
    return np.clip(flat / scale, -1.0, 1.0).reshape(maps.shape).astype(np.float32)
