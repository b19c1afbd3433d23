"""Put the measured figures of ``benchmarks/results/*.json`` into README.md and the documentation pages
(``docs/**/*.md``), so they never quote a number the benchmarks did not produce.

    python benchmarks/readme_figures.py           # rewrite the generated blocks of README.md and docs/
    python benchmarks/readme_figures.py --check   # exit 1 (and show the difference) if a page is stale

A generated block sits between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``, in README.md or in
any page under ``docs/``; everything outside the blocks is prose kept by hand.  Every generator's block
stands exactly once across those files.  ``tests/test_readme_figures.py`` runs the check, so a benchmark
rerun that is not carried into the pages fails the suite.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- figures:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /figures:(?P=name) -->)", re.S)


def load_results(folder: Path = RESULTS) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _s(seconds: float) -> str:
    return f"{seconds:.0f} s"


def _x(ratio: float) -> str:
    return f"{ratio:.1f}×"


def quickstart_timing(r: dict) -> str:
    d = r["demo_audit"]
    everything, utility = d["demo_audit_all_criteria"], d["demo_audit_utility"]
    v = everything["verdicts"]
    ctl = everything.get("controls")
    controls = (f", plus {ctl['gated'] + ctl['report_only']} verdicts of the three controls" if ctl else "")
    return (f"On 2 idle CPU cores the whole demo audit ({everything['results']} verdicts: 9 criteria × 8 methods"
            f"{controls}) "
            f"takes {_s(everything['cold_s'])} with its maps computed cold and {_s(everything['warm_s'])} warm "
            f"(maps, ROAD's results, predictions and the report's figures come from the cache); the demo models "
            f"ship with the "
            f"package (training the five again takes {_s(d['train_demo_models_s'])}); `pytest audits/ -k utility` "
            f"takes "
            f"{_s(utility['cold_s'])} cold. {v['pass']} of the {everything['results']} verdicts pass, so the "
            f"demo's exit status is 1: some methods fail some criteria (see the expected demo verdicts), which is "
            f"the gate working. (`benchmarks/results/demo_audit.json`)\n")


def faithfulness_timing(r: dict) -> str:
    fi = r["demo_audit"]["demo_audit_faithfulness_interpretability"]
    return (f"It takes {_s(fi['cold_s'])} on 2 idle CPU cores with its maps computed cold and "
            f"{_s(fi['warm_s'])} warm (`benchmarks/results/demo_audit.json`).\n")


def demo_audit_table(r: dict) -> str:
    d = r["demo_audit"]
    rows = [("`pytest audits/ -k utility` (8 methods, 48 images)", d["demo_audit_utility"]),
            ('`pytest audits/ -k "completeness or energy or focus or pointing"`',
             d["demo_audit_faithfulness_interpretability"]),
            ("`pytest audits/` (all 9 criteria × 8 methods; HTML report included)", d["demo_audit_all_criteria"])]
    out = ["| what | verdicts | maps cold | warm (maps cached) | cold / warm |",
           "|---|---|---|---|---|",
           f"| training the five demo models (shipped; only to retrain) | — | {_s(d['train_demo_models_s'])} | — | — |"]
    out += [f"| {what} | {x['results']} ({x['verdicts']['pass']} pass) | {_s(x['cold_s'])} | {_s(x['warm_s'])} | "
            f"{_x(x['cold_over_warm'])} |" for what, x in rows]
    bn = d["batched_vs_naive"]
    names = {"grad": "gradient", "ig": "IG", "gradcam": "GradCAM"}
    out += ["", f"Batched maps vs. one image at a time ({bn[0]['n_images']} images, same maps to "
                f"{max(b['max_abs_map_difference'] for b in bn):.0e}): "
            + ", ".join(f"{names.get(b['method'], b['method'])} {_x(b['speedup'])}" for b in bn) + "."]
    rz = sorted(r["randomization"], key=lambda x: x["ratio"])
    out += [f"A cascading-randomization audit ({rz[0]['stages']} stages, {rz[0]['n_images']} images) against "
            "computing the same maps once: " + ", ".join(f"`{x['method']}` {_x(x['ratio'])}" for x in rz) + "."]
    return "\n".join(out) + "\n"


def road_peers_table(r: dict) -> str:
    sp = r["road_peers"]["speed"]
    zeros = {m: v.get("zero_pixels") for m, v in r["road_peers"].get("pixels_removed", {}).items()}
    label = {"gradcam": f"GradCAM ({100 * zeros.get('gradcam', 0):.0f} % of pixels tie at 0)",
             "grad": "gradient (no ties)"}
    out = ["| maps | ours | pytorch-grad-cam | Quantus | mean ROAD: ours / grad-cam / Quantus |", "|---|---|---|---|---|"]
    for m, row in sp.items():
        o, g, q = row["ours"], row["grad-cam"], row["quantus"]
        out.append(f"| {label.get(m, m)} | {o['ms_per_image']:.0f} ms / image | {g['ms_per_image']:.0f} ms "
                   f"(**{_x(row['speedup_vs_grad-cam'])}**) | {q['ms_per_image']:.0f} ms "
                   f"({_x(row['speedup_vs_quantus'])}) | {o['mean_road']:.3f} / {g['mean_road']:.3f} / "
                   f"{q['mean_road']:.3f} |")
    agree = r["road_peers"]["agreement"]
    out += ["", "Where the definitions agree (tie-free maps, whole-pixel fractions, noise off) the largest "
                "difference to ours is " + ", ".join(f"{k} {v['max_abs_diff']:.0e}" for k, v in agree.items()) + "."]
    return "\n".join(out) + "\n"


def dataset_memory_table(r: dict) -> str:
    out = ["| images | peak RSS | peak Python/numpy allocations | index build | per image (decode + resize) |",
           "|---|---|---|---|---|"]
    for run in r["dataset_memory"]["runs"]:
        out.append(f"| {run['n']:,} | {run['peak_rss_mb']:.0f} MB | {run['traced_peak_mb']:.1f} MB | "
                   f"{run['index_seconds']:.2f} s | {1000 * run['seconds_per_image']:.0f} ms |")
    return "\n".join(out) + "\n"


def densenet_table(r: dict) -> str:
    d = r["densenet121"]
    out = [f"Against the model's plain batched forward + backward to the input "
           f"({d['forward_backward_seconds_per_image']:.3f} s per image; `benchmarks/results/densenet121.json`):",
           "", "| method | s / image | × forward+backward |", "|---|---|---|"]
    notes = {"ig": " (10 steps)", "xrai": " (IG + segmentation)", "sg": " (25 draws)", "sig": " (25 × 10)"}
    out += [f"| `{m['method']}`{notes.get(m['method'], '')} | {m['seconds_per_image']:.2f} | "
            f"{m['ratio_to_forward_backward']:.1f} |"
            for m in sorted(d["methods"], key=lambda m: m["seconds_per_image"])]
    return "\n".join(out) + "\n"


def methods_table(r: dict) -> str:
    d = r["methods"]
    notes = {"scorecam": " (1024 channels)", "occlusion": " (15 × 15 windows)", "lime": " (1000 samples)"}
    out = [f"The added methods on the same densenet121, {d['images']} images (`benchmarks/results/methods.json`; "
           f"forward + backward {d['forward_backward_seconds_per_image']:.3f} s, forward "
           f"{d['forward_seconds_per_image']:.3f} s per image):", "",
           "| method | s / image | × forward+backward | × forward |", "|---|---|---|---|"]
    out += [f"| `{m['method']}`{notes.get(m['method'], '')} | {m['seconds_per_image']:.2f} | "
            f"{m['ratio_to_forward_backward']:.1f} | {m['ratio_to_forward']:.1f} |"
            for m in sorted(d["methods"], key=lambda m: m["seconds_per_image"])]
    out += ["", "Against the peers on the same model, images and parameters, in the same run (peer time / ours; "
                "above 1: ours is faster):", "", "| method | peer | ours s / image | peer s / image | peer / ours |",
            "|---|---|---|---|---|"]
    out += [f"| `{p['method']}` | {p['peer']} | {p['ours_s_per_image']:.1f} | {p['peer_s_per_image']:.1f} | "
            f"{_x(p['peer_over_ours'])} |" for p in d["peers"] if "skipped" not in p]
    return "\n".join(out) + "\n"


def demo_verdicts_table(r: dict) -> str:
    """The expected demo verdicts of the five criteria with their own columns, from the full demo audit."""
    every = r["demo_audit"]["demo_verdicts"]
    rows = {(v["criterion"], v["method"]): v for v in every if not v.get("control")}
    methods = list(dict.fromkeys(v["method"] for v in every if not v.get("control")))

    def verdict(v: dict) -> str:
        return "**pass**" if v["verdict"] == "pass" else v["verdict"]

    def used(v: dict) -> str:
        return f" ({v['n']}/{v['n_max']})" if v.get("n_max") and v["n"] != v["n_max"] else ""

    out = [f"| method | utility: AP (prior's AP) | randomization: SSIM head → all (floor) | "
           "label rand.: SSIM (floor), d | repeatability: SSIM | reproducibility: SSIM |", "|---|---|---|---|---|---|"]
    for m in methods:
        u, rz, lb = rows[("utility", m)], rows[("randomization", m)], rows[("label_randomization", m)]
        rp, rd = rows[("repeatability", m)], rows[("reproducibility", m)]
        out.append(f"| `{m}` | {u['mean_ap']:.3f} ({u['prior_ap']:.3f}) {verdict(u)}{used(u)} | {rz['head_ssim']:.2f} → "
                   f"{rz['all_ssim']:.2f} ({rz['floor']:.2f}) {verdict(rz)}{used(rz)} | {lb['ssim']:.2f} "
                   f"({lb['floor']:.2f}), d {lb['value']:.2f} {verdict(lb)}{used(lb)} | {rp['value']:.2f} "
                   f"{verdict(rp)}{used(rp)} | {rd['value']:.2f} {verdict(rd)}{used(rd)} |")
    five = [v for v in rows.values() if v["criterion"] in
            ("utility", "randomization", "label_randomization", "repeatability", "reproducibility")]
    rest = [v for v in rows.values() if v not in five]
    n_pass = sum(v["verdict"] == "pass" for v in rows.values())
    out += ["", f"{sum(v['verdict'] == 'pass' for v in five)} of these {len(five)} (criterion, method) pairs pass; "
                f"with the four faithfulness and interpretability criteria below "
                f"({sum(v['verdict'] == 'pass' for v in rest)} of {len(rest)} pass) the full demo audit gives "
                f"{n_pass} passes of {len(rows)}, so the demo run exits 1 — the gate doing its job. "
                "(n/N: the sequential verdict stopped after n of its N images; `benchmarks/results/demo_audit.json`)"]
    return "\n".join(out) + "\n" + controls_table(every)


CRITERIA = ("utility", "randomization", "label_randomization", "repeatability", "reproducibility", "completeness",
            "energy", "focus", "pointing")


def controls_table(every: list[dict]) -> str:
    """The controls' verdicts on the demo, each against what its criterion says it must get."""
    cs = {(v["criterion"], v["method"]): v for v in every if v.get("control")}
    if not cs:
        return ""
    controls = list(dict.fromkeys(m for _, m in cs))

    def cell(v):
        if v is None:
            return "—"
        if v.get("expected") is None:
            return f"{v['verdict']} (reported)"
        return f"{v['verdict']} ✓" if v.get("met") else f"**{v['verdict']} — WRONG**"

    out = ["", "The controls (`--controls`, on for the demo), each verdict against what its criterion says it must "
               "get (✓: as expected):", "",
           "| control | " + " | ".join(c.replace("_", " ") for c in CRITERIA) + " |",
           "|---" * (len(CRITERIA) + 1) + "|"]
    for m in controls:
        role = next(v["control"] for (_, mm), v in cs.items() if mm == m)
        out.append(f"| `{m}` ({role}) | " + " | ".join(cell(cs.get((c, m))) for c in CRITERIA) + " |")
    gated = [v for v in cs.values() if v.get("expected") is not None]
    out += ["", f"{sum(bool(v.get('met')) for v in gated)} of {len(gated)} gated control verdicts come out as "
                "expected, so the audit discriminates on the demo; control verdicts are not counted in the gate's "
                "verdicts above."]
    return "\n".join(out) + "\n"


