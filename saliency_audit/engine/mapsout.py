"""Maps out (mednet's ``generate`` and ``view``): ``saliency-audit maps`` and ``saliency-audit view``.

``maps`` writes, per method, ``DIR/<method>/<image id>.npy`` (float32 (H, W) in [0, 1] on the model's input
grid: exactly the map every criterion scores) and ``DIR/<method>/maps.json`` (the model's spec, file sha256
and weights fingerprint, the method's parameters, the seed, the ids), from the same MapStore and cache as an
audit: maps an audit already computed are read, not recomputed.  ``--maps DIR/<method>`` audits them again
(:mod:`saliency_audit.engine.external`), with the same numbers.

``view`` writes one overlay PNG per map: the map (colour) over the image (grey), the lesion outlined where
the dataset has one; it needs the dataset the maps were made from (``maps.json`` says which).

An output folder holds one run's maps: ``maps -o DIR`` refuses a DIR that already holds maps (a method
folder with ``.npy``/``.png`` maps, a ``maps.json`` or a ``manifest.csv``), and with ``--force`` first removes
the maps a previous ``maps`` run wrote there (in each method folder: its map files, ``maps.json``,
``manifest.csv``; nothing else, and no other folder), so the maps of two models never mix under one
``maps.json``.  ``view`` names each overlay from a sanitized id (:func:`saliency_audit.common.outputs.safe_name`) and
writes only inside its output folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .external import MANIFEST_CSV, MANIFEST_JSON


def images_of(audit, all_images: bool) -> list:
    """The images an audit scores (the localisation set), or every image of the dataset on the grid."""
    if not all_images:
        return audit.samples.localisation().samples
    ds = audit.dataset
    return ds.select(len(ds), audit.grid(), lesion=False)[1]


class Written(NamedTuple):
    folder: Path
    n: int  # maps written by this run


#: What a previous ``maps`` run may have left in a method folder, removed by ``--force``.
_MAP_SUFFIXES = (".npy", ".png")
_OWNED_FILES = (MANIFEST_JSON, MANIFEST_CSV)


def _holds_maps(folder: Path) -> bool:
    return any(p.is_file() and (p.suffix.lower() in _MAP_SUFFIXES or p.name in _OWNED_FILES)
               for p in folder.iterdir())


def _written_by_maps(folder: Path) -> bool:
    from ..methods import METHODS

    if folder.name in METHODS:
        return True
    try:
        made = json.loads((folder / MANIFEST_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(made, dict) and made.get("written_by") == "saliency-audit maps"


def check_output(out: Path, force: bool) -> list[Path]:
    """The method folders of ``out`` that hold maps of an earlier run -- a folder named after a built-in method,
    or one whose ``maps.json`` says ``saliency-audit maps`` wrote it -- which ``--force`` removes; none when
    ``out`` is new or holds no such folder (an overlays folder, anything else, is left alone: it is never
    read as this run's maps).  Raises :class:`~saliency_audit.common.errors.AuditUsageError` naming ``out`` when it
    is not a folder, is itself a folder of maps, or holds maps and ``force`` is false."""
    from ..common.errors import AuditUsageError

    if not out.exists():
        return []
    if not out.is_dir():
        raise AuditUsageError(f"-o {out}: exists and is not a directory")
    if _holds_maps(out):
        raise AuditUsageError(f"-o {out}: holds maps itself (it is one method's folder?); 'maps' writes one "
                              "folder per method under -o: give an empty or new folder")
    holding = sorted(p for p in out.iterdir()
                     if p.is_dir() and not p.is_symlink() and _holds_maps(p) and _written_by_maps(p))
    if holding and not force:
        raise AuditUsageError(f"-o {out}: already holds maps ({', '.join(p.name + '/' for p in holding)}); "
                              "new maps beside them would be read as one run's: give a new folder, or --force to "
                              "remove them first")
    return holding


def clear_maps(folders: list[Path]) -> int:
    """Remove what a previous ``maps`` run wrote in each of ``folders`` (map files, maps.json, manifest.csv,
    leftover .tmp files); a folder left empty is removed.  Returns the files removed."""
    removed = 0
    for folder in folders:
        for p in list(folder.iterdir()):
            name = p.name[:-4] if p.name.endswith(".tmp") else p.name
            if p.is_file() and (Path(name).suffix.lower() in _MAP_SUFFIXES or name in _OWNED_FILES):
                p.unlink()
                removed += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed


def write_maps(audit, out: Path, all_images: bool = False, force: bool = False) -> dict[str, Written]:
    """Each of ``audit.methods``' maps of the primary model as .npy files under ``out``; {method: (folder,
    maps written)}.  ``out`` must hold no maps, or ``force`` removes them first (:func:`check_output`).
    A method the model cannot give (GradCAM of a TorchScript archive) is left out and the others written; then
    an :class:`~saliency_audit.common.errors.Unavailable` names it, why, and what was written."""
    from ..common.errors import AuditInputError, Unavailable
    from ..models.wrapper import model_fingerprint
    from ..common.outputs import OutputClash, inside

    clear_maps(check_output(out, force))
    model = audit.models.get("primary")
    samples = images_of(audit, all_images)
    folders = {}
    missing: dict[str, str] = {}
    for method in audit.methods:
        reason = audit.store.unavailable(model, method) if method not in audit.store.external else None
        if reason:
            missing[method] = reason
            continue
        maps = audit.store.maps(model, method, samples)
        folder = out / method
        folder.mkdir(parents=True, exist_ok=True)
        for sid in maps.ids:
            try:
                inside(folder, f"{sid}.npy")
            except OutputClash:
                raise AuditInputError(f"image id {sid!r} is not a file name: its map cannot be written in "
                                      f"{folder} (nor read back by --maps)") from None
        for sid, m in zip(maps.ids, maps.maps):
            _atomic(folder / f"{sid}.npy", lambda fh, m=m: np.save(fh, m.astype(np.float32), allow_pickle=False))
        manifest = {
            "written_by": "saliency-audit maps",
            "method": method,
            "model": {"spec": model.info.spec, "arch": model.info.arch, "sha256": model.info.sha256,
                      "fingerprint": model_fingerprint(model), "input_size": list(model.info.input_size)},
            "params": audit.store.method_params(method),
            "seed": audit.config.seed,
            "dataset": {"name": audit.dataset_name, "root": audit.data_root, **audit.dataset_options},
            "ids": list(maps.ids),
            "constant": [sid for sid, c in zip(maps.ids, maps.constant) if c],
            "maps_computed": maps.computed,
        }
        _atomic(folder / MANIFEST_JSON, lambda fh, d=manifest: fh.write(json.dumps(d, indent=1).encode() + b"\n"))
        folders[method] = Written(folder, len(maps.ids))
    if missing:
        done = f"the maps of {', '.join(folders)} are written under {out}" if folders else "no maps were written"
        raise Unavailable(f"{', '.join(missing)}: not written ({next(iter(missing.values()))}); {done}")
    return folders


def write_overlays(folder: Path, out: Path, dataset) -> list[Path]:
    """Overlay PNGs of every map in ``folder`` (one method's maps) over its image from ``dataset``, each named
    from its sanitized id (:func:`~saliency_audit.common.outputs.safe_name`) and written only inside ``out``.  A
    folder without maps is an :class:`~saliency_audit.common.errors.AuditUsageError` naming it (and its method
    folders, when it is the folder ``maps -o`` wrote)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import cm
    from PIL import Image

    from ..data.resize import resize_image, resize_mask
    from .external import index, read_map

    from ..common.errors import AuditUsageError
    from ..common.outputs import inside, safe_name

    files = index(folder, str(folder))
    if not files:
        methods = sorted(p.name for p in folder.iterdir() if p.is_dir() and _holds_maps(p))
        hint = (f"; it holds method folders {', '.join(m + '/' for m in methods)}: give one of them"
                if methods else "")
        raise AuditUsageError(f"{folder}: no .npy or .png maps{hint}")
    names = {sid: safe_name(sid, ".png") for sid in files}
    if len(set(names.values())) < len(names):  # pragma: no cover - safe_name hashes every changed id
        raise AuditUsageError(f"{folder}: two map ids give one overlay file name")
    by_id = {dataset.sample_id(i): i for i in range(len(dataset))}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    from ..common import progress

    with progress.bar(len(files), f"overlays of {folder.name}") as shown:
        for sid, path in files.items():
            m = read_map(path)
            grey = np.zeros(m.shape, np.float32)
            outline = None
            if sid in by_id:
                sample = dataset[by_id[sid]]
                grey = resize_image(sample.image.float(), m.shape)[0].numpy()
                truth = sample.truth()
                if truth is not None and truth.any():
                    t = resize_mask(truth, m.shape)
                    inner = t[1:-1, 1:-1] & t[:-2, 1:-1] & t[2:, 1:-1] & t[1:-1, :-2] & t[1:-1, 2:]
                    outline = t.copy()
                    outline[1:-1, 1:-1] &= ~inner
            lo, hi = float(m.min()), float(m.max())
            heat = cm.inferno((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))[..., :3]
            rgb = 0.55 * np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2) + 0.45 * heat
            if outline is not None:
                rgb[outline] = (0.2, 1.0, 0.4)
            dest = inside(out, names[sid])
            Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(dest)
            written.append(dest)
            shown.update(1)
    return written


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
    os.replace(tmp, path)
