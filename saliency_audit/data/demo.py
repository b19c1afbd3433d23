"""The demo dataset: the generated chest-X-ray-like world's test split."""
from __future__ import annotations

import numpy as np
import torch

from .base import AuditDataset
from .sample import Sample


class DemoDataset(AuditDataset):
    """Audited images come from the ``test`` split; the average-mask prior from the disjoint ``prior`` split."""

    name = "demo"

    def __init__(self, n: int = 400, seed: int = 0):
        from ..demo import GENERATOR_VERSION

        self.n = n
        self.seed = seed
        self.root = f"generated:v{GENERATOR_VERSION}:seed{seed}"
        self._cache: dict[tuple[str, int], Sample] = {}

    def __len__(self) -> int:
        return self.n

    def _flags(self, split: str, i: int) -> tuple[bool, bool]:
        rng = np.random.default_rng([self.seed, 7919, i, 1 if split == "test" else 2])
        return bool(rng.random() < 0.5), bool(rng.random() < 0.5)

    def _render(self, split: str, i: int) -> Sample:
        key = (split, i)
        if key not in self._cache:
            from ..demo import render_sample

            lesion, marker = self._flags(split, i)
            d = render_sample(split, i, self.seed, lesion=lesion, marker=marker)
            self._cache[key] = Sample(
                id=f"demo-{split}-{i:05d}", image=torch.from_numpy(np.ascontiguousarray(d.image))[None].float(),
                label=int(d.label), mask=d.mask.astype(bool), boxes=tuple(d.boxes), meta={"marker": bool(d.marker)},
            )
        return self._cache[key]

    def order(self) -> list[int]:
        # Generated i.i.d.: index order is already a random order, and keeps the demo's documented numbers.
        return list(range(self.n))

    def sample_id(self, i: int) -> str:
        return f"demo-test-{i:05d}"

    def load(self, i: int) -> Sample:
        return self._render("test", i)

    def describe(self, i: int) -> dict:
        lesion, marker = self._flags("test", i)
        return {"id": f"demo-test-{i:05d}", "label": int(lesion), "has_lesion": lesion, "marker": marker}

    def prior_masks(self, exclude, n, shape):
        from .resize import resize_mask

        total = np.zeros(shape, dtype=np.float64)
        used = i = 0
        while used < n and i < 50 * n:
            lesion, _ = self._flags("prior", i)
            if lesion:
                total += resize_mask(self._render_prior(i) > 0, shape)
                used += 1
            i += 1
        return total / max(used, 1), used

    def _render_prior(self, i: int) -> np.ndarray:
        from ..demo import render_mask

        lesion, _ = self._flags("prior", i)
        return render_mask("prior", i, self.seed, lesion=lesion).astype(np.float64)  # render_sample's mask
