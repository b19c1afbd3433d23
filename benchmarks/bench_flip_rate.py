"""How often does the head-stage randomization verdict flip with the randomization seed?  (issue 16)

    python benchmarks/bench_flip_rate.py                     # demo and resnet18, 10 seeds, draws 1, 3, 5
    python benchmarks/bench_flip_rate.py --models demo --methods grad,gradcam

For each model and method: 10 randomization seeds; for each seed and ``draws`` D in (1, 3, 5), the verdict's
head-stage check as the audit computes it (per-image SSIM to the trained model's maps averaged over D
re-initialisations of the head, normalized drop d against the SSIM noise floor, one-sided 95 % BCa lower bound
of mean d >= randomization.head_min) on the same fixed images (fixed n: only the randomization varies).
The D draws of a seed are nested (D = 1 uses the first of the seed's 5 heads), so the columns differ by D
only.  The *flip rate* is the share of seeds whose verdict differs from the majority's; ``disagree`` is the
chance that two seeds give different verdicts.  ``all_stage``: the all-blocks stage with one draw per seed
(its d range and how many seeds clear randomization.all_min), to see whether it ever hinges on the draw.

``resnet18`` is torchvision's resnet18 (2 classes) trained here on the demo's training images at 128 px
(grey replicated to 3 channels, ImageNet normalisation, as the audit feeds a torchvision model), cached in
the audit cache; the demo model is the shipped primary.

Writes benchmarks/results/flip_rate.json (merged with what is there: one model at a time is fine).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAPER = ("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam")
RESULTS = ROOT / "benchmarks" / "results" / "flip_rate.json"


def resnet18_checkpoint(size: int = 128, epochs: int = 4) -> Path:
    """torchvision resnet18 trained on the demo's 2,000 training images (cached)."""
    import torch
    import torchvision

    from saliency_audit.demo.train import _split_tensors
    from saliency_audit.demo.archs import INPUT_MEAN, INPUT_STD
    from saliency_audit.common.paths import cache_root

    path = cache_root() / "bench" / f"resnet18-demo-{size}px-{epochs}ep.pt"
    if path.is_file():
        return path
    x, y = _split_tensors("train", 2000, "independent")
    x = x * INPUT_STD + INPUT_MEAN  # back to [0, 1] pixels
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def prep(b):
        b = torch.nn.functional.interpolate(b, size=(size, size), mode="bilinear", align_corners=False) \
            if b.shape[-1] != size else b
        return (b.expand(-1, 3, -1, -1) - mean) / std

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * -(-len(x) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.2)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(prep(x[idx])), y[idx]).backward()
            opt.step()
            sched.step()
        print(f"resnet18 epoch {epoch + 1}/{epochs} ({time.perf_counter() - t0:.0f} s)", flush=True)
    model.eval()
    xv, yv = _split_tensors("val", 500, "independent")
    xv = xv * INPUT_STD + INPUT_MEAN
    with torch.no_grad():
        acc = float(torch.cat([model(prep(xv[i:i + 100])).argmax(1) for i in range(0, len(xv), 100)]).eq(yv)
                    .double().mean())
    print(f"resnet18 trained in {time.perf_counter() - t0:.0f} s, validation accuracy {acc:.3f}", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({"val_accuracy": acc, "epochs": epochs, "size": size}))
    return path


def model_spec(name: str) -> tuple[str, dict]:
    if name == "demo":
        return "demo", {}
    if name == "resnet18":
        return f"resnet18:{resnet18_checkpoint()}", {"model": {"input_size": [128, 128]}}
    raise SystemExit(f"unknown model {name!r}: demo or resnet18")


def _verdicts(d_per_seed: list, threshold: float, cfg, seed_of) -> dict:
    """Each seed's bootstrap lower bound of mean d against ``threshold`` (``seed_of(s)``: the bootstrap's seed
    for randomization seed s): passes, flip rate, spread."""
    from saliency_audit.stats import bootstrap_mean

    bs = [bootstrap_mean(d, alpha=cfg.randomization.alpha, resamples=cfg.stats.resamples, method=cfg.stats.method,
                         seed=seed_of(s)) for s, d in enumerate(d_per_seed)]
    ok = [b.lo is not None and np.isfinite(b.lo) and b.lo >= threshold for b in bs]
    n, p = len(bs), sum(ok) / len(bs)
    means = [float(b.mean) for b in bs]
    return {"passes": sum(ok), "flip_rate": min(sum(ok), n - sum(ok)) / n, "disagree": 2 * p * (1 - p) * n / (n - 1),
            "d_mean": float(np.mean(means)), "d_sd_across_seeds": float(np.std(means, ddof=1)),
            "lower_min": float(np.nanmin([b.lo for b in bs])), "lower_max": float(np.nanmax([b.lo for b in bs]))}


