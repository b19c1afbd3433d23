"""pytest glue only: options, configuration, fixtures, parametrization, report hooks.

Everything an audit computes lives in :class:`saliency_audit.Audit`; this
module maps its results onto test outcomes, the terminal verdict table and
the evidence file.  Heavy imports (torch, captum) happen only when an audit
fixture is first used, so installing the plugin costs other pytest runs
nothing.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from ..config import PAPER_METHODS
from ..common.errors import AuditError, AuditUsageError
from ..common.paths import bundled_suite
from ..common.specs import int_option, model_input_overrides

class AuditSession:
    """One per pytest run, kept in ``config.stash``."""

    def __init__(self, config: pytest.Config):
        from ..config import load_config
        from ..methods import resolve_methods

        opt = config.option
        self.pytest_config = config
        from ..engine.external import parse_maps_option

        self.external: dict = {}  # --maps, checked now: a missing folder is a usage error before any test
        for value in opt.saliency_maps or []:
            folder = parse_maps_option(value, set(self.external))
            self.external[folder.name] = folder
        builtin = resolve_methods(opt.saliency_methods) if opt.saliency_methods else (
            () if self.external else PAPER_METHODS)
        controls = (opt.saliency_controls if opt.saliency_controls is not None
                    else opt.saliency_dataset in ("demo", "demo-findings"))
        if controls:  # --controls (the demo's default): the edge, random and oracle maps beside the methods
            from ..methods import CONTROLS

            builtin = tuple(builtin) + tuple(c for c in CONTROLS if c not in builtin)
        self.methods = tuple(builtin) + tuple(self.external)
        overrides: dict = {}
        if opt.saliency_n_images is not None:
            overrides["n_images"] = opt.saliency_n_images
        if opt.saliency_seed is not None:
            overrides["seed"] = opt.saliency_seed
        if opt.saliency_sequential is not None:
            overrides["sequential"] = opt.saliency_sequential
        if opt.saliency_device:
            overrides["device"] = opt.saliency_device
        if opt.saliency_target_class is not None:
            if opt.saliency_target_class == "predicted":
                overrides["explain"] = "predicted"
            else:
                overrides.update(explain="target_class", target_class=int_option(opt.saliency_target_class,
                                                                                  "--target-class"))
        if opt.saliency_output is not None:
            overrides["output"] = opt.saliency_output
        if opt.saliency_class_names is not None:
            from ..models.target import parse_class_names

            overrides["class_names"] = parse_class_names(opt.saliency_class_names)
        overrides.update(model_input_overrides(opt.saliency_input_size, opt.saliency_normalize))
        if opt.saliency_target_layer:
            overrides["methods"] = {"gradcam": {"layer": opt.saliency_target_layer}}
        self.config = load_config(
            pyproject=config.rootpath / "pyproject.toml",
            audit_config=Path(opt.saliency_audit_config) if opt.saliency_audit_config else None,
            overrides=overrides,
        )
        if opt.saliency_n_images is not None:  # "images audited": at most N for every criterion, not only localisation
            for section in (self.config.randomization, self.config.consistency, self.config.completeness):
                section.n_images = min(section.n_images, opt.saliency_n_images)
        from ..common.specs import parse_spec

        parse_spec(opt.saliency_model, "--model")
        for spec in opt.saliency_replicates or []:
            parse_spec(spec, "--replicate")
        for spec in opt.saliency_references or []:
            parse_spec(spec, "--reference-model")
        if opt.saliency_random_label_model:
            parse_spec(opt.saliency_random_label_model, "--random-label-model")
        if self.config.device != "cpu":
            from ..engine.audit import check_device
            from ..common.gpus import pin_worker

            self.config.device = pin_worker(self.config.device)  # pytest-xdist worker gwI: cuda -> cuda:{I mod N}
            check_device(self.config.device)
        from ..data.registry import check_options

        dataset = check_options(opt.saliency_dataset, finding=opt.saliency_finding, split=opt.saliency_split,
                                split_file=opt.saliency_split_file)  # an unknown name or an option it takes not
        if dataset.needs_root and not opt.saliency_data_root:
            raise AuditUsageError(f"--dataset={opt.saliency_dataset} needs --data-root")
        if opt.saliency_data_root and not Path(opt.saliency_data_root).is_dir():
            raise AuditUsageError(f"--data-root={opt.saliency_data_root}: no such directory")
        if opt.saliency_split_file and not Path(opt.saliency_split_file).is_file():
            raise AuditUsageError(f"--split-file={opt.saliency_split_file}: no such file")
        if opt.saliency_human_annotations:
            from ..data.human import detect_format

            detect_format(opt.saliency_human_annotations)  # a missing path or an unknown format: a usage error now
        report = Path(opt.saliency_report)
        self.report_dir = report if report.is_absolute() else config.invocation_params.dir / report
        self._audit = None
        self.worker_evidence: list[dict] = []
        self.current_test: str | None = None  # nodeid of the audit test running now
        self.test_results: dict[str, list[dict]] = {}  # nodeid -> results it recorded
        self.pair_passes: dict[str, int] = {}  # "criterion[subject]" -> image-passes of the pairs decided so far
        self.pair_shares: dict[str, float | None] = {}  # ... and the share of their looks' range they took
        self.run_end: tuple[str, int] | None = None  # (status, pytest exit status), set when the session ends
        self.shard: dict | None = None  # --audit-shard: {"index", "of", "pairs"}
        self.pairs: list[tuple[str, str]] = []  # (criterion, method) of the collected audit tests, in run order
        self._planned = False
        self.evidence_sha256: str | None = None  # of the evidence.json this run wrote last (report footer, JUnit)
        if opt.saliency_shard:
            from ..evidence.merge import parse_shard

            parse_shard(opt.saliency_shard)  # a usage error at start-up
        self.baseline = None
        if opt.saliency_fail_on_regression and not opt.saliency_baseline:
            raise AuditUsageError("--audit-fail-on-regression needs --audit-baseline OLD.json")
        if opt.saliency_baseline:
            from ..evidence.schema import read_baseline

            self.baseline = read_baseline(opt.saliency_baseline)
        if opt.saliency_fail_on_regression and (opt.saliency_shard or getattr(opt, "numprocesses", None)
                                                 or hasattr(config, "workerinput")):
            raise AuditUsageError("--audit-fail-on-regression compares every pair together: run the audit in one "
                                  "process (without --audit-shard or -n)")
        if self.config.stats.multiplicity != "none" and (
                opt.saliency_shard or getattr(opt, "numprocesses", None) or hasattr(config, "workerinput")):
            raise AuditUsageError(f"stats.multiplicity = \"{self.config.stats.multiplicity}\" decides every verdict "
                                  "together: run the audit in one process (without --audit-shard or -n)")
        self._load_user_models(opt)
        if opt.saliency_finding:  # the findings name the tests: a bad one is a usage error before any runs
            self.audit.findings

    def subjects(self) -> tuple[str, ...]:
        """What each audit test runs for: the methods, or with --finding each (method, finding) subject."""
        if not self.pytest_config.option.saliency_finding:
            return self.methods
        from ..common.subjects import subject

        return tuple(subject(m, f) for f in self.audit.findings for m in self.methods)

    def _load_user_models(self, opt) -> None:
        """Load every model given by file now, so a missing file, an unknown architecture or a checkpoint
        that does not fit is a one-line usage error (exit 4) before any test runs; the audit reuses them."""
        roles = [("primary", opt.saliency_model), ("random_label", opt.saliency_random_label_model)]
        roles += [(f"replicate{i}", s) for i, s in enumerate(opt.saliency_replicates or [])]
        roles += [(f"reference{i}", s) for i, s in enumerate(opt.saliency_references or [])]
        for role, spec in roles:
            if spec and not (spec == "demo" or spec.startswith("demo:")):
                self.audit.models.get(role)

    @property
    def audit(self):
        if self._audit is None:
            from ..common import progress

            self._show_progress()  # before the imports: on a busy machine torch alone takes seconds
            progress.note("saliency-audit: starting (torch, then the data and the models)")
            from ..engine.audit import Audit

            opt = self.pytest_config.option
            self._audit = Audit(
                model=opt.saliency_model, dataset=opt.saliency_dataset, data_root=opt.saliency_data_root,
                methods=[m for m in self.methods if m not in self.external], config=self.config,
                report_dir=self.report_dir, maps=list(self.external.values()),
                allow_unsafe_pickle=opt.saliency_allow_unsafe_pickle,
                random_label_model=opt.saliency_random_label_model,
                replicates=opt.saliency_replicates, references=opt.saliency_references,
                strict=opt.saliency_strict,
                dataset_options={"split": opt.saliency_split, "split_file": opt.saliency_split_file},
                findings=opt.saliency_finding,
                skip_bad_samples=opt.saliency_skip_bad,
                human_annotations=opt.saliency_human_annotations,
                argv=list(self.pytest_config.invocation_params.args),
            )
            self._audit.listeners.append(self._on_result)
            if self.baseline is not None:
                self._audit.baseline, self._audit.baseline_name = self.baseline, str(opt.saliency_baseline)
            if self.shard:
                self._audit._run["shard"] = self.shard
        return self._audit

    def _show_progress(self) -> None:
        """Progress bars to the terminal past output capture; none under ``-q`` or in xdist workers."""
        import sys

        from ..common import progress

        config = self.pytest_config
        capman = config.pluginmanager.getplugin("capturemanager")
        started = []

        def write(text: str) -> None:
            with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
                if not started:  # the first line starts below pytest's "audits/test_x.py " prefix
                    started.append(True)
                    text = "\n" + text
                sys.stderr.write(text)
                sys.stderr.flush()

        quiet = config.option.verbose < 0 or hasattr(config, "workerinput")
        progress.configure(enabled=not quiet, write=write)

    def plan(self) -> None:
        """Print the plan before any map is computed (once, when the first audit test starts), and put it in
        the evidence.  Not under pytest-xdist: the count follows the run's order, which is the workers'."""
        if self._planned or not self.pairs or hasattr(self.pytest_config, "workerinput") or \
                self.pytest_config.pluginmanager.hasplugin("dsession"):
            return
        self._planned = True
        from ..common import progress
        from ..common.errors import AuditError
        from ..engine.plan import plan_text

        try:
            plan = self._audit.make_plan(self.pairs)
        except AuditError:  # the first test reports it, with the run's own error handling
            return
        costly = {k.split("[", 1)[0] for k, v in (plan.get("per_pair") or {}).items() if v}
        if len(costly) > 1:  # an estimate will have something left to estimate (engine/estimate.py: ready)
            try:  # its clock, timed before the first map, as cold as the run's first criterion is
                plan["unit_seconds"] = self._audit.unit_seconds(plan)
            except Exception:  # noqa: BLE001 -- a timing that fails must not fail the audit; passes are the clock
                pass
        self._plan_start = (time.perf_counter(), _passes_now())
        progress.note(plan_text(plan))

    def _estimate(self) -> None:
        """Once enough has run (:func:`saliency_audit.engine.estimate.ready`): the time left on this device, from
        the plan's passes to come and the rate of the passes so far (:mod:`saliency_audit.engine.estimate`)."""
        from ..engine.estimate import estimate, estimate_text, ready

        plan = self._audit.plan
        start = getattr(self, "_plan_start", None)
        if plan is None or start is None or "estimate" in plan or getattr(self, "_nothing_left", False):
            return
        spent, seconds = _passes_now() - start[1], time.perf_counter() - start[0]
        if not ready(plan, self.pair_passes, spent, seconds):
            return
        if all(k in self.pair_passes for k in plan.get("per_pair") or {}):
            self._nothing_left = True  # nothing left to estimate (a short run): no line, no timing
            return
        plan["estimate"] = estimate(plan, self.pair_passes, spent, seconds, self.pair_shares)
        from ..common import progress

        progress.note(estimate_text(plan["estimate"]))

    def _on_result(self, result) -> None:
        from ..engine.estimate import look_share

        key = f"{result.criterion}[{result.subject}]"
        self.pair_passes[key] = self.pair_passes.get(key, 0) + int(result.details.get("image_passes", 0))
        self.pair_shares[key] = look_share(result.details)
        if self.current_test is not None:
            self.test_results.setdefault(self.current_test, []).append(result.to_dict())
        self._estimate()

    def evidence(self) -> dict | None:
        """This run's evidence as the writer records it (:func:`~saliency_audit.evidence.check.guard`: a
        non-finite number or a self-contradiction makes it ``failed``), so the terminal's and JUnit's gate
        line read what ``evidence.json`` says."""
        from ..evidence.check import guard

        found = self._evidence()
        return None if found is None else guard(found)

    def _evidence(self) -> dict | None:
        status, code = self.run_end or ("complete", None)
        if self.worker_evidence:  # pytest-xdist's controller (its own audit, if any, only checked --model files)
            from ..evidence.merge import merge_evidence

            merged = merge_evidence(self.worker_evidence)
            merged["run"].update(status=status, exit_status=code)
            if self.baseline is not None:  # pytest-xdist: the controller compares the merged run
                from ..decisions.regression import against

                merged["comparison"] = against(self.baseline, merged, self.config,
                                               str(self.pytest_config.option.saliency_baseline))
            return merged
        if self._audit is not None:
            return self._audit.evidence(finished=True, status=status, exit_status=code)
        return None


