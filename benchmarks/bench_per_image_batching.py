"""Can per-image randomized copies share model passes?  A probe for the randomization criterion's per-image draw
design (issue 32, point 4: per_image at most 1.5x the shared draw; 1.87x at 1 thread in draw_design.json).

    python benchmarks/bench_per_image_batching.py [--images 16] [--repeats 3]
    # writes benchmarks/results/per_image_batching.json

Input gradients of a torchvision resnet18 (2 classes, 112 px, untrained: the timings do not depend on the
weights) through its head-first cascade (``saliency_audit.models.blocks.randomization_blocks``), every image
its own re-initialised copy at every stage, all stages on all images.  Four ways to get the same gradients:

* **per_copy** -- today's floor: one batch-1 pass per (image, stage) through that image's full copy;
* **per_row** -- one batched pass per stage through a network whose re-initialised blocks are replaced by a
  module that runs image i's copy of the block on row i only: the blocks above the cascade's reach (the
  network's bottom, still trained) run batched, as in the shared draw;
* **vmap** -- ``torch.func.functional_call`` vmapped over the copies' stacked weights (convolutions become
  grouped convolutions), one pass per stage;
* **shared** -- one batched pass per stage through one copy for every image (the shared draw's passes).

Each is timed at 1 and 2 torch threads (medians of ``--repeats``); ratios to ``shared`` within one round.
The gradients of per_row and vmap are compared with per_copy's (max absolute difference).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import torch
    import torchvision
    from torch import nn
    from torch.func import functional_call, grad, stack_module_state, vmap

    from saliency_audit.models.blocks import randomization_blocks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    k = args.images
    torch.manual_seed(0)
    base = torchvision.models.resnet18(num_classes=2).eval().requires_grad_(False)
    blocks = [list(b.modules) for b in randomization_blocks(base, (3, 112, 112))]
    stages = [sum(blocks[:s], []) for s in range(1, len(blocks) + 1)]  # cumulative, head first
    x = torch.randn(k, 3, 112, 112)

    class Rows(nn.Module):
        """Image i's copy of a block on row i of the batch."""

        def __init__(self, mods):
            super().__init__()
            self.mods = nn.ModuleList(mods)

        def forward(self, z):
            return torch.cat([m(z[i:i + 1]) for i, m in enumerate(self.mods)])

    def reinit(net, names):
        for name in names:
            for m in net.get_submodule(name).modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        return net

    def replace(net, name, module):
        parent, _, leaf = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, leaf, module)

    def per_row_net(copies, names):
        net = copy.deepcopy(base)
        for name in names:
            replace(net, name, Rows([c.get_submodule(name) for c in copies]))
        return net.eval()

    def grads(net, inputs):
        xx = inputs.clone().requires_grad_(True)
        return torch.autograd.grad(net(xx)[:, 1].sum(), xx)[0]

    skeleton = copy.deepcopy(base).to("meta")

    def one(p, b, xi):
        return functional_call(skeleton, (p, b), (xi[None],))[0, 1]

    vgrad = vmap(grad(one, argnums=2))
    setups = []
    for names in stages:
        copies = [reinit(copy.deepcopy(base), names).eval() for _ in range(k)]
        params, buffers = stack_module_state(copies)
        setups.append({"copies": copies, "rows": per_row_net(copies, names), "params": params, "buffers": buffers,
                       "shared": copies[0]})

    contenders = {
        "per_copy": lambda s: torch.cat([grads(c, x[i:i + 1]) for i, c in enumerate(s["copies"])]),
        "per_row": lambda s: grads(s["rows"], x),
        "vmap": lambda s: vgrad(s["params"], s["buffers"], x),
        "shared": lambda s: grads(s["shared"], x),
    }
    diffs = {name: 0.0 for name in ("per_row", "vmap")}
    scale = 0.0
    for s in setups:
        ref = contenders["per_copy"](s)
        scale = max(scale, float(ref.abs().max()))
        for name in diffs:
            diffs[name] = max(diffs[name], float((contenders[name](s) - ref).abs().max()))

    out = {"model": "torchvision resnet18, 2 classes, 112 px, untrained", "images": k,
           "stages": len(stages), "blocks": [" ".join(b) for b in blocks], "repeats": args.repeats,
           "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
           "load_before": round(os.getloadavg()[0], 2),
           "max_abs_difference_to_per_copy": diffs, "largest_gradient": scale, "rounds": {}}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runs: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeats):  # interleaved: a busy spell hits all alike
            for name, fn in contenders.items():
                t0 = time.perf_counter()
                for s in setups:
                    fn(s)
                runs[name].append(time.perf_counter() - t0)
        med = {name: statistics.median(v) for name, v in runs.items()}
        out["rounds"][f"threads_{threads}"] = {
            "seconds": {n: round(v, 3) for n, v in med.items()},
            "over_shared": {n: round(v / med["shared"], 2) for n, v in med.items()}}
        print(threads, out["rounds"][f"threads_{threads}"], flush=True)
    dest = ROOT / "benchmarks" / "results" / "per_image_batching.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