def sequential_figures(r: dict) -> str:
    d, dn, e = r["sequential"]["demo"], r["sequential"]["densenet121"], r["sequential_error"]
    seq, fixed = d["sequential"], d["fixed"]
    dis = d["disagreements"]
    wrong = {(w["values"], w["n_images"]): w for w in e["wrong_pass_rate"]}
    left = wrong[("left-skewed beta(5, 2), centred", 48)]
    sym = [w for k, w in wrong.items() if not k[0].startswith("left")]
    powers = e["power"]
    lo, hi = sorted((dn["sequential_projected"], dn["sequential_projected_same_images"]))
    out = [f"On the demo (`benchmarks/bench_sequential.py`, both runs cold, one invocation) the sequential audit "
           f"spent **{seq['image_passes']:,} of the fixed-n audit's {fixed['image_passes']:,} image-passes "
           f"({100 * d['passes_share']:.0f} %)**; its plan put it between {seq['plan_least']:,} (every verdict decided "
           f"at its first look) and {seq['plan_most']:,}. In wall time it took {_s(seq['seconds'])} against "
           f"{_s(fixed['seconds'])} ({100 * d['time_share']:.0f} %; measured before the randomization criterion "
           "drew five heads and the demo ran its controls, so the quickstart's cold figure is larger). "
           f"{d['agree']} of {d['pairs']} verdicts agree"
           + ("." if not dis else "; " + "; ".join(
               f"`{x['pair']}` is a {x['sequential']} sequentially (it stopped at {x['n_used']} of {x['n_max']} "
               f"images, bound {x['sequential_bound']:+.3f}) and a {x['fixed']} with a fixed n (bound "
               f"{x['fixed_bound']:+.3f}): its mean sits on the threshold, where a few images decide either way"
               for x in dis) + "."),
           "",
           f"Error and power (`benchmarks/bench_sequential_error.py`, {e['reps']:,} simulated audits per row, the "
           f"true mean at the threshold): the sequential rule passes wrongly {min(w['sequential'] for w in sym):.3f}–"
           f"{max(w['sequential'] for w in sym):.3f} of the time on uniform, normal and right-skewed per-image values, "
           f"where the fixed-n bootstrap does {min(w['fixed_bca'] for w in sym):.3f}–{max(w['fixed_bca'] for w in sym):.3f}; "
           f"on strongly left-skewed values (Beta(5, 2), 48 images) {left['sequential']:.3f} against "
           f"{left['fixed_bca']:.3f}. At an effect a fixed-n t-test finds 80 % of the time, the sequential rule finds "
           + "; ".join(f"{p['sequential']:.0%} (the bootstrap {p['fixed_bca']:.0%}) at {p['n_images']} images, "
                       f"using {p['mean_images_sequential']:.0f} of them on average" for p in powers) + ".",
           "",
           f"For densenet121 at 224 px the full protocol at n = {dn['n_images']} (eight methods, "
           f"{dn.get('stages', '9')} cascade stages, a replicate, a reference and a random-label model) plans "
           f"{dn['fixed_passes']:,} image-passes fixed; sequentially between {dn['sequential_least']:,} and "
           f"{dn['sequential_most']:,}, and {lo:,}–{hi:,} ({100 * lo / dn['fixed_passes']:.0f}–"
           f"{100 * hi / dn['fixed_passes']:.0f} %) if each pair stops where it did on the demo (after the same "
           "number of images, or the same share of them)."]
    run = r["sequential"].get("densenet121_run")
    if run:
        dis = run["disagreements"]
        out += ["", f"Run for real on the same densenet121 models (random weights: the passes, not the verdicts, are "
                    f"the point; {', '.join(f'`{m}`' for m in run['methods'])}, every criterion, {run['n_images']} "
                    f"images each): sequential {run['sequential']['image_passes']:,} of {run['fixed']['image_passes']:,} "
                    f"image-passes ({100 * run['passes_share']:.0f} %), {_s(run['sequential']['seconds'])} against "
                    f"{_s(run['fixed']['seconds'])}; {run['agree']} of {len(run['verdicts'])} verdicts agree"
                    + ("." if not dis else " (" + "; ".join(
                        f"`{x['pair']}` {x['sequential']} sequentially, stopped {x['stopped']} at {x['n_used']} of "
                        f"{x['n_max']}, {x['fixed']} with a fixed n" for x in dis) + ").")]
    return "\n".join(out) + "\n"