def _per_image_design(audit, ctx, method, samples, ref, floor, seeds: int, cfg) -> dict:
    """randomization.draw_design = "per_image" with one draw: image i of seed s explained by its own
    re-initialisation (draw 1000 + s * n + i, disjoint from the shared design's draws), at the head and the
    all-blocks stage, as criteria.randomization.stage_maps assembles them."""
    from saliency_audit.criteria.randomization import drop
    from saliency_audit.methods.mapset import MapSet
    from saliency_audit.metrics import similarity as sim
    from saliency_audit.stats import stable_seed

    nb, n = len(audit.models.blocks()), len(samples)
    out = {}
    for name, k, threshold in (("head", 1, cfg.randomization.head_min), ("all_stage", nb, cfg.randomization.all_min)):
        ds = []
        for s in range(seeds):
            maps = MapSet.concat([ctx.maps(audit.models.stage(k, 1000 + s * n + i), method, [x])
                                  for i, x in enumerate(samples)])
            ds.append(drop(np.array([sim.ssim(a, b) for a, b in zip(ref.maps, maps.maps)]), floor))
        out[name] = _verdicts(ds, threshold, cfg, lambda s, name=name: stable_seed(0, f"flip-per-image-{name}-{method}", s))
    return out


def flip_rates(model_name: str, methods, seeds: int, draws: tuple[int, ...], n_images: int,
               per_image_too: bool = True, save=None) -> dict:
    """``save(out)`` after each method: a long run that is stopped keeps what it measured."""
    from saliency_audit import Audit
    from saliency_audit.config import AuditConfig
    from saliency_audit.criteria.randomization import drop, mean_noise_floors
    from saliency_audit.metrics import similarity as sim
    from saliency_audit.stats import bootstrap_mean, stable_seed

    spec, overrides = model_spec(model_name)
    cfg = AuditConfig(sequential=False).merged(overrides, "bench") if overrides else AuditConfig(sequential=False)
    cfg.randomization.n_images = n_images
    audit = Audit(model=spec, methods=list(methods), config=cfg)
    ctx = audit.context
    samples = ctx.samples.first(n_images)
    primary = audit.models.get("primary")
    per_draw = max(draws)
    out = {"spec": spec, "n_images": n_images, "seeds": seeds, "draws": list(draws), "methods": {}}
    acc = audit._performance()
    if acc:
        out["accuracy_on_audited_images"] = acc.get("accuracy")
    for method in methods:
        t0 = time.perf_counter()
        ref = ctx.maps(primary, method, samples)
        floor = mean_noise_floors(ref)["ssim"]
        # one head re-initialisation per (seed, draw): draw index seed * 5 + r (draw 0 is the audit's default)
        ssim = {}
        for s in range(seeds):
            for r in range(per_draw):
                q = s * per_draw + r
                maps = ctx.maps(audit.models.stage(1, q), method, samples)
                ssim[q] = np.array([sim.ssim(a, b) for a, b in zip(ref.maps, maps.maps)])
        rows = {}
        for d_count in draws:
            rows[str(d_count)] = _verdicts(
                [drop(np.mean([ssim[s * per_draw + r] for r in range(d_count)], axis=0), floor) for s in range(seeds)],
                cfg.randomization.head_min, cfg, lambda s, d_count=d_count: stable_seed(0, "flip", method, s, d_count))
            rows[str(d_count)]["head_ssim_per_seed"] = ([round(float(np.mean(ssim[s * per_draw])), 3)
                                                         for s in range(seeds)] if d_count == 1 else None)
        # the all-blocks stage, one draw per seed: does its verdict ever hinge on the draw?
        nb = len(audit.models.blocks())
        alls = []
        for s in range(seeds):
            maps = ctx.maps(audit.models.stage(nb, s * per_draw), method, samples)
            d = drop(np.array([sim.ssim(a, b) for a, b in zip(ref.maps, maps.maps)]), floor)
            b = bootstrap_mean(d, alpha=cfg.randomization.alpha, resamples=cfg.stats.resamples,
                               method=cfg.stats.method, seed=stable_seed(0, "flip-all", method, s))
            alls.append((float(b.mean), float(b.lo)))
        all_stage = {"passes": sum(lo >= cfg.randomization.all_min for _, lo in alls), "d_min": min(m for m, _ in alls),
                     "d_max": max(m for m, _ in alls), "lower_min": min(lo for _, lo in alls)}
        per_image = _per_image_design(audit, ctx, method, samples, ref, floor, seeds, cfg) if per_image_too else None
        out["methods"][method] = {"noise_floor": floor, "draws": rows, "all_stage": all_stage,
                                  **({"per_image": per_image} if per_image else {}),
                                  "seconds": round(time.perf_counter() - t0, 1)}
        print(model_name, method, {k: (v["passes"], round(v["flip_rate"], 2), round(v["d_mean"], 2),
                                       round(v["d_sd_across_seeds"], 3)) for k, v in rows.items()}, all_stage,
              {k: (v["passes"], round(v["flip_rate"], 2), round(v["d_mean"], 2)) for k, v in (per_image or {}).items()},
              f"{out['methods'][method]['seconds']} s", flush=True)
        if save:
            save(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="demo,resnet18")
    ap.add_argument("--methods", default=",".join(PAPER))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--draws", default="1,3,5")
    ap.add_argument("--n-images", type=int, default=24)
    args = ap.parse_args()
    draws = tuple(int(x) for x in args.draws.split(","))
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in args.models.split(","):
        prev = results.get(name, {}).get("methods", {})

        def save(res, name=name, prev=prev):
            results[name] = {**res, "methods": {**prev, **res["methods"]}}
            RESULTS.parent.mkdir(exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")

        flip_rates(name, args.methods.split(","), args.seeds, draws, args.n_images, save=save)


if __name__ == "__main__":
    main()
