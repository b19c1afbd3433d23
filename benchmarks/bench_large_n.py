"""Audits of 160 to 2,000 images end to end: no verdict passes on a bound that is not a number.

Before issue 27 the group-sequential design's first-look share of alpha rounded to 0 at about 160 planned
images, its Student-t critical value became +inf and every sequential verdict passed at its first look
(``utility[grad]`` at 8 images with a lower bound of +inf).  This runs the utility audit of the demo model
on a generated folder dataset of the demo world (``saliency-audit export-demo folder``) at ``--n-images``
160, 200, 500 and 2,000, with the controls on (``random``: maps of noise, whose effect is below the prior's,
must fail), and records per verdict: the verdict, images used, the bound, and whether every look's bounds
were finite numbers.

    python benchmarks/bench_large_n.py            # writes benchmarks/results/large_n.json
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "large_n.json"
SIZES = (160, 200, 500, 2000)


def _finite_looks(result: dict) -> bool:
    looks = ((result.get("details") or {}).get("sequential") or {}).get("looks") or []
    return all(isinstance(c.get(k), (int, float)) and math.isfinite(c[k])
               for look in looks for c in look["checks"] for k in ("lower", "upper"))


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-large-n-"))
    data = work / "data"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "saliency_audit", "export-demo", "folder", str(data), "--n", str(max(SIZES))],
                   check=True)
    export_s = time.perf_counter() - t0
    runs = []
    for n in SIZES:
        out = work / f"n{n}"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--saliency-audit", "-p", "no:cacheprovider", "-q", "-k", "utility",
             "--dataset=folder", f"--data-root={data}", "--split=test", "--methods=grad", "--controls",
             f"--n-images={n}", f"--audit-report={out}"],
            cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        seconds = time.perf_counter() - t0
        evidence = json.loads((out / "evidence.json").read_text())
        rows = []
        for r in evidence["results"]:
            seq = (r.get("details") or {}).get("sequential") or {}
            rows.append({"method": r["method"], "control": (r.get("details") or {}).get("control"),
                         "verdict": r["verdict"], "n_used": r["n"], "n_max": seq.get("n_max"),
                         "mean": r["value"], "bound": r["bound"], "all_looks_finite": _finite_looks(r)})
        runs.append({"n_images": n, "exit_status": proc.returncode, "seconds": round(seconds, 1), "verdicts": rows})
        print(n, proc.returncode, [(x["method"], x["verdict"], x["n_used"], x["bound"]) for x in rows], flush=True)
    OUT.write_text(json.dumps({"export_s": round(export_s, 1), "runs": runs}, indent=1) + "\n")
    bad = [(r["n_images"], v["method"]) for r in runs for v in r["verdicts"]
           if not v["all_looks_finite"] or (v["method"] == "random" and v["verdict"] == "pass")]
    print("wrote", OUT, "problems:", bad or "none")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
