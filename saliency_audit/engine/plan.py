"""The audit's plan: which models, stages, methods and images it will use, and how many model passes.

Before any map is computed, :func:`make_plan` walks the (criterion, method) pairs in the order the run will
take them and counts the forward passes (in images: a pass over 8 images counts 8, the unit of
``details.image_passes``) each will spend, replaying the run's bookkeeping rather than measuring it: the
maps already in the cache cost nothing, each map is computed once per model and image, methods that
combine others (XRAI: IG; Guided GradCAM: guided backprop and GradCAM) reuse their raw attributions within
a batch, the first CAM map of a model probes its layers with one image, ROAD reuses the intact images'
probabilities while it scores the same images, and each method's own passes per image are
:func:`method_passes`.  tests/test_plan.py checks that a cold run spends exactly what its plan says.

With sequential verdicts (the default) the plan gives both ends: every pair stopping at its first look (the least) and
every pair running to its last (the most).  ScoreCAM's count is an upper bound (channels that are constant
on an image cost no pass), so a plan with ScoreCAM says "at most".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import pass_images
from ..common.criteria_registry import CRITERIA
from ..methods import METHODS

def method_passes(method: str, config, cam_channels: int = 0, size: tuple[int, int] = (0, 0)) -> int:
    """A method's own forward passes per image and map, without the methods it combines (``needs``): its
    spec's ``passes`` (a control makes none; a spec that does not say counts none, and the plan says so)."""
    spec = METHODS[method]
    if spec.control or spec.passes is None:  # edge, random, oracle: no model pass
        return 0
    return spec.passes(config, cam_channels, size) if callable(spec.passes) else int(spec.passes)


_COMBINED: list = [None, frozenset()]


def _combined() -> frozenset:
    """The methods whose raw attributions another method combines (MapStore.raw memoises those), computed once
    per state of the method registry (a plan asks it for every batch of every pair)."""
    n = len(METHODS)
    if _COMBINED[0] != n:
        _COMBINED[:] = [n, frozenset(d for m in METHODS for d in METHODS[m].needs)]
    return _COMBINED[1]