def flip_rate_table(r: dict) -> str:
    """Head-stage verdict flips across randomization seeds, per method, for each draw design: every image the
    same D draws (shared, D = 1, 3, 5) or every image its own draw (per image) (bench_flip_rate.py)."""
    f = r["flip_rate"]
    models = [m for m in ("demo", "resnet18") if m in f]
    out = []

    def cell(x, seeds):
        return "—" if x is None else (f"{x['flip_rate']:.1f} ({x['passes']}/{seeds}; d {x['d_mean']:.2f} ± "
                                       f"{x['d_sd_across_seeds']:.2f})")

    for m in models:
        fm = f[m]
        draws = fm["draws"]
        out += [f"**{m}**" + (f" (accuracy {fm['accuracy_on_audited_images']:.2f} on the audited images)"
                              if fm.get("accuracy_on_audited_images") is not None else ""), "",
                "| method | " + " | ".join(f"shared, {d} draw{'s' if d > 1 else ''}" for d in draws)
                + " | per image, 1 draw | all-blocks stage: shared, 1 draw | all-blocks stage: per image |",
                "|---" * (4 + len(draws)) + "|"]
        for meth, x in fm["methods"].items():
            pi = x.get("per_image") or {}
            a = x.get("all_stage") or {}
            cells = [cell(x["draws"].get(str(d)), fm["seeds"]) for d in draws]
            cells.append(cell(pi.get("head"), fm["seeds"]))
            cells.append(f"{a['passes']}/{fm['seeds']} pass" if a else "—")
            cells.append(cell(pi.get("all_stage"), fm["seeds"]))
            out.append(f"| `{meth}` | " + " | ".join(cells) + " |")
        out.append("")
    f0 = f[models[0]]
    out += [f"Each cell: the share of {f0['seeds']} randomization seeds whose verdict differs from the majority's "
            "(passes of the seeds; mean d ± its SD across seeds), at a fixed "
            f"{f0['n_images']} images; the head stage unless the column says otherwise "
            "(`benchmarks/bench_flip_rate.py`, `benchmarks/results/flip_rate.json`)."]
    return "\n".join(out) + "\n"


