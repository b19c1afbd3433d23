"""A second set of annotations (``--human-annotations PATH``): the radiologist benchmark's readers.

:func:`load_human_annotations` gives, per audited image id, what a human reader marked for the finding
audited, on the model's grid, beside the dataset's ground truth (Saporta et al. 2022's protocol: the
saliency methods and a separate group of readers scored against the same ground truth on the same images;
:mod:`saliency_audit.criteria.human`).

Formats (:data:`FORMATS`, detected from the path by :func:`detect_format`; one entry per format):

* ``mask-folder`` — a folder of mask images named by image id (``<id>.png``, also ``.tif``/``.tiff``/``.bmp``
  as the folder dataset's masks; a pixel above half the range is marked), optionally one subfolder per
  finding (``<PATH>/<finding>/<id>.png``; the finding's folder is used when it exists).  An all-black mask
  means the reader looked and marked nothing (scored: a miss); no file means the reader did not read that
  image (not scored, and listed).

* ``chexlocalize`` — CheXlocalize's JSON (its human benchmark ``hb_segmentations_*.json``, or contours),
  read by :func:`saliency_audit.data.chexlocalize.read_segmentations`.
* ``box-table`` — a second reader's boxes in the VinDr-CXR table layout
  (:func:`saliency_audit.data.vindr.read_box_table`), rasterised on the grid as the dataset's boxes are.

Further formats plug in by :func:`register_format`: a ``detect(path) -> bool`` and a ``read(path, finding, ids) -> {id: Reading}`` giving
the reader's mask at the image's own resolution (and the reader's points, when the format has them).  A
path no format recognises is a one-line usage error naming it and the formats known.

Missing annotations are never dropped silently: :attr:`HumanAnnotations.missing` lists every audited id the
readers did not annotate, and the criterion records them in its evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..common.errors import AuditInputError, AuditUsageError

OPTION = "--human-annotations"
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class Reading:
    """What one reader marked on one image, as a format reads it: at the image's own resolution."""

    mask: np.ndarray | None  # (h, w) bool; all False: the reader marked nothing on this image
    source: str  # the file (and entry) it came from, for error messages and the evidence
    points: tuple[tuple[float, float], ...] | None = None  # (x, y) most representative points, when given
    #: a box reader's marks instead of a mask: inclusive (x0, y0, x1, y1) at the image's own resolution,
    #: rasterised on the grid as the dataset's boxes are (() : the reader read the image and boxed nothing)
    boxes: tuple[tuple[int, int, int, int], ...] | None = None


@dataclass(frozen=True)
class HumanAnnotation:
    """One reader's annotation of one audited image, on the model's grid."""

    mask: np.ndarray  # (H, W) bool on the evaluation grid (resized as the dataset's masks are: nearest)
    source: str
    points: tuple[tuple[int, int], ...] | None = None  # (x, y) on the grid, when the format gives points


@dataclass
class HumanAnnotations:
    path: str
    format: str
    finding: str | None
    annotations: dict[str, HumanAnnotation | None] = field(default_factory=dict)  # audited id -> it, or None

    def get(self, sample_id: str) -> HumanAnnotation | None:
        return self.annotations.get(sample_id)

    @property
    def missing(self) -> list[str]:
        """The audited ids the readers did not annotate (in the audited order)."""
        return [i for i, a in self.annotations.items() if a is None]

    def describe(self) -> dict:
        annotated = [i for i, a in self.annotations.items() if a is not None]
        return {"path": self.path, "format": self.format, "finding": self.finding, "n_audited": len(self.annotations),
                "n_annotated": len(annotated), "n_missing": len(self.missing), "missing": self.missing}


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    detect: Callable[[Path], bool]
    read: Callable[[Path, "str | None", list[str]], dict[str, Reading]]  # only ids it has an annotation of


#: format name -> Format, in detection order (the first whose ``detect`` accepts the path reads it)
FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> None:
    """Add a format (e.g. CheXlocalize's hb_segmentations JSON, a box table with a reader column)."""
    if fmt.name in FORMATS:
        raise AuditUsageError(f"{OPTION}: a format named {fmt.name!r} is registered already")
    FORMATS[fmt.name] = fmt


def detect_format(path: str | Path) -> str:
    """The name of the format that reads ``path``; a usage error naming the path when none does."""
    p = Path(path)
    if not p.exists():
        raise AuditUsageError(f"{OPTION}={path}: no such file or directory")
    for fmt in FORMATS.values():
        if fmt.detect(p):
            return fmt.name
    known = "; ".join(f"{f.name} ({f.description})" for f in FORMATS.values())
    raise AuditUsageError(f"{OPTION}={path}: not an annotation format this audit reads (known: {known})")


def load_human_annotations(path: str | Path, finding: str | None, ids: Iterable[str], shape: tuple[int, int], *,
                           native: dict[str, tuple[int, int]] | None = None) -> HumanAnnotations:
    """Per audited image id, the reader's annotation of ``finding`` on the ``shape`` (H, W) grid, or None
    when the reader did not annotate that image (listed in ``missing``).

    ``native``: each image's own (h, w) as the dataset read it; a mask of another size is refused (it
    belongs to another image), a mask of the grid's size is taken as already resized.  Bad files are
    one-line input errors naming the file."""
    ids = list(ids)
    name = detect_format(path)
    readings = FORMATS[name].read(Path(path), finding, ids)
    out = HumanAnnotations(str(path), name, finding)
    for i in ids:
        r = readings.get(i)
        out.annotations[i] = None if r is None else _on_grid(r, i, tuple(shape), (native or {}).get(i))
    return out