session_key = pytest.StashKey[AuditSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from .options import add_options

    add_options(parser)  # only --saliency- names: the short ones belong to audit suites (options.py)


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]):
    """The short option names of an audit run, added once every initial conftest has registered its own options
    (so a name the repository owns stays the repository's, whichever conftest loads first)."""
    from .options import add_short_names, defer, requested

    defer(parser)
    yield
    if requested(parser) or "--saliency-audit" in args:
        add_short_names(parser)


def _audit_run(config: pytest.Config) -> bool:
    """An audit run from the start: --saliency-audit, a --saliency- option, or an audit suite's conftest among the
    initial ones.  Any other run gets an audit only if it collects audit tests (and never otherwise)."""
    from .options import given, requested

    return bool(config.option.saliency_bundled or given(config.invocation_params.args)
                or requested(config._parser))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "saliency_criterion(name): an audit test of the trust criterion NAME (the "
                                       "plugin runs it once per audited method, as its argument 'method')")
    config.addinivalue_line("markers", "saliency_method(name): set by saliency-audit on each audit test it runs for "
                                       "the method NAME")
    if config.option.saliency_bundled:
        _add_bundled_suite(config)
    if _audit_run(config):
        _start(config)


def _start(config: pytest.Config) -> "AuditSession":
    """The run's AuditSession, created now: a bad option is a usage error (exit 4) before any test runs."""
    try:
        config.stash[session_key] = s = AuditSession(config)
    except AuditError as exc:
        if not hasattr(config, "workerinput"):
            _write_startup_failure(config, exc)
        raise pytest.UsageError(str(exc)) from None
    return s


