"""What issue 17's release-gate pieces cost on top of an audit (writes results/release_gate.json).

    python benchmarks/bench_release_gate.py

* ``p_values``: the time to compute every verdict's p-value on the demo's per-image values, for the two
  designs: the sequential rule's stage-wise p (one vector sum per check at the stopping look, the default)
  and the fixed-n bootstrap p (bisection on the criterion's own BCa bound, ``--no-sequential``), per verdict
  and for 72 verdicts; beside it, one BCa bound (what the verdict itself costs).
* ``holm``: Holm and Bonferroni over 72 p-values.
* ``diff``: ``saliency_audit.decisions.comparison.compare`` of two full demo evidence files (99 results each), given as
  arguments or found in /tmp/seeds2/s0 and s1 (two ``pytest audits/ --seed=0|1`` runs).
* ``autoarch``: the first bare-PATH architecture match in a fresh process (80 torchvision signatures on the meta
  device) and a later one, with the process's peak RSS before and after.

Nothing here asserts a time; the figures go to the JSON and the README quotes them.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "release_gate.json"


def _timed(fn, repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def p_values() -> dict:
    from saliency_audit.stats.sequential import decide
    from saliency_audit.stats import bootstrap_mean, pass_p_value

    rng = np.random.default_rng(0)
    samples = [rng.normal(rng.uniform(-0.05, 0.2), 0.3, 48) for _ in range(20)]
    looks = [decide(x, 48, 0.05, batch=8) for x in samples]
    looks[0].p_value()  # the first builds the design's densities (cached per set of looks)
    seq = np.mean([_timed(lk.p_value) for lk in looks])
    fixed = np.mean([_timed(lambda x=x: pass_p_value(x, 0.0, strict=True, seed=1)) for x in samples[:8]])
    bound = np.mean([_timed(lambda x=x: bootstrap_mean(x, seed=1)) for x in samples[:8]])
    return {"images": 48, "sequential_stagewise_s": seq, "fixed_n_bootstrap_s": fixed, "one_bca_bound_s": bound,
            "for_72_verdicts_s": {"sequential": 72 * seq, "fixed_n": 72 * fixed}}


def holm() -> dict:
    from saliency_audit.stats.multiplicity import decide

    ps = list(np.random.default_rng(1).uniform(0, 1, 72))
    return {m: _timed(lambda m=m: decide(ps, 0.05, m), repeat=100) for m in ("holm", "bonferroni")}


def diff(old: Path, new: Path) -> dict | None:
    from saliency_audit.decisions.comparison import compare, regressions

    if not (old.is_file() and new.is_file()):
        return None
    a, b = json.loads(old.read_text()), json.loads(new.read_text())
    t0 = time.perf_counter()
    c = compare(a, b)
    return {"old": str(old), "new": str(new), "results": [len(a["results"]), len(b["results"])],
            "seconds": time.perf_counter() - t0, "rows": len(c["rows"]), "not_compared": len(c["not_compared"]),
            "worse": len(regressions(c)), "summary": c["summary"]}


AUTOARCH = """
import json, resource, time, torch, torchvision
from saliency_audit.models import autoarch
state = torchvision.models.resnet18(weights=None, num_classes=2).state_dict()
other = torchvision.models.densenet121(weights=None, num_classes=3).state_dict()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); first = autoarch.matches(state); t1 = time.perf_counter()
again = autoarch.matches(other); t2 = time.perf_counter()
print(json.dumps({"first_match_s": t1 - t0, "later_match_s": t2 - t1, "first": first, "later": again,
                  "signatures": autoarch.STATS["built"], "peak_rss_mb_before": rss0 / 1024,
                  "peak_rss_mb_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def autoarch() -> dict:
    out = subprocess.run([sys.executable, "-c", AUTOARCH], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    old, new = (Path(a) for a in argv[:2]) if len(argv) >= 2 else (Path("/tmp/seeds2/s0/evidence.json"),
                                                                   Path("/tmp/seeds2/s1/evidence.json"))
    out = {"p_values": p_values(), "holm": holm(), "diff": diff(old, new), "autoarch": autoarch(),
           "machine": {"cores": 2, "note": "the project's 2-core CPU machine"},
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    RESULTS.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
