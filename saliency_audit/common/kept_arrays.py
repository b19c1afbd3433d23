"""Named float arrays kept in a cache folder as one ``.npz`` file each: written whole or not at all, read back
only when every array is there in the shape asked for.

Serves every content-keyed result kept beside the maps (ROAD results and curves,
:class:`saliency_audit.engine.results.ResultCache`; the randomization and consistency criteria's similarity
scores): the caller names the file by a digest of everything the values depend on, so a file is either the
right values or absent.  Several processes (pytest-xdist workers) may share the folder."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np


def load_arrays(path: Path | None, shapes: dict) -> dict | None:
    """The arrays ``shapes`` names (name -> shape) as float64, or None: no file, or a torn or foreign one (the
    caller recomputes it)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path) as z:
            out = {k: np.asarray(z[k], dtype=np.float64) for k in shapes}
    except Exception:
        return None
    return out if all(out[k].shape == tuple(v) for k, v in shapes.items()) else None


def write_atomically(path: Path, write) -> None:
    """``write(fh)`` into a temporary file beside ``path`` (binary), then ``os.replace`` it onto ``path``: the
    file is whole or not there, whatever another process reads meanwhile.  Raises what ``write`` or the file
    system raises, and leaves no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_arrays(path: Path | None, arrays: dict) -> None:
    """Atomically (:func:`write_atomically`: processes may share the folder), as float64; a folder that cannot
    be written only costs the next run the computation."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        write_atomically(path, lambda fh: np.savez(fh, **{k: np.asarray(v, dtype=np.float64)
                                                          for k, v in arrays.items()}))