def _add_bundled_suite(config: pytest.Config) -> None:
    """--saliency-audit: collect the bundled suite.  It replaces what pytest would collect by default (testpaths,
    or the invocation folder) and joins test paths given on the command line; the folder is collected as one
    path, so node ids end in ``test_utility.py::test_utility[grad]`` and ``-k`` selects as in ``audits/``.
    Deterministic from the arguments: pytest-xdist workers, which parse them again, collect the same items."""
    suite = bundled_suite()
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = [str(suite)]
        config.args_source = pytest.Config.ArgsSource.ARGS  # the header then says nothing of testpaths
        return
    given = {Path(config.invocation_params.dir, a.split("::")[0]).resolve() for a in config.args}
    if suite not in given:
        config.args = [*config.args, str(suite)]


def _write_startup_failure(config: pytest.Config, exc: AuditError) -> None:
    """Replace the evidence and report of an earlier run with this run's start-up error (and the details that
    do not fit on its line), so a CI gate reading the evidence never judges a stale file."""
    from ..evidence import now
    from ..report.running import mark_running

    opt = config.option
    report = Path(opt.saliency_report)
    report_dir = report if report.is_absolute() else config.invocation_params.dir / report
    # an unwritable report dir is secondary: the usage error is what the user must see (mark_running gives None)
    mark_running(report_dir, opt, argv=list(config.invocation_params.args), finished=now(), status="failed",
                 startup_error=str(exc), startup_error_details=exc.details)


