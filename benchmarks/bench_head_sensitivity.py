"""Why does randomizing the demo's logit layer barely move its maps?  (issue 16, point 4)

    python benchmarks/bench_head_sensitivity.py [demo,demo-expand,...]   # writes results/head_sensitivity.json

Hypothesis: the input gradient of a logit is a linear read-out of the last layer's channel gradients,
grad_c = sum_k W_ck * d(pooled feature k)/dx.  When those channel gradients span few distinct spatial patterns
(redundant features), any read-out, trained or random, gives the same |map| after normalisation, and the
head-stage SSIM stays high whatever the method.  Real chest-X-ray classifiers read 1,024-2,048 diverse
channels (Arun et al.'s Inception: gradient head-stage SSIM 0.37).

For each model: the *participation ratio* of the channel gradients (PR = (sum l)^2 / sum l^2 over the
eigenvalues l of their covariance across pixels, averaged over images: the effective number of distinct
gradient patterns; 1 = all channels alike), and the head-stage SSIM of the gradient and GradCAM maps averaged
over 5 random heads (the audit's maps and SSIM, 24 images), for:

* ``demo``: the shipped DemoCNN (64 channels before the head);
* ``demo-resnet``: the shipped DemoResNet (the demo's other architecture: residual blocks, 64 channels);
* ``demo-wide``: DemoCNN with 256 channels in its last block, trained the same way (seed 1);
* ``demo-expand``: DemoCNN with a 1 x 1 expansion to 256 channels before the head (EfficientNet's way);
* ``demo-lr1e-3``, ``demo-lr3e-4``, ``demo-1epoch``: the DemoCNN trained more gently (the training sweep);
* ``resnet18``: torchvision's resnet18 (512 channels) trained on the demo images at 128 px
  (benchmarks/bench_flip_rate.py trains and caches it).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "head_sensitivity.json"


def demo_wide():
    """DemoCNN with 256 channels in both convs of its last block (3 x 3): 5.7x the demo's multiply-adds."""
    from saliency_audit.demo.archs import DemoCNN

    net = DemoCNN((8, 16, 32, 256))
    net.input_size, net.in_channels = (128, 128), 1
    return net


def demo_expand():
    """DemoCNN with a 1 x 1 conv-BN-ReLU from 64 to 256 channels before the head, as EfficientNet and
    MobileNet widen before theirs: +13 % multiply-adds."""
    from torch import nn

    from saliency_audit.demo.archs import DemoCNN, _conv_bn_relu, _head

    net = DemoCNN()
    net.features = nn.Sequential(*net.features, _conv_bn_relu(64, 256, kernel=1))
    net.head = _head(256)
    net.input_size, net.in_channels = (128, 128), 1
    return net


def demo_cnn():
    """The demo's own DemoCNN, for the training sweep."""
    from saliency_audit.demo.archs import DemoCNN

    net = DemoCNN()
    net.input_size, net.in_channels = (128, 128), 1
    return net


FACTORIES = {"demo-wide": demo_wide, "demo-expand": demo_expand}
#: the training sweep: the shipped primary's recipe (Adam, OneCycle, lr 3e-3, 4 epochs on 2,000 images) with a
#: smaller learning rate or fewer epochs, to see whether the feature collapse comes from training hard
SWEEP = {"demo-lr1e-3": dict(lr=1e-3), "demo-lr3e-4": dict(lr=3e-4), "demo-1epoch": dict(epochs=1)}


def demo_variant_checkpoint(name: str) -> Path:
    """A demo-architecture variant trained as the shipped primary is (same data, seed, schedule; cached)."""
    from saliency_audit.demo import train
    from saliency_audit.common.paths import cache_root

    path = cache_root() / "bench" / f"{name}.pt"
    if path.is_file():
        return path
    train.ARCHS[name] = FACTORIES.get(name, demo_cnn)
    model, info = train._train(dict(train.VARIANTS["primary"], arch=name, **SWEEP.get(name, {})),
                               desc=f"training {name}")
    print(name, info, flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(info))
    return path


