"""``--dataset=nih``: NIH ChestX-ray14 with its bounding-box subset.

PNG images anywhere under ``--data-root`` (the published ``images_001/images/``
… folders or one ``images/``), ``BBox_List_2017.csv`` (header ``Image Index,
Finding Label,Bbox [x,y,w,h],,,``: the first six fields are read by
position) and, optionally, ``Data_Entry_2017.csv`` (``Image Index``,
``Finding Labels`` joined by ``|``) for the labels.  ``--finding`` selects the
finding audited; an image is positive when its labels include it, and its
ground truth is its boxes of that finding.  Without ``Data_Entry_2017.csv``
the audited images are those of the box list, positive when they have a box of
the finding.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ..errors import AuditInputError, AuditUsageError
from .folder import parse_box
from .indexed import Entry, IndexedDataset
from .tables import read_rows

BBOX_FIELDS = ("image", "finding", "x", "y", "w", "h")
ALIASES = {"infiltrate": "infiltration"}  # the box list says Infiltrate, Data_Entry says Infiltration


def canonical(finding: str) -> str:
    f = finding.strip().lower().replace("_", " ")
    return ALIASES.get(f, f)


class NIHDataset(IndexedDataset):
    def __init__(self, root: str, finding: str | None = None, skip_bad: bool = False):
        base = Path(root)
        bbox_csv = base / "BBox_List_2017.csv"
        if not bbox_csv.is_file():
            raise AuditUsageError(f"--data-root={root}: no BBox_List_2017.csv")
        rows = list(read_rows(bbox_csv, BBOX_FIELDS, positional=BBOX_FIELDS))
        counts = Counter(canonical(r["finding"]) for _, r in rows)
        names = {canonical(r["finding"]): r["finding"] for _, r in reversed(rows)}
        available = ", ".join(f"{names[f]} ({n})" for f, n in counts.most_common())
        if finding is None:
            if len(counts) != 1:
                raise AuditUsageError(f"--dataset=nih needs --finding: the box list has {available}")
            finding = names[next(iter(counts))]
        target = canonical(finding)
        if target not in counts:
            raise AuditUsageError(f"--finding={finding}: no boxes of that finding in {bbox_csv.name} ({available})")

        skipped: list[dict] = []
        boxed: dict[str, set[str]] = {}
        boxes: dict[str, list] = {}
        for row_no, row in rows:
            boxed.setdefault(row["image"], set()).add(canonical(row["finding"]))
            if canonical(row["finding"]) != target:
                continue
            try:
                box = parse_box(row, ("x", "y", "w", "h"), f"{bbox_csv}: row {row_no}")
                boxes.setdefault(row["image"], []).append(box)
            except AuditInputError as exc:
                if not skip_bad:
                    raise
                skipped.append({"id": Path(row["image"]).stem, "reason": str(exc)})

        entry_csv = base / "Data_Entry_2017.csv"
        if entry_csv.is_file():
            labels = {row["Image Index"]: int(target in {canonical(x) for x in row["Finding Labels"].split("|")})
                      for _, row in read_rows(entry_csv, ("Image Index", "Finding Labels"))}
        else:
            labels = {image: int(target in found) for image, found in boxed.items()}
        files: dict[str, Path] = {}
        for dirpath, _, filenames in os.walk(base):
            for f in filenames:
                if f.lower().endswith(".png"):
                    files.setdefault(f, Path(dirpath) / f)
        listed_in = entry_csv if entry_csv.is_file() else bbox_csv
        bad = {s["id"] for s in skipped}
        entries = []
        for image, label in labels.items():
            if Path(image).stem in bad:
                continue
            path = files.get(image)
            entries.append(Entry(
                id=Path(image).stem, image=path, label=label, where=str(listed_in), boxes=tuple(boxes.get(image, ())),
                meta={"finding": names[target]},
                missing=None if path else f"{listed_in}: image {image} is listed but not found under {root}"))
        super().__init__(root, "nih", entries, skipped)
        self.finding = names[target]

    def info(self) -> dict:
        return {"finding": self.finding}
