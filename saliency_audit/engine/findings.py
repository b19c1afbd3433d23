"""The finding axis: a model with one output per finding, audited per finding in one run.

``--finding=Pneumothorax,Nodule`` (or ``all``) makes each audit test run once per (method, finding) subject
(``utility[gradcam-Pneumothorax]``, :mod:`saliency_audit.common.subjects`).  Each finding is audited by a
*view* of the run's :class:`~saliency_audit.engine.audit.Audit`: the same models (loaded once), the dataset
adapter built for that finding (an image is positive when it has the finding; its ground truth is that
finding's masks or boxes only), the model output named after it (ModelInfo.class_names, ``--class-names``), and
a map store of its own (maps are keyed by the output explained).  A view records its results with the run,
which writes one evidence file with every finding's verdicts, each carrying its ``finding``.

Nothing here is specific to a criterion: every criterion sees a view as it sees a single-label run.
"""
from __future__ import annotations

import copy

from ..common.errors import AuditUsageError
from ..common.subjects import canonical, subject


def _requested(request) -> list[str]:
    values = [request] if isinstance(request, str) else list(request or ())
    return [v.strip() for value in values for v in str(value).split(",") if v.strip()]


def resolve_findings(audit, request) -> tuple[str, ...]:
    """The findings ``request`` names (comma-separated or a list; ``all``: every finding the dataset can audit
    that the model has an output for), in the data's spelling; a one-line usage error for a name the dataset
    does not hold."""
    from ..data.registry import dataset as dataset_spec

    wanted = _requested(request)
    if not wanted:
        return ()
    spec = dataset_spec(audit.dataset_name)
    if not spec.finding:
        from ..data.registry import check_options

        check_options(audit.dataset_name, finding=",".join(wanted))  # the usage error naming the datasets
    options = {k: v for k, v in audit.dataset_options.items() if k not in ("finding", "split", "split_file")}
    available = list(spec.adapter_class().findings(audit.data_root, **options))
    by_name = {canonical(f): f for f in available}
    out: list[str] = []
    dropped: list[dict] = []
    for name in wanted:
        if name.lower() == "all":
            names = _model_names(audit)
            for f in available:
                if names is not None and canonical(f) not in {canonical(n) for n in names if n}:
                    dropped.append({"finding": f, "reason": "the model has no output of that name"})
                elif f not in out:
                    out.append(f)
            continue
        found = by_name.get(canonical(name))
        if found is None:
            raise AuditUsageError(f"--finding={name}: not a finding of --dataset={audit.dataset_name} "
                                  f"(it has {', '.join(available) or 'none'})")
        if found not in out:
            out.append(found)
    if not out:
        raise AuditUsageError(f"--finding={','.join(wanted)}: no finding of --dataset={audit.dataset_name} is an "
                              f"output of the model (the data has {', '.join(available) or 'none'})")
    if audit.external and len(out) > 1:
        raise AuditUsageError(f"--maps: a folder of maps explains one finding; audit it with one --finding "
                              f"(this names {', '.join(out)})")
    audit.findings_left_out = dropped
    return tuple(out)


def _model_names(audit) -> tuple[str, ...] | None:
    return audit.models.get("primary").info.class_names


def output_index(audit, finding: str) -> int:
    """The primary model's output column for ``finding``: the output of that name; without output names, the
    configured ``target_class`` when the run audits one finding (a one-finding classifier)."""
    model = audit.models.get("primary")
    names = model.info.class_names
    if names:
        hits = [i for i, n in enumerate(names) if n and canonical(n) == canonical(finding)]
        if len(hits) == 1:
            return hits[0]
        shown = ", ".join(n for n in names if n)
        raise AuditUsageError(f"--finding={finding}: the model {model.info.spec} has "
                              f"{'several outputs' if hits else 'no output'} of that name (its outputs: {shown}); "
                              f"name them with --class-names")
    if len(audit.findings) == 1:
        return int(audit.config.target_class)
    raise AuditUsageError(f"--finding: the model {model.info.spec} does not name its {model.info.num_classes} "
                          f"outputs; give --class-names (one name per output) to audit several findings")


#: what a view shares with its run (everything else it holds is its own: config, dataset, samples, maps,
#: results and every memo)
_SHARED = ("models", "methods", "external", "timings", "_run", "strict", "skip_bad_samples", "dataset_name",
           "data_root", "model_spec", "human_annotations")


