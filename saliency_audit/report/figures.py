"""The report's figures, drawn with matplotlib (Agg, no pyplot state) from the evidence alone.

Every function takes evidence pieces (result dicts, the ``samples`` table)
and returns a base64 PNG, or None when there is nothing to draw.  The PNGs
carry no timestamp or software tag, so the same evidence gives the same
bytes.  Strings from the evidence reach matplotlib only as plain text
(``parse_math=False``): an id with ``$`` signs is printed, not typeset.
"""
from __future__ import annotations

import base64
import io
import math
import re

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from ..common import thumbs

# Imported here, not lazily: under pytester a lazily imported matplotlib can be dropped from sys.modules and
# re-imported beside the old copy (mixed classes).  The Agg canvas is attached explicitly: no pyplot, no GUI.

DPI = 100
VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#c62828", "error": "#b26a00", "skipped": "#6e7781"}
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_RC = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
       "legend.fontsize": 7, "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "saliency-audit",
       "figure.dpi": DPI, "savefig.dpi": DPI, "image.interpolation": "nearest"}
MAP_CMAP = "turbo"
MAP_ALPHA = 0.85  # most opaque a map gets over its image


# -- helpers --------------------------------------------------------------------------------------------------
def is_base64(text) -> bool:
    """Only the base64 alphabet (and padding): safe inside a ``src`` attribute and decodable."""
    return isinstance(text, str) and len(text) % 4 == 0 and bool(_B64.match(text))


def decode(text) -> np.ndarray | None:
    """A thumbnail (base64 PNG) as float32 (H, W) in [0, 1]; None when absent or not a valid PNG."""
    if not is_base64(text):
        return None
    from ..common.errors import AuditInputError

    try:
        return thumbs.decode(text)
    except AuditInputError as exc:  # an oversized one: left out, with one line on stderr (once per reason)
        _note(str(exc))
        return None
    except Exception:  # a corrupt thumbnail is left out, not fatal
        return None


_NOTED: set[str] = set()


def _note(line: str) -> None:
    import sys

    if line not in _NOTED:
        _NOTED.add(line)
        print(f"saliency-audit: note: {line}", file=sys.stderr)


def fit(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``arr`` resampled (bilinear) to ``shape`` so maps of any grid overlay their image."""
    if arr.shape == tuple(shape):
        return arr

    im = Image.fromarray(arr.astype(np.float32), mode="F")
    return np.asarray(im.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def short(text, n: int = 22) -> str:
    s = str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def num(x) -> float:
    """A JSON number as float; None (JSON's stand-in for NaN) and non-numbers as NaN."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return math.nan
    return float(x)


def finite(values) -> list[float]:
    return [v for v in (num(x) for x in values) if math.isfinite(v)]


def method_colours(methods: list[str]) -> dict[str, tuple]:

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def _figure(width: float, height: float):

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig) -> str:
    """The figure as base64 PNG, without metadata (no timestamp, no software version)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _draw(fn):
    """Run a drawing function under the report's matplotlib style (the wrapper keeps its name, module and
    qualified name: the figure cache, report.markup.figure_cache, tells figures apart by them)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper


def method_label(r: dict) -> str:
    return f"{short(r.get('method'), 10)}\n{str(r.get('verdict', '')).upper()}"


def _verdict_label(ax, r: dict, title: str) -> None:
    v = str(r.get("verdict", "")).lower()
    ax.set_title(f"{short(title, 28)} — {v.upper()}", color=VERDICT_COLOURS.get(v, "black"), parse_math=False)


def _tick_labels(ax, labels: list[str], rotation: float = 0) -> None:
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=rotation, ha="right" if rotation else "center", parse_math=False)


