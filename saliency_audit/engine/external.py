"""Saliency maps made elsewhere (``--maps [NAME=]DIR``), and the folder format ``saliency-audit maps`` writes.

A map folder holds one map per image id: ``<id>.npy`` (a 2-D array of any real dtype, or (1, H, W)) or
``<id>.png`` (grey levels), at any resolution; or a ``manifest.csv`` with columns ``image,file`` naming the
file of each id (files inside the folder).  ``saliency-audit maps`` also writes ``maps.json`` (the model's
sha256, the method and its parameters, the seed, the ids): when present, the model it names must be the one
audited, or the maps would be audited as another model's.

Each map is taken as given (higher = more salient; take the absolute value yourself if your tool's sign
carries no meaning), resized bilinearly to the evaluation grid (the model's input size, as images are),
and min-max scaled to [0, 1] like every computed map; a constant map is flagged, as computed ones are.
The scaling is done in the file's own precision before float32 (:func:`scaled`), so no offset or scale a
finite map carries turns it constant or non-finite; a PNG map must be one channel (a colour rendering is
refused).  The folder is untrusted: ``maps.json`` is read under limits and checked (:func:`read_provenance`),
file names and ids are bare names whose real paths stay inside the folder (:func:`index`, the one reader of
a folder for ``--maps`` and ``view``), and map files larger than 8192 x 8192 are refused by their header.
A map written by ``saliency-audit maps`` is already on the grid and in [0, 1], so a round trip gives the
same numbers.  Criteria that need maps of other models or passes of the model that made the maps
(randomization, consistency, completeness) skip these methods with a reason naming ``--maps``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.errors import AuditInputError, AuditUsageError

MANIFEST_CSV, MANIFEST_JSON = "manifest.csv", "maps.json"
SUFFIXES = (".npy", ".png")
NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
#: Limits on a folder's manifest.csv and maps.json (they come from elsewhere): far beyond any real folder.
MAX_MANIFEST_BYTES = 64 * 2**20
MAX_MANIFEST_ROWS = 1_000_000
MAX_NAME = 255  # characters of an image id or file name (a file system's name limit)
MAX_PROVENANCE_BYTES = 64 * 2**20  # maps.json: the ids of a million images
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

        return scaled(resize_map(raw, tuple(grid)).astype(np.float64))


def read_map(path: Path) -> np.ndarray:
    """A map file min-max scaled to [0, 1] as a float32 (H, W) array (all zeros when constant; :func:`scaled`).

    Scaling happens in the file's own precision (integers exactly, floats in float64 or wider) *before* the
    float32 conversion, so a map with a large offset (``map * 1e-3 + 1e5``, ``2**62 + map * 2**40``) or a huge
    scale (``map * 1e300``) keeps its ranks.  Only a map holding NaN or an infinity is refused as non-finite;
    a PNG map must be one channel (:func:`saliency_audit.data.imageio.read_map_levels`)."""
    from ..data.imageio import MAX_MAP_PIXELS, read_map_levels

    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as fh:  # the header first: a claimed shape is checked before any allocation
                fmt = np.lib.format
                version = fmt.read_magic(fh)
                shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
            if int(np.prod(shape, dtype=object)) > MAX_MAP_PIXELS:
                raise AuditInputError(f"{path}: map of shape {tuple(shape)} is larger than the {MAX_MAP_PIXELS:,} "
                                      f"values a map may have")
            if dtype.hasobject:
                raise AuditInputError(f"{path}: map of dtype {dtype} is not real numbers")
            arr = np.load(path, allow_pickle=False)
        else:
            arr = read_map_levels(path)
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
    if arr.dtype.kind not in "biuf":  # complex, datetime, timedelta, strings, structured...
        raise AuditInputError(f"{path}: map of dtype {arr.dtype} is not real numbers")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise AuditInputError(f"{path}: map contains NaN or infinite values")
    return scaled(arr)[0]


def scaled(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """(``arr`` min-max scaled to [0, 1] as float32, constant flag) for a finite real array of any dtype.

    The minimum is subtracted in the array's own arithmetic where that is exact: integers as uint64 offsets
    from the minimum (two's-complement wrap-around gives the exact difference, which always fits 64 bits),
    floats in float64 (or the wider longdouble), halving both terms when the difference overflows.  Only
    then is the difference divided by the span and converted to float32: the smallest step of the map is
    kept however large its offset.  A constant array gives all zeros and the flag."""
    if arr.dtype.kind in "biu":
        wide = arr.astype(np.uint64) if arr.dtype.kind in "bu" else arr.astype(np.int64).view(np.uint64)
        diff = (wide - wide.flat[int(np.argmin(arr))]).astype(np.float64)  # exact in uint64, then rounded
    else:
        work = arr.astype(np.result_type(arr.dtype, np.float64))
        lo = work.min()
        with np.errstate(over="ignore", invalid="ignore"):
            diff = work - lo
            if not np.isfinite(diff).all():  # max - min beyond the dtype's range (e.g. -1e308 .. 1e308)
                diff = work / 2 - lo / 2
    span = diff.max()
    if not span > 0:
        return np.zeros(arr.shape, np.float32), True
    out = (diff / span).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out), False


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
    maps.provenance = read_provenance(root)
    return maps


def read_provenance(root: Path) -> dict:
    """A map folder's ``maps.json`` ({} when it has none), read as untrusted JSON
    (:func:`saliency_audit.common.untrusted.read_json`: size, UTF-8, depth, every number finite) and checked: an
    object, and each field the audit or ``view`` uses of the type and range it must have.  Anything else is one AuditUsageError line naming the file, at start-up."""
    from ..common.untrusted import read_json

    path = root / MANIFEST_JSON
    if not path.is_file():
        return {}
    try:
        data = read_json(path, max_bytes=MAX_PROVENANCE_BYTES)
    except AuditInputError as exc:
        raise AuditUsageError(str(exc)) from None

    def bad(what: str):
        raise AuditUsageError(f"{path}: {what}")

    if not isinstance(data, dict):
        bad(f"expected a JSON object, got {type(data).__name__}")
    for section in ("model", "dataset", "params"):
        if not isinstance(data.get(section, {}), dict):
            bad(f"{section}: expected an object, got {type(data[section]).__name__}")
    for section, key in (("model", "fingerprint"), ("model", "spec"), ("dataset", "name"), ("dataset", "root"),
                         ("dataset", "split"), ("dataset", "split_file"), ("dataset", "finding"), ("", "method")):
        value = (data.get(section, {}) if section else data).get(key)
        if value is not None and not isinstance(value, str):
            bad(f"{section + '.' if section else ''}{key}: expected a string, got {value!r}")
    post = data.get("params", {}).get("postprocess", {})
    clip = post.get("clip_percentile") if isinstance(post, dict) else None
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip <= 100):
        bad(f"params.postprocess.clip_percentile: {clip!r} is not a percentile in (0, 100]")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        bad(f"seed: {seed!r} is not an integer")
    for key in ("ids", "constant"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])):
            bad(f"{key}: expected a list of image ids")
    return data


def index(root: Path, where: str) -> dict[str, Path]:
    """{image id: map file} of a folder: its manifest.csv, else its .npy / .png files by stem.

    The one place a map folder's file names become paths (``--maps`` and ``saliency-audit view`` both read
    through it): a ``file`` must be a bare name in the folder, an ``image`` id a bare name too (``view``
    writes ``<id>.png``), and the file, symlinks resolved, must lie inside the folder; the manifest is at
    most :data:`MAX_MANIFEST_BYTES` and :data:`MAX_MANIFEST_ROWS` rows, each field at most
    :data:`MAX_NAME` characters."""
    csv_path = root / MANIFEST_CSV
    base = root.resolve()
    if csv_path.is_file():
        from ..data.tables import file_name, read_rows, stem

        size = csv_path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise AuditInputError(f"{csv_path}: {size:,} bytes, more than the {MAX_MANIFEST_BYTES:,} a manifest "
                                  f"may have")
        files: dict[str, Path] = {}
        for row_no, row in read_rows(csv_path, ("image", "file")):
            at = f"{csv_path}: row {row_no}"
            if row_no > MAX_MANIFEST_ROWS + 1:
                raise AuditInputError(f"{at}: more than the {MAX_MANIFEST_ROWS:,} rows a manifest may have")
            for column in ("image", "file"):
                if len(row[column]) > MAX_NAME:
                    raise AuditInputError(f"{at}: {column} of {len(row[column]):,} characters, more than the "
                                          f"{MAX_NAME} a file name may have")
            file_name(row["image"], root.name, at)  # an id is a bare name too: view writes <id>.png
            image, name = stem(row["image"]), file_name(row["file"], root.name, at)
            path = _inside(root, base, name, at)
            if files.get(image, path) != path:
                raise AuditInputError(f"{at}: image {row['image']!r} is given two map files")
            files[image] = path
        return files
    files = {}
    for p in sorted(root.iterdir()):
        if p.suffix.lower() in SUFFIXES and p.is_file():
            if p.stem in files:
                raise AuditUsageError(f"{where}: {files[p.stem].name!r} and {p.name!r} are maps of one image "
                                      f"{p.stem!r}; keep one")
            files[p.stem] = _inside(root, base, p.name, f"{where}: {p.name!r}")
    return files


def _inside(root: Path, base: Path, name: str, at: str) -> Path:
    """``root / name`` when it is a file whose real path (symlinks resolved) lies inside the folder."""
    path = root / name
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a symlink loop
        raise AuditInputError(f"{at}: no map file {name!r} in {root}") from None
    if not real.is_relative_to(base):
        raise AuditInputError(f"{at}: map file {name!r} resolves to {str(real)!r}, outside {root}")
    if not real.is_file():
        raise AuditInputError(f"{at}: no map file {name!r} in {root}")
    return path


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
