"""Time the demo audit: retraining the demo models once (they ship with the package, so only a user who
retrains pays this), then each criterion set with maps cold (an empty cache: the shipped weights, no maps)
and warm (maps cached); and the batched MapStore against a naive per-image loop on the same work.

    python benchmarks/bench_demo_audit.py            # writes benchmarks/results/demo_audit.json
    python benchmarks/readme_figures.py              # puts its figures into README.md and docs/

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
    """Seconds and exit code of ``pytest audits/`` with its own cache (models, maps, ROAD results, prediction
    logits, the estimate's unit seconds and the report's figures: a warm run finds all of them)."""
    env = dict(os.environ, SALIENCY_AUDIT_CACHE=str(cache))
    env["SALIENCY_AUDIT_PROGRESS"] = "0"
    # the pytest plugins of the quickstart's install (``pip install -e .``): saliency-audit's alone.  This venv
    # also has the test extra's (hypothesis alone imports for a second at every start), which a user who
    # runs the demo does not
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/", "-q", "-p", "saliency_audit.plugin", "-p",
                           "no:cacheprovider", f"--audit-report={report}", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    return time.perf_counter() - t0, proc.returncode


def load() -> float | None:
    """The 1-minute load average before a run: the timings are only comparable on an idle machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def batched_vs_naive(method: str, n: int) -> dict:
    """The same maps computed by MapStore batches and by a loop of one-image calls (no disk cache)."""
    import torch

    from saliency_audit import Audit
    from saliency_audit.engine.maps import MapStore

    audit = Audit(model="demo")
    model = audit.model("primary")  # trains the model if needed
    samples = [audit.dataset[i] for i in audit.dataset.localisation_indices(n)]
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


#: (name, pytest -k expression or None): the criterion sets the README quotes.
SETS = (("utility", "utility"), ("faithfulness_interpretability", "completeness or energy or focus or pointing"),
        ("all_criteria", None))


def condensed_verdicts(evidence: dict) -> list[dict]:
    """Per (criterion, method) of the full demo audit: the figures the README's verdict table shows."""
    out = []
    for r in evidence["results"]:
        d = r.get("details", {})
        row = {"criterion": r["criterion"], "method": r["method"], "verdict": r["verdict"], "n": r.get("n"),
               "value": r.get("value"), "bound": r.get("bound"), "threshold": r.get("threshold"),
               "n_max": (d.get("sequential") or {}).get("n_max", r.get("n")),
               "stopped": (d.get("sequential") or {}).get("stopped")}
        if d.get("control"):  # --controls (on for the demo): what the control had to get, and whether it did
            row.update(control=d["control"]["role"], expected=d["control"]["expected"], met=d["control"]["met"])
        if r["criterion"] == "utility":
            row.update(mean_ap=d.get("mean_ap"), prior_ap=(r.get("baseline") or {}).get("value"))
        if r["criterion"] in ("randomization", "label_randomization", "repeatability", "reproducibility"):
            row["floor"] = (d.get("noise_floor") or {}).get("ssim")
            per = [p["ssim"] for p in r.get("per_image", []) if p.get("ssim") is not None]
            row["ssim"] = sum(per) / len(per) if per else None
        if r["criterion"] == "randomization":
            curve = r.get("curve") or []
            row.update(head_ssim=curve[0]["ssim"] if curve else None, all_ssim=curve[-1]["ssim"] if curve else None)
        out.append(row)
    return out


def train_all(cache: Path) -> float:
    """Seconds to retrain every demo model into ``cache`` (a fresh process), as ``retrain=True`` does."""
    code = ("from saliency_audit.demo.train import AUDIT_VARIANTS, load_demo_model\n"
            "for v in AUDIT_VARIANTS: load_demo_model(v, retrain=True)\n")
    env = dict(os.environ, SALIENCY_AUDIT_CACHE=str(cache), SALIENCY_AUDIT_PROGRESS="0")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    import torch

    out = {"host": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
           "pytest_plugins": "saliency-audit's alone, as the quickstart installs (PYTEST_DISABLE_PLUGIN_AUTOLOAD)"}
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        out["train_demo_models_s"] = round(train_all(models), 1)
        print("training", out["train_demo_models_s"], flush=True)
        for name, expr in SETS:
            # an empty cache: the shipped weights load from the package, every map is computed ("cold")
            cache, report = Path(tmp) / name, Path(tmp) / f"{name}-report"
            extra = ["-k", expr] if expr else []
            loads = [load()]
            cold, rc_cold = run_audit(cache, report, extra)
            loads.append(load())
            warm, rc_warm = run_audit(cache, report, extra)
            evidence = json.loads((report / "evidence.json").read_text())
            methods = [r for r in evidence["results"] if not r.get("details", {}).get("control")]
            counts = {v: sum(r["verdict"] == v for r in methods) for v in ("pass", "fail", "error", "skipped")}
            out[f"demo_audit_{name}"] = {
                "k": expr, "cold_s": round(cold, 1), "warm_s": round(warm, 1), "cold_over_warm": round(cold / warm, 1),
                "exit_codes": [rc_cold, rc_warm], "load_before": loads, "results": len(methods), "verdicts": counts,
                "controls": evidence.get("controls"),
                "timings_warm": evidence["run"]["timings"]}
            if expr is None:
                out["demo_verdicts"] = condensed_verdicts(evidence)
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
