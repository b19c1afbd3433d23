"""Integrity checks of torch's zip archives (checkpoints and TorchScript) that torch itself does not make.

* Each member's CRC-32: torch.load and torch.jit.load ignore it, so a flipped byte would load as other weights.
* The byte size of each tensor storage of a TorchScript archive: torch.jit.load allocates a storage of the
  size its pickle declares and copies whatever the member holds, so a member cut short (and re-zipped, CRCs
  right) loads silently with other values.  torch.load makes this check for checkpoints; here it is made
  for TorchScript by reading the archive's pickles with an unpickler that imports nothing: every class it
  names becomes an inert stand-in, and only the storages' declared types and sizes are kept.
"""
from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from ..common.errors import AuditUsageError


def check_zip(path: Path, what: str) -> None:
    """Refuse ``path`` when it is a zip archive with a damaged member (CRC-32) or directory."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise AuditUsageError(f"{what}: {path} is a damaged archive ({type(exc).__name__})") from None
        if bad is not None:
            raise AuditUsageError(f"{what}: {path} is damaged: member {bad} fails its CRC check")


class _Inert(dict):
    """Whatever a pickle builds: accepts any arguments, state and items, and does nothing."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


class _StorageSizes(pickle.Unpickler):
    """Reads a TorchScript pickle for its storages only: {record key: declared bytes}.  Imports nothing."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.sizes: dict[str, int] = {}

    def find_class(self, module, name):
        if module == "torch" and name.endswith("Storage"):
            return name  # a storage type, e.g. "FloatStorage": kept as its name, resolved below
        return _Inert

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage":
            _, storage_type, key, _location, numel = pid
            self.sizes[str(key)] = int(numel) * _element_size(storage_type)
        return _Inert()


def _element_size(storage_type) -> int:
    cls = getattr(torch, storage_type, None) if isinstance(storage_type, str) else None
    with warnings.catch_warnings():  # the typed storage classes are deprecated, and still what pickles name
        warnings.simplefilter("ignore")
        dtype = getattr(cls, "dtype", None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown storage type {storage_type!r}")
    return torch.empty((), dtype=dtype).element_size()


def check_script_storages(path: Path, what: str) -> None:
    """Refuse a TorchScript archive whose tensor members do not hold the bytes its pickles declare."""
    with zipfile.ZipFile(path) as zf:
        members = {info.filename.split("/", 1)[-1]: info.file_size for info in zf.infolist()}
        for pickled, folder in (("data.pkl", "data"), ("constants.pkl", "constants")):
            name = next((n for n in zf.namelist() if n.split("/", 1)[-1] == pickled), None)
            if name is None:
                continue
            reader = _StorageSizes(zf.read(name))
            try:
                reader.load()
            except Exception:  # noqa: BLE001 -- a damaged pickle: torch.jit.load reports it better
                continue
            for key, size in reader.sizes.items():
                held = members.get(f"{folder}/{key}")
                if held is not None and held != size:
                    raise AuditUsageError(f"{what}: TorchScript archive {path} is damaged: tensor {folder}/{key} "
                                          f"holds {held} bytes, its pickle declares {size}")
