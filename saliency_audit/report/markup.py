"""HTML building blocks of the report: escaping, number formatting, tables, guarded parts and figures.

Every helper returns HTML in which each string taken from the evidence is escaped.
"""
from __future__ import annotations

import html
import json
import math

from . import figures

VERDICTS = ("pass", "fail", "error", "skipped")


# ----------------------------------------------------------
def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def fmt(x, spec: str = ".3f") -> str:
    """A number for a table cell; None (JSON's NaN) as an em dash; anything else escaped."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, spec) if math.isfinite(x) else "—"
    return esc(x)


def fmt_ci(ci, spec: str = ".3f") -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or all(v is None for v in ci):
        return "—"
    return f"[{fmt(ci[0], spec)}, {fmt(ci[1], spec)}]"


def plain(value) -> str:
    """A provenance value: strings as they are, anything else as JSON; escaped."""
    if isinstance(value, str):
        return esc(value)
    try:
        return esc(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return esc(repr(value))


def flatten(d, prefix: str = ""):
    """(``a.b.c``, value) pairs of a nested dict; empty dicts kept as values."""
    if not isinstance(d, dict):
        yield prefix, d
        return
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            yield from flatten(v, key)
        else:
            yield key, v


def verdict_of(r: dict) -> str:
    v = str(r.get("verdict", "")).lower()
    return v if v in VERDICTS else "error"


def note(what: str, exc: BaseException) -> str:
    msg = (str(exc).splitlines() or [""])[0][:300]
    return f'<p class="note">{esc(what)} could not be drawn: {esc(type(exc).__name__)}: {esc(msg)}</p>'


def guarded(what: str, fn, *args) -> str:
    try:
        return fn(*args)
    except Exception as exc:  # a broken part must not cost the whole report
        return note(what, exc)


def figure(what: str, fn, args: tuple, caption: str) -> str:
    """A figure as an embedded PNG with its caption (``caption`` is trusted HTML), or a note."""
    try:
        b64 = fn(*args)
    except Exception as exc:
        return note(what, exc)
    if not b64:
        return ""
    if not figures.is_base64(b64):
        return f'<p class="note">{esc(what)}: image left out (not base64)</p>'
    return (f'<figure><img src="data:image/png;base64,{b64}" alt="{esc(what)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """Cells are trusted HTML (already escaped); a cell starting with ``\\x00num`` is right-aligned."""
    def td(c):
        return f'<td class="num">{c[4:]}</td>' if c.startswith("\x00num") else f"<td>{c}</td>"

    out = [f'<table class="{cls}">' if cls else "<table>", "<thead><tr>",
           "".join(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(td(c) for c in row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return "".join(out)


def N(x, spec: str = ".3f") -> str:
    """A right-aligned number cell."""
    return "\x00num" + fmt(x, spec)


def kv_list(d: dict, skip: tuple = ()) -> str:
    items = [(k, v) for k, v in flatten(d) if k not in skip]
    if not items:
        return "—"
    return '<ul class="kv">' + "".join(f"<li>{esc(k)} = {plain(v)}</li>" for k, v in items) + "</ul>"
