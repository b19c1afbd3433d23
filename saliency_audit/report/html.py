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

from pathlib import Path

from ..criteria.controls import control_of
from ..common.criteria_registry import CRITERIA as REGISTRY
from . import comparison, controls, cost, faithfulness, interpretability
from .markup import VERDICTS, esc, figure, fmt, fmt_ci, guarded, note, verdict_of  # noqa: F401  (figure: the parts' guard)
from .gate import gate_of
from .sections import section_of
from .table import bound_text
from .warnings import collect as collect_warnings
from .provenance import provenance

CRITERIA = REGISTRY.builtin  # the contract order (registered criteria follow, in registration order)


def titles() -> dict[str, str]:
    """Criterion -> title, of every registered criterion (built-in or not)."""
    return {name: spec.title for name, spec in REGISTRY.items()}

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
    crit = [c for c in REGISTRY if any(r.get("criterion") == c for r in results)]
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
        + (f", each of its findings {', '.join(f'<b>{esc(f)}</b>' for f in found)} against its own ground truth "
           f"and the model output of its name" if (found := _findings(evidence)) else "")
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


def _findings(evidence: dict) -> list[str]:
    from .findings import findings

    return findings(evidence)


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
            "number of images, are the calibration table of docs/ci-and-release.md "
            "(benchmarks/results/error_rates.json).")


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
    titles_ = titles()
    links += [f'<a href="#{esc(c)}">{esc(titles_[c])}</a>' for c in crit if c in titles_]
    if any(c not in titles_ for c in crit):
        links.append('<a href="#other">Other results</a>')
    links += [f'<a href="#{sid}">{title}</a>' for sid, title in extra]  # trusted (id, title) pairs
    links.append('<a href="#provenance">Provenance</a>')
    return "<nav>" + "".join(links) + "</nav>"


def headline(r: dict) -> str:
    """The number in a verdict-matrix cell, by the criterion's section module."""
    return section_of(str(r.get("criterion"))).headline(r)


def matrix(evidence: dict) -> str:
    crit, methods = ordered(evidence)
    results = evidence.get("results") or []
    roles = {m: controls.is_control_column(evidence, m) for m in methods}
    head = "<tr><th>criterion \\ method</th>" + "".join(
        controls.header_cell(m, roles[m]) if roles[m] else f"<th>{esc(m)}</th>" for m in methods) + "</tr>"
    rows = []
    titles_ = titles()
    for c in crit:
        anchor = c if c in titles_ else "other"
        cells = [f'<th class="row"><a href="#{esc(anchor)}">{esc(titles_.get(c, c))}</a></th>']
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


def results_table(rs: list[dict], criterion: str) -> str:
    head = ["method", "verdict", "statistic", "value", "CI", "one-sided bound", "threshold", "baseline(s)",
            esc(section_of(criterion).extra_head(criterion)), "n"]
    body = []
    for r in rs:
        v = verdict_of(r)
        model = r.get("model")
        method = esc(r.get("method")) + (f' <span class="muted small">({esc(model)})</span>'
                                         if model and model != "primary" else "")
        cells = [method, f'<span class="verdict v-{v}">{v.upper()}</span>', esc(r.get("statistic") or "—"),
                 fmt(r.get("value")), fmt_ci(r.get("ci")), bound_text(r.get("bound"), r.get("threshold")) + p_text(r),
                 fmt(r.get("threshold"), "g"),
                 _baselines(r), section_of(str(r.get("criterion"))).extra_cell(r), fmt(r.get("n"))]
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


def rule(evidence: dict, criterion: str) -> str:
    text = section_of(criterion).rule(evidence, criterion, of(evidence, criterion))
    return f'<p class="rule">{text}</p>' if text else ""


def criterion_section(evidence: dict, criterion: str) -> str:
    """A registered criterion's section: its title, rule and results table, then its section module's body
    (:mod:`saliency_audit.report.sections`; a criterion without one gets the generic section, nothing drawn)."""
    rs = of(evidence, criterion)
    title = titles().get(criterion, criterion)
    return "".join((f'<section id="{esc(criterion)}"><h2>{esc(title)}</h2>', rule(evidence, criterion),
                    guarded("results table", results_table, rs, criterion),
                    guarded(f"{criterion} section", section_of(criterion).body, evidence, criterion, rs),
                    "</section>"))


def other_section(evidence: dict, crit: list[str]) -> str:
    unknown = [c for c in crit if c not in titles()]
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


