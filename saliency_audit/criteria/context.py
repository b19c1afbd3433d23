"""Context: what a criterion may ask of the run, and nothing else.

``ctx.models`` (a :class:`~saliency_audit.models.modelset.ModelSet`),
``ctx.samples`` (:class:`~saliency_audit.data.samplesets.SampleSets`),
``ctx.maps(model, method, samples)`` (the cached MapStore),
``ctx.passes`` (batched forward passes on perturbed images,
:class:`saliency_audit.engine.passes.Passes`), ``ctx.shared(key, fn)`` for values
several methods share (e.g. a random-order baseline), and ``ctx.skip(reason)``.
"""
from __future__ import annotations

from ..common.errors import AuditError


class CriterionSkipped(AuditError):
    """Raised by a criterion that cannot run here (the reason says which option would enable it)."""


class Context:
    def __init__(self, config, models, samples, store, passes_factory, human_annotations=None, finding=None):
        self.config = config
        self.human_annotations = human_annotations  # --human-annotations PATH (criteria/human.py reads it)
        self.finding = finding  # the finding audited (--finding), when the dataset has several
        self.models = models
        self.samples = samples
        self.store = store
        self._passes_factory = passes_factory
        self._passes = None
        self._shared: dict = {}

    def maps(self, model, method: str, samples, smooth: tuple[int, float] | None = None):
        """``method``'s maps of ``samples`` on ``model`` (``smooth``: Smooth MPRT's denoised maps)."""
        return self.store.maps(model, method, samples, smooth=smooth)

    def is_external(self, method: str) -> bool:
        """Maps read from a ``--maps`` folder: no other model's maps, no recomputation."""
        return method in self.store.external

    def localised_maps(self, method: str, loc=None):
        """(localisation set, the primary's maps of it): the set narrowed to the images that have a map
        (under --skip-bad-samples an unreadable external map leaves its image out, listed)."""
        loc = loc if loc is not None else self.samples.localisation()
        maps = self.maps(self.models.get("primary"), method, loc.samples)
        if len(maps.ids) != len(loc.samples):
            loc = loc.only(maps.ids)
            if len(loc.samples) < 2:
                self.skip(f"--maps: fewer than 2 audited images have a readable {method} map")
        return loc, maps

    def sequential_maps(self, method: str, statistic, alpha: float):
        """(localisation set, maps, Looks or None): with ``sequential``, the set grown a batch at a time until
        ``statistic(loc, maps) -> (checks, other pass condition)`` is decided; else the whole set."""
        if not self.config.sequential:
            return (*self.localised_maps(method), None)
        from ..stats.sequential import run_looks

        full = self.samples.localisation()
        held = {}

        def look(k):
            held["loc"], held["maps"] = self.localised_maps(method, full.head(k))
            return statistic(held["loc"], held["maps"])

        _, looks = run_looks(self.config, alpha, len(full.samples), look)
        return held["loc"], held["maps"], looks

    def sequential_samples(self, samples: list, alpha: float, checks):
        """(the first images, Looks or None): with ``sequential``, ``samples`` grown a batch at a time until
        ``checks(first k samples) -> (checks, other pass condition)`` decides; else all of them."""
        if not self.config.sequential:
            return samples, None
        from ..stats.sequential import run_looks

        k, looks = run_looks(self.config, alpha, len(samples), lambda k: checks(samples[:k]))
        return samples[:k], looks

    def method_params(self, method: str) -> dict:
        return self.store.method_params(method)

    def predictions(self, model, samples) -> list[int]:
        """The class ``model`` predicts for each of ``samples``: the argmax of competing classes; for a single
        logit or independent sigmoids, 1 where the explained output's probability exceeds 0.5, else 0.  From the
        logits the map store keeps (each image's computed once per model and cached on disk: a warm run makes
        no prediction pass)."""
        from ..models.target import output_of, predicted_class

        logits = self.store.logits(model, samples)
        kind = output_of(model)
        index = model.target_index(self.config.target_class) if kind == "sigmoid" and logits.shape[1] > 1 else 0
        return predicted_class(logits, kind, index).tolist()

    def prediction_agreement(self, a, b, samples) -> float:
        """Fraction of ``samples`` on which models ``a`` and ``b`` predict the same class."""
        pa, pb = self.predictions(a, samples), self.predictions(b, samples)
        return sum(x == y for x, y in zip(pa, pb)) / len(pa)

    @property
    def passes(self):
        if self._passes is None:
            self._passes = self._passes_factory()
        return self._passes

    def shared(self, key, compute):
        """``compute()`` once per run for ``key`` (values that do not depend on the method)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    @staticmethod
    def skip(reason: str):
        raise CriterionSkipped(reason)
