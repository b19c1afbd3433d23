"""The plain-text verdict table printed at the end of a pytest run."""
from __future__ import annotations


def _num(x, fmt="{:+.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def _score(r: dict) -> str:
    """The criterion's own mean score (not the verdict's difference): AP, ROAD, energy, focus, hit rate."""
    d = r.get("details") or {}
    c = r.get("criterion")
    if c == "completeness":
        return _num(d.get("mean_road"), "ROAD {:+.3f}")
    if c in ("energy", "focus", "pointing"):
        return _num(d.get("mean_score"), ("hit " if c == "pointing" else c + " ") + "{:.3f}")
    return _num(d.get("mean_ap"), "AP {:.3f}")


def verdict_table(results: list[dict]) -> list[str]:
    header = ("criterion", "method", "score", "baseline", "statistic", "value", "bound", "n", "verdict")
    rows = [header]
    for r in results:
        base = r.get("baseline") or {}
        rows.append((
            r["criterion"], r["method"], _score(r),
            f"{base.get('name', '-')}={_num(base.get('value'), '{:.3f}')}" if base else "-",
            r.get("statistic") or "-", _num(r.get("value")), _num(r.get("bound")),
            str(r.get("n", 0)), r["verdict"].upper(),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = {v: sum(r["verdict"] == v for r in results) for v in ("pass", "fail", "error", "skipped")}
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items() if n))
    return lines
