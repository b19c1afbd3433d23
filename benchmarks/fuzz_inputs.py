"""Fuzz every parser and reader with the deep hypothesis budget (50x CI's), and record what ran.

    python benchmarks/fuzz_inputs.py     # writes benchmarks/results/fuzz_inputs.json

CI runs the same properties (``tests/test_fuzz_*.py``) with 30 examples each; this runs 1,500, with a
random seed each time (CI's profile is derandomized), so repeated runs explore new inputs.  A failure
prints hypothesis's minimal failing example; add it to the tests as an ``@example`` once fixed.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_fuzz_*.py"))
    env = dict(os.environ, SALIENCY_AUDIT_FUZZ="deep")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
                           *files], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    sys.stdout.write(proc.stdout[-20000:])
    summary = (re.findall(r"^=*\s*(.*(?:passed|failed).*?)\s*=*$", proc.stdout, flags=re.M) or ["?"])[-1]
    out = {"host": {"platform": platform.platform(), "cpus": os.cpu_count()}, "files": files,
           "examples_per_property": 1500, "seconds": round(seconds, 1), "exit_status": proc.returncode,
           "summary": summary}
    dest = ROOT / "benchmarks" / "results"
    dest.mkdir(exist_ok=True)
    (dest / "fuzz_inputs.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
