"""``--dataset=chexlocalize``: CheXlocalize (Saporta et al. 2022), radiologists' segmentations of CheXpert images.

Under ``--data-root``: the CheXpert images, ``<...>/patient64541/study1/view1_frontal.jpg`` anywhere below
(the download's ``CheXpert-v1.0/valid/`` and ``test/``), for the image id
``patient64541_study1_view1_frontal``; and the ground truth, in either of the dataset's two forms:

* ``gt_segmentations_<split>.json``: ``{image_id: {finding: {"size": [h, w], "counts": "<COCO RLE>"}}}``,
  every finding of every image, an all-zero mask where the finding is absent (``hb_segmentations_*.json``,
  the human benchmark, has the same form);
* ``gt_annotations_<split>.json``: ``{image_id: {"img_size": [h, w], finding: [[[x, y], ...], ...]}}``, the
  radiologists' contours of the findings present, each a polygon.

Every split found is read (``gt_segmentations_`` preferred over ``gt_annotations_`` for a split; the
split is each image's, for ``--split``); ``annotations=FILE`` reads one file instead.  An image is positive
for the audited finding when its mask is not empty.  The human benchmark is never read as ground truth
unless named by ``annotations=``.  :func:`read_segmentations` reads any of these files for other uses.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..common.errors import AuditInputError, AuditUsageError
from .findings import choose, key
from .indexed import Entry, IndexedDataset
from .tables import quoted

PREFIXES = ("gt_segmentations_", "gt_annotations_")
IMAGE_ID = re.compile(r"(patient[^_/\\\x00]+)_(study[^_/\\\x00]+)_([^/\\\x00]+)")
SUFFIXES = (".jpg", ".jpeg", ".png")
_RLE_TEXT = re.compile(r"[0-o]*")  # the 64 characters of a compressed RLE, '0' (48) to 'o' (111)
_CACHE: dict[tuple, tuple[dict, list[tuple[str, str]], str]] = {}  # a few parsed files (built once per finding)


@dataclass(frozen=True, eq=False)
class Segmentation:
    """One finding's ground truth on one image, decoded only when asked."""

    size: tuple[int, int]  # (h, w): the image's native size
    where: str  # "gt_segmentations_val.json: image 'patient1_study1_view1_frontal', finding 'Edema'"
    counts: str | tuple[int, ...] | None = None  # COCO RLE: compressed string, or the run lengths
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()  # contours of (x, y) points, when not RLE

    @cached_property
    def _empty(self) -> bool:
        if self.counts is None:
            return not self.polygons
        from .cocorle import CocoRLEError, is_empty

        try:
            return is_empty(self.counts if isinstance(self.counts, str) else list(self.counts), list(self.size))
        except CocoRLEError as exc:
            raise AuditInputError(f"{self.where}: {exc}") from None

    def empty(self) -> bool:
        """Whether the finding is absent (an all-zero mask, or no contour); cheap: no mask is built."""
        return self._empty

    def mask(self) -> np.ndarray:
        """The (h, w) bool mask at the image's native size; AuditInputError naming :attr:`where` if malformed."""
        if self.counts is not None:
            from .cocorle import CocoRLEError, decode

            try:
                return decode(self.counts if isinstance(self.counts, str) else list(self.counts), list(self.size))
            except CocoRLEError as exc:
                raise AuditInputError(f"{self.where}: {exc}") from None
        return rasterise(self.polygons, self.size)

    def digest(self) -> str:
        """sha256 of what the file says (for the manifest: a changed segmentation changes the run's hash)."""
        source = self.counts if isinstance(self.counts, str) else json.dumps([self.size, self.counts, self.polygons])
        return hashlib.sha256(source.encode()).hexdigest()


def rasterise(polygons, size: tuple[int, int]) -> np.ndarray:
    """The (h, w) bool mask of ``polygons`` (each a list of (x, y) points), outline and inside.

    Drawn with Pillow's ``ImageDraw.polygon(outline=1, fill=1)``, as CheXlocalize's own
    ``annotation_to_segmentation.py`` drew the published masks: on the dataset's public sample (four
    contoured findings on two images), this reproduces its ``gt_segmentations`` masks pixel for pixel, where
    ``skimage.draw.polygon`` differs from them by 0.2 % to 3.7 % of IoU (most on the thinnest shape).
    """
    from PIL import Image, ImageDraw

    h, w = size
    canvas = Image.new("1", (w, h))
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        draw.polygon([(float(x), float(y)) for x, y in polygon], outline=1, fill=1)
    return np.array(canvas, dtype=bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _size(value, where: str, what: str) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) and v > 0 for v in value)):
        raise AuditInputError(f"{where}: {what} must be [height, width], two positive integers, not "
                              f"{json.dumps(value)[:60]}")
    return int(value[0]), int(value[1])


