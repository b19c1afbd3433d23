"""Error and power of the sequential rule against the fixed-n audit, on simulated per-image values.

    python benchmarks/bench_sequential_error.py [--reps 2000]
    # writes benchmarks/results/sequential_error.json

The evidence behind ``sequential = true`` (config.py): per distribution and image count, on the same draws,

* the wrong-pass rate (true mean exactly at the threshold) of the shipped rule (O'Brien–Fleming looks
  after every 8 images, futility from half the images on), of the same rule without futility, of the
  fixed-n audit's BCa bootstrap (``stats.method``) and of a fixed-n one-sided t-test;
* the power of each at an effect the fixed-n t-test finds 80 % of the time (normal values, sd 0.3), and
  the mean number of images the sequential rule used.

Monte-Carlo standard error of a rate near 0.05 with 2,000 draws: 0.005; near 0.8: 0.009.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from saliency_audit import AuditConfig
from saliency_audit.stats.groupseq import t_critical
from saliency_audit.stats.sequential import decide
from saliency_audit.stats import bootstrap_mean

ALPHA = 0.05
OUT = Path(__file__).resolve().parent / "results" / "sequential_error.json"
NULLS = {
    "uniform [-1, 1]": lambda rng, n: rng.uniform(-1, 1, n),
    "normal, sd 0.3": lambda rng, n: np.clip(rng.normal(0, 0.3, n), -1, 1),
    "right-skewed beta(2, 5), centred": lambda rng, n: rng.beta(2, 5, n) - 2 / 7,
    "left-skewed beta(5, 2), centred": lambda rng, n: rng.beta(5, 2, n) - 5 / 7,
}


def rates(draw, n: int, reps: int, seed: int) -> dict:
    futility = AuditConfig().sequential_futility
    rng = np.random.default_rng(seed)
    seq = seq_nofut = t = bca = used = 0
    for r in range(reps):
        x = draw(rng, n)
        looks = decide(x, n, ALPHA, futility=futility)
        seq += looks.stopped == "pass"
        used += looks.looks[-1]["n"]
        seq_nofut += decide(x, n, ALPHA).stopped == "pass"
        t += bool(x.mean() - t_critical(ALPHA, n) * x.std(ddof=1) / np.sqrt(n) > 0)
        bca += bool(bootstrap_mean(x, alpha=ALPHA, resamples=1000, seed=r).lo > 0)
    return {"sequential": seq / reps, "sequential_without_futility": seq_nofut / reps,
            "fixed_bca": bca / reps, "fixed_t": t / reps, "mean_images_sequential": used / reps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    args = ap.parse_args()
    out = {"alpha": ALPHA, "reps": args.reps, "futility": AuditConfig().sequential_futility,
           "wrong_pass_rate": [], "power": []}
    for name, draw in NULLS.items():
        for n in (48, 24):
            row = {"values": name, "n_images": n, **rates(draw, n, args.reps, 20261203)}
            out["wrong_pass_rate"].append(row)
            print(row, flush=True)
    for n in (48, 24):
        effect = (stats.norm.ppf(1 - ALPHA) + stats.norm.ppf(0.8)) * 0.3 / np.sqrt(n)
        row = {"values": f"normal, sd 0.3, mean {effect:.4f}", "n_images": n,
               **rates(lambda rng, k: rng.normal(effect, 0.3, k), n, args.reps, 5)}
        out["power"].append(row)
        print(row, flush=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
