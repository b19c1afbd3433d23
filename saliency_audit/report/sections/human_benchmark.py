"""Section of the radiologist benchmark (each method beside the human readers: hit rate, IoU, AP).

Same interface as every section module (:mod:`saliency_audit.report.sections`).  Drawn only when the
evidence holds human_benchmark results (a run given ``--human-annotations``); every string from the
evidence is escaped.
"""
from __future__ import annotations

from ..markup import N, esc, fmt, guarded, table, verdict_of
from . import level

#: details.metrics key -> its name in the table
METRICS = (("hit_rate", "hit rate"), ("iou", "IoU"), ("ap", "AP"))


def _pct(x) -> str:
    return fmt(100 * x, ".0f") + " %" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def headline(r: dict) -> str:
    v = r.get("value")
    return f"× readers' hit {_pct(v)}" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def extra_head(criterion: str) -> str:
    return "hit rate: method / readers"


def extra_cell(r: dict) -> str:
    hit = ((r.get("details") or {}).get("metrics") or {}).get("hit_rate") or {}
    return f"{fmt(hit.get('method'))} / {fmt(hit.get('human'))}" if hit else "—"


def rule(evidence: dict, criterion: str, rs: list[dict]) -> str:
    h = (evidence.get("config") or {}).get("human") or {}
    seg = ("Otsu's threshold with holes filled" if h.get("threshold", "otsu") == "otsu"
           else f"map &gt; {fmt(h.get('fixed_threshold'), 'g')}")
    return (f"Each audited lesion image that a human reader annotated is scored against the dataset's ground truth "
            f"twice, by the method's map and by the reader's annotation (Saporta et al. 2022, CheXlocalize): "
            f"<b>hit</b> (the map's maximum, the reader's most representative point, inside the ground truth), "
            f"<b>IoU</b> (the map thresholded as CheXlocalize does: {seg}; the reader's mask) and <b>AP</b> (the "
            f"map's pixels ranked; the reader's mask as a binary score). Each is reported as the method's mean "
            f"over the readers' with a paired bootstrap bound. <b>Pass</b> iff the one-sided {level(h)} lower "
            f"bound of the hit-rate ratio is at least {_pct(h.get('margin'))} (non-inferiority margin).")


def body(evidence: dict, criterion: str, rs: list[dict]) -> str:
    ok = [r for r in rs if verdict_of(r) in ("pass", "fail")]
    return "".join((guarded("method and readers table", _comparison, ok),
                    guarded("annotations", _annotations, ok)))


def _comparison(rs: list[dict]) -> str:
    out = []
    for r in rs:
        metrics = (r.get("details") or {}).get("metrics") or {}
        rows = []
        for key, name in METRICS:
            m = metrics.get(key)
            if not isinstance(m, dict):
                continue
            ci = m.get("ci") if isinstance(m.get("ci"), list) and len(m.get("ci")) == 2 else [None, None]
            rows.append([esc(name), N(m.get("method")), N(m.get("human")), N(m.get("difference"), "+.3f"),
                         "\x00num" + _pct(m.get("ratio")), "\x00num" + _pct(ci[0])])
        if rows:
            out.append(f"<h3>{esc(r.get('method'))}</h3><p class='small'>{esc(r.get('explanation') or '')}</p>"
                       + table(["metric", "method", "readers", "difference", "ratio", "lower bound"], rows))
    return "".join(out)


def _annotations(rs: list[dict]) -> str:
    ann = next(((r.get("details") or {}).get("annotations") for r in rs
                if isinstance((r.get("details") or {}).get("annotations"), dict)), None)
    if not ann:
        return ""
    missing = ann.get("missing") if isinstance(ann.get("missing"), list) else []
    shown = ", ".join(f"<code>{esc(i)}</code>" for i in missing[:50]) + (" …" if len(missing) > 50 else "")
    return (f"<p class='small'>Readers' annotations: <code>{esc(ann.get('path'))}</code> ({esc(ann.get('format'))}"
            + (f", finding {esc(ann.get('finding'))}" if ann.get("finding") else "")
            + f"): {fmt(ann.get('n_annotated'))} of {fmt(ann.get('n_audited'))} audited lesion images annotated"
            + (f"; not annotated (left out): {shown}" if missing else "") + ".</p>")
