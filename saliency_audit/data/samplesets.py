"""SampleSets: which images each criterion evaluates, loaded once per run, and the average-mask prior.

* the *localisation set*: the first ``n_images`` images with a lesion and
  ground truth (utility, energy, focus, pointing, completeness), with their
  masks on the evaluation grid and the average-mask prior;
* the *first* ``n`` images of it (randomization, consistency), or ``n``
  images stratified by label when a dataset has too few lesions.

The average-mask prior is what a map that knows only where lesions usually
are would draw.  It must not contain the audited image's own mask, or it
would score that image too well:

* ``held-out`` — the mean mask of lesion images *outside* the audited set
  (up to ``utility.prior_images``);
* ``leave-one-out`` — for audited image i, the mean mask of the *other*
  audited images: no image sees its own mask, and no audited image is spent
  on the prior.

``utility.prior = "auto"`` (default) takes whichever is built from more
masks (held-out on a tie: it is independent of every audited image), so a
team that audits all of its positives still gets verdicts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..common.errors import AuditUsageError


@dataclass
class Localisation:
    indices: list[int]
    samples: list
    truths: list[np.ndarray]  # (H, W) bool on the evaluation grid
    priors: list[np.ndarray]  # (H, W) float per image (the same array for every image when held out)
    prior_kind: str  # "held-out" | "leave-one-out"
    prior_n: int  # masks each image's prior is built from

    def head(self, n: int) -> "Localisation":
        """The first ``n`` images (with their priors, still built without each image's own mask)."""
        return Localisation(self.indices[:n], self.samples[:n], self.truths[:n], self.priors[:n], self.prior_kind,
                            self.prior_n)

    def only(self, ids) -> "Localisation":
        """The images of ``ids`` (in this set's order): what is left when some maps could not be read."""
        keep = [k for k, s in enumerate(self.samples) if s.id in set(ids)]
        return Localisation([self.indices[k] for k in keep], [self.samples[k] for k in keep],
                            [self.truths[k] for k in keep], [self.priors[k] for k in keep], self.prior_kind,
                            self.prior_n)

    def describe(self) -> dict:
        return {"n_localisation": len(self.indices), "prior": self.prior_kind, "prior_masks": self.prior_n}


def leave_one_out(truths: list[np.ndarray]) -> list[np.ndarray]:
    """Each image's prior: the mean of the other images' masks."""
    stack = np.stack([t.astype(np.float64) for t in truths])
    total = stack.sum(axis=0)
    return [(total - t) / (len(truths) - 1) for t in stack]


class SampleSets:
    def __init__(self, config, dataset, grid, *, name: str, timings: dict | None = None, size_source=None):
        """``dataset``: a callable returning the AuditDataset; ``grid``: a callable returning (H, W);
        ``size_source``: a callable returning where the grid was read (the checkpoint's key), or None."""
        self.config = config
        self._size_source = size_source
        self._dataset = dataset
        self._grid = grid
        self.name = name
        self.timings = timings if timings is not None else {}
        self._sets: dict[tuple[str, int], tuple[list[int], list]] = {}
        self._localisation: Localisation | None = None
        self.resized: dict | None = None  # the images' native size when the audit resizes them unasked

    def select(self, n: int, lesion: bool) -> tuple[list[int], list]:
        """``n`` samples on the evaluation grid (memoised: DICOM decoding is not free)."""
        key = ("lesion" if lesion else "stratified", n)
        if key not in self._sets:
            grid = self._grid()
            t0 = time.perf_counter()
            self._sets[key] = self._dataset().select(n, grid, lesion=lesion)
            self.timings["samples"] = self.timings.get("samples", 0.0) + time.perf_counter() - t0
            self._say_resized(self._sets[key][1], tuple(grid))
        return self._sets[key]

    def _say_resized(self, samples: list, grid: tuple[int, int]) -> None:
        """Once per run: when no --input-size was given and the images are natively of another size than the one
        the audit feeds the model (the architecture's default), say so in one line and keep it for the evidence:
        a model trained at 128 px and audited at 224 px may still classify, and nothing else would tell."""
        if self.resized is not None or tuple(self.config.model.input_size) or not samples:
            return
        from collections import Counter

        sizes = Counter(tuple(s.meta.get("native_size") or s.image.shape[-2:]) for s in samples)
        native, count = sizes.most_common(1)[0]
        if native == grid:
            return
        self.resized = {"native_size": list(native), "images": count, "of": len(samples), "audited_at": list(grid)}
        from ..common import progress

        source = self._size_source() if self._size_source else None
        if source:
            self.resized["size_from"] = source
        progress.note(f"saliency-audit: the images are {native[0]}x{native[1]} ({count} of {len(samples)}); they are "
                      f"audited at {grid[0]}x{grid[1]}, " + (f"the training size {source} records" if source else
                      "the model's default input size. If the model was trained at another size, give --input-size"))

    def first(self, n: int) -> list:
        """The first ``n`` images with ground truth (the localisation set's head), else ``n`` stratified by label."""
        _, samples = self.select(n, lesion=True)
        if len(samples) < n:
            _, samples = self.select(n, lesion=False)
        return samples

    def used(self) -> list[int]:
        return sorted({i for idx, _ in self._sets.values() for i in idx})

    def all_samples(self):
        for _, samples in self._sets.values():
            yield from samples

    def localisation(self) -> Localisation:
        """The lesion images of the localisation criteria with their masks and priors."""
        if self._localisation is None:
            idx, samples = self.select(self.config.n_images, lesion=True)
            if len(idx) < 2:
                raise AuditUsageError(f"--dataset={self.name}: localisation needs at least 2 images with lesion "
                                      f"masks or boxes; found {len(idx)}")
            truths = [s.truth() for s in samples]
            p = self.config.utility
            held, held_n = (None, 0)
            if p.prior != "leave-one-out":
                held, held_n = self._dataset().prior_masks(set(idx), p.prior_images, truths[0].shape)
            loo_n = len(truths) - 1
            if p.prior == "held-out" and held_n == 0:
                raise AuditUsageError(f"--dataset={self.name}: utility.prior = 'held-out' needs lesion images "
                                      "outside the audited set; there are none (use 'auto' or 'leave-one-out')")
            if p.prior == "held-out" or (p.prior == "auto" and held_n >= loo_n):
                loc = Localisation(idx, samples, truths, [held] * len(truths), "held-out", held_n)
            else:
                loc = Localisation(idx, samples, truths, leave_one_out(truths), "leave-one-out", loo_n)
            self._localisation = loc
        return self._localisation

    def describe(self) -> dict:
        out = self._localisation.describe() if self._localisation is not None else {}
        return {**out, "resized_unasked": self.resized} if self.resized else out
