"""Passes: batched forward passes of a model on perturbed images (ROAD, deletion and insertion curves).

The pure parts (pixel order, masks, imputation, fills) live in
:mod:`saliency_audit.metrics.perturbation`; this module feeds them batches of
images on the model's device and reads the explained output's probability
(:func:`saliency_audit.models.target.explained_probability`: a softmax over
competing classes, the output's own sigmoid for independent findings or a
single logit, as the model's output kind was resolved).

Everything random is seeded per (run seed, sample id, ...), never per batch:

* ties in a map's pixel order are broken by a permutation seeded by the
  sample id alone, so every method (and the lesion-as-map) of one image
  breaks ties the same way;
* the imputation noise of image i at fraction f and order o is seeded by
  (sample id, f, o): every map of one image is scored against the same
  noise (common random numbers), so paired differences between maps carry
  no noise of their own.

A run's numbers therefore do not depend on batch sizes or on which maps were
scored before, and each image's result is its own: :class:`ResultCache` keeps
them on disk per image, keyed by content as the map cache keys maps, so a warm
run (maps cached) makes no ROAD or curve pass either.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..common import progress
from ..config import pass_images
from ..data.resize import prepare
from ..metrics import perturbation as pt
from ..models.target import explained_probability, output_of
from ..stats import stable_seed

from .results import IMPUTE_TOL, PASSES_VERSION, ResultCache, random_seeds, tie_seeds  # noqa: F401,E402


def trapezoid(y: np.ndarray) -> np.ndarray:
    """Area under curves sampled at equal steps over [0, 1] (rows: images)."""
    y = np.asarray(y, dtype=np.float64)
    return (y[:, :-1] + y[:, 1:]).sum(axis=1) / (2 * (y.shape[1] - 1))


class Passes:
    def __init__(self, config, store, cache: bool = True):
        """``cache``: keep results in the store's ``cache_dir`` (:class:`ResultCache`); False for timings."""
        self.config = config
        self.store = store  # for the explained targets (per-image when explaining the predicted class)
        self.results = ResultCache(config, store) if cache else None
        self._saved: set = set()  # the cache files this instance wrote (see _cached)
        self._memo: dict = {}

    def _forward(self, model, x: torch.Tensor, target) -> torch.Tensor:
        """Probabilities of the explained class for images ``x`` (any count; passes of ``pass_images``)."""
        bs = pass_images(self.config, tuple(x.shape[-2:]))
        kind = output_of(model)
        out = []
        with torch.no_grad():
            for i in range(0, len(x), bs):
                t = target[i : i + bs] if isinstance(target, torch.Tensor) else target
                out.append(explained_probability(model(x[i : i + bs]), t, kind).float().cpu())
        return torch.cat(out)

    def _setup(self, model, samples):
        """Images on the model's device, explained targets and the intact images' probabilities, each image's
        computed once per model: ROAD scores several maps (method, baselines, controls) of the same images,
        each call only the images whose results are not cached."""
        if self._memo.get("model") is not model:  # the model is kept: its id stays unique
            self._memo = {"model": model, "images": {}}
        known = self._memo["images"]  # sample key -> (image on the device, intact probability)
        keys = [s.key() for s in samples]
        new = list({k: i for i, k in enumerate(keys) if k not in known}.values())
        if new:
            device = next(model.parameters()).device
            some = [samples[i] for i in new]
            x = prepare(some, model.input_size, device)
            base = self._forward(model, x, self.store.targets(model, some, [keys[i] for i in new]))
            known.update((keys[i], (x[j], float(base[j]))) for j, i in enumerate(new))
        x = torch.stack([known[k][0] for k in keys])
        target = self.store.targets(model, samples, keys)  # predicted classes are remembered: no pass
        return x, target, np.array([known[k][1] for k in keys], dtype=np.float64)

    def _chunk(self, model, per_image: int) -> int:
        """Images per chunk so that one chunk's perturbed copies fill a few model passes."""
        return max(1, 4 * pass_images(self.config, tuple(model.input_size)) // per_image)

    def tie_seeds(self, samples) -> list[int]:
        return tie_seeds(self.config, samples)

    def random_seeds(self, samples) -> list[int]:
        return random_seeds(self.config, samples)

    def _cached(self, kind: str, model, samples, maps, seeds, shapes: dict, compute) -> dict:
        """``kind``'s per-image results (name -> shape of one image's), from the cache where they are, else from
        ``compute(samples, maps, seeds)`` on the missing images only (in their order), then saved."""
        if len(maps) != len(samples) or len(seeds) != len(samples):
            raise ValueError(f"{kind}: {len(samples)} samples, {len(maps)} maps and {len(seeds)} seeds")
        n = len(samples)
        paths = self.results.paths(kind, model, samples, maps, seeds) if self.results else [None] * n
        # Only results from before this run are read: the run then spends what its plan counts, which cannot know
        # that two maps of the run are equal before they are computed (a constant map and its blurred copy).
        rows = [None if path in self._saved else ResultCache.load(path, shapes) for path in paths]
        todo = [i for i, r in enumerate(rows) if r is None]
        if todo:
            some = np.asarray(maps) if len(todo) == n else np.asarray(maps)[todo]
            got = compute([samples[i] for i in todo], some, [seeds[i] for i in todo])
            for j, i in enumerate(todo):
                rows[i] = {k: np.asarray(got[k][j], dtype=np.float64) for k in shapes}
                ResultCache.save(paths[i], rows[i])
                if paths[i] is not None:
                    self._saved.add(paths[i])
        return {k: np.stack([r[k] for r in rows]) if rows else np.empty((0, *shape)) for k, shape in shapes.items()}

    def _noise(self, sample_id: str, shape, fraction_index: int, order: str) -> torch.Tensor:
        g = torch.Generator().manual_seed(stable_seed(self.config.seed, "road-noise", sample_id, fraction_index, order))
        return torch.randn(shape, generator=g)

    def road(self, model, samples: Sequence, maps: np.ndarray, seeds: Sequence[int] | None = None,
             desc: str = "") -> dict:
        """ROAD (Rong et al. 2022) for one map per sample: the explained class's probability after removing
        each fraction of pixels most relevant first (``morf``) and least relevant first (``lerf``), (N, F) each,
        and on the intact image (``base``, (N,)).  ``seeds``: tie-breaking seeds (default: per sample id)."""
        F = len(self.config.completeness.fractions)
        seeds = list(seeds) if seeds is not None else self.tie_seeds(samples)
        return self._cached("road", model, samples, maps, seeds, {"morf": (F,), "lerf": (F,), "base": ()},
                            lambda s, m, t: self._road(model, s, m, t, desc))

    def _road(self, model, samples: Sequence, maps: np.ndarray, seeds: list[int], desc: str) -> dict:
        p = self.config.completeness
        fr = tuple(p.fractions)
        x_all, target_all, base = self._setup(model, samples)
        n, F = len(samples), len(fr)
        morf, lerf = np.empty((n, F)), np.empty((n, F))
        step = self._chunk(model, 2 * F)
        with progress.bar(n, f"ROAD passes{f', {desc}' if desc else ''}") as shown:
            for a in range(0, n, step):
                b = min(n, a + step)
                x = x_all[a:b]
                order = pt.removal_order(np.asarray(maps[a:b]), seeds[a:b]).to(x.device)
                removed = torch.cat([pt.removal_masks(order, fr, tuple(x.shape[-2:])),
                                     pt.removal_masks(order, fr, tuple(x.shape[-2:]), reverse=True)], dim=1)
                k = b - a
                xs = x[:, None].expand(-1, 2 * F, -1, -1, -1).reshape(k * 2 * F, *x.shape[1:])
                rm = removed.reshape(k * 2 * F, *x.shape[-2:])
                xp = self._perturb(xs, rm, samples[a:b], F)
                t = target_all[a:b].repeat_interleave(2 * F) if isinstance(target_all, torch.Tensor) else target_all
                prob = self._forward(model, xp, t).numpy().reshape(k, 2, F)
                morf[a:b], lerf[a:b] = prob[:, 0], prob[:, 1]
                shown.update(b - a)
        return {"morf": morf, "lerf": lerf, "base": base}

    def _perturb(self, xs: torch.Tensor, removed: torch.Tensor, samples, F: int) -> torch.Tensor:
        """Fill the removed pixels of ``xs`` (rows: sample-major, then MoRF fractions, then LeRF fractions)."""
        p = self.config.completeness
        if p.fill == "random":  # seeded per sample: the values do not depend on the chunking
            per = len(xs) // len(samples)
            return torch.cat([pt.fill(xs[i * per:(i + 1) * per], removed[i * per:(i + 1) * per], "random",
                                      generator=torch.Generator(device=xs.device).manual_seed(
                                          stable_seed(self.config.seed, "random-fill", s.id)))
                              for i, s in enumerate(samples)])
        if p.fill not in ("linear", "linear-exact"):
            return pt.fill(xs, removed, p.fill)
        out = pt.noisy_linear_impute(xs, removed, noise=0.0, tol=IMPUTE_TOL)
        if p.fill == "linear" and p.noise > 0:
            noise = torch.stack([self._noise(s.id, xs.shape[1:], f, o) for s in samples for o in ("morf", "lerf")
                                 for f in range(F)]).to(xs.device)
            out = out + p.noise * noise * removed[:, None].to(out.dtype)
        return out

    def curves(self, model, samples: Sequence, maps: np.ndarray, seeds: Sequence[int] | None = None) -> dict:
        """RISE deletion and insertion curves (Petsiuk et al. 2018): the explained class's probability as the
        most relevant pixels are deleted (filled per ``deletion_fill``) or inserted into the
        ``insertion_start`` image, at 0, 1/steps, ..., 1 of the pixels; (N, steps + 1) each, with their AUCs."""
        p = self.config.completeness
        S = p.curve_steps + 1
        seeds = list(seeds) if seeds is not None else self.tie_seeds(samples)
        got = self._cached("curves", model, samples, maps, seeds, {"deletion": (S,), "insertion": (S,)},
                           lambda s, m, t: self._curves(model, s, m, t))
        return {**got, "deletion_auc": trapezoid(got["deletion"]), "insertion_auc": trapezoid(got["insertion"]),
                "fractions": [0.0, *[i / p.curve_steps for i in range(1, p.curve_steps)], 1.0]}

    def _curves(self, model, samples: Sequence, maps: np.ndarray, seeds: list[int]) -> dict:
        p = self.config.completeness
        fr = [i / p.curve_steps for i in range(1, p.curve_steps)]
        x_all, target_all, _ = self._setup(model, samples)
        n, S = len(samples), p.curve_steps + 1
        deletion, insertion = np.empty((n, S)), np.empty((n, S))
        step = self._chunk(model, 2 * S)
        for a in range(0, n, step):
            b = min(n, a + step)
            x = x_all[a:b]
            k = b - a
            order = pt.removal_order(np.asarray(maps[a:b]), seeds[a:b]).to(x.device)
            inner = pt.removal_masks(order, fr, tuple(x.shape[-2:]))  # (k, S-2, H, W)
            none = torch.zeros_like(inner[:, :1])
            masks = torch.cat([none, inner, ~none], dim=1)[:, :, None]  # (k, S, 1, H, W): True = pixel taken
            gone = self._base(x, p.deletion_fill)[:, None]
            start = self._base(x, p.insertion_start)[:, None]
            xi = x[:, None]
            dele = torch.where(masks, gone, xi).reshape(k * S, *x.shape[1:])
            ins = torch.where(masks, xi, start).reshape(k * S, *x.shape[1:])
            t = target_all[a:b].repeat_interleave(S) if isinstance(target_all, torch.Tensor) else target_all
            deletion[a:b] = self._forward(model, dele, t).numpy().reshape(k, S)
            insertion[a:b] = self._forward(model, ins, t).numpy().reshape(k, S)
        return {"deletion": deletion, "insertion": insertion}

    @staticmethod
    def _base(x: torch.Tensor, how: str) -> torch.Tensor:
        """The image every pixel is replaced by: black, its blurred copy, or its mean."""
        if how == "zero":
            return torch.zeros_like(x)
        everything = torch.ones((x.shape[0], *x.shape[-2:]), dtype=torch.bool, device=x.device)
        return pt.fill(x, everything, how)
