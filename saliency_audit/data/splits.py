"""Split files: the QTIM splits CSV (``,Image_ID,Split``) or a plain ``image,split`` table."""
from __future__ import annotations

from pathlib import Path

from ..errors import AuditInputError, AuditUsageError
from .tables import read_rows, stem  # noqa: F401 -- stem is imported from here too


def read_split_file(path: Path) -> dict[str, str]:
    """{image id: split name} from ``path``."""
    path = Path(path)
    out: dict[str, str] = {}
    rows = read_rows(path)
    for row_no, row in rows:
        image = row.get("Image_ID", row.get("image", row.get("ImageId")))
        split = row.get("Split", row.get("split"))
        if image is None or split is None:
            raise AuditInputError(f"{path}: expected columns Image_ID,Split (QTIM) or image,split")
        if not image or not split:
            raise AuditInputError(f"{path}: row {row_no}: empty image id or split")
        out[stem(image)] = split
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
