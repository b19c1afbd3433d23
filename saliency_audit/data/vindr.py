"""``--dataset=vindr``: a VinDr-CXR style box table, several findings and several readers.

The table (VinDr-CXR's ``annotations/annotations_train.csv`` and ``annotations_test.csv``, or the Kaggle
competition's ``train.csv``) has one row per box: ``image_id, rad_id, class_name, x_min, y_min, x_max,
y_max`` (other columns, such as ``class_id``, are ignored; ``rad_id``, the reader, is optional: the test
set's consensus has none).  Corners are pixel coordinates in the full-resolution image; a box covers every
pixel it touches.  A ``No finding`` row with empty coordinates marks an image a reader found normal.
Images are ``<image_id>.dicom`` (or ``.dcm``, ``.png``, ``.jpg``) anywhere under ``--data-root``
(VinDr-CXR: ``train/`` and ``test/``).  The tables found are read together, each image's split being its
table's (``--split=test``).

A finding's truth on an image is the **union of every reader's boxes** of it, and the image is positive
when any reader boxed it: VinDr-CXR's training images were each read by three radiologists independently,
with no consensus, and they disagree often; a map that points at a region one radiologist marked is
pointing at something a radiologist saw, and the union keeps that without choosing a reader.  The readers
are recorded in :meth:`VinDrDataset.info`.  ``reader=R8`` audits against one reader's boxes instead (the
images that reader read), so that another reader's boxes (:func:`read_box_table`) can serve as a human
benchmark.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import AuditInputError, AuditUsageError
from .findings import choose, key, shown
from .folder import box_corners
from .indexed import Entry, IndexedDataset
from .tables import columns_of, file_name, quoted, read_rows, to_number

COLUMNS = ("image_id", "class_name")
CORNERS = ("x_min", "y_min", "x_max", "y_max")
NO_FINDING = "no finding"
#: the tables looked for, with the split of their images (first found per split), under the root and annotations/
TABLES = (("annotations_train.csv", "train"), ("annotations_test.csv", "test"), ("train.csv", "train"))
SUFFIXES = (".dicom", ".dcm", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class BoxRow:
    """One row of a box table."""

    image: str  # image_id
    finding: str  # class_name as written (``No finding`` included)
    reader: str | None  # rad_id, None when the table has no such column (or the field is empty)
    box: tuple[int, int, int, int] | None  # inclusive pixel corners (x0, y0, x1, y1); None for No finding
    where: str  # "annotations_train.csv: row 7" (the file's path as given)


def is_no_finding(name: str) -> bool:
    return key(name) == NO_FINDING


def _row(row: dict, reader_col: bool, where: str) -> BoxRow:
    image, finding = row["image_id"], row["class_name"]
    file_name(image, "the data root", where)  # an id names a file: no directory part
    if not finding:
        raise AuditInputError(f"{where}: empty class_name")
    given = [c for c in CORNERS if row[c]]
    if is_no_finding(finding):
        if given:
            raise AuditInputError(f"{where}: a {finding!r} row has coordinates ({', '.join(given)})")
        box = None
    else:
        if len(given) != len(CORNERS):
            raise AuditInputError(f"{where}: a {finding!r} box needs x_min, y_min, x_max and y_max "
                                  f"(empty: {', '.join(c for c in CORNERS if c not in given)})")
        x0, y0, x1, y1 = (to_number(row[c], where, c) for c in CORNERS)
        if x0 < 0 or y0 < 0:
            raise AuditInputError(f"{where}: box corner ({x0:g}, {y0:g}) is negative")
        if x1 <= x0 or y1 <= y0:
            raise AuditInputError(f"{where}: box ({x0:g}, {y0:g})-({x1:g}, {y1:g}) is empty or reversed: "
                                  "x_max and y_max must exceed x_min and y_min")
        box = box_corners(x0, y0, x1 - x0, y1 - y0)
    return BoxRow(image=image, finding=finding, reader=(row.get("rad_id") or None) if reader_col else None,
                  box=box, where=where)


def read_box_table(path, skipped: list[dict] | None = None) -> list[BoxRow]:
    """The rows of a VinDr-CXR style box table, each checked: a bad row is one AuditInputError line naming
    the file and row.  With ``skipped`` (a list), a bad row is recorded there instead (``{"id", "reason"}``)
    and every row of its image is left out, since that image's truth would be incomplete.

    A reader who marks an image ``No finding`` and also boxes a finding on it contradicts itself: that is
    an error naming both rows.  A table is parsed once while it is unchanged on disk (the adapter is built
    once per finding).
    """
    rows, problems = _table(Path(path))
    if problems:
        if skipped is None:
            raise AuditInputError(problems[0]["reason"])
        skipped.extend(dict(p) for p in problems)
    return list(rows)


_CACHE: dict[tuple, tuple[tuple[BoxRow, ...], tuple[dict, ...]]] = {}


def _table(path: Path) -> tuple[tuple[BoxRow, ...], tuple[dict, ...]]:
    from .parsedfiles import parsed

    return parsed(path, _parse, _CACHE)


def _parse(path: Path) -> tuple[tuple[BoxRow, ...], tuple[dict, ...]]:
    """(the good rows, {"id", "reason"} of each bad row, in file order) of one table."""
    rows = read_rows(path, (*COLUMNS, *CORNERS), ("rad_id",))
    reader_col = "rad_id" in columns_of(path)
    out: list[BoxRow] = []
    problems: list[dict] = []
    normal: dict[tuple[str, str | None], str] = {}  # (image, reader) -> where it says No finding
    boxed: dict[tuple[str, str | None], str] = {}  # (image, reader) -> where it first boxes something
    for row_no, row in rows:
        where = f"{path}: row {row_no}"
        try:
            r = _row(row, reader_col, where)
            mark, other = (normal, boxed) if r.box is None else (boxed, normal)
            clash = other.get((r.image, r.reader))
            if clash is not None:
                who = f"reader {r.reader!r}" if r.reader else "the table"
                raise AuditInputError(f"{where}: {who} marks image {r.image!r} both 'No finding' and with a "
                                      f"box ({clash.rpartition(': ')[2]})")
            mark.setdefault((r.image, r.reader), where)
        except AuditInputError as exc:
            problems.append({"id": row["image_id"], "reason": str(exc)})
            continue
        out.append(r)
    bad = {p["id"] for p in problems}
    return tuple(r for r in out if r.image not in bad), tuple(problems)


def tables(root, annotations: str | None = None) -> list[tuple[Path, str | None]]:
    """The box tables of ``root`` with their split: ``annotations`` (a path, or a name under the root), else
    every table of :data:`TABLES` found under the root or its ``annotations/`` folder."""
    base = Path(root)
    if annotations:
        from .parsedfiles import given_file

        return [(given_file(root, annotations), None)]
    found: dict[str, Path] = {}
    for name, split in TABLES:
        for folder in (base, base / "annotations"):
            if split not in found and (folder / name).is_file():
                found[split] = folder / name
    if not found:
        raise AuditUsageError(f"--data-root={root}: no box table ({', '.join(n for n, _ in TABLES)}, "
                              "in the root or annotations/)")
    return [(p, s) for s, p in found.items()]


def _read_all(root, annotations, skipped) -> tuple[list[tuple[BoxRow, str | None]], list[Path]]:
    out, paths = [], []
    for path, split in tables(root, annotations):
        paths.append(path)
        out.extend((r, split) for r in read_box_table(path, skipped))
    return out, paths


def _choose_reader(rows, reader: str | None, source: str):
    readers = sorted({r.reader for r, _ in rows if r.reader is not None})
    if reader is None:
        return rows, readers
    if reader not in readers:
        raise AuditUsageError(f"reader={shown(reader)}: no such reader in {source} "
                              f"(readers: {', '.join(map(shown, readers)) or 'none: the table has no rad_id'})")
    return [(r, s) for r, s in rows if r.reader == reader], readers


def _counts(rows) -> dict[str, int]:
    """{finding as first written: images with a box of it}, findings matched by :func:`findings.key`."""
    spelling: dict[str, str] = {}
    images: dict[str, set[str]] = {}
    for r, _ in rows:
        if r.box is None:
            continue
        k = key(r.finding)
        spelling.setdefault(k, r.finding)
        images.setdefault(k, set()).add(r.image)
    return {spelling[k]: len(v) for k, v in images.items()}


class VinDrDataset(IndexedDataset):
    def __init__(self, root: str, finding: str | None = None, reader: str | None = None,
                 annotations: str | None = None, skip_bad: bool = False):
        base = Path(root)
        skipped: list[dict] = []
        rows, paths = _read_all(root, annotations, skipped if skip_bad else None)
        source = " and ".join(p.name for p in paths)
        rows, readers = _choose_reader(rows, reader, source)
        self.finding = choose(finding, _counts(rows), dataset="vindr", source=source)
        target = key(self.finding)

        bad = {s["id"] for s in skipped}
        split_of: dict[str, tuple[str | None, str]] = {}  # image -> (split, where first listed)
        boxes: dict[str, list[tuple[tuple[int, int, int, int], str]]] = {}
        image_readers: dict[str, set[str]] = {}
        for r, split in rows:
            if r.image in bad:
                continue
            first = split_of.setdefault(r.image, (split, r.where))
            if first[0] != split:
                problem = (f"{r.where}: image {r.image!r} is listed in two tables "
                           f"(also {first[1].rpartition(': ')[0]})")
                if not skip_bad:
                    raise AuditInputError(problem)
                skipped.append({"id": r.image, "reason": problem})
                bad.add(r.image)
                continue
            if r.reader is not None:
                image_readers.setdefault(r.image, set()).add(r.reader)
            if r.box is not None and key(r.finding) == target:
                boxes.setdefault(r.image, []).append((r.box, r.where))

        files: dict[str, list[Path]] = {}
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for f in filenames:
                p = Path(dirpath) / f
                if p.suffix.lower() in SUFFIXES:
                    files.setdefault(p.stem, []).append(p)
        entries = []
        for image, (split, where) in split_of.items():
            if image in bad:
                continue
            found = files.get(image, [])
            missing = (None if len(found) == 1 else
                       f"{where}: image {image!r} is not found under {root} (as {'/'.join(SUFFIXES)})" if not found
                       else f"{where}: image {image!r} is found {len(found)} times under {root} "
                            f"({quoted(str(p.relative_to(base)) for p in found)}): which one is meant?")
            meta = {"finding": self.finding, "readers": len(image_readers.get(image, ()))}
            if split is not None:
                meta["split"] = split
            own = boxes.get(image, ())
            entries.append(Entry(id=image, image=None if missing else found[0], missing=missing, where=where,
                                 label=int(bool(own)), boxes=tuple(b for b, _ in own),
                                 box_rows=tuple(w for _, w in own), meta=meta))
        if not entries:
            raise AuditUsageError(f"--data-root={root}: {source} lists no readable image")
        super().__init__(root, "vindr", entries, skipped)
        self.readers = readers
        self.reader = reader
        self.tables = [str(p.relative_to(base)) if p.is_relative_to(base) else str(p) for p in paths]

    @classmethod
    def findings(cls, root: str, annotations: str | None = None, reader: str | None = None,
                 skip_bad: bool = False) -> list[str]:
        """The findings boxed in the table(s) (by the chosen reader), in the data's spelling, sorted.  Bad rows
        are passed over here: the adapter built for each finding reports them."""
        rows, paths = _read_all(root, annotations, [])
        rows, _ = _choose_reader(rows, reader, " and ".join(p.name for p in paths))
        return sorted(_counts(rows), key=str.lower)

    def info(self) -> dict:
        out = {"finding": self.finding, "tables": self.tables, "readers": self.readers,
               "truth": (f"boxes of reader {self.reader}" if self.reader else
                         "union of every reader's boxes; positive when any reader boxed the finding")}
        if self.reader:
            out["reader"] = self.reader
        return out

