"""The report's provenance section: models, dataset, run and configuration, all escaped."""
from __future__ import annotations

import datetime as _dt
import shlex

from .markup import N, esc, flatten, fmt, guarded, kv_list, plain, table


# -----------------------------------------------------------------------------------------------
def _models_table(models: list[dict]) -> str:
    head = ["role", "spec", "architecture", "parameters", "classes", "input", "normalisation"]
    body = []
    for m in models:
        extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
        norm = (f"mean {plain(m.get('mean'))}, std {plain(m.get('std'))}"
                if m.get("mean") is not None or m.get("std") is not None else "—")
        size = m.get("input_size")
        size_txt = "×".join(esc(s) for s in size) if isinstance(size, list) and size else plain(size)
        cells = [esc(m.get("role", "—")), f"<code>{esc(m.get('spec', '—'))}</code>", esc(m.get("arch", "—")),
                 N(m.get("n_params"), "d"), N(m.get("num_classes"), "d"),
                 f"{size_txt} × {fmt(m.get('in_channels'))} channel(s)", norm]
        body.append("<tr>" + "".join(f'<td class="num">{c[4:]}</td>' if c.startswith("\x00num") else f"<td>{c}</td>"
                                     for c in cells) + "</tr>")
        derived = extra.get("derived_from_sha256")
        ident = (f"sha256 <code>{esc(m['sha256'])}</code>" if m.get("sha256") else
                 "no file: derived in memory" + (f" from sha256 <code>{esc(derived)}</code>" if derived else ""))
        more = "; ".join(f"{esc(k)} = {plain(v)}" for k, v in flatten(extra) if k != "derived_from_sha256")
        body.append(f'<tr class="expl"><td colspan="{len(head)}">{ident}'
                    + (f"<br>{more}" if more else "") + "</td></tr>")
    return (f'<table class="wide"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _dataset_table(ds: dict) -> str:
    rows = [[esc(k), f"<code>{plain(v)}</code>" if "sha256" in k or k == "root" else plain(v)]
            for k, v in flatten({k: v for k, v in ds.items() if k != "skipped"})]
    out = table(["dataset", "value"], rows)
    skipped = ds.get("skipped") or []
    if skipped:
        srows = [[f"<code>{esc(s.get('id'))}</code>", esc(s.get("reason"))] if isinstance(s, dict)
                 else [f"<code>{esc(s)}</code>", "—"] for s in skipped]
        out += f"<h3>Skipped samples ({len(skipped)})</h3>" + table(["sample", "reason"], srows)
    else:
        out += "<p class='small muted'>No samples were skipped.</p>"
    return out


def _duration(run: dict) -> str:
    try:
        a = _dt.datetime.fromisoformat(str(run.get("started")))
        b = _dt.datetime.fromisoformat(str(run.get("finished")))
        return f"{(b - a).total_seconds():.0f} s"
    except (TypeError, ValueError):
        return "—"


def _run_table(evidence: dict) -> str:
    run = evidence.get("run") or {}
    git = run.get("git")
    if isinstance(git, dict):
        git_txt = f"<code>{esc(git.get('commit'))}</code>" + (" (uncommitted changes)" if git.get("dirty") else
                                                                " (clean)")
    else:
        git_txt = "not recorded (not a git checkout, or git unavailable)"
    argv = run.get("argv")
    if isinstance(argv, list):
        argv_txt = esc(shlex.join(str(a) for a in argv))
    else:
        argv_txt = plain(argv)
    rows = [["evidence schema", esc(evidence.get("schema"))], ["seed", fmt(run.get("seed"))],
            ["command line (argv)", f"<code>{argv_txt}</code>"],
            ["working directory", f"<code>{esc(run.get('cwd'))}</code>"],
            ["started", esc(run.get("started"))], ["finished", esc(run.get("finished") or "— (not finished)")],
            ["duration", _duration(run)], ["git revision", git_txt]]
    rows += [[f"host.{esc(k)}", plain(v)] for k, v in flatten(run.get("host") or {})]
    out = table(["run", "value"], rows)
    versions = run.get("versions") or {}
    if versions:
        out += "<h3>Package versions</h3>" + table(["package", "version"],
                                                     [[esc(k), plain(v)] for k, v in flatten(versions)])
    timings = run.get("timings") or {}
    if timings:
        out += ("<details><summary>Timings</summary>" + table(
            ["step", "value"], [[esc(k), N(v, ".2f") if isinstance(v, float) else plain(v)]
                                for k, v in flatten(timings)]) + "</details>")
    return out


def _config_table(evidence: dict) -> str:
    rows = [[f"<code>{esc(k)}</code>", f"<code>{plain(v)}</code>"] for k, v in flatten(evidence.get("config") or {})]
    out = table(["parameter", "value"], rows)
    params = []
    seen = set()
    for r in evidence.get("results") or []:
        mp = (r.get("details") or {}).get("method_params")
        m = str(r.get("method"))
        if isinstance(mp, dict) and m not in seen:
            seen.add(m)
            params.append([esc(m), kv_list(mp)])
    if params:
        out += "<h3>Parameters of each method, as used</h3>" + table(["method", "parameters"], params)
    return out


def provenance(evidence: dict) -> str:
    return ('<section id="provenance"><h2>Provenance</h2>'
            "<p>Everything needed to reproduce the verdicts: the exact models (by content hash), the audited data "
            "(by manifest hash), every parameter and threshold, the seed, the software versions and the command.</p>"
            "<h3>Models</h3>" + guarded("models table", _models_table, evidence.get("models") or [])
            + "<h3>Dataset</h3>" + guarded("dataset table", _dataset_table, evidence.get("dataset") or {})
            + "<h3>Run</h3>" + guarded("run table", _run_table, evidence)
            + "<h3>Configuration and thresholds</h3>" + guarded("configuration table", _config_table, evidence)
            + "</section>")
