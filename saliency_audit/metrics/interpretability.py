"""Human-interpretability scores of a saliency map against a lesion mask (or boxes rasterised to one).

* ``proportional_energy`` — Σ(S·M) / ΣS: the share of the map's mass inside
  the lesion (Idiap mednet's "proportional energy"; Wang et al. 2020,
  Score-CAM, "energy-based pointing game").  1 for a map that is zero
  outside the lesion; the lesion's area fraction for a uniform map.
* ``saliency_focus`` — Σ(S·M) / ΣM: the mean map value over the lesion
  (mednet's "average saliency focus").  1 for the mask itself; it rewards
  maps that are high *everywhere*, which is why it is judged against the
  average-mask prior scored the same way, never alone.
* ``pointing_hit`` — is the map's maximum inside the lesion (Zhang et al.
  2018, "Top-down neural attention by excitation backprop"; CheXlocalize's
  hit rate)?  Postprocessed maps are clipped at their 99th percentile, so the
  maximum is usually a plateau of many pixels: the score is the *expected*
  hit when the pointed pixel is drawn uniformly from the plateau, i.e. the
  fraction of maximal pixels inside the (optionally dilated) lesion.  With a
  single maximum it is 0 or 1 as in the original game.

Maps are non-negative (postprocessed to [0, 1]; a constant map, e.g. an
all-zero GradCAM, is all zeros).  A constant map says nothing about where
the lesion is and scores as a uniform map would: energy and pointing give
the lesion's area fraction, focus its value, 0.  An image without lesion pixels has no
score: NaN, excluded downstream, never a hit or a miss.
"""
from __future__ import annotations

import numpy as np

from ..common.errors import AuditInputError


def _check(saliency, mask, what: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(saliency, dtype=np.float64)
    m = np.asarray(mask).astype(bool)
    if s.shape != m.shape or s.ndim != 2:
        raise AuditInputError(f"{what}: map of size {s.shape} does not match mask of size {m.shape}")
    if not np.all(np.isfinite(s)):
        raise AuditInputError(f"{what}: saliency map contains NaN or infinite values")
    if s.min() < 0:
        raise AuditInputError(f"{what}: saliency map has negative values; expected a postprocessed map in [0, 1]")
    return s, m


def proportional_energy(saliency, mask, *, what: str = "map") -> float:
    """Σ(S·M) / ΣS; NaN when the mask is empty."""
    s, m = _check(saliency, mask, what)
    if not m.any():
        return float("nan")
    total = s.sum()
    return float(s[m].sum() / total) if total > 0 else float(m.mean())  # all-zero: as uniform, the area fraction


def saliency_focus(saliency, mask, *, what: str = "map") -> float:
    """Σ(S·M) / ΣM: the mean map value over the lesion; NaN when the mask is empty."""
    s, m = _check(saliency, mask, what)
    if not m.any():
        return float("nan")
    return float(s[m].mean())


def pointing_hit(saliency, mask, *, tolerance: int = 0, what: str = "map") -> float:
    """Expected hit of the pointing game in [0, 1]; ``tolerance``: pixels the lesion is dilated by. NaN if empty."""
    s, m = _check(saliency, mask, what)
    if not m.any():
        return float("nan")
    if tolerance > 0:
        from scipy.ndimage import binary_dilation

        yy, xx = np.mgrid[-tolerance : tolerance + 1, -tolerance : tolerance + 1]
        m = binary_dilation(m, structure=(yy**2 + xx**2) <= tolerance**2)
    top = s == s.max()
    return float(m[top].mean())