def _per_finding(evidence: dict, found: list[str]) -> tuple[str, str, tuple]:
    """(the verdict matrices, the findings' sections, nav entries) of a run audited per finding."""
    from .findings import anchor, scoped, view

    matrices, sections, links = [], [], []
    titles_ = titles()
    for f in found:
        sub = view(evidence, f)
        crit, _ = ordered(sub)
        body = [guarded("diagnosis", faithfulness.diagnosis_section, sub)]
        body += [guarded(f"{c} section", criterion_section, sub, c) for c in crit if c in titles_]
        body.append(guarded("other results", other_section, sub, crit))
        table = guarded("verdict matrix", matrix, sub).replace("<h2>Verdicts</h2>", "", 1)  # the finding heads it
        matrices.append(f"<h3>{esc(f)}</h3>" + scoped(table, f))
        sections.append(f'<section id="{anchor(f)}"><h2>Finding: {esc(f)}</h2>'
                        + scoped("".join(body), f) + "</section>")
        links.append((anchor(f), f"Finding: {esc(f)}"))
    return (f'<section id="verdicts"><h2>Verdicts per finding</h2>{"".join(matrices)}</section>',
            "".join(sections), tuple(links))


def _render(evidence: dict, evidence_sha256: str | None = None, evidence_name: str = "evidence.json") -> str:
    """The page: a single-label run's, or (:mod:`saliency_audit.report.findings`) each finding's verdict matrix
    and sections in turn; the run-wide parts (header, comparison, plan and cost, provenance) as one."""
    from .findings import findings

    sequential = guarded("sequential verdicts", cost.sequential_section, evidence)
    spent = guarded("cost", cost.cost_section, evidence)
    compared = (guarded("comparison", comparison.section, evidence["comparison"])
                if isinstance(evidence.get("comparison"), dict) else "")
    extra = tuple((sid, title) for sid, title, part in (("comparison", "Compared with", compared),
                                                         ("sequential", "Sequential verdicts", sequential),
                                                         ("cost", "Cost", spent)) if f'id="{sid}"' in part)
    found = findings(evidence)
    if found:
        matrices, sections, links = _per_finding(evidence, found)
        menu, body = nav([], False, links + extra), [matrices, compared, sections]
    else:
        crit, _ = ordered(evidence)
        diagnosis = guarded("diagnosis", faithfulness.diagnosis_section, evidence)
        titles_ = titles()
        menu = nav(crit, 'id="diagnosis"' in diagnosis, extra)
        body = [guarded("verdict matrix", matrix, evidence), compared, diagnosis]
        body += [guarded(f"{c} section", criterion_section, evidence, c) for c in crit if c in titles_]
        body.append(guarded("other results", other_section, evidence, crit))
    m = primary(evidence)
    version = ((evidence.get("run") or {}).get("versions") or {}).get("saliency_audit")
    return "".join(["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
                    f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
                    '<meta name="viewport" content="width=device-width, initial-scale=1">',
                    f"<title>Saliency audit — {esc(m.get('spec', 'report'))}</title><style>{CSS}</style></head>"
                    "<body>", guarded("header", header, evidence), menu, "<main>", *body, sequential, spent,
                    guarded("provenance", provenance, evidence),
                    f"</main><footer>Generated by saliency-audit {esc(version or '')} from evidence schema "
                    f"<code>{esc(evidence.get('schema'))}</code>. This page was rendered from the evidence file "
                    "alone; rebuild it with <code>saliency-audit report evidence.json</code>. It contains no scripts "
                    f"and loads nothing from the network.{evidence_hash(evidence_sha256, evidence_name)}</footer>"
                    "</body></html>\n"])


def evidence_hash(sha256: str | None, name: str = "evidence.json") -> str:
    """The footer's line naming the evidence file by content: check it with ``sha256sum``."""
    if not sha256:
        return ""
    return (f'<p id="evidence-sha256">Evidence file <code>{esc(name)}</code> sha256 <code>{esc(sha256)}</code> '
            f"(check: <code>sha256sum {esc(name)}</code>).</p>")


def write_html(evidence: dict, path, evidence_sha256: str | None = None,
               evidence_name: str = "evidence.json", figure_cache: Path | None = None) -> Path:
    """Render ``evidence`` and write it to ``path`` atomically; returns the path (``evidence_sha256``: see
    :func:`render`; ``figure_cache``: a folder where the figures are kept by content,
    :func:`saliency_audit.report.markup.figure_cache`, so the same figures are not drawn twice)."""
    from ..common.paths import atomic_write_text
    from .markup import figure_cache as kept

    path = Path(path)
    with kept(figure_cache):
        page = render(evidence, evidence_sha256, evidence_name)
    atomic_write_text(path, page, mode=0o644)
    return path
