"""AuditDataset: a lazy sequence of Samples plus the deterministic selection the criteria ask of it."""
from __future__ import annotations

import hashlib
import itertools
import json
from typing import Iterator, Sequence

import numpy as np

from ..common.errors import AuditInputError
from .sample import Sample


class AuditDataset(Sequence[Sample]):
    """Subclasses implement ``__len__``, ``load(i)`` and ``describe(i)`` (label / has-lesion without pixels).

    ``skipped`` lists the samples left out under ``--skip-bad-samples`` (``{"id", "reason"}``), for the evidence.
    """

    name = "dataset"
    root: str | None = None
    skip_bad = False

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, i: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, i: int) -> dict:
        """Cheap metadata of item i: at least ``id``, ``label``, ``has_lesion`` (no pixel loading if possible)."""
        s = self.load(i)
        return {"id": s.id, "label": s.label, "has_lesion": s.has_lesion}

    def sample_id(self, i: int) -> str:
        return self.describe(i)["id"]

    def load_truth(self, i: int, shape: tuple[int, int] | None = None):
        """(mask or None, boxes or None, native (H, W)) of item i; adapters override to skip the pixels."""
        s = self.load(i)
        return s.mask, s.boxes, tuple(s.image.shape[-2:])

    def manifest_entry(self, i: int) -> dict:
        return self.describe(i)

    def native_size(self, n: int = 16) -> tuple[int, int] | None:
        """The most common native (H, W) of the first ``n`` readable images (what ``init`` fills
        ``--input-size`` with), or None when none can be read."""
        from collections import Counter

        sizes: Counter = Counter()
        for i in range(len(self)):
            if sum(sizes.values()) >= n:
                break
            try:
                sizes[tuple(int(v) for v in self.load(i).image.shape[-2:])] += 1
            except AuditInputError:
                continue
        return sizes.most_common(1)[0][0] if sizes else None

    def info(self) -> dict:
        """What the evidence should say about how this dataset was read (files, detected formats)."""
        return {}

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

    # -- deterministic selection ------------------------------------------------------------
    @property
    def skipped(self) -> list[dict]:
        if "_skipped" not in self.__dict__:
            self._skipped: list[dict] = []
        return self._skipped

    @skipped.setter
    def skipped(self, value: list[dict]) -> None:
        self._skipped = value

    def order(self) -> list[int]:
        """Items in a fixed order that depends on their ids only, not on how the files were listed.

        Sorting by a hash of the id spreads the selection over the whole
        dataset (file names often follow acquisition order or site).
        """
        return sorted(range(len(self)), key=lambda i: hashlib.sha256(self.sample_id(i).encode()).hexdigest())

    def _bad(self, i: int, exc: AuditInputError) -> None:
        """Record a bad item under ``--skip-bad-samples``; otherwise let the error stop the criterion."""
        if not self.skip_bad:
            raise exc
        sid = self.sample_id(i)
        if not any(s["id"] == sid for s in self.skipped):
            self.skipped.append({"id": sid, "reason": str(exc)})

    def lesion_candidates(self) -> Iterator[int]:
        """Items with a lesion and ground truth, lazily, in :meth:`order`.  A positive item without ground
        truth (label 1, empty mask, no box) cannot be localised: it is passed over and recorded in
        :attr:`unlocalised`, never silently."""
        seen = set(self.unlocalised)
        for i in self.order():
            try:
                d = self.describe(i)
            except AuditInputError as exc:
                self._bad(i, exc)
                continue
            if d["has_lesion"]:
                yield i
            elif d.get("label") and d["id"] not in seen:
                seen.add(d["id"])
                self.unlocalised.append(d["id"])

    @property
    def unlocalised(self) -> list[str]:
        """Ids of positive items passed over by the localisation criteria for want of a mask or box."""
        return self.__dict__.setdefault("_unlocalised", [])

    def localisation_indices(self, n: int) -> list[int]:
        """The first ``n`` images with a lesion and ground truth, in :meth:`order`."""
        return list(itertools.islice(self.lesion_candidates(), n))

    def stratified_indices(self, n: int) -> list[int]:
        """``n`` items in :meth:`order` with the dataset's label proportions (largest remainder)."""
        by_label: dict[int, list[int]] = {}
        for i in self.order():
            try:
                by_label.setdefault(int(self.describe(i)["label"]), []).append(i)
            except AuditInputError as exc:
                self._bad(i, exc)
        total = sum(len(v) for v in by_label.values())
        n = min(n, total)
        quota = {k: n * len(v) / total for k, v in by_label.items()}
        counts = {k: int(q) for k, q in quota.items()}
        for k in sorted(quota, key=lambda k: (counts[k] - quota[k], k))[: n - sum(counts.values())]:
            counts[k] += 1
        chosen = {i for k, v in by_label.items() for i in v[: counts[k]]}
        return [i for i in self.order() if i in chosen]

    def select(self, n: int, size: tuple[int, int] | None = None, lesion: bool = False
               ) -> tuple[list[int], list[Sample]]:
        """Load ``n`` samples resized to ``size``: lesion images with ground truth, else stratified by label.

        A bad item is skipped (and listed in ``skipped``) under
        ``--skip-bad-samples`` and the next one in :meth:`order` takes its
        place; otherwise its error stops the criterion.  A lesion that
        vanishes at ``size`` (smaller than a pixel there) is always left out
        and listed.
        """
        from .resize import check_resizable, resize_sample

        if lesion:
            candidates: Iterator[int] = self.lesion_candidates()
        else:
            first = self.stratified_indices(n)
            chosen = set(first)
            candidates = itertools.chain(first, (i for i in self.order() if i not in chosen))
        idx, samples = [], []
        for i in candidates:
            if len(samples) >= n:
                break
            try:
                s = self.load(i)
                if size is not None:
                    check_resizable(tuple(s.image.shape[-2:]), size, s.meta.get("path") or s.id)
            except AuditInputError as exc:
                self._bad(i, exc)
                continue
            if size is not None:
                s = resize_sample(s, size)
            if lesion and (s.truth() is None or not s.truth().any()):
                self.skipped.append({"id": s.id, "reason": f"lesion vanishes at the model's input size {tuple(size)}"})
                continue
            idx.append(i)
            samples.append(s)
        return idx, samples

    def prior_masks(self, exclude: set[int], n: int, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
        """Average lesion mask (on ``shape``) over up to ``n`` lesion images *not* in ``exclude``."""
        from .resize import check_resizable, resize_truth

        total = np.zeros(shape, dtype=np.float64)
        used = 0
        for i in self.order():
            if used >= n:
                break
            if i in exclude:
                continue
            try:
                if not self.describe(i)["has_lesion"]:
                    continue
                mask, boxes, src = self.load_truth(i)
                check_resizable(src, shape, self.sample_id(i))  # a tiny mask would spread over the whole prior
            except AuditInputError as exc:
                self._bad(i, exc)
                continue
            truth = resize_truth(mask, boxes, src, shape)
            if truth is None or not truth.any():
                continue
            total += truth
            used += 1
        return (total / max(used, 1)), used

    def manifest_sha256(self, indices: Sequence[int]) -> str:
        """Hash over the audited items' metadata and, for file-backed datasets, their files' sha256."""
        h = hashlib.sha256()
        for i in sorted(indices, key=self.sample_id):
            h.update(json.dumps(self.manifest_entry(i), sort_keys=True, default=str).encode())
        return h.hexdigest()
