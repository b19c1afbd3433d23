"""Content hashes: of files recorded in the evidence (model files, dataset files), and of arrays that key what
is remembered or kept by content (maps, masks)."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MB chunks (checkpoints can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def array_digest(*arrays) -> bytes:
    """A 20-byte blake2b digest of numpy arrays' dtypes, shapes and bytes (C order): equal for equal arrays,
    whatever their memory layout."""
    import numpy as np

    h = hashlib.blake2b(digest_size=20)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.digest()
