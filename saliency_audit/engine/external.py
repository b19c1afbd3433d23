"""Saliency maps made elsewhere (``--maps [NAME=]DIR``), and the folder format ``saliency-audit maps`` writes.

A map folder holds one map per image id: ``<id>.npy`` (a 2-D array of any real dtype, or (1, H, W)) or
``<id>.png`` (grey levels), at any resolution; or a ``manifest.csv`` with columns ``image,file`` naming the
file of each id (files inside the folder).  ``saliency-audit maps`` also writes ``maps.json`` (the model's
sha256, the method and its parameters, the seed, the ids): when present, the model it names must be the one
audited, or the maps would be audited as another model's.

Each map is taken as given (higher = more salient; take the absolute value yourself if your tool's sign
carries no meaning), resized bilinearly to the evaluation grid (the model's input size, as images are),
and min-max scaled to [0, 1] like every computed map; a constant map is flagged, as computed ones are.
A map written by ``saliency-audit maps`` is already on the grid and in [0, 1], so a round trip gives the
same numbers.  Criteria that need maps of other models or passes of the model that made the maps
(randomization, consistency, completeness) skip these methods with a reason naming ``--maps``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.errors import AuditInputError, AuditUsageError

MANIFEST_CSV, MANIFEST_JSON = "manifest.csv", "maps.json"
SUFFIXES = (".npy", ".png")
NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
MAX_ASPECT_CHANGE = 2.0  # as for images (saliency_audit.data.resize): a map stretched more is not this image's


@dataclass
class ExternalMaps:
    name: str  # the method name results are reported under
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)  # image id -> map file
    provenance: dict = field(default_factory=dict)  # maps.json, when the folder has one

    def describe(self) -> dict:
        return {"folder": str(self.folder), "n_files": len(self.files), **({"provenance": self.provenance}
                                                                           if self.provenance else {})}

    def load(self, sample_id: str, grid: tuple[int, int]) -> tuple[np.ndarray, bool]:
        """(map on ``grid`` as float32 in [0, 1], constant flag) of one image; one-line errors name the file."""
        path = self.files.get(sample_id)
        if path is None:
            raise AuditInputError(f"--maps={self.folder}: no map for image {sample_id!r} (expected "
                                  f"{sample_id}.npy or {sample_id}.png, or a row in {MANIFEST_CSV})")
        raw = read_map(path)
        h, w = raw.shape
        change = (w / h) / (grid[1] / grid[0])
        if max(change, 1 / change) > MAX_ASPECT_CHANGE:
            raise AuditInputError(f"{path}: map of {h}x{w} has an aspect ratio {max(change, 1 / change):.1f} times "
                                  f"off the {grid[0]}x{grid[1]} evaluation grid: not a map of image {sample_id!r}")
        from ..metrics.localisation import resize_map

        m = resize_map(raw, tuple(grid)).astype(np.float64)
        lo, span = float(m.min()), float(m.max() - m.min())
        if span <= 0:
            return np.zeros(tuple(grid), np.float32), True
        return ((m - lo) / span).astype(np.float32), False


def read_map(path: Path) -> np.ndarray:
    """A map file as a finite float32 (H, W) array."""
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            from ..data.imageio import read_gray

            arr = read_gray(path)
    except AuditInputError:
        raise
    except FileNotFoundError:
        raise AuditInputError(f"{path}: file not found") from None
    except Exception as exc:  # noqa: BLE001 -- numpy's many messages for a damaged or foreign file
        raise AuditInputError(f"{path}: cannot read map ({type(exc).__name__})") from None
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise AuditInputError(f"{path}: map of shape {tuple(arr.shape)} is not a 2-D (H, W) map")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise AuditInputError(f"{path}: map of dtype {arr.dtype} is not real numbers")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise AuditInputError(f"{path}: map contains NaN or infinite values")
    return arr


def parse_maps_option(value: str, taken: set[str]) -> ExternalMaps:
    """``--maps [NAME=]DIR`` -> an indexed map folder (NAME defaults to ``external``)."""
    from ..methods import METHODS

    name, sep, folder = value.partition("=")
    if not sep or not NAME.fullmatch(name):
        name, folder = "external", value
    where = f"--maps={value}"
    if name in METHODS:
        raise AuditUsageError(f"{where}: {name!r} is a built-in method; name the external maps otherwise "
                              f"(--maps NAME=DIR)")
    if name in taken:
        raise AuditUsageError(f"{where}: the name {name!r} is given twice; name each map folder (--maps NAME=DIR)")
    root = Path(folder)
    if not root.is_dir():
        raise AuditUsageError(f"{where}: no such directory")
    maps = ExternalMaps(name, root, index(root, where))
    if not maps.files:
        raise AuditUsageError(f"{where}: no .npy or .png maps in {root}")
    manifest = root / MANIFEST_JSON
    if manifest.is_file():
        try:
            maps.provenance = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AuditUsageError(f"{manifest}: cannot read ({type(exc).__name__})") from None
    return maps


def index(root: Path, where: str) -> dict[str, Path]:
    """{image id: map file} of a folder: its manifest.csv, else its .npy / .png files by stem."""
    csv_path = root / MANIFEST_CSV
    if csv_path.is_file():
        from ..data.tables import file_name, read_rows, stem

        files: dict[str, Path] = {}
        for row_no, row in read_rows(csv_path, ("image", "file")):
            at = f"{csv_path}: row {row_no}"
            image, name = stem(row["image"]), file_name(row["file"], root.name, at)
            if not (root / name).is_file():
                raise AuditInputError(f"{at}: no map file {name!r} in {root}")
            if files.get(image, root / name) != root / name:
                raise AuditInputError(f"{at}: image {row['image']!r} is given two map files")
            files[image] = root / name
        return files
    files = {}
    for p in sorted(root.iterdir()):
        if p.suffix.lower() in SUFFIXES and p.is_file():
            if p.stem in files:
                raise AuditUsageError(f"{where}: {files[p.stem].name!r} and {p.name!r} are maps of one image "
                                      f"{p.stem!r}; keep one")
            files[p.stem] = p
    return files


def check_model(maps: ExternalMaps, model) -> None:
    """The model a ``maps.json`` names must be the audited one (same weights), else the maps explain another."""
    made_by = maps.provenance.get("model", {}).get("fingerprint")
    if made_by is None:
        return
    from ..models.wrapper import model_fingerprint

    audited = model_fingerprint(model)
    if made_by != audited:
        raise AuditUsageError(f"--maps={maps.folder}: {MANIFEST_JSON} says these maps explain model "
                              f"{maps.provenance['model'].get('spec', '?')} (weights {made_by}); the audited model "
                              f"{model.info.spec} has weights {audited}: audit with the model that made the maps")
