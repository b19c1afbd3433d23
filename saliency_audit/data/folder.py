"""``--dataset=folder``: ``images/``, ``masks/`` (same stem), optional ``labels.csv`` and ``boxes.csv``.

labels.csv: ``image,label[,split]``; boxes.csv: ``image,x,y,width,height``
(top-left corner and size in pixels; several rows per image union).  Without
labels.csv an image's label is 1 when it has a non-empty mask or a box.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ..errors import AuditInputError, AuditUsageError
from .base import AuditDataset
from .sample import Sample

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def read_gray(path: Path) -> np.ndarray:
    """An image file as float32 (H, W) in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("I") if im.mode in ("I;16", "I;16B", "I") else im.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise AuditInputError(f"{path}: cannot read image ({exc.__class__.__name__})") from None
    arr = arr.astype(np.float32)
    top = 65535.0 if arr.max() > 255 else 255.0
    return arr / top


class FolderDataset(AuditDataset):
    name = "folder"

    def __init__(self, root: str, split: str | None = None):
        self.root = str(root)
        base = Path(root)
        images = base / "images"
        if not images.is_dir():
            raise AuditUsageError(f"--data-root={root}: no images/ folder")
        self.paths = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.masks = base / "masks"
        self.labels: dict[str, int] = {}
        self.splits: dict[str, str] = {}
        self.boxes: dict[str, list[tuple[int, int, int, int]]] = {}
        labels_csv = base / "labels.csv"
        if labels_csv.is_file():
            for row_no, row in enumerate(self._rows(labels_csv, ("image", "label")), start=2):
                try:
                    self.labels[Path(row["image"]).stem] = int(row["label"])
                except ValueError:
                    raise AuditInputError(f"{labels_csv}: row {row_no}: label {row['label']!r} is not an integer") from None
                if row.get("split"):
                    self.splits[Path(row["image"]).stem] = row["split"]
        boxes_csv = base / "boxes.csv"
        if boxes_csv.is_file():
            for row_no, row in enumerate(self._rows(boxes_csv, ("image", "x", "y", "width", "height")), start=2):
                try:
                    x, y, w, h = (int(round(float(row[k]))) for k in ("x", "y", "width", "height"))
                except ValueError:
                    raise AuditInputError(f"{boxes_csv}: row {row_no}: box fields must be numbers") from None
                self.boxes.setdefault(Path(row["image"]).stem, []).append((x, y, x + w - 1, y + h - 1))
        if split is not None:
            self.paths = [p for p in self.paths if self.splits.get(p.stem) == split]
        if not self.paths:
            raise AuditUsageError(f"--data-root={root}: no images found in {images}")

    @staticmethod
    def _rows(path: Path, required: tuple[str, ...]):
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            missing = [c for c in required if c not in fields]
            if missing:
                raise AuditInputError(f"{path}: missing column(s) {', '.join(missing)}")
            for row in reader:
                yield {k.strip(): (v or "").strip() for k, v in row.items() if k}

    def __len__(self) -> int:
        return len(self.paths)

    def _mask_path(self, stem: str) -> Path | None:
        for suffix in (".png", ".tif", ".tiff", ".bmp"):
            p = self.masks / f"{stem}{suffix}"
            if p.is_file():
                return p
        return None

    def describe(self, i: int) -> dict:
        stem = self.paths[i].stem
        mp = self._mask_path(stem)
        has_truth = bool(self.boxes.get(stem)) or (mp is not None and bool(read_gray(mp).max() > 0))
        label = self.labels.get(stem, int(has_truth))
        return {"id": stem, "label": label, "has_lesion": has_truth}

    def load(self, i: int) -> Sample:
        path = self.paths[i]
        image = read_gray(path)
        mask = None
        mp = self._mask_path(path.stem)
        if mp is not None:
            mask = read_gray(mp) > 0.5
            if mask.shape != image.shape:
                raise AuditInputError(f"{mp}: mask of size {mask.shape} does not match image {path.name} of size {image.shape}")
        boxes = tuple(self.boxes.get(path.stem, ())) or None
        has = (mask is not None and mask.any()) or bool(boxes)
        label = self.labels.get(path.stem, int(has))
        return Sample(id=path.stem, image=torch.from_numpy(image)[None], label=label, mask=mask, boxes=boxes,
                      meta={"path": str(path)})