def variants_table(r: dict) -> str:
    """Every randomization statistic for the paper's methods and the controls on the demo
    (bench_randomization_variants.py)."""
    v = r["randomization_variants"]
    c = v["config"]

    def mark(ok):
        return "**pass**" if ok else "fail"

    out = ["| method | SSIM drop, top-down: head → all d (verdict) | Smooth MPRT: head → all d | Efficient MPRT: "
           "entropy rise | bottom-up: input → all d |", "|---|---|---|---|---|"]
    for m, x in v["methods"].items():
        sm, bu, e = x.get("smooth_mprt"), x.get("bottom_up"), x.get("emprt")
        head = x["head_ssim"]
        out.append(
            f"| `{m}` | SSIM {head:.2f} → {x['all_ssim']:.2f}, {mark(x['verdict'] == 'pass')} ({x['n']} images) | "
            + (f"{sm['first_d']:.2f} → {sm['all_d']:.2f} {mark(sm['would_pass'])}" if sm else "—") + " | "
            + (f"{e['value']:+.2f} (bound {e['lower']:+.2f}) {mark(e['would_pass'])}" if e else "—") + " | "
            + (f"{bu['first_d']:.2f} → {bu['all_d']:.2f} {mark(bu['would_pass'])}" if bu else "—") + " |")
    out += ["", f"Variants on the first {c['variant_images']} images of each verdict; Smooth MPRT with "
                f"{c['smooth_samples']} noisy copies at noise {c['smooth_noise']}; d passes at ≥ {c['head_min']} "
                f"after the first stage and ≥ {c['all_min']} after all; the entropy rise passes when its lower bound "
                "is above 0. The variants cost "
                f"{sum(x['variant_image_passes'] for x in v['methods'].values()):,} image-passes beside the verdicts' "
                f"{sum(x['image_passes'] - x['variant_image_passes'] for x in v['methods'].values()):,}, almost all "
                "of them Smooth MPRT's (`benchmarks/bench_randomization_variants.py`, "
                "`benchmarks/results/randomization_variants.json`)."]
    return "\n".join(out) + "\n"


