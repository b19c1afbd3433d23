"""Disk cache of XRAI's Felzenszwalb label images, keyed by the image's content and the segmentation parameters.

Segments depend only on the image the model sees, never on the model, so a second run, another pytest-xdist
worker or another model on the same images (a new checkpoint, a reference architecture of the same input
size) reads them instead of re-running six Felzenszwalb segmentations per image.  What is stored is the
per-scale label images before dilation (small, compressible); dilating them again is cheap.  Writes are
atomic (temp file + ``os.replace``, as in :class:`saliency_audit.engine.maps.MapStore`), so workers can share the
folder; a torn or foreign file is recomputed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def path(cache_dir, key: str) -> Path | None:
    if cache_dir is None:
        return None
    return Path(cache_dir) / "segments" / key[:2] / f"{key}.npz"


def load(cache_dir, key: str) -> tuple[np.ndarray, int] | None:
    """(labels (S, H, W), dilation radius) or None when absent or unreadable."""
    p = path(cache_dir, key)
    if p is None or not p.is_file():
        return None
    try:
        with np.load(p) as z:
            if str(z["key"]) != key:
                return None
            return z["labels"].astype(np.int64), int(z["radius"])
    except Exception:  # a torn or foreign file: recompute it
        return None


def save(cache_dir, key: str, labels: np.ndarray, radius: int) -> None:
    p = path(cache_dir, key)
    if p is None:
        return
    dtype = np.uint16 if labels.size and 0 <= labels.min() and labels.max() < 2**16 else np.int64
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
    except OSError:  # a read-only cache folder only costs the recomputation
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, key=np.str_(key), labels=labels.astype(dtype), radius=np.int64(radius))
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
