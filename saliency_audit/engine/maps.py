"""MapStore: computes, batches, seeds and caches saliency maps.

Each map is computed once: the primary model's maps serve every criterion.
Maps are cached on disk keyed by content — the model's weights hash (a
randomized copy's recipe name, ModelSet.copy_token), the method and every
parameter it depends on, the sample's id and pixels, and the seed for
stochastic methods — so a re-run, or a run resumed after an
interruption, only computes what is missing.  Writes are atomic
(temp file + ``os.replace``), so several processes (pytest-xdist workers) can
share the cache.  Raw attributions that other methods combine (IG for XRAI,
guided backprop and GradCAM for Guided GradCAM) are memoised in memory.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import time
import weakref
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..common.kept_arrays import write_atomically
from ..data.resize import prepare
from ..data.sample import Sample
from ..methods import METHODS
from ..methods.mapset import MapSet
from ..methods.postprocess import postprocess, signed_maps
from ..models.inplace import Deferred
from ..models.target import check_predicted, independent
from ..models.wrapper import model_fingerprint

MAPS_VERSION = "2"  # bump when a method's computation changes
LOGITS_VERSION = "1"  # bump when the images' preparation for a model pass changes


class MapStore:
    def __init__(self, config, cache_dir: Path | None = None):
        self.config = config
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._raw: dict[tuple[str, str, str], torch.Tensor] = {}
        self._mapsets: dict[tuple, MapSet] = {}
        self._segments: dict[str, list] = {}
        self._cam_layers: dict[str, object] = {}
        self._cam_keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> cam_key
        # model -> fingerprint, held weakly (randomized copies are named, not hashed: ModelSet.copy_token)
        self._fps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.stats = {"computed": 0, "cached": 0, "seconds": 0.0}
        self.predictor = None  # explain = "predicted": callable returning the model whose predictions are explained
        self._predicted: dict[str, int] = {}
        self._logits: dict[tuple[str, str], torch.Tensor] = {}  # (model fingerprint, image key) -> logits
        self._loaded: OrderedDict[Path, tuple] = OrderedDict()  # cache files read (_load)
        self._loaded_bytes = 0
        self.external: dict[str, object] = {}  # method name -> saliency_audit.engine.external.ExternalMaps (--maps)
        self.skip_bad = False  # --skip-bad-samples: a bad external map leaves its image out, listed
        self.skipped: list[dict] = []  # ... here (the dataset's list of skipped samples)
        self._checked_external: set[str] = set()

    # -- keys -----------------------------------------------------------------
    def fingerprint(self, model) -> str:
        """The name of ``model``'s weights in the cache: a hash of them, or a randomized copy's (and a Deferred
        one's) name, ModelSet.copy_token, which covers what decides its weights: hashing a copy per image and
        stage took seconds, and a plan or a warm run would have to build each copy only to hash it."""
        token = model.info.extra.get("copy") if hasattr(model, "info") else None
        if token:
            return token
        fp = self._fps.get(model)
        if fp is None:
            fp = model_fingerprint(model)
            if independent(model):  # ScoreCAM's and LIME's maps read its sigmoids: not a softmax model's maps
                fp = hashlib.sha256(f"{fp}-sigmoid".encode()).hexdigest()[:24]
            self._fps[model] = fp
        return fp

    def method_params(self, method: str) -> dict:
        if method in self.external:
            return {"maps": self.external[method].describe()}
        spec = METHODS[method]
        cfg = self.config
        params: dict = {"target_class": cfg.target_class, "postprocess": asdict(cfg.postprocess)}
        if cfg.explain == "predicted":  # every model explains the class the primary predicts for each image
            params = {"explain": "predicted", "predicted_by": self.fingerprint(self._predictor()),
                      "postprocess": params["postprocess"]}
        for needed in (method, *spec.needs):
            for section in METHODS[needed].params:
                params[section] = asdict(getattr(cfg.methods, section))
        if spec.stochastic or any(METHODS[n].stochastic for n in spec.needs):
            params["seed"] = cfg.seed
        return params

    def _method_key(self, method: str) -> str:
        blob = json.dumps([MAPS_VERSION, method, self.method_params(method)], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _path(self, model_fp: str, method: str, sample_key: str, smooth: tuple | None = None) -> Path | None:
        """A map's cache file; a control's (``model_fp`` from :meth:`control_key`, ``sample_key`` from
        :meth:`control_sample_key`) lies beside every model's, keyed by what it reads instead."""
        folder = self._folder(model_fp, method, smooth)
        return None if folder is None else folder / f"{sample_key}.npz"

    def _folder(self, model_fp: str, method: str, smooth: tuple | None = None) -> Path | None:
        """The folder of ``method``'s cached maps on a model (:meth:`_path`'s; its key is computed once per
        batch of images, not per image)."""
        if self.cache_dir is None or not (METHODS[method].cached or METHODS[method].control):
            return None
        kind = f"{method}-{self._method_key(method)}" + (f"-smooth{smooth[0]}x{smooth[1]:g}" if smooth else "")
        return self.cache_dir / "maps" / model_fp / kind

    # A control's map never reads the model: the image on the model's grid (edge), the run seed and the image
    # (random), the lesion mask and its softening (oracle).  It is cached under those, once for every model
    # (randomization's per-image copies included), so a warm run computes none (608 maps of the demo audit).
    def control_key(self, model) -> str:
        """The cache folder of the controls' maps on ``model``'s input grid (in place of a fingerprint)."""
        h, w = (int(v) for v in model.input_size)
        sigma = float(self.config.completeness.lesion_sigma)  # the oracle's softening
        return f"controls-{h}x{w}-sigma{sigma:g}"

    @staticmethod
    def control_sample_key(sample: Sample) -> str:
        """The image's content key and its lesion mask's digest (the oracle reads the mask)."""
        truth = sample.truth()
        h = hashlib.sha256(b"none" if truth is None else np.ascontiguousarray(truth, dtype=bool).tobytes())
        if truth is not None:
            h.update(str(truth.shape).encode())
        return f"{sample.key()}-{h.hexdigest()[:16]}"

    def cam_key(self, model) -> str:
        """What the CAM layer depends on: the network's structure (module names and types, input size) and the
        ``--target-layer`` override, not its weights, so every randomized copy of a model shares the layer
        found on it (one probe pass per structure, not per cascade stage and draw)."""
        key = self._cam_keys.get(model)  # asked for every map batch: computed once per model
        if key is None:
            structure = [(n, type(m).__name__) for n, m in model.net.named_modules()]
            blob = json.dumps([structure, list(model.input_size), model.info.in_channels,
                               self.config.methods.gradcam.layer])
            key = self._cam_keys[model] = hashlib.sha256(blob.encode()).hexdigest()[:24]
        return key

    @staticmethod
    def unavailable(model, method: str) -> str | None:
        """Why ``method`` cannot map ``model`` (a TorchScript archive and a method that needs the eager network:
        :attr:`saliency_audit.methods.registry.MethodSpec.needs_eager`), or None when it can."""
        spec = METHODS[method]
        if not (spec.needs_eager and isinstance(model.net, torch.jit.ScriptModule)):
            return None
        from ..models.layers import script_module_message

        what = (f"{method} needs forward hooks on a layer" if spec.uses_cam_layer or not spec.needs else
                f"{method} combines methods that need the eager network")
        if spec.guided:
            what = (f"{method} must see every ReLU call from Python, and an archive makes them inside its "
                    f"interpreter, where the map would silently be the plain gradient")
        else:
            what += ", which an archive has not"
        return script_module_message(model, what)

    def cam_layer(self, model):
        from ..models.layers import find_cam_layer

        key = self.cam_key(model)
        if key not in self._cam_layers:
            self._cam_layers[key] = find_cam_layer(model, self.config.methods.gradcam.layer)
        return self._cam_layers[key]

    # -- computing --------------------------------------------------------------
    def maps(self, model, method: str, samples: Sequence[Sample], smooth: tuple[int, float] | None = None) -> MapSet:
        """``method``'s maps of ``samples`` on ``model``.  ``smooth`` = (N, noise): Smooth MPRT's denoised maps
        (Hedström et al. 2024): the raw attributions averaged over N copies of each image with Gaussian noise of
        std ``noise`` × (max − min) of the image, the last copy noise-free (so N = 1 is the plain map), then
        postprocessed as every map is."""
        if method in self.external:
            return self._external(model, method, samples)
        # a Deferred randomized copy is built only if a map is missing; until then its structure is the primary's
        like = model.like if isinstance(model, Deferred) else model
        reason = self.unavailable(like, method)
        if reason:
            from ..common.errors import Unavailable

            raise Unavailable(reason)
        t0 = time.perf_counter()
        control = bool(METHODS[method].control)
        fp = self.control_key(model) if control else self.fingerprint(model)
        keys = [s.key() for s in samples]
        files = [self.control_sample_key(s) for s in samples] if control else keys  # cache file names
        # the primary model's maps are the reference of every criterion: hand out one MapSet, so its
        # similarity features and noise floor are computed once (other models' maps are not kept in memory)
        memo_key = (fp, method, self._method_key(method), tuple(keys), smooth)
        if getattr(model.info, "role", None) == "primary" and memo_key in self._mapsets:
            self.stats["cached"] += len(samples)
            again = copy.copy(self._mapsets[memo_key])  # same arrays and _memo; this call computed nothing
            again.computed, again.seconds = 0, time.perf_counter() - t0
            return again
        maps: list[np.ndarray | None] = [None] * len(samples)
        signed: list[np.ndarray | None] = [None] * len(samples)
        constant = np.zeros(len(samples), dtype=bool)
        folder = self._folder(fp, method, smooth)
        paths = [None if folder is None else folder / f"{k}.npz" for k in files]
        for i, path in enumerate(paths):
            hit = self._load(path)
            if hit is not None:
                maps[i], constant[i], signed[i] = hit
        todo = [i for i, m in enumerate(maps) if m is None]
        notes: dict = {}
        if METHODS[method].uses_cam_layer:
            notes["cam_layer"] = self.cam_layer(like).to_dict()
        from ..config import pass_images

        # a map batch is one pass of the cheapest methods; IG/SmoothGrad chunk their passes at the same size
        bs = min(self.config.batch_size, pass_images(self.config, model.input_size))
        from ..common import progress

        if todo and isinstance(model, Deferred):
            model = model.build()

        with progress.bar(len(todo), f"{method} maps, {model.info.spec}") as shown:
            for start in range(0, len(todo), bs):
                idx = todo[start : start + bs]
                batch = [samples[i] for i in idx]
                raw = (self.raw(model, method, batch, [keys[i] for i in idx], notes) if smooth is None
                       else self._smoothed(model, method, batch, [keys[i] for i in idx], smooth, notes))
                clip = self.config.postprocess.clip_percentile
                raw_np = raw.cpu().numpy()
                pp, const = postprocess(raw_np, clip_percentile=clip, what=f"{method} maps of {model.info.spec}")
                sg = signed_maps(raw_np, clip_percentile=clip)
                for j, i in enumerate(idx):
                    maps[i], constant[i], signed[i] = pp[j], const[j], sg[j]
                    self._save(paths[i], pp[j], const[j], sg[j])
                shown.update(len(idx))
        seconds = time.perf_counter() - t0
        self.stats["computed"] += len(todo)
        self.stats["cached"] += len(samples) - len(todo)
        self.stats["seconds"] += seconds
        empty = np.zeros((0,) + tuple(model.input_size), np.float32)
        arr = np.stack(maps) if maps else empty
        sarr = np.stack(signed) if signed else empty
        if smooth is not None:
            notes["smooth"] = {"samples": smooth[0], "noise": smooth[1]}
        result = MapSet(method, [s.id for s in samples], arr, constant, sarr, len(todo), seconds, notes,
                        self.cache_dir)
        if getattr(model.info, "role", None) == "primary":
            result._memo = {}
            self._mapsets[memo_key] = result
        return result

    def _external(self, model, method: str, samples: Sequence[Sample]) -> MapSet:
        """Maps read from a ``--maps`` folder: only as the primary model's (they cannot be recomputed)."""
        from ..criteria.context import CriterionSkipped
        from ..common.errors import AuditInputError
        from .external import check_model

        role = getattr(model.info, "role", None)
        if role != "primary":
            raise CriterionSkipped(f"--maps: the {method} maps were made elsewhere; they cannot be recomputed on the "
                                   f"{role or 'other'} model this criterion compares")
        source = self.external[method]
        if method not in self._checked_external:
            check_model(source, model)
            self._checked_external.add(method)
        t0 = time.perf_counter()
        kept, maps, constant = [], [], []
        for s in samples:
            try:
                m, c = source.load(s.id, tuple(model.input_size))
            except AuditInputError as exc:
                if not self.skip_bad:
                    raise
                if not any(k["id"] == s.id and k["reason"] == str(exc) for k in self.skipped):
                    self.skipped.append({"id": s.id, "reason": str(exc)})
                continue
            kept.append(s.id)
            maps.append(m)
            constant.append(c)
        arr = np.stack(maps) if maps else np.zeros((0,) + tuple(model.input_size), np.float32)
        return MapSet(method, kept, arr, np.array(constant, dtype=bool), arr.copy(), 0, time.perf_counter() - t0,
                      {"source": source.describe()})

    def raw(self, model, method: str, samples: Sequence[Sample], keys: Sequence[str], notes: dict | None = None) -> torch.Tensor:
        """Raw attributions (N, C, H, W) of one batch, with dependencies memoised."""
        fp = self.fingerprint(model)
        mkey = self._method_key(method)
        memo_keys = [(fp, mkey, k) for k in keys]
        if all(k in self._raw for k in memo_keys):
            return torch.stack([self._raw[k] for k in memo_keys])
        spec = METHODS[method]
        memo: dict = {"raw": {}, "segments": self._segments, "notes": notes if notes is not None else {},
                      "cache_dir": self.cache_dir,  # XRAI keeps its image-only segments there too
                      "samples": list(samples)}  # the oracle control reads their lesion masks
        for dep in spec.needs:
            memo["raw"][dep] = self.raw(model, dep, samples, keys, notes)
        if spec.uses_cam_layer:
            memo["cam_layer"] = self.cam_layer(model)
        device = next(model.parameters()).device
        x = prepare(samples, model.input_size, device)
        model.requires_grad_(False)  # only input gradients are needed: backward skips weight grads
        target = None if spec.control else self.targets(model, samples, keys)  # controls ignore the model
        out = spec.function()(model, x, list(keys), target, self.config, memo).detach().float().cpu()
        if any(method in METHODS[m].needs for m in METHODS):
            for k, t in zip(memo_keys, out):
                self._raw[k] = t
        return out

    def _smoothed(self, model, method: str, samples: Sequence[Sample], keys: Sequence[str], smooth: tuple,
                  notes: dict) -> torch.Tensor:
        """Raw attributions averaged over ``smooth[0]`` noisy copies of each image (see :meth:`maps`).

        Each copy is its own sample (its own content key), so a stochastic method draws its own noise for it;
        the copies' noise is seeded by the run seed, the image and the copy.
        """
        from ..stats import stable_seed

        n, noise = smooth
        total = None
        for j in range(n):
            copies = []
            for s, k in zip(samples, keys):
                img = s.image.float()
                if j < n - 1 and noise > 0:
                    g = torch.Generator().manual_seed(stable_seed(self.config.seed, "smooth-mprt", k, j))
                    std = noise * float(img.max() - img.min())
                    img = img + torch.randn(img.shape, generator=g) * std
                copies.append(Sample(f"{s.id}~{j}", img, s.label, s.mask, s.boxes, s.meta))
            raw = self.raw(model, method, copies, [f"{k}~{j}" if j < n - 1 else k for k in keys], notes)
            total = raw / n if total is None else total + raw / n
        return total

    def _predictor(self):
        if self.predictor is None:
            raise RuntimeError("explain = 'predicted' needs MapStore.predictor (the primary model)")
        return self.predictor()

    def targets(self, model, samples: Sequence[Sample], keys: Sequence[str]) -> int | torch.Tensor:
        """The explained output: ``target_class`` for all, or each image's class predicted by the primary model."""
        if self.config.explain != "predicted":
            return model.target_index(self.config.target_class)
        todo = [i for i, k in enumerate(keys) if k not in self._predicted]
        check_predicted(model)  # independent sigmoid outputs have no single predicted class
        if todo:
            primary = self._predictor()
            check_predicted(primary)
            with torch.no_grad():
                x = prepare([samples[i] for i in todo], primary.input_size, next(primary.parameters()).device)
                pred = primary(x).argmax(1).cpu().tolist()
            self._predicted.update({keys[i]: int(c) for i, c in zip(todo, pred)})
        classes = [self._predicted[k] for k in keys]
        for c in set(classes):
            model.target_index(c)  # a class the model does not have is an error naming the model
        return torch.tensor(classes, dtype=torch.long, device=next(model.parameters()).device)

    def predicted(self, keys: Sequence[str]) -> list[int | None]:
        return [self._predicted.get(k) for k in keys]

    # -- logits -----------------------------------------------------------------
    def logits_path(self, model_fp: str, sample_key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / "logits" / f"v{LOGITS_VERSION}" / model_fp / f"{sample_key}.npy"

    def logits(self, model, samples: Sequence[Sample]) -> torch.Tensor:
        """(N, outputs) logits of ``model`` on ``samples`` (float32, on the CPU): each image's computed once per
        model and run, and kept in the cache keyed like the maps (the model's fingerprint, the image's content
        key), so a warm run makes no prediction pass.  The missing images go in passes of ``pass_images``,
        as :meth:`saliency_audit.models.modelset.ModelSet.accuracy` sends them."""
        from ..config import pass_images

        fp = self.fingerprint(model)
        keys = [s.key() for s in samples]
        rows: dict[str, torch.Tensor] = {}
        for k in dict.fromkeys(keys):
            row = self._logits.get((fp, k))
            if row is None:
                row = self._load_logits(self.logits_path(fp, k))
                if row is not None:
                    self._logits[(fp, k)] = row
            if row is not None:
                rows[k] = row
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        todo = [i for k, i in first.items() if k not in rows]  # each missing image once, in order
        if todo:
            device = next(model.parameters()).device
            bs = pass_images(self.config, tuple(model.input_size))
            with torch.no_grad():
                for a in range(0, len(todo), bs):
                    idx = todo[a:a + bs]
                    out = model(prepare([samples[i] for i in idx], model.input_size, device)).float().cpu()
                    for j, i in enumerate(idx):
                        rows[keys[i]] = self._logits[(fp, keys[i])] = out[j].clone()
                        self._save_logits(self.logits_path(fp, keys[i]), out[j])
        if not keys:
            return torch.zeros((0, 0))
        return torch.stack([rows[k] for k in keys])

    @staticmethod
    def _load_logits(path: Path | None) -> torch.Tensor | None:
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception:  # a torn or foreign file: recomputed
            return None
        if arr.dtype != np.float32 or arr.ndim != 1 or not arr.size:
            return None
        return torch.from_numpy(arr)

    @staticmethod
    def _save_logits(path: Path | None, row: torch.Tensor) -> None:
        if path is None:
            return
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next run the passes
            write_atomically(path, lambda fh: np.save(fh, row.numpy().astype(np.float32), allow_pickle=False))

    # -- cache files ------------------------------------------------------------
    #: bytes of cache files kept in memory once read (:meth:`_load`)
    LOADED_BYTES = 128 * 2**20

    def _load(self, path: Path | None):
        """(map, constant, signed) from a cache file, or None.  The files read are kept in memory (the most
        recent :attr:`LOADED_BYTES`): every sequential look reads the first images' maps again, and the plan
        reads the maps the run then scores (a warm demo audit read 3,500 files, 1,300 of them distinct)."""
        if path is None:
            return None
        hit = self._loaded.get(path)
        if hit is not None:
            self._loaded.move_to_end(path)
            return hit
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                hit = z["map"].astype(np.float32), bool(z["constant"]), z["signed"].astype(np.float32)
        except Exception:  # a torn or foreign file: recompute it
            return None
        hit[0].flags.writeable = hit[2].flags.writeable = False  # shared: MapStore.maps copies them into a stack
        self._loaded[path] = hit
        self._loaded_bytes += hit[0].nbytes + hit[2].nbytes
        while self._loaded_bytes > self.LOADED_BYTES and len(self._loaded) > 1:
            _, old = self._loaded.popitem(last=False)
            self._loaded_bytes -= old[0].nbytes + old[2].nbytes
        return hit

    @staticmethod
    def _save(path: Path | None, m: np.ndarray, constant: bool, signed: np.ndarray) -> None:
        if path is None:
            return
        write_atomically(path, lambda fh: np.savez(fh, map=m.astype(np.float32), constant=np.bool_(constant),
                                                   signed=signed.astype(np.float32)))
