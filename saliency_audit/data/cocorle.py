"""COCO run-length encoded masks (the ``{"size": [h, w], "counts": "..."}`` of pycocotools), decoded.

pycocotools is a compiled dependency (a C extension, often built from source) for a few dozen lines of
arithmetic, so the decoder is written here from the published algorithm (the COCO API's ``maskApi.c``,
``rleFrString``), and tested against masks encoded from the same specification:

* A mask of ``h`` rows and ``w`` columns is read in column-major order (down the first column, then the
  next) as alternating runs of 0s and 1s, starting with a run of 0s (which may be empty).  The run lengths
  (``counts``) sum to ``h * w``.
* The compressed form writes each count as a signed integer in 5-bit groups, low group first, one
  character per group: the character is ``48 + group``, plus 32 when more groups follow; the last group's
  bit 16 is its sign.  From the fourth count on (index > 2) the value written is the difference from the
  count two before (the previous run of the same value), which keeps the numbers small.
* The uncompressed form is the list of counts itself.
"""
from __future__ import annotations

import numpy as np

MAX_GROUPS = 13  # 65 bits: more 5-bit groups than any count of a real mask needs


class CocoRLEError(ValueError):
    """A malformed COCO RLE; the message is one line and says what is wrong."""


def _counts_of(counts: str, limit: int | None = None) -> list[int]:
    """The run lengths a compressed ``counts`` string encodes (the first ``limit`` of them only, when given)."""
    out: list[int] = []
    p, n = 0, len(counts)
    while p < n and (limit is None or len(out) < limit):
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise CocoRLEError(f"counts end inside the value of run {len(out) + 1} (truncated string)")
            if k >= MAX_GROUPS:
                raise CocoRLEError(f"run {len(out) + 1} is written with more than {MAX_GROUPS} characters")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise CocoRLEError(f"character {counts[p]!r} at position {p + 1} is not a compressed RLE character "
                                   "('0' to 'o')")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x -= 1 << (5 * k)  # the sign: the last group's bit 16 extends to every higher bit
        if len(out) > 2:
            x += out[-2]
        if x < 0:
            raise CocoRLEError(f"run {len(out) + 1} has a negative length ({x})")
        out.append(x)
    return out


def counts(rle: str | list) -> list[int]:
    """The run lengths of a compressed (string) or uncompressed (list of integers) ``counts``."""
    if isinstance(rle, str):
        return _counts_of(rle)
    if isinstance(rle, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in rle):
        bad = next((i for i, v in enumerate(rle) if v < 0), None)
        if bad is not None:
            raise CocoRLEError(f"run {bad + 1} has a negative length ({rle[bad]})")
        return list(rle)
    raise CocoRLEError(f"counts must be a string or a list of integers, not {type(rle).__name__}")


def _check_shape(shape) -> tuple[int, int]:
    if (not isinstance(shape, (list, tuple)) or len(shape) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise CocoRLEError(f"size must be [height, width] of two positive integers, not {shape!r}")
    return int(shape[0]), int(shape[1])


def decode(rle: str | list, shape) -> np.ndarray:
    """The (h, w) bool mask that ``rle`` (compressed string or list of counts) encodes; CocoRLEError if
    malformed (the runs must cover the ``h * w`` pixels exactly)."""
    h, w = _check_shape(shape)
    runs = counts(rle)
    total = sum(runs)
    if total != h * w:
        raise CocoRLEError(f"runs cover {total} pixels, not the {h}x{w} = {h * w} of the mask")
    values = np.arange(len(runs)) % 2 == 1  # run 0 is 0s, run 1 is 1s ...
    flat = np.repeat(values, np.asarray(runs, dtype=np.int64))
    return flat.reshape(w, h).T  # column-major pixel order


def is_empty(rle: str | list, shape) -> bool:
    """Whether ``rle`` encodes an all-zero mask, reading only its first runs (no mask is built).

    An encoder writes an empty mask as one run of ``h * w`` zeros; any later run of 1s that is not empty
    makes the mask non-empty.  The full check of the runs is :func:`decode`'s.
    """
    h, w = _check_shape(shape)
    if isinstance(rle, str):
        first = _counts_of(rle, limit=2)
        if len(first) < 2:  # the whole string read: one run of 0s, which must cover the mask
            if sum(first) != h * w:
                raise CocoRLEError(f"runs cover {sum(first)} pixels, not the {h}x{w} = {h * w} of the mask")
            return True
        if first[1] > 0:
            return False
    return not decode(rle, (h, w)).any()  # an unusual encoding (an empty run of 1s): decide on the mask