@dataclass
class _Ledger:
    """The run's bookkeeping, replayed: what is cached, memoised and probed so far."""

    ctx: object
    config: object
    maps_done: set = field(default_factory=set)  # (model key, method, image key)
    raw_done: set = field(default_factory=set)
    probed: set = field(default_factory=set)
    predicted: set = field(default_factory=set)
    logits: set = field(default_factory=set)  # (model key, image key): the store's logits of this run
    setup: set = field(default_factory=set)  # the images whose intact probability ROAD has (Passes._setup)
    models: dict = field(default_factory=dict)  # model key -> (fingerprint, input size, CAM key): never the model
    channels: dict = field(default_factory=dict)
    structure: dict = field(default_factory=dict)  # a copy's recipe -> the model key whose structure it has
    #: the work behind the passes, by kind, for the time estimate (engine/estimate.py): "grad" map passes
    #: (forward and backward), "forward" passes (predictions, probes, ROAD's intact images), "road" imputed
    #: passes, "copy" randomized copies built (a cascade's: per draw, ModelSet.build_unit), "segment" images
    #: segmented (XRAI)
    units: dict = field(default_factory=dict)
    segmented: set = field(default_factory=set)  # images a segmenting method (XRAI) has segmented
    built: set = field(default_factory=set)  # the randomized copies built (ModelSet.build_unit)
    cold: bool = False  # count as if the map cache were empty
    road_reference: bool = False  # completeness's method-independent ROAD scores, once per run

    def model(self, key: str):
        """The model of ``key``, from the ModelSet (which builds each once; per-image randomized copies it may
        drop and rebuild, so the ledger keeps only their fingerprints, never the models)."""
        return self.ctx.models.by_key(key)

    def entry(self, model_key: str) -> tuple[str, tuple, str]:
        """(fingerprint, input size, CAM key) of a model.  Models are told apart as the map cache tells them:
        by their weights' fingerprint (the fully randomized cascade stage and the ``randomized`` model are the
        same weights).  A randomized copy is named by its recipe instead (ModelSet.recipe, ModelSet.copy_token),
        which is its fingerprint in the map cache too: no copy is built to be counted."""
        if model_key not in self.models:
            mset = self.ctx.models
            recipe = mset.recipe(model_key)
            if recipe == "primary":
                self.models[model_key] = self.entry("primary")
            elif recipe is not None:  # a copy has the primary's structure: its input size and CAM layer
                _, size, cam = self.entry("primary")
                fp = mset.copy_token(recipe)
                unit, in_place = mset.build_unit(model_key)
                if not in_place and unit not in self.built:  # a deep copy, built when asked for
                    self.built.add(unit)
                    self._add("copy", 1)
                self.models[model_key] = (fp, size, cam)
                self.structure[fp] = "primary"
            else:
                m = self.model(model_key)
                self.models[model_key] = (self.ctx.store.fingerprint(m), tuple(m.input_size),
                                          self.ctx.store.cam_key(m))
        return self.models[model_key]

    def key(self, model_key: str) -> str:
        return self.entry(model_key)[0]

    def _add(self, kind: str, n: int) -> int:
        if n:
            self.units[kind] = self.units.get(kind, 0) + n
        return n

    def fork(self) -> "_Ledger":
        """A copy to try a criterion on: its own bookkeeping, the same models' fingerprints and channels."""
        return _Ledger(self.ctx, self.config, maps_done=set(self.maps_done), raw_done=set(self.raw_done),
                       probed=set(self.probed), predicted=set(self.predicted), logits=set(self.logits),
                       setup=set(self.setup),
                       models=self.models,
                       channels=self.channels, structure=self.structure, units=dict(self.units), segmented=set(self.segmented), built=set(self.built), cold=self.cold,
                       road_reference=self.road_reference)

    def maps(self, model_key: str, method: str, samples, smooth: tuple | None = None) -> int:
        if method in self.ctx.store.external:
            return 0
        store = self.ctx.store
        mk, size, cam = self.entry(model_key)
        cost = 0
        spec = METHODS[method]
        if spec.uses_cam_layer or any(METHODS[d].uses_cam_layer for d in spec.needs):
            cost += self._probe(cam)
        folder = None if self.cold else store._folder(mk, method, smooth)  # MapStore._path's, once per call
        todo = []
        for s in samples:
            k = s.key()
            if (mk, method, k, smooth) in self.maps_done:
                continue
            path = None if folder is None else folder / f"{k}.npz"
            if path is None or not path.is_file():
                todo.append(k)
            self.maps_done.add((mk, method, k, smooth))
        unit, in_place = self.ctx.models.build_unit(model_key)
        if todo and in_place and unit not in self.built:  # a stage built in place for a missing map
            self.built.add(unit)
            self._add("copy", 1)
        if spec.segments and smooth is None:  # the first map of an image segments it (engine/estimate.py)
            new = {k for k in todo if k not in self.segmented}
            self.segmented |= new
            self._add("segment", len(new))
        bs = min(self.config.batch_size, pass_images(self.config, size))
        for a in range(0, len(todo), bs):
            batch = todo[a:a + bs]
            if smooth is None:
                cost += self._raw(model_key, method, batch)
                continue
            n = smooth[0]  # MapStore._smoothed: one raw batch per noisy copy, the last one the image itself
            cost += sum(self._raw(model_key, method, [f"{k}~{j}" if j < n - 1 else k for k in batch])
                        for j in range(n))
        return cost

    def _probe(self, ck: str) -> int:
        """The CAM layer's probe: one image, once per network structure (MapStore.cam_key; the store may have
        found it already)."""
        if ck in self.probed or (not self.cold and ck in self.ctx.store._cam_layers):
            return 0
        self.probed.add(ck)
        return self._add("forward", 1)

    def _raw(self, model_key: str, method: str, keys: list) -> int:
        mk, size, _ = self.entry(model_key)
        if all((mk, method, k) in self.raw_done for k in keys):
            return 0
        spec = METHODS[method]
        if spec.control:  # controls make no model pass
            return 0
        cost = sum(self._raw(model_key, d, keys) for d in spec.needs)
        cost += self._targets(keys)
        channels = self._channels(model_key) if spec.per_channel else 0
        cost += self._add("grad", method_passes(method, self.config, channels, size) * len(keys))
        if method in _combined():
            self.raw_done.update((mk, method, k) for k in keys)
        return cost

    def predictions(self, model_key: str, samples) -> int:
        """Forward passes of ``model_key``'s logits of ``samples`` (MapStore.logits: each image once per model and
        run; none for an image whose logits the cache held before the run)."""
        store = self.ctx.store
        mk = self.key(model_key)
        new = []
        for s in samples:
            k = s.key()
            if (mk, k) in self.logits:
                continue
            self.logits.add((mk, k))
            path = None if self.cold else store.logits_path(mk, k)
            if path is None or not path.is_file():
                new.append(k)
        return self._add("forward", len(new))

    def _targets(self, keys) -> int:
        if self.config.explain != "predicted":
            return 0
        new = [k for k in keys if k not in self.predicted]
        self.predicted.update(new)
        return self._add("forward", len(new))

    def _channels(self, model_key: str) -> int:
        """Channels of the CAM layer, once per network structure (the CAM key): a randomized copy is counted on
        the model whose structure it has, never built for it."""
        mk, _, cam = self.entry(model_key)
        if cam not in self.channels:
            import torch

            from ..models.layers import find_cam_layer
            from ..common.passcount import PASSES

            model = self.model(self.structure.get(mk, model_key))
            before = PASSES["images"]  # the plan's own probes are not the run's (nor memoised for it)
            layer = find_cam_layer(model, self.config.methods.gradcam.layer)
            self.channels[cam] = _count_channels(model, dict(model.net.named_modules())[layer.name], torch)
            PASSES["images"] = before
        return self.channels[cam]

    # -- what a criterion's cost function (CriterionSpec.cost) asks of the ledger -------------------------------
    def looks(self, n: int, stop) -> list[int]:
        """The look sizes of ``n`` images up to ``stop`` ("first": the first look; None: every look)."""
        return _looks(self.config, n, stop)

    def randomized(self) -> bool:
        """Whether randomized copies can be built (utility's and completeness's baseline, randomization's stages)."""
        return self.ctx.models.unavailable("randomized") is None

    def localisation(self, method: str, stop) -> tuple[int, list]:
        """The primary's maps of the localisation set, look by look: (passes, the images the last look used)."""
        cfg = self.config
        loc = self.ctx.samples.localisation().samples
        cost = 0
        if cfg.sequential:
            for k in self.looks(len(loc), stop):
                cost += self.maps("primary", method, loc[:k])
            loc = loc[:k]
        else:
            cost += self.maps("primary", method, loc)
        return cost, loc

    def road(self, samples, maps=0, curves=0) -> int:
        """ROAD of ``maps`` and deletion/insertion curves of ``curves`` on ``samples`` (primary model), each a
        count of maps or a list of (maps, tie seeds or None: the default), the maps being the (N, H, W) array
        the run will score where the plan knows it (:meth:`known_maps`), else None.  A result the cache held
        before the run (engine.results.ResultCache) costs no pass."""
        p = self.config.completeness
        cost = 0
        for kind, items, per in (("road", maps, 2 * len(p.fractions)), ("curves", curves, 2 * (p.curve_steps + 1))):
            for what, seeds in ([(None, None)] * items if isinstance(items, int) else items):
                todo = self._results_todo(kind, samples, what, seeds)
                new = [k for k in dict.fromkeys(todo) if k not in self.setup]  # Passes._setup: once per image
                self.setup.update(new)
                cost += self._add("forward", len(new)) + self._targets(new) + self._add("road", len(todo) * per)
        return cost

    def _results_todo(self, kind: str, samples, what, seeds) -> list[str]:
        """The images whose ``kind`` result for maps ``what`` (engine.passes.Passes._cached) is not in the cache:
        all of them when counted cold, when there is no cache, or when the plan does not know the maps."""
        from .results import ResultCache, tie_seeds

        keys = [s.key() for s in samples]
        cache = ResultCache(self.config, self.ctx.store)
        if self.cold or cache.root is None or what is None:
            return keys
        seeds = tie_seeds(self.config, samples) if seeds is None else seeds
        fp = self.key("primary")
        found = [cache.path(kind, fp, k).is_file() for k in cache.keys(kind, self.model("primary"), samples, what, seeds)]
        return [k for k, f in zip(keys, found) if not f]

    def known_maps(self, model_key: str, method: str, samples):
        """``method``'s maps of ``samples`` on ``model_key`` as the run will score them, when the map cache holds
        every one (and the plan is not counted cold); else None.  A control's maps cost no pass and are the same
        for every model: read from the cache once for every model (MapStore.control_key), else made here, on
        the primary (MapStore.maps' postprocess is per map)."""
        store = self.ctx.store
        if self.cold or not samples or method in store.external or method not in METHODS:
            return None
        import numpy as np

        if METHODS[method].control:
            primary = self.model("primary")
            folder = store._folder(store.control_key(primary), method)
            hits = [store._load(None if folder is None else folder / f"{store.control_sample_key(s)}.npz")
                    for s in samples]
            if all(h is not None for h in hits):
                return np.stack([h[0] for h in hits])
            from ..methods.postprocess import postprocess

            raw = store.raw(primary, method, samples, [s.key() for s in samples])
            return postprocess(raw.numpy(), clip_percentile=self.config.postprocess.clip_percentile,
                               what=f"{method} maps")[0]
        folder = store._folder(self.key(model_key), method)
        maps = []
        for s in samples:
            hit = store._load(None if folder is None else folder / f"{s.key()}.npz")
            if hit is None:
                return None
            maps.append(hit[0])
        return np.stack(maps)


