"""The report's "Compared with …" section: this run against a baseline run (:mod:`saliency_audit.decisions.comparison`).

``section(comparison)`` renders the dict :func:`saliency_audit.decisions.comparison.compare` returns (kept in the
evidence as ``comparison``): what the baseline was, how the changes were tested, one row per compared
(criterion, method) with the flagged ones first, and what could not be compared.  Every string taken from
the evidence is escaped; only the house's CSS classes are used.
"""
from __future__ import annotations

from .markup import N, esc, fmt, fmt_ci

_ORDER = {"worse": 0, "better": 1, "unchanged": 2, None: 3}
_FLAG_CLASS = {"worse": "v-fail", "better": "v-pass", "unchanged": "v-none"}


def _pair(r: dict) -> str:
    model = r.get("model")
    return (f"{esc(r.get('criterion'))}[{esc(r.get('method'))}]"
            + (f' <span class="muted small">({esc(model)})</span>' if model and model != "primary" else ""))


def _test(r: dict) -> str:
    if r.get("paired"):
        n, old, new = r.get("n_paired"), r.get("old_n"), r.get("new_n")
        return f"paired, n={fmt(n)}" + ("" if old == new == n else f" of {fmt(old)}/{fmt(new)}")
    what = {"welch": "unpaired (Welch)", "normal": "unpaired (normal approx.)"}.get(r.get("test"), esc(r.get("test")))
    return f"{what}, n={fmt(r.get('old_n'))}/{fmt(r.get('new_n'))}"


def _p(p) -> str:
    """A p-value cell; the bootstrap's floor (1e-8) as an inequality."""
    if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1.01e-8:
        return "\x00num&lt; 1e-8"
    return N(p, ".3g")


def _flag(r: dict) -> str:
    if r.get("control"):
        return '<td class="v-none">control (not flagged)</td>'
    f = r.get("flag")
    cls = _FLAG_CLASS.get(f, "v-none")
    text = esc(f).upper() if f in ("worse", "better") else esc(f or "—")
    return f'<td class="{cls}"><span class="verdict">{text}</span></td>'


def _verdicts(r: dict) -> str:
    old, new = esc(r.get("old_verdict") or "—"), esc(r.get("new_verdict") or "—")
    if old == new:
        return old
    return f"<b>{old} → {new}</b>"


