"""The added methods' cost on densenet121 at 224 px, and ours against captum's and pytorch-grad-cam's.

    benchmarks/.venv-peers/bin/python benchmarks/bench_methods.py [--images 2] [--device cpu]
    # writes benchmarks/results/methods.json

Part 1, cost: maps of ``--images`` demo images (resized to 224 px) through the MapStore (no disk cache) at
the default parameters, per image, as a multiple of one batched forward+backward pass to the input of the
same images (as ``bench_densenet.py`` does for the paper's eight) and of one forward pass.

Part 2, peers, on the same model and images in one run, at the same parameters (our defaults):
occlusion against ``captum.attr.Occlusion`` (same window, stride, black baseline; captum's
``perturbations_per_eval`` set to our pass size so both batch), LIME against ``captum.attr.Lime`` (same
superpixels as feature mask, same number of samples; captum's ``perturbations_per_eval`` likewise), and
ScoreCAM against pytorch-grad-cam's ``ScoreCAM`` (its ``batch_size`` set to our pass size) when the peer
environment has it (``bash benchmarks/setup_peers.sh``).  Each timing is the best of ``--repeats`` runs;
the ratio is peer seconds / our seconds (above 1: ours is faster).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ixg", "gradcampp", "scorecam", "layercam", "hirescam", "occlusion", "lime")


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    import numpy as np
    import torch
    from bench_densenet import densenet_setup  # the same model and images as the paper's eight

    from saliency_audit import AuditConfig
    from saliency_audit.config import pass_images
    from saliency_audit.engine.maps import MapStore

    model, samples, x = densenet_setup(args.images, args.device)
    cfg = AuditConfig(device=args.device)
    per_pass = pass_images(cfg, model.input_size)

    def fwd_bwd():
        xx = x.detach().requires_grad_(True)
        model.requires_grad_(False)
        model(xx)[:, 1].sum().backward()

    def fwd():
        with torch.no_grad():
            model(x)

    fwd_bwd()
    base = best(fwd_bwd, 3) / len(samples)
    forward = best(fwd, 3) / len(samples)
    print(f"forward+backward {base:.4f} s/image, forward {forward:.4f} s/image, pass size {per_pass}", flush=True)

    cost, ours_seconds = [], {}
    for method in args.methods.split(","):
        MapStore(cfg, None).maps(model, method, samples[:1])  # warm-up
        seconds = best(lambda: MapStore(cfg, None).maps(model, method, samples), args.repeats) / len(samples)
        ours_seconds[method] = seconds
        cost.append({"method": method, "seconds_per_image": round(seconds, 3),
                     "ratio_to_forward_backward": round(seconds / base, 1), "ratio_to_forward": round(seconds / forward, 1)})
        print(cost[-1], flush=True)

    peers = []
    target = 1
    if "occlusion" in ours_seconds:
        from captum.attr import Occlusion

        o = cfg.methods.occlusion
        w = max(1, round(o.window * 224))
        s = max(1, round(o.stride * w))
        occ = Occlusion(model)
        seconds = best(lambda: occ.attribute(x, sliding_window_shapes=(x.shape[1], w, w), strides=(x.shape[1], s, s),
                                             baselines=0, target=target, perturbations_per_eval=per_pass),
                       args.repeats) / len(samples)
        peers.append({"method": "occlusion", "peer": "captum Occlusion", "ours_s_per_image": round(ours_seconds["occlusion"], 3),
                      "peer_s_per_image": round(seconds, 3), "peer_over_ours": round(seconds / ours_seconds["occlusion"], 2)})
        print(peers[-1], flush=True)
    if "lime" in ours_seconds:
        from captum.attr import Lime
        from captum.attr._core.lime import get_exp_kernel_similarity_function

        from saliency_audit.methods.lime import superpixels

        lm = cfg.methods.lime
        masks = torch.stack([torch.as_tensor(superpixels(x[i], lm)) for i in range(len(x))]).to(x.device)
        lime = Lime(model, similarity_func=get_exp_kernel_similarity_function("cosine", lm.kernel_width))

        def captum_lime():
            for i in range(len(x)):
                feature_mask = masks[i][None, None].expand_as(x[i:i + 1]).long()
                lime.attribute(x[i:i + 1], target=target, feature_mask=feature_mask, n_samples=lm.samples,
                               perturbations_per_eval=per_pass, baselines=0)

        seconds = best(captum_lime, args.repeats) / len(samples)
        peers.append({"method": "lime", "peer": "captum Lime", "ours_s_per_image": round(ours_seconds["lime"], 3),
                      "peer_s_per_image": round(seconds, 3), "peer_over_ours": round(seconds / ours_seconds["lime"], 2)})
        print(peers[-1], flush=True)
    if "scorecam" in ours_seconds:
        try:
            from pytorch_grad_cam import ScoreCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        except ImportError:
            peers.append({"method": "scorecam", "peer": "pytorch-grad-cam ScoreCAM",
                          "skipped": "pytorch-grad-cam is not installed here (bash benchmarks/setup_peers.sh)"})
        else:
            class PostRelu(torch.nn.Module):  # DenseNet's explained tensor is F.relu(features): hook a module that is
                def forward(self, t):
                    return torch.relu(t)

            net = model.net
            net.features.add_module("post_relu", PostRelu())  # relu(relu(t)) == relu(t): outputs unchanged
            cam = ScoreCAM(model=model, target_layers=[net.features.post_relu])
            cam.batch_size = per_pass

            def peer():
                cam(input_tensor=x, targets=[ClassifierOutputTarget(target)] * len(x))

            seconds = best(peer, args.repeats) / len(samples)
            del net.features.post_relu
            peers.append({"method": "scorecam", "peer": "pytorch-grad-cam ScoreCAM",
                          "ours_s_per_image": round(ours_seconds["scorecam"], 3), "peer_s_per_image": round(seconds, 3),
                          "peer_over_ours": round(seconds / ours_seconds["scorecam"], 2)})
            print(peers[-1], flush=True)

    result = {"arch": "densenet121", "input": [224, 224], "images": len(samples), "device": args.device,
              "host": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()},
              "pass_images": per_pass, "forward_seconds_per_image": round(forward, 4),
              "forward_backward_seconds_per_image": round(base, 4), "methods": cost, "peers": peers,
              "numpy": np.__version__, "torch": torch.__version__}
    out = ROOT / "benchmarks" / "results" / "methods.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
