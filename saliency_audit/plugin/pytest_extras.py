"""What an audit test carries into the pytest ecosystem: JUnit properties, pytest-html extras and environment rows.

Every string that comes from the evidence (ids, specs, explanations) is
escaped before it becomes HTML.
"""
from __future__ import annotations

from html import escape
from ..common.subjects import of


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def properties(results: list[dict]) -> list[tuple[str, str]]:
    """JUnit ``<property>`` pairs: one group per criterion result recorded by the test."""
    out = []
    for r in results:
        p = "saliency_audit." if len(results) == 1 else f"saliency_audit.{r['criterion']}.{of(r)}."
        ci = r.get("ci") or [None, None]
        base = r.get("baseline") or {}
        for key, value in (("criterion", r["criterion"]), ("method", r["method"]), ("finding", r.get("finding")),
                           ("verdict", r["verdict"]),
                           ("statistic", r.get("statistic")), ("value", r.get("value")), ("bound", r.get("bound")),
                           ("ci_low", ci[0]), ("ci_high", ci[1]), ("threshold", r.get("threshold")),
                           ("n", r.get("n")), ("baseline", base.get("name")), ("baseline_value", base.get("value"))):
            if value is not None:
                out.append((p + key, _fmt(value)))
    return out


def summary_table(results: list[dict]) -> str:
    """An HTML table of a test's numbers (pytest-html row extra)."""
    rows = []
    for r in results:
        ci = r.get("ci") or [None, None]
        base = r.get("baseline") or {}
        rows.append(
            "<tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in (
                r["criterion"], r["method"], r["verdict"].upper(), r.get("statistic"), r.get("value"),
                f"[{_fmt(ci[0])}, {_fmt(ci[1])}]", r.get("bound"), r.get("threshold"),
                f"{base.get('name', '-')} {_fmt(base.get('value'))}" if base else "-", r.get("n"))) + "</tr>"
            + f"<tr><td colspan='10'>{escape(r.get('explanation') or '')}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("criterion", "method", "verdict", "statistic", "value", "CI",
                                             "bound", "threshold", "baseline", "n"))
    return f"<table class='saliency-audit'><tr>{head}</tr>{''.join(rows)}</table>"


def thumbnail(result: dict) -> str | None:
    """A base64 PNG that shows the result: the median image's map (utility) or the reference map."""
    d = result.get("details") or {}
    thumbs = d.get("thumbnails") or {}
    if thumbs and result.get("per_image"):
        ranked = sorted((p for p in result["per_image"] if p["id"] in thumbs), key=lambda p: p["score"])
        if ranked:
            return thumbs[ranked[len(ranked) // 2]["id"]]
    ref = d.get("reference_thumbnails") or {}
    return next(iter(ref.values()), None)


def environment(opt, config) -> dict[str, str]:
    """Provenance rows for pytest-html's environment table (known before anything is computed)."""
    from ..evidence import git_revision, versions

    rows = {
        "saliency-audit model": opt.saliency_model,
        "saliency-audit dataset": f"{opt.saliency_dataset}" + (f" at {opt.saliency_data_root}"
                                                               if opt.saliency_data_root else ""),
        "saliency-audit methods": opt.saliency_methods or "paper's 8",
        "saliency-audit seed": str(config.seed),
        "saliency-audit device": config.device,
        "saliency-audit thresholds": (f"utility AP-prior > 0 (alpha {config.utility.alpha}), min AP "
                                      f"{config.utility.min_ap}; randomization head d >= "
                                      f"{config.randomization.head_min}, all d >= {config.randomization.all_min}; "
                                      f"label d >= {config.randomization.label_min}; consistency SSIM >= "
                                      f"{config.consistency.min_ssim}"),
    }
    for role, specs in (("replicate", opt.saliency_replicates), ("reference model", opt.saliency_references)):
        if specs:
            rows[f"saliency-audit {role}"] = ", ".join(specs)
    git = git_revision()
    if git:
        rows["saliency-audit git"] = git["commit"] + (" (uncommitted changes)" if git["dirty"] else "")
    v = versions()
    rows["saliency-audit versions"] = ", ".join(f"{k} {v[k]}" for k in ("saliency_audit", "torch", "captum") if k in v)
    return rows


def provenance_rows(evidence: dict) -> str:
    """The audited models and data by content hash, for pytest-html's summary."""
    rows = []
    for m in evidence.get("models", []):
        derived = (m.get("extra") or {}).get("derived_from_sha256", "-")
        rows.append((m.get("role"), m.get("spec"), m.get("sha256") or f"derived from {derived}"))
    ds = evidence.get("dataset", {})
    rows.append(("dataset", f"{ds.get('name')} {ds.get('root') or ''}".strip(), ds.get("manifest_sha256") or "-"))
    body = "".join(f"<tr><td>{escape(str(a))}</td><td>{escape(str(b))}</td><td><code>{escape(str(c))}</code></td></tr>"
                   for a, b, c in rows)
    return f"<table class='saliency-audit'><tr><th>role</th><th>spec</th><th>sha256</th></tr>{body}</table>"


def suite_properties(evidence: dict, evidence_sha256: str | None = None) -> list[tuple[str, str]]:
    """JUnit ``<testsuite>`` properties naming what was audited by content: every model with a sha256
    (``saliency_audit.model.<role>.sha256`` and ``.spec``; primary first; a role held by several models is
    numbered in the evidence's order, ``replicate0``, ``replicate1``), the dataset's name, image count and
    manifest hash, and the evidence file's own sha256.  Only what the evidence already holds: a model the run
    never loaded has no hash and no property."""
    from ..evidence import sort_models

    out = []
    models = sort_models([m for m in evidence.get("models") or [] if isinstance(m, dict) and m.get("sha256")
                          and "role" in m and "spec" in m])
    roles = [str(m["role"]) for m in models]
    seen: dict[str, int] = {}
    for m, role in zip(models, roles):
        key = role
        if roles.count(role) > 1:
            key = f"{role}{seen.get(role, 0)}"
            seen[role] = seen.get(role, 0) + 1
        out += [(f"saliency_audit.model.{key}.sha256", str(m["sha256"])),
                (f"saliency_audit.model.{key}.spec", str(m["spec"]))]
    ds = evidence.get("dataset") or {}
    for key in ("name", "manifest_sha256", "n_images"):
        if ds.get(key) is not None:
            out.append((f"saliency_audit.dataset.{key}", _fmt(ds[key])))
    if evidence_sha256:
        out.append(("saliency_audit.evidence_sha256", evidence_sha256))
    return out
