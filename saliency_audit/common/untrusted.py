"""Reading a JSON file that comes from elsewhere (another team, a vendor, a CI job) with explicit limits.

Every JSON file the audit or its commands read from outside the package -- evidence files (``report``,
``view``, ``merge``, ``diff``, ``validate``, ``--audit-baseline``), a maps folder's ``maps.json`` -- goes
through :func:`read_json`: at most ``max_bytes`` bytes, UTF-8, nesting at most ``max_depth`` deep, and no
``NaN``/``Infinity`` tokens (Python's json module accepts them by default, and a NaN that reaches the
evidence makes its writer fail: every later result of the run would be lost).  Whatever is wrong is one
:class:`~saliency_audit.common.errors.AuditInputError` line naming the file, never a traceback.  Hand-written
depth check: the standard library's parser has no depth limit and answers a deep file with RecursionError.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import AuditInputError

MAX_BYTES = 512 * 2**20  # an evidence file with a thumbnail per verdict is a few MB; 512 MB is far beyond it
MAX_DEPTH = 64  # the evidence schema nests about 10 deep


def depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (brackets inside strings not counted)."""
    deepest = level = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level -= 1
    return deepest


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a float (``1e999``) is refused, not read as infinity."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


def parse_json(text: str, what: str, max_depth: int = MAX_DEPTH):
    """``text`` parsed, or one AuditInputError line naming ``what`` (a file, an option)."""
    d = depth(text)
    if d > max_depth:
        raise AuditInputError(f"{what}: JSON nested {d} deep, more than the {max_depth} this reader accepts")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise AuditInputError(f"{what}: not valid JSON ({str(exc).splitlines()[0][:160]})") from None


def read_limited(path: str | Path, what: str | None = None, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of the file at ``path``, at most ``max_bytes`` of them, or one AuditInputError line."""
    path = Path(path)
    what = what or str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise AuditInputError(f"{what}: {size:,} bytes, more than the {max_bytes:,} this reader accepts")
        raw = path.read_bytes()
    except OSError as exc:
        raise AuditInputError(f"{what}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > max_bytes:  # grew since stat
        raise AuditInputError(f"{what}: more than the {max_bytes:,} bytes this reader accepts")
    return raw


def parse_bytes(raw: bytes, what: str, max_depth: int = MAX_DEPTH):
    """UTF-8 JSON ``raw`` parsed under the limits above (a caller that also hashes the bytes reads them once)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AuditInputError(f"{what}: not UTF-8 text") from None
    return parse_json(text, what, max_depth)


def read_json(path: str | Path, what: str | None = None, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    """The JSON file at ``path`` parsed under the limits above; ``what`` names it in errors (default: its path)."""
    what = what or str(path)
    return parse_bytes(read_limited(path, what, max_bytes=max_bytes), what, max_depth)
