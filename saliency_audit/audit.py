"""Audit: everything an audit computes, reachable without pytest.

    >>> from saliency_audit import Audit
    >>> audit = Audit(model="demo")
    >>> result = audit.utility("gradcam")
    >>> result.passed, result.explain()
"""
from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Sequence

from .config import PAPER_METHODS, AuditConfig
from .criteria.result import CriterionResult
from .errors import AuditError, AuditUsageError
from .methods import resolve_methods
from .report import evidence as ev
from .paths import cache_root
from .stats import stable_seed


def check_device(dev: str) -> None:
    """A usage error for a device this machine cannot run (checked before anything is computed)."""
    if dev == "cpu":
        return
    if not (dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise AuditUsageError(f"--device={dev}: expected cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise AuditUsageError(f"--device={dev}: CUDA is not available on this machine")
    index = int(dev[5:]) if ":" in dev else 0
    if index >= torch.cuda.device_count():
        raise AuditUsageError(f"--device={dev}: only {torch.cuda.device_count()} CUDA device(s) visible")


def _with_thumbs(result: CriterionResult, ref, compared: list) -> CriterionResult:
    """Thumbnails of the first images' maps: the reference's, and each curve entry's (stage or compared model)."""
    from .report.thumbs import STAGE_IMAGES, map_thumbs

    ids = ref.ids[:STAGE_IMAGES]
    result.details["reference_thumbnails"] = map_thumbs(ref, ids)
    for row, maps in zip(result.curve, compared):
        row["thumbnails"] = map_thumbs(maps, ids)
    return result


class Audit:
    def __init__(
        self,
        model: str = "demo",
        *,
        dataset: str = "demo",
        data_root: str | None = None,
        methods: Sequence[str] | str | None = None,
        config: AuditConfig | None = None,
        report_dir: str | Path | None = None,
        allow_unsafe_pickle: bool = False,
        random_label_model: str | None = None,
        replicates: Sequence[str] | None = None,
        references: Sequence[str] | None = None,
        strict: bool = False,
        argv: list[str] | None = None,
        dataset_options: dict | None = None,
        skip_bad_samples: bool = False,
    ):
        self.config = config or AuditConfig()
        self.config.validate()
        self.model_spec = model
        if random_label_model is None and (model == "demo" or model.startswith("demo:")):
            random_label_model = "demo:random-label"
        self.random_label_spec = random_label_model
        demo = model == "demo" or model.startswith("demo:")
        self.replicate_specs = list(replicates) if replicates else (["demo:replicate1", "demo:replicate2"] if demo else [])
        self.reference_specs = list(references) if references else (["demo:other-arch"] if demo else [])
        self.strict = strict
        self.dataset_name = dataset
        self.data_root = data_root
        self.dataset_options = {k: v for k, v in (dataset_options or {}).items() if v is not None}
        self.skip_bad_samples = skip_bad_samples
        self._sample_sets: dict[tuple[str, int], tuple[list[int], list]] = {}
        self.methods = resolve_methods(methods) if methods else PAPER_METHODS
        self.allow_unsafe_pickle = allow_unsafe_pickle
        self.report_dir = Path(report_dir) if report_dir else None
        self.results: list[CriterionResult] = []
        self.listeners: list = []  # called with each result as it is recorded (the plugin maps them to tests)
        self.timings: dict[str, float] = {}
        self._run = ev.run_info(self.config.seed, argv)
        self._models: dict[str, object] = {}
        self._dataset = None
        self._store = None
        self._utility_ctx = None
        self._blocks = None
        self._check_device()

    # -- resources (lazy: nothing heavy happens until a criterion asks) --------------------
    def _check_device(self) -> None:
        check_device(self.config.device)

    @property
    def store(self):
        if self._store is None:
            from .maps import MapStore

            cache = Path(self.config.cache_dir) if self.config.cache_dir else cache_root()
            self._store = MapStore(self.config, cache)
            self._store.predictor = lambda: self.model("primary")
        return self._store

    @property
    def dataset(self):
        if self._dataset is None:
            from .data import load_dataset

            t0 = time.perf_counter()
            self._dataset = load_dataset(self.dataset_name, self.data_root, skip_bad=self.skip_bad_samples,
                                         **self.dataset_options)
            self.timings["dataset"] = time.perf_counter() - t0
        return self._dataset

    def model(self, role: str = "primary"):
        if role not in self._models:
            from .models import load_model

            t0 = time.perf_counter()
            mi = self.config.model
            load = dict(allow_unsafe_pickle=self.allow_unsafe_pickle, device=self.config.device,
                        input_size=tuple(mi.input_size) or None, normalize=(mi.mean, mi.std) if mi.mean else None)
            if role == "primary":
                m = load_model(self.model_spec, role="primary", **load)
            elif role == "randomized":
                try:
                    m = self.stage_model(None)
                except AuditError:  # no block structure found: re-initialise every layer at once
                    import torch

                    if isinstance(self.model("primary").net, torch.jit.ScriptModule):
                        raise
                    m = self._randomized(None, "randomized", "all layers")
            elif role == "random_label":
                if not self.random_label_spec:
                    raise AuditUsageError("no --random-label-model given")
                m = load_model(self.random_label_spec, role="random_label", option="--random-label-model", **load)
            elif role.startswith(("replicate", "reference")):
                kind = "replicate" if role.startswith("replicate") else "reference"
                specs = self.replicate_specs if kind == "replicate" else self.reference_specs
                option = "--replicate" if kind == "replicate" else "--reference-model"
                m = load_model(specs[int(role[len(kind):])], role=kind, option=option, **load)
            else:
                raise AuditUsageError(f"unknown model role {role!r}")
            self._models[role] = m
            self.timings[f"load_{role}"] = time.perf_counter() - t0
        return self._models[role]

    def blocks(self):
        """Randomization blocks of the primary model, head first (saliency_audit.models.blocks)."""
        if self._blocks is None:
            from .models.blocks import randomization_blocks

            m = self.model("primary")
            override = list(self.config.randomization.blocks) or None
            import torch

            if isinstance(m.net, torch.jit.ScriptModule):
                from .models.layers import script_module_message

                raise AuditUsageError(script_module_message(m, "randomization needs forward hooks to order its blocks"))
            self._blocks = randomization_blocks(m.net, (m.info.in_channels, *m.info.input_size), override)
        return self._blocks

    def _randomization_seed(self, draw: int) -> int:
        return stable_seed(self.config.seed, "randomization", *([draw] if draw else []))

    def stage_model(self, k: int | None, draw: int = 0):
        """The primary model with its first ``k`` blocks (head first) re-initialised; None: every block.

        ``draw`` selects an independent randomization (another seed) of the same blocks.
        """
        key = f"stage{k}" + (f"-draw{draw}" if draw else "")
        if key in self._models:
            return self._models[key]
        blocks = self.blocks()
        k = len(blocks) if k is None else k
        full = k == len(blocks) and draw == 0
        m = self._randomized(blocks[:k], "randomized" if full else f"cascade-{k}",
                             "all blocks" if k == len(blocks) else f"top {k} block(s)", draw)
        self._models[key] = m
        if full:
            self._models.setdefault("randomized", m)
        return m

    def single_block_model(self, j: int):
        """The primary model with only block ``j`` re-initialised (independent randomization)."""
        key = f"single{j}"
        if key not in self._models:
            block = self.blocks()[j]
            self._models[key] = self._randomized([block], f"independent-{j}", f"only {block.name}")
        return self._models[key]

    def _randomized(self, blocks, role: str, what: str, draw: int = 0):
        """A re-initialised copy of the primary (``blocks``: Block list; None: every layer) with its ModelInfo."""
        import dataclasses

        from .models.randomize import randomize_copy

        base = self.model("primary")
        p = self.config.randomization
        seed = self._randomization_seed(draw)
        m, n = randomize_copy(base, blocks=None if blocks is None else [b.modules for b in blocks], seed=seed,
                              bn_policy=p.bn_policy)
        m.info = dataclasses.replace(
            base.info, role=role, sha256=None, spec=f"{base.info.spec} ({what} re-initialised)",
            extra={"derived_from_sha256": base.info.sha256, "randomization_seed": seed, "draw": draw,
                   "blocks": None if blocks is None else [b.name for b in blocks], "layers_reset": n,
                   "bn_policy": p.bn_policy})
        return m

    def grid(self) -> tuple[int, int]:
        """The evaluation grid: the primary model's input size (images, masks and boxes are resized to it)."""
        return tuple(self.model("primary").input_size)

    def _samples(self, n: int, lesion: bool) -> tuple[list[int], list]:
        """``n`` samples on the evaluation grid, loaded once per run (memoised: DICOM decoding is not free)."""
        key = ("lesion" if lesion else "stratified", n)
        if key not in self._sample_sets:
            grid = self.grid()
            t0 = time.perf_counter()
            self._sample_sets[key] = self.dataset.select(n, grid, lesion=lesion)
            self.timings["samples"] = self.timings.get("samples", 0.0) + time.perf_counter() - t0
        return self._sample_sets[key]

    def _randomization_samples(self):
        return self._first_samples(self.config.randomization.n_images)

    def _first_samples(self, n: int):
        """The first ``n`` images with ground truth (the utility set's head), else ``n`` images stratified by label."""
        idx, samples = self._samples(n, lesion=True)
        if len(samples) < n:
            idx, samples = self._samples(n, lesion=False)
        return samples

    def randomization(self, method: str) -> CriterionResult:
        """Cascading (and optionally independent) weight randomization of ``method``'s maps."""
        (method,) = resolve_methods([method], option="method")

        def run():
            from .criteria.randomization import evaluate_cascade

            samples = self._randomization_samples()
            ref = self.store.maps(self.model("primary"), method, samples)
            blocks = self.blocks()
            draws = range(self.config.randomization.draws)
            stages = []
            for k in range(1, len(blocks) + 1):
                name = blocks[k - 1].name if k == 1 else f"+{blocks[k - 1].name}"
                stages.append((name if k < len(blocks) else f"all ({name})",
                               [self.store.maps(self.stage_model(k, r), method, samples) for r in draws]))
            independent = None
            if self.config.randomization.independent:
                independent = [(b.name, [self.store.maps(self.single_block_model(j), method, samples)])
                               for j, b in enumerate(blocks)]
            result = evaluate_cascade(method, ref, stages, self.config, independent=independent,
                                      details={"blocks": [b.to_dict() for b in blocks],
                                               "bn_policy": self.config.randomization.bn_policy,
                                               "draws": self.config.randomization.draws,
                                               "method_params": self.store.method_params(method)})
            return _with_thumbs(result, ref, [draws[0] for _, draws in stages])

        return self._record("randomization", method, run)

    def _skip(self, criterion: str, method: str, reason: str) -> CriterionResult:
        """A criterion that cannot run: skipped, or failed under ``--audit-strict``."""
        if self.strict:
            result = CriterionResult(criterion, method, "fail", explanation=f"--audit-strict: {reason}")
        else:
            result = CriterionResult(criterion, method, "skipped", explanation=reason)
        self.add_result(result)
        return result

    def prediction_agreement(self, a, b, samples) -> float:
        import torch

        from .maps import prepare

        with torch.no_grad():
            pa = a(prepare(samples, a.input_size, next(a.parameters()).device)).argmax(1).cpu()
            pb = b(prepare(samples, b.input_size, next(b.parameters()).device)).argmax(1).cpu()
        return float((pa == pb).float().mean())

    def _consistency(self, criterion: str, method: str, kind: str, specs: list[str], option: str) -> CriterionResult:
        (method,) = resolve_methods([method], option="method")
        if not specs:
            return self._skip(criterion, method, f"no model to compare with: pass {option} SPEC")

        def run():
            from .criteria.consistency import evaluate

            samples = self._first_samples(self.config.consistency.n_images)
            primary = self.model("primary")
            ref = self.store.maps(primary, method, samples)
            others = []
            for i, spec in enumerate(specs):
                m = self.model(f"{kind}{i}")
                others.append((spec, self.store.maps(m, method, samples),
                               self.prediction_agreement(primary, m, samples)))
            grids = [tuple((s.truth() if s.truth() is not None else s.image[0].numpy()).shape) for s in samples]
            result = evaluate(criterion, method, ref, others, grids, self.config,
                              details={"models": specs, "method_params": self.store.method_params(method)})
            return _with_thumbs(result, ref, [maps for _, maps, _ in others])

        return self._record(criterion, method, run)

    def repeatability(self, method: str) -> CriterionResult:
        """Maps of the primary against replicates of its architecture (other training seeds)."""
        return self._consistency("repeatability", method, "replicate", self.replicate_specs, "--replicate")

    def reproducibility(self, method: str) -> CriterionResult:
        """Maps of the primary against models of other architectures trained on the task."""
        return self._consistency("reproducibility", method, "reference", self.reference_specs, "--reference-model")

    def label_randomization(self, method: str) -> CriterionResult:
        """Maps of the model trained on permuted labels against the primary's."""
        (method,) = resolve_methods([method], option="method")
        if not self.random_label_spec:
            return self._skip("label_randomization", method,
                              "no model trained on permuted labels: pass --random-label-model SPEC")

        def run():
            from .criteria.randomization import evaluate_label

            samples = self._randomization_samples()
            ref = self.store.maps(self.model("primary"), method, samples)
            other = self.store.maps(self.model("random_label"), method, samples)
            result = evaluate_label(method, ref, other, self.config,
                                    details={"method_params": self.store.method_params(method)})
            return _with_thumbs(result, ref, [other])

        return self._record("label_randomization", method, run)

    # -- utility ----------------------------------------------------------------------------
    def _utility_context(self):
        if self._utility_ctx is None:
            ds = self.dataset
            idx, samples = self._samples(self.config.n_images, lesion=True)
            if len(idx) < 2:
                raise AuditUsageError(
                    f"--dataset={self.dataset_name}: utility needs images with lesion masks or boxes; found {len(idx)}"
                )
            truths = [s.truth() for s in samples]
            shape = truths[0].shape
            prior, used = ds.prior_masks(set(idx), self.config.utility.prior_images, shape)
            if used == 0:
                raise AuditUsageError(
                    f"--dataset={self.dataset_name}: no lesion images outside the audited set to build the average-mask prior"
                )
            self._utility_ctx = {"indices": idx, "samples": samples, "truths": truths, "prior": prior, "prior_n": used}
        return self._utility_ctx

    def utility(self, method: str) -> CriterionResult:
        """Localisation utility of ``method`` on the primary model (see :mod:`.criteria.utility`)."""
        (method,) = resolve_methods([method], option="method")

        def run():
            from .criteria import utility

            ctx = self._utility_context()
            primary = self.model("primary")
            maps = self.store.maps(primary, method, ctx["samples"])
            rand = self.store.maps(self.model("randomized"), method, ctx["samples"])
            from .report.thumbs import map_thumbs

            result = utility.evaluate(
                method, ids=maps.ids, truths=ctx["truths"], maps=maps.maps, constant=maps.constant,
                prior=ctx["prior"], prior_n=ctx["prior_n"], random_maps=rand.maps, config=self.config,
                details={"map_notes": maps.notes, "maps_computed": maps.computed, "map_seconds": maps.seconds,
                         "randomized_constant_maps": int(rand.constant.sum()),
                         "method_params": self.store.method_params(method)},
            )
            result.details["thumbnails"] = map_thumbs(maps)
            return result

        return self._record("utility", method, run)

    # -- bookkeeping ------------------------------------------------------------------------
    def _record(self, criterion: str, method: str, fn) -> CriterionResult:
        t0 = time.perf_counter()
        try:
            result = fn()
        except AuditError as exc:
            result = CriterionResult(criterion, method, "error", explanation=str(exc))
        except Exception as exc:  # keep the run going; the evidence says what broke
            result = CriterionResult(criterion, method, "error",
                                     explanation=f"{type(exc).__name__}: {exc}".splitlines()[0],
                                     details={"traceback": traceback.format_exc(limit=6)})
        result.details["seconds"] = time.perf_counter() - t0
        self.add_result(result)
        return result

    def add_result(self, result: CriterionResult) -> None:
        self.results = [r for r in self.results if (r.criterion, r.method, r.model) != (result.criterion, result.method, result.model)]
        self.results.append(result)
        for listener in self.listeners:
            listener(result)
        if self.report_dir is not None:
            self.write_evidence()

    def evidence(self, finished: bool = False) -> dict:
        models, seen = [], set()
        for m in self._models.values():  # cascade-stage copies are described in their results' details
            if m.info.role in ("primary", "randomized", "random_label", "replicate", "reference") and id(m) not in seen:
                seen.add(id(m))
                models.append(m.info.to_dict())
        dataset = {"name": self.dataset_name, "root": self.data_root, **self.dataset_options,
                   "skip_bad_samples": self.skip_bad_samples}
        if self._dataset is not None:
            dataset["root"] = self.data_root or getattr(self._dataset, "root", None)
            dataset["size"] = len(self._dataset)
            dataset.update(self._dataset.info())
            dataset["skipped"] = list(self._dataset.skipped)
        if self._sample_sets:
            used = sorted({i for idx, _ in self._sample_sets.values() for i in idx})
            dataset.update(n_images=len(used), eval_size=list(self.grid()),
                           manifest_sha256=self._manifest(tuple(used)))
        samples = self._sample_thumbnails()
        if self._utility_ctx is not None:
            dataset.update(n_localisation=len(self._utility_ctx["indices"]), prior_masks=self._utility_ctx["prior_n"])
        run = dict(self._run)
        if finished:
            run["finished"] = ev.now()
        run["timings"] = dict(self.timings, maps=self._store.stats if self._store else {})
        return {
            "schema": ev.SCHEMA,
            "run": run,
            "config": dict(self.config.to_dict(), methods_audited=list(self.methods)),
            "models": ev.sort_models(models),
            "dataset": dataset,
            "results": ev.sort_results([r.to_dict() for r in self.results]),
            "samples": samples,
        }

    def _sample_thumbnails(self) -> dict:
        """{sample id: {"image", "truth"}} thumbnails of every audited sample, for the report's overlays."""
        from .report.thumbs import sample_thumbs

        memo = self.__dict__.setdefault("_thumbs", {})
        for _, samples in self._sample_sets.values():
            for smp in samples:
                if smp.id not in memo:
                    memo[smp.id] = sample_thumbs(smp)
        return dict(sorted(memo.items()))

    def _manifest(self, used: tuple[int, ...]) -> str:
        """The dataset manifest hash of the items used (hashing their files once per distinct set)."""
        if getattr(self, "_manifest_memo", (None,))[0] != used:
            self._manifest_memo = (used, self._dataset.manifest_sha256(used))
        return self._manifest_memo[1]

    def write_evidence(self, finished: bool = False) -> Path | None:
        if self.report_dir is None:
            return None
        path = self.report_dir / "evidence.json"
        ev.write_json(path, self.evidence(finished))
        return path
