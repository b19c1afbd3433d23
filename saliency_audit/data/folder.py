"""``--dataset=folder``: ``images/``, ``masks/`` (same stem), optional ``labels.csv`` and ``boxes.csv``.

labels.csv: ``image,label[,split]``; boxes.csv: ``image,x,y,width,height``
(top-left corner and size in pixels; several rows per image union).  Without
labels.csv an image's label is 1 when it has a non-empty mask or a box.
Images may be PNG, JPEG, TIFF, BMP or DICOM (``.dcm``).
"""
from __future__ import annotations

from pathlib import Path

from ..common.errors import AuditInputError, AuditUsageError
from .imageio import IMAGE_SUFFIXES
from .indexed import Entry, IndexedDataset
from .tables import file_name, quoted, read_rows, to_int, to_number

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


class Images:
    """The images of a folder, and which one a table's field names: a file by its full name (``a.png``), else
    by its id (``a``, the name without extension).  A name that is neither (``a.jpg`` beside ``a.png``, a
    path, a typo) names no image and is an error, never silently another image."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: dict[str, list[Path]] = {}
        for p in sorted(q for q in folder.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES):
            self.files.setdefault(p.stem, []).append(p)
        self.by_name = {p.name: key for key, ps in self.files.items() for p in ps}

    def resolve(self, value: str, where: str) -> str:
        name = file_name(value, self.folder.name, where)
        key = self.by_name.get(name, name if name in self.files else None)
        if key is None:
            raise AuditInputError(f"{where}: no image {name!r} in {self.folder}")
        return key

    def shared(self) -> list[tuple[str, str]]:
        """(id, message) of the ids that several files share (``a.png`` and ``a.dcm``: which one is meant?)."""
        return [(k, f"{self.folder}: {quoted(p.name for p in ps)} share the id {k!r}; keep one")
                for k, ps in self.files.items() if len(ps) > 1]


def read_boxes(path: Path, images: Images, skipped: list[dict] | None, cols=("x", "y", "width", "height")
               ) -> dict[str, list[tuple[tuple[int, int, int, int], str]]]:
    """{image id: [(inclusive box, where)]} from ``boxes.csv`` (one box per row, ``where`` its file and row,
    for errors that only the image's size shows; rows with empty box fields are ignored)."""
    out: dict[str, list[tuple[tuple[int, int, int, int], str]]] = {}
    for row_no, row in read_rows(path, ("image", *cols)):
        if not any(row[c] for c in cols):
            continue
        where = f"{path}: row {row_no}"
        key = row["image"]
        try:
            key = images.resolve(row["image"], where)
            box = parse_box(row, cols, where)
        except AuditInputError as exc:
            if skipped is None:
                raise
            skipped.append({"id": key, "reason": str(exc)})
            continue
        out.setdefault(key, []).append((box, where))
    return out


def read_labels(path: Path, images: Images, skipped: list[dict] | None) -> tuple[dict[str, int], dict[str, str]]:
    """({image id: label}, {image id: split}) from ``labels.csv``; a row naming no image (or a path), a
    label that is not a plain integer, or an image listed again with another label or split is an error
    naming the row (under ``skipped``: listed there, and the image left out)."""
    labels: dict[str, int] = {}
    splits: dict[str, str] = {}
    rows: dict[str, int] = {}
    for row_no, row in read_rows(path, ("image", "label"), ("split",)):
        where = f"{path}: row {row_no}"
        key = row["image"]
        try:
            key = images.resolve(row["image"], where)
            label = to_int(row["label"], where, "label")
            if key in labels and (labels[key], splits.get(key)) != (label, row.get("split") or None):
                raise AuditInputError(f"{where}: image {row['image']!r} is listed again (row {rows[key]}) with "
                                      "another label or split")
        except AuditInputError as exc:
            if skipped is None:
                raise
            skipped.append({"id": key, "reason": str(exc)})
            continue
        labels[key] = label
        rows.setdefault(key, row_no)
        if row.get("split"):
            splits[key] = row["split"]
    return labels, splits


class FolderDataset(IndexedDataset):
    def __init__(self, root: str, skip_bad: bool = False):
        base = Path(root)
        if not (base / "images").is_dir():
            raise AuditUsageError(f"--data-root={root}: no images/ folder")
        images = Images(base / "images")
        skipped: list[dict] = []
        for key, text in images.shared():
            if not skip_bad:
                raise AuditInputError(text)
            skipped.append({"id": key, "reason": text})
        sink = skipped if skip_bad else None
        labels_csv, boxes_csv = base / "labels.csv", base / "boxes.csv"
        labels, splits = read_labels(labels_csv, images, sink) if labels_csv.is_file() else ({}, {})
        boxes = read_boxes(boxes_csv, images, sink) if boxes_csv.is_file() else {}
        bad = {s["id"] for s in skipped}
        entries = []
        for key, (p, *others) in images.files.items():
            if key in bad or others:
                continue
            mask = next((base / "masks" / f"{key}{s}" for s in MASK_SUFFIXES
                         if (base / "masks" / f"{key}{s}").is_file()), None)
            meta = {"split": splits[key]} if key in splits else {}
            entries.append(Entry(id=key, image=p, label=labels.get(key), where=str(p), mask=mask,
                                 boxes=tuple(b for b, _ in boxes.get(key, ())),
                                 box_rows=tuple(w for _, w in boxes.get(key, ())), meta=meta))
        if not entries:
            raise AuditUsageError(f"--data-root={root}: no images found in {images.folder}")
        super().__init__(root, "folder", entries, skipped)
