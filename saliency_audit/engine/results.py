"""ROAD's and the curves' results cached on disk per image (:class:`ResultCache`), and the per-image seeds of
their pixel orders: what :class:`saliency_audit.engine.passes.Passes` computes and the plan
(:mod:`saliency_audit.engine.plan`) counts, keyed alike by both.  A layer below both (pyproject.toml's engine
contract), so the plan reads the cache without importing the passes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..common.kept_arrays import load_arrays, save_arrays
from ..models.target import output_of
from ..metrics.perturbation import random_seeds, tie_seeds  # noqa: F401  (re-exported for the passes and plan)

#: Relative residual of the multigrid-preconditioned CG imputation.  At 1e-6 the largest error on a
#: 128-px ROAD batch (80 % removed) is far below ROAD's own noise (std 0.01); 1e-7 reaches float32's limit.
IMPUTE_TOL = 1e-6


#: Bump when ROAD's or the curves' computation changes (pixel order, masks, fills, imputation, read-out): the
#: results cached by an older version are then ignored.
PASSES_VERSION = "1"


class ResultCache:
    """Per-image ROAD results (``kind`` "road": morf, lerf, base) and deletion/insertion curves ("curves") on
    disk under ``cache_dir/<kind>/<model fingerprint>/``, keyed by content like the map cache
    (:class:`saliency_audit.engine.maps.MapStore`): the sample's content key, the bytes of its map as the pixel
    order reads them (float64), its tie-break seed, and every setting the values depend on.  Keyed per image,
    so chunking and which images a call scores do not matter.  The plan (:mod:`saliency_audit.engine.plan`)
    asks the same keys, to count the passes a cached result saves.  No ``cache_dir``: nothing is cached."""

    def __init__(self, config, store):
        self.config = config
        self.store = store
        root = getattr(store, "cache_dir", None)
        self.root = Path(root) if root else None

    def params(self, kind: str, model) -> dict:
        """What ``kind``'s values depend on besides the model's weights, the image, its map and seed."""
        cfg, p = self.config, self.config.completeness
        # the explained output: the target class, or the class the primary predicts (named by its weights, so the
        # key needs no prediction pass)
        target = (["predicted", self.store.fingerprint(self.store._predictor())] if cfg.explain == "predicted"
                  else ["class", cfg.target_class])
        out = {"version": PASSES_VERSION, "kind": kind, "target": target, "output": output_of(model),
               "size": [int(v) for v in model.input_size], "seed": cfg.seed}  # the seed: noise and random fills
        if kind == "road":
            out.update(fractions=[float(f) for f in p.fractions], fill=p.fill, noise=float(p.noise), tol=IMPUTE_TOL)
        else:
            out.update(steps=int(p.curve_steps), deletion_fill=p.deletion_fill, insertion_start=p.insertion_start)
        return out

    def keys(self, kind: str, model, samples, maps, seeds) -> list[str]:
        head = json.dumps(self.params(kind, model), sort_keys=True, default=str)
        out = []
        for s, m, seed in zip(samples, maps, seeds):
            a = np.ascontiguousarray(np.asarray(m, dtype=np.float64))  # as pt.removal_order reads it
            h = hashlib.sha256(json.dumps([head, s.key(), int(seed), list(a.shape)]).encode())
            h.update(a.tobytes())
            out.append(h.hexdigest()[:32])
        return out

    def path(self, kind: str, model_fp: str, key: str) -> Path | None:
        return None if self.root is None else self.root / kind / model_fp / key[:2] / f"{key}.npz"

    def paths(self, kind: str, model, samples, maps, seeds) -> list[Path | None]:
        if self.root is None:
            return [None] * len(samples)
        fp = self.store.fingerprint(model)
        return [self.path(kind, fp, k) for k in self.keys(kind, model, samples, maps, seeds)]

    load = staticmethod(load_arrays)  # the arrays a key names, or None (common.kept_arrays)
    save = staticmethod(save_arrays)  # atomically: pytest-xdist workers share the cache
