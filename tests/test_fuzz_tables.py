"""Property-based tests of every table parser and dataset index loader in ``saliency_audit/data/``.

Each test generates the files of one layout (odd ids, non-integer labels, bad or NaN boxes, malformed RLE,
missing, doubled or extra columns, quoting, BOM, CRLF, empty files, stray quotes, bytes that are not UTF-8...),
builds its own model of what those files say (the oracle, written here from the documented formats, never
from the product's code), and checks that loading either

(a) succeeds, with exactly the samples the model expects (same ids, labels, box corners, mask pixels; none
    dropped, renamed, relabelled or invented), or
(b) raises AuditInputError/AuditUsageError whose message is one line and names the file (and, for a problem
    of a row, the row: "row N"), or
(c) with ``skip_bad=True``, lists the bad row or sample in ``dataset.skipped`` with such a reason.

A problem that can only be seen with the pixels (a box or a run outside the image, a missing image file) may
surface when the sample is loaded instead; a missing image may then be named by its own path.

Every bug found is pinned in KNOWN_BUGS by its smallest input: an explicit example of its property test (which
is xfail, strict, while any is listed; the examples fail first, so no time goes into shrinking) and a case of
test_known_bug, which starts passing, and so failing strictly, when that bug is fixed: then move the entry to
FIXED, where it stays an explicit example of its property and a case of test_fixed_bug (regressions).
"""
from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from saliency_audit.data import load_dataset
from saliency_audit.data.dicom import write_dicom
from saliency_audit.data.rle import RLEError, decode
from saliency_audit.data.splits import read_split_file
from saliency_audit.common.errors import AuditInputError, AuditUsageError
from tests.fuzzing import FUZZ

ERRORS = (AuditInputError, AuditUsageError)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm")  # documented "ids come both ways"
SIIM_PIXELS = 1024 * 1024  # the SIIM images' size, which the form detection assumes
INT = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


# == the oracle's vocabulary ==================================================================================
@dataclass(frozen=True)
class Problem:
    """Something the loader must report: an error or skip reason naming one of ``where`` ((file, row or None)
    pairs; no pairs: any one-line error will do), affecting the samples ``ids`` (which must not load).
    ``lazy``: seen only with the image's pixels, so it may surface when the sample is loaded."""

    where: tuple[tuple[str, int | None], ...]
    ids: frozenset[str] = frozenset()
    lazy: bool = False


def at(path, row=None, *ids, also=(), lazy=False) -> Problem:
    return Problem(((str(path), row), *also), frozenset(ids), lazy)


USAGE = Problem(())  # a refusal for want of a usable option (no --finding...): any one-line error


@dataclass
class Truth:
    label: int
    boxes: tuple | None = None
    mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class Model:
    samples: dict[str, Truth] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # rows or samples the loader must report
    fatal: list[Problem] = field(default_factory=list)  # files the loader must refuse
    maybe: list[Problem] = field(default_factory=list)  # rows it may refuse, else must read as the model does


def cells(record: list[str]) -> list[str]:
    """A row as the documented format reads it: every field stripped of surrounding whitespace."""
    return [c.strip() for c in record]


def data_rows(table: list[list[str]]):
    """(row number as a spreadsheet shows it, stripped fields) of the non-blank data rows."""
    for k, record in enumerate(table[1:], start=2):
        fields = cells(record)
        if any(fields):
            yield k, fields


def columns(table: list[list[str]], wanted: tuple[str, ...]) -> dict[str, int] | None:
    """{column name: position} of the ``wanted`` columns, None when one is missing or given twice."""
    header = cells(table[0])
    if any(header.count(name) != 1 for name in wanted):
        return None
    return {name: header.index(name) for name in wanted}


def field_of(fields: list[str], position: int | None) -> str:
    return fields[position] if position is not None and position < len(fields) else ""


def number(text: str) -> float | None:
    """A plain decimal number (no NaN, infinity, hex, underscores or non-ASCII digits), else None."""
    if not DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def corners(x: float, y: float, w: float, h: float) -> tuple[int, int, int, int]:
    """Top-left corner and size -> inclusive corners of every pixel the box touches."""
    x0, y0 = math.floor(x), math.floor(y)
    return x0, y0, max(math.ceil(x + w) - 1, x0), max(math.ceil(y + h) - 1, y0)


def rle_runs(rle: str, n_pixels: int, form: str) -> list[tuple[int, int]] | None:
    """The (0-based first pixel, length) runs of ``rle`` in ``form``, or None when it is not a valid mask of
    ``n_pixels`` pixels in that form (see the format in saliency_audit/data/rle.py's docstring)."""
    tokens = rle.split()
    if tokens in ([], ["-1"]):
        return []
    if len(tokens) % 2 or not all(INT.fullmatch(t) for t in tokens):
        return None
    values = [int(t) for t in tokens]
    runs, end = [], 0
    for start, length in zip(values[::2], values[1::2]):
        if length <= 0:
            return None
        if form == "relative":
            if start < 0:
                return None
            begin = end + start
        else:
            if start < 1 or start - 1 < end:
                return None
            begin = start - 1
        end = begin + length
        if end > n_pixels:
            return None
        runs.append((begin, length))
    return runs


