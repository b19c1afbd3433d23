"""Report sections of faithfulness (ROAD completeness) and of the diagnosis that combines it with utility.

* :func:`diagnosis_section` — right after the verdict matrix: does the model
  rely on the lesion at all (lesion reliance), and per method what utility
  and completeness together say, with what to do about it
  (:mod:`saliency_audit.criteria.diagnosis` decides; this only shows it).
* :func:`completeness_body` — the completeness section below its results
  table: MoRF/LeRF curves, deletion/insertion curves, per-image ROAD box
  plots against the baselines, and the baselines table.

Rendered from the evidence alone; every evidence string escaped.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import figures as F
from .markup import N, esc, figure, fmt, fmt_ci, guarded, table, verdict_of

#: diagnosis key -> what to do about it (trusted HTML)
ADVICE = {
    "faithful-localises": "Usable for this model: the map shows what the model uses, and that is the lesion. "
                          "Keep auditing it on new data and new model versions.",
    "faithful-coarse": "The model uses the lesion but the map is too coarse or imprecise to show where: try a finer "
                       "layer (an earlier CAM layer, HiResCAM / LayerCAM) or a finer, less noisy method (integrated "
                       "gradients, SmoothGrad).",
    "model-looks-elsewhere": "The map faithfully shows a model that relies on something other than the lesion: "
                             "inspect the maps for shortcuts (markers, text, tubes, borders, scanner artefacts), "
                             "fix the data and retrain before trusting the model.",
    "localises-unused": "The map finds the lesion, but the model's output does not depend on it: the map is not an "
                        "explanation of this model's decision; look for a shortcut (right for the wrong reason).",
    "not-faithful": "Do not use this method to explain this model: removing what it highlights changes the output "
                    "no more than removing pixels at random.",
    "faithful": "Faithful; run the utility criterion (it needs lesion masks) to learn whether it also localises.",
    "localises-fails-gate": "Not usable as it stands: it is faithful and localises, but the gate fails it on other "
                            "criteria (listed); a map that, say, survives randomization of the model cannot be "
                            "trusted however well it localises.",
}
#: diagnosis key -> (completeness, utility, lesion reliance) as diagnosis.py decides it
RULES = {
    "faithful-localises": ("pass", "pass", "any (not known to be absent)"),
    "faithful-coarse": ("pass", "fail", "yes"),
    "model-looks-elsewhere": ("pass", "fail", "no"),
    "localises-unused": ("pass", "pass", "no"),
    "localises-fails-gate": ("pass", "pass", "any; but another criterion fails"),
    "not-faithful": ("fail", "any", "any"),
    "faithful": ("pass", "not run", "any"),
}

CSS = """
.dx{display:inline-block;padding:1px 8px;border-radius:6px;font-weight:600;font-size:12.5px;border:1px solid}
.dx-faithful-localises,.dx-faithful{color:var(--pass);background:var(--pass-bg)}
.dx-faithful-coarse{color:#0550ae;background:#ddf4ff}
.dx-model-looks-elsewhere{color:#953800;background:#fff1e5}
.dx-localises-unused{color:#6639ba;background:#fbefff}
.dx-not-faithful,.dx-localises-fails-gate{color:var(--fail);background:var(--fail-bg)}
.dx-unknown{color:var(--skipped);background:var(--skipped-bg)}
.reliance{font-size:14px;padding:8px 12px;border-radius:6px;border-left:4px solid;margin:8px 0}
.reliance.uses{border-color:var(--pass);background:var(--pass-bg)}
.reliance.no{border-color:var(--fail);background:var(--fail-bg)}
.reliance.unknown{border-color:var(--line);background:#f6f8fa}
.nw{white-space:nowrap}
"""


def _verdict(v) -> str:
    if v is None:
        return '<span class="muted">not run</span>'
    v = verdict_of({"verdict": v})
    return f'<span class="verdict v-{v}">{v.upper()}</span>'


def _bound(b) -> str:
    return f'<br><span class="small muted nw">bound {fmt(b, "+.3f")}</span>'


def _resolution(res) -> str:
    if isinstance(res, (list, tuple)) and res and all(isinstance(x, (int, float)) for x in res):
        return "×".join(fmt(x, "g") for x in res)
    return esc(res) if res else "—"


def _advice(key: str, d: dict) -> str:
    text = ADVICE.get(key, "—")
    res = d.get("cam_resolution")
    if key == "faithful-coarse" and res:
        text += f" Its CAM has only {_resolution(res)} cells."
    fails = [str(c) for c in d.get("fails") or []]
    if fails:
        text += f" The gate fails it on {esc(', '.join(fails))}."
    return text


def _methods_in_order(evidence: dict, methods: dict) -> list[str]:
    audited = [str(m) for m in (evidence.get("config") or {}).get("methods_audited") or []]
    keys = [str(m) for m in methods]
    return [m for m in audited if m in keys] + [m for m in keys if m not in audited]


def reliance_text(rel) -> str:
    if not isinstance(rel, dict):
        return ('<p class="reliance unknown"><b>Lesion reliance</b>: not available (completeness did not run on '
                "lesion images, or ended in error), so a coarse map cannot be told from a model that looks "
                "elsewhere.</p>")
    uses = rel.get("uses_lesion")
    if uses is True:
        cls, meaning = "uses", "the model's output depends on the lesion"
    elif uses is False:
        cls, meaning = "no", ("the model's output does not measurably depend on the lesion: it may rely on "
                              "something else (a shortcut)")
    else:
        cls, meaning = "unknown", "undetermined"
    return (f'<p class="reliance {cls}"><b>Lesion reliance {fmt(rel.get("value"), "+.3f")}</b> '
            f'{fmt_ci(rel.get("ci"), "+.3f")}, one-sided lower bound {fmt(rel.get("bound"), "+.3f")} over '
            f'{fmt(rel.get("n"))} lesion images — the ROAD score of the lesion itself used as a map '
            f'({fmt(rel.get("lesion_road"), "+.3f")}) minus that of a random pixel order '
            f'({fmt(rel.get("random_road"), "+.3f")}): <b>{meaning}</b>.</p>')


def diagnosis_section(evidence: dict) -> str:
    """The diagnosis panel (``<section id="diagnosis">``), or "" when the evidence has none."""
    dx = evidence.get("diagnosis")
    methods = dx.get("methods") if isinstance(dx, dict) else None
    if not isinstance(methods, dict) or not methods:
        return ""
    rows = []
    for m in _methods_in_order(evidence, methods):
        d = methods.get(m)
        if not isinstance(d, dict):
            continue
        key = str(d.get("diagnosis"))
        cls = key if key in ADVICE else "unknown"
        rows.append([f"<b>{esc(m)}</b>", f'<span class="dx dx-{cls}">{esc(d.get("label") or key)}</span>',
                     _verdict(d.get("completeness")) + _bound(d.get("completeness_bound")),
                     _verdict(d.get("utility")) + (_bound(d.get("utility_bound")) if d.get("utility") is not None
                                                   else ""),
                     _resolution(d.get("cam_resolution")), f'<span class="small">{_advice(key, d)}</span>'])
    rules = table(["diagnosis", "completeness", "utility", "model relies on the lesion"],
                  [[f'<span class="dx dx-{k}">{esc(k)}</span>', *map(esc, v)] for k, v in RULES.items()])
    return ('<section id="diagnosis"><h2>Diagnosis</h2>'
            "<p>Utility asks whether a map points at the lesion; completeness whether it shows what the model "
            "uses. Together with the <i>lesion reliance</i> — does the model's output depend on the lesion at all? "
            "(asked of the model, not of a map) — they tell a faithful but coarse map from a faithful map of a "
            "model that looks elsewhere.</p>"
            + reliance_text(dx.get("lesion_reliance"))
            + table(["method", "diagnosis", "completeness", "utility", "CAM resolution", "what to do"], rows,
                    "wide")
            + "<details><summary>How the diagnosis is decided</summary>" + rules
            + "<p class='small muted'>Verdicts of the primary model's results; a method whose completeness was "
              "not run or ended in error gets no diagnosis. Bounds: the one-sided bootstrap lower bounds the "
              "verdicts are decided on (pass iff > 0).</p></details></section>")


# -- completeness ---------------------------------------------------------------------------------------------
def _alpha(p) -> str:
    al = p.get("alpha") if isinstance(p, dict) else None
    return f"{100 * (1 - al):.0f} %" if isinstance(al, (int, float)) and not isinstance(al, bool) else "(1 − α)"


def rule_text(evidence: dict) -> str:
    p = (evidence.get("config") or {}).get("completeness") or {}
    fr = p.get("fractions") if isinstance(p, dict) else None
    fractions = ", ".join(fmt(f, "g") for f in fr) if isinstance(fr, list) and fr else "the configured fractions"
    fill = p.get("fill") if isinstance(p, dict) else None
    how = f"the fill “{esc(fill)}”"
    if fill in (None, "linear", "linear-exact"):
        how = ("noisy linear imputation (each removed pixel the mean of its neighbours, plus noise of std "
               f"{fmt(p.get('noise'), 'g')})")
    return (f"Per image, the pixels are ranked by the map (ties at random). For each fraction f in {{{fractions}}} "
            f"(<code>completeness.fractions</code>), the top f (MoRF, most relevant first) or the bottom f (LeRF) "
            f"of the pixels are removed and replaced by {how}, so the removal itself leaks no shape (ROAD, Rong et "
            f"al. 2022). With p the explained class's probability, the <b>ROAD score</b> = mean over f of "
            f"(p<sub>LeRF</sub> − p<sub>MoRF</sub>)/2, in [−0.5, 0.5]. The same score with a random pixel order "
            f"is the baseline. <b>Pass</b> iff the one-sided {_alpha(p)} bootstrap lower bound of "
            f"mean(ROAD − ROAD<sub>random</sub>) is above 0.")


def _base(r: dict, name: str) -> dict:
    return next((b for b in r.get("baselines") or [] if isinstance(b, dict) and b.get("name") == name), {})


def road_curve(r: dict) -> list[tuple[float, float, float]]:
    """(fraction, mean p MoRF, mean p LeRF), starting at 0 with the unperturbed probability when known."""
    d = r.get("details") or {}
    pts = [(F.num(c.get("fraction")), F.num(c.get("morf")), F.num(c.get("lerf")))
           for c in r.get("curve") or [] if isinstance(c, dict)]
    if not pts:  # older evidence: from the per-image curves
        pi = [p for p in r.get("per_image") or [] if isinstance(p, dict)]
        for k, f in enumerate(d.get("fractions") or []):
            mo = F.finite(p["morf"][k] for p in pi if isinstance(p.get("morf"), list) and len(p["morf"]) > k)
            le = F.finite(p["lerf"][k] for p in pi if isinstance(p.get("lerf"), list) and len(p["lerf"]) > k)
            pts.append((F.num(f), float(np.mean(mo)) if mo else math.nan, float(np.mean(le)) if le else math.nan))
    pts = [p for p in pts if math.isfinite(p[0])]
    base = F.num(d.get("base_probability"))
    if pts and math.isfinite(base) and min(p[0] for p in pts) > 0:
        pts.insert(0, (0.0, base, base))
    return sorted(pts)


def _grid(fig, n: int, ncols: int = 4, **kw):
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    return [axes[k // ncols][k % ncols] for k in range(n)]


@F._draw
def road_curves(results: list[dict]) -> str | None:
    """One panel per method: mean probability as the most (MoRF) or least (LeRF) relevant pixels are removed."""
    rs = [(r, road_curve(r)) for r in results]
    rs = [(r, c) for r, c in rs if c]
    if not rs:
        return None
    ncols = min(4, len(rs))
    fig = F._figure(max(5.2, 2.45 * ncols + 0.3), 2.45 * math.ceil(len(rs) / ncols) + 0.55)
    axes = _grid(fig, len(rs), sharey=True, sharex=True)
    colours = F.method_colours([str(r.get("method")) for r, _ in rs])
    for k, ((r, c), ax) in enumerate(zip(rs, axes)):
        x, mo, le = (np.array(v) for v in zip(*c))
        colour = colours[str(r.get("method"))]
        ax.fill_between(x, mo, le, color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, mo, color=colour, marker="v", markersize=3.5, linewidth=1.5)
        ax.plot(x, le, color=colour, marker="^", markersize=3.5, linewidth=1.2, linestyle="--")
        d = r.get("details") or {}
        road, rnd = F.num(d.get("mean_road")), F.num(_base(r, "random pixel order").get("value"))
        text = "\n".join(t for t in (f"ROAD {road:+.3f}" if math.isfinite(road) else "",
                                     f"random order {rnd:+.3f}" if math.isfinite(rnd) else "") if t)
        if text:
            ax.text(0.03, 0.04, text, transform=ax.transAxes, fontsize=7, va="bottom",
                    bbox={"facecolor": "white", "edgecolor": "#ccc", "boxstyle": "round,pad=0.25"})
        ax.grid(color="#eeeeee", linewidth=0.6)
        F._verdict_label(ax, r, str(r.get("method")))
        if k % ncols == 0:
            ax.set_ylabel("mean p(explained class)")
        ax.set_xlabel("fraction of pixels removed")
    axes[0].set_ylim(-0.02, 1.05)
    fig.legend(handles=[Line2D([], [], color="#444", marker="v", markersize=3.5,
                               label="MoRF: most relevant removed first"),
                        Line2D([], [], color="#444", marker="^", markersize=3.5, linestyle="--",
                               label="LeRF: least relevant removed first"),
                        Patch(facecolor="#444", alpha=0.15, label="gap (LeRF − MoRF): ROAD averages half of it")],
               loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle("ROAD: the explained class's probability as pixels are removed in the map's order", fontsize=9)
    return F.to_png(fig)


@F._draw
def deletion_insertion(results: list[dict]) -> str | None:
    """Mean deletion and insertion curves per method (RISE), AUCs in the legend."""
    rs = []
    for r in results:
        cv = (r.get("details") or {}).get("curves")
        if isinstance(cv, dict) and isinstance(cv.get("fractions"), list) and cv["fractions"]:
            rs.append((r, cv))
    if not rs:
        return None
    d0 = rs[0][0].get("details") or {}
    colours = F.method_colours([str(r.get("method")) for r, _ in rs])
    fig = F._figure(10.0, 3.5)
    axes = fig.subplots(1, 2, sharey=True)
    fill = {"zero": "black", "blur": "blurred", "mean": "the image mean"}
    start = {"zero": "a black image", "blur": "a blurred image", "mean": "the image mean"}
    d_fill, i_start = rs[0][1].get("deletion_fill"), rs[0][1].get("insertion_start")
    kinds = (("deletion", "deletion_auc", "random_deletion_auc",
              f"Deletion (pixels → {fill.get(d_fill, F.short(d_fill))}): lower AUC = more faithful"),
             ("insertion", "insertion_auc", "random_insertion_auc",
              f"Insertion (into {start.get(i_start, F.short(i_start))}): higher AUC = more faithful"))
    for ax, (key, auc, rauc, title) in zip(axes, kinds):
        handles = []
        for r, cv in rs:
            x, y = np.array([F.num(v) for v in cv["fractions"]]), np.array([F.num(v) for v in cv.get(key) or []])
            if len(y) != len(x):
                continue
            a = F.num((r.get("details") or {}).get(auc))
            colour = colours[str(r.get("method"))]
            ax.plot(x, y, color=colour, linewidth=1.4)
            handles.append(Line2D([], [], color=colour, linewidth=1.4,
                                  label=f"{F.short(r.get('method'), 12)}  AUC {a:.3f}" if math.isfinite(a)
                                  else f"{F.short(r.get('method'), 12)}  AUC —"))
        ra = F.num(d0.get(rauc))
        if math.isfinite(ra):
            handles.append(Line2D([], [], color="none", label=f"random order  AUC {ra:.3f}"))
        ax.set_title(title, parse_math=False)
        ax.set_xlabel(f"fraction of pixels {'deleted' if key == 'deletion' else 'inserted'}")
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=6.5)
        for text in ax.get_legend().get_texts():
            text.set_parse_math(False)
    axes[0].set_ylabel("mean p(explained class)")
    axes[0].set_ylim(-0.02, 1.05)
    fig.suptitle("Deletion and insertion curves (Petsiuk et al. 2018), mean over images", fontsize=9)
    return F.to_png(fig)


@F._draw
def road_boxplot(results: list[dict]) -> str | None:
    """Per-image ROAD per method beside the random order, the randomized model's maps and the blurred map."""
    rs = [r for r in results if isinstance(r.get("per_image"), list) and r["per_image"]]
    if not rs:
        return None

    def col(r, key):
        return F.finite(p.get(key) for p in r["per_image"] if isinstance(p, dict))

    random = col(rs[0], "random")
    fig = F._figure(max(6.0, 1.05 * len(rs) + 3.0), 3.7)
    ax = fig.add_subplot()
    F._boxes(ax, [random], [0], "#bdbdbd", width=0.5)
    w = 0.25
    F._boxes(ax, [col(r, "score") for r in rs], [i + 1 - 0.28 for i in range(len(rs))], "#4c72b0", width=w)
    F._boxes(ax, [col(r, "randomized") for r in rs], [i + 1 for i in range(len(rs))], "#f2f2f2", width=w,
             hatch="////")
    F._boxes(ax, [col(r, "blurred") for r in rs], [i + 1 + 0.28 for i in range(len(rs))], "#f6c28b", width=w)
    ax.axhline(0, color="black", linewidth=0.6)
    handles = [Patch(facecolor="#4c72b0", label="map (trained model)"),
               Patch(facecolor="#f2f2f2", hatch="////", edgecolor="black", label="randomized model's map"),
               Patch(facecolor="#f6c28b", label="blurred map (control)"),
               Patch(facecolor="#bdbdbd", label="random pixel order")]
    lesion = F.num(_base(rs[0], "lesion as map").get("value"))
    if not math.isfinite(lesion):
        lesion = F.num(((rs[0].get("details") or {}).get("lesion_reliance") or {}).get("lesion_road"))
    if math.isfinite(lesion):
        ax.axhline(lesion, color="#1a7f37", linestyle="--", linewidth=1.1)
        handles.append(Line2D([], [], color="#1a7f37", linestyle="--", label=f"lesion as map: mean {lesion:+.3f}"))
    F._tick_labels(ax, ["random\norder"] + [F.method_label(r) for r in rs])
    for tick, r in zip(ax.get_xticklabels()[1:], rs):
        tick.set_color(F.VERDICT_COLOURS.get(str(r.get("verdict")), "black"))
    ax.set_xlim(-0.6, len(rs) + 0.6)
    ax.set_ylabel("ROAD score per image\nmean over f of (p_LeRF − p_MoRF)/2")
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle("ROAD per image: each method's maps against a random order, the randomized model and a blur",
                 fontsize=9)
    return F.to_png(fig)


def _vs(value, random) -> str:
    """A right-aligned number with the random order's in brackets."""
    return f"\x00num{fmt(value)} <span class='muted'>({fmt(random)})</span>"


def baselines_table(rs: list[dict]) -> str:
    rows = []
    for r in rs:
        d = r.get("details") or {}
        v = verdict_of(r)
        road, blur = F.num(d.get("mean_road")), _base(r, "blurred-map control")
        above = math.isfinite(road) and math.isfinite(F.num(blur.get("value"))) and F.num(blur.get("value")) > road
        sigma = blur.get("sigma_px") if blur.get("sigma_px") is not None else d.get("blur_sigma_px")
        sigma = f" (σ {fmt(sigma, '.1f')} px)" if sigma is not None else ""
        rows.append([
            esc(r.get("method")), f'<span class="verdict v-{v}">{v.upper()}</span>',
            N(d.get("mean_road"), "+.3f"), fmt_ci(d.get("mean_road_ci"), "+.3f"),
            N(_base(r, "random pixel order").get("value"), "+.3f"),
            N(_base(r, "randomized model's maps").get("value"), "+.3f"),
            "\x00num" + fmt(blur.get("value"), "+.3f") + sigma + (" <b title='the blur scores higher than the "
                                                                   "map'>▲</b>" if above else ""),
            N(_base(r, "lesion as map").get("value"), "+.3f"),
            _vs(d.get("deletion_auc"), d.get("random_deletion_auc")),
            _vs(d.get("insertion_auc"), d.get("random_insertion_auc")),
            N(d.get("base_probability")), N(d.get("constant_maps"), "d")])
    if not rows:
        return ""
    head = ["method", "verdict", "mean ROAD", "CI", "random order", "randomized model's maps",
            "blurred-map control", "lesion as map", "deletion AUC (random)", "insertion AUC (random)",
            "p unperturbed", "constant maps"]
    return ("<h3>Baselines and curves</h3>" + table(head, rows, "wide")
            + "<p class='small muted'>Every column is a mean ROAD score over the same images, scored on the trained "
              "model. ▲: the blurred map scores higher than the map itself — ROAD favours blurry maps (Song et al. "
              "2023), so the map's detail is not what makes it faithful. Deletion / insertion AUC: area under the "
              "mean probability as the map's most relevant pixels are deleted / inserted (random pixel order in "
              "brackets); faithful maps have a lower deletion and a higher insertion AUC than the random order. "
              "p unperturbed: mean probability of the explained class on the intact images.</p>")


def _per_image(rs: list[dict]) -> str:
    rs = [r for r in rs if isinstance(r.get("per_image"), list) and r["per_image"]]
    if not rs:
        return ""
    road = {(str(r.get("method")), str(p.get("id"))): p.get("score") for r in rs for p in r["per_image"]}
    random, lesion = {}, {}
    for r in rs:
        for p in r["per_image"]:
            random.setdefault(str(p.get("id")), p.get("random"))
        rel = (r.get("details") or {}).get("lesion_reliance") or {}
        for p in rel.get("per_image") or []:
            if isinstance(p, dict):
                lesion.setdefault(str(p.get("id")), p.get("lesion_road"))
    rows = [[f"<code>{esc(i)}</code>", N(random.get(i), "+.3f"), N(lesion.get(i), "+.3f")]
            + [N(road.get((str(r.get("method")), i)), "+.3f") for r in rs] for i in random]
    head = ["image", "random order", "lesion as map"] + [esc(r.get("method")) for r in rs]
    return (f"<details><summary>Per-image ROAD ({len(rows)} images)</summary>{table(head, rows)}</details>")


def completeness_body(evidence: dict, rs: list[dict]) -> str:
    """Everything of the completeness section below its results table."""
    ok = [r for r in rs if verdict_of(r) in ("pass", "fail")]
    return "".join([
        figure("ROAD curves", road_curves, (ok,),
               "One panel per method: the mean probability of the explained class as a growing fraction of pixels "
               "is removed (imputed) in the map's order — most relevant first (MoRF, solid) or least relevant "
               "first (LeRF, dashed); at 0: the intact image. The shaded gap is what the ROAD score averages; the "
               "box gives the mean ROAD of the map and of a random pixel order (its MoRF and LeRF curves "
               "coincide on average). <b>Look for</b> MoRF falling fast while LeRF stays high: removing what the "
               "map highlights should hurt the model, removing the rest should not."),
        figure("deletion and insertion curves", deletion_insertion, (ok,),
               "Mean deletion curve (the map's most relevant pixels deleted first) and insertion curve (inserted "
               "first into a blank or blurred image) per method, with the area under each in the legend beside the "
               "random pixel order's. <b>Look for</b> deletion curves that drop early (low AUC) and insertion "
               "curves that rise early (high AUC), both beyond the random order's AUC."),
        figure("ROAD box plots", road_boxplot, (ok,),
               "Per-image ROAD score of each method's maps (blue) beside the same method's maps from the fully "
               "randomized model (hatched) and its maps Gaussian-blurred (orange: the blur control), and a random "
               "pixel order (grey). Green dashed line: the mean ROAD of the lesion itself used as a map. "
               "<b>Look for</b> blue boxes above the random order and above their randomized twin. A blurred box "
               "above the blue one is expected in part — ROAD favours blurry maps (Song et al. 2023) — and says "
               "the "
               "map's fine detail is not what makes it faithful; the lesion line shows how much the model's output "
               "depends on the lesion region at all."),
        guarded("baselines table", baselines_table, ok),
        guarded("per-image table", _per_image, ok),
    ])


def legend(crit: list[str]) -> str:
    """The verdict-matrix legend's sentences for the faithfulness and interpretability criteria present."""
    out = []
    if "completeness" in crit:
        out.append("<b>ΔROAD</b>: mean(ROAD − ROAD of a random pixel order), pass iff its lower bound > 0.")
    names = [f"<b>{h}</b> ({c})" for c, h in (("energy", "Δ"), ("focus", "Δ"), ("pointing", "Δhit")) if c in crit]
    if names:
        out.append(" and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
                   + ": mean(score − the average-mask prior's score), pass iff its lower bound > 0.")
    return (" " + " ".join(out)) if out else ""
