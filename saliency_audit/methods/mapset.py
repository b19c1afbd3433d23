"""MapSet: the saliency maps of one method on a list of images, as the criteria read them.

Here, beside the methods that make the maps, so that a criterion can build one (the randomization
criterion concatenates each image's map from its own randomized model) without importing the map store
(:class:`saliency_audit.engine.maps.MapStore`) that computes and caches them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass
class MapSet:
    method: str
    ids: list[str]
    maps: np.ndarray  # (N, H, W) float32 in [0, 1], model input resolution
    constant: np.ndarray  # (N,) bool
    signed: np.ndarray  # (N, H, W) float32 in [-1, 1]: channel sum with signs, for signed rank correlation
    computed: int  # maps computed now (the rest came from the cache)
    seconds: float
    notes: dict = field(default_factory=dict)
    #: the cache folder of the store that made the maps (None: no cache): the criteria keep there what they
    #: compute from the maps alone, keyed by the maps' content (randomization.similarities' scores)
    cache: Path | None = None

    def head(self, n: int) -> "MapSet":
        """The first ``n`` images' maps (views; similarity features are recomputed for them)."""
        return MapSet(self.method, self.ids[:n], self.maps[:n], self.constant[:n], self.signed[:n], 0, 0.0,
                      dict(self.notes), self.cache)

    @classmethod
    def concat(cls, parts: Sequence["MapSet"]) -> "MapSet":
        """One MapSet of ``parts``' images in order (maps of the same method from different models, e.g. each
        image's own randomized model); the first part's notes and cache folder."""
        return cls(parts[0].method, [i for p in parts for i in p.ids], np.concatenate([p.maps for p in parts]),
                   np.concatenate([p.constant for p in parts]), np.concatenate([p.signed for p in parts]),
                   sum(p.computed for p in parts), sum(p.seconds for p in parts), dict(parts[0].notes),
                   parts[0].cache)
