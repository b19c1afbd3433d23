"""AuditDataset: a lazy sequence of Samples plus what the criteria ask of it."""
from __future__ import annotations

import hashlib
import json
from typing import Iterator, Sequence

import numpy as np

from .sample import Sample


class AuditDataset(Sequence[Sample]):
    """Subclasses implement ``__len__``, ``load(i)`` and ``describe(i)`` (label / has-truth without pixels)."""

    name = "dataset"
    root: str | None = None

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, i: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, i: int) -> dict:
        """Cheap metadata of item i: at least ``id``, ``label``, ``has_lesion`` (no pixel loading if possible)."""
        s = self.load(i)
        return {"id": s.id, "label": s.label, "has_lesion": s.has_lesion}

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self.load(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.load(i)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self.load(i)

    def localisation_indices(self, n: int) -> list[int]:
        """The first ``n`` images with a lesion and ground truth, in the dataset's deterministic order."""
        return [i for i in range(len(self)) if self.describe(i)["has_lesion"]][:n]

    def prior_masks(self, exclude: set[int], n: int, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
        """Average lesion mask (on ``shape``) over up to ``n`` lesion images *not* in ``exclude``."""
        from skimage.transform import resize

        total = np.zeros(shape, dtype=np.float64)
        used = 0
        for i in range(len(self)):
            if used >= n:
                break
            if i in exclude or not self.describe(i)["has_lesion"]:
                continue
            truth = self.load(i).truth().astype(np.float64)
            if truth.shape != shape:
                truth = resize(truth, shape, order=1, mode="edge", anti_aliasing=True, preserve_range=True)
            total += truth
            used += 1
        return (total / max(used, 1)), used

    def manifest_sha256(self, indices: Sequence[int]) -> str:
        h = hashlib.sha256()
        for i in indices:
            h.update(json.dumps(self.describe(i), sort_keys=True, default=str).encode())
        return h.hexdigest()
