"""The demo audit's effects and the images each verdict needs (``saliency-audit plan``'s numbers).

    python benchmarks/bench_power.py [--evidence FILE] [--audits 300] [--resamples 1000]
    # writes saliency_audit/schemas/demo-effects.json (ships with the package) and
    # benchmarks/results/power.json

1. **The demo's effects**: the full demo audit with fixed-n verdicts (``pytest audits/ --no-sequential``, the
   paper's eight methods and the controls, every criterion), or the evidence
   ``--evidence`` names.  Every (criterion, method) result with per-image terms goes into the package's
   ``schemas/demo-effects.json``: per check its threshold, the mean, sd and n of its terms (the randomization
   criteria's with the noise floor's share, :func:`saliency_audit.stats.floor_terms`) and the per-image values
   (5 significant digits) with the images' floor terms, so a plan can resample them.  Re-run this after a
   change to how a criterion computes its terms: the file is regenerated from the evidence alone.
2. **Sample sizes**: per pair and rule (fixed n, sequential), the n for 80 % and 95 % power at the observed
   effect (:func:`saliency_audit.decisions.power.plan`), each checked by ``--audits`` resampled audits of that n drawn
   from the observed images through the product's own rule (fixed: ``bootstrap_mean(..., resamples=
   --resamples).lo``; sequential: :class:`saliency_audit.stats.sequential.Looks`); where that falls short of the
   target by more than twice its Monte-Carlo error, the first larger n (up 10 % at a time) whose resampled
   audits reach it (:func:`power.check`).
3. **The analytic n against brute force** on normal terms: for a few effects, the share of simulated t tests,
   of simulated fixed-n audits through the product's bound, and of simulated sequential audits
   (``sequential.decide``, futility as configured) that pass at the computed n.

The demo audit's own run time here is the machine's: 2 shared cores gave 9-10 minutes while other work ran.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "power.json"
EFFECTS = ROOT / "saliency_audit" / "schemas" / "demo-effects.json"
POWERS = (0.8, 0.95)


def demo_evidence(work: Path) -> tuple[dict, float]:
    """Run the fixed-n demo audit into ``work``; (its evidence, wall seconds)."""
    env = dict(os.environ, SALIENCY_AUDIT_PROGRESS="0")
    cmd = [sys.executable, "-m", "pytest", "audits/", "-q", "-p", "no:cacheprovider", "--no-sequential",
           f"--audit-report={work}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((work / "evidence.json").read_text()), time.perf_counter() - t0


def source_of(evidence: dict, path: str) -> dict:
    run, cfg = evidence.get("run") or {}, evidence.get("config") or {}
    argv = run.get("argv") if isinstance(run.get("argv"), list) else []
    command = " ".join(["pytest"] + [str(a) for a in argv if not str(a).startswith("--audit-report")])
    return {"evidence": path, "command": command, "started": run.get("started"), "seed": run.get("seed"),
            "git": run.get("git"), "n_images": cfg.get("n_images"), "sequential": cfg.get("sequential"),
            "sequential_batch": cfg.get("sequential_batch"), "sequential_futility": cfg.get("sequential_futility"),
            "written_by": "benchmarks/bench_power.py"}


def brute_force(alpha: float, batch: int, futility: float, sims: int = 4000, seed: int = 0) -> list[dict]:
    """The analytic n against simulated audits of normal terms."""
    from scipy import stats

    from saliency_audit.decisions import power
    from saliency_audit.stats import sequential
    from saliency_audit.stats import bootstrap_mean

    rng = np.random.default_rng(seed)
    out = []
    for delta in (0.3, 0.5, 0.8):
        for target in POWERS:
            nf = power.fixed_n(delta, target, alpha)
            x = rng.normal(delta, 1.0, (sims, nf))
            t = x.mean(1) / (x.std(1, ddof=1) / np.sqrt(nf))
            fixed = float((t >= stats.t.isf(alpha, nf - 1)).mean())
            product_sims = sims // 8
            product = sum(bootstrap_mean(rng.normal(delta, 1.0, nf), alpha=alpha, resamples=1000, seed=s).lo > 0
                          for s in range(product_sims)) / product_sims
            ns, exact = power.sequential_n(delta, target, alpha, batch, futility)
            seq_sims = sims // 4
            passes = sum(sequential.decide(rng.normal(delta, 1.0, ns), ns, alpha, batch, "obf", futility).stopped
                         == "pass" for _ in range(seq_sims))
            out.append({"delta": delta, "target": target, "fixed_n": nf, "t_test_power": round(fixed, 4),
                        "t_test_sims": sims, "product_fixed_power": round(product, 4), "product_sims": product_sims,
                        "sequential_n": ns, "sequential_exact": exact,
                        "sequential_power": round(passes / seq_sims, 4), "sequential_sims": seq_sims})
            print(f"  delta {delta}: {target:.0%} -> fixed {nf} (t test {fixed:.3f}, product {product:.3f}), "
                  f"sequential {ns} ({passes / seq_sims:.3f})", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evidence", type=Path, default=None, help="a fixed-n demo evidence file (default: run the demo)")
    ap.add_argument("--audits", type=int, default=300, help="resampled audits per n (default: 300)")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per resampled audit")
    ap.add_argument("--sims", type=int, default=4000, help="simulated normal audits per brute-force check")
    args = ap.parse_args()

    from saliency_audit.decisions import power
    from saliency_audit.config import AuditConfig
    from saliency_audit.evidence.schema import load, one_line

    record: dict = {"host": {"platform": platform.platform(), "cpus": os.cpu_count(),
                             "python": platform.python_version()}}
    if args.evidence is None:
        with tempfile.TemporaryDirectory() as tmp:
            print("running the fixed-n demo audit ...", flush=True)
            evidence, seconds = demo_evidence(Path(tmp))
        record["demo_audit_s"] = round(seconds, 1)
        where = "run by this script"
    else:
        evidence, found = load(args.evidence)
        if found:
            sys.exit(one_line(args.evidence, found))
        where = f"read from {args.evidence.name}"
    if (evidence.get("config") or {}).get("sequential"):
        print("warning: the evidence is from a sequential run; its pairs stopped at different n", file=sys.stderr)
    pairs, skipped = power.pairs_from_evidence(evidence)
    data = power.effects_json(pairs, source_of(evidence, where))
    text = json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n"
    EFFECTS.write_text(text, encoding="utf-8")
    print(f"{EFFECTS.relative_to(ROOT)}: {len(pairs)} pairs, {len(text) / 1024:.1f} KB; not planned: "
          + (", ".join(f"{label} ({why})" for label, why in skipped) or "none"), flush=True)

    cfg = AuditConfig()
    batch, futility = cfg.sequential_batch, cfg.sequential_futility
    # read back what ships, so the numbers are the file's
    shipped, _ = power.demo_effects()
    rows, timing = [], {}
    for rule in power.RULES:
        t0 = time.perf_counter()
        plans = [power.plan(p, POWERS, rule=rule, batch=batch, futility=futility) for p in shipped]
        timing[f"{rule}_analytic_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        for p, pl in zip(shipped, plans):
            for t in pl.targets:
                if t.n is not None:
                    power.check(t, p, pl.alpha, rule, batch=batch, futility=futility, audits=args.audits,
                                resamples=args.resamples, seed=len(rows))
            rows.append(pl.to_dict())
            print(power.line(pl, "the demo's effect"), flush=True)
        timing[f"{rule}_resampled_s"] = round(time.perf_counter() - t0, 1)
    print("brute force on normal terms:", flush=True)
    t0 = time.perf_counter()
    record["brute_force"] = brute_force(0.05, batch, futility, args.sims)
    timing["brute_force_s"] = round(time.perf_counter() - t0, 1)

    def table(rule):
        out = {}
        for r in rows:
            if r["rule"] != rule:
                continue
            key = f"{r['criterion']}[{r['method']}]" + (" (control)" if r["control"] else "")
            out[key] = {f"{t['power']:.0%}": (t["n"] if t["n"] is not None else
                                              ("no n" if t["why"] == "effect" else f"> {power.CAP}"))
                        for t in r["targets"]}
            out[key]["resampled_power"] = [None if t["resampled_power"] is None else round(t["resampled_power"], 3)
                                           for t in r["targets"]]
            out[key]["resampled_n"] = [t["resampled_n"] or (f"> {t['searched_to']}" if t["searched_to"] else None)
                                       for t in r["targets"]]
            out[key]["exact"] = all(t["exact"] for t in r["targets"])
            out[key]["effect"] = "; ".join(f"{c['name']}: mean {c['mean']:+.4g}, sd {c['sd']:.3g}, n {c['n']}, "
                                           f"threshold {c['threshold']:g}" for c in r["checks"])
            binding = {t["binding"] for t in r["targets"] if t["n"] is not None and len(r["checks"]) > 1}
            if binding:
                out[key]["binding"] = sorted(binding)
        return out

    record.update(source=data["source"], effects_file=str(EFFECTS.relative_to(ROOT)),
                  effects_kb=round(len(text) / 1024, 1), alpha=0.05, batch=batch, futility=futility,
                  audits=args.audits, resamples=args.resamples, timing=timing,
                  not_planned=[{"pair": label, "why": why} for label, why in skipped],
                  sample_sizes={"fixed": table("fixed"), "sequential": table("sequential")})
    OUT.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)} written; {timing}")


if __name__ == "__main__":
    main()
