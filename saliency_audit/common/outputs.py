"""The one guard between what a command reads and what it writes.

No command writes over a file it reads, or into a folder it reads from:

* an output **file** may not be one of the command's inputs (same resolved path, or the same file by
  :func:`os.path.samefile`: a symlink or hard link to it), nor lie inside an input folder;
* an output **folder** (one the command fills with files named from data: map ids, image ids) may not be an
  input folder or file, contain one, or lie inside one.  ``view MAPS -o MAPS/overlays`` is refused like
  ``view MAPS -o MAPS``: a folder of maps is read again later (``--maps MAPS``, ``view MAPS``) and should hold
  what ``maps`` wrote and nothing else.

Names made from data go through :func:`safe_name` and every path written through :func:`inside`, so an id
such as ``../../etc/x`` or ``/tmp/x`` can never put a file outside the output folder.

The commands call :func:`check_outputs` before they read or write anything heavy; a refusal is an
:class:`OutputClash`, a one-line usage error naming the output and the input (exit 2 from the CLI).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

from .errors import AuditUsageError


class OutputClash(AuditUsageError):
    """An output of a command is one of its inputs, or lies in / holds one of its input folders."""


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _same(a: Path, b: Path) -> bool:
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies under it (resolved: symlinks and ``..`` followed)."""
    p, f = _resolved(path), _resolved(folder)
    return p == f or f in p.parents


def check_outputs(command: str, inputs: Iterable[Path | None] = (), outputs: Iterable[Path | None] = (),
                  folders: Iterable[Path | None] = ()) -> None:
    """Refuse (:class:`OutputClash`) any of ``outputs`` (files) or ``folders`` (output folders) of ``command``
    that would write over, into or around one of ``inputs`` (files or folders the command reads).
    ``None`` entries are ignored (an option not given)."""
    ins = [Path(p) for p in inputs if p is not None]
    for out in (Path(p) for p in outputs if p is not None):
        for source in ins:
            if _same(out, source):
                raise OutputClash(f"{command}: output {out} is the input {source}; it would be overwritten: "
                                  "write it elsewhere")
            if source.is_dir() and _within(out, source):
                raise OutputClash(f"{command}: output {out} lies inside the input folder {source}: write it "
                                  "elsewhere")
    for folder in (Path(p) for p in folders if p is not None):
        for source in ins:
            if _same(folder, source) or _within(source, folder):
                raise OutputClash(f"{command}: output folder {folder} holds the input {source}: choose a folder "
                                  "outside it")
            if source.is_dir() and _within(folder, source):
                raise OutputClash(f"{command}: output folder {folder} lies inside the input folder {source}: "
                                  "choose a folder outside it")


def _unsafe_char(c: str) -> bool:
    from .printable import _ESCAPES

    return c in "/\\:" or ord(c) in _ESCAPES


def safe_name(name: str, suffix: str) -> str:
    """A file name for an id read from a file: the id itself (plus ``suffix``) when it is a plain name -- no
    path separator (``/``, ``\\``, ``:``), no control character, not starting with a dot, at most 150
    characters -- else the id with each such character replaced by ``_`` and a short hash of the whole id
    appended, so that no id names a path (``../x``, ``/tmp/x``) and two ids never share a file."""
    if name and not name.startswith(".") and len(name) <= 150 and not any(_unsafe_char(c) for c in name):
        return name + suffix
    cleaned = "".join("_" if _unsafe_char(c) else c for c in name).lstrip(".")[:100] or "_"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned}-{digest}{suffix}"


def inside(folder: Path, name: str) -> Path:
    """``folder / name``, checked to resolve inside ``folder`` (a bare name, no link out of it); else an
    :class:`OutputClash` naming both."""
    dest = Path(folder) / name
    if Path(name).name != name or name in ("", ".", "..") or _resolved(dest).parent != _resolved(folder):
        raise OutputClash(f"{dest}: would be written outside the output folder {folder}")
    return dest
