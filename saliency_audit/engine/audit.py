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

from ..config import PAPER_METHODS, AuditConfig
from ..criteria.controls import attach as attach_control
from ..criteria.controls import summary as control_summary
from ..criteria.diagnosis import diagnose
from ..criteria.context import Context, CriterionSkipped
from ..common.criteria_registry import criterion as criterion_spec
from ..common.criteria_registry import external_gap, serves_external
from ..criteria.result import CriterionResult
from ..data.samplesets import SampleSets
from ..common.errors import AuditError, AuditUsageError, Unavailable, one_line
from ..methods import resolve_methods
from ..models.modelset import ModelSet
from .. import evidence as ev
from ..common.paths import cache_root


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
        random_label_model: str | None = None,
        replicates: Sequence[str] | None = None,
        references: Sequence[str] | None = None,
        strict: bool = False,
        argv: list[str] | None = None,
        dataset_options: dict | None = None,
        skip_bad_samples: bool = False,
        maps: Sequence[str] | None = None,
        findings: Sequence[str] | str | None = None,
        human_annotations: str | Path | None = None,
    ):
        self.config = config or AuditConfig()
        self.config.validate()
        self.model_spec = model
        demo = model == "demo" or model.startswith("demo:")
        if demo:  # a demo model's companions: its random-label twin, replicates and other architecture
            from ..demo import companions

            own = companions(model)
            random_label_model = own["random_label"] if random_label_model is None else random_label_model
        replicate_specs = list(replicates) if replicates else (own["replicates"] if demo else [])
        reference_specs = list(references) if references else (own["references"] if demo else [])
        self.strict = strict
        self.dataset_name = dataset
        self.data_root = data_root
        self.dataset_options = {k: v for k, v in (dataset_options or {}).items() if v is not None}
        self.skip_bad_samples = skip_bad_samples
        self.human_annotations = str(human_annotations) if human_annotations else None  # the radiologist benchmark
        from .external import ExternalMaps, parse_maps_option

        self.external: dict = {}  # --maps: method name -> ExternalMaps
        for value in maps or ():
            folder = value if isinstance(value, ExternalMaps) else parse_maps_option(value, set(self.external))
            self.external[folder.name] = folder
        builtin = resolve_methods(methods) if methods else (() if self.external else PAPER_METHODS)
        self.methods = tuple(builtin) + tuple(self.external)
        self.report_dir = Path(report_dir) if report_dir else None
        self.results: list[CriterionResult] = []
        self._result_dicts: dict[tuple, tuple[CriterionResult, dict]] = {}  # result key -> (result, its dict)
        self._result_texts: dict[int, tuple[dict, str | None]] = {}  # id(result dict) -> (it, its JSON)
        self.listeners: list = []  # called with each result as it is recorded (the plugin maps them to tests)
        self.timings: dict[str, float] = {}
        self._run = ev.run_info(self.config.seed, argv)
        self.plan: dict | None = None  # make_plan's, once made: it goes into the evidence
        self.decided: dict[tuple[str, str], CriterionResult] = {}  # a family's results (saliency_audit.family)
        self.family: dict | None = None  # the family's summary, once decided
        self.baseline: dict | None = None  # --audit-baseline: an earlier run's evidence (saliency_audit.decisions.regression)
        self.baseline_name = ""
        self._dataset = None
        self._store = None
        self._ctx = None
        check_device(self.config.device)
        self.models = ModelSet(self.config, model, replicates=replicate_specs, references=reference_specs,
                               random_label=random_label_model, allow_unsafe_pickle=allow_unsafe_pickle,
                               timings=self.timings)
        self.samples = SampleSets(self.config, lambda: self.dataset, self.models.grid, name=dataset,
                                  timings=self.timings, size_source=self.models.grid_source)
        self.finding: str | None = None  # the finding a view explains (engine/findings.py); None: the whole run
        self.parent: "Audit | None" = None
        self._finding_request = findings
        self._findings: tuple[str, ...] | None = None if findings else ()
        self._views: dict = {}

    # -- findings (a model with one output per finding is audited per finding: engine/findings.py) -----------
    @property
    def findings(self) -> tuple[str, ...]:
        """The findings audited, in the data's spelling (``--finding``, ``all`` expanded); () for a run without
        a finding axis."""
        if self._findings is None:
            from .findings import resolve_findings

            self._findings = resolve_findings(self, self._finding_request)
        return self._findings

    def view(self, finding: str) -> "Audit":
        """The audit of one finding: its dataset view, its output, its maps (engine/findings.py)."""
        if finding not in self._views:
            from .findings import make_view

            self._views[finding] = make_view(self, finding)
        return self._views[finding]

    def subjects(self) -> tuple[str, ...]:
        """What each audit test runs for: the methods, or (method, finding) subjects such as
        ``gradcam-Pneumothorax`` (:mod:`saliency_audit.common.subjects`)."""
        from ..common.subjects import subject

        if not self.findings:
            return self.methods
        return tuple(subject(m, f) for f in self.findings for m in self.methods)

    def _split(self, value: str, finding: str | None) -> tuple[str, str | None]:
        from ..common.subjects import split

        if finding is not None or not self.findings:
            return value, finding
        return split(value, self.methods, self.findings)

    # -- resources (lazy: nothing heavy happens until a criterion asks) --------------------
    @property
    def store(self):
        if self._store is None:
            from .maps import MapStore

            cache = Path(self.config.cache_dir) if self.config.cache_dir else cache_root()
            self._store = MapStore(self.config, cache)
            self._store.predictor = lambda: self.models.get("primary")
            self._store.external = self.external
            self._store.skip_bad = self.skip_bad_samples
        return self._store

    @property
    def dataset(self):
        if self._dataset is None:
            from ..data import load_dataset

            t0 = time.perf_counter()
            self._dataset = load_dataset(self.dataset_name, self.data_root, skip_bad=self.skip_bad_samples,
                                         **self.dataset_options)
            self.timings["dataset"] = time.perf_counter() - t0
        return self._dataset

    @property
    def context(self) -> Context:
        """What criteria see: config, models, samples, maps and model passes."""
        if self._ctx is None:
            def passes():
                from .passes import Passes

                return Passes(self.config, self.store)

            self._ctx = Context(self.config, self.models, self.samples, self.store, passes,
                                human_annotations=self.human_annotations, finding=self.dataset_options.get("finding"))
        return self._ctx

    def model(self, role: str = "primary"):
        return self.models.get(role)

    def grid(self) -> tuple[int, int]:
        return self.models.grid()

    # -- criteria -----------------------------------------------------------------------------
    def run(self, criterion: str, method: str, finding: str | None = None) -> CriterionResult:
        """Evaluate one registered criterion for one method (with a finding axis: a subject such as
        ``gradcam-Pneumothorax``, or ``finding=``); errors become an ``error`` result, never lost work.
        Under ``stats.multiplicity`` the family's decided result (:func:`decide_family`), told to the listeners
        again so the test that asks gets it."""
        from ..common.subjects import subject

        method, finding = self._split(method, finding)
        if (criterion, subject(method, finding)) in self.decided:
            result = self.decided[(criterion, subject(method, finding))]
            for listener in self.listeners:
                listener(result)
            return result
        if self.findings and self.finding is None:
            if finding not in self.findings:
                audited = ", ".join(self.findings)
                raise AuditUsageError(f"{criterion}[{method}]: name the finding (audited: {audited})"
                                      if finding is None else
                                      f"finding {finding!r} is not audited in this run (audited: {audited})")
            return self.view(finding).run(criterion, method)
        spec = criterion_spec(criterion)
        if reason := self.absent(spec.name):  # absent from this run: said, never recorded in the evidence
            return CriterionResult(spec.name, method, "skipped", explanation=reason)
        if method not in self.external:
            (method,) = resolve_methods([method], option="method")
        elif gap := external_gap(spec):
            served = serves_external()
            reason = (f"--maps: {spec.name} needs {', '.join(gap)}, which maps made elsewhere cannot give (they "
                      f"serve {' and '.join([', '.join(served[:-1]), served[-1]] if len(served) > 1 else served)}); "
                      f"audit the method itself (--methods) for it")
            return self._record(spec.name, method, lambda: Context.skip(reason))
        from ..common import progress

        with progress.step(f"{spec.name}[{subject(method, self.finding)}]"):
            return self._record(spec.name, method, lambda: spec.function()(self.context, method))

    def make_plan(self, pairs: list[tuple[str, str]]) -> dict:
        """The plan of running ``pairs`` (criterion, method or subject) in this order
        (:mod:`saliency_audit.engine.plan`; per finding with a finding axis), kept for the evidence."""
        from .plan import make_plan

        if self.findings and self.finding is None:
            from .findings import plan_findings

            self.plan = plan_findings(self, [(c, m) for c, m in pairs if self.absent(c) is None])
            return self.plan
        self.plan = make_plan(self.context, self._plannable(pairs))
        return self.plan

    def unit_seconds(self, plan: dict) -> dict[str, float]:
        """Seconds per unit of the kinds of work ``plan`` counts, timed on this device
        (:func:`saliency_audit.engine.estimate.unit_seconds`; a finding's view's models are the run's)."""
        from .estimate import unit_seconds

        kinds = {k for w in (plan.get("per_pair_work") or {}).values() for k in w}
        view = self.view(self.findings[0]) if self.findings and self.finding is None else self
        return unit_seconds(view.context, kinds)

    def _plannable(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The pairs a plan counts: not absent, and not an external map's pair its criterion cannot serve."""
        served = serves_external()
        return [(c, m) for c, m in pairs if (m not in self.external or c in served) and self.absent(c) is None]

    def criteria_order(self, pairs: list[tuple[str, str]]) -> list[str]:
        """The criteria of ``pairs`` (criterion, method or subject) cheapest first
        (:func:`~saliency_audit.engine.plan.cheapest_first`), so the first verdicts come soon; each finding's
        view counts its own passes."""
        from .plan import cheapest_first

        if self.findings and self.finding is None:
            from .findings import pairs_per_finding

            per = pairs_per_finding(self, [(c, m) for c, m in pairs if self.absent(c) is None])
            parts = [(self.view(f).context, self.view(f)._plannable(p)) for f, p in per.items()]
        else:
            parts = [(self.context, self._plannable(pairs))]
        order = cheapest_first(parts)
        return order + [c for c in dict.fromkeys(c for c, _ in pairs) if c not in order]

    def absent(self, criterion: str) -> str | None:
        """Why ``criterion`` is absent from this run (it needs an option not given: never planned, its test
        skipped with this line, nothing in the evidence), or None."""
        from ..common.criteria_registry import absent

        return absent(criterion_spec(criterion), {"--human-annotations"} if self.human_annotations else set())

    def run_all(self, pairs: list[tuple[str, str]]) -> None:
        """Run every pair now and keep its result for the test that asks (a family's or a regression gate's
        decision needs all of them first)."""
        for criterion, method in pairs:
            if (criterion, method) not in self.decided:
                self.run(criterion, method)
        wanted = set(pairs)
        self.decided.update({(r.criterion, r.subject): r for r in self.results if (r.criterion, r.subject) in wanted})

    def decide_family(self, pairs: list[tuple[str, str]]) -> dict | None:
        """``stats.multiplicity`` other than none: run every pair, then decide the gate's verdicts together
        (:mod:`saliency_audit.decisions.family`); None when the verdicts stand alone."""
        if self.config.stats.multiplicity == "none" or self.family is not None:
            return self.family
        from ..decisions.family import decide

        return decide(self, pairs)

    def utility(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("utility", method, finding)

    def randomization(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("randomization", method, finding)

    def label_randomization(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("label_randomization", method, finding)

    def repeatability(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("repeatability", method, finding)

    def reproducibility(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("reproducibility", method, finding)

    def completeness(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("completeness", method, finding)

    def energy(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("energy", method, finding)

    def focus(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("focus", method, finding)

    def pointing(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("pointing", method, finding)

    def human_benchmark(self, method: str, finding: str | None = None) -> CriterionResult:
        return self.run("human_benchmark", method, finding)

    # -- bookkeeping ------------------------------------------------------------------------
    def _record(self, criterion: str, method: str, fn) -> CriterionResult:
        from ..common.passcount import PASSES

        t0, passes0 = time.perf_counter(), PASSES["images"]
        try:
            result = fn()
        except (CriterionSkipped, Unavailable) as exc:  # cannot run here: the reason names what would enable it
            verdict, text = ("fail", f"--audit-strict: {exc}") if self.strict else ("skipped", str(exc))
            result = CriterionResult(criterion, method, verdict, explanation=text)
        except AuditError as exc:
            result = CriterionResult(criterion, method, "error", explanation=str(exc))
        except Exception as exc:  # keep the run going; the evidence says what broke
            result = CriterionResult(criterion, method, "error",
                                     explanation=f"{type(exc).__name__}: {one_line(exc)}",
                                     details={"traceback": traceback.format_exc(limit=6)})
        result.settle_p_value(self.config.stats.resamples, self.config.stats.method)
        attach_control(result)
        result.details["seconds"] = time.perf_counter() - t0
        result.details["image_passes"] = PASSES["images"] - passes0  # forward passes this result cost, in images
        result.finding = self.finding
        self.add_result(result)
        return result

    def add_result(self, result: CriterionResult) -> None:
        from ..common.subjects import key as result_key

        if self.parent is not None:  # a finding's view: the run keeps (and writes) every finding's results
            self.parent.add_result(result)
            return
        key = result_key(result)
        self.results = [r for r in self.results if result_key(r) != key]
        self.results.append(result)
        for listener in self.listeners:
            listener(result)
        # a recorded result is final: converted once, not again at every evidence write (72 results, 72 writes)
        self._result_dicts[key] = (result, result.to_dict())
        if self.report_dir is not None:
            self.write_evidence()

    def refresh(self, result: CriterionResult) -> None:
        """Convert a recorded result again after it changed (a family's decision)."""
        from ..common.subjects import key

        self._result_dicts[key(result)] = (result, result.to_dict())

    def _result_dict(self, result: CriterionResult) -> dict:
        from ..common.subjects import key

        held = self._result_dicts.get(key(result))
        return held[1] if held is not None and held[0] is result else result.to_dict()

    def evidence(self, finished: bool = False, status: str | None = None, exit_status: int | None = None) -> dict:
        """The evidence so far. ``status``: how the run ended (``complete``, ``interrupted``, ``failed``);
        evidence written while the run goes on says ``running``, so a killed run never reads as finished."""
        models = self.models.describe()  # cascade-stage copies are described in their results' details
        if self.findings:
            from .findings import dataset_section, finding_samples

            dataset, samples = dataset_section(self), finding_samples(self)
        else:
            dataset, samples = self._dataset_section(), self._sample_thumbnails()
        run = dict(self._run)
        if finished:
            run["finished"] = ev.now()
        run["status"] = status or ("complete" if finished else "running")
        if exit_status is not None:
            run["exit_status"] = exit_status
        run["timings"] = dict(self.timings, maps=self._maps_stats())
        run["image_passes"] = sum(r.details.get("image_passes", 0) for r in self.results)
        if self.plan is not None:
            run["plan"] = self.plan
        results = ev.sort_results([self._result_dict(r) for r in self.results])
        out = {
            "schema": ev.SCHEMA,
            "run": run,
            "config": dict(self.config.to_dict(), methods_audited=list(self.methods),
                           **({"findings_audited": list(self.findings)} if self.findings else {}),
                           **({"external_maps": {k: v.describe() for k, v in self.external.items()}}
                              if self.external else {})),
            "models": ev.sort_models(models),
            "dataset": dataset,
            "results": results,
            "diagnosis": diagnose(results),
            **({"controls": controls} if (controls := control_summary(results)) else {}),
            "multiplicity": self._multiplicity(),
            "samples": samples,
        }
        if self.baseline is not None and finished:
            from ..decisions.regression import comparison

            out["comparison"] = comparison(self, out)
        return out

    def _maps_stats(self) -> dict:
        """The map store's counters (summed over the findings' views)."""
        stores = [self._store] + [v._store for v in self._views.values()]
        out: dict = {}
        for store in stores:
            for k, v in (store.stats if store else {}).items():
                out[k] = out.get(k, 0) + v if isinstance(v, (int, float)) else v
        return out

    def _dataset_section(self) -> dict:
        """The evidence's ``dataset``: how it was read and which of its images the criteria used."""
        dataset = {"name": self.dataset_name, "root": self.data_root, **self.dataset_options,
                   "skip_bad_samples": self.skip_bad_samples}
        if self._dataset is not None:
            dataset["root"] = self.data_root or getattr(self._dataset, "root", None)
            dataset["size"] = len(self._dataset)
            dataset.update(self._dataset.info())
            dataset["skipped"] = list(self._dataset.skipped) + (self._store.skipped if self._store else [])
            if self._dataset.unlocalised:
                ids = self._dataset.unlocalised
                dataset["positives_without_lesion"] = {"count": len(ids), "ids": ids[:50]}
        used = self.samples.used()
        if used:
            dataset.update(n_images=len(used), eval_size=list(self.grid()),
                           manifest_sha256=self._manifest(tuple(used)))
        self._sample_thumbnails()  # before the samples' description: thumbnails load what it counts
        dataset.update(self.samples.describe())
        performance = self._performance()
        if performance:
            dataset["primary_accuracy"] = performance
        return dataset

    def _multiplicity(self) -> dict:
        """How the gate's verdicts were decided: the family's summary, or (per verdict) what that allows."""
        if self.family is not None:
            return self.family
        from ..decisions.family import members, summary

        return summary("none", self.config.stats.family_alpha, members(self.results), [])

    def _performance(self) -> dict | None:
        """The primary's accuracy on every audited image (memoised per set of images).

        The localisation criteria audit lesion images only, where a model that calls every image positive
        (the usual symptom of a wrong input size or normalisation) scores 100 %.  When the audited images
        hold one label, the model is also scored on as many label-stratified images (``label_stratified``),
        which only costs forward passes, so the near-chance warning can see it.
        """
        unique = {s.id: s for s in self.samples.all_samples()}
        if not unique or not self.models.is_loaded("primary"):
            return None
        key = tuple(sorted(unique))
        memo = self.__dict__.setdefault("_performance_memo", {})
        if key not in memo:
            try:
                # a finding's view scores the output of its finding against that finding's labels
                index = {"index": self.config.target_class} if self.finding is not None else {}
                perf = self.models.accuracy("primary", [unique[k] for k in key], **index)
                if len(perf["labels"]) < 2:
                    _, check = self.dataset.select(len(key), self.grid(), lesion=False)
                    if len({int(s.label) for s in check}) > 1:
                        perf["label_stratified"] = self.models.accuracy("primary", check, **index)
                memo[key] = perf
            except Exception as exc:  # never lose the evidence over a diagnostic
                memo[key] = {"error": f"{type(exc).__name__}: {one_line(exc)}"}
        return memo[key]

    def _sample_thumbnails(self) -> dict:
        """{sample id: {"image", "truth"}} thumbnails of every audited sample, for the report's overlays."""
        from ..common.thumbs import sample_thumbs

        memo = self.__dict__.setdefault("_thumbs", {})
        for smp in self.samples.all_samples():
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
        # while the run goes on the file is rewritten after every result: compact JSON (the C encoder; an
        # indented dump is pure Python and took 6 s of a 3-minute demo), each result encoded once (it is final);
        # the finished file is indented
        doc = self.evidence(finished)
        if finished:
            ev.write_json(path, doc, indent=1)
        else:
            ev.write_json_encoded(path, doc, self._result_texts_of(doc["results"]))
        return path

    def _result_texts_of(self, dicts: list[dict]) -> list[str | None]:
        """Each result dict as compact JSON, encoded once (None when it holds a non-finite number: the writer's
        guard then sees it); held with the dict, so a result converted again (``refresh``) is encoded again, and
        only while it is in the evidence."""
        import json

        from ..evidence.check import nonfinite

        held, out = {}, []
        for d in dicts:
            got = self._result_texts.get(id(d))
            if got is None or got[0] is not d:
                got = (d, None if nonfinite(d, 1) else json.dumps(d, allow_nan=False))
            held[id(d)] = got
            out.append(got[1])
        self._result_texts = held
        return out