def participation_ratio(audit, samples, layer, model=None) -> dict:
    """Effective number of distinct channel-gradient patterns at ``layer`` (pooled channel k -> input)."""
    from saliency_audit.data.resize import prepare

    model = model if model is not None else audit.models.get("primary")
    x = prepare(samples, model.input_size, "cpu")
    feats = {}
    handle = layer.register_forward_hook(lambda m, i, o: feats.update(out=o))
    prs = []
    try:
        for j in range(len(x)):
            xi = x[j:j + 1].clone().requires_grad_(True)
            model(xi)
            pooled = feats["out"].mean(dim=(2, 3))[0]
            grads = []
            for k in range(len(pooled)):
                g, = torch.autograd.grad(pooled[k], xi, retain_graph=k < len(pooled) - 1)
                grads.append(g.abs().sum(1).flatten())  # |channel-summed| as the maps are
            gmat = torch.stack(grads).double()
            gmat = gmat - gmat.mean(1, keepdim=True)
            lam = torch.linalg.eigvalsh(gmat @ gmat.T).clamp(min=0)
            prs.append(float(lam.sum() ** 2 / (lam ** 2).sum()))
    finally:
        handle.remove()
    return {"participation_ratio": float(np.mean(prs)), "channels": int(len(pooled)), "images": len(prs)}


def head_ssim(audit, samples, method: str, draws: int = 5) -> dict:
    from saliency_audit.criteria.randomization import mean_noise_floors
    from saliency_audit.metrics import similarity as sim

    ctx = audit.context
    ref = ctx.maps(audit.models.get("primary"), method, samples)
    per = [float(np.mean([sim.ssim(a, b) for a, b in zip(ref.maps, ctx.maps(audit.models.stage(1, r), method,
                                                                              samples).maps)])) for r in range(draws)]
    return {"head_ssim_mean": float(np.mean(per)), "head_ssim_per_draw": per,
            "noise_floor": mean_noise_floors(ref)["ssim"]}


def main() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_flip_rate import resnet18_checkpoint

    from saliency_audit import Audit
    from saliency_audit.config import AuditConfig
    from saliency_audit.models.layers import find_cam_layer

    demo_input = {"model": {"input_size": [128, 128], "mean": [0.5], "std": [0.25]}}
    models = {"demo": lambda: ("demo", {}),  # built on demand: each may train its model first
              "demo-resnet": lambda: ("demo:other-arch", {}),
              **{n: (lambda n=n, f=f: (f"bench_head_sensitivity:{f.__name__}:{demo_variant_checkpoint(n)}",
                                       demo_input)) for n, f in FACTORIES.items()},
              **{n: (lambda n=n: (f"bench_head_sensitivity:demo_cnn:{demo_variant_checkpoint(n)}", demo_input))
                 for n in SWEEP},
              "resnet18": lambda: (f"resnet18:{resnet18_checkpoint()}", {"model": {"input_size": [128, 128]}})}
    only = sys.argv[1].split(",") if len(sys.argv) > 1 else list(models)
    out = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in only:
        spec, overrides = models[name]()
        t0 = time.perf_counter()
        cfg = AuditConfig(sequential=False).merged(overrides, "bench") if overrides else AuditConfig(sequential=False)
        audit = Audit(model=spec, methods=["grad", "gradcam"], config=cfg)
        samples = audit.samples.first(24)
        primary = audit.models.get("primary")
        layer = dict(primary.net.named_modules())[find_cam_layer(primary, None).name]
        info = Path(spec.rsplit(":", 1)[-1]).with_suffix(".json")
        row = {"spec": spec, **participation_ratio(audit, samples[:6], layer),
               "training": json.loads(info.read_text()) if info.is_file() else None,
               "blocks": [b.name for b in audit.models.blocks()][:2]}
        untrained = audit.models.stage(None)  # the same network fully re-initialised: before any training
        row["participation_ratio_untrained"] = participation_ratio(
            audit, samples[:6], dict(untrained.net.named_modules())[find_cam_layer(primary, None).name],
            untrained)["participation_ratio"]
        acc = audit._performance()
        row["accuracy"] = acc.get("accuracy") if acc else None
        for m in ("grad", "gradcam"):
            row[m] = head_ssim(audit, samples, m)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = row
        print(name, json.dumps(row), flush=True)
        RESULTS.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
