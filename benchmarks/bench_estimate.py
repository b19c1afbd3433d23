"""The first time-left estimate against the truth, and how soon the first verdict comes, on cold runs.

    python benchmarks/bench_estimate.py            # writes benchmarks/results/estimate.json

Each run is ``pytest audits/`` in a fresh process with an empty map cache ("cold"), as a first audit is:

* ``demo``: the full demo audit (9 criteria x 8 methods and the 3 controls);
* ``densenet121``: a random-weight torchvision densenet121 (2 classes, saved and loaded as a user's
  checkpoint) on the demo data at 112 px, the methods a new user tries first (grad, gradcam, ig), 16 images.

The evidence holds the plan (the run's order, cheapest criterion first), the first estimate
(``run.plan.estimate``: the expected seconds left, and its range) and ``run.plan.seconds_after_plan``; the
truth is the seconds the run actually took after the estimate.  The goal is an error within +-30 %.
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

#: the runs: (name, pytest arguments beyond audits/)
RUNS = (("demo", []),
        ("densenet121", ["--model=densenet121:{tmp}/densenet121.pt", "--dataset=demo", "--methods=grad,gradcam,ig",
                         "--n-images=16", "--input-size=112", "--no-controls"]))

#: the criteria whose maps are the dearest: the first verdict must come before any of theirs is computed
DEAR = ("completeness", "randomization")


def run(name: str, args: list[str], tmp: Path) -> dict:
    env = dict(os.environ, SALIENCY_AUDIT_CACHE=str(tmp / f"cache-{name}"), SALIENCY_AUDIT_PROGRESS="0")
    report = tmp / f"report-{name}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/", "-q", "-p", "no:cacheprovider",
                           f"--audit-report={report}", *[a.format(tmp=tmp) for a in args]],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    evidence = json.loads((report / "evidence.json").read_text())
    plan = evidence["run"]["plan"]
    est = plan["estimate"]
    truth = plan["seconds_after_plan"] - est["after_seconds"]
    order = list(dict.fromkeys(k.split("[", 1)[0] for k in plan["per_pair"]))
    # the plan follows the run's order (the evidence sorts its results); a criterion the run skips (no
    # replicate, say) costs nothing and comes first: the first verdict that computes maps is the one to wait for
    first = next((k for k, v in plan["per_pair"].items() if v), next(iter(plan["per_pair"])))
    return {"args": args, "exit_code": proc.returncode, "wall_s": round(wall, 1), "order": order,
            "first_verdict": first, "first_verdict_before_dear_maps": first.split("[", 1)[0] not in DEAR,
            "estimate": est, "seconds_after_plan": plan["seconds_after_plan"], "true_seconds_left": round(truth, 1),
            "error": round(est["seconds_left"] / truth - 1, 3),
            "truth_in_range": est.get("seconds_left_at_least", 0) <= truth <= est["seconds_left_at_most"],
            "image_passes": {"planned_least": plan.get("image_passes_least"), "planned_most": plan["image_passes"],
                             "spent": evidence["run"]["image_passes"]}}


def main() -> None:
    import torch
    import torchvision

    out = {"host": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        torch.save(torchvision.models.densenet121(weights=None, num_classes=2).state_dict(), tmp / "densenet121.pt")
        for name, args in RUNS:
            out["runs"][name] = run(name, args, tmp)
            print(name, json.dumps(out["runs"][name]), flush=True)
    out["within_30_percent"] = all(abs(r["error"]) <= 0.30 for r in out["runs"].values())
    dest = ROOT / "benchmarks" / "results"
    dest.mkdir(exist_ok=True)
    (dest / "estimate.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
