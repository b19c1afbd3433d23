"""Time the demo utility audit cold (training included) and warm (maps cached), and
the batched MapStore against a naive per-image loop on the same work.

    python benchmarks/bench_demo_audit.py            # writes benchmarks/results/demo_audit.json

Ratios are measured in one run on one machine; absolute seconds depend on it.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_audit(cache: Path, report: Path, extra: list[str]) -> tuple[float, int]:
    """Seconds and exit code of ``pytest audits/`` with its own cache (models and maps)."""
    env = dict(os.environ, SALIENCY_AUDIT_CACHE=str(cache))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/", "-q", "-p", "no:cacheprovider",
                           f"--audit-report={report}", *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.returncode


def batched_vs_naive(method: str, n: int) -> dict:
    """The same maps computed by MapStore batches and by a loop of one-image calls (no disk cache)."""
    import torch

    from saliency_audit import Audit
    from saliency_audit.maps import MapStore

    audit = Audit(model="demo")
    model = audit.model("primary")
    samples = [audit.dataset[i] for i in audit.dataset.localisation_indices(n)]  # trains the model if needed
    store = MapStore(audit.config, None)
    store.maps(model, method, samples[:2])  # warm-up (threads, allocator)
    t0 = time.perf_counter()
    batched = MapStore(audit.config, None).maps(model, method, samples).maps
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = [MapStore(audit.config, None).maps(model, method, [s]).maps[0] for s in samples]
    t_naive = time.perf_counter() - t0
    diff = float(max(abs(a - b).max() for a, b in zip(batched, naive)))
    return {"method": method, "n_images": n, "batched_s": t_batched, "naive_s": t_naive,
            "speedup": t_naive / t_batched, "max_abs_map_difference": diff, "threads": torch.get_num_threads()}


def main() -> None:
    out = {"host": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    for name, extra in (("utility", ["-k", "utility"]), ("all_criteria", [])):
        with tempfile.TemporaryDirectory() as tmp:
            cache, report = Path(tmp) / "cache", Path(tmp) / "report"
            cold, rc_cold = run_audit(cache, report, extra)
            warm, rc_warm = run_audit(cache, report, extra)
            evidence = json.loads((report / "evidence.json").read_text())
            out[f"demo_audit_{name}"] = {
                "cold_s": round(cold, 1), "warm_s": round(warm, 1), "cold_over_warm": round(cold / warm, 1),
                "exit_codes": [rc_cold, rc_warm], "results": len(evidence["results"]),
                "timings_warm": evidence["run"]["timings"]}
            print(name, out[f"demo_audit_{name}"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SALIENCY_AUDIT_CACHE"] = str(Path(tmp) / "cache")
        out["batched_vs_naive"] = [batched_vs_naive(m, 16) for m in ("grad", "ig", "gradcam")]
    dest = ROOT / "benchmarks" / "results"
    dest.mkdir(exist_ok=True)
    (dest / "demo_audit.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
