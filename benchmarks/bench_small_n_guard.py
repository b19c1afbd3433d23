"""What a distribution-free small-sample guard would cost: power of the demo's verdicts at 8-48 images.

    python benchmarks/bench_small_n_guard.py        # about 1 min; writes benchmarks/results/small_n_guard.json

The calibration study (bench_error_rates.py) finds the fixed-n rule above its 5 % level at 8-24 images for
per-image values with a long lower tail (a method that fails badly on a few images the sample did not
draw).  No rule built on the sample's own moments can see such a tail; the only rules whose level holds at
any n use the values' range.  This benchmark measures the price of the strongest of them: a pass also
requires a fixed-n betting test (Waudby-Smith & Ramdas 2023, the hedged-capital test with predictable
plug-in bets ``lambda_i = min(sqrt(2 log(1/alpha) / (n var_{i-1})), 0.75 / (threshold - lo))``; its
capital ``prod(1 + lambda_i (x_i - threshold))`` is a nonnegative supermartingale under a mean at the
threshold for values >= ``lo``, so it reaches ``1 / alpha`` with chance at most alpha at any n).  Only the
lower end of the range matters for a lower bound; each criterion's is its values' natural minimum (-1 for
AP and score differences, SSIM and ROAD differences).

For each demo (criterion, method) -- its recorded per-image terms (results/demo_terms.json), resampled --
at 8, 16, 24 and 48 images: the pass rate at the observed effect of the product's studentized bound alone
(``stats.mean_lower``: the t and Hall bounds; the product's fixed-n bound is the further out of these and
the expanded BCa, so its rates are at most these), with the guard added, and the guarded rule's pass rate
with the terms shifted to the threshold (its wrong-pass rate).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from scipy import special

from saliency_audit.stats import mean_lower

ALPHA = 0.05
SIZES = (8, 16, 24, 48)
AUDITS = 2000
CAP = 0.75
HERE = Path(__file__).resolve().parent
LOWER_END = {"utility": -1.0, "repeatability": -1.0, "reproducibility": -1.0, "completeness": -1.0,
             "energy": -1.0, "focus": -1.0, "pointing": -1.0}
THRESHOLDS = {"repeatability": 0.5, "reproducibility": 0.5}  # consistency.min_ssim; the others compare to 0


def betting_passes(x: np.ndarray, threshold: float, lo: float) -> bool:
    """The fixed-n hedged-capital test of 'mean > threshold' for values >= lo (hand-written: no dependency
    offers it; sequential.py's confidence sequence spends its level over every n and is wider)."""
    n = len(x)
    scale = threshold - lo
    t = np.arange(1, n + 1)
    means = np.cumsum(x) / t
    sq = np.concatenate(([0.0], np.cumsum((x - means) ** 2)[:-1]))
    var = (0.25 * scale * scale + sq) / t  # predictable: uses the values before x_i
    lam = np.minimum(np.sqrt(2.0 * math.log(1.0 / ALPHA) / (n * var)), CAP / scale)
    return float(np.log1p(lam * (x - threshold)).sum()) >= math.log(1.0 / ALPHA)


def rates(v: np.ndarray, threshold: float, strict: bool, lo: float, n: int, rng) -> dict:
    crit = -float(special.stdtrit(n - 1, ALPHA))
    clt = guarded = null = 0
    for _ in range(AUDITS):
        x = v[rng.integers(0, len(v), n)]
        ok = np.ptp(x) > 0 and (mean_lower(x, crit) > threshold if strict else mean_lower(x, crit) >= threshold)
        clt += ok
        guarded += ok and betting_passes(x, threshold, lo)
        x0 = x - v.mean() + threshold
        ok0 = np.ptp(x0) > 0 and mean_lower(x0, crit) > threshold
        null += ok0 and betting_passes(x0, threshold, lo)
    return {"n": n, "power_studentized": clt / AUDITS, "power_guarded": guarded / AUDITS,
            "wrong_pass_guarded": null / AUDITS}


def main() -> None:
    start = time.perf_counter()
    terms = json.loads((HERE / "results" / "demo_terms.json").read_text())
    rng = np.random.default_rng(20261207)
    rows = []
    for crit, lo in LOWER_END.items():
        c = terms["criteria"][crit]
        thr = THRESHOLDS.get(crit, 0.0)
        for meth, e in c["methods"].items():
            v = np.asarray(e["values"], dtype=np.float64)
            v = v[np.isfinite(v)]
            row = {"criterion": crit, "method": meth, "threshold": thr, "lower_end": lo,
                   "effect": float(v.mean() - thr), "sd": float(v.std(ddof=1)),
                   "sizes": [rates(v, thr, bool(c["strict"]), lo, n, rng) for n in SIZES]}
            rows.append(row)
            print(f"{crit:15s} {meth:7s} effect {row['effect']:+.3f} | " + " | ".join(
                f"n{s['n']}: {s['power_studentized']:.2f} -> {s['power_guarded']:.2f}" for s in row["sizes"]))
    lost = {n: sum(r["sizes"][i]["power_studentized"] >= 0.8 > r["sizes"][i]["power_guarded"] for r in rows)
            for i, n in enumerate(SIZES)}
    out = {"alpha": ALPHA, "audits": AUDITS, "cap": CAP, "sizes": list(SIZES), "rows": rows,
           "verdicts_losing_80pct_power": {str(k): v for k, v in lost.items()},
           "verdicts_with_80pct_power_studentized": {
               str(n): sum(r["sizes"][i]["power_studentized"] >= 0.8 for r in rows) for i, n in enumerate(SIZES)},
           "seconds": time.perf_counter() - start}
    (HERE / "results" / "small_n_guard.json").write_text(json.dumps(out, indent=1) + "\n")
    print("verdicts with >= 80 % power (studentized):", out["verdicts_with_80pct_power_studentized"])
    print("... of which the guard takes below 80 %:", out["verdicts_losing_80pct_power"])


if __name__ == "__main__":
    main()
