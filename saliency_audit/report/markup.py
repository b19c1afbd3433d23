"""HTML building blocks of the report: escaping, number formatting, tables, guarded parts and figures.

Every helper returns HTML in which each string taken from the evidence is escaped.
"""
from __future__ import annotations

import hashlib
import html
import inspect
import json
import math
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

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


# -- figures kept by content --------------------------------------------------------------------------------
#: where the figures drawn by this package are kept, by content (:func:`figure_cache`); None: always drawn
_FIGURE_CACHE: ContextVar[Path | None] = ContextVar("figure_cache", default=None)
#: what a run spent, not what it found: never drawn, left out of a figure's key, so a warm run's report
#: (its maps and passes cached, the same values) finds the cold run's figures
COST_KEYS = frozenset({"seconds", "image_passes", "map_seconds", "maps_computed", "map_notes"})


@contextmanager
def figure_cache(folder):
    """Within it, :func:`figure` keeps the PNG of each figure this package draws in ``folder`` (None: none),
    keyed by the figure's function, the report's source code, the plotting libraries' versions and the
    evidence it is drawn from (less :data:`COST_KEYS`): the same evidence draws the same bytes, so a report of a
    warm run re-draws nothing.  Matplotlib costs a second per figure on a busy 2-core machine."""
    token = _FIGURE_CACHE.set(Path(folder) if folder is not None else None)
    try:
        yield
    finally:
        _FIGURE_CACHE.reset(token)


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The report's drawing code and the libraries that draw: a change to either draws every figure again."""
    import PIL
    import matplotlib
    import numpy

    from ..common import thumbs

    h = hashlib.sha256(json.dumps([matplotlib.__version__, numpy.__version__, PIL.__version__]).encode())
    here = Path(__file__).resolve().parent
    for path in sorted([*here.glob("*.py"), *here.glob("sections/*.py"), Path(thumbs.__file__).resolve()]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _without_cost(value):
    if isinstance(value, dict):
        return {k: _without_cost(v) for k, v in value.items() if k not in COST_KEYS}
    if isinstance(value, (list, tuple)):
        return [_without_cost(v) for v in value]
    return value


def _figure_path(fn, args: tuple) -> Path | None:
    folder = _FIGURE_CACHE.get()
    drawn = inspect.unwrap(fn)  # the drawing function itself (figures._draw wraps each)
    module, name = getattr(drawn, "__module__", None) or "", getattr(drawn, "__qualname__", None)
    if folder is None or not module.startswith("saliency_audit.report.") or not name or "<locals>" in name:
        return None  # a third party's figure may draw anything, and a nameless one is not told apart: drawn
    try:
        blob = json.dumps([module, name, _code_digest(), _without_cost(args)], sort_keys=True, allow_nan=True)
    except (TypeError, ValueError, OSError):
        return None
    key = hashlib.sha256(blob.encode()).hexdigest()[:40]
    return folder / "figures" / key[:2] / f"{key}.b64"


def _drawn(fn, args: tuple):
    path = _figure_path(fn, args)
    if path is not None:
        try:
            kept = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            kept = None
        if kept and figures.is_base64(kept):
            return kept
    b64 = fn(*args)
    if path is not None and b64 and figures.is_base64(b64):
        from ..common.paths import atomic_write_text

        try:
            atomic_write_text(path, b64)
        except OSError:  # a cache that cannot be written only costs the next report the drawing
            pass
    return b64


def figure(what: str, fn, args: tuple, caption: str) -> str:
    """A figure as an embedded PNG with its caption (``caption`` is trusted HTML), or a note; kept by content
    within :func:`figure_cache`."""
    try:
        b64 = _drawn(fn, args)
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
