"""IndexedDataset: a dataset described by a light index of entries, pixels read only when a sample is loaded.

Every file-backed adapter (folder, SIIM, RSNA, NIH) parses its CSVs into a list
of :class:`Entry` (ids, paths, labels, boxes, RLE strings: a few hundred bytes
each) and lets this class do the rest, so a 12,000-image dataset costs a few MB
of index and nothing is decoded until a criterion asks for a sample.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..common.errors import AuditInputError
from ..common.hashing import file_sha256
from .base import AuditDataset
from .sample import Sample


@dataclass
class Entry:
    id: str
    image: Path | None  # None: listed in a CSV but not on disk (``missing`` says so)
    label: int | None = None  # None: derived from the ground truth
    where: str = ""  # "labels.csv row 7": where the entry came from, for error messages
    mask: Path | None = None  # a mask image file (same size as the image)
    rle: tuple[str, ...] = ()  # run-length rows, unioned (SIIM)
    rle_form: str = "relative"
    boxes: tuple[tuple[int, int, int, int], ...] = ()  # inclusive corners in the image's pixels
    # where each run-length string and each box came from ("train-rle.csv: row 9"), for errors only the
    # image's size shows (a run or a box beyond it); empty: ``where``
    rle_rows: tuple[str, ...] = ()
    box_rows: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)
    missing: str | None = None

    def image_path(self) -> Path:
        if self.image is None:
            raise AuditInputError(self.missing or f"{self.where}: image file not found")
        return self.image

    def rle_positive(self) -> bool:
        return any(r.strip() not in ("", "-1") for r in self.rle)


class IndexedDataset(AuditDataset):
    """Subclasses fill ``self.entries`` (and ``self.skipped`` for rows dropped under ``--skip-bad-samples``)."""

    def __init__(self, root: str, name: str, entries: list[Entry], skipped: list[dict] | None = None):
        self.root = str(root)
        self.name = name
        self.entries = entries
        self.skipped = list(skipped or [])
        self._has_lesion: dict[str, bool] = {}  # by id: entries may be filtered or reordered

    def __len__(self) -> int:
        return len(self.entries)

    # -- cheap metadata ---------------------------------------------------------------------
    def has_truth(self, i: int) -> bool:
        e = self.entries[i]
        if e.id not in self._has_lesion:
            if e.boxes or e.rle_positive():
                self._has_lesion[e.id] = True
            elif e.mask is not None:
                from .imageio import read_gray

                self._has_lesion[e.id] = bool(read_gray(e.mask).max() > 0)
            else:
                self._has_lesion[e.id] = False
        return self._has_lesion[e.id]

    def sample_id(self, i: int) -> str:
        return self.entries[i].id

    def describe(self, i: int) -> dict:
        e = self.entries[i]
        has = self.has_truth(i)
        return {"id": e.id, "label": int(has) if e.label is None else e.label, "has_lesion": has, **e.meta}

    def files(self, i: int) -> list[Path]:
        e = self.entries[i]
        return [p for p in (e.image_path(), e.mask) if p is not None]

    def manifest_entry(self, i: int) -> dict:
        d = dict(self.describe(i))
        d["files"] = {str(p.relative_to(Path(self.root).resolve()) if p.is_relative_to(Path(self.root).resolve())
                          else p): file_sha256(p) for p in self.files(i)}
        if self.entries[i].rle:
            d["rle_sha256"] = hashlib.sha256("\n".join(self.entries[i].rle).encode()).hexdigest()
        return d

    # -- pixels -----------------------------------------------------------------------------
    def load_truth(self, i: int, shape: tuple[int, int] | None = None):
        """(mask or None, boxes or None, (H, W)) of entry i; reads only the image header when ``shape`` is unknown."""
        from .imageio import image_size, read_gray

        e = self.entries[i]
        if shape is None:
            shape = image_size(e.image_path())
        mask = None
        if e.mask is not None:
            mask = read_gray(e.mask) > 0.5
            if mask.shape != tuple(shape):
                raise AuditInputError(f"{e.mask}: mask of size {mask.shape} does not match image {e.image.name} "
                                      f"of size {tuple(shape)}")
        elif e.rle:
            from .rle import RLEError, decode

            mask = np.zeros(tuple(shape), dtype=bool)
            for rle, where in zip(e.rle, e.rle_rows or [e.where] * len(e.rle)):
                try:
                    mask |= decode(rle, tuple(shape), e.rle_form)
                except RLEError as exc:
                    raise AuditInputError(f"{where}: {exc}") from None
        boxes = e.boxes or None
        if boxes:
            h, w = shape
            for b, where in zip(boxes, e.box_rows or [e.where] * len(boxes)):
                if b[0] >= w or b[1] >= h or b[2] < 0 or b[3] < 0:
                    raise AuditInputError(f"{where}: box {b} lies outside the {w}x{h} image {e.image.name!r}")
        return mask, boxes, tuple(shape)

    def load(self, i: int) -> Sample:
        from .imageio import read_image

        e = self.entries[i]
        image = read_image(e.image_path())
        mask, boxes, _ = self.load_truth(i, image.shape)
        has = (mask is not None and bool(mask.any())) or bool(boxes)
        return Sample(id=e.id, image=torch.from_numpy(image)[None], label=int(has) if e.label is None else e.label,
                      mask=mask, boxes=boxes, meta={"path": str(e.image), **e.meta})