def _passes_now() -> int:
    from ..common.passcount import PASSES

    return PASSES["images"]


def _session(config: pytest.Config) -> AuditSession:
    """The run's AuditSession, started on first need (a run that collects audit tests it did not announce)."""
    s = config.stash.get(session_key, None)
    return s if s is not None else _start(config)


def _item_pair(item) -> tuple[str, str] | None:
    """(test function name, method) of an audit test (one the plugin parametrized over the methods, which marks
    it ``saliency_method``); None for any other test, whatever its arguments."""
    mark = item.get_closest_marker("saliency_method")
    if mark is None or not mark.args:
        return None
    return item.originalname, str(mark.args[0])


def _criterion_of(item) -> str:
    """The criterion an audit test checks: its ``saliency_criterion`` marker's, else its name's (``test_<name>``)."""
    mark = item.get_closest_marker("saliency_criterion")
    return str(mark.args[0]) if mark is not None and mark.args else item.originalname.removeprefix("test_")


def _pairs(items: list) -> list[tuple[str, str]]:
    """(criterion, method) of the audit tests among ``items``, in their order."""
    from ..common.criteria_registry import CRITERIA

    out = []
    for item in items:
        pair = _item_pair(item)
        if pair is None:
            continue
        name = _criterion_of(item)
        if name in CRITERIA and (name, pair[1]) not in out:
            out.append((name, pair[1]))
    return out