def _count_channels(model, module, torch) -> int:
    """Channels of the CAM layer (one probe pass; the caller keeps it out of the run's count)."""
    out = {}
    handle = module.register_forward_hook(lambda _m, _i, o: out.update(shape=o.shape))  # returns None
    try:
        with torch.no_grad():
            model(torch.zeros(1, model.info.in_channels, *model.input_size, device=next(model.parameters()).device))
    finally:
        handle.remove()
    return int(out["shape"][1])


def _looks(config, n: int, stop) -> list[int]:
    """The look sizes up to ``stop`` images ("first": the first look; None: every look)."""
    from ..stats.sequential import sizes

    ks = sizes(n, config.sequential_batch)
    if stop == "first":
        return ks[:1]
    return ks if stop is None else [k for k in ks if k <= stop]


def pair_passes(ledger: _Ledger, criterion: str, method: str, stop=None) -> int | None:
    """Passes of one (criterion, method), replayed on ``ledger`` (the run's order matters: it is kept), by the
    criterion's ``cost`` (:class:`~saliency_audit.common.criteria_registry.CriterionSpec`); None: its spec has no
    cost function (not estimated).  ``stop`` (with ``sequential``): the images at which the pair stops,
    "first" look, or None (the last)."""
    ctx = ledger.ctx
    if method not in ctx.store.external and ctx.store.unavailable(ctx.models.get("primary"), method):
        return 0  # skipped: the method needs the eager network (a TorchScript primary)
    spec = CRITERIA.get(criterion)
    cost = spec.cost_function() if spec is not None else None
    return None if cost is None else cost(ledger, method, stop)