HEAD_MODELS = {"demo": "DemoCNN, the demo's primary (64 channels)", "demo-resnet": "DemoResNet, the demo's other "
               "architecture (residual, 64 channels)", "demo-expand": "DemoCNN + 1×1 conv to 256 channels",
               "demo-wide": "DemoCNN, 256 channels in its last block", "demo-lr1e-3": "DemoCNN, lr 1e-3",
               "demo-lr3e-4": "DemoCNN, lr 3e-4", "demo-1epoch": "DemoCNN, 1 epoch (has not learned)",
               "resnet18": "torchvision resnet18 (512 channels)"}


def head_sensitivity_table(r: dict) -> str:
    """Channel-gradient redundancy against head-stage SSIM (bench_head_sensitivity.py)."""
    h = r["head_sensitivity"]
    out = ["| model, trained on the demo images | validation accuracy | participation ratio: trained (untrained) | "
           "gradient: head SSIM (floor) | GradCAM: head SSIM (floor) |", "|---|---|---|---|---|"]
    for k in [m for m in HEAD_MODELS if m in h] + [m for m in h if m not in HEAD_MODELS]:
        x = h[k]
        acc = (x.get("training") or {}).get("val_accuracy")
        out.append(f"| {HEAD_MODELS.get(k, k)} | {'—' if acc is None else f'{acc:.3f}'} | "
                   f"{x['participation_ratio']:.1f} ({x['participation_ratio_untrained']:.1f}) of {x['channels']} | "
                   f"{x['grad']['head_ssim_mean']:.2f} "
                   f"({x['grad']['noise_floor']:.2f}) | {x['gradcam']['head_ssim_mean']:.2f} "
                   f"({x['gradcam']['noise_floor']:.2f}) |")
    out += ["", "Participation ratio: the effective number of distinct patterns among the last layer's channel "
                "gradients (1: all channels alike). Head SSIM: the mean over 5 random heads, 24 images "
                "(`benchmarks/bench_head_sensitivity.py`, `benchmarks/results/head_sensitivity.json`; the shipped "
                "demo models have no training record here: the primary's validation accuracy is 0.968)."]
    return "\n".join(out) + "\n"


