"""Split files: the QTIM splits CSV (``,Image_ID,Split``) or a plain ``image,split`` table."""
from __future__ import annotations

from pathlib import Path

from ..common.errors import AuditInputError, AuditUsageError
from .tables import columns_of, quoted, read_rows, stem


IMAGE_COLUMNS, SPLIT_COLUMNS = ("Image_ID", "image", "ImageId"), ("Split", "split")


def read_split_file(path: Path) -> dict[str, str]:
    """{image id: split name} from ``path``: the first of the image columns and of the split columns its
    header has.  A row naming a path (ids are file names), an empty field, or an image listed again with
    another split is an error naming the row."""
    path = Path(path)
    header = columns_of(path)
    image_col = next((c for c in IMAGE_COLUMNS if c in header), None)
    split_col = next((c for c in SPLIT_COLUMNS if c in header), None)
    if image_col is None or split_col is None:
        raise AuditInputError(f"{path}: expected columns Image_ID,Split (QTIM) or image,split "
                              f"(header: {quoted(header)})")
    out: dict[str, str] = {}
    rows: dict[str, int] = {}
    for row_no, row in read_rows(path, (image_col, split_col)):
        image, split = row[image_col], row[split_col]
        where = f"{path}: row {row_no}"
        if not image or not split:
            raise AuditInputError(f"{where}: empty image id or split")
        if "/" in image or "\\" in image:
            raise AuditInputError(f"{where}: image {image!r} is a path; a split file names images by file name "
                                  "or id")
        key = stem(image)
        if out.get(key, split) != split:
            raise AuditInputError(f"{where}: image {image!r} is given split {split!r} here and {out[key]!r} on "
                                  f"row {rows[key]}")
        out[key] = split
        rows.setdefault(key, row_no)
    return out


def apply_split(dataset, split: str | None, split_file: str | None) -> None:
    """Keep the entries of ``split`` (``--split``), using ``--split-file`` or the entries' own split column."""
    if split_file:
        mapping = read_split_file(Path(split_file))
        for e in dataset.entries:
            if e.id in mapping:
                e.meta["split"] = mapping[e.id]
    if split is None:
        return
    known = {e.meta.get("split") for e in dataset.entries} - {None}
    if not known:
        raise AuditUsageError(f"--split={split}: --dataset={dataset.name} has no split column; pass --split-file")
    dataset.entries = [e for e in dataset.entries if e.meta.get("split") == split]
    if not dataset.entries:
        raise AuditUsageError(f"--split={split}: no images in that split (splits found: {', '.join(sorted(known))})")
