"""``--dataset=rsna``: RSNA Pneumonia Detection, as published on Kaggle.

``stage_2_train_images/<patientId>.dcm`` and ``stage_2_train_labels.csv``
(``patientId,x,y,width,height,Target``): one row per box for positive
patients, one row with empty box fields for negatives.  Boxes are the top-left
corner and size in the 1024-pixel image.  ``stage_2_detailed_class_info.csv``
(``patientId,class``), when present, adds each image's class to its metadata.
The stage-1 names are accepted too.
"""
from __future__ import annotations

from pathlib import Path

from ..common.errors import AuditInputError, AuditUsageError
from .folder import box_corners
from .indexed import Entry, IndexedDataset
from .tables import inside, read_rows, to_number

BOX_COLS = ("x", "y", "width", "height")


class RSNADataset(IndexedDataset):
    def __init__(self, root: str, skip_bad: bool = False):
        base = Path(root)
        labels_csv = next((base / f"stage_{k}_train_labels.csv" for k in (2, 1)
                           if (base / f"stage_{k}_train_labels.csv").is_file()), None)
        if labels_csv is None:
            raise AuditUsageError(f"--data-root={root}: no stage_2_train_labels.csv")
        images = next((base / f"stage_{k}_train_images" for k in (2, 1) if (base / f"stage_{k}_train_images").is_dir()),
                      base / "stage_2_train_images")
        skipped: list[dict] = []
        classes: dict[str, str] = {}
        info = base / "stage_2_detailed_class_info.csv"
        if info.is_file():
            class_rows: dict[str, int] = {}
            for row_no, row in read_rows(info, ("patientId", "class")):
                pid, cls = row["patientId"], row["class"]
                if classes.get(pid, cls) != cls:
                    problem = (f"{info}: row {row_no}: patient {pid!r} is given class {cls!r} here and "
                               f"{classes[pid]!r} on row {class_rows[pid]}")
                    if not skip_bad:
                        raise AuditInputError(problem)
                    skipped.append({"id": pid, "reason": problem})
                classes.setdefault(pid, cls)
                class_rows.setdefault(pid, row_no)
        targets: dict[str, int] = {}
        boxes: dict[str, list] = {}
        where: dict[str, str] = {}  # each patient's first row
        for row_no, row in read_rows(labels_csv, ("patientId", *BOX_COLS, "Target")):
            pid, w = row["patientId"], f"{labels_csv}: row {row_no}"
            try:
                if not pid:
                    raise AuditInputError(f"{w}: empty patientId")
                if row["Target"] not in ("0", "1"):
                    raise AuditInputError(f"{w}: Target {row['Target']!r} is not 0 or 1")
                target = int(row["Target"])
                has_box = any(row[c] for c in BOX_COLS)
                if target == 1 and not all(row[c] for c in BOX_COLS):
                    raise AuditInputError(f"{w}: Target 1 needs x, y, width and height")
                if target == 0 and has_box:
                    raise AuditInputError(f"{w}: Target 0 row has a box")
                if pid in targets and targets[pid] != target:
                    raise AuditInputError(f"{w}: patient {pid!r} has rows with Target 0 and 1")
                box = None
                if has_box:
                    x, y, bw, bh = (to_number(row[c], w, c) for c in BOX_COLS)
                    if bw <= 0 or bh <= 0:
                        raise AuditInputError(f"{w}: box width and height must be positive")
                    box = box_corners(x, y, bw, bh)
            except AuditInputError as exc:
                if not skip_bad:
                    raise
                skipped.append({"id": pid, "reason": str(exc)})
                continue
            targets[pid] = target
            where.setdefault(pid, w)
            if box is not None:
                boxes.setdefault(pid, []).append((box, w))
        bad = {s["id"] for s in skipped}
        entries = []
        for pid, target in targets.items():
            if pid in bad:
                continue
            try:
                path = inside(images, f"{pid}.dcm", where[pid])
            except AuditInputError as exc:
                if not skip_bad:
                    raise
                skipped.append({"id": pid, "reason": str(exc)})
                continue
            meta = {"class": classes[pid]} if pid in classes else {}
            missing = None if path.is_file() else f"{where[pid]}: no DICOM file {path.name!r} in {images}"
            entries.append(Entry(id=pid, image=None if missing else path, missing=missing, label=target,
                                 where=where[pid], meta=meta,
                                 boxes=tuple(b for b, _ in boxes.get(pid, ())),
                                 box_rows=tuple(w for _, w in boxes.get(pid, ()))))
        if not entries:
            raise AuditUsageError(f"--data-root={root}: {labels_csv.name} lists no patients")
        super().__init__(root, "rsna", entries, skipped)