def _rate(row: dict | None) -> str:
    """A wrong-pass rate in % with its Monte-Carlo interval; bold and ▲ when the interval lies above alpha."""
    if row is None:
        return "—"
    lo, hi = row["wilson"]
    text = f"{100 * row['rate']:.1f} ({100 * lo:.1f}–{100 * hi:.1f})"
    return f"**{text} ▲**" if row["above_alpha"] else text


def error_rates_table(r: dict) -> str:
    """Wrong-pass rates at a true mean exactly on the threshold, per distribution and rule, and the Holm gate's
    family-wise rate (bench_error_rates.py)."""
    e = r["error_rates"]
    st, alpha = e["settings"], e["alpha"]
    cells = {(x["distribution"], x["rule"], x["n"]): x for x in e["fixed"] + e["sequential"]}
    floor = [n for n, d in e["distributions"].items() if d["kind"] == "FloorTable"]

    def label(name: str, known: bool = False) -> str:
        what = name if e["distributions"][name]["kind"] == "Shape" else f"`{name}`"
        return what + (", floor as known (old rule)" if known else "")

    def line(name: str, known: bool, columns: list[tuple[str, int]]) -> str:
        return f"| {label(name, known)} | " + " | ".join(_rate(cells.get((name, rule, n))) for rule, n in columns) + " |"

    fixed = [("fixed", n) for n in st["fixed_sizes"]]
    out = [f"Wrong-pass rate in % (Monte-Carlo 95 % Wilson interval) with the true mean exactly on the threshold; "
           f"**bold ▲**: the whole interval lies above {100 * alpha:.0f} %.", "",
           "| values | " + " | ".join(f"fixed n = {n}" for _, n in fixed) + " |", "|---" * (len(fixed) + 1) + "|"]
    for name in e["distributions"]:
        out.append(line(name, False, fixed))
        if name in floor:
            out.append(line(name, True, [("fixed, floor as known", n) for _, n in fixed]))
    seq = [(rule, n) for rule in ("obf", "obf + futility", "betting") for n in st["sequential_sizes"]]
    out += ["", "| values | " + " | ".join(f"{rule}, N = {n:,}" for rule, n in seq) + " |", "|---" * (len(seq) + 1) + "|"]
    for name in e["distributions"]:
        out.append(line(name, False, seq))
        if name in floor:
            out.append(line(name, True, [("obf, floor as known" if rule == "obf" else "-", n) for rule, n in seq]))
    audits = st["audits"]

    def per_size(plan: dict) -> str:
        return ", ".join(f"{a:,} at N = {int(n):,}" for n, a in plan.items())

    mine, product = f"rate_{st['resamples']}", f"rate_{st['product_default_resamples']}"
    same = "; ".join(f"{x['distribution']} at n = {x['n']}: {100 * x[mine]:.1f} % against {100 * x[product]:.1f} %"
                     for x in e["resamples_check"])
    holm = {h["rule"]: h for h in e["holm"]}
    hf = holm["fixed"]
    out += ["", f"Audits per cell: {max(audits['fixed'].values()):,} at a fixed n; obf {per_size(audits['obf'])}; "
                f"betting {per_size(audits['betting'])} (the floor criteria {per_size(audits['betting_floor'])}: every "
                "look recomputes their floor and with it every bet, about 14 s an audit at N = 2,000). A criterion's row "
                f"cycles through the demo's 8 methods' per-image terms. The fixed-n bootstrap uses {st['resamples']:,} "
                f"resamples, the product {st['product_default_resamples']:,}; on the same draws {same}.",
            "",
            f"Holm over a gate of {hf['verdicts']} verdicts (the demo's 9 criteria × 8 methods at their demo image "
            f"counts, each drawn from its own method's terms at the threshold; "
            f"{hf['family']['holm']['audits']:,} simulated audits at fixed n, "
            f"{holm['obf + futility']['family']['holm']['audits']:,} with obf + futility, "
            f"{holm['betting']['family']['holm']['audits']:,} with betting): without a correction some verdict passes in "
            f"{100 * hf['family']['none']['rate']:.1f} % of fixed-n audits; with Holm at family alpha {alpha:g} some "
            f"pass is wrong in {_rate(hf['family']['holm'])} % (fixed n, {hf['resamples']:,} resamples), "
            f"{_rate(holm['obf + futility']['family']['holm'])} % (obf + futility) and "
            f"{_rate(holm['betting']['family']['holm'])} % (betting).",
            ""]
    def which(c: dict) -> str:
        size = f"n = {c['n']}" if c["rule"] == "fixed" else f"N = {c['n']:,}"
        alone = "" if c.get("method") is None else f" `{c['method']}`"
        return f"{label(c['distribution'])}{alone}, {c['rule']}, {size}: {_rate(c)} %"

    conf = e.get("confirmation") or []
    if conf:
        still = [c for c in conf if c["above_alpha"]]
        back = [c for c in conf if not c["above_alpha"]]
        within = "; ".join(which(c).rsplit(": ", 1)[0] + f" ({100 * c['rate']:.1f} %)" for c in back)
        out += [f"Flagged cells rerun on fresh draws ({len(conf)}: rows flagged on fewer than 2,000 audits, and "
                "single methods whose own audits within a row were flagged): "
                + (("still above 5 %: " + "; ".join(which(c) for c in still)) if still else "none stays above 5 %")
                + (f"; back within: {within}" if back else "") + ".", ""]
    tails = e.get("long_lower_tails") or []
    if tails:
        above = [c for c in tails if c["above_alpha"]]
        methods = {(c["distribution"], c["method"]) for c in tails}
        out += [f"Single methods whose per-image terms have a long lower tail (skewness ≤ −0.4: {len(methods)} of the "
                f"demo's {sum(len(d['methods']) for d in e['distributions'].values() if d['kind'] != 'Shape')} "
                f"(check, method) tables; fixed n = {', '.join(str(n) for n in sorted({c['n'] for c in tails}))}, "
                f"{tails[0]['audits']:,} audits each): "
                + ("; ".join(f"{which(c)} (skewness {c['skewness']:+.2f})" for c in above) if above else "none")
                + f" lie above 5 %, the other {len(tails) - len(above)} cells do not (were every rate exactly 5 %, "
                  f"about {0.025 * len(tails):.0f} of the {len(tails)} intervals would lie above by chance).", ""]
    out += [f"The study took {e['total_seconds'] / 60:.0f} min on one core of a shared machine "
            f"(the follow-ups below the tables {e.get('confirmation_seconds', 0) / 60:.0f} min more; `benchmarks/bench_error_rates.py`, "
            "`benchmarks/results/error_rates.json`)."]
    return "\n".join(out) + "\n"