@pytest.hookimpl(trylast=True)  # after -k / -m: every shard splits the same selection
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    s = config.stash.get(session_key, None)
    if s is None:
        if not any(_item_pair(item) for item in items):
            return  # no audit test: the run is none of the plugin's business
        s = _start(config)
        if not hasattr(config, "workerinput"):  # started after pytest_sessionstart: mark the evidence now
            from ..report.running import mark_running

            mark_running(s.report_dir, config.option, s.config)
    if config.option.saliency_shard:
        _shard(config, s, items)
    s.pairs = _pairs(items)
    if s.pairs and not config.option.collectonly:
        _cheapest_first(s, items)
        s.pairs = _pairs(items)
    if not config.option.saliency_human_annotations:  # a criterion that needs them is absent: never planned
        from ..common.criteria_registry import CRITERIA, absent

        s.pairs = [(c, m) for c, m in s.pairs if absent(CRITERIA[c], set()) is None]


def _cheapest_first(s: "AuditSession", items: list) -> None:
    """Run the audit tests cheapest criterion first (by the plan's passes, :meth:`Audit.criteria_order`), so a
    cold run's first verdicts come after the cheap maps, not after ROAD and the cascade; within a criterion,
    and for every other test, the collected order stays.  Needs the audit loaded: a startup error leaves the
    order alone for the first test to report."""
    from ..common.errors import AuditError

    try:
        order = s.audit.criteria_order(s.pairs)
    except AuditError:
        return
    except Exception:  # noqa: BLE001 -- the order is a convenience: a fault in it must not stop the audit
        from ..common import progress

        progress.note("saliency-audit: could not order the audit tests cheapest first; they run in file order")
        return
    rank = {c: i for i, c in enumerate(order)}
    slots = [i for i, item in enumerate(items) if _item_pair(item) is not None]
    audit_items = sorted((items[i] for i in slots), key=lambda item: rank.get(_criterion_of(item), len(rank)))
    for i, item in zip(slots, audit_items):  # sorted() is stable: methods keep their order
        items[i] = item


def _shard(config: pytest.Config, s, items: list) -> None:
    from ..evidence.merge import parse_shard, shard_of

    index, count = parse_shard(config.option.saliency_shard)
    planned = sorted({p for p in map(_item_pair, items) if p})  # every shard records the whole selection
    mine = shard_of(set(planned), index, count)
    keep = [item for item in items if _item_pair(item) is None or _item_pair(item) in mine]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    s.shard = {"index": index, "of": count, "pairs": [f"{t}[{m}]" for t, m in sorted(mine)],
               "planned": [f"{t}[{m}]" for t, m in planned]}
    if s._audit is not None:
        s._audit._run["shard"] = s.shard


_PARAMETRIZED = pytest.StashKey[bool]()