def _boxes(ax, data: list[list[float]], positions, colour, width=0.35, hatch=None):
    """Box plots of ``data`` (empty groups left out) in one colour."""
    keep = [(d, p) for d, p in zip(data, positions) if d]
    if not keep:
        return None
    bp = ax.boxplot([d for d, _ in keep], positions=[p for _, p in keep], widths=width, patch_artist=True,
                    showfliers=True, flierprops={"markersize": 2.5, "markeredgecolor": "#555"},
                    medianprops={"color": "black", "linewidth": 1.2}, manage_ticks=False)
    for box in bp["boxes"]:
        box.set_facecolor(colour)
        box.set_alpha(0.85)
        if hatch:
            box.set_hatch(hatch)
    return bp


# -- utility --------------------------------------------------------------------------------------------------
@_draw
def utility_boxplot(results: list[dict]) -> str | None:
    """Per-image AP of each method's maps beside the randomized model's and the average-mask prior (Arun fig. 2)."""
    rs = [r for r in results if r.get("per_image")]
    if not rs:
        return None

    prior = finite(p.get("ap_prior") for p in rs[0]["per_image"])
    trained = [finite(p.get("score") for p in r["per_image"]) for r in rs]
    rand = [finite(p.get("ap_randomized") for p in r["per_image"]) for r in rs]
    fig = _figure(max(5.5, 0.85 * len(rs) + 2.2), 3.6)
    ax = fig.add_subplot()
    _boxes(ax, [prior], [0], "#bdbdbd", width=0.5)
    _boxes(ax, trained, [i + 1 - 0.19 for i in range(len(rs))], "#4c72b0")
    _boxes(ax, rand, [i + 1 + 0.19 for i in range(len(rs))], "#f2f2f2", hatch="////")
    if prior:
        ax.axhline(float(np.mean(prior)), color="#555", linestyle="--", linewidth=1)
    labels = ["average-mask\nprior"] + [method_label(r) for r in rs]
    _tick_labels(ax, labels)
    for tick, r in zip(ax.get_xticklabels()[1:], rs):
        tick.set_color(VERDICT_COLOURS.get(str(r.get("verdict")), "black"))
    ax.set_xlim(-0.6, len(rs) + 0.6)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("average precision (AP) per image")
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(handles=[Patch(facecolor="#4c72b0", label="trained model"),
                       Patch(facecolor="#f2f2f2", hatch="////", edgecolor="black", label="fully randomized model"),
                       Patch(facecolor="#bdbdbd", label="average-mask prior"),
                       Line2D([], [], color="#555", linestyle="--", label="prior: mean AP")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle("Localisation utility: AP of the map against the lesion mask, per image", fontsize=9)
    return to_png(fig)


def rank_images(results: list[dict]) -> list[tuple[str, float]]:
    """(id, mean AP across methods) of every image with a finite AP, best first (ties by id)."""
    scores: dict[str, list[float]] = {}
    for r in results:
        for p in r.get("per_image") or []:
            v = num(p.get("score"))
            if math.isfinite(v):
                scores.setdefault(str(p.get("id")), []).append(v)
    ranked = [(i, float(np.mean(v))) for i, v in scores.items()]
    return sorted(ranked, key=lambda t: (-t[1], t[0]))


def pick_images(results: list[dict]) -> list[tuple[str, str, float]]:
    """(label, id, mean AP) of the best, median and worst image."""
    ranked = rank_images(results)
    if not ranked:
        return []
    picks = [("best", 0), ("median", len(ranked) // 2), ("worst", len(ranked) - 1)]
    out, seen = [], set()
    for label, k in picks:
        if k not in seen:
            seen.add(k)
            out.append((label, *ranked[k]))
    return out


def _image(samples: dict, sid: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    entry = samples.get(sid) if isinstance(samples, dict) else None
    if not isinstance(entry, dict):
        return None, None
    return decode(entry.get("image")), decode(entry.get("truth"))


def _show(ax, image, smap=None, truth=None) -> None:
    """An image (grey) with a map overlaid and/or the ground-truth outline; axes off."""
    base = image if image is not None else (np.zeros_like(smap) if smap is not None else np.zeros((8, 8)))
    ax.imshow(base, cmap="gray", vmin=0, vmax=1)
    if smap is not None:
        m = np.clip(fit(smap, base.shape), 0.0, 1.0)
        # opacity grows with the map value: the image stays visible where the map is low
        ax.imshow(m, cmap=MAP_CMAP, vmin=0, vmax=1, alpha=np.minimum(1.2 * m, MAP_ALPHA) if image is not None else 1.0)
    if truth is not None and truth.max() > truth.min():
        ax.contour(fit(truth, base.shape), levels=[0.5], colors=["#00e5ff"], linewidths=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def _grid(nrows: int, ncols: int, cell: float = 1.0, left: float = 0.6, top: float = 0.3, gap: float = 0.26):
    """A figure of ``nrows`` × ``ncols`` image cells (inches) with a colour bar at the right.

    Laid out by hand: constrained layout costs seconds on grids of ~80 axes.
    """
    right, bottom, wgap = 0.95, 0.22, 0.08
    width = left + ncols * cell + (ncols - 1) * wgap + right
    height = top + nrows * cell + (nrows - 1) * gap + bottom
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={
        "left": left / width, "right": 1 - right / width, "bottom": bottom / height, "top": 1 - top / height,
        "wspace": wgap / cell, "hspace": gap / cell})
    span = min(2.2, height - top - bottom)
    cax = fig.add_axes([(width - right + 0.12) / width, (height - top - span) / height, 0.11 / width, span / height])
    cb = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap=MAP_CMAP), cax=cax)
    cb.set_label("map value (min-max per map)", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    return fig, axes


@_draw
def overlay_grid(results: list[dict], samples: dict) -> str | None:
    """Best, median and worst image (mean AP across methods): image + lesion outline, then each method's map."""
    rs = [r for r in results if (r.get("details") or {}).get("thumbnails")]
    picks = pick_images(rs)
    if not rs or not picks:
        return None
    fig, axes = _grid(len(picks), len(rs) + 1, cell=1.15)
    for row, (label, sid, mean_ap) in enumerate(picks):
        image, truth = _image(samples, sid)
        _show(axes[row][0], image, truth=truth)
        axes[row][0].set_ylabel(f"{label}\n{short(sid, 18)}\nmean AP {mean_ap:.2f}", fontsize=7, parse_math=False)
        for col, r in enumerate(rs, start=1):
            ax = axes[row][col]
            smap = decode(r["details"]["thumbnails"].get(sid))
            _show(ax, image, smap, truth)
            ap = next((num(p.get("score")) for p in r.get("per_image") or [] if str(p.get("id")) == sid), math.nan)
            ax.set_xlabel("no map" if smap is None else (f"AP {ap:.2f}" if math.isfinite(ap) else "AP —"), fontsize=7)
            if row == 0:
                ax.set_title(short(r.get("method"), 12), parse_math=False)
    axes[0][0].set_title("image + lesion")
    return to_png(fig)


# -- randomization --------------------------------------------------------------------------------------------
@_draw
def randomization_curves(results: list[dict]) -> str | None:
    """Mean SSIM to the trained model's maps after each cascading stage, with CI and noise floor (Arun fig. 3)."""
    rs = [r for r in results if r.get("curve")]
    if not rs:
        return None
    ncols = min(4, len(rs))
    nrows = math.ceil(len(rs) / ncols)
    fig = _figure(max(5.2, 2.45 * ncols + 0.3), 2.55 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    colours = method_colours([str(r.get("method")) for r in rs])
    lo_all = 0.0
    for k, r in enumerate(rs):
        ax = axes[k // ncols][k % ncols]
        curve = r["curve"]
        x = np.arange(len(curve) + 1)
        y = np.array([1.0] + [num(c.get("ssim")) for c in curve])
        ci = [c.get("ssim_ci") or [None, None] for c in curve]
        lo = np.array([1.0] + [num(c[0]) for c in ci])
        hi = np.array([1.0] + [num(c[1]) for c in ci])
        colour = colours[str(r.get("method"))]
        ax.fill_between(x, lo, hi, color=colour, alpha=0.25, linewidth=0)
        ax.plot(x, y, marker="o", markersize=3, color=colour, linewidth=1.4)
        details = r.get("details") or {}
        floor = num((details.get("noise_floor") or {}).get("ssim"))
        if math.isfinite(floor):
            ax.axhline(floor, color=colour, linestyle="--", linewidth=1)
            lo_all = min(lo_all, floor)
            # d >= t  <=>  SSIM <= 1 - t (1 - floor): where the curve must be at the head and at the last stage
            for xi, t in ((1, num(details.get("head_min"))), (len(curve), num(details.get("all_min")))):
                if math.isfinite(t):
                    ax.plot([xi], [1 - t * (1 - floor)], marker="v", color="#c62828", markersize=6, linestyle="none")
        lo_all = min([lo_all] + finite(lo))
        _tick_labels(ax, ["trained"] + [short(c.get("stage"), 20) for c in curve], rotation=60)
        ax.tick_params(axis="x", labelsize=6)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        _verdict_label(ax, r, str(r.get("method")))
        if k % ncols == 0:
            ax.set_ylabel("SSIM to trained model's map")
    for k in range(len(rs), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    axes[0][0].set_ylim(min(-0.05, lo_all - 0.05), 1.05)

    fig.legend(handles=[Line2D([], [], color="#444", marker="o", markersize=3, label="mean SSIM"),
                        Patch(facecolor="#444", alpha=0.25, label="its CI"),
                        Line2D([], [], color="#444", linestyle="--", label="noise floor (maps of different images)"),
                        Line2D([], [], color="#c62828", marker="v", linestyle="none",
                               label="threshold on d as SSIM (head, all blocks): pass needs the curve below")],
               loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle("Cascading randomization, head first: similarity to the trained model's maps", fontsize=9)
    return to_png(fig)


@_draw
def label_bars(results: list[dict]) -> str | None:
    """SSIM between the trained and the random-label model's maps, with CI and each method's noise floor."""
    rs = [r for r in results if r.get("curve")]
    if not rs:
        return None

    fig = _figure(max(4.5, 0.7 * len(rs) + 2.4), 3.2)
    ax = fig.add_subplot()
    colours = method_colours([str(r.get("method")) for r in rs])
    for i, r in enumerate(rs):
        c = r["curve"][0]
        y = num(c.get("ssim"))
        lo, hi = (list(c.get("ssim_ci") or []) + [None, None])[:2]
        lo, hi = num(lo), num(hi)
        err = [[y - lo], [hi - y]] if math.isfinite(lo) and math.isfinite(hi) and math.isfinite(y) else None
        ax.bar(i, y if math.isfinite(y) else 0.0, width=0.6, color=colours[str(r.get("method"))], alpha=0.85,
               yerr=err, capsize=3, error_kw={"linewidth": 1})
        floor = num(((r.get("details") or {}).get("noise_floor") or {}).get("ssim"))
        if math.isfinite(floor):
            ax.hlines(floor, i - 0.38, i + 0.38, colors="black", linestyles="--", linewidth=1.3)
    _tick_labels(ax, [method_label(r) for r in rs])
    for tick, r in zip(ax.get_xticklabels(), rs):
        tick.set_color(VERDICT_COLOURS.get(str(r.get("verdict")), "black"))
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("SSIM, trained vs random-label maps")
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(handles=[Line2D([], [], color="black", linestyle="--", label="noise floor (different images)"),
                       Line2D([], [], color="black", marker="|", linestyle="none", markersize=8, label="CI of mean")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle("Label randomization: trained vs random-label model maps", fontsize=9)
    return to_png(fig)


# -- consistency ----------------------------------------------------------------------------------------------
@_draw
def consistency_boxplot(results: list[dict], title: str) -> str | None:
    """Per-image SSIM to the primary's maps per method, with the min-SSIM threshold (Arun fig. 4)."""
    rs = [r for r in results if r.get("per_image")]
    if not rs:
        return None

    fig = _figure(max(4.5, 0.7 * len(rs) + 2.6), 3.3)
    ax = fig.add_subplot()
    colours = method_colours([str(r.get("method")) for r in rs])
    for i, r in enumerate(rs):
        _boxes(ax, [finite(p.get("score") for p in r["per_image"])], [i], colours[str(r.get("method"))], width=0.55)
        floor = num((r.get("baseline") or {}).get("value"))
        if math.isfinite(floor):
            ax.hlines(floor, i - 0.35, i + 0.35, colors="#555", linestyles=":", linewidth=1.4)
    thresholds = finite(r.get("threshold") for r in rs)
    handles = [Line2D([], [], color="#555", linestyle=":", label="noise floor (different images)")]
    if thresholds:
        t = thresholds[0]
        ax.axhline(t, color="#c62828", linestyle="--", linewidth=1.1)
        handles.insert(0, Line2D([], [], color="#c62828", linestyle="--", label=f"min SSIM {t:g} (threshold)"))
    _tick_labels(ax, [method_label(r) for r in rs])
    for tick, r in zip(ax.get_xticklabels(), rs):
        tick.set_color(VERDICT_COLOURS.get(str(r.get("verdict")), "black"))
    ax.set_xlim(-0.6, len(rs) - 0.4)
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.02)
    ax.set_ylabel("SSIM to primary model's map, per image")
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle(title, fontsize=9)
    return to_png(fig)


# -- map strips -----------------------------------------------------------------------------------------------
def strip_image(r: dict) -> str | None:
    """The first image whose map is kept for the reference and for every curve entry."""
    ref = (r.get("details") or {}).get("reference_thumbnails") or {}
    for sid in ref:
        if all(sid in (c.get("thumbnails") or {}) for c in r.get("curve") or []):
            return sid
    return None


@_draw
def map_strips(results: list[dict], samples: dict, column: str, trained: str = "trained") -> str | None:
    """Per method, one image: the image, the trained model's map, then the map of each curve entry.

    ``column``: the curve key naming an entry ("stage" or "model").  Methods are rows when there are many
    entries (randomization stages), columns when there are few (random labels, compared models).
    """
    strips = []  # per method: (label, [(title, image, map, truth, xlabel)])
    for r in results:
        sid = strip_image(r) if r.get("curve") else None
        if sid is None:
            continue
        image, truth = _image(samples, sid)
        cells = [("image", image, None, truth, short(sid, 20)),
                 (trained, image, decode(r["details"]["reference_thumbnails"][sid]), None, "")]
        for c in r["curve"]:
            s = next((num(p.get("ssim")) for p in c.get("per_image") or [] if str(p.get("id")) == sid), math.nan)
            cells.append((short(c.get(column), 18), image, decode(c["thumbnails"][sid]), None,
                          f"SSIM {s:.2f}" if math.isfinite(s) else ""))
        strips.append((short(r.get("method"), 12), cells))
    if not strips:
        return None
    n = max(len(cells) for _, cells in strips)
    across = n <= 4 and len(strips) > n  # few entries: one column per method
    nrows, ncols = (n, len(strips)) if across else (len(strips), n)
    fig, axes = _grid(nrows, ncols, top=0.35 if across else 0.25)
    for i, (label, cells) in enumerate(strips):
        for j in range(n):
            ax = axes[j][i] if across else axes[i][j]
            if j >= len(cells):
                ax.set_visible(False)
                continue
            title, image, smap, truth, xlabel = cells[j]
            _show(ax, image, smap, truth)
            if xlabel:
                ax.set_xlabel(xlabel, fontsize=6.5, parse_math=False)
            if across and i == 0 or not across and j == 0:
                ax.set_ylabel(title if across else label, fontsize=7, parse_math=False)
            if across and j == 0 or not across and i == 0:
                ax.set_title(label if across else title, fontsize=7, parse_math=False)
    return to_png(fig)
