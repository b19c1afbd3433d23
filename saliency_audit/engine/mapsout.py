"""Maps out (mednet's ``generate`` and ``view``): ``saliency-audit maps`` and ``saliency-audit view``.

``maps`` writes, per method, ``DIR/<method>/<image id>.npy`` (float32 (H, W) in [0, 1] on the model's input
grid: exactly the map every criterion scores) and ``DIR/<method>/maps.json`` (the model's spec, file sha256
and weights fingerprint, the method's parameters, the seed, the ids), from the same MapStore and cache as an
audit: maps an audit already computed are read, not recomputed.  ``--maps DIR/<method>`` audits them again
(:mod:`saliency_audit.engine.external`), with the same numbers.

``view`` writes one overlay PNG per map: the map (colour) over the image (grey), the lesion outlined where
the dataset has one; it needs the dataset the maps were made from (``maps.json`` says which).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .external import MANIFEST_JSON


def images_of(audit, all_images: bool) -> list:
    """The images an audit scores (the localisation set), or every image of the dataset on the grid."""
    if not all_images:
        return audit.samples.localisation().samples
    ds = audit.dataset
    return ds.select(len(ds), audit.grid(), lesion=False)[1]


def write_maps(audit, out: Path, all_images: bool = False) -> dict[str, Path]:
    """Each of ``audit.methods``' maps of the primary model as .npy files under ``out``; {method: folder}.
    A method the model cannot give (GradCAM of a TorchScript archive) is left out and the others written; then
    an :class:`~saliency_audit.common.errors.Unavailable` names it, why, and what was written."""
    from ..common.errors import Unavailable
    from ..models.wrapper import model_fingerprint

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
        folders[method] = folder
    if missing:
        done = f"the maps of {', '.join(folders)} are written under {out}" if folders else "no maps were written"
        raise Unavailable(f"{', '.join(missing)}: not written ({next(iter(missing.values()))}); {done}")
    return folders


def write_overlays(folder: Path, out: Path, dataset) -> list[Path]:
    """Overlay PNGs of every map in ``folder`` (one method's maps) over its image from ``dataset``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import cm
    from PIL import Image

    from ..data.resize import resize_image, resize_mask
    from .external import index, read_map

    files = index(folder, str(folder))
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
            dest = out / f"{sid}.png"
            Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(dest)
            written.append(dest)
            shown.update(1)
    return written


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
    os.replace(tmp, path)