def parametrize_methods(metafunc: pytest.Metafunc) -> None:
    """Run an audit test once per audited method (its argument ``method``), each marked ``saliency_method``."""
    if metafunc.definition.stash.get(_PARAMETRIZED, False):
        return
    metafunc.definition.stash[_PARAMETRIZED] = True
    try:
        subjects = _session(metafunc.config).subjects()
    except AuditError as exc:
        raise pytest.UsageError(str(exc)) from None
    metafunc.parametrize("method", [pytest.param(m, id=m, marks=pytest.mark.saliency_method(m)) for m in subjects])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Only a test marked ``saliency_criterion`` (anywhere) is an audit test here; an audit suite's folder makes
    every test of its own that takes ``method`` one (saliency_audit/suite/hooks.py).  Any other test, whatever
    its arguments, is left as it is."""
    if metafunc.definition.get_closest_marker("saliency_criterion") is not None:
        if "method" not in metafunc.fixturenames:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: an audit test (@pytest.mark.saliency_criterion) "
                                    "takes the argument 'method'")
        parametrize_methods(metafunc)


@pytest.fixture(scope="session")
def saliency_audit(request: pytest.FixtureRequest):
    """The run's :class:`saliency_audit.Audit` (models and data load lazily on first use)."""
    try:
        s = _session(request.config)
        audit = s.audit
    except AuditError as exc:
        raise pytest.UsageError(str(exc)) from None
    s.plan()
    audit.decide_family(s.pairs)  # stats.multiplicity: every verdict now (in no test's name), then each test's
    if request.config.option.saliency_fail_on_regression and not getattr(audit, "_regression_gated", False):
        from ..decisions.regression import gate

        audit._regression_gated = True
        gate(audit, s.pairs)
    return audit


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # pytest-xdist: `-n auto --device cuda` = one worker per GPU
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    from ..common.gpus import auto_workers

    return auto_workers(config.option.saliency_device)  # None: pytest-xdist's own count


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown (and never called) without xdist
def pytest_testnodedown(node, error) -> None:
    data = getattr(node, "workeroutput", {}).get("saliency_audit_evidence")
    if data:
        parts = _session(node.config).worker_evidence
        parts.append(json.loads(data))
        # the merged config is the first part's: the lowest GPU's (cuda:0), not whichever worker ended first
        parts.sort(key=lambda e: (len(e["config"].get("device", "")), e["config"].get("device", "")))


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file: the evidence's sha256 is one of its properties
def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    s = session.config.stash.get(session_key, None)
    if s is None:
        return
    s.run_end = (run_status(session, exitstatus), int(exitstatus))
    plan, start = (s._audit.plan if s._audit is not None else None), getattr(s, "_plan_start", None)
    if plan is not None and start is not None:  # what the estimate is judged against (engine/estimate.py)
        plan["seconds_after_plan"] = round(time.perf_counter() - start[0], 1)
    if hasattr(session.config, "workerinput"):  # xdist worker: hand the evidence to the controller
        if s._audit is not None:
            session.config.workeroutput["saliency_audit_evidence"] = json.dumps(s.evidence())
        return
    evidence = s.evidence()  # this process's audit, or (pytest-xdist's controller) its workers' merged
    if evidence is not None:
        from ..evidence import write_json

        s.evidence_sha256 = write_json(s.report_dir / "evidence.json", evidence)
        _write_html(evidence, s.report_dir, s.evidence_sha256, _cache_dir(s))
    else:  # nothing audited: the "running" mark of pytest_sessionstart becomes how the run ended
        from ..report.running import mark_running

        s.evidence_sha256 = mark_running(s.report_dir, session.config.option, s.config, s.run_end)
    _junit_gate(session.config, evidence, s.evidence_sha256)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    s = config.stash.get(session_key, None)
    if s is not None and s._audit is not None:
        from ..common import progress

        progress.configure()  # back to the environment's default (an in-process pytester run must not leak it)
    if s is not None and s._audit is None and s.worker_evidence and not hasattr(config, "workerinput") \
            and s.evidence_sha256 is None:  # the session did not finish (pytest_sessionfinish writes it)
        from ..evidence import write_json
        from ..evidence.merge import merge_evidence

        evidence = merge_evidence(s.worker_evidence)
        _write_html(evidence, s.report_dir, write_json(s.report_dir / "evidence.json", evidence), _cache_dir(s))


def run_status(session: pytest.Session, exitstatus) -> str:
    """``complete`` when every selected test ran (failures are verdicts), ``interrupted`` after Ctrl-C,
    ``-x``/``--maxfail`` or another early stop, ``failed`` when pytest itself failed."""
    code = int(exitstatus)
    if code == pytest.ExitCode.INTERRUPTED or session.shouldstop or session.shouldfail:
        return "interrupted"
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        return "failed"
    return "complete"


