"""Why is XRAI sensitive to randomization on the demo, and insensitive in Arun et al.?  (issue 16, point 4)

    python benchmarks/bench_xrai_baselines.py [demo,resnet18]     # writes results/xrai_baselines.json

Arun et al. (their create_maps scripts) call PAIR's ``XRAI.GetMask`` with its defaults, which computes its
own Integrated Gradients from *two* baselines, black and white, and averages them; the audit's XRAI ranks the
audit's IG (black baseline only, ``methods.ig``).  With a white baseline the attribution is
(x − 1) · mean gradient, so the average of the two is (2x − 1) · mean gradient / 2 along two paths: the
image's own contrast weights the attribution more than the model does.  Hypothesis: the black-and-white
attribution makes XRAI's regions follow the image, so its map barely moves when the model is randomized,
as in Arun et al. (head SSIM 0.92, fully randomized 0.81, floor 0.63 on SIIM).

For each base attribution (``black``: the audit's; ``black+white``: PAIR's default, same steps), XRAI's map
(the audit's segments and region ranking, the audit's postprocessing, as Arun et al.'s
``VisualizeImageGrayscale``) on the trained model, on 5 random heads and on the fully randomized model, for
the same 24 images: mean SSIM to the trained model's map, and the noise floor (maps of different images).
``amplification``: the SSIM of XRAI's and of IG's own map when the trained model's IG attribution gets a
little seeded Gaussian noise (5, 10, 20 % of its SD): how much XRAI's region ranking magnifies small changes.
``sign``: XRAI of the negated IG against XRAI of IG, and per random head the correlation of its signed IG
with the trained model's beside XRAI's and GradCAM's SSIM: the |IG| map is blind to the sign, XRAI's ranking
and GradCAM's ReLU are not.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "xrai_baselines.json"


def xrai_maps(audit, model, samples, baselines: str, noise: float = 0.0, sign: float = 1.0,
              signed: bool = False):
    """XRAI maps of ``samples`` on ``model`` from IG with ``baselines`` ("black" or "black+white")."""
    from captum.attr import IntegratedGradients

    from saliency_audit.data.resize import prepare
    from saliency_audit.methods.postprocess import postprocess
    from saliency_audit.methods.xrai import xrai

    store, cfg = audit.context.store, audit.config
    keys = [s.key() for s in samples]
    black = store.raw(model, "ig", samples, keys)  # the audit's IG, memoised
    attr = black
    x = prepare(samples, model.input_size, "cpu")
    target = store.targets(model, samples, keys)
    if baselines == "black+white":
        model.requires_grad_(False)
        white = IntegratedGradients(model).attribute(
            x.detach().requires_grad_(True), baselines=torch.ones_like(x), target=target,
            n_steps=cfg.methods.ig.steps, method=cfg.methods.ig.integration,
            internal_batch_size=cfg.pass_batch).detach()
        attr = (black + white) / 2  # PAIR's XRAI: the mean of the attributions from each baseline
    if noise:  # the attribution perturbed by seeded Gaussian noise of ``noise`` x its per-image SD
        g = torch.Generator().manual_seed(0)
        sd = attr.flatten(1).std(dim=1).view(-1, 1, 1, 1)
        attr = attr + noise * sd * torch.randn(attr.shape, generator=g)
    attr = sign * attr
    memo = {"raw": {"ig": attr}, "segments": store._segments, "cache_dir": store.cache_dir}
    raw = xrai(model, x, keys, target, cfg, memo).numpy()
    if signed:
        return postprocess(raw)[0], attr.numpy()
    return postprocess(raw)[0], postprocess(attr.numpy())[0]


def sign_sensitivity(audit, samples, draws: int = 5) -> dict:
    """The |IG| map cannot see the sign of the attribution; XRAI ranks regions by their *signed* gain.  XRAI of
    −IG against XRAI of IG (the trained model), and per random head: the correlation of its signed IG with the
    trained model's (its sign says whether the random read-out flipped the evidence) beside XRAI's SSIM."""
    from saliency_audit.metrics import similarity as sim

    models = audit.models
    x0, a0 = xrai_maps(audit, models.get("primary"), samples, "black", signed=True)
    xn, _ = xrai_maps(audit, models.get("primary"), samples, "black", sign=-1.0, signed=True)
    ctx = audit.context
    cam0 = ctx.maps(models.get("primary"), "gradcam", samples).maps
    heads = []
    for r in range(draws):
        x1, a1 = xrai_maps(audit, models.stage(1, r), samples, "black", signed=True)
        corr = [float(np.corrcoef(a.sum(0).ravel(), b.sum(0).ravel())[0, 1]) for a, b in zip(a0, a1)]
        cam1 = ctx.maps(models.stage(1, r), "gradcam", samples).maps
        heads.append({"ig_signed_corr": float(np.mean(corr)),
                      "xrai_ssim": float(np.mean([sim.ssim(a, b) for a, b in zip(x0, x1)])),
                      "gradcam_ssim": float(np.mean([sim.ssim(a, b) for a, b in zip(cam0, cam1)]))})
    return {"xrai_of_negated_ig_ssim": float(np.mean([sim.ssim(a, b) for a, b in zip(x0, xn)])), "heads": heads}


def amplification(audit, samples, levels=(0.05, 0.1, 0.2)) -> dict:
    """How far XRAI's map and its IG map move when the IG attribution is perturbed by a little noise: a
    method that turns small changes of its input attribution into large ones moves under any randomization."""
    from saliency_audit.metrics import similarity as sim

    primary = audit.models.get("primary")
    x0, ig0 = xrai_maps(audit, primary, samples, "black")
    out = {}
    for q in levels:
        x1, ig1 = xrai_maps(audit, primary, samples, "black", noise=q)
        out[str(q)] = {"ig_ssim": float(np.mean([sim.ssim(a, b) for a, b in zip(ig0, ig1)])),
                       "xrai_ssim": float(np.mean([sim.ssim(a, b) for a, b in zip(x0, x1)]))}
    return out


def compare(audit, samples, baselines: str, draws: int = 5) -> dict:
    from saliency_audit.metrics import similarity as sim

    models = audit.models
    ref = xrai_maps(audit, models.get("primary"), samples, baselines)[0]
    n = len(ref)
    floor = float(np.mean([sim.ssim(ref[i], ref[(i + 1) % n]) for i in range(n)]))

    def ssim_to(model):
        m = xrai_maps(audit, model, samples, baselines)[0]
        return float(np.mean([sim.ssim(a, b) for a, b in zip(ref, m)]))

    head = [ssim_to(models.stage(1, r)) for r in range(draws)]
    full = ssim_to(models.stage(None))
    return {"head_ssim": float(np.mean(head)), "head_ssim_per_draw": head, "all_ssim": full, "noise_floor": floor,
            "head_d": (1 - float(np.mean(head))) / (1 - floor), "all_d": (1 - full) / (1 - floor)}


def main() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_flip_rate import model_spec

    from saliency_audit import Audit
    from saliency_audit.config import AuditConfig

    only = sys.argv[1].split(",") if len(sys.argv) > 1 else ["demo"]
    out = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in only:
        spec, overrides = model_spec(name)
        t0 = time.perf_counter()
        cfg = AuditConfig(sequential=False).merged(overrides, "bench") if overrides else AuditConfig(sequential=False)
        audit = Audit(model=spec, methods=["xrai"], config=cfg)
        samples = audit.samples.first(24)
        row = {"spec": spec, "images": len(samples), "ig_steps": cfg.methods.ig.steps}
        for b in ("black", "black+white"):
            row[b] = compare(audit, samples, b)
            print(name, b, json.dumps(row[b]), flush=True)
        row["amplification"] = amplification(audit, samples)
        print(name, "amplification", json.dumps(row["amplification"]), flush=True)
        row["sign"] = sign_sensitivity(audit, samples)
        print(name, "sign", json.dumps(row["sign"]), flush=True)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = row
        RESULTS.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