def _segmentation(value, where: str) -> Segmentation:
    if not isinstance(value, dict) or set(value) != {"size", "counts"}:
        raise AuditInputError(f"{where}: expected {{\"size\": [h, w], \"counts\": ...}} (COCO RLE), not "
                              f"{json.dumps(value)[:60]}")
    size = _size(value["size"], where, "size")
    counts = value["counts"]
    if isinstance(counts, str):
        if not _RLE_TEXT.fullmatch(counts):
            bad = next(c for c in counts if not "0" <= c <= "o")
            raise AuditInputError(f"{where}: counts hold {bad!r}, not a compressed RLE character ('0' to 'o')")
    elif isinstance(counts, list) and all(_is_int(v) and v >= 0 for v in counts):
        counts = tuple(counts)
    else:
        raise AuditInputError(f"{where}: counts must be a compressed RLE string or a list of run lengths")
    return Segmentation(size=size, where=where, counts=counts)


def _contours(value, size: tuple[int, int], where: str) -> Segmentation:
    if not isinstance(value, list):
        raise AuditInputError(f"{where}: expected a list of contours, not {json.dumps(value)[:60]}")
    polygons = []
    for n, contour in enumerate(value, 1):
        if not (isinstance(contour, list) and contour and all(
                isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in contour)):
            raise AuditInputError(f"{where}: contour {n} must be a non-empty list of [x, y] points")
        polygons.append(tuple((float(x), float(y)) for x, y in contour))
    return Segmentation(size=size, where=where, polygons=tuple(polygons))


def _parse(path: Path) -> tuple[dict, list[tuple[str, str]], str]:
    """({image: {finding: Segmentation}}, [(image, problem)], form) of one file; problems are per image."""
    from ..common.untrusted import read_json

    data = read_json(path)
    if not isinstance(data, dict):
        raise AuditInputError(f"{path}: expected an object of image ids, not {type(data).__name__}")
    first = next(iter(data.values()), {})
    form = ("annotations" if isinstance(first, dict) and ("img_size" in first or any(
        isinstance(v, list) for v in first.values())) else "segmentations")
    out: dict[str, dict[str, Segmentation]] = {}
    problems: list[tuple[str, str]] = []
    for image, findings in data.items():
        where = f"{path}: image {image!r}"
        try:
            if not image:
                raise AuditInputError(f"{where}: empty image id")
            if not isinstance(findings, dict):
                raise AuditInputError(f"{where}: expected an object of findings, not {type(findings).__name__}")
            segs = {}
            if form == "annotations":
                size = _size(findings.get("img_size"), where, "img_size")
                for finding, value in findings.items():
                    if finding != "img_size":
                        segs[finding] = _contours(value, size, f"{where}, finding {finding!r}")
            else:
                for finding, value in findings.items():
                    segs[finding] = _segmentation(value, f"{where}, finding {finding!r}")
        except AuditInputError as exc:
            problems.append((image, str(exc)))
            continue
        out[image] = segs
    return out, problems, form


def _read(path: Path) -> tuple[dict, list[tuple[str, str]], str]:
    from .parsedfiles import parsed

    return parsed(path, _parse, _CACHE)


def read_segmentations(path, skipped: list[dict] | None = None) -> dict[str, dict[str, Segmentation]]:
    """``{image_id: {finding: Segmentation}}`` from a CheXlocalize JSON file of either form (COCO RLE
    segmentations, ``gt_``/``hb_segmentations_*.json``, or polygon annotations, ``gt_annotations_*.json``;
    told apart by their content).  In the annotation form an image lists only the findings present.

    The file's structure is checked here (sizes, RLE characters, contour points); a malformed image is one
    AuditInputError line naming the file, image and finding, or, with ``skipped`` (a list), is recorded there
    (``{"id", "reason"}``) and left out.  Masks are decoded only by :meth:`Segmentation.mask`.  A parsed file is
    kept for the next call while it is unchanged on disk (the adapter is built once per finding).
    """
    segs, problems, _ = _read(path)
    if problems:
        if skipped is None:
            raise AuditInputError(problems[0][1])
        skipped.extend({"id": image, "reason": reason} for image, reason in problems)
    return {image: dict(findings) for image, findings in segs.items()}


def truth_files(root, annotations: str | None = None) -> list[tuple[Path, str | None]]:
    """The ground-truth files of ``root`` with their split: ``annotations`` (a path, or a name under the
    root), else ``gt_segmentations_<split>.json``, or ``gt_annotations_<split>.json`` for a split without."""
    base = Path(root)
    if annotations:
        from .parsedfiles import given_file

        return [(given_file(root, annotations), None)]
    found: dict[str, Path] = {}
    for prefix in PREFIXES:
        for p in sorted(base.glob(f"{prefix}*.json")):
            found.setdefault(p.stem[len(prefix):], p)
    if not found:
        raise AuditUsageError(f"--data-root={root}: no gt_segmentations_<split>.json or gt_annotations_<split>.json "
                              "(the human benchmark hb_*.json is read as ground truth only when named by annotations=)")
    return [(p, split) for split, p in sorted(found.items())]


