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

import numpy as np

from .config import AuditConfig
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
        argv: list[str] | None = None,
    ):
        self.config = config or AuditConfig()
        self.config.validate()
        self.model_spec = model
        self.dataset_name = dataset
        self.data_root = data_root
        self.methods = resolve_methods(methods) if methods else tuple(resolve_methods(["grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam"]))
        self.allow_unsafe_pickle = allow_unsafe_pickle
        self.report_dir = Path(report_dir) if report_dir else None
        self.results: list[CriterionResult] = []
        self.timings: dict[str, float] = {}
        self._run = ev.run_info(self.config.seed, argv)
        self._models: dict[str, object] = {}
        self._dataset = None
        self._store = None
        self._utility_ctx = None
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
        return self._store

    @property
    def dataset(self):
        if self._dataset is None:
            from .data import load_dataset

            t0 = time.perf_counter()
            self._dataset = load_dataset(self.dataset_name, self.data_root)
            self.timings["dataset"] = time.perf_counter() - t0
        return self._dataset

    def model(self, role: str = "primary"):
        if role not in self._models:
            from .models import load_model

            t0 = time.perf_counter()
            if role == "primary":
                m = load_model(self.model_spec, role="primary", allow_unsafe_pickle=self.allow_unsafe_pickle,
                               device=self.config.device)
            elif role == "randomized":
                from .models.randomize import randomize_copy

                base = self.model("primary")
                seed = stable_seed(self.config.seed, "full-randomization")
                m, n_layers = randomize_copy(base, seed=seed, bn_policy="reset")
                m.info = type(base.info)(**{**base.info.__dict__, "role": "randomized", "sha256": None,
                                            "spec": f"{base.info.spec} (all layers re-initialised)",
                                            "extra": {"derived_from_sha256": base.info.sha256,
                                                      "randomization_seed": seed, "layers_reset": n_layers,
                                                      "bn_policy": "reset"}})
            else:
                raise AuditUsageError(f"unknown model role {role!r}")
            self._models[role] = m
            self.timings[f"load_{role}"] = time.perf_counter() - t0
        return self._models[role]

    # -- utility ----------------------------------------------------------------------------
    def _utility_context(self):
        if self._utility_ctx is None:
            ds = self.dataset
            idx = ds.localisation_indices(self.config.n_images)
            if len(idx) < 2:
                raise AuditUsageError(
                    f"--dataset={self.dataset_name}: utility needs images with lesion masks or boxes; found {len(idx)}"
                )
            samples = [ds[i] for i in idx]
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
            return utility.evaluate(
                method, ids=maps.ids, truths=ctx["truths"], maps=maps.maps, constant=maps.constant,
                prior=ctx["prior"], prior_n=ctx["prior_n"], random_maps=rand.maps, config=self.config,
                details={"map_notes": maps.notes, "maps_computed": maps.computed, "map_seconds": maps.seconds,
                         "randomized_constant_maps": int(rand.constant.sum()),
                         "method_params": self.store.method_params(method)},
            )

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
        if self.report_dir is not None:
            self.write_evidence()

    def evidence(self, finished: bool = False) -> dict:
        models = [dict(m.info.to_dict(), role=m.info.role) for m in self._models.values()]
        dataset = {"name": self.dataset_name, "root": self.data_root}
        if self._dataset is not None:
            dataset["root"] = self.data_root or getattr(self._dataset, "root", None)
        if self._utility_ctx is not None:
            idx = self._utility_ctx["indices"]
            dataset.update(n_images=len(idx), manifest_sha256=self._dataset.manifest_sha256(idx),
                           prior_masks=self._utility_ctx["prior_n"])
        run = dict(self._run)
        if finished:
            run["finished"] = ev.now()
        run["timings"] = dict(self.timings, maps=self._store.stats if self._store else {})
        return {
            "schema": ev.SCHEMA,
            "run": run,
            "config": dict(self.config.to_dict(), methods_audited=list(self.methods)),
            "models": models,
            "dataset": dataset,
            "results": ev.sort_results([r.to_dict() for r in self.results]),
        }

    def write_evidence(self, finished: bool = False) -> Path | None:
        if self.report_dir is None:
            return None
        path = self.report_dir / "evidence.json"
        ev.write_json(path, self.evidence(finished))
        return path