def paint(mask: np.ndarray, runs) -> None:
    """Set the pixels of ``runs``, numbered column by column (pixel p is at row p % H, column p // H)."""
    h = mask.shape[0]
    for begin, length in runs:
        for p in range(begin, begin + length):
            mask[p % h, p // h] = True


def encode(mask: np.ndarray, form: str) -> str:
    """The maximal-run RLE of ``mask`` (column by column) in ``form``; '-1' when empty."""
    flat = [bool(v) for v in mask.T.ravel()]
    runs, p = [], 0
    while p < len(flat):
        if flat[p]:
            q = p
            while q < len(flat) and flat[q]:
                q += 1
            runs.append((p, q - p))
            p = q
        else:
            p += 1
    if not runs:
        return "-1"
    out, end = [], 0
    for begin, length in runs:
        out += [begin - end if form == "relative" else begin + 1, length]
        end = begin + length
    return " ".join(map(str, out))


def inside(folder: Path, relative: str) -> Path | None:
    """``folder / relative`` normalised, None when it leaves ``folder`` or cannot be a path (NUL)."""
    if "\x00" in relative:
        return None
    path = Path(os.path.normpath(os.path.join(folder, relative)))
    return path if str(path).startswith(str(folder) + os.sep) else None


# == writing files =============================================================================================
@dataclass(frozen=True)
class Style:
    """How a table is written: the same records, different bytes.  ``corrupt`` damages the file so that its
    records are no longer the generated ones: a byte that is not UTF-8, or an unbalanced quote that runs to the
    end of the file (swallowing the rows after it)."""

    bom: bool = False
    crlf: bool = False
    quote_all: bool = False
    corrupt: str | None = None  # None, "bad_byte" or "stray_quote"
    at: float = 0.5  # where the damage goes, as a fraction of the file


STYLES = st.builds(Style, bom=st.booleans(), crlf=st.booleans(), quote_all=st.booleans(),
                   corrupt=st.sampled_from([None] * 14 + ["bad_byte", "stray_quote"]), at=st.floats(0, 1))


def csv_field(text: str, quote: bool) -> str:
    """One CSV field (RFC 4180): quoted when asked or when it holds a comma, a quote or a line break."""
    if quote or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_table(path: Path, records: list[list[str]] | None, style: Style) -> bool:
    """Write ``records`` (header first) as CSV; True when ``style`` corrupted the file (it must be refused)."""
    if records is None:
        return False
    lines = [",".join(csv_field(f, style.quote_all) for f in record) + ("\r\n" if style.crlf else "\n")
             for record in records]
    corrupt = False
    if style.corrupt == "stray_quote":
        # a quote opening a line after which no quote closes it and some row follows: the rest is one field
        spots = [k for k in range(1, len(records) - 1)
                 if '"' not in "".join(lines[k:]) and any(any(cells(r)) for r in records[k + 1:])]
        if spots:
            k = spots[int(style.at * (len(spots) - 1))]
            lines[k] = '"' + lines[k]
            corrupt = True
    data = (("\ufeff" if style.bom else "") + "".join(lines)).encode("utf-8")
    if style.corrupt == "bad_byte":
        cut = int(style.at * len(data))
        data, corrupt = data[:cut] + b"\xff" + data[cut:], True
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return corrupt


def table_problems(path: Path, records: list[list[str]] | None, corrupt: bool) -> list[Problem]:
    """The file-level problems of a table: damaged or empty."""
    if records is None:
        return []
    return [at(path)] if corrupt or not records else []


def png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def pixels(size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return (np.arange(h * w, dtype=np.uint16).reshape(h, w) * 7 % 251).astype(np.uint8)


def random_mask(size: tuple[int, int], seed: int) -> np.ndarray:
    """Seed 0: an empty mask; others: a random one."""
    return np.random.default_rng(seed).random(size) < 0.4 if seed else np.zeros(size, bool)


# == checking a load against the model =========================================================================
def assert_one_line(text: str, what: str) -> None:
    assert text and len(text.splitlines()) == 1 and "\n" not in text, f"{what} is not one line: {text!r}"


def names(text: str, problem: Problem) -> bool:
    """Whether an error message or skip reason names one of the problem's places (file, and row if any)."""
    return not problem.where or any(
        path in text and (row is None or re.search(rf"\brow {row}(?!\d)", text)) for path, row in problem.where)


def assert_sample(sample, sid: str, truth: Truth) -> None:
    assert sample.id == sid
    assert sample.label == truth.label, f"{sid!r}: label {sample.label}, the files say {truth.label}"
    assert (sample.boxes or None) == (truth.boxes or None), f"{sid!r}: boxes {sample.boxes}, files say {truth.boxes}"
    if truth.mask is None:
        assert sample.mask is None, f"{sid!r}: a mask that no file gives"
    else:
        assert sample.mask is not None and np.array_equal(sample.mask, truth.mask), \
            f"{sid!r}: mask\n{None if sample.mask is None else sample.mask.astype(int)}\nfiles say\n" \
            f"{truth.mask.astype(int)}"
    for key, value in truth.meta.items():
        assert sample.meta.get(key) == value, f"{sid!r}: {key} {sample.meta.get(key)!r}, files say {value!r}"


def check_load(load, model: Model, *, skip_bad: bool):
    """Run ``load()`` and hold its outcome against ``model`` (see the module docstring); the dataset or None."""
    try:
        ds = load()
    except ERRORS as exc:
        message = str(exc)
        assert_one_line(message, "error message")
        expected = model.fatal + model.problems
        if any(names(message, p) for p in expected + model.maybe):
            return None
        left = set(model.samples) - ({sid for p in model.problems for sid in p.ids} if skip_bad else set())
        if not left:
            return None  # nothing (valid) to load: "no images found" and the like
        raise AssertionError(f"refused with {message!r}, which names none of {expected}" if expected else
                             f"valid input refused: {message!r}") from None
    assert not model.fatal, f"loaded although the file must be refused: {model.fatal}"
    ids = [ds.sample_id(i) for i in range(len(ds))]
    assert len(set(ids)) == len(ids), f"several samples share an id: {ids}"
    for i, sid in enumerate(ids):
        touching = [p for p in model.problems if sid in p.ids]
        if touching:
            try:
                sample = ds[i]
            except ERRORS as exc:
                assert_one_line(str(exc), "error message")
                assert any(names(str(exc), p) for p in touching), f"{str(exc)!r} names none of {touching}"
                continue
            raise AssertionError(f"sample {sid!r} loaded (label {sample.label}, boxes {sample.boxes}) although "
                                 f"{touching}; skipped={ds.skipped}")
        assert sid in model.samples, f"sample {sid!r} is in no file (expected {sorted(model.samples)})"
        try:
            sample = ds[i]
        except ERRORS as exc:
            raise AssertionError(f"valid sample {sid!r} refused: {exc}") from None
        assert_sample(sample, sid, model.samples[sid])
        described = ds.describe(i)
        assert (described["id"], described["label"]) == (sid, model.samples[sid].label), described
    touched = {sid for p in model.problems for sid in p.ids}
    lost = sorted(set(model.samples) - touched - set(ids))
    assert not lost, f"valid samples silently left out: {lost}; skipped={ds.skipped}"
    for p in model.problems:
        if p.ids & set(ids):
            continue  # present, and refused when loaded (checked above)
        if skip_bad:  # listed; a lazy problem may go unseen when its sample was left out for another one
            related = [p] + [q for q in model.problems if q.ids & p.ids] * p.lazy
            assert any(names(s["reason"], q) for s in ds.skipped for q in related), \
                f"{p} neither raised nor listed in {ds.skipped}"
        else:
            raise AssertionError(f"{p} silently ignored (loaded {ids})")
    for s in ds.skipped:
        assert_one_line(s["reason"], "skip reason")
    return ds


# == strategies for table fields ================================================================================
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)


def mixed(noisy: bool, clean: st.SearchStrategy, *odd: st.SearchStrategy) -> st.SearchStrategy:
    """``clean`` values; in a noisy table also ``odd`` ones (each table draws whether it is noisy, so that
    about half the tables are valid and load, the other half exercise the errors)."""
    return st.one_of(clean, clean, *odd) if noisy else clean


ODD_IDS = ["", " ", ".", "..", "../x", "..\\x", "a/b", "/abs", "x\x00y", "\t", "a\nb", "é", "\ufeff", '"', ",", "\x1c"]
NUMBERS = st.one_of(  # pixel coordinates in several spellings
    st.integers(0, 12).map(str),
    st.builds(lambda i, q: i + q / 4, st.integers(0, 12), st.integers(1, 3)).map(repr),
    st.builds(lambda i, q: f" {i + q / 4:e} ", st.integers(0, 12), st.integers(0, 3)),
    st.sampled_from(["+2", "-0", ".5", "5.", "1e30"]))
ODD_NUMBERS = st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e400", "abc", "1_0", "\u0663", "0x1", "-1", "-2.5"])
LABELS = st.one_of(st.integers(-1, 2).map(str), st.sampled_from([" 1 ", "+1", "01", "-0"]))
ODD_LABELS = st.sampled_from(["", "1.0", "1_0", "yes", "\u0661", "0x1", "1e0", "nan"]) | TEXT
SPLIT_NAMES = st.sampled_from(["train", "test"] * 3 + ["val", " test ", "Test", "", "te st", "\u00e9"])
# disk names: no path separators, NUL or dots, nothing to strip (tables' fields are stripped)
STEM = st.text(st.characters(exclude_characters="/\\.\x00", exclude_categories=("Cs",)), min_size=1, max_size=5
               ).filter(lambda s: s == s.strip())
ID = st.text(st.characters(exclude_characters="/\\\x00", exclude_categories=("Cs",)), min_size=1, max_size=5
             ).filter(lambda s: s == s.strip() and s not in (".", ".."))
SIZES = st.tuples(st.integers(3, 8), st.integers(3, 8))


def id_cells(known: list[str], noisy: bool) -> st.SearchStrategy[str]:
    """A field naming an image: a known id (maybe padded); in a noisy table also with a path part, or odd text."""
    k = st.sampled_from(known)
    return mixed(noisy, k | k.map(lambda s: f" {s}\t"),
                 st.builds(str.__add__, st.sampled_from(["../", "sub/", "./", "sub\\", "/"]), k),
                 st.sampled_from(ODD_IDS), TEXT)


@st.composite
def headers(draw, required: tuple[str, ...], optional: tuple[str, ...] = (), noisy: bool = False) -> list[str]:
    """Column names in any order: the required ones (when noisy, sometimes one missing, doubled or misspelt),
    maybe the optional ones, maybe extra columns, maybe padded with spaces."""
    names = list(required) + [o for o in optional if draw(st.booleans())]
    names += draw(st.lists(st.sampled_from(["", "note", "Unnamed: 0", "x2"]) | TEXT, max_size=2))
    damage = draw(st.sampled_from([None] * 5 + ["drop", "double", "case"])) if noisy else None
    if damage and required:
        k = draw(st.integers(0, len(required) - 1))
        if damage == "drop":
            names.remove(required[k])
        elif damage == "double":
            names.append(required[k])
        else:
            names[k] = required[k].swapcase()
    names = draw(st.permutations(names))
    return [draw(st.sampled_from([n, n, f" {n}", f"{n} "])) for n in names]


@st.composite
def tables(draw, required, optional, cell, kinds=("row",), max_rows=6) -> list[list[str]]:
    """A table: a header, then rows whose fields ``cell(column, kind, noisy)`` draws per column (``kind``: drawn
    once per row from ``kinds``); some rows blank or with extra fields; when noisy, some rows short, the header
    damaged, or the file empty."""
    noisy = draw(st.booleans())
    if noisy and draw(st.integers(0, 7)) == 0:
        return []
    head = draw(headers(required, optional, noisy))
    table = [head]
    for _ in range(draw(st.integers(0, max_rows))):
        shape = draw(st.sampled_from(["full"] * 8 + ["blank", "long"] + ["short"] * noisy))
        if shape == "blank":
            table.append(draw(st.sampled_from([[], [" "], ["", ""]])))
            continue
        kind = draw(st.sampled_from(kinds))
        record = [draw(cell(name.strip(), kind, noisy)) for name in head]
        if shape == "short" and record:
            record = record[: draw(st.integers(0, len(record) - 1))]
        elif shape == "long":
            record += draw(st.lists(TEXT, min_size=1, max_size=2))
        table.append(record)
    return table


# == folder: images/, masks/, labels.csv, boxes.csv ==============================================================
@dataclass
class Img:
    name: str  # file name in images/ (a stem without dots, and an image extension)
    size: tuple[int, int] = (6, 5)
    mask: int | None = None  # seed of its mask in masks/<stem>.png; None: no mask file

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]


