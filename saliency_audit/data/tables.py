"""CSV tables of the published datasets, read row by row with the row number for error messages.

The standard library's ``csv`` module does the parsing; this module only adds
what every adapter needs: header validation (names stripped, since SIIM's
``train-rle.csv`` has ``ImageId, EncodedPixels`` with a leading space), row
numbers as a spreadsheet shows them (header = row 1), and a guard against ids
that would escape the data root.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Iterator

from ..common.errors import AuditInputError, one_line


def read_rows(path: Path, required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
              positional: tuple[str, ...] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, {column: stripped value}) for each data row of ``path``.

    The header is read and checked when this is called, not at the first data row, so a file with a bad
    header and no rows is refused too: a ``required`` column missing, or a ``required`` or ``optional`` one
    named twice (which copy would be meant?).  ``positional`` names the first fields by position and
    ignores the header's names (NIH's ``BBox_List_2017.csv`` header is ``Image Index,Finding Label,Bbox
    [x,y,w,h],,,``).  The ``csv`` reader runs in strict mode: an unbalanced quote, which would otherwise
    swallow the rest of the file into one field, is an error naming its row.
    """
    rows = _rows(Path(path), required, optional, positional)
    next(rows)  # the header, checked now
    return rows


def columns_of(path: Path) -> list[str]:
    """The stripped column names of ``path``'s header (for tables whose columns have alternative names)."""
    rows = _rows(Path(path), (), (), None)
    try:
        return next(rows)
    finally:
        rows.close()  # closes the file now, not when the generator is collected


def _rows(path: Path, required, optional, positional):
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot open ({exc.strerror})") from None
    with fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise AuditInputError(f"{path}: empty file, expected a header row") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AuditInputError(f"{path}: row 1: {one_line(exc)}") from None
        names = list(positional) if positional else header
        missing = [c for c in required if c not in names]
        if missing:
            raise AuditInputError(f"{path}: missing column(s) {', '.join(missing)} (header: {quoted(header)})")
        doubled = [c for c in (*required, *optional) if names.count(c) > 1]
        if doubled:
            raise AuditInputError(f"{path}: row 1: column(s) {', '.join(doubled)} named more than once "
                                  f"(header: {quoted(header)})")
        yield header
        row_no = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise AuditInputError(f"{path}: row {row_no + 1}: {one_line(exc)}") from None
            row_no += 1
            if not any(cell.strip() for cell in row):
                continue
            if positional and len(row) < len(positional):
                raise AuditInputError(f"{path}: row {row_no}: expected {len(positional)} fields, found {len(row)}")
            yield row_no, {n: (row[k].strip() if k < len(row) else "") for k, n in enumerate(names) if n}


def quoted(values) -> str:
    """Table text in a message: each value as a Python literal, so a line break or control character in a
    file can never split the one-line message (or hide what follows it)."""
    return ", ".join(repr(v) for v in values)


def inside(root: Path, relative: str, where: str) -> Path:
    """``root / relative``, refusing an id that escapes the data root (``../``, absolute paths) or that no
    file system can name (a NUL character)."""
    if "\x00" in relative:
        raise AuditInputError(f"{where}: id {relative!r} holds a NUL character, which no file name can")
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise AuditInputError(f"{where}: id {relative!r} escapes the data root {root}")
    return path


def stem(name: str) -> str:
    """An image id without its file extension (ids in tables come both ways)."""
    from .imageio import IMAGE_SUFFIXES

    p = Path(name)
    return p.stem if p.suffix.lower() in IMAGE_SUFFIXES else name


def file_name(value: str, folder: str, where: str) -> str:
    """``value``, checked to be a bare file name in ``folder`` (an image a table names), never a path:
    ``../x.png`` or ``sub/x.png`` would otherwise lose their directory part and silently name another image."""
    if not value or value in (".", "..") or any(c in value for c in "/\\\x00"):
        raise AuditInputError(f"{where}: image {value!r} is not a file name in {folder}/ (no directory part allowed)")
    return value


#: A plain decimal number.  Python's float() also reads "nan", "inf", "1_0" and non-ASCII digits, which
#: would turn a typo into a silent value.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


#: A plain decimal integer.  Python's int() also reads "1_0" and non-ASCII digits ("\u0661" is 1).
_INTEGER = re.compile(r"[+-]?[0-9]+")


def to_int(value: str, where: str, what: str) -> int:
    if not _INTEGER.fullmatch(value):
        raise AuditInputError(f"{where}: {what} {value!r} is not an integer")
    return int(value)


def to_number(value: str, where: str, what: str) -> float:
    number = float(value) if _NUMBER.fullmatch(value) else math.nan
    if not math.isfinite(number):
        raise AuditInputError(f"{where}: {what} {value!r} is not a finite number")
    return number