def demo_findings_table(r: dict) -> str:
    """The multi-label demo audited per finding: each finding's output AUROC and each method's verdicts."""
    d = r["demo_findings_audit"]
    dets = r.get("demo_findings", {}).get("models", {}).get("multilabel", {})
    rows = {(v["criterion"], v["method"], v["finding"]): v for v in d["results"] if not v["control"]}
    crit = [c for c in ("utility", "randomization", "label_randomization", "completeness")
            if any(k[0] == c for k in rows)]
    short = {"utility": "utility ΔAP", "randomization": "randomization d", "label_randomization": "label rand. d",
             "completeness": "completeness"}

    def cell(v) -> str:
        if v is None:
            return "—"
        num = f"{v['value']:+.2f} " if isinstance(v.get("value"), (int, float)) else ""
        return num + ("**pass**" if v["verdict"] == "pass" else v["verdict"])

    head = ["finding (output AUROC)", "method", *(short[c] for c in crit)]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in d["findings"]:
        auroc = (dets.get("auroc") or {}).get(f, d["auroc"].get(f))
        for k, m in enumerate(d["methods"]):
            first = f"{f} ({auroc:.2f})" if k == 0 and isinstance(auroc, (int, float)) else (f if k == 0 else "")
            out.append(f"| {first} | `{m}` | " + " | ".join(cell(rows.get((c, m, f))) for c in crit) + " |")
    gated = [v for v in d["results"] if v["control"] and v["as_expected"] is not None]  # completeness: report-only
    met = sum(bool(v["as_expected"]) for v in gated)
    n_pass = sum(v["verdict"] == "pass" for v in rows.values())
    out += ["", f"{n_pass} of {len(rows)} verdicts pass; the controls (edge, random, oracle per finding) come out as "
                f"their criteria say in {met} of the {len(gated)} verdicts where a criterion says what they must get "
                f"(completeness states nothing for them). `{d['command']}`, {d['seconds_cold']:.0f} s cold "
                f"on {d['machine']['cpus']} CPU cores (`benchmarks/results/demo_findings_audit.json`; the AUROC from "
                f"`benchmarks/results/demo_findings.json`, 400 test images)."]
    return "\n".join(out) + "\n"


