"""CUDA end to end: maps on the GPU equal the CPU's, and a verdict is the same on both.

Skipped without a CUDA device (the development machines have none; see benchmarks/gpu_check.sh for the
script to run when one is lent).  Tolerances, on maps postprocessed to [0, 1] as the criteria score them:
the gradient family and the CAM family within 2e-3 of the CPU map at every pixel (float32 kernels differ
in summation order, nothing else); XRAI, whose regions are ranked by summed attribution, may swap two
regions of near-equal gain, so its maps agree within 2e-2 on average and its verdict must be the same.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here: run benchmarks/gpu_check.sh on a GPU machine")

TIGHT = ("grad", "sg", "ig", "sig", "gbp", "gradcam", "ggcam")


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    from saliency_audit import Audit, AuditConfig

    out = {}
    for device in ("cpu", "cuda"):
        cfg = AuditConfig(device=device, sequential=False, n_images=8)
        cfg.cache_dir = str(tmp_path_factory.mktemp(f"maps-{device}"))
        out[device] = Audit(model="demo", config=cfg)
    return out


@pytest.mark.parametrize("name", [*TIGHT, "xrai"])  # not "method": the plugin parametrizes that name
def test_maps_on_cuda_equal_the_cpu_maps(both, name):
    from saliency_audit.engine.maps import MapStore

    maps = {}
    for device, audit in both.items():
        samples = [audit.dataset[i] for i in audit.dataset.localisation_indices(8)]
        maps[device] = MapStore(audit.config, None).maps(audit.model("primary"), name, samples).maps
    diff = np.abs(maps["cpu"] - maps["cuda"])
    if name in TIGHT:
        assert diff.max() <= 2e-3, f"{name}: largest CPU/CUDA difference {diff.max():.2e}"
    else:
        assert diff.mean() <= 2e-2, f"{name}: mean CPU/CUDA difference {diff.mean():.2e}"


@pytest.mark.parametrize("criterion", ["utility", "randomization", "completeness"])
def test_verdicts_on_cuda_equal_the_cpu_verdicts(both, criterion):
    cpu, cuda = (both[d].run(criterion, "gradcam") for d in ("cpu", "cuda"))
    assert cuda.verdict == cpu.verdict, (cpu.explain(), cuda.explain())
    assert abs(cuda.value - cpu.value) <= 1e-2, (cpu.value, cuda.value)
