"""Our ROAD against pytorch-grad-cam's and Quantus's, on the same model, images and maps, in one run.

    bash benchmarks/setup_peers.sh                       # once: benchmarks/.venv-peers (peers are no dependency)
    benchmarks/.venv-peers/bin/python benchmarks/bench_road.py [--images 16] [--threads 2]
    # writes benchmarks/results/road_peers.json

Model: the demo primary (128 px, grayscale), on the first ``--images`` demo
lesion images.  Maps: GradCAM (after its ReLU most pixels tie at 0) and the
plain gradient (nearly tie-free), from our MapStore.  Each contender computes
MoRF and LeRF probabilities of class 1 at the same fractions:

* **speed** — default fractions (0.2, 0.4, 0.6, 0.8), ROAD noise 0.01, wall
  time of the ROAD call only (maps and the unperturbed pass excluded),
  interleaved repeats, the fastest of each reported, and their ratios;
* **agreement where the definitions agree** — tie-free gradient maps,
  fractions 0.25/0.5/0.75 (f·P is a whole number of pixels, so every
  contender removes the same pixels) and noise off: the largest probability
  difference;
* **where they differ** — on the GradCAM maps, how many pixels each removes
  at each fraction (percentile thresholds remove whole tied plateaus).

Torch runs with ``--threads`` intra-op threads for every contender.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _ours(model, samples, maps, fractions, noise, store):
    from saliency_audit import AuditConfig
    from saliency_audit.engine.passes import Passes

    cfg = AuditConfig()
    cfg.completeness.fractions = tuple(fractions)
    cfg.completeness.fill = "linear" if noise else "linear-exact"
    P = Passes(cfg, store)
    t0 = time.perf_counter()
    r = P.road(model, samples, maps)
    return {"morf": r["morf"], "lerf": r["lerf"], "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch
    from importlib.metadata import version

    from peers_road import gradcam_road, quantus_road
    from saliency_audit import AuditConfig
    from saliency_audit.data.demo import DemoDataset
    from saliency_audit.data.resize import prepare
    from saliency_audit.engine.maps import MapStore
    from saliency_audit.models import load_model

    torch.set_num_threads(args.threads)
    model = load_model("demo")
    ds = DemoDataset()
    _, samples = ds.select(args.images, tuple(model.input_size), lesion=True)
    store = MapStore(AuditConfig(), None)
    x = prepare(samples, model.input_size, "cpu").numpy()
    maps = {m: store.maps(model, m, samples).maps for m in ("gradcam", "grad")}
    P = maps["grad"][0].size
    default = (0.2, 0.4, 0.6, 0.8)
    out = {"images": args.images, "input": list(x.shape[1:]), "threads": args.threads, "target_class": 1,
           "versions": {"torch": torch.__version__, "grad-cam": version("grad-cam"), "quantus": version("quantus")},
           "speed": {}, "agreement": {}, "pixels_removed": {}}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("gradcam", "grad"):
            runs = {"ours": [], "grad-cam": [], "quantus": []}
            for _ in range(args.repeats):  # interleaved: load changes hit every contender alike
                runs["ours"].append(_ours(model, samples, maps[method], default, 0.01, store))
                runs["grad-cam"].append(gradcam_road(model, x, maps[method], 1, default))
                runs["quantus"].append(quantus_road(model, x, maps[method], 1, default))
            best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
            ours = best["ours"]
            row = {k: {"seconds": r["seconds"], "ms_per_image": 1e3 * r["seconds"] / args.images,
                       "mean_road": float(np.mean((r["lerf"] - r["morf"]) / 2)),
                       "mean_abs_diff_to_ours": float(np.mean(np.abs(np.concatenate([r["morf"] - ours["morf"],
                                                                                     r["lerf"] - ours["lerf"]]))))}
                   for k, r in best.items()}
            row["speedup_vs_grad-cam"] = best["grad-cam"]["seconds"] / ours["seconds"]
            row["speedup_vs_quantus"] = best["quantus"]["seconds"] / ours["seconds"]
            out["speed"][method] = row
            g = best["grad-cam"]
            out["pixels_removed"][method] = {
                "ours": [round(f * P) for f in default],
                "grad-cam_morf_min_max": [[int(g["n_removed_morf"][:, j].min()), int(g["n_removed_morf"][:, j].max())]
                                          for j in range(len(default))],
                "grad-cam_lerf_min_max": [[int(g["n_removed_lerf"][:, j].min()), int(g["n_removed_lerf"][:, j].max())]
                                          for j in range(len(default))],
                "zero_pixels": float(np.mean(maps[method] == 0))}
            print(method, json.dumps(row, indent=1), flush=True)

        exact = (0.25, 0.5, 0.75)
        ours0 = _ours(model, samples, maps["grad"], exact, 0.0, store)
        g0 = gradcam_road(model, x, maps["grad"], 1, exact, noise=0.0)
        q0 = quantus_road(model, x, maps["grad"], 1, exact, noise=0.0)
        for name, r in (("grad-cam", g0), ("quantus", q0)):
            same = (r.get("n_removed_morf") == np.array([round(f * P) for f in exact])).all() \
                if "n_removed_morf" in r else None
            out["agreement"][name] = {
                "fractions": list(exact), "noise": 0.0,
                "max_abs_diff": float(max(np.abs(r["morf"] - ours0["morf"]).max(),
                                          np.abs(r["lerf"] - ours0["lerf"]).max())),
                "same_pixel_counts": None if same is None else bool(same)}
    print(json.dumps({k: out[k] for k in ("agreement", "pixels_removed")}, indent=1))
    path = ROOT / "benchmarks" / "results" / "road_peers.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