@dataclass
class Folder:
    images: list[Img]
    labels: list[list[str]] | None = None
    boxes: list[list[str]] | None = None
    labels_style: Style = Style()
    boxes_style: Style = Style()
    split: str | None = None  # load_dataset(split=...)


@st.composite
def folder_images(draw) -> list[Img]:
    found: dict[str, Img] = {}
    for stem in draw(st.lists(STEM, min_size=1, max_size=4)):
        name = stem + draw(st.sampled_from([".png", ".png", ".PNG", ".bmp"]))
        found[name] = Img(name, draw(SIZES), draw(st.none() | st.integers(0, 3)))
    return list(found.values())


def folder_cell(images: list[Img], facts: dict[str, tuple[str, str]] | None = None):
    """Fields of labels.csv and boxes.csv.  A clean labels.csv row is about one image (its ``kind``) and gives
    that image's label and split from ``facts`` ({file name: (label, split)})."""
    known = [i.name for i in images] + [i.stem for i in images]
    other_ext = st.builds(str.__add__, st.sampled_from([i.stem for i in images]),
                          st.sampled_from([".jpg", ".PNG", ".png", ".dcm"]))

    def cell(column: str, kind, noisy: bool):
        about = kind if isinstance(kind, Img) and not noisy else None
        if column == "image":
            if about:
                return st.sampled_from([about.name, about.stem, f" {about.name} "])
            return id_cells(known, noisy) | other_ext if noisy else id_cells(known, noisy)
        if column == "label":
            return st.just(facts[about.name][0]) if about else mixed(noisy, LABELS, ODD_LABELS)
        if column == "split":
            return st.just(facts[about.name][1]) if about else SPLIT_NAMES
        if column in ("x", "y", "width", "height"):
            return st.just("") if kind == "nobox" else mixed(noisy, NUMBERS, ODD_NUMBERS)
        return TEXT

    return cell


def build_folder(root: Path, f: Folder) -> list[bool]:
    (root / "images").mkdir(parents=True)
    for img in f.images:
        png(root / "images" / img.name, pixels(img.size))
        if img.mask is not None:
            png(root / "masks" / f"{img.stem}.png", random_mask(img.size, img.mask).astype(np.uint8) * 255)
    return [write_table(root / "labels.csv", f.labels, f.labels_style),
            write_table(root / "boxes.csv", f.boxes, f.boxes_style)]


def folder_model(root: Path, f: Folder, corrupt: list[bool]) -> Model:
    m = Model()
    images, labels_csv, boxes_csv = root / "images", root / "labels.csv", root / "boxes.csv"
    by_stem: dict[str, list[Img]] = {}
    for img in f.images:
        by_stem.setdefault(img.stem, []).append(img)
    for stem, imgs in by_stem.items():
        if len(imgs) > 1:  # two files, one id: which one is meant?
            m.problems.append(at(images, None, stem))
    by_name = {img.name: img.stem for img in f.images}

    def image_of(text: str) -> str | None:
        """The id of the image a field names: by its file name or by its stem."""
        return by_name.get(text, text if text in by_stem else None)

    m.fatal += table_problems(labels_csv, f.labels, corrupt[0]) + table_problems(boxes_csv, f.boxes, corrupt[1])
    labels: dict[str, tuple[int, str | None]] = {}
    if f.labels and not corrupt[0]:
        col = columns(f.labels, ("image", "label"))
        split_col = columns(f.labels, ("split",)) if "split" in cells(f.labels[0]) else {"split": None}
        if col is None or split_col is None:
            m.fatal.append(at(labels_csv))
        else:
            for k, fields in data_rows(f.labels):
                stem = image_of(field_of(fields, col["image"]))
                label, split = field_of(fields, col["label"]), field_of(fields, split_col["split"]) or None
                if stem is None:
                    m.problems.append(at(labels_csv, k))
                elif not INT.fullmatch(label) or labels.get(stem, (int(label), split)) != (int(label), split):
                    m.problems.append(at(labels_csv, k, stem))
                else:
                    labels[stem] = (int(label), split)
    boxes: dict[str, list[tuple]] = {}
    if f.boxes and not corrupt[1]:
        col = columns(f.boxes, ("image", "x", "y", "width", "height"))
        if col is None:
            m.fatal.append(at(boxes_csv))
        else:
            for k, fields in data_rows(f.boxes):
                values = [field_of(fields, col[c]) for c in ("x", "y", "width", "height")]
                if not any(values):
                    continue  # documented: rows with empty box fields are ignored
                stem = image_of(field_of(fields, col["image"]))
                x, y, w, h = (number(v) for v in values)
                if stem is None:
                    m.problems.append(at(boxes_csv, k))
                elif None in (x, y, w, h) or w <= 0 or h <= 0 or x < 0 or y < 0:
                    m.problems.append(at(boxes_csv, k, stem))
                else:
                    box = corners(x, y, w, h)
                    img = by_stem[stem][0]
                    if box[0] >= img.size[1] or box[1] >= img.size[0]:  # seen only with the image
                        m.problems.append(at(boxes_csv, k, stem, also=((str(images / img.name), None),), lazy=True))
                    boxes.setdefault(stem, []).append(box)
    for stem, (img, *_) in by_stem.items():
        mask = random_mask(img.size, img.mask) if img.mask is not None else None
        derived = int((mask is not None and bool(mask.any())) or stem in boxes)
        label, split = labels.get(stem, (derived, None))
        if f.split is None or split == f.split:
            m.samples[stem] = Truth(label, tuple(boxes.get(stem, ())) or None, mask, {"split": split})
    return m


