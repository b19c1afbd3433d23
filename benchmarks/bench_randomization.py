"""Cost of a cascading-randomization audit relative to computing the same maps once.

    python benchmarks/bench_randomization.py   # writes benchmarks/results/randomization.json

For each method: the time to compute the primary model's maps of the audited
images (no disk cache), and the time of the whole cascading randomization
criterion on the same images with a fresh cache (maps of every stage model,
similarities, bootstrap).  The ratio is expected near the number of stages
(+1 for the primary): every stage recomputes every map; XRAI's segmentations
are shared across stages, which makes it cheaper.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("grad", "sg", "ig", "gradcam", "xrai", "gbp", "ggcam")
N = 12


def main() -> None:
    from saliency_audit import Audit, AuditConfig
    from saliency_audit.engine.maps import MapStore

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = AuditConfig()
        cfg.randomization.n_images = N
        audit = Audit(model="demo", config=cfg)
        model = audit.model("primary")
        samples = audit.samples.first(audit.config.randomization.n_images)
        MapStore(cfg, None).maps(model, "grad", samples[:2])  # warm-up
        for method in METHODS:
            t0 = time.perf_counter()
            MapStore(cfg, None).maps(model, method, samples)
            plain = time.perf_counter() - t0
            run_cfg = AuditConfig()
            run_cfg.randomization.n_images = N
            run_cfg.cache_dir = str(Path(tmp) / method)
            run = Audit(model="demo", config=run_cfg)
            run.model("primary")
            t0 = time.perf_counter()
            result = run.randomization(method)
            cascade = time.perf_counter() - t0
            rows.append({"method": method, "n_images": N, "stages": len(result.curve),
                         "plain_maps_s": round(plain, 3), "cascading_audit_s": round(cascade, 3),
                         "ratio": round(cascade / plain, 2), "verdict": result.verdict})
            print(rows[-1], flush=True)
    dest = ROOT / "benchmarks" / "results"
    dest.mkdir(exist_ok=True)
    (dest / "randomization.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
