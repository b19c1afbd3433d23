"""Files parsed once while unchanged on disk: a multi-finding dataset's table or JSON is read by the adapter of
every finding audited (and by ``findings()``), so each parse is kept, keyed by the file's identity and
modification, for the next adapter.  A few files at most are kept (the oldest goes first)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from ..common.errors import AuditInputError

T = TypeVar("T")
KEEP = 4  # files kept per cache


def parsed(path, parse: Callable[[Path], T], cache: dict) -> T:
    """``parse(path)``, or the result of the last parse of this unchanged file held in ``cache``; a file that
    cannot be read is one AuditInputError line naming it."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    key = (str(path), str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in cache:
        while len(cache) >= KEEP:
            cache.pop(next(iter(cache)))
        cache[key] = parse(path)
    return cache[key]


def given_file(root, annotations: str) -> Path:
    """The file a dataset's ``annotations=`` option names: a path, or a name under the data root."""
    from ..common.errors import AuditUsageError

    path = Path(annotations) if Path(annotations).is_absolute() else Path(root) / annotations
    if not path.is_file():
        raise AuditUsageError(f"annotations={annotations}: no such file under {root}")
    return path