def check_folder(f: Folder, skip_bad: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        corrupt = build_folder(root, f)
        model = folder_model(root, f, corrupt)
        check_load(lambda: load_dataset("folder", str(root), skip_bad=skip_bad, split=f.split), model,
                   skip_bad=skip_bad)


@st.composite
def folder_label_cases(draw) -> Folder:
    images = draw(folder_images())
    facts = {img.name: (draw(LABELS), draw(SPLIT_NAMES)) for img in images}
    labels = draw(tables(("image", "label"), ("split",), folder_cell(images, facts), kinds=tuple(images)))
    return Folder(images, labels=labels, labels_style=draw(STYLES),
                  split=draw(st.none() | st.sampled_from(["test", "train"])))


@st.composite
def folder_box_cases(draw) -> Folder:
    images = draw(folder_images())
    return Folder(images, boxes=draw(tables(("image", "x", "y", "width", "height"), (), folder_cell(images),
                                            kinds=("box", "box", "box", "nobox"))), boxes_style=draw(STYLES))


# == RSNA: stage_2_train_labels.csv, stage_2_detailed_class_info.csv, stage_2_train_images/<patientId>.dcm ======
RSNA_COLUMNS = ("patientId", "x", "y", "width", "height", "Target")


@dataclass
class Rsna:
    patients: dict[str, tuple[int, int]]  # the DICOM files written: patientId -> (height, width)
    labels: list[list[str]]
    classes: list[list[str]] | None = None
    labels_style: Style = Style()
    classes_style: Style = Style()


def rsna_cell(facts: dict[str, tuple[bool, str]]):
    """Fields of the RSNA tables.  A clean row is about one patient (its ``kind``) and agrees with ``facts``
    ({patientId: (has pneumonia, class)}): Target 1 with a box, or 0 without."""
    pids = sorted(facts)
    odd_target = st.sampled_from(["0", "1", " 1", "2", "", "1.0", "true", "-1"])
    classes = st.sampled_from(["Normal", "Lung Opacity", "No Lung Opacity / Not Normal", "", " Normal "])

    def cell(column: str, kind: str, noisy: bool):
        positive, cls = facts[kind]
        if column == "patientId":
            return id_cells(pids, True) if noisy else st.sampled_from([kind, f" {kind} "])
        if column == "Target":
            return odd_target if noisy else st.sampled_from(["1", " 1"] if positive else ["0", "0 "])
        if column in RSNA_COLUMNS:
            return mixed(True, NUMBERS | st.just(""), ODD_NUMBERS) if noisy else NUMBERS if positive else st.just("")
        if column == "class":
            return classes if noisy else st.just(cls)
        return TEXT

    return cell


def rsna_model(root: Path, r: Rsna, corrupt: list[bool]) -> Model:
    m = Model()
    labels_csv, info_csv = root / "stage_2_train_labels.csv", root / "stage_2_detailed_class_info.csv"
    images = root / "stage_2_train_images"
    m.fatal += table_problems(labels_csv, r.labels, corrupt[0]) + table_problems(info_csv, r.classes, corrupt[1])
    classes: dict[str, str] = {}
    if r.classes and not corrupt[1]:
        col = columns(r.classes, ("patientId", "class"))
        if col is None:
            m.fatal.append(at(info_csv))
        else:
            for k, fields in data_rows(r.classes):
                pid, cls = field_of(fields, col["patientId"]), field_of(fields, col["class"])
                if classes.get(pid, cls) != cls:
                    m.problems.append(at(info_csv, k, pid))
                classes.setdefault(pid, cls)
    if not r.labels or corrupt[0]:
        return m
    col = columns(r.labels, RSNA_COLUMNS)
    if col is None:
        m.fatal.append(at(labels_csv))
        return m
    targets: dict[str, int] = {}
    rows: dict[str, list[int]] = {}
    boxes: dict[str, list[tuple]] = {}
    for k, fields in data_rows(r.labels):
        pid, target = field_of(fields, col["patientId"]), field_of(fields, col["Target"])
        values = [field_of(fields, col[c]) for c in ("x", "y", "width", "height")]
        x, y, w, h = (number(v) for v in values)
        if (not pid or target not in ("0", "1") or (target == "0" and any(values))
                or (target == "1" and (None in (x, y, w, h) or w <= 0 or h <= 0))
                or targets.get(pid, int(target)) != int(target)):
            m.problems.append(at(labels_csv, k, pid))
            continue
        targets[pid] = int(target)
        rows.setdefault(pid, []).append(k)
        if target == "1":
            boxes.setdefault(pid, []).append((corners(x, y, w, h), k))
    for pid, target in targets.items():
        path = inside(images, f"{pid}.dcm")
        if path is None:
            m.problems.append(Problem(tuple((str(labels_csv), k) for k in rows[pid]), frozenset({pid})))
            continue
        if path not in {images / f"{p}.dcm" for p in r.patients}:
            m.problems.append(at(labels_csv, None, pid, also=((str(path), None),), lazy=True))
            continue
        h, w = r.patients[path.name[: -len(".dcm")]]
        for box, k in boxes.get(pid, ()):
            if box[0] >= w or box[1] >= h or box[2] < 0 or box[3] < 0:  # seen only with the image
                m.problems.append(at(labels_csv, k, pid, lazy=True))
        m.samples[pid] = Truth(target, tuple(b for b, _ in boxes.get(pid, ())) or None, None,
                               {"class": classes.get(pid)})
    return m


def check_rsna(r: Rsna, skip_bad: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        for pid, size in r.patients.items():
            path = root / "stage_2_train_images" / f"{pid}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_dicom(path, pixels(size))
        corrupt = [write_table(root / "stage_2_train_labels.csv", r.labels, r.labels_style),
                   write_table(root / "stage_2_detailed_class_info.csv", r.classes, r.classes_style)]
        model = rsna_model(root, r, corrupt)
        check_load(lambda: load_dataset("rsna", str(root), skip_bad=skip_bad), model, skip_bad=skip_bad)


@st.composite
def rsna_cases(draw) -> Rsna:
    patients = draw(st.dictionaries(ID, SIZES, min_size=1, max_size=3))
    facts = {pid: (draw(st.booleans()), draw(st.sampled_from(["Normal", "Lung Opacity"]))) for pid in patients}
    cell, kinds = rsna_cell(facts), tuple(sorted(patients))
    return Rsna(patients, draw(tables(RSNA_COLUMNS, (), cell, kinds=kinds)),
                draw(st.none() | st.none() | tables(("patientId", "class"), (), cell, kinds=kinds, max_rows=3)),
                draw(STYLES), draw(STYLES))


# == NIH: BBox_List_2017.csv (positional), Data_Entry_2017.csv, PNGs anywhere under the root =====================
BBOX_HEADER = ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""]
ALIASES = {"infiltrate": "infiltration"}  # documented: the box list says Infiltrate, Data_Entry Infiltration
FINDINGS = ["Nodule", "nodule ", "Mass", "Infiltrate", "Infiltration", "Cardiomegaly", "", "Nodule|Mass"]


def canonical(finding: str) -> str:
    f = finding.strip().lower().replace("_", " ")
    return ALIASES.get(f, f)


@dataclass
class Nih:
    images: list[tuple[str, str, tuple[int, int]]]  # (folder under the root, PNG file name, size)
    bbox: list[list[str]]
    entry: list[list[str]] | None = None
    finding: str | None = None
    bbox_style: Style = Style()
    entry_style: Style = Style()


@st.composite
def nih_images(draw):
    found = {}
    for stem in draw(st.lists(STEM, min_size=1, max_size=4)):
        folder = draw(st.sampled_from(["images_001/images", "images_002/images", "images"]))
        found[(folder, stem)] = (folder, f"{stem}.png", draw(SIZES))
    return list(found.values())


@st.composite
def bbox_tables(draw, names: list[str]):
    if draw(st.integers(0, 15)) == 0:
        return []
    table = [draw(st.sampled_from([BBOX_HEADER, BBOX_HEADER[:6], ["whatever"]]))]
    noisy = draw(st.booleans())
    for _ in range(draw(st.integers(0, 6))):
        record = [draw(id_cells(names, noisy)), draw(st.sampled_from(FINDINGS)),
                  *(draw(mixed(noisy, NUMBERS, ODD_NUMBERS)) for _ in range(4))]
        record += draw(st.sampled_from([["", "", ""], [], ["x"]]))
        if noisy and draw(st.integers(0, 9)) == 0:
            record = record[: draw(st.integers(0, 5))]
        table.append(record)
    return table


def nih_entry_cell(names: list[str]):
    findings = st.lists(st.sampled_from(FINDINGS + ["No Finding", "Effusion"]), min_size=1, max_size=3).map("|".join)

    def cell(column: str, kind: str, noisy: bool):
        return id_cells(names, noisy) if column == "Image Index" else findings if column == "Finding Labels" else TEXT

    return cell


def nih_model(root: Path, n: Nih, corrupt: list[bool]) -> Model:
    m = Model()
    bbox_csv, entry_csv = root / "BBox_List_2017.csv", root / "Data_Entry_2017.csv"
    m.fatal += table_problems(bbox_csv, n.bbox, corrupt[0]) + table_problems(entry_csv, n.entry, corrupt[1])
    if not n.bbox or corrupt[0]:
        return m
    rows = []
    for k, fields in data_rows(n.bbox):
        if len(fields) < 6:
            m.problems.append(at(bbox_csv, k))
        else:
            rows.append((k, fields))
    spelling: dict[str, str] = {}
    for _, fields in rows:
        spelling.setdefault(canonical(fields[1]), fields[1])
    if n.finding is None and len(spelling) != 1 or n.finding is not None and canonical(n.finding) not in spelling:
        m.fatal.append(USAGE)
        return m
    target = canonical(n.finding) if n.finding is not None else next(iter(spelling))
    files: dict[str, list[Path]] = {}
    for folder, name, _ in n.images:
        files.setdefault(name, []).append(root / folder / name)
    sizes = {root / folder / name: size for folder, name, size in n.images}

    def sid(image: str) -> str:  # the documented id: the file name without .png
        return image[: -len(".png")] if image.lower().endswith(".png") else image

    boxes: dict[str, list[tuple]] = {}
    found: dict[str, set[str]] = {}
    first_row: dict[str, int] = {}
    for k, fields in rows:
        image = fields[0]
        found.setdefault(image, set()).add(canonical(fields[1]))
        first_row.setdefault(image, k)
        if canonical(fields[1]) != target:
            continue
        x, y, w, h = (number(v) for v in fields[2:6])
        if None in (x, y, w, h) or w <= 0 or h <= 0 or x < 0 or y < 0:
            m.problems.append(at(bbox_csv, k, sid(image), Path(image).stem))
        else:
            boxes.setdefault(image, []).append((corners(x, y, w, h), k))
    labels: dict[str, tuple[int, int]] = {}
    if n.entry is not None:
        col = columns(n.entry, ("Image Index", "Finding Labels")) if n.entry and not corrupt[1] else None
        if col is None:
            m.fatal.append(at(entry_csv))
            return m
        for k, fields in data_rows(n.entry):
            image = field_of(fields, col["Image Index"])
            label = int(target in {canonical(f) for f in field_of(fields, col["Finding Labels"]).split("|")})
            if labels.get(image, (label,))[0] != label:
                m.problems.append(at(entry_csv, k, sid(image), Path(image).stem))
            labels.setdefault(image, (label, k))
        listed_in = entry_csv
    else:
        labels = {image: (int(target in f), first_row[image]) for image, f in found.items()}
        listed_in = bbox_csv
    ids: dict[str, int] = {}
    for image, (label, k) in labels.items():
        if sid(image) in ids:  # two images, one id
            m.problems.append(at(listed_in, k, sid(image)))
        ids[sid(image)] = k
        if len(files.get(image, ())) != 1:  # missing, or two files of that name: which one?
            also = tuple((str(p), None) for p in files.get(image, ()))
            m.problems.append(at(listed_in, None, sid(image), Path(image).stem, also=also, lazy=True))
            continue
        h, w = sizes[files[image][0]]
        for box, kb in boxes.get(image, ()):
            if box[0] >= w or box[1] >= h:  # seen only with the image
                m.problems.append(at(bbox_csv, kb, sid(image), lazy=True))
        m.samples[sid(image)] = Truth(label, tuple(b for b, _ in boxes.get(image, ())) or None, None,
                                      {"finding": spelling[target]})
    return m


def check_nih(n: Nih, skip_bad: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        for folder, name, size in n.images:
            png(root / folder / name, pixels(size))
        corrupt = [write_table(root / "BBox_List_2017.csv", n.bbox, n.bbox_style),
                   write_table(root / "Data_Entry_2017.csv", n.entry, n.entry_style)]
        model = nih_model(root, n, corrupt)
        check_load(lambda: load_dataset("nih", str(root), finding=n.finding, skip_bad=skip_bad), model,
                   skip_bad=skip_bad)


@st.composite
def nih_cases(draw) -> Nih:
    images = draw(nih_images())
    names = [name for _, name, _ in images]
    bbox = draw(bbox_tables(names))
    found = sorted({row[1] for row in bbox[1:] if len(row) > 1})
    finding = draw(st.sampled_from(found * 3 + [None, "nodule", "Infiltration", "Atelectasis"]))
    return Nih(images, bbox, draw(st.none() | tables(("Image Index", "Finding Labels"), (), nih_entry_cell(names))),
               finding, draw(STYLES), draw(STYLES))


# == SIIM: train-rle.csv / stage_2_train.csv with train/<ImageId>.png ============================================
@dataclass
class Siim:
    images: dict[str, tuple[int, int]]  # train/<ImageId>.png written: ImageId -> (height, width)
    csv_name: str
    table: list[list[str]]
    style: Style = Style()


@st.composite
def masks(draw, size=None):
    size = size or draw(SIZES)
    return random_mask(size, draw(st.integers(0, 3)))


@st.composite
def rle_strings(draw, size=None, damage=True) -> str:
    """An RLE of a random mask in either form, sometimes damaged: a value replaced, dropped or added."""
    tokens = encode(draw(masks(size)), draw(st.sampled_from(["relative", "absolute"]))).split()
    for _ in range(draw(st.integers(0, 2)) if damage else 0):
        what = draw(st.sampled_from(["replace", "drop", "add"]))
        spot = draw(st.integers(0, len(tokens)))
        odd = draw(st.sampled_from(["0", "-1", "-5", "1", "2", "99999999999999999999", "1_0", "\u0663", "x",
                                    "1.5", "+3", "64", "1048577"]))
        if what == "replace" and spot < len(tokens):
            tokens[spot] = odd
        elif what == "drop" and spot < len(tokens):
            del tokens[spot]
        else:
            tokens.insert(spot, odd)
    return draw(st.sampled_from([" ", "  ", "\t", " \n "])).join(tokens)


def siim_cell(ids: list[str]):
    rle = rle_strings(damage=False) | st.sampled_from(["-1", "", " -1 "])
    odd_rle = rle_strings() | st.sampled_from(["1 2 3", "abc", "0 0"])

    def cell(column: str, kind: str, noisy: bool):
        if column == "ImageId":
            return id_cells(ids, noisy)
        return mixed(noisy, rle, odd_rle) if column == "EncodedPixels" else TEXT

    return cell


def siim_model(root: Path, s: Siim, corrupt: bool) -> Model:
    m = Model()
    path, train = root / s.csv_name, root / "train"
    m.fatal += table_problems(path, s.table, corrupt)
    if not s.table or corrupt:
        return m
    col = columns(s.table, ("ImageId", "EncodedPixels"))
    if col is None:
        m.fatal.append(at(path))
        return m
    rows: dict[str, list[tuple[int, str]]] = {}
    bad: set[str] = set()
    for k, fields in data_rows(s.table):
        image, rle = field_of(fields, col["ImageId"]), field_of(fields, col["EncodedPixels"])
        if not image:
            m.problems.append(at(path, k))
        elif not any(rle_runs(rle, SIIM_PIXELS, form) is not None for form in ("relative", "absolute")):
            m.problems.append(at(path, k, image))  # malformed, or valid in neither form
            bad.add(image)
        else:
            rows.setdefault(image, []).append((k, rle))
    # documented: rows valid in one form only are evidence for it; none: relative; both: refused
    only: dict[str, list[int]] = {}
    for image, rs in rows.items():
        for k, rle in rs:
            forms = [f for f in ("relative", "absolute") if rle_runs(rle, SIIM_PIXELS, f) is not None]
            if len(forms) == 1 and image not in bad:
                only.setdefault(forms[0], []).append(k)
    if len(only) == 2:
        m.fatal.append(Problem(tuple((str(path), k) for ks in only.values() for k in ks)))
        return m
    form = next(iter(only), "relative")
    for image, rs in rows.items():
        if image in bad:
            continue
        png_path = inside(train, f"{image}.png")
        if png_path is None:
            m.problems.append(Problem(tuple((str(path), k) for k, _ in rs), frozenset({image})))
            continue
        if png_path not in {train / f"{i}.png" for i in s.images}:
            m.problems.append(at(path, None, image, also=((str(png_path), None),), lazy=True))
            continue
        size = s.images[png_path.name[: -len(".png")]]
        mask = np.zeros(size, bool)
        for k, rle in rs:
            runs = rle_runs(rle, size[0] * size[1], form)
            if runs is None:  # seen only with the image
                m.problems.append(at(path, k, image, lazy=True))
            else:
                paint(mask, runs)
        m.samples[image] = Truth(int(any(rle_runs(rle, SIIM_PIXELS, form) for _, rle in rs)), None, mask)
    return m


def check_siim(s: Siim, skip_bad: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        (root / "train").mkdir()
        for image, size in s.images.items():
            png(root / "train" / f"{image}.png", pixels(size))
        corrupt = write_table(root / s.csv_name, s.table, s.style)
        model = siim_model(root, s, corrupt)
        check_load(lambda: load_dataset("siim", str(root), skip_bad=skip_bad), model, skip_bad=skip_bad)


@st.composite
def siim_cases(draw) -> Siim:
    images = draw(st.dictionaries(ID, SIZES, min_size=1, max_size=3))
    csv_name = draw(st.sampled_from(["train-rle.csv", "stage_2_train.csv"]))
    return Siim(images, csv_name, draw(tables(("ImageId", "EncodedPixels"), (), siim_cell(sorted(images)))),
                draw(STYLES))


# == run-length strings on their own ============================================================================
@dataclass
class Rle:
    rle: str
    size: tuple[int, int]
    form: str = "relative"


def check_rle(case: Rle) -> None:
    """decode() gives the model's mask, or raises a one-line RLEError when the string is no valid mask."""
    runs = rle_runs(case.rle, case.size[0] * case.size[1], case.form)
    try:
        got = decode(case.rle, case.size, case.form)
    except RLEError as exc:
        assert_one_line(str(exc), "RLEError")
        assert runs is None, f"valid {case.form} {case.rle!r} refused: {exc}"
        return
    assert runs is not None, f"{case.rle!r} is no valid {case.form} RLE of a {case.size} mask, yet decoded"
    expected = np.zeros(case.size, bool)
    paint(expected, runs)
    assert got.shape == case.size and np.array_equal(got, expected)


@st.composite
def rle_cases(draw) -> Rle:
    size = draw(SIZES)
    return Rle(draw(rle_strings(draw(st.sampled_from([size, size[::-1], (3, 3)])))), size,
               draw(st.sampled_from(["relative", "absolute"])))


# == split files: QTIM ",Image_ID,Split" or "image,split" ========================================================
@dataclass
class Splits:
    images: list[Img]  # a folder dataset (no labels.csv) the split file selects from
    table: list[list[str]]
    split: str
    style: Style = Style()


def without_extension(image: str) -> str:
    """A split file's image id: the name with an image extension dropped (directories kept)."""
    base, dot, ext = image.rpartition(".")
    return base if dot and base and not base.endswith("/") and f".{ext.lower()}" in IMAGE_EXTS else image


def split_model(path: Path, table: list[list[str]], corrupt: bool) -> tuple[Model, dict[str, str]]:
    """(problems of the split file, the {image id: split} it says)."""
    m, mapping = Model(), {}
    m.fatal += table_problems(path, table, corrupt)
    if not table or corrupt:
        return m, mapping
    header = cells(table[0])
    image_col = next((c for c in ("Image_ID", "image", "ImageId") if c in header), None)
    split_col = next((c for c in ("Split", "split") if c in header), None)
    col = columns(table, (image_col, split_col)) if image_col and split_col else None
    if col is None:
        m.fatal.append(at(path))
        return m, mapping
    for k, fields in data_rows(table):
        image, split = field_of(fields, col[image_col]), field_of(fields, col[split_col])
        key = without_extension(image)
        if not image or not split or mapping.get(key, split) != split:
            m.problems.append(at(path, k, key))
        else:
            mapping[key] = split
            if "/" in image or "\\" in image:  # a path: kept as it is, or refused
                m.maybe.append(at(path, k))
    return m, mapping


@st.composite
def split_tables(draw, known: list[str]):
    noisy = draw(st.booleans())
    if noisy and draw(st.integers(0, 7)) == 0:
        return []
    layouts = [["", "Image_ID", "Split"], ["image", "split"], ["Image_ID", "Split"], ["split", "image"],
               ["image", "Split", "note"], ["ImageId", "split"]]
    layout = draw(st.sampled_from(layouts + [["image"], ["Image", "split"], ["image", "split", "split"]] * noisy))
    head = [draw(st.sampled_from([n, f" {n}"])) for n in layout]
    table = [head]
    image = id_cells(known, noisy) | st.builds(str.__add__, st.sampled_from(known), st.sampled_from([".png", ".dcm"]))
    split_of: dict[str, str] = {}  # a clean table gives an image listed twice the same split
    for k in range(draw(st.integers(0, 6))):
        record = {n: draw({"": st.just(str(k)), "image": image, "Image_ID": image, "ImageId": image}.get(n, TEXT))
                  for n in layout if n not in ("split", "Split")}
        key = without_extension(next((record[n] for n in ("Image_ID", "image", "ImageId") if n in record), "").strip())
        split = draw(SPLIT_NAMES) if noisy else split_of.setdefault(key, draw(SPLIT_NAMES.filter(str.strip)))
        table.append([record.get(n, split) for n in layout])
    return table


def check_splits(s: Splits, skip_bad: bool = False) -> None:
    """read_split_file on its own, then load_dataset(split=, split_file=) on a folder dataset."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        build_folder(root, Folder(s.images))
        path = root / "splits.csv"
        model, mapping = split_model(path, s.table, write_table(path, s.table, s.style))
        # the parser on its own: exactly the file's mapping, or a one-line error naming the file (and row)
        try:
            got = read_split_file(path)
        except ERRORS as exc:
            assert_one_line(str(exc), "error message")
            assert any(names(str(exc), p) for p in model.fatal + model.problems + model.maybe), \
                f"{exc} names no problem"
        else:
            assert not model.fatal and not model.problems, f"read although {model.fatal + model.problems}"
            assert got == mapping, f"read {got}, the file says {mapping}"
        # and through load_dataset: the folder's images of that split
        stems = {img.stem for img in s.images}
        for stem in stems:
            imgs = [img for img in s.images if img.stem == stem]
            if len(imgs) > 1:
                model.problems.append(at(root / "images", None, stem))
            elif mapping.get(stem) == s.split:
                mask = random_mask(imgs[0].size, imgs[0].mask) if imgs[0].mask is not None else None
                model.samples[stem] = Truth(int(mask is not None and bool(mask.any())), None, mask, {"split": s.split})
        check_load(lambda: load_dataset("folder", str(root), split=s.split, split_file=str(path),
                                        skip_bad=skip_bad), model, skip_bad=skip_bad)


@st.composite
def split_cases(draw) -> Splits:
    images = draw(folder_images())
    table = draw(split_tables([i.name for i in images] + [i.stem for i in images]))
    return Splits(images, table, draw(st.sampled_from(["test", "train"])), draw(STYLES))


# == known bugs: the smallest inputs found that break the property, one per bug =================================
@dataclass
class Bug:
    test: str  # the property test whose parser it breaks
    name: str
    case: object
    reason: str
    skip_bad: bool | None = False  # None: the test takes no skip_bad


LABELS_CSV, BOXES_CSV = ["image", "label"], ["image", "x", "y", "width", "height"]
RSNA_CSV, RSNA_NEGATIVE = list(RSNA_COLUMNS), ["p", "", "", "", "", "0"]
ENTRY_CSV, NODULE_BOX = ["Image Index", "Finding Labels"], ["x.png", "Nodule", "1", "1", "2", "2"]
RLE_CSV, SPLIT_CSV = ["ImageId", "EncodedPixels"], ["image", "split"]
KNOWN_BUGS: list[Bug] = []

#: Bugs this fuzzing found and that were fixed: their smallest inputs stay explicit examples of their properties.
FIXED = [
    # folder: labels.csv
    Bug("test_folder_labels_csv", "labels-duplicate-column",
        Folder([Img("a.png")], labels=[["image", "label", "label"], ["a.png", "1", "0"]]),
        "a column named twice is read from its last copy, silently (tables.read_rows)"),
    Bug("test_folder_labels_csv", "labels-stray-quote",
        Folder([Img("a.png"), Img("b.png")], labels=[LABELS_CSV, ["a.png", "1"], ["b.png", "1"]],
               labels_style=Style(corrupt="stray_quote")),
        "an unbalanced quote makes the rest of the file one field; under skip_bad the swallowed rows vanish as "
        "one skipped row and their images get derived labels (csv.reader is not strict)", skip_bad=True),
    Bug("test_folder_labels_csv", "labels-other-extension",
        Folder([Img("a.png")], labels=[LABELS_CSV, ["a.jpg", "1"]]),
        "a row naming a.jpg labels images/a.png (the extension of a named file is not checked)"),
    Bug("test_folder_labels_csv", "labels-underscore-integer",
        Folder([Img("a.png")], labels=[LABELS_CSV, ["a.png", "1_0"]]),
        "label '1_0' is read as 10 (and '\u0661' as 1): int() takes underscores and non-ASCII digits"),
    Bug("test_folder_labels_csv", "header-multiline-message",
        Folder([Img("a.png")], labels=[["image", "x\ny"]]),
        "'missing column(s)' quotes the header raw (tables.read_rows): a line break in a name splits the message"),
    Bug("test_folder_labels_csv", "folder-shared-id-message",
        Folder([Img("a\x1d.png"), Img("a\x1d.bmp")]),
        "'... share the id' quotes the file names raw: a control character in one splits the message"),
    # folder: boxes.csv
    # RSNA
    Bug("test_rsna_labels_csv", "rsna-nul-in-id",
        Rsna({"p": (8, 8)}, [RSNA_CSV, RSNA_NEGATIVE, ["q\x00", "", "", "", "", "0"]]),
        "a NUL in a patientId raises ValueError (embedded null byte) from Path.resolve in tables.inside"),
    Bug("test_rsna_labels_csv", "rsna-multiline-message",
        Rsna({"p": (8, 8)}, [RSNA_CSV, ["a\nb", "", "", "", "", "0"], ["a\nb", "1", "1", "2", "2", "1"]]),
        "'patient {pid} has rows with Target 0 and 1' quotes the id raw: a line break in it splits the message"),
    Bug("test_rsna_labels_csv", "rsna-empty-id",
        Rsna({"p": (8, 8)}, [RSNA_CSV, RSNA_NEGATIVE, ["", "", "", "", "", "0"]]),
        "an empty patientId is taken for a patient '' whose error, at load, names stage_2_train_images/.dcm, "
        "not the row"),
    Bug("test_rsna_labels_csv", "rsna-box-names-first-row",
        Rsna({"p": (8, 8)}, [RSNA_CSV, ["p", "1", "1", "2", "2", "1"], ["p", "9", "1", "2", "2", "1"]]),
        "a box outside the image on a patient's second row is reported as the patient's first row (Entry.where)"),
    Bug("test_rsna_labels_csv", "rsna-class-conflict",
        Rsna({"p": (8, 8)}, [RSNA_CSV, RSNA_NEGATIVE],
             [["patientId", "class"], ["p", "Normal"], ["p", "Lung Opacity"]]),
        "a patient given two classes in stage_2_detailed_class_info.csv silently gets the last"),
    # NIH
    Bug("test_nih_tables", "nih-same-name-in-two-folders",
        Nih([("images_001/images", "x.png", (4, 4)), ("images_002/images", "x.png", (8, 8))],
            [BBOX_HEADER, NODULE_BOX]),
        "two files x.png in different folders: one is taken silently, in os.walk order"),
    Bug("test_nih_tables", "nih-conflicting-entries",
        Nih([("images", "x.png", (8, 8))], [BBOX_HEADER, NODULE_BOX],
            [ENTRY_CSV, ["x.png", "Nodule"], ["x.png", "No Finding"]]),
        "an image listed twice in Data_Entry_2017.csv with different findings silently gets the last row's"),
    Bug("test_nih_tables", "nih-path-in-image-index",
        Nih([("images", "x.png", (8, 8))], [BBOX_HEADER, NODULE_BOX],
            [ENTRY_CSV, ["x.png", "Nodule"], ["sub/x.png", "Mass"]]),
        "Image Index 'sub/x.png' makes a second sample with the id 'x' (Path.stem drops the directory)"),
    Bug("test_nih_tables", "nih-multiline-message",
        Nih([("images", "x.png", (8, 8))], [BBOX_HEADER, NODULE_BOX],
            [ENTRY_CSV, ["x.png", "Nodule"], ["y\x0c.png", "Mass"]]),
        "'image {image} is listed but not found' quotes the name raw: a control character splits the message"),
    Bug("test_nih_tables", "nih-box-outside-names-no-row",
        Nih([("images", "x.png", (4, 4))], [BBOX_HEADER, NODULE_BOX, ["x.png", "Nodule", "9", "1", "2", "2"]],
            [ENTRY_CSV, ["x.png", "Nodule"]]),
        "a box outside its image (BBox_List_2017.csv row 3) is reported against Data_Entry_2017.csv, no row"),
    # SIIM
    Bug("test_siim_rle_csv", "siim-nul-in-id",
        Siim({"a": (4, 4)}, "train-rle.csv", [RLE_CSV, ["a", "-1"], ["b\x00", "-1"]]),
        "a NUL in an ImageId raises ValueError (embedded null byte) from Path.resolve in tables.inside"),
    Bug("test_siim_rle_csv", "siim-rle-names-wrong-row",
        Siim({"a": (3, 3)}, "train-rle.csv", [RLE_CSV, ["a", "1 2"], ["a", "2 20"]]),
        "a run beyond the image on row 3 is reported as 'row 2: row 1' (the image's first row, then a 0-based "
        "index among its rows; IndexedDataset.load_truth)"),
    Bug("test_siim_rle_csv", "siim-second-bad-row-unreported",
        Siim({"0": (3, 3), "1": (3, 3)}, "train-rle.csv", [RLE_CSV, ["0", "1 2 3"], ["1", "-1"], ["0", "-1 0"]]),
        "under skip_bad, an image's second bad row (valid in neither form) was never reported: the image's rows were "
        "dropped after its first bad one (deep run)", skip_bad=True),
    Bug("test_siim_rle_csv", "siim-multiline-message",
        Siim({"a": (3, 3)}, "train-rle.csv", [RLE_CSV, ["a\rb", "-1"]]),
        "a missing image's error quotes its path raw (imageio): a carriage return in the id splits the message"),
    # run-length strings
    Bug("test_rle_decode", "rle-underscore-number", Rle("1_0 2", (4, 4)),
        "rle.parse reads '1_0' as 10 (int() takes underscores)", skip_bad=None),
    Bug("test_rle_decode", "rle-non-ascii-digit", Rle("\u0663 2", (4, 4)),
        "rle.parse reads the Arabic-Indic digit '\u0663' as 3", skip_bad=None),
    # split files
    Bug("test_split_file", "split-drops-directory",
        Splits([Img("a.png")], [SPLIT_CSV, ["sub/a.png", "test"]], "test"),
        "'sub/a.png' gives image 'a' its split (tables.stem keeps only the file name)"),
    Bug("test_split_file", "split-conflict",
        Splits([Img("a.png")], [SPLIT_CSV, ["a.png", "train"], ["a.png", "test"]], "test"),
        "an image listed twice with different splits silently gets the last"),
    Bug("test_split_file", "split-duplicate-column",
        Splits([Img("a.png")], [["image", "split", "split"], ["a.png", "train", "test"]], "test"),
        "a column named twice is read from its last copy, silently (tables.read_rows)"),
    Bug("test_split_file", "split-header-only",
        Splits([Img("a.png")], [["Image", "split"]], "test"),
        "a split file without an Image_ID or image column is refused only when it has a data row"),
]


def known_bugs(test: str):
    """Put ``test``'s known and fixed bugs in front as explicit examples (they fail first: fast, no shrinking,
    the same in every run) and mark the test xfail while a known one is listed.  A fixed bug's case in
    test_known_bug then passes (strict xfail fails): move its entry from KNOWN_BUGS to FIXED."""
    bugs = [b for b in KNOWN_BUGS if b.test == test]

    def decorate(fn):
        for b in bugs + [b for b in FIXED if b.test == test]:
            fn = example(case=b.case, **({} if b.skip_bad is None else {"skip_bad": b.skip_bad}))(fn)
        if bugs:
            fn = pytest.mark.xfail(strict=True, reason="BUG: " + ", ".join(b.name for b in bugs))(fn)
        return fn

    return decorate


# == the properties ===============================================================================================
@known_bugs("test_folder_labels_csv")
@FUZZ
@given(case=folder_label_cases(), skip_bad=st.booleans())
def test_folder_labels_csv(case, skip_bad):
    check_folder(case, skip_bad)


@known_bugs("test_folder_boxes_csv")
@FUZZ
@given(case=folder_box_cases(), skip_bad=st.booleans())
def test_folder_boxes_csv(case, skip_bad):
    check_folder(case, skip_bad)


@known_bugs("test_rsna_labels_csv")
@FUZZ
@given(case=rsna_cases(), skip_bad=st.booleans())
def test_rsna_labels_csv(case, skip_bad):
    check_rsna(case, skip_bad)


@known_bugs("test_nih_tables")
@FUZZ
@given(case=nih_cases(), skip_bad=st.booleans())
def test_nih_tables(case, skip_bad):
    check_nih(case, skip_bad)


@known_bugs("test_siim_rle_csv")
@FUZZ
@given(case=siim_cases(), skip_bad=st.booleans())
def test_siim_rle_csv(case, skip_bad):
    check_siim(case, skip_bad)


@known_bugs("test_rle_decode")
@FUZZ
@given(case=rle_cases())
def test_rle_decode(case):
    check_rle(case)


@known_bugs("test_split_file")
@FUZZ
@given(case=split_cases(), skip_bad=st.booleans())
def test_split_file(case, skip_bad):
    check_splits(case, skip_bad)


CHECKS = {"test_folder_labels_csv": check_folder, "test_folder_boxes_csv": check_folder,
          "test_rsna_labels_csv": check_rsna, "test_nih_tables": check_nih, "test_siim_rle_csv": check_siim,
          "test_rle_decode": lambda case, skip_bad: check_rle(case), "test_split_file": check_splits}


@pytest.mark.parametrize("bug", [
    pytest.param(b, id=b.name, marks=pytest.mark.xfail(strict=True, reason=f"BUG: {b.reason}")) for b in KNOWN_BUGS]
    + [pytest.param(b, id=b.name) for b in FIXED])
def test_known_bug(bug):
    """Each known bug's smallest input, so that a fix shows (strict xfail: move the entry to FIXED once it
    passes), and each fixed one's, so that it stays fixed."""
    CHECKS[bug.test](bug.case, bug.skip_bad)
