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
from .tables import file_name, read_rows, stem, to_number

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


def read_boxes(path: Path, skipped: list[dict] | None, cols=("x", "y", "width", "height")
               ) -> tuple[dict[str, list[tuple[int, int, int, int]]], dict[str, int]]:
    """({image id: [inclusive boxes]}, {image id: its first row}) from ``boxes.csv`` (one box per row; rows
    with empty box fields are ignored)."""
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    first_row: dict[str, int] = {}
    for row_no, row in read_rows(path, ("image", *cols)):
        if not any(row[c] for c in cols):
            continue
        where = f"{path}: row {row_no}"
        try:
            key = file_name(row["image"], "images", where)
            box = parse_box(row, cols, where)
        except AuditInputError as exc:
            if skipped is None:
                raise
            skipped.append({"id": stem(row["image"]), "reason": str(exc)})
            continue
        out.setdefault(key, []).append(box)
        first_row.setdefault(key, row_no)
    return out, first_row


def read_labels(path: Path, skipped: list[dict] | None) -> tuple[dict[str, int], dict[str, str], dict[str, int]]:
    """({image id: label}, {image id: split}, {image id: row}) from ``labels.csv``; a row naming a path, a
    non-integer label or the same image twice with another label is an error naming the row."""
    labels: dict[str, int] = {}
    splits: dict[str, str] = {}
    rows: dict[str, int] = {}
    for row_no, row in read_rows(path, ("image", "label")):
        where = f"{path}: row {row_no}"
        try:
            key = file_name(row["image"], "images", where)
            try:
                label = int(row["label"])
            except ValueError:
                raise AuditInputError(f"{where}: label {row['label']!r} is not an integer") from None
            if key in labels and (labels[key], splits.get(key)) != (label, row.get("split") or None):
                raise AuditInputError(f"{where}: image {row['image']!r} is listed again (row {rows[key]}) with "
                                      "another label or split")
        except AuditInputError as exc:
            if skipped is None:
                raise
            skipped.append({"id": stem(row["image"]), "reason": str(exc)})
            continue
        labels[key] = label
        rows.setdefault(key, row_no)
        if row.get("split"):
            splits[key] = row["split"]
    return labels, splits, rows


class FolderDataset(IndexedDataset):
    def __init__(self, root: str, skip_bad: bool = False):
        base = Path(root)
        images = base / "images"
        if not images.is_dir():
            raise AuditUsageError(f"--data-root={root}: no images/ folder")
        skipped: list[dict] = []
        sink = skipped if skip_bad else None
        labels_csv, boxes_csv = base / "labels.csv", base / "boxes.csv"
        labels, splits, label_rows = read_labels(labels_csv, sink) if labels_csv.is_file() else ({}, {}, {})
        boxes, box_rows = read_boxes(boxes_csv, sink) if boxes_csv.is_file() else ({}, {})
        files: dict[str, list[Path]] = {}
        for p in sorted(q for q in images.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES):
            files.setdefault(p.stem, []).append(p)
        problems = [(k, f"{images}: {' and '.join(p.name for p in ps)} share the id {k!r}; keep one")
                    for k, ps in files.items() if len(ps) > 1]
        problems += [(k, f"{labels_csv}: row {n}: no image {k!r} in {images}") for k, n in label_rows.items()
                     if k not in files]
        problems += [(k, f"{boxes_csv}: row {n}: no image {k!r} in {images}") for k, n in box_rows.items()
                     if k not in files]
        for key, text in problems:
            if not skip_bad:
                raise AuditInputError(text)
            skipped.append({"id": key, "reason": text})
        bad = {s["id"] for s in skipped}
        entries = []
        for key, (p, *others) in files.items():
            if key in bad or others:
                continue
            mask = next((base / "masks" / f"{key}{s}" for s in MASK_SUFFIXES
                         if (base / "masks" / f"{key}{s}").is_file()), None)
            meta = {"split": splits[key]} if key in splits else {}
            entries.append(Entry(id=key, image=p, label=labels.get(key), where=str(p), mask=mask,
                                 boxes=tuple(boxes.get(key, ())), meta=meta))
        if not entries:
            raise AuditUsageError(f"--data-root={root}: no images found in {images}")
        super().__init__(root, "folder", entries, skipped)