def _junit_gate(config: pytest.Config, evidence: dict | None, evidence_sha256: str | None = None) -> None:
    """The gate line as ``<testsuite>`` properties of ``--junitxml`` (CI dashboards read it), and what was audited
    by content hash: the models, the dataset manifest and the evidence file just written."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None or not evidence:
        return
    if evidence["results"]:
        from ..report.gate import gate_of

        outcome, text = gate_of(evidence)
        xml.add_global_property("saliency_audit.gate", outcome)
        xml.add_global_property("saliency_audit.gate_text", text)
    from .pytest_extras import suite_properties

    for name, value in suite_properties(evidence, evidence_sha256):
        xml.add_global_property(name, value)


def _write_html(evidence: dict, report_dir: Path, evidence_sha256: str | None = None, cache_dir=None) -> None:
    """The report beside ``report_dir/evidence.json``; ``evidence_sha256``: that file's hash, for the footer;
    ``cache_dir``: the run's cache, where the report's figures are kept by content (a warm run draws none)."""
    from ..report.html import write_html

    write_html(evidence, report_dir / "saliency-audit.html", evidence_sha256, figure_cache=cache_dir)


def _cache_dir(s: "AuditSession"):
    """The run's cache folder (the maps' and the report figures')."""
    from ..common.paths import cache_root

    return Path(s.config.cache_dir) if s.config.cache_dir else cache_root()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    s = item.config.stash.get(session_key, None)
    if s is not None:
        s.current_test = item.nodeid
    try:
        yield
    finally:
        if s is not None:
            s.current_test = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    s = item.config.stash.get(session_key, None)
    if s is None or call.when != "call" or item.nodeid not in s.test_results:
        return
    from . import pytest_extras

    results = s.test_results.pop(item.nodeid)
    report = outcome.get_result()
    props = pytest_extras.properties(results)
    item.user_properties.extend(props)  # --junitxml writes <property> from the teardown report's (the item's) list
    if report.user_properties is not item.user_properties:
        report.user_properties.extend(props)
    try:
        from pytest_html import extras
    except ImportError:
        return
    added = [extras.html(pytest_extras.summary_table(results))]
    for r in results:
        thumb = pytest_extras.thumbnail(r)
        if thumb:
            added.append(extras.png(thumb, name=f"{r['criterion']} {r['method']}"))
    report.extras = list(getattr(report, "extras", [])) + added


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """In an audit run, the short option names this repository owns: their values are its own, not the audit's."""
    from .options import owned_names

    if config.stash.get(session_key, None) is None:
        return None
    return [f"saliency-audit: {short} is this repository's option; the audit reads {name}"
            for short, name in sorted(owned_names(config._parser).items())] or None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Provenance for pytest-html's environment table (pytest-metadata), before pytest-html reads it; the
    controller marks the evidence ``running`` before the first test (saliency_audit/report/running.py)."""
    s = session.config.stash.get(session_key, None)
    if s is not None and not hasattr(session.config, "workerinput"):
        from ..report.running import mark_running

        mark_running(s.report_dir, session.config.option, s.config)
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    if s is not None and metadata_key in session.config.stash:
        from .pytest_extras import environment

        session.config.stash[metadata_key].update(environment(session.config.option, s.config))


@pytest.hookimpl(optionalhook=True)  # a pytest-html hook
def pytest_html_results_summary(prefix, summary, postfix, session) -> None:
    s = session.config.stash.get(session_key, None)
    if s is None:
        return
    from html import escape

    postfix.append(f"<p>saliency-audit evidence: {escape(str(s.report_dir / 'evidence.json'))}; report: "
                   f"{escape(str(s.report_dir / 'saliency-audit.html'))}</p>")
    evidence = s.evidence()
    if evidence:  # what was audited, by content hash (known only once the models are loaded)
        from .pytest_extras import provenance_rows

        postfix.append(provenance_rows(evidence))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    s = config.stash.get(session_key, None)
    if s is None:
        return
    evidence = s.evidence()
    if not evidence or not evidence["results"]:
        return
    from ..report.accuracy import summary as accuracy_summary
    from ..report.gate import gate_of
    from ..report.table import verdict_table
    from ..report.warnings import collect as collect_warnings

    from ..common.printable import printable

    tr = terminalreporter

    def write(text, **markup):  # names, ids and messages come from models, data and --maps: no control codes
        tr.write_line(printable(text), **markup)

    tr.section("saliency-audit verdicts")
    for line in verdict_table(evidence["results"]):
        write(line)
    outcome, text = gate_of(evidence)
    write(f"gate: {text}", bold=True, red=outcome == "fail", green=outcome == "pass",
          yellow=outcome == "pass" and "not evaluated" in text)
    accuracy = accuracy_summary(evidence.get("dataset", {}).get("primary_accuracy"))
    if accuracy:
        write(f"model: {accuracy}")
    for warning in collect_warnings(evidence):
        write(f"warning: {warning}", yellow=True)
    write(f"evidence: {s.report_dir / 'evidence.json'}")
    write(f"report:   {s.report_dir / 'saliency-audit.html'}")
