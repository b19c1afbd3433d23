"""The standalone HTML report: one self-contained file rendered from the evidence alone.

``render(evidence)`` gives the page as a string, ``write_html(evidence,
path)`` writes it.  The page needs no JavaScript and no network: styles are
inline, figures are PNG ``data:`` URIs, and a Content-Security-Policy forbids
anything else.  Every string taken from the evidence is escaped; base64
payloads are checked before they reach a ``src`` attribute.  Rendering is
deterministic (no clock, no random numbers, PNGs without metadata), so the
same evidence always gives the same bytes and the report can be rebuilt
later with ``saliency-audit report evidence.json``.

A part that cannot be drawn becomes a short note in the page; rendering a
valid evidence dict never raises.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..criteria.controls import control_of
from ..common.criteria_registry import CRITERIA as REGISTRY
from . import comparison, controls, cost, faithfulness, figures, interpretability, randomization
from .markup import VERDICTS, N, esc, figure, flatten, fmt, fmt_ci, guarded, note, plain, table, verdict_of
from .gate import gate_of
from .table import bound_text
from .warnings import collect as collect_warnings
from .provenance import provenance

CRITERIA = tuple(REGISTRY)  # the contract order
TITLES = {name: spec.title for name, spec in REGISTRY.items()}

CSS = """
:root{--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#c62828;--fail-bg:#ffe3e3;--error:#9a5b00;--error-bg:#fff1c2;
--skipped:#57606a;--skipped-bg:#eef1f4;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:#1f2328;background:#fff}
header,main,footer,nav{max-width:1180px;margin:0 auto;padding:0 24px}
header{padding-top:20px}
h1{font-size:24px;margin:0 0 8px}
h2{font-size:19px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:20px 0 6px}
p{margin:6px 0}.muted{color:var(--muted)}.small{font-size:12px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere}
nav{font-size:13px;margin-top:8px}nav a{margin-right:14px;color:#0550ae;text-decoration:none}
.banner{margin:10px 0;padding:12px 16px;border:2px solid var(--fail);background:var(--fail-bg);color:var(--fail);
font-weight:700;border-radius:6px}
.gate{display:inline-block;margin:10px 0;padding:8px 14px;border-radius:6px;font-weight:600;border:1px solid}
.gate.pass{color:var(--pass);background:var(--pass-bg)}.gate.fail{color:var(--fail);background:var(--fail-bg)}
.gate.none{color:var(--skipped);background:var(--skipped-bg)}
.warnings{margin:4px 0 10px;padding:6px 12px;border-radius:6px;background:var(--error-bg);color:#5c3b00;font-size:13px}
.warnings ul{margin:2px 0 0;padding-left:18px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.wide{width:100%}
#verdict-matrix th,#verdict-matrix td{text-align:center;min-width:76px}
#verdict-matrix th.row{text-align:left;white-space:nowrap}
#verdict-matrix .vt{display:block;font-weight:700;letter-spacing:.03em}
#verdict-matrix .hl{display:block;font-size:12px;font-variant-numeric:tabular-nums}
#verdict-matrix .lb{display:block;font-size:11px;color:var(--muted)}
.v-pass{background:var(--pass-bg);color:var(--pass)}.v-fail{background:var(--fail-bg);color:var(--fail)}
.v-error{background:var(--error-bg);color:var(--error)}.v-skipped{background:var(--skipped-bg);color:var(--skipped)}
.v-none{color:var(--muted)}
.verdict{font-weight:700;white-space:nowrap}
tr.expl td{border-top:none;color:#32383f;font-size:12px;background:#fbfcfd}
figure{margin:14px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:12.5px;color:#32383f;max-width:900px;margin-top:4px}
.note{font-size:12.5px;color:var(--error);background:var(--error-bg);padding:4px 8px;border-radius:4px;
display:inline-block}
details{margin:6px 0 10px}summary{cursor:pointer;color:#0550ae;font-size:13px}
pre{white-space:pre-wrap;font-size:11.5px;background:#f6f8fa;padding:8px;border-radius:4px;overflow-wrap:anywhere}
ul.kv{margin:0;padding-left:16px;font-size:12px}
.rule{font-size:13px;background:#f6f8fa;border-left:3px solid var(--line);padding:6px 10px;margin:8px 0}
footer{margin-top:40px;padding-bottom:30px;font-size:12px;color:var(--muted);border-top:1px solid var(--line)}
@media print{nav{display:none}figure,table{break-inside:avoid}summary{color:inherit;font-weight:600;list-style:none}}
@media print{details::details-content{display:block;content-visibility:visible}}
""" + faithfulness.CSS + cost.CSS + controls.CSS

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


# -- evidence access -------------------------------------------------------------------------------------------
def ordered(evidence: dict) -> tuple[list[str], list[str]]:
    """Criteria (contract order, then unknown ones) and methods (as audited, then any other) present."""
    results = evidence.get("results") or []
    crit = [c for c in CRITERIA if any(r.get("criterion") == c for r in results)]
    crit += sorted({str(r.get("criterion")) for r in results} - set(crit))
    audited = (evidence.get("config") or {}).get("methods_audited") or []
    methods = [str(m) for m in audited if any(r.get("method") == m for r in results)]
    for r in results:
        if str(r.get("method")) not in methods:
            methods.append(str(r.get("method")))
    return crit, methods


def of(evidence: dict, criterion: str) -> list[dict]:
    _, methods = ordered(evidence)
    rs = [r for r in evidence.get("results") or [] if str(r.get("criterion")) == criterion]
    return sorted(rs, key=lambda r: (methods.index(str(r.get("method"))), str(r.get("model", ""))))


def counts(results: list[dict]) -> dict[str, int]:
    return {v: sum(verdict_of(r) == v for r in results) for v in VERDICTS}


def primary(evidence: dict) -> dict:
    models = evidence.get("models") or []
    return next((m for m in models if m.get("role") == "primary"), models[0] if models else {})


# -- page parts -----------------------------------------------------------------------------------------------
def header(evidence: dict) -> str:
    results = evidence.get("results") or []
    run = evidence.get("run") or {}
    ds = evidence.get("dataset") or {}
    m = primary(evidence)
    c = counts([r for r in results if not control_of(r)])
    n_controls = sum(1 for r in results if control_of(r))
    sha = m.get("sha256")
    auto = ((m.get("extra") if isinstance(m.get("extra"), dict) else {}) or {}).get("auto_arch") if m else None
    auto = f", recognised by its weights and rebuilt from its {esc(auto.get('from'))}" if (
        isinstance(auto, dict) and auto.get("arch")) else ""  # a bare PATH (saliency_audit.models.autoarch)
    model = (f"<b>{esc(m.get('spec', 'unknown'))}</b> ({esc(m.get('arch', 'unknown architecture'))}{auto}"
             + (f", sha256 <code>{esc(str(sha)[:12])}…</code>" if sha else "") + ")") if m else "<b>unknown</b>"
    n_img = ds.get("n_images")
    summary = (
        f"This report audits whether the saliency maps of model {model} can be trusted to localise findings "
        f"on dataset <b>{esc(ds.get('name', 'unknown'))}</b>"
        + (f" ({fmt(n_img)} images in all; {per_criterion_n(results)})" if n_img is not None else "")
        + accuracy_text(ds.get("primary_accuracy"))
        + ", following Arun et al. (2021) and Adebayo et al. (2018): localisation utility against an "
          "average-mask prior, cascading model-parameter and label randomization, repeatability and "
          "reproducibility"
        + (", faithfulness (ROAD completeness) and mednet's interpretability scores"
           if any(r.get("criterion") in interpretability.CRITERIA + ("completeness",) for r in results) else "")
        + f". Of {len(results) - n_controls} verdict(s), {c['pass']} pass, {c['fail']} fail, "
          f"{c['error']} error and {c['skipped']} skipped"
          + (f" (and {n_controls} control verdict(s), checked against what they must show)" if n_controls else "")
          + f". Run started {esc(run.get('started') or '—')}, "
          f"finished {esc(run.get('finished') or '—')} (seed {fmt(run.get('seed'))})."
    )
    outcome, text = gate_of(evidence)
    return (f'<header><h1>Saliency-map trustworthiness audit</h1><p class="summary">{summary}</p>'
            f'{incomplete_banner(run)}<div class="gate {outcome}">Gate: {esc(text)}</div>{family_line(evidence)}'
            f'{warnings_box(evidence)}</header>')


def family_line(evidence: dict) -> str:
    """What the gate's verdicts guarantee together (``stats.multiplicity``; evidence before it: nothing)."""
    fam = evidence.get("multiplicity") or {}
    return f'<p class="small">{esc(fam["sentence"])}</p>' if fam.get("sentence") else ""


def guarantee(cfg: dict) -> str:
    """What a pass guarantees, in the legend: the level, the test, what it assumes, where it was measured."""
    alphas = sorted({v["alpha"] for v in cfg.values() if isinstance(v, dict) and isinstance(v.get("alpha"), float)})
    level = ("its criterion's alpha (" + ", ".join(fmt(a, "g") for a in alphas) + ")" if len(alphas) > 1 else
             fmt(alphas[0], "g") if alphas else "its criterion's alpha")
    if cfg.get("sequential"):
        rule = ("a betting confidence sequence (anytime-valid, distribution-free for bounded values)"
                if cfg.get("sequential_rule") == "betting" else
                "a group-sequential test (Lan–DeMets O'Brien–Fleming spending over the planned looks, Student-t "
                "bounds guarded by Hall's skewness-corrected t at each look's nominal level)")
    else:
        rule = ("the further-out end of an expanded BCa bootstrap bound, a Student-t bound and Hall's "
                "skewness-corrected t bound")
    return (f"<b>What a pass guarantees</b>: where a criterion's true mean sits exactly on its threshold, it "
            f"passes at most {level} of the time (one-sided), judged by {esc(rule)}; this assumes the images are "
            "independent draws, and randomization's d carries the variance of its noise floor, estimated on the "
            "same images (delta method). The wrong-pass rates measured by simulation, per criterion, rule and "
            "number of images, are the README's calibration table (benchmarks/results/error_rates.json).")


def p_text(r: dict) -> str:
    """The verdict's p-value, and the family-wise level it was held to (if any)."""
    p = r.get("p_value")
    if not isinstance(p, (int, float)):
        return ""
    fam = (r.get("details") or {}).get("multiplicity") or {}
    level = (f" vs {esc(fam.get('method'))} level {fmt(fam.get('level'), '.2g')}"
             if isinstance(fam.get("level"), (int, float)) else "")
    return f'<br><span class="small muted">p {fmt(p, ".2g")}{level}</span>'


def incomplete_banner(run: dict) -> str:
    """A banner no reviewer can miss when the run did not complete (interrupted, failed, or still running)."""
    status = run.get("status")
    if status in (None, "complete"):
        return ""
    code = run.get("exit_status")
    return (f'<div class="banner" role="alert">INCOMPLETE RUN — this evidence comes from a run that is '
            f'<b>{esc(status)}</b>{f" (pytest exit status {esc(code)})" if code is not None else ""}: verdicts '
            f'are missing and none of them may be read as the audit\'s outcome. Rerun the audit to complete it '
            f'(computed maps are cached).</div>')


def accuracy_text(acc) -> str:
    from .accuracy import summary

    text = summary(acc)
    return f"; the model's {esc(text)}" if text else ""


def per_criterion_n(results: list[dict]) -> str:
    """How many images each criterion's verdicts rest on ("utility 48, randomization 24")."""
    n: dict[str, int] = {}
    for r in results:
        v = r.get("n")
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            c = str(r.get("criterion"))
            n[c] = max(n.get(c, 0), v)
    return "images per criterion: " + ", ".join(f"{esc(c)} {v}" for c, v in n.items()) if n else "no images scored"


def warnings_box(evidence: dict) -> str:
    items = collect_warnings(evidence)
    if not items:
        return ""
    return ('<div class="warnings" id="warnings"><b>Warnings</b><ul>'
            + "".join(f"<li>{esc(w)}</li>" for w in items) + "</ul></div>")


def nav(crit: list[str], diagnosis: bool = False, extra: tuple = ()) -> str:
    links = ['<a href="#verdicts">Verdicts</a>'] + (['<a href="#diagnosis">Diagnosis</a>'] if diagnosis else [])
    links += [f'<a href="#{c}">{esc(TITLES[c])}</a>' for c in crit if c in TITLES]
    if any(c not in TITLES for c in crit):
        links.append('<a href="#other">Other results</a>')
    links += [f'<a href="#{sid}">{title}</a>' for sid, title in extra]  # trusted (id, title) pairs
    links.append('<a href="#provenance">Provenance</a>')
    return "<nav>" + "".join(links) + "</nav>"


def headline(r: dict) -> str:
    c, v = str(r.get("criterion")), r.get("value")
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return ""
    if c == "utility":
        return f"ΔAP {fmt(v, '+.3f')}"
    if c in ("randomization", "label_randomization"):
        return f"d {fmt(v, '.2f')}"
    if c in ("repeatability", "reproducibility"):
        return f"SSIM {fmt(v, '.2f')}"
    if c == "completeness":
        return f"ΔROAD {fmt(v, '+.3f')}"
    if c in interpretability.CRITERIA:
        return f"{interpretability.SCORES[c][2]} {fmt(v, '+.2f')}"
    return fmt(v)


def matrix(evidence: dict) -> str:
    crit, methods = ordered(evidence)
    results = evidence.get("results") or []
    roles = {m: controls.is_control_column(evidence, m) for m in methods}
    head = "<tr><th>criterion \\ method</th>" + "".join(
        controls.header_cell(m, roles[m]) if roles[m] else f"<th>{esc(m)}</th>" for m in methods) + "</tr>"
    rows = []
    for c in crit:
        anchor = c if c in TITLES else "other"
        cells = [f'<th class="row"><a href="#{anchor}">{esc(TITLES.get(c, c))}</a></th>']
        for m in methods:
            rs = [r for r in results if str(r.get("criterion")) == c and str(r.get("method")) == m]
            if not rs:
                cells.append('<td class="v-none">—<span class="lb">not run</span></td>')
                continue
            worst = max(rs, key=lambda r: ("pass", "skipped", "fail", "error").index(verdict_of(r)))
            parts = []
            for r in rs:
                model = r.get("model")
                tag = f' <span class="lb">{esc(model)}</span>' if len(rs) > 1 and model else ""
                bound, thr = r.get("bound"), r.get("threshold")
                lb = (f'<span class="lb">bound {bound_text(bound, thr)} vs {fmt(thr, "g")}</span>'
                      if bound is not None and thr is not None else "")
                parts.append(f'<span class="vt">{verdict_of(r).upper()}</span>{tag}'
                             f'<span class="hl">{headline(r)}</span>{lb}')
            if roles[m] and len(rs) == 1:
                cells.append(controls.cell(rs[0], verdict_of(rs[0]), "".join(parts)))
                continue
            cells.append(f'<td class="v-{verdict_of(worst)}">{"".join(parts)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cfg = evidence.get("config") or {}
    u, rz, cs = cfg.get("utility") or {}, cfg.get("randomization") or {}, cfg.get("consistency") or {}
    legend = (
        "Each cell: the verdict, the headline number and the one-sided bootstrap bound the verdict is decided on, "
        "against its threshold. <b>ΔAP</b>: mean(AP − AP of the average-mask prior), pass iff its lower bound > 0 "
        f"and mean AP ≥ {fmt(u.get('min_ap'), 'g')}. <b>d</b>: normalized SSIM drop (0 = map unchanged, 1 = as "
        f"different as another image's map); randomization passes iff the lower bound of d is ≥ "
        f"{fmt(rz.get('head_min'), 'g')} after randomizing the head and ≥ {fmt(rz.get('all_min'), 'g')} after "
        f"randomizing all blocks; label randomization iff ≥ {fmt(rz.get('label_min'), 'g')} (its SSIM to the "
        f"random-label model's maps is shown beside d). <b>SSIM</b> (repeatability, reproducibility): mean SSIM to "
        f"the primary model's maps, pass iff its lower bound is ≥ {fmt(cs.get('min_ssim'), 'g')}."
        + faithfulness.legend(crit)
        + " " + guarantee(cfg)
    )
    return (f'<section id="verdicts"><h2>Verdicts</h2><table id="verdict-matrix"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{controls.paragraph(evidence)}'
            f'<p class="small muted">{legend}</p></section>')


def _baselines(r: dict) -> str:
    bs = r.get("baselines") or ([r["baseline"]] if isinstance(r.get("baseline"), dict) else [])
    out = [f"{esc(b.get('name', '?'))} {fmt(b.get('value'))}" if b.get("available", True) is not False else
           f"{esc(b.get('name', '?'))} <span class=\"muted\" title=\"{esc(b.get('reason') or '')}\">unavailable</span>"
           for b in bs if isinstance(b, dict)]  # unavailable: e.g. no randomized copy of a TorchScript archive
    return "<br>".join(out) or "—"


def _extra_cell(r: dict) -> str:
    d = r.get("details") or {}
    c = r.get("criterion")
    if c == "utility":
        return f"{fmt(d.get('mean_ap'))} {fmt_ci(d.get('mean_ap_ci'))}" if "mean_ap" in d else "—"
    if c == "randomization":
        if "head_d_lower" not in d:
            return "—"
        return (f"head {fmt(d.get('head_d_lower'), '.2f')} (≥ {fmt(d.get('head_min'), 'g')}), all "
                f"{fmt(d.get('all_d_lower'), '.2f')} (≥ {fmt(d.get('all_min'), 'g')})")
    curve = r.get("curve") or []
    if c == "label_randomization" and curve:  # decided on d, like randomization; SSIM beside it
        return (f"{fmt(r.get('bound'), '.2f')} (≥ {fmt(r.get('threshold'), 'g')}); "
                f"SSIM {fmt(curve[0].get('ssim'))} {fmt_ci(curve[0].get('ssim_ci'))}")
    if c in ("repeatability", "reproducibility") and curve:
        return "<br>".join(f"{esc(p.get('model'))}: {fmt(p.get('ssim'))}" for p in curve)
    key = "mean_road" if c == "completeness" else "mean_score"
    if c in ("completeness", *interpretability.CRITERIA) and key in d:
        return f"{fmt(d.get(key))} {fmt_ci(d.get(key + '_ci'))}"
    return "—"


EXTRA_HEAD = {"utility": "mean AP [CI]", "randomization": "lower bound of d", "label_randomization": "lower bound of d; SSIM [CI]",
              "repeatability": "SSIM per replicate", "reproducibility": "SSIM per model",
              "completeness": "mean ROAD [CI]", "energy": "mean score [CI]", "focus": "mean score [CI]",
              "pointing": "mean score [CI]"}


def results_table(rs: list[dict], criterion: str) -> str:
    head = ["method", "verdict", "statistic", "value", "CI", "one-sided bound", "threshold", "baseline(s)",
            EXTRA_HEAD.get(criterion, "more"), "n"]
    body = []
    for r in rs:
        v = verdict_of(r)
        model = r.get("model")
        method = esc(r.get("method")) + (f' <span class="muted small">({esc(model)})</span>'
                                         if model and model != "primary" else "")
        cells = [method, f'<span class="verdict v-{v}">{v.upper()}</span>', esc(r.get("statistic") or "—"),
                 fmt(r.get("value")), fmt_ci(r.get("ci")), bound_text(r.get("bound"), r.get("threshold")) + p_text(r),
                 fmt(r.get("threshold"), "g"),
                 _baselines(r), _extra_cell(r), fmt(r.get("n"))]
        body.append("<tr>" + "".join(f'<td class="num">{c}</td>' if k in (3, 4, 5, 6, 9) else f"<td>{c}</td>"
                                     for k, c in enumerate(cells)) + "</tr>")
        # an error's traceback stays in the evidence (details.traceback): internal paths do not belong in a
        # report meant for reviewers; the one-line explanation says what broke
        extra = (' <span class="muted small">(traceback in the evidence file)</span>'
                 if (r.get("details") or {}).get("traceback") else "")
        body.append(f'<tr class="expl"><td colspan="{len(head)}">{esc(r.get("explanation") or "")}{extra}</td></tr>')
    alpha = next((r.get("details", {}).get("alpha") for r in rs if (r.get("details") or {}).get("alpha")), None)
    ci_level = next((r["ci_level"] for r in rs if isinstance(r.get("ci_level"), (int, float))), None)
    if ci_level is None and isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        ci_level = 1 - 2 * alpha  # evidence written before results carried ci_level
    level = f"{100 * ci_level:.0f} % " if ci_level is not None else ""
    foot = (f'<p class="small muted">CI: two-sided {level}bootstrap interval of the value; its lower end is the '
            "one-sided bound the verdict uses; p: the smallest level at which the verdict would pass on its own. "
            "— : not available (error, skipped, or undefined).</p>")
    return (f'<table class="wide"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>{foot}')


def _map_notes(rs: list[dict]) -> str:
    items = []
    for r in rs:
        notes = (r.get("details") or {}).get("map_notes")
        if isinstance(notes, dict) and notes:
            items.append(f"<li><b>{esc(r.get('method'))}</b>: "
                         + "; ".join(f"{esc(k)} = {plain(v)}" for k, v in flatten(notes)) + "</li>")
    return f"<h3>Notes on the maps</h3><ul class='small'>{''.join(items)}</ul>" if items else ""


def _per_image_utility(rs: list[dict]) -> str:
    rs = [r for r in rs if r.get("per_image")]
    if not rs:
        return ""
    ranked = figures.rank_images(rs)
    ap = {(str(r.get("method")), str(p.get("id"))): p.get("score") for r in rs for p in r["per_image"]}
    prior = {str(p.get("id")): p.get("ap_prior") for r in rs for p in r["per_image"]}
    ids = [i for i, _ in ranked] + sorted(set(prior) - {i for i, _ in ranked})
    mean = dict(ranked)
    rows = [[N(k + 1, "d"), f"<code>{esc(i)}</code>", N(mean.get(i)), N(prior.get(i))]
            + [N(ap.get((str(r.get("method")), i))) for r in rs] for k, i in enumerate(ids)]
    head = ["rank", "image", "mean AP", "prior AP"] + [esc(r.get("method")) for r in rs]
    return (f"<details><summary>Per-image AP ({len(ids)} images, best first)</summary>"
            f"{table(head, rows)}</details>")


def _stage_tables(rs: list[dict]) -> str:
    out = []
    for r in rs:
        curve = r.get("curve") or []
        if not curve:
            continue
        rows = [[esc(c.get("stage")), N(c.get("n"), "d"), N(c.get("ssim")), fmt_ci(c.get("ssim_ci")), N(c.get("d"), ".2f"),
                 fmt_ci([c.get("d_lower"), c.get("d_upper")], ".2f"), N(c.get("spearman_abs")),
                 N(c.get("spearman_signed")), N(c.get("hog")), N(c.get("constant_maps"), "d")] for c in curve]
        floor = (r.get("details") or {}).get("noise_floor") or {}
        rows.append(["<i>noise floor</i>", N(r.get("n"), "d"), N(floor.get("ssim")), "", "", "", N(floor.get("spearman_abs")),
                     N(floor.get("spearman_signed")), N(floor.get("hog")), ""])
        out.append(f"<h3>{esc(r.get('method'))}</h3>" + table(
            ["stage", "images", "SSIM", "SSIM CI", "d", "d CI", "|Spearman|", "Spearman (signed)", "HOG", "constant maps"], rows))
        ind = (r.get("details") or {}).get("independent_curve") or []
        if ind:
            out.append("<p class='small'>Independent randomization (one block at a time):</p>" + table(
                ["block", "SSIM", "d", "d CI"],
                [[esc(c.get("stage")), N(c.get("ssim")), N(c.get("d"), ".2f"),
                  fmt_ci([c.get("d_lower"), c.get("d_upper")], ".2f")] for c in ind]))
    if not out:
        return ""
    return "<details><summary>Stage-by-stage numbers, per method</summary>" + "".join(out) + "</details>"


def _pair_table(rs: list[dict]) -> str:
    rows = []
    for r in rs:
        for p in r.get("curve") or []:
            rows.append([esc(r.get("method")), esc(p.get("model")), N(p.get("ssim")), fmt_ci(p.get("ssim_ci")),
                         N(p.get("spearman_abs")), N(p.get("prediction_agreement"), ".2f"),
                         N(p.get("constant_maps"), "d")])
    if not rows:
        return ""
    return ("<details><summary>Per compared model</summary>"
            + table(["method", "compared model", "SSIM", "SSIM CI", "|Spearman|", "prediction agreement",
                     "constant maps"], rows)
            + "<p class='small muted'>Prediction agreement: fraction of audited images on which both models "
              "predict the same class — low agreement means the models, not only their maps, differ.</p></details>")


def rule(evidence: dict, criterion: str) -> str:
    cfg = evidence.get("config") or {}
    u, rz, cs = cfg.get("utility") or {}, cfg.get("randomization") or {}, cfg.get("consistency") or {}

    def a(p):
        al = p.get("alpha")
        return f"{100 * (1 - al):.0f} %" if isinstance(al, (int, float)) and not isinstance(al, bool) else "(1 − α)"

    text = {
        "utility": (f"Per image, the average precision (AP) of the map's pixels against the lesion mask is compared "
                    f"with the AP of the average-mask prior ({interpretability.prior_text(of(evidence, criterion))})."
                    f" <b>Pass</b> iff "
                    f"the one-sided {a(u)} bootstrap lower bound of mean(AP − AP_prior) is above 0 and mean AP ≥ "
                    f"{fmt(u.get('min_ap'), 'g')}."),
        "randomization": (f"The model's blocks are re-initialised from the head down, cumulatively; after each stage "
                          f"the maps are compared (SSIM) with the trained model's; "
                          f"d = (1 − SSIM)/(1 − noise floor). "
                          f"<b>Pass</b> iff the one-sided {a(rz)} lower bound of mean d is ≥ "
                          f"{fmt(rz.get('head_min'), 'g')} at the head stage and ≥ {fmt(rz.get('all_min'), 'g')} "
                          f"with every block randomized (BatchNorm policy: {esc(rz.get('bn_policy', '—'))}). "
                          + (f"Each image is explained by its own random re-initialisation ({esc(rz.get('draws'))} "
                             f"per image at those two stages, similarities averaged), so the bound covers the "
                             f"randomization's variance as well as the images'."
                             if rz.get("draw_design") == "per_image" else
                             f"Every image is explained by the same {esc(rz.get('draws'))} random "
                             f"re-initialisation(s) at those two stages (similarities averaged).")),
        "label_randomization": (f"The maps of a model trained on permuted labels are compared with the trained "
                                f"model's. <b>Pass</b> iff the one-sided {a(rz)} lower bound of mean d is ≥ "
                                f"{fmt(rz.get('label_min'), 'g')}."),
        "repeatability": (f"The primary's maps against those of the same architecture trained with other seeds. "
                          f"<b>Pass</b> iff the one-sided {a(cs)} lower bound of mean SSIM is ≥ "
                          f"{fmt(cs.get('min_ssim'), 'g')}."),
        "reproducibility": (f"The primary's maps against those of other architectures trained on the same task. "
                            f"<b>Pass</b> iff the one-sided {a(cs)} lower bound of mean SSIM is ≥ "
                            f"{fmt(cs.get('min_ssim'), 'g')}."),
    }.get(criterion)
    if criterion == "completeness":
        text = faithfulness.rule_text(evidence)
    elif criterion in interpretability.CRITERIA:
        text = interpretability.rule_text(evidence, criterion, of(evidence, criterion))
    return f'<p class="rule">{text}</p>' if text else ""


def criterion_section(evidence: dict, criterion: str) -> str:
    rs = of(evidence, criterion)
    samples = evidence.get("samples") or {}
    ok = [r for r in rs if verdict_of(r) in ("pass", "fail")]
    parts = [f'<section id="{criterion}"><h2>{esc(TITLES[criterion])}</h2>', rule(evidence, criterion),
             guarded("results table", results_table, rs, criterion)]
    if criterion == "utility":
        parts.append(figure("utility box plots", figures.utility_boxplot, (ok,),
                            "Per-image AP of each method's maps from the trained model (blue box) beside the same "
                            "method on the fully randomized model (hatched) and the average-mask prior (grey; dashed "
                            "line: its mean). <b>Look for</b> boxes clearly above the prior line and above their "
                            "randomized twin; a box at the prior's level means the maps know no more than where "
                            "lesions usually are."))
        parts.append(figure("overlays of the best, median and worst image", figures.overlay_grid, (ok, samples),
                            "The best, median and worst image by mean AP across methods. First column: the image with "
                            "the lesion outline (cyan); then each method's map overlaid (colour scale at right; "
                            "opacity grows with the map value) with its AP on that image. <b>Look for</b> maps "
                            "concentrated inside the outline, and whether methods fail together on the worst image "
                            "(a hard image) or alone (a weak method)."))
        parts.append(guarded("notes on the maps", _map_notes, rs))
        parts.append(guarded("per-image table", _per_image_utility, ok))
    elif criterion == "randomization":
        parts.append(figure("randomization curves", figures.randomization_curves, (ok,),
                            "One panel per method: mean SSIM between the trained model's maps and the maps after "
                            "re-initialising blocks from the head down (cumulatively), with its bootstrap CI (band); "
                            "dashed: the method's noise floor, the SSIM between maps of different images; red "
                            "triangles: the SSIM at which d reaches its threshold after the head and after all blocks "
                            "(the verdict needs the bootstrap bound of d, i.e. the curve with its CI, below them). "
                            "<b>Maps of a "
                            "trustworthy method fall to the noise floor as layers are randomized</b>; a curve that "
                            "stays high means the maps reflect the image or the architecture rather than what the "
                            "model learned (Adebayo et al. 2018)."))
        parts.append(figure("randomization map strips", figures.map_strips, (ok, samples, "stage"),
                            "For each method, one image: the image with its lesion outline, the trained model's map, then "
                            "the map after each cumulative randomization stage. <b>Look for</b> maps that change "
                            "visibly from the first stage on; a map that survives randomization unchanged does not "
                            "explain the model."))
        parts.append(guarded("randomization variants", randomization.variants_table, ok))
        parts.append(guarded("stage tables", _stage_tables, ok))
    elif criterion == "label_randomization":
        parts.append(figure("label randomization bars", figures.label_bars, (ok,),
                            "Mean SSIM between the maps of the trained model and those of a model trained on randomly "
                            "permuted labels (whiskers: CI); dashed marks: each method's noise floor. <b>Look for</b> "
                            "bars down at their noise floor: a model that learned nothing about the finding should "
                            "not produce the trained model's maps."))
        parts.append(figure("label randomization map strips", figures.map_strips, (ok, samples, "stage"),
                            "For each method, one image: the image, the trained model's map, and the "
                            "random-label model's map. They should look unrelated."))
    elif criterion == "completeness":
        parts.append(faithfulness.completeness_body(evidence, rs))
    elif criterion in interpretability.CRITERIA:
        parts.append(interpretability.section_body(evidence, criterion, rs))
    else:
        other = "replicates of the same architecture trained with other seeds" if criterion == "repeatability" \
            else "models of other architectures trained on the same task"
        parts.append(figure(f"{criterion} box plots", figures.consistency_boxplot,
                            (ok, f"{TITLES[criterion]}: SSIM to the primary model's maps, per image"),
                            f"Per-image SSIM between the primary model's maps and those of {other} (mean over the "
                            "compared models). Red dashed line: the min-SSIM threshold (Arun et al.'s reference "
                            "line); dotted marks: the noise floor. <b>Look for</b> boxes above the threshold: a "
                            "trustworthy explanation survives retraining."))
        parts.append(figure(f"{criterion} map strips", figures.map_strips, (ok, samples, "model", "primary"),
                            "For each method, one image: the image, the primary model's map, then each "
                            "compared model's map with its SSIM to the primary's on this image."))
        parts.append(guarded("per-model table", _pair_table, ok))
    parts.append("</section>")
    return "".join(parts)


def other_section(evidence: dict, crit: list[str]) -> str:
    unknown = [c for c in crit if c not in TITLES]
    if not unknown:
        return ""
    body = "".join(f"<h3>{esc(c)}</h3>" + results_table(of(evidence, c), c) for c in unknown)
    return f'<section id="other"><h2>Other results</h2>{body}</section>'


def render(evidence: dict, evidence_sha256: str | None = None, evidence_name: str = "evidence.json") -> str:
    """The report as one self-contained HTML page (deterministic: same evidence, same bytes).

    ``evidence_sha256``: the sha256 of the evidence file's bytes as written (or read), quoted in the footer
    with ``evidence_name`` so a reviewer can check the page belongs to that file; None (rendered from a dict
    with no file) says nothing."""
    try:
        return _render(evidence, evidence_sha256, evidence_name)
    except Exception as exc:  # malformed beyond what the parts tolerate: still a page that says so
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f'<meta http-equiv="Content-Security-Policy" content="{CSP}"><title>Saliency audit</title>'
                f"<style>{CSS}</style></head><body><main><h1>Saliency-map trustworthiness audit</h1>"
                f"{note('The report', exc)}<p>See the evidence file for the raw results.</p>"
                f"{evidence_hash(evidence_sha256, evidence_name)}</main></body></html>\n")


def _render(evidence: dict, evidence_sha256: str | None = None, evidence_name: str = "evidence.json") -> str:
    crit, _ = ordered(evidence)
    m = primary(evidence)
    version = ((evidence.get("run") or {}).get("versions") or {}).get("saliency_audit")
    diagnosis = guarded("diagnosis", faithfulness.diagnosis_section, evidence)
    sequential = guarded("sequential verdicts", cost.sequential_section, evidence)
    spent = guarded("cost", cost.cost_section, evidence)
    compared = (guarded("comparison", comparison.section, evidence["comparison"])
                if isinstance(evidence.get("comparison"), dict) else "")
    extra = tuple((sid, title) for sid, title, part in (("comparison", "Compared with", compared),
                                                         ("sequential", "Sequential verdicts", sequential),
                                                         ("cost", "Cost", spent)) if f'id="{sid}"' in part)
    parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Saliency audit — {esc(m.get('spec', 'report'))}</title><style>{CSS}</style></head><body>",
             guarded("header", header, evidence), nav(crit, 'id="diagnosis"' in diagnosis, extra), "<main>",
             guarded("verdict matrix", matrix, evidence), compared, diagnosis]
    parts += [guarded(f"{c} section", criterion_section, evidence, c) for c in crit if c in TITLES]
    parts.append(guarded("other results", other_section, evidence, crit))
    parts += [sequential, spent]
    parts.append(guarded("provenance", provenance, evidence))
    parts.append(f"</main><footer>Generated by saliency-audit {esc(version or '')} from evidence schema "
                 f"<code>{esc(evidence.get('schema'))}</code>. This page was rendered from the evidence file alone; "
                 "rebuild it with <code>saliency-audit report evidence.json</code>. It contains no scripts and "
                 f"loads nothing from the network.{evidence_hash(evidence_sha256, evidence_name)}</footer>"
                 "</body></html>\n")
    return "".join(parts)


def evidence_hash(sha256: str | None, name: str = "evidence.json") -> str:
    """The footer's line naming the evidence file by content: check it with ``sha256sum``."""
    if not sha256:
        return ""
    return (f'<p id="evidence-sha256">Evidence file <code>{esc(name)}</code> sha256 <code>{esc(sha256)}</code> '
            f"(check: <code>sha256sum {esc(name)}</code>).</p>")


def write_html(evidence: dict, path, evidence_sha256: str | None = None,
               evidence_name: str = "evidence.json") -> Path:
    """Render ``evidence`` and write it to ``path`` atomically; returns the path (``evidence_sha256``: see
    :func:`render`)."""
    path = Path(path)
    text = render(evidence, evidence_sha256, evidence_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