def cheapest_first(parts: list[tuple[object, list[tuple[str, str]]]]) -> list[str]:
    """The criteria of ``parts`` ((context, its (criterion, method) pairs): one per finding's view, or the run's
    one) in the order that reaches each verdict after the fewest passes: greedily, the criterion whose pairs
    cost the least given the maps the criteria before it computed (counted cold, so every pytest-xdist worker
    orders its collection alike whatever the cache holds).  A criterion whose cost is not estimated goes last;
    ties keep the given order."""
    ledgers = [(_Ledger(ctx, ctx.config, cold=True), pairs) for ctx, pairs in parts]
    left = list(dict.fromkeys(c for _, pairs in parts for c, _ in pairs))
    order = []
    while left:
        def cost(criterion: str, ledgers=ledgers) -> float:
            total = 0
            for ledger, pairs in ledgers:
                trial = ledger.fork()
                for c, m in pairs:
                    if c == criterion:
                        passes = pair_passes(trial, c, m)
                        if passes is None:
                            return float("inf")
                        total += passes
            return total

        best = min(left, key=cost)  # min keeps the first of equal costs
        for ledger, pairs in ledgers:
            for c, m in pairs:
                if c == best:
                    pair_passes(ledger, c, m)
        order.append(best)
        left.remove(best)
    return order