def _rows_table(rows: list[dict]) -> str:
    head = ["pair", "statistic", "old", "new", "delta", "interval", "test", "p (worse)", "p (better)", "verdicts",
            "flag"]
    body = []
    for r in sorted(rows, key=lambda r: (_ORDER.get(r.get("flag"), 3), bool(r.get("control")))):
        notes = "; ".join(str(n) for n in r.get("notes") or [])
        cells = [_pair(r), esc(r.get("statistic") or "—"), N(r.get("old_value")), N(r.get("new_value")),
                 N(r.get("delta"), "+.3f"), "\x00num" + fmt_ci(r.get("ci"), "+.3f"), _test(r),
                 _p(r.get("p_worse")), _p(r.get("p_better")), _verdicts(r)]
        tds = "".join(f'<td class="num">{c[4:]}</td>' if c.startswith("\x00num") else f"<td>{c}</td>" for c in cells)
        body.append(f"<tr>{tds}{_flag(r)}</tr>")
        if notes:
            body.append(f'<tr class="expl"><td colspan="{len(head)}">{esc(notes)}</td></tr>')
    return (f'<table class="wide"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _explanation(c: dict) -> str:
    alpha = c.get("alpha")
    level = f"{100 * (1 - 2 * alpha):.0f} %" if isinstance(alpha, (int, float)) else "—"
    rows = c.get("rows") or []
    paired = sum(bool(r.get("paired")) for r in rows)
    how = ("every pair was paired by image id" if rows and paired == len(rows) else
           f"{paired} of {len(rows)} pair(s) were paired by image id, the others compared as two samples"
           if paired else "no pair could be paired by image id (the runs scored different images, or the "
                          "baseline's evidence has no per-image statistics): each was compared as two samples")
    multiplicity = esc(c.get("multiplicity_text") or c.get("multiplicity") or "")
    return (f'<p class="rule">For each (criterion, method) both runs decided, <i>delta</i> is the change of the '
            f"verdict's value (new − old; higher is better for every criterion) with its two-sided {level} interval; "
            f"{how}. Paired: a bootstrap (BCa) of the mean per-image difference; two samples: Welch's t-test, or a "
            f"normal approximation from each run's interval when the evidence has no per-image statistics. A pair "
            f"is flagged <b>worse</b> (or better) when its one-sided p-value survives the family-wise procedure "
            f"over the {fmt(c.get('family'))} compared pair(s), run separately for each direction at alpha "
            f"{fmt(alpha, 'g')}: {multiplicity}. Controls are compared but never flagged.</p>")


def _title(c: dict) -> str:
    old = c.get("old") or {}
    model = old.get("model") or {}
    sha = model.get("sha256")
    parts = [esc(model.get("spec") or old.get("name") or "a previous run")]
    if sha:
        parts.append(f'<code>{esc(str(sha)[:12])}</code>')
    if old.get("started"):
        parts.append(f"run started {esc(old.get('started'))}")
    return "Compared with " + ", ".join(parts)


def _baseline_facts(c: dict) -> str:
    old, new = c.get("old") or {}, c.get("new") or {}

    def line(which: str, d: dict) -> str:
        ds = d.get("dataset") or {}
        m = d.get("model") or {}
        return (f"<li>{which}: {esc(d.get('name') or '—')} — model <code>{esc(m.get('spec') or '—')}</code> "
                f"(sha256 <code>{esc(str(m.get('sha256') or '—')[:12])}</code>), seed {fmt(d.get('seed'))}, "
                f"started {esc(d.get('started') or '—')}, dataset {esc(ds.get('name') or '—')} (manifest "
                f"<code>{esc(str(ds.get('manifest_sha256') or '—')[:12])}</code>)</li>")

    return f'<ul class="kv">{line("baseline", old)}{line("this run", new)}</ul>'


def _summary(c: dict) -> str:
    s = c.get("summary") or {}
    worse, lost = int(s.get("worse") or 0), int(s.get("lost") or 0)
    cls = "fail" if worse or lost else "pass"
    text = (f"{worse} worse, " + (f"{lost} lost (passed, now error), " if lost else "") + f"{fmt(s.get('better'))} better, {fmt(s.get('unchanged'))} unchanged of "
            f"{fmt(c.get('family'))} compared pair(s)")
    return f'<div class="gate {cls}">{text}</div>'


def _not_compared(items: list[dict]) -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{'<b>lost</b>: ' if r.get('lost') is True else ''}{_pair(r)}: {esc(r.get('reason'))}"
                  f"{' (it passed in the baseline)' if r.get('lost') is True else ''}</li>" for r in items)
    return f'<h3>Not compared</h3><ul class="kv">{lis}</ul>'


def section(comparison: dict) -> str:
    """The "Compared with …" section of the HTML report for ``comparison`` (see the module docstring)."""
    c = comparison if isinstance(comparison, dict) else {}
    warnings = "".join(f"<li>{esc(w)}</li>" for w in c.get("warnings") or [])
    rows = [r for r in c.get("rows") or [] if isinstance(r, dict)]
    parts = [f'<section id="comparison"><h2>{_title(c)}</h2>', _summary(c),
             f'<div class="warnings"><ul>{warnings}</ul></div>' if warnings else "",
             _baseline_facts(c), _explanation(c),
             _rows_table(rows) if rows else '<p class="muted">No (criterion, method) pair was decided by both runs.</p>',
             _not_compared([r for r in c.get("not_compared") or [] if isinstance(r, dict)]), "</section>"]
    return "".join(parts)
