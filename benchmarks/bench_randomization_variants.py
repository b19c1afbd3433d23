"""Every variant of the randomization test for the paper's eight methods and the controls, on the demo (issue 16).

    python benchmarks/bench_randomization_variants.py            # writes results/randomization_variants.json
    python benchmarks/bench_randomization_variants.py --report DIR   # also the evidence and the HTML report

One audit of the ``randomization`` criterion (sequential, as the default run) with
``randomization.variants = [ssim_drop, smooth_mprt, emprt, bottom_up]`` and Smooth MPRT at the paper's setting
(50 noisy copies, noise 0.1 of the image range), so the evidence and the report carry the SSIM drop (the
verdict), Smooth MPRT, Efficient MPRT and the bottom-up order side by side.  Also records what each variant
cost in model passes, from the run's own counter (the verdict's passes against the whole criterion's).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam", "edge", "random", "oracle")


def _row(r) -> dict:
    v = r.details["variants"]
    out = {"verdict": r.verdict, "statistic": r.statistic, "value": r.value, "bound": r.bound, "n": r.n,
           "image_passes": r.details["image_passes"], "seconds": round(r.details["seconds"], 1),
           "head_ssim": r.curve[0]["ssim"], "all_ssim": r.curve[-1]["ssim"], "variant_images": v["images"],
           "variant_image_passes": v["image_passes"]}
    for k in ("smooth_mprt", "bottom_up"):
        if k in v:
            out[k] = {"first_d": v[k]["first"]["d"], "first_lower": v[k]["first"]["lower"], "all_d": v[k]["all"]["d"],
                      "all_lower": v[k]["all"]["lower"], "would_pass": v[k]["would_pass"],
                      "first_ssim": v[k]["curve"][0]["ssim"], "all_ssim": v[k]["curve"][-1]["ssim"]}
    if "emprt" in v:
        e = v["emprt"]
        out["emprt"] = {k: e[k] for k in ("value", "lower", "would_pass", "entropy_trained", "entropy_randomized")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--report", default=None, help="write evidence.json and the HTML report here")
    args = ap.parse_args()
    from saliency_audit import Audit
    from saliency_audit.config import AuditConfig

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = AuditConfig(cache_dir=tmp)
        cfg.randomization.variants = ("ssim_drop", "smooth_mprt", "emprt", "bottom_up")
        methods = args.methods.split(",")
        audit = Audit(model="demo", methods=methods, config=cfg, report_dir=args.report)
        t0 = time.perf_counter()
        for m in methods:
            r = audit.randomization(m)
            rows[m] = _row(r)
            print(m, json.dumps(rows[m]), flush=True)
        if args.report:
            audit.write_evidence(finished=True)
            from saliency_audit.report.html import write_html

            write_html(audit.evidence(finished=True), Path(args.report) / "saliency-audit.html")
    out = {"model": "demo", "config": {k: getattr(cfg.randomization, k) for k in (
        "statistic", "order", "variants", "variant_images", "smooth_samples", "smooth_noise", "emprt_bins",
        "head_min", "all_min", "n_images", "draws", "draw_design")}, "seconds": round(time.perf_counter() - t0, 1), "methods": rows}
    dest = ROOT / "benchmarks" / "results" / "randomization_variants.json"
    dest.write_text(json.dumps(out, indent=1, default=list) + "\n")
    print(f"wrote {dest} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
