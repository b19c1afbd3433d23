"""Run-length encoded lesion masks, as in the SIIM-ACR Pneumothorax data.

A mask is an (H, W) bool array whose pixels are numbered in column-major order: pixel ``p`` is at
``row = p % H, col = p // H`` (decode into a flat array of W*H pixels, reshape to (W, H), transpose).
A string is a whitespace-separated list of (start, length) pairs, each pair a run of ``length`` lesion
pixels, in one of two forms:

* ``relative`` (SIIM ``train-rle.csv`` and the competition's ``mask_functions.py``): the first start is
  a 0-based pixel index, every later start is the gap counted from the end of the previous run.
* ``absolute`` (Kaggle's standard RLE, SIIM ``stage_2_train.csv``): every start is a 1-based pixel
  number; starts strictly increase and runs do not overlap.

``-1`` or an empty string is an empty mask. Pixel numbers in error messages are 1-based.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

import numpy as np

FORMS = ("relative", "absolute")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class RLEError(ValueError):
    """A malformed run-length string; the message is one line and says what is wrong."""


def parse(rle: str) -> np.ndarray:
    """The (start, length) pairs of ``rle`` as an int64 array of shape (n_runs, 2); empty for '-1' or ''."""
    if not isinstance(rle, str):
        raise RLEError(f"expected a run-length string, got {type(rle).__name__} {rle!r}")
    tokens = rle.split()
    if tokens in ([], ["-1"]):
        return np.zeros((0, 2), dtype=np.int64)
    if len(tokens) % 2:
        raise RLEError(f"odd number of values ({len(tokens)}): expected (start, length) pairs")
    # int() alone would also read "1_0" as 10 and non-ASCII digits ("\u0663" as 3): a typo must not become a pixel
    bad = next((t for t in tokens if not _INTEGER.fullmatch(t)), None)
    if bad is not None:
        raise RLEError(f'value "{bad[:20]}" is not an integer')
    try:
        return np.array([int(t) for t in tokens], dtype=np.int64).reshape(-1, 2)
    except OverflowError:
        pass
    for token in tokens:  # slow path, only to say which value is wrong
        try:
            np.int64(int(token))
        except OverflowError:
            raise RLEError(f"value {token[:20]} is too large for a pixel number") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")


def _runs(runs: np.ndarray, n_pixels: int, form: str, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """0-based begins and lengths of validated ``runs``; RLEError if they are not valid under ``form``."""
    n = len(runs)
    starts, lengths = runs[:, 0], runs[:, 1]
    what = what or f"the {n_pixels} pixels of the mask"

    def fail(i: int, message: str) -> RLEError:
        return RLEError(f"run {i + 1} of {n}: {message}")

    if (bad := np.flatnonzero(lengths <= 0)).size:
        i = bad[0]
        raise fail(i, "negative length" if lengths[i] < 0 else "zero length")
    if (bad := np.flatnonzero(starts < (1 if form == "absolute" else 0))).size:
        i = bad[0]
        kind = "start" if form == "absolute" or i == 0 else "start (gap after the previous run)"
        raise fail(i, f"{kind} {starts[i]} is below {1 if form == 'absolute' else 0} in the {form} form")
    if (big := np.flatnonzero((starts > n_pixels) | (lengths > n_pixels))).size:  # also keeps cumsum small
        raise fail(big[0], f"goes beyond {what}")
    if form == "relative":
        ends = np.cumsum(starts + lengths)
        begins = ends - lengths
    else:
        begins = starts - 1
        ends = begins + lengths
        if (bad := np.flatnonzero(begins[1:] < ends[:-1])).size:
            i = bad[0] + 1
            if starts[i] <= starts[i - 1]:
                raise fail(i, f"start {starts[i]} is not after the previous start {starts[i - 1]}")
            raise fail(i, f"starts at pixel {starts[i]}, inside the previous run, which ends at pixel {ends[i - 1]}")
    if (bad := np.flatnonzero(ends > n_pixels)).size:
        raise fail(bad[0], f"ends at pixel {ends[bad[0]]}, beyond {what}")
    return begins, lengths


def decode(rle: str, shape: tuple[int, int], form: str = "relative") -> np.ndarray:
    """The (H, W) bool mask that ``rle`` encodes in ``form`` (a Fortran-ordered array); RLEError if malformed."""
    _check_form(form)
    h, w = (int(s) for s in shape)
    begins, lengths = _runs(parse(rle), h * w, form, f"the {h * w} pixels of a {h}x{w} mask")
    flat = np.zeros(h * w, dtype=bool)
    if lengths.size:
        # pixel k of the concatenated runs lies at k + (begin of its run - pixels in the runs before it)
        offsets = begins - (np.cumsum(lengths) - lengths)
        flat[np.arange(lengths.sum()) + np.repeat(offsets, lengths)] = True
    return flat.reshape(w, h).T


def encode(mask: np.ndarray, form: str = "relative") -> str:
    """The run-length string of the (H, W) ``mask`` in ``form``, with maximal runs; '-1' for an empty mask."""
    _check_form(form)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    flat = mask.astype(bool).ravel(order="F").view(np.int8)
    edges = np.diff(np.concatenate(([0], flat, [0])))
    begins, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not begins.size:
        return "-1"
    starts = begins + 1 if form == "absolute" else begins - np.concatenate(([0], ends[:-1]))
    return " ".join(map(str, np.column_stack([starts, ends - begins]).ravel().tolist()))


def union(rles: Iterable[str], shape: tuple[int, int], form: str = "relative") -> np.ndarray:
    """The OR of the masks of several rows (SIIM has one row per lesion); RLEError names the bad row (0-based)."""
    out = np.zeros(tuple(int(s) for s in shape), dtype=bool)
    for i, rle in enumerate(rles):
        try:
            out |= decode(rle, shape, form)
        except RLEError as e:
            raise RLEError(f"row {i}: {e}") from None
    return out


def _form_errors(runs: np.ndarray, n_pixels: int) -> dict[str, str]:
    """For each form under which ``runs`` are invalid, why."""
    errors = {}
    for form in FORMS:
        try:
            _runs(runs, n_pixels, form)
        except RLEError as e:
            errors[form] = str(e)
    return errors


def consistent_forms(rle: str, n_pixels: int) -> set[str]:
    """The forms under which ``rle`` is a valid mask of ``n_pixels`` pixels (both for empty or one-run strings)."""
    try:
        return forms_of(rle, n_pixels)
    except RLEError:
        return set()


def forms_of(rle: str, n_pixels: int) -> set[str]:
    """The forms under which ``rle`` is a valid mask of ``n_pixels`` pixels; RLEError (saying why under each)
    when there is none."""
    errors = _form_errors(parse(rle), n_pixels)
    if len(errors) == 2:
        raise RLEError(f"invalid as relative ({errors['relative']}) and as absolute ({errors['absolute']})")
    return set(FORMS) - set(errors)


def detect_form(rles: Iterable[str], n_pixels: int, row_numbers: Iterable[int] | None = None) -> str:
    """The form of a whole CSV column of run-length strings of masks of ``n_pixels`` pixels.

    Rows valid under only one form are evidence for it; rows disagreeing, or a row valid under neither,
    raise RLEError naming the row (its 0-based position, or its number from ``row_numbers``). With no
    evidence (no rows, or only empty and one-run rows) the answer is "relative", the form of the
    published SIIM ``train-rle.csv``.
    """
    only: dict[str, int] = {}
    for i, rle in zip(row_numbers if row_numbers is not None else itertools.count(), rles):
        try:
            forms = forms_of(rle, n_pixels)
        except RLEError as e:
            raise RLEError(f"row {i}: {e}") from None
        if len(forms) == 1:
            only.setdefault(next(iter(forms)), i)
    if len(only) == 2:
        raise RLEError(
            f"rows disagree: row {only['relative']} is only valid as relative, row {only['absolute']} only as absolute"
        )
    return next(iter(only), "relative")