def localisation_cost(ledger: _Ledger, method: str, stop=None) -> int:
    """The cost of a criterion that reads the primary's maps of the localisation set and nothing else
    (``ctx.sequential_maps`` / ``ctx.localised_maps``): a third party's may name it as its ``cost``."""
    return ledger.localisation(method, stop)[0]


def make_plan(ctx, pairs: list[tuple[str, str]]) -> dict:
    """The plan of running ``pairs`` (criterion, method) in this order on ``ctx``: models, stages, methods,
    images per criterion, and the image-passes it takes (with ``sequential``: at least and at most)."""
    cfg = ctx.config
    out: dict = {"pairs": len(pairs), "methods": sorted({m for _, m in pairs}),
                 "criteria": sorted({c for c, _ in pairs}),
                 "exact": not any(METHODS[m].per_channel for _, m in pairs if m in METHODS)}
    work: dict = {"most": {}, "least": {}}
    counts = {"most": replay(ctx, pairs, units=work["most"])}
    if cfg.sequential:
        counts["least"] = replay(ctx, pairs, {p: "first" for p in pairs}, units=work["least"])
    unknown = sorted(k for k, v in counts["most"].items() if v is None)
    unknown += sorted(f"method {m}" for m in out["methods"]
                      if m in METHODS and METHODS[m].passes is None and m not in ctx.store.external)
    most = {k: v for k, v in counts["most"].items() if v is not None}
    out["image_passes"] = sum(most.values())
    out["per_pair"] = most
    out["per_pair_work"] = work["most"]
    if cfg.sequential:
        out["per_pair_work_least"] = work["least"]
        out["image_passes_least"] = sum(v for v in counts["least"].values() if v is not None)
        out["per_pair_least"] = {k: v for k, v in counts["least"].items() if v is not None}
    if unknown:  # a criterion without a cost function, a method without a pass count: left out of the sums
        out["not_estimated"] = unknown
    mset = ctx.models
    gone = mset.unavailable("randomized")
    needs_blocks = any(c == "randomization" for c, _ in pairs) and gone is None
    out["models"] = {"primary": mset.primary_spec, "replicates": list(mset.replicate_specs),
                     "references": list(mset.reference_specs), "random_label": mset.random_label_spec}
    if needs_blocks:
        out["stages"] = len(mset.blocks())
        out["draws"] = cfg.randomization.draws
        out["draw_design"] = cfg.randomization.draw_design
    out["images"] = images_used(ctx, out["criteria"])
    if cfg.sequential:
        out["sequential"] = {"rule": cfg.sequential_rule, "batch": cfg.sequential_batch}
    primary = mset.get("primary")
    methods = {m: r for m in out["methods"] if m not in ctx.store.external and (r := ctx.store.unavailable(primary, m))}
    if gone or methods:  # what the run will skip, or report as an unavailable baseline, and why
        out["unavailable"] = {**({"randomized": gone} if gone else {}), **({"methods": methods} if methods else {})}
    return out


