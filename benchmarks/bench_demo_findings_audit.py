"""The multi-label demo audited per finding: every finding's verdicts, as `pytest audits/` gives them.

    python benchmarks/bench_demo_findings_audit.py   # writes benchmarks/results/demo_findings_audit.json
    python benchmarks/readme_figures.py              # puts its table into docs/multi-label.md

``pytest audits/ --model=demo:multilabel --dataset=demo-findings --finding=all --methods=grad,gradcam,ig`` with
the utility, randomization, label randomization and completeness criteria (and the controls), cold (an empty
map cache), seed 0, sequential verdicts: the model's outputs read their own lesions, except ``Calcification``'s,
which was trained on the corner marker (benchmarks/results/demo_findings.json); its utility must fail.
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
METHODS = "grad,gradcam,ig"
CRITERIA = "utility or randomization or completeness"  # randomization: also label_randomization


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SALIENCY_AUDIT_CACHE=str(Path(tmp) / "cache"), SALIENCY_AUDIT_PROGRESS="0")
        report = Path(tmp) / "rep"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "audits/", "-q", "-p", "no:cacheprovider",
                               "--model=demo:multilabel", "--dataset=demo-findings", "--finding=all",
                               f"--methods={METHODS}", "-k", CRITERIA, f"--audit-report={report}"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        evidence = json.loads((report / "evidence.json").read_text())
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    rows = []
    for r in evidence["results"]:
        control = (r.get("details") or {}).get("control")
        rows.append({"criterion": r["criterion"], "method": r["method"], "finding": r["finding"],
                     "verdict": r["verdict"], "value": r.get("value"), "bound": r.get("bound"), "n": r.get("n"),
                     "mean_ap": (r.get("details") or {}).get("mean_ap"),
                     "control": bool(control), "as_expected": (control or {}).get("met")})
    accuracy = {f: (v.get("primary_accuracy") or {}).get("auroc")
                for f, v in (evidence["dataset"].get("findings") or {}).items()}
    out = {"command": f"pytest audits/ --model=demo:multilabel --dataset=demo-findings --finding=all "
                      f"--methods={METHODS} -k '{CRITERIA}'",
           "findings": evidence["config"]["findings_audited"], "methods": METHODS.split(","),
           "seconds_cold": round(seconds, 1), "exit_status": proc.returncode, "auroc": accuracy, "results": rows,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    path = ROOT / "benchmarks" / "results" / "demo_findings_audit.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{path}: {len(rows)} verdicts in {seconds:.0f} s")


if __name__ == "__main__":
    main()