def _counts(files) -> dict[str, int]:
    """{finding as first written: images where it is not empty}; an entry that cannot be read counts as absent."""
    spelling: dict[str, str] = {}
    n: dict[str, int] = {}
    for segs in files:
        for findings in segs.values():
            for finding, seg in findings.items():
                k = key(finding)
                spelling.setdefault(k, finding)
                try:
                    positive = not seg.empty()
                except AuditInputError:
                    positive = False
                n[k] = n.get(k, 0) + positive
    return {spelling[k]: c for k, c in n.items() if c}


def _locate(base: Path, ids) -> dict[str, list[Path]]:
    """{image id: files}: ``<patient>/<study>/<view>.jpg`` anywhere under ``base``, only the patients of ``ids``
    visited."""
    patients = {m.group(1) for m in map(IMAGE_ID.fullmatch, ids) if m}
    out: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("patient") or d in patients)
        here = Path(dirpath)
        if here.parent.name in patients:
            for f in filenames:
                p = here / f
                if p.suffix.lower() in SUFFIXES:
                    out.setdefault(f"{here.parent.name}_{here.name}_{p.stem}", []).append(p)
    return out


class CheXlocalizeDataset(IndexedDataset):
    def __init__(self, root: str, finding: str | None = None, annotations: str | None = None,
                 skip_bad: bool = False):
        base = Path(root)
        skipped: list[dict] = []
        files = [(path, split, read_segmentations(path, skipped if skip_bad else None))
                 for path, split in truth_files(root, annotations)]
        source = " and ".join(p.name for p, _, _ in files)
        self.finding = choose(finding, _counts(s for _, _, s in files), dataset="chexlocalize", source=source)
        target = key(self.finding)

        bad = {s["id"] for s in skipped}
        chosen: dict[str, tuple[Segmentation | None, str | None, str]] = {}  # image -> (truth, split, where)
        for path, split, segs in files:
            for image, findings in segs.items():
                where = f"{path}: image {image!r}"
                try:
                    if image in chosen:
                        raise AuditInputError(f"{where}: listed again (also in {chosen[image][2].split(': ')[0]})")
                    if not IMAGE_ID.fullmatch(image):
                        raise AuditInputError(f"{where}: not a CheXpert image id (patient<N>_study<N>_view<N>_"
                                              "frontal or _lateral)")
                    truth = next((s for f, s in findings.items() if key(f) == target), None)
                    if truth is not None:
                        truth.empty()  # checks the first runs now: a malformed mask is this image's error
                except AuditInputError as exc:
                    if not skip_bad:
                        raise
                    skipped.append({"id": image, "reason": str(exc)})
                    bad.add(image)
                    continue
                chosen[image] = (truth, split, where)

        located = _locate(base, [i for i in chosen if i not in bad])
        entries, self._truth = [], {}
        for image, (truth, split, where) in chosen.items():
            if image in bad:
                continue
            found = located.get(image, [])
            patient, study, view = IMAGE_ID.fullmatch(image).groups()
            missing = (None if len(found) == 1 else
                       f"{where}: no image {patient}/{study}/{view}.jpg under {root}" if not found else
                       f"{where}: image found {len(found)} times under {root} "
                       f"({quoted(str(p.relative_to(base)) for p in found)}): which one is meant?")
            meta = {"finding": self.finding}
            if split is not None:
                meta["split"] = split
            entries.append(Entry(id=image, image=None if missing else found[0], missing=missing, where=where,
                                 meta=meta))
            self._truth[image] = truth
        if not entries:
            raise AuditUsageError(f"--data-root={root}: {source} lists no readable image")
        super().__init__(root, "chexlocalize", entries, skipped)
        self.forms = {str(p.name): _read(p)[2] for p, _, _ in files}

    @classmethod
    def findings(cls, root: str, annotations: str | None = None, skip_bad: bool = False) -> list[str]:
        """The findings with a non-empty mask on some image, in the files' spelling, sorted; no image is read
        and malformed entries are passed over (the adapter built for each finding reports them)."""
        files = [read_segmentations(path, []) for path, _ in truth_files(root, annotations)]
        return sorted(_counts(files), key=str.lower)

    def has_truth(self, i: int) -> bool:
        truth = self._truth[self.entries[i].id]
        return truth is not None and not truth.empty()

    def load_truth(self, i: int, shape: tuple[int, int] | None = None):
        from .imageio import image_size

        e = self.entries[i]
        if shape is None:
            shape = image_size(e.image_path())
        truth = self._truth[e.id]
        if truth is None or truth.empty():
            return None, None, tuple(shape)
        if tuple(truth.size) != tuple(shape):
            raise AuditInputError(f"{truth.where}: mask of size {truth.size[0]}x{truth.size[1]} does not match the "
                                  f"image {e.image.name!r} of size {shape[0]}x{shape[1]} (CheXlocalize's masks are "
                                  "at the full resolution of CheXpert-v1.0, not of CheXpert-v1.0-small)")
        return truth.mask(), None, tuple(shape)

    def manifest_entry(self, i: int) -> dict:
        d = super().manifest_entry(i)
        truth = self._truth[self.entries[i].id]
        if truth is not None:
            d["truth_sha256"] = truth.digest()
        return d

    def info(self) -> dict:
        return {"finding": self.finding, "truth": self.forms}
