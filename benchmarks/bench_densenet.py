"""Time per image per method on torchvision densenet121 at 224 px, against its plain forward+backward.

    python benchmarks/bench_densenet.py [--images 8] [--device cpu]
    # writes benchmarks/results/densenet121.json (densenet121-cuda.json with --device cuda)

A random-weight densenet121 (2 classes) is saved as a state dict and loaded
through ``load_model`` exactly as a user's checkpoint would be.  Its maps of
``--images`` demo images (resized to 224 px) are computed for each method
through the MapStore with no disk cache, at the default parameters (SmoothGrad
25 draws, IG 10 steps, Smooth IG 25 × 10).  The reference is one batched
forward+backward to the input of the same images; the ratio is
method seconds / forward+backward seconds, i.e. how many "training steps"
an explanation costs.  Torch uses every core it sees (2 on the dev machine).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam")


def densenet_setup(images: int, device: str):
    """(model, samples, x): a random-weight densenet121 (2 classes) saved and loaded through ``load_model``
    as a user's checkpoint would be, and ``images`` demo images resized to 224 px, batched on ``device``."""
    import torch
    import torchvision

    from saliency_audit.data.demo import DemoDataset
    from saliency_audit.data.resize import resize_sample
    from saliency_audit.data.resize import prepare
    from saliency_audit.models import load_model

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "densenet121.pt"
        torch.save(torchvision.models.densenet121(weights=None, num_classes=2).state_dict(), path)
        model = load_model(f"densenet121:{path}", device=device)
    ds = DemoDataset()
    samples = [resize_sample(ds[i], (224, 224)) for i in range(images)]
    return model, samples, prepare(samples, model.input_size, device)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    import torch

    from saliency_audit import AuditConfig
    from saliency_audit.engine.maps import MapStore

    model, samples, x = densenet_setup(args.images, args.device)

    def fwd_bwd() -> float:
        xx = x.detach().requires_grad_(True)
        model.requires_grad_(False)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(xx)[:, 1].sum().backward()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    fwd_bwd()  # warm-up
    base = min(fwd_bwd() for _ in range(3)) / len(samples)
    with torch.no_grad():
        t0 = time.perf_counter()
        model(x)
        forward = (time.perf_counter() - t0) / len(samples)
    rows = []
    for method in args.methods.split(","):
        store = MapStore(AuditConfig(device=args.device), None)
        store.maps(model, method, samples[:1])  # warm-up (and XRAI's segmentation of image 0)
        store = MapStore(AuditConfig(device=args.device), None)
        t0 = time.perf_counter()
        store.maps(model, method, samples)
        per_image = (time.perf_counter() - t0) / len(samples)
        rows.append({"method": method, "seconds_per_image": round(per_image, 4),
                     "ratio_to_forward_backward": round(per_image / base, 1)})
        print(rows[-1], flush=True)
    result = {"arch": "densenet121", "input": [224, 224], "images": len(samples), "device": args.device,
              "torch_threads": torch.get_num_threads(), "forward_seconds_per_image": round(forward, 4),
              "forward_backward_seconds_per_image": round(base, 4), "methods": rows}
    # a GPU run goes beside the CPU figures the README quotes, not over them
    out = ROOT / "benchmarks" / "results" / ("densenet121.json" if args.device == "cpu" else
                                             f"densenet121-{args.device.split(':')[0]}.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