def estimate_figures(r: dict) -> str:
    e = r["estimate"]["runs"]

    def one(name: str, what: str) -> str:
        x = e[name]
        est = x["estimate"]
        return (f"{what}: the first verdict that computes maps is `{x['first_verdict']}`; the estimate, after {_s(est['after_seconds'])}, "
                f"said {_s(est['seconds_left'])} left (between {_s(est.get('seconds_left_at_least', 0))} and "
                f"{_s(est['seconds_left_at_most'])}), and the run took {_s(x['true_seconds_left'])} more: "
                f"{100 * x['error']:+.0f} %")
    return ("Measured on cold runs (`python benchmarks/bench_estimate.py`, `benchmarks/results/estimate.json`; "
            "2 CPU cores): " + one("demo", "the full demo audit") + "; "
            + one("densenet121", "a random-weight densenet121 at 112 px, grad, gradcam and ig, 16 images")
            + ".\n")


GENERATORS = {"estimate": estimate_figures, "demo-findings": demo_findings_table, "error-rates": error_rates_table,
              "head-sensitivity": head_sensitivity_table, "flip-rate": flip_rate_table,
              "randomization-variants": variants_table,
              "demo-verdicts": demo_verdicts_table, "sequential": sequential_figures, "methods": methods_table, "quickstart-timing": quickstart_timing, "faithfulness-timing": faithfulness_timing,
              "demo-audit": demo_audit_table, "road-peers": road_peers_table,
              "dataset-memory": dataset_memory_table, "densenet": densenet_table}


def render(text: str, results: dict) -> str:
    """``text`` with every generated block rewritten from ``results``; an unknown block name is an error."""
    def block(m: re.Match) -> str:
        name = m["name"]
        if name not in GENERATORS:
            raise KeyError(f"block figures:{name} has no generator (known: {', '.join(GENERATORS)})")
        return m.group(1) + GENERATORS[name](results) + m.group(4)

    return BLOCK.sub(block, text)


def pages(root: Path = ROOT) -> list[Path]:
    """The files whose blocks are generated: README.md, then every Markdown page under docs/, sorted."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def block_names(texts: dict[Path, str]) -> dict[str, list[Path]]:
    """Block name -> the files it stands in (a file once per occurrence)."""
    found: dict[str, list[Path]] = {}
    for path, text in texts.items():
        for m in BLOCK.finditer(text):
            found.setdefault(m["name"], []).append(path)
    return found


def placement_problems(texts: dict[Path, str], root: Path = ROOT) -> list[str]:
    """Every generator's block must stand exactly once across the files (an unknown one is render's error)."""
    found = block_names(texts)
    out = []
    for name in GENERATORS:
        where = found.get(name, [])
        if len(where) != 1:
            out.append(f"figures:{name}: {len(where)} blocks"
                       + (f" ({', '.join(str(p.relative_to(root)) for p in where)})" if where else "")
                       + ", expected exactly one in README.md or docs/")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if a page is out of date")
    args = p.parse_args(argv)
    texts = {path: path.read_text(encoding="utf-8") for path in pages()}
    problems = placement_problems(texts)
    for line in problems:
        print(line, file=sys.stderr)
    results = load_results()
    stale = False
    for path, old in texts.items():
        new = render(old, results)
        if new == old:
            continue
        name = str(path.relative_to(ROOT))
        if args.check:
            stale = True
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       name, f"{name} (from benchmarks/results)"))
        else:
            path.write_text(new, encoding="utf-8")
    return 1 if problems or stale else 0


if __name__ == "__main__":
    sys.exit(main())
