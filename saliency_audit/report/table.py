"""The plain-text verdict table printed at the end of a pytest run."""
from __future__ import annotations

import math

from ..common.subjects import of as subject_of
from ..criteria.controls import control_of, summary


def _num(x, fmt="{:+.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def _score(r: dict) -> str:
    """The criterion's own mean score (not the verdict's difference): AP, ROAD, energy, focus, hit rate; its
    spec's ``score`` (details key, format) says which ("-": none)."""
    from ..common.criteria_registry import CRITERIA

    spec = CRITERIA.get(r.get("criterion"))
    if spec is None or not spec.score:
        return "-"
    key, form = spec.score
    return _num((r.get("details") or {}).get(key), form)


def bound_text(bound, threshold, sign: bool = False) -> str:
    """A bound beside its threshold with enough digits that the side it falls on is visible.

    ``-0.000 vs 0`` hides whether the bound is below the threshold; this prints
    ``-0.00031`` instead, and ``(tie)`` when the bound equals the threshold.
    Plain text (not escaped): numbers only.
    """
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
        return "—"
    spec = "+.3f" if sign else ".3f"
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and math.isfinite(threshold):
        gap = bound - threshold
        if gap == 0:
            return format(bound, spec) + " (tie)"
        if abs(gap) < 0.0005:
            digits = min(12, int(math.ceil(-math.log10(abs(gap)))) + 1)
            return format(bound, f"{'+' if sign else ''}.{digits}f")
    return format(bound, spec)


def verdict_table(results: list[dict]) -> list[str]:
    header = ("criterion", "method", "score", "baseline", "statistic", "value", "bound", "n", "verdict")
    rows = [header]
    for r in results:
        base = r.get("baseline") or {}
        rows.append((
            r["criterion"], subject_of(r), _score(r),
            f"{base.get('name', '-')}={_num(base.get('value'), '{:.3f}')}" if base else "-",
            r.get("statistic") or "-", _num(r.get("value")), bound_text(r.get("bound"), r.get("threshold"), sign=True).replace("—", "-"),
            str(r.get("n", 0)), _verdict_text(r),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    methods = [r for r in results if not control_of(r)]
    counts = {v: sum(r["verdict"] == v for r in methods) for v in ("pass", "fail", "error", "skipped")}
    ctl = summary(results)
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items() if n)
                 + (f"; controls: {ctl['met']} of {ctl['gated']} as expected" if ctl and ctl["gated"] else ""))
    return lines


def _verdict_text(r: dict) -> str:
    """The verdict; a control's with what it says about the audit (as expected, WRONG, or reported only)."""
    c = control_of(r)
    v = str(r["verdict"]).upper()
    if not c:
        return v
    if c.get("met") is None:
        return f"{v} (control, reported)"
    return f"{v} (control, {'as expected' if c['met'] else 'WRONG'})"