def make_view(audit, finding: str):
    """The audit of ``finding`` alone (see the module docstring)."""
    from ..data.samplesets import SampleSets

    index = output_index(audit, finding)
    view = object.__new__(type(audit))
    view.__dict__.update({k: audit.__dict__[k] for k in _SHARED})
    view.config = copy.deepcopy(audit.config)
    view.config.target_class = index
    view.config.explain = "target_class"  # a finding names its output: no "predicted" class
    view.dataset_options = {**audit.dataset_options, "finding": finding}
    view.report_dir = None
    view.results, view._result_dicts, view._result_texts, view.listeners = [], {}, {}, []
    view.plan, view.decided, view.family, view.baseline, view.baseline_name = None, {}, None, None, ""
    view._dataset = view._store = view._ctx = None
    view.finding, view.parent = finding, audit
    view._finding_request, view._findings, view._views = None, (), {}
    view.samples = SampleSets(view.config, lambda: view.dataset, view.models.grid,
                              name=f"{audit.dataset_name} --finding={finding}", timings=audit.timings,
                              size_source=view.models.grid_source)
    return view


def pairs_per_finding(audit, pairs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """{finding: its (criterion, method) pairs} of the run's (criterion, subject) pairs (a subject that names
    no audited finding left out)."""
    from ..common.subjects import split

    per: dict[str, list] = {}
    for criterion, value in pairs:
        method, finding = split(value, audit.methods, audit.findings)
        if finding is not None:
            per.setdefault(finding, []).append((criterion, method))
    return per


def _per_pair(plans: dict[str, dict], key: str) -> dict[str, int]:
    """Each view's ``plan[key]`` ("criterion[method]" -> passes) keyed by the run's subjects."""
    return {f"{k.split('[', 1)[0]}[{subject(k.split('[', 1)[1][:-1], f)}]": v
            for f, p in plans.items() for k, v in p[key].items()}


def plan_findings(audit, pairs: list[tuple[str, str]]) -> dict:
    """The run's plan: each finding's view plans its own pairs; passes add up, images are per finding."""
    plans = {f: audit.view(f).make_plan(p) for f, p in pairs_per_finding(audit, pairs).items()}
    if not plans:
        return {"pairs": 0, "methods": [], "criteria": [], "findings": [], "image_passes": 0, "per_pair": {},
                "models": {}, "images": {}, "exact": True}
    first = next(iter(plans.values()))
    out = {k: v for k, v in first.items() if k not in ("per_pair", "images", "pairs", "image_passes",
                                                         "image_passes_least", "per_pair_least", "per_pair_work",
                                                         "per_pair_work_least", "not_estimated")}
    out.update(pairs=len(pairs), methods=sorted({m for p in plans.values() for m in p["methods"]}),
               criteria=sorted({c for p in plans.values() for c in p["criteria"]}),
               exact=all(p["exact"] for p in plans.values()), findings=list(plans),
               image_passes=sum(p["image_passes"] for p in plans.values()),
               per_pair=_per_pair(plans, "per_pair"),
               images={k: sum(p["images"].get(k, 0) for p in plans.values()) for k in first["images"]},
               images_per_finding={f: p["images"] for f, p in plans.items()})
    if all("image_passes_least" in p for p in plans.values()):
        out["image_passes_least"] = sum(p["image_passes_least"] for p in plans.values())
        out["per_pair_least"] = _per_pair(plans, "per_pair_least")
    for key in ("per_pair_work", "per_pair_work_least"):
        if all(key in p for p in plans.values()):
            out[key] = _per_pair(plans, key)
    unknown = sorted({u for p in plans.values() for u in p.get("not_estimated", ())})
    if unknown:
        out["not_estimated"] = unknown
    return out


def dataset_section(audit) -> dict:
    """The evidence's ``dataset`` of a run with findings: how it was read, and per finding what its view used."""
    options = {k: v for k, v in audit.dataset_options.items() if k != "finding"}
    out = {"name": audit.dataset_name, "root": audit.data_root, **options,
           "skip_bad_samples": audit.skip_bad_samples, "findings_audited": list(audit.findings)}
    left_out = getattr(audit, "findings_left_out", None)
    if left_out:
        out["findings_left_out"] = left_out
    per = {f: v._dataset_section() for f, v in audit._views.items()}
    if per:
        out["findings"] = per
        sizes = [d["eval_size"] for d in per.values() if "eval_size" in d]
        if sizes:
            out["eval_size"] = sizes[0]
    return out


def finding_samples(audit) -> dict:
    """{sample id: {"image", "truth": None, "truths": {finding: truth}}}: one image, each finding's truth."""
    out: dict = {}
    for finding, view in audit._views.items():
        for sid, thumb in view._sample_thumbnails().items():
            entry = out.setdefault(sid, {"image": thumb.get("image"), "truth": None, "truths": {}})
            entry["truths"][finding] = thumb.get("truth")
    return dict(sorted(out.items()))