#: the image sets besides the localisation set: (criteria that use it, its size in the config, how it is drawn)
_IMAGE_SETS = {"randomization": (("randomization", "label_randomization"), lambda c: c.randomization.n_images,
                                 "first"),
               "consistency": (("repeatability", "reproducibility"), lambda c: c.consistency.n_images, "first"),
               "completeness": (("completeness",), lambda c: c.completeness.n_images, "head")}


def images_used(ctx, criteria) -> dict[str, int]:
    """The images each set of the planned ``criteria`` will use: the localisation set, and the sets of
    randomization, consistency and completeness as the run will draw them (never more than the data has)."""
    loc = len(ctx.samples.localisation().samples)
    out = {"localisation": loc}
    for name, (users, size, drawn) in _IMAGE_SETS.items():
        if any(c in criteria for c in users):
            n = size(ctx.config)
            out[name] = min(n, loc) if drawn == "head" else len(ctx.samples.first(n))
    return out


def replay(ctx, pairs: list[tuple[str, str]], stops: dict | None = None, cold: bool = False,
           units: dict | None = None) -> dict[str, int]:
    """{"criterion[method]": image-passes} of running ``pairs`` in this order; ``stops``: (criterion, method)
    -> images at which a sequential pair stopped (a finished run's, to check it; default: every look);
    ``cold``: as if the map cache were empty; ``units``: filled with each pair's work by kind (_Ledger.units)."""
    ledger = _Ledger(ctx, ctx.config, cold=cold)
    out = {}
    for c, m in pairs:
        before = dict(ledger.units)
        out[f"{c}[{m}]"] = pair_passes(ledger, c, m, (stops or {}).get((c, m)))
        if units is not None:
            units[f"{c}[{m}]"] = {k: v - before.get(k, 0) for k, v in ledger.units.items() if v - before.get(k, 0)}
    return out


def plan_text(plan: dict) -> str:
    """The plan in a few lines for the terminal."""
    m = plan["models"]
    others = len(m["replicates"]) + len(m["references"]) + (1 if m["random_label"] else 0)
    lines = [f"audit plan: {plan['pairs']} verdicts ({len(plan['criteria'])} criteria x {len(plan['methods'])} "
             f"methods: {', '.join(plan['methods'])}); primary {m['primary']} and {others} other model(s)"
             + (f", {plan['stages']} cascade stages x {plan['draws']} draw(s)"
                + (" per image" if plan.get("draw_design") == "per_image" else "") if "stages" in plan else ""),
             "images: " + ", ".join(f"{k} {v}" for k, v in plan["images"].items())]
    gone = plan.get("unavailable") or {}
    if gone:
        what = (["randomized copies (randomization skipped; utility and completeness without that baseline)"]
                if gone.get("randomized") else []) + [f"{k} (skipped)" for k in sorted(gone.get("methods") or {})]
        lines.append(f"unavailable with this model: {', '.join(what)}; each verdict says why")
    bound = "at most " if not plan["exact"] else ""
    if plan.get("not_estimated"):
        lines.append("cost not estimated (no cost function in its spec; left out of the counts): "
                     + ", ".join(plan["not_estimated"]))
    if "image_passes_least" in plan:
        lines.append(f"model passes (images): between {plan['image_passes_least']:,} (every verdict decided at its "
                     f"first look) and {bound}{plan['image_passes']:,} (every look taken)")
    else:
        lines.append(f"model passes (images): {bound}{plan['image_passes']:,} (maps already cached cost none)")
    return "\n".join(lines)
