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

from ..common.errors import AuditInputError, AuditUsageError
from ..common.subjects import canonical  # Infiltrate (the box list) is Infiltration (Data_Entry)
from .folder import parse_box
from .indexed import Entry, IndexedDataset
from .tables import file_name, quoted, read_rows

BBOX_FIELDS = ("image", "finding", "x", "y", "w", "h")


def image_id(image: str) -> str:
    """An image's id: its file name without ``.png``."""
    return image[: -len(".png")] if image.lower().endswith(".png") else image




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
        refused: set[str] = set()  # ids of images a refused row names (by its id, and by the file name's stem)

        def refuse(image: str, exc: AuditInputError) -> None:
            if not skip_bad:
                raise exc
            skipped.append({"id": image_id(image), "reason": str(exc)})
            refused.update({image_id(image), Path(image).stem})

        boxed: dict[str, set[str]] = {}
        boxed_row: dict[str, int] = {}
        boxes: dict[str, list] = {}
        for row_no, row in rows:
            boxed.setdefault(row["image"], set()).add(canonical(row["finding"]))
            boxed_row.setdefault(row["image"], row_no)
            if canonical(row["finding"]) != target:
                continue
            where = f"{bbox_csv}: row {row_no}"
            try:
                boxes.setdefault(row["image"], []).append((parse_box(row, ("x", "y", "w", "h"), where), where))
            except AuditInputError as exc:
                refuse(row["image"], exc)

        # the audited images and their labels: Data_Entry_2017.csv, else the box list
        entry_csv = base / "Data_Entry_2017.csv"
        listed_in = entry_csv if entry_csv.is_file() else bbox_csv
        labels: dict[str, tuple[int, int]] = {}
        if entry_csv.is_file():
            listed = ((row_no, row["Image Index"], int(target in {canonical(x) for x in row["Finding Labels"].split("|")}))
                      for row_no, row in read_rows(entry_csv, ("Image Index", "Finding Labels")))
        else:
            listed = ((boxed_row[image], image, int(target in found)) for image, found in boxed.items())
        ids: dict[str, str] = {}
        for row_no, image, label in listed:
            where = f"{listed_in}: row {row_no}"
            try:
                file_name(image, "the data root", where)
                if image in labels and labels[image][0] != label:
                    raise AuditInputError(f"{where}: image {image!r} is listed again (row {labels[image][1]}) "
                                          f"with another label for {names[target]}")
                if ids.get(image_id(image), image) != image:
                    raise AuditInputError(f"{where}: images {ids[image_id(image)]!r} and {image!r} share the id "
                                          f"{image_id(image)!r}")
            except AuditInputError as exc:
                refuse(image, exc)
                continue
            labels.setdefault(image, (label, row_no))
            ids[image_id(image)] = image

        files: dict[str, list[Path]] = {}
        for dirpath, _, filenames in os.walk(base):
            for f in filenames:
                if f.lower().endswith(".png"):
                    files.setdefault(f, []).append(Path(dirpath) / f)
        entries = []
        for image, (label, row_no) in labels.items():
            if image_id(image) in refused:
                continue
            where = f"{listed_in}: row {row_no}"
            found = sorted(files.get(image, ()))
            missing = (None if len(found) == 1 else
                       f"{where}: image {image!r} is not found under {root}" if not found else
                       f"{where}: image {image!r} is found {len(found)} times under {root} "
                       f"({quoted(str(p.relative_to(base)) for p in found)}): which one is meant?")
            entries.append(Entry(
                id=image_id(image), image=None if missing else found[0], label=label, where=where, missing=missing,
                boxes=tuple(b for b, _ in boxes.get(image, ())), box_rows=tuple(w for _, w in boxes.get(image, ())),
                meta={"finding": names[target]}))
        super().__init__(root, "nih", entries, skipped)
        self.finding = names[target]

    @classmethod
    def findings(cls, root: str, skip_bad: bool = False) -> list[str]:
        """The findings with boxes in ``BBox_List_2017.csv``, in its spelling (the first row's, when a finding is
        spelled two ways: ``Infiltrate`` and ``Infiltration`` are one finding), sorted; no image is read."""
        bbox_csv = Path(root) / "BBox_List_2017.csv"
        if not bbox_csv.is_file():
            raise AuditUsageError(f"--data-root={root}: no BBox_List_2017.csv")
        names: dict[str, str] = {}
        for _, row in read_rows(bbox_csv, BBOX_FIELDS, positional=BBOX_FIELDS):
            if row["finding"]:
                names.setdefault(canonical(row["finding"]), row["finding"])
        return sorted(names.values(), key=str.lower)

    def info(self) -> dict:
        return {"finding": self.finding}
