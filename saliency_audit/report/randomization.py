"""The randomization section's variants table: the verdict's statistic beside Smooth MPRT, Efficient MPRT and the
other cascade order (``details.variants`` of each randomization result)."""
from __future__ import annotations

from .markup import esc, fmt, table

_TITLES = {"ssim_drop": "SSIM drop (top-down)", "smooth_mprt": "Smooth MPRT", "emprt": "Efficient MPRT",
           "bottom_up": "SSIM drop, bottom-up", "top_down": "SSIM drop, top-down"}


def _mark(ok) -> str:
    return "" if ok is None else (' <b class="ok">✓</b>' if ok else ' <b class="no">✗</b>')


def _cell(v: dict) -> str:
    """One variant's numbers: d (lower bound) of its first and last stage, or the entropy rise (lower bound)."""
    if "first" in v:
        f, a = v["first"], v["all"]
        return (f"first {fmt(f.get('d'), '.2f')} ({fmt(f.get('lower'), '.2f')}) · all {fmt(a.get('d'), '.2f')} "
                f"({fmt(a.get('lower'), '.2f')}){_mark(v.get('would_pass'))}")
    return f"rise {fmt(v.get('value'), '+.3f')} ({fmt(v.get('lower'), '+.3f')}){_mark(v.get('would_pass'))}"


def variants_table(rs: list[dict]) -> str:
    """Methods × statistics; empty when no result carries variants."""
    with_v = [r for r in rs if isinstance((r.get("details") or {}).get("variants"), dict)]
    if not with_v:
        return ""
    keys: list[str] = []
    for r in with_v:
        keys += [k for k in r["details"]["variants"] if k not in ("images", "verdict", "image_passes") and k not in keys]
    rows = []
    for r in with_v:
        v = r["details"]["variants"]
        verdict = v.get("verdict") or {}
        rows.append([esc(r.get("method")),
                     f"{esc(verdict.get('statistic'))}: {fmt(verdict.get('value'), '.2f')} (bound "
                     f"{fmt(verdict.get('lower'), '.2f')}, n {fmt(verdict.get('n'), 'd')}) "
                     f"<b>{esc(str(r.get('verdict')).upper())}</b>"]
                    + [_cell(v[k]) if k in v else "—" for k in keys])
    images = max(int(r["details"]["variants"].get("images") or 0) for r in with_v)
    smooth = next((r["details"]["variants"]["smooth_mprt"] for r in with_v if "smooth_mprt" in r["details"]["variants"]),
                  None)
    head = ["method", "verdict (its statistic)"] + [esc(_TITLES.get(k, k)) for k in keys]
    text = (f"<p class='small'>The randomization test as the 2023–24 literature revises it, on the first {images} of "
            "each verdict's images; reported, never gating (<code>randomization.statistic</code> chooses the "
            "verdict's). Each cell: d and its one-sided lower bound after the first stage and after all blocks "
            "(✓: both clear the verdict's thresholds), or the mean relative entropy rise with its lower bound "
            "(✓: above 0). <b>Smooth MPRT</b> (Hedström et al. 2024) compares maps denoised over "
            + (f"{fmt(smooth.get('samples'), 'd')} noisy copies (noise {fmt(smooth.get('noise'), 'g')} × the image's "
               "range)" if smooth else "noisy copies")
            + ", so the gradient's shot noise cannot pass for change. <b>Efficient MPRT</b> (same paper) compares "
            "only the trained and the fully randomized model: the relative rise of the map's histogram entropy; a "
            "map that ignores the model rises by 0. <b>Bottom-up</b> (Binder et al. 2023) randomizes from the input "
            "block up: top-down randomization leaves the early features intact, so maps that mostly show the "
            "image's structure barely move; bottom-up destroys them first.</p>")
    return "<h3>Variants of the test</h3>" + text + table(head, rows)