def _on_grid(r: Reading, sample_id: str, shape: tuple[int, int], native) -> HumanAnnotation:
    from .resize import resize_mask, resize_truth

    if r.boxes is not None:
        if native is None:
            raise AuditInputError(f"{r.source}: boxes need image {sample_id!r}'s own size, which is not known")
        truth = resize_truth(None, r.boxes, tuple(native), shape) if r.boxes else None
        return HumanAnnotation(np.zeros(shape, bool) if truth is None else truth.astype(bool), r.source)
    mask = np.asarray(r.mask)
    if mask.ndim != 2:
        raise AuditInputError(f"{r.source}: annotation of shape {mask.shape} is not a 2-D mask")
    src = tuple(int(v) for v in mask.shape)
    allowed = {shape} | ({tuple(int(v) for v in native)} if native is not None else set())
    if native is not None and src not in allowed:
        raise AuditInputError(f"{r.source}: mask of {src[0]}x{src[1]} pixels, but image {sample_id!r} is "
                              f"{native[0]}x{native[1]}: an annotation of another image or resolution")
    points = None
    if r.points is not None:
        sy, sx = shape[0] / src[0], shape[1] / src[1]
        points = []
        for x, y in r.points:
            if not (0 <= x < src[1] and 0 <= y < src[0]):
                raise AuditInputError(f"{r.source}: point ({x:g}, {y:g}) lies outside the {src[0]}x{src[1]} image")
            # pixel areas (saliency_audit.data.resize): pixel x covers [x, x + 1)
            points.append((min(int((int(x) + 0.5) * sx), shape[1] - 1), min(int((int(y) + 0.5) * sy), shape[0] - 1)))
        points = tuple(points)
    return HumanAnnotation(resize_mask(mask.astype(bool), shape), r.source, points)


# -- mask-folder ---------------------------------------------------------------------------------------------
def _mask_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in MASK_SUFFIXES and p.is_file():
            if p.stem in files:
                raise AuditInputError(f"{OPTION}={folder}: {files[p.stem].name!r} and {p.name!r} are two masks of "
                                      f"image {p.stem!r}; keep one")
            files[p.stem] = p
    return files


def _mask_folder_detect(path: Path) -> bool:
    return path.is_dir()


def _mask_folder_read(path: Path, finding: str | None, ids: list[str]) -> dict[str, Reading]:
    from .imageio import read_gray

    folder = path
    if finding is not None and (path / finding).is_dir():
        folder = path / finding
    files = _mask_files(folder)
    if not files:
        subs = sorted(p.name for p in path.iterdir() if p.is_dir())
        where = f"{folder}" + (f" (subfolders: {', '.join(subs[:8])}; audited finding: {finding})" if subs else "")
        raise AuditUsageError(f"{OPTION}={path}: no mask images (.png, .tif, .bmp) in {where}")
    base = folder.resolve()
    out = {}
    for i in ids:
        p = files.get(i)
        if p is None:
            continue
        if not p.resolve().is_relative_to(base):
            raise AuditInputError(f"{p}: resolves outside {folder}")
        out[i] = Reading(read_gray(p) > 0.5, str(p))  # as the folder dataset reads its masks
    return out


register_format(Format("mask-folder", "a folder of <image id>.png masks, optionally one subfolder per finding",
                       _mask_folder_detect, _mask_folder_read))


# -- CheXlocalize JSON (hb_segmentations_*.json, or contours) ---------------------------------------------------
def _chexlocalize_detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".json"


def _chexlocalize_read(path: Path, finding: str | None, ids: list[str]) -> dict[str, Reading]:
    """CheXlocalize's readers (its human benchmark): an image in the file was read; a finding it does not list
    there (the contour form lists only what was marked) or an empty mask is a reading that marked nothing."""
    from ..common.subjects import canonical
    from .chexlocalize import read_segmentations

    images = read_segmentations(path)
    out = {}
    for i in ids:
        if i not in images or not images[i]:
            continue
        segs = images[i]
        seg = next((v for k, v in segs.items() if finding is not None and canonical(k) == canonical(finding)), None)
        if seg is None:
            size = next(iter(segs.values())).size
            out[i] = Reading(np.zeros(size, bool), f"{path}: image {i!r} (no {finding} marked)")
        else:
            out[i] = Reading(np.zeros(seg.size, bool) if seg.empty() else seg.mask(), seg.where)
    return out


# -- a second reader's box table (VinDr-CXR layout) ----------------------------------------------------------------
def _box_table_detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".csv"


def _box_table_read(path: Path, finding: str | None, ids: list[str]) -> dict[str, Reading]:
    """Every image the table names was read (a ``No finding`` row included); its boxes of ``finding`` (all its
    readers', unioned as the dataset unions them) are the human marks, none: marked nothing."""
    from ..common.subjects import canonical
    from .vindr import read_box_table

    boxes: dict[str, list] = {}
    rows: dict[str, str] = {}
    for row in read_box_table(path):
        boxes.setdefault(row.image, [])
        rows.setdefault(row.image, row.where)
        if row.box is not None and finding is not None and canonical(row.finding) == canonical(finding):
            boxes[row.image].append(row.box)
    return {i: Reading(None, rows[i], boxes=tuple(boxes[i])) for i in ids if i in boxes}


register_format(Format("chexlocalize", "CheXlocalize segmentations or contours, {image id: {finding: ...}} JSON",
                       _chexlocalize_detect, _chexlocalize_read))
register_format(Format("box-table", "a box table CSV: image_id, [rad_id,] class_name, x_min, y_min, x_max, y_max",
                       _box_table_detect, _box_table_read))
