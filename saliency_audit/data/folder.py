"""``--dataset=folder``: ``images/``, ``masks/`` (same stem), optional ``labels.csv`` and ``boxes.csv``.

labels.csv: ``image,label[,split]``; boxes.csv: ``image,x,y,width,height``
(top-left corner and size in pixels; several rows per image union).  Without
labels.csv an image's label is 1 when it has a non-empty mask or a box.
Images may be PNG, JPEG, TIFF, BMP or DICOM (``.dcm``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import AuditInputError, AuditUsageError
from .imageio import IMAGE_SUFFIXES
from .indexed import Entry, IndexedDataset
from .splits import stem
from .tables import read_rows, to_number

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")


def box_corners(x: float, y: float, w: float, h: float) -> tuple[int, int, int, int]:
    """Top-left corner and size (pixels, possibly fractional) -> inclusive corners covering every touched pixel."""
    import math

    x0, y0 = math.floor(x), math.floor(y)
    return x0, y0, max(math.ceil(x + w) - 1, x0), max(math.ceil(y + h) - 1, y0)


def parse_box(row: dict, cols: tuple[str, str, str, str], where: str) -> tuple[int, int, int, int]:
    """One CSV row's box (top-left x, y, width, height) as inclusive corners; errors name ``where``."""
    x, y, w, h = (to_number(row[c], where, c) for c in cols)
    if w <= 0 or h <= 0:
        raise AuditInputError(f"{where}: box width and height must be positive, got {w:g}x{h:g}")
    if x < 0 or y < 0:
        raise AuditInputError(f"{where}: box corner ({x:g}, {y:g}) is negative")
    return box_corners(x, y, w, h)


def read_boxes(path: Path, id_col: str, skipped: list[dict] | None, cols=("x", "y", "width", "height")
               ) -> dict[str, list[tuple[int, int, int, int]]]:
    """{image id: [inclusive boxes]} from a CSV with one box per row (rows with empty box fields are ignored)."""
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    for row_no, row in read_rows(path, (id_col, *cols)):
        if not any(row[c] for c in cols):
            continue
        try:
            box = parse_box(row, cols, f"{path}: row {row_no}")
        except AuditInputError as exc:
            if skipped is None:
                raise
            skipped.append({"id": stem(row[id_col]), "reason": str(exc)})
            continue
        out.setdefault(stem(row[id_col]), []).append(box)
    return out


class FolderDataset(IndexedDataset):
    def __init__(self, root: str, skip_bad: bool = False):
        base = Path(root)
        images = base / "images"
        if not images.is_dir():
            raise AuditUsageError(f"--data-root={root}: no images/ folder")
        skipped: list[dict] = []
        labels: dict[str, int] = {}
        splits: dict[str, str] = {}
        labels_csv = base / "labels.csv"
        if labels_csv.is_file():
            for row_no, row in read_rows(labels_csv, ("image", "label")):
                try:
                    labels[stem(row["image"])] = int(row["label"])
                except ValueError:
                    exc = AuditInputError(f"{labels_csv}: row {row_no}: label {row['label']!r} is not an integer")
                    if not skip_bad:
                        raise exc from None
                    skipped.append({"id": stem(row["image"]), "reason": str(exc)})
                if row.get("split"):
                    splits[stem(row["image"])] = row["split"]
        boxes = {}
        if (base / "boxes.csv").is_file():
            boxes = read_boxes(base / "boxes.csv", "image", skipped if skip_bad else None)
        bad = {s["id"] for s in skipped}
        entries = []
        for p in sorted(q for q in images.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES):
            if p.stem in bad:
                continue
            mask = next((base / "masks" / f"{p.stem}{s}" for s in MASK_SUFFIXES
                         if (base / "masks" / f"{p.stem}{s}").is_file()), None)
            meta = {"split": splits[p.stem]} if p.stem in splits else {}
            entries.append(Entry(id=p.stem, image=p, label=labels.get(p.stem), where=str(p), mask=mask,
                                 boxes=tuple(boxes.get(p.stem, ())), meta=meta))
        if not entries:
            raise AuditUsageError(f"--data-root={root}: no images found in {images}")
        super().__init__(root, "folder", entries, skipped)
