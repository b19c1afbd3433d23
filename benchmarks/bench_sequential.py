"""Sequential verdicts against the fixed-n audit: model passes, wall time and verdicts, side by side.

    python benchmarks/bench_sequential.py [--skip-demo] [--densenet-n 100]
    # writes benchmarks/results/sequential.json

1. **Demo**: the full demo audit (``pytest audits/``, the paper's eight methods, every criterion) twice in
   one invocation, each in a fresh map cache (the shipped demo models, so no training): fixed-n
   (``--no-sequential``), then sequential (the default).  Recorded: image-passes spent (``run.image_passes``, deterministic), the plan's bounds,
   wall seconds, and every (criterion, method) verdict of both runs with the images the sequential one used
   and where it stopped; every disagreement is listed with both bounds.
2. **densenet121 at 224 px on generated data**: the plan of the full protocol (the eight methods, every
   criterion, one replicate, one reference model and a random-label model, each a differently seeded
   random-weight densenet121 saved as a user's checkpoint) at ``n_images`` = ``--densenet-n`` for every
   criterion: fixed-n passes, and with ``--sequential`` the least (every verdict decided at its first look),
   the most, and two projections from the demo: each pair stops at the same share of its images as the same
   pair did on the demo, or at the same number of images (a pair the demo left undecided runs to the end).  Passes
   are counted by replaying the run's bookkeeping (:mod:`saliency_audit.engine.plan`), which tests/test_plan.py
   checks against a real run; nothing is computed on the network.
3. ``--densenet-run N`` (``--only-densenet-run`` to run just this): both modes actually run on the same
   densenet121 models, the cheap methods (``grad``, ``gradcam``), every criterion, N images each: passes,
   wall seconds and verdicts side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "sequential.json"


def demo_run(sequential: bool, work: Path) -> dict:
    report = work / ("sequential" if sequential else "fixed")
    env = dict(os.environ, SALIENCY_AUDIT_CACHE=str(work / ("cache-seq" if sequential else "cache-fixed")),
               SALIENCY_AUDIT_PROGRESS="0")
    cmd = [sys.executable, "-m", "pytest", "audits/", "-q", "-p", "no:cacheprovider", f"--audit-report={report}"]
    cmd.append("--sequential" if sequential else "--no-sequential")
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    ev = json.loads((report / "evidence.json").read_text())
    plan = ev["run"].get("plan", {})
    return {"seconds": round(seconds, 1), "image_passes": ev["run"]["image_passes"],
            "plan_most": plan.get("image_passes"), "plan_least": plan.get("image_passes_least"),
            "results": {f"{r['criterion']}[{r['method']}]": r for r in ev["results"]}}


def side_by_side(fixed: dict, seq: dict) -> tuple[list[dict], list[dict]]:
    rows, disagree = [], []
    for key, f in fixed["results"].items():
        s = seq["results"].get(key)
        if s is None:
            continue
        sd = s["details"].get("sequential", {})
        row = {"pair": key, "fixed": f["verdict"], "sequential": s["verdict"], "fixed_bound": f.get("bound"),
               "threshold": f.get("threshold"), "sequential_bound": s.get("bound"),
               "n_used": sd.get("n_used"), "n_max": sd.get("n_max"), "stopped": sd.get("stopped"),
               "fixed_passes": f["details"].get("image_passes"), "sequential_passes": s["details"].get("image_passes")}
        rows.append(row)
        if f["verdict"] != s["verdict"]:
            disagree.append({**row, "checks_at_stop": (sd.get("looks") or [{}])[-1].get("checks")})
    return rows, disagree


def _densenets(folder: Path) -> list[str]:
    """Four differently seeded random-weight densenet121 checkpoints, as a user's ``densenet121:PATH`` specs:
    the primary, a replicate, a reference and the random-label model."""
    import torch
    import torchvision

    paths = []
    for seed in range(4):
        torch.manual_seed(seed)
        path = folder / f"densenet121-{seed}.pt"
        torch.save(torchvision.models.densenet121(num_classes=2).state_dict(), path)
        paths.append(f"densenet121:{path}")
    return paths


def densenet_plan(n: int, demo_stops: dict) -> dict:
    from saliency_audit import Audit, AuditConfig
    from saliency_audit.config import PAPER_METHODS
    from saliency_audit.common.criteria_registry import CRITERIA
    from saliency_audit.engine.plan import make_plan, replay

    with tempfile.TemporaryDirectory() as tmp:
        paths = _densenets(Path(tmp))
        out = {"arch": "densenet121", "input": [224, 224], "n_images": n, "methods": list(PAPER_METHODS)}
        for sequential in (False, True):
            cfg = AuditConfig(n_images=n, sequential=sequential, cache_dir=str(Path(tmp) / "cache"))
            cfg.model.input_size = (224, 224)
            cfg.randomization.n_images = cfg.consistency.n_images = cfg.completeness.n_images = n
            audit = Audit(model=paths[0], replicates=[paths[1]], references=[paths[2]],
                          random_label_model=paths[3], methods=list(PAPER_METHODS), config=cfg)
            pairs = [(c, m) for c in CRITERIA for m in PAPER_METHODS]
            plan = make_plan(audit.context, pairs)
            if not sequential:
                out["fixed_passes"] = plan["image_passes"]
                out["stages"] = plan.get("stages")
                out["per_criterion_fixed"] = _by_criterion(plan["per_pair"])
            else:
                out["sequential_least"] = plan["image_passes_least"]
                out["sequential_most"] = plan["image_passes"]
                # each pair stops at the same fraction of its images as on the demo (rounded up to a look)
                from saliency_audit.stats.sequential import sizes

                looks = sizes(n, cfg.sequential_batch)
                stops, same_n = {}, {}
                for c, m in pairs:
                    used = demo_stops.get(f"{c}[{m}]")
                    if used is not None:
                        stops[(c, m)] = next(k for k in looks if k >= used[0] / used[1] * n)
                        # or at the same number of images, unless it ran to the demo's end (undecided)
                        same_n[(c, m)] = n if used[0] == used[1] else next(k for k in looks if k >= used[0])
                projected = replay(audit.context, pairs, stops, cold=True)
                out["sequential_projected"] = sum(projected.values())
                out["per_criterion_projected"] = _by_criterion(projected)
                out["sequential_projected_same_images"] = sum(replay(audit.context, pairs, same_n, cold=True).values())
    out["projected_share_of_fixed"] = round(out["sequential_projected"] / out["fixed_passes"], 3)
    out["least_share_of_fixed"] = round(out["sequential_least"] / out["fixed_passes"], 3)
    out["projected_same_images_share_of_fixed"] = round(out["sequential_projected_same_images"] / out["fixed_passes"], 3)
    return out


def densenet_run(n: int, methods: tuple[str, ...] = ("grad", "gradcam"), device: str = "cpu") -> dict:
    """Both modes actually run on densenet121 at 224 px (every criterion, ``methods``, ``n`` images each), in
    one process, each with its own fresh map cache: image-passes spent, wall seconds, verdicts side by side."""
    import torch

    from saliency_audit import Audit, AuditConfig
    from saliency_audit.common.criteria_registry import CRITERIA
    from saliency_audit.common.passcount import PASSES

    out: dict = {"arch": "densenet121", "input": [224, 224], "n_images": n, "methods": list(methods),
                 "threads": torch.get_num_threads(), "device": device}
    with tempfile.TemporaryDirectory() as tmp:
        paths = _densenets(Path(tmp))
        runs = {}
        for sequential in (False, True):
            cfg = AuditConfig(n_images=n, sequential=sequential, cache_dir=str(Path(tmp) / f"cache-{sequential}"),
                              device=device)
            cfg.model.input_size = (224, 224)
            cfg.randomization.n_images = cfg.consistency.n_images = cfg.completeness.n_images = n
            audit = Audit(model=paths[0], replicates=[paths[1]], references=[paths[2]],
                          random_label_model=paths[3], methods=list(methods), config=cfg)
            passes0, t0 = PASSES["images"], time.perf_counter()
            results = {f"{c}[{m}]": audit.run(c, m) for c in CRITERIA for m in methods}
            runs[sequential] = {"seconds": round(time.perf_counter() - t0, 1),
                                "image_passes": PASSES["images"] - passes0, "results": results}
    fixed, seq = runs[False], runs[True]
    out["fixed"] = {k: fixed[k] for k in ("seconds", "image_passes")}
    out["sequential"] = {k: seq[k] for k in ("seconds", "image_passes")}
    out["passes_share"] = round(seq["image_passes"] / fixed["image_passes"], 3)
    out["time_share"] = round(seq["seconds"] / fixed["seconds"], 3)
    out["verdicts"] = []
    for key, f in fixed["results"].items():
        s = seq["results"][key]
        sd = s.details.get("sequential", {})
        out["verdicts"].append({"pair": key, "fixed": f.verdict, "sequential": s.verdict, "fixed_bound": f.bound,
                                "sequential_bound": s.bound, "threshold": f.threshold, "n_used": sd.get("n_used"),
                                "n_max": sd.get("n_max"), "stopped": sd.get("stopped")})
    out["agree"] = sum(v["fixed"] == v["sequential"] for v in out["verdicts"])
    out["disagreements"] = [v for v in out["verdicts"] if v["fixed"] != v["sequential"]]
    return out


def _by_criterion(per_pair: dict) -> dict:
    out: dict = {}
    for key, v in per_pair.items():
        c = key.split("[")[0]
        out[c] = out.get(c, 0) + v
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-demo", action="store_true", help="reuse the demo figures already in the results")
    ap.add_argument("--densenet-n", type=int, default=100)
    ap.add_argument("--work", type=Path, default=None, help="keep both demo runs' reports and caches here")
    ap.add_argument("--densenet-run", type=int, default=0, metavar="N",
                    help="also run both modes on densenet121 (grad and gradcam, every criterion, N images each)")
    ap.add_argument("--device", default="cpu", help="device of the densenet121 run (cuda on a GPU machine)")
    ap.add_argument("--only-densenet-run", action="store_true",
                    help="run only --densenet-run and keep the other results as they are")
    args = ap.parse_args()
    old = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if args.only_densenet_run:
        key = "densenet121_run" if args.device == "cpu" else f"densenet121_run_{args.device.split(':')[0]}"
        old[key] = run = densenet_run(args.densenet_run or 16, device=args.device)
        OUT.write_text(json.dumps(old, indent=1) + "\n")
        print(f"densenet121 run, n={run['n_images']}: sequential {run['sequential']['image_passes']:,} of "
              f"{run['fixed']['image_passes']:,} image-passes ({100 * run['passes_share']:.0f}%), "
              f"{run['sequential']['seconds']:.0f} s vs {run['fixed']['seconds']:.0f} s; {run['agree']} of "
              f"{len(run['verdicts'])} verdicts agree")
        return
    if args.skip_demo:
        demo = old["demo"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            fixed = demo_run(False, work)
            seq = demo_run(True, work)
        rows, disagree = side_by_side(fixed, seq)
        demo = {"fixed": {k: v for k, v in fixed.items() if k != "results"},
                "sequential": {k: v for k, v in seq.items() if k != "results"},
                "passes_share": round(seq["image_passes"] / fixed["image_passes"], 3),
                "time_share": round(seq["seconds"] / fixed["seconds"], 3),
                "verdicts": rows, "disagreements": disagree,
                "agree": sum(r["fixed"] == r["sequential"] for r in rows), "pairs": len(rows)}
    stops = {r["pair"]: (r["n_used"], r["n_max"]) for r in demo["verdicts"] if r.get("n_max")}
    result = {"machine": f"{os.cpu_count()} CPU cores", "demo": demo, "densenet121": densenet_plan(args.densenet_n, stops)}
    if args.densenet_run:
        result["densenet121_run"] = densenet_run(args.densenet_run)
    elif "densenet121_run" in old:
        result["densenet121_run"] = old["densenet121_run"]
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    d, dn = result["demo"], result["densenet121"]
    print(f"demo: sequential {d['sequential']['image_passes']:,} of {d['fixed']['image_passes']:,} image-passes "
          f"({100 * d['passes_share']:.0f}%), {d['sequential']['seconds']:.0f} s vs {d['fixed']['seconds']:.0f} s; "
          f"{d['agree']} of {d['pairs']} verdicts agree")
    print(f"densenet121 n={dn['n_images']}: fixed {dn['fixed_passes']:,}; sequential {dn['sequential_least']:,} .. "
          f"{dn['sequential_most']:,}, projected {dn['sequential_projected']:,} ({100 * dn['projected_share_of_fixed']:.0f}%) "
          f"or {dn['sequential_projected_same_images']:,} ({100 * dn['projected_same_images_share_of_fixed']:.0f}%)")


if __name__ == "__main__":
    main()
