"""GPUs: one pytest-xdist worker per GPU, and images per model pass from free GPU memory.

* :func:`worker_device`: under pytest-xdist (``PYTEST_XDIST_WORKER=gw3``) with ``--device cuda`` (no index)
  and N > 1 visible GPUs, worker ``gwI`` runs on ``cuda:{I mod N}``; an explicit index (``cuda:1``) is kept.
  :func:`pin_worker` is the call site (the plugin, when it resolves the device), :func:`auto_workers` makes
  ``-n auto --device cuda`` start one worker per GPU.
* :func:`cuda_pass_images`: on CUDA the images per model pass (``config.pass_images``) come from free GPU
  memory instead of the CPU's ``pass_pixels`` cap.  One probe pass (forward and backward to the input, as
  the gradient methods run) of :data:`PROBE_IMAGES` images measures the bytes per image, (peak − baseline) /
  2; a pass then takes floor(:data:`FREE_SHARE` × free / per image) images, clamped to [1,
  :data:`MAX_PASS_IMAGES`].  Free memory is divided among the xdist workers placed on the same GPU, which
  all measure it at about the same time.  Memoised per (model, device, input size); ``pass_images`` uses
  the smallest figure of the models probed at that device and size, so a model loaded later (less memory
  free) only ever lowers it.  :func:`probe_model` is the call site (``ModelSet.get``, once per loaded
  model) and records the figure in the model's evidence (``models[].extra.cuda_pass_images``).

Nothing here runs on CPU: ``pass_images`` keeps its ``pass_batch`` / ``pass_pixels`` rule there.
"""
from __future__ import annotations

import math
import os
import re
import weakref

#: Share of the free GPU memory one model pass may take; the rest covers models loaded later, inputs and
#: maps kept on the device, and the caching allocator's fragmentation.
FREE_SHARE = 0.6
#: Images of the probe pass.
PROBE_IMAGES = 2
#: Most images per pass, however much memory is free.
MAX_PASS_IMAGES = 1024

_by_size: dict[tuple[str, int, int], int] = {}  # (device, H, W) -> images per pass (smallest over models)
_by_model: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> {(device, H, W): record}
_sharing: dict[str, int] = {}  # device -> xdist workers of this run placed on it (pin_worker)


def is_cuda(device: str) -> bool:
    return device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())


def worker_index(worker: str | None) -> int | None:
    """``gw3`` -> 3; None for no worker (or a name pytest-xdist does not give)."""
    match = re.fullmatch(r"gw(\d+)", worker or "")
    return int(match.group(1)) if match else None


def worker_device(device: str, worker: str | None, count: int) -> str:
    """The device pytest-xdist worker ``worker`` (e.g. ``gw3``) uses: ``cuda:{I mod count}`` for ``cuda``
    without an index and ``count`` > 1 visible GPUs; ``device`` unchanged otherwise (an explicit index, CPU,
    one GPU, no xdist)."""
    index = worker_index(worker)
    if device != "cuda" or count < 2 or index is None:
        return device
    return f"cuda:{index % count}"


def workers_on(requested: str, device: str, workers: int, count: int) -> int:
    """How many of ``workers`` xdist workers, each asked for ``requested``, run on ``device``."""
    return max(1, sum(worker_device(requested, f"gw{j}", count) == device for j in range(workers)))


def pin_worker(device: str) -> str:
    """The device this process uses for ``device`` (``--device`` or config ``device``): pinned to the
    pytest-xdist worker's GPU (``PYTEST_XDIST_WORKER``), and how many workers share it noted."""
    if not is_cuda(device):
        return device
    import torch

    count = torch.cuda.device_count()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    pinned = worker_device(device, worker, count)
    if worker_index(worker) is not None:
        try:
            workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        except ValueError:
            workers = 1
        _sharing[pinned] = workers_on(device, pinned, workers, count)
    return pinned


def auto_workers(device: str | None) -> int | None:
    """Workers for ``-n auto``: one per visible GPU with ``--device cuda``; None (pytest-xdist decides:
    CPU count, or ``PYTEST_XDIST_AUTO_NUM_WORKERS``) otherwise."""
    if device != "cuda" or os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    import torch

    return torch.cuda.device_count() or None


def probe_bytes_per_image(model, size, device: str) -> float:
    """Peak GPU bytes per image of one forward and backward pass (to the input) of ``model`` at ``size``.

    The probe's tensors go to the model's own device; the memory figures are read for ``device``.
    """
    import torch

    from .passcount import PASSES

    info = getattr(model, "info", None)
    channels = getattr(info, "in_channels", 1)
    param = next(iter(model.parameters()), None)
    on = param.device if param is not None else torch.device(device)
    passes = PASSES["images"]  # a probe is not audit work: the per-result image_passes stay as on CPU
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    try:
        with torch.enable_grad():
            x = torch.zeros((PROBE_IMAGES, channels, int(size[0]), int(size[1])), device=on, requires_grad=True)
            out = model(x)
            torch.autograd.grad(out.float().sum(), x)
        del x, out
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    finally:
        PASSES["images"] = passes
    return max(1.0, (peak - baseline) / PROBE_IMAGES)


def cuda_pass_images(model, size, device: str) -> int:
    """Images per model pass of ``model`` at input ``size`` on CUDA ``device``, from free GPU memory
    (memoised per model, device and size; the figure is also what ``pass_images`` returns there)."""
    return _record(model, size, device)["pass_images"]


def _record(model, size, device: str) -> dict:
    import torch

    key = (device, int(size[0]), int(size[1]))
    memo = _by_model.setdefault(model, {})
    if key not in memo:
        per_image = probe_bytes_per_image(model, size, device)
        torch.cuda.empty_cache()  # the probe's blocks count as free again
        free, total = torch.cuda.mem_get_info(device)
        share = _sharing.get(device, 1)
        images = min(MAX_PASS_IMAGES, max(1, math.floor(FREE_SHARE * free / share / per_image)))
        memo[key] = {"pass_images": images, "device": device, "input_size": [key[1], key[2]],
                     "bytes_per_image": int(per_image), "free_bytes": int(free), "total_bytes": int(total),
                     "workers_on_device": share, "free_share": FREE_SHARE}
        _by_size[key] = min(images, _by_size.get(key, images))
    return memo[key]


def probe_model(model, device: str) -> dict | None:
    """Measure ``model`` at its input size on ``device`` and note the figure in its evidence (ModelSet.get
    calls this once per loaded model on CUDA).  A probe that fails is noted and leaves ``pass_images`` on
    its CPU rule for that model."""
    if not is_cuda(device) or not hasattr(model, "input_size"):
        return None
    extra = getattr(getattr(model, "info", None), "extra", None)
    try:
        record = dict(_record(model, tuple(model.input_size), device))
    except Exception as exc:  # e.g. out of memory already at 2 images: the audit's own passes say so
        from .errors import one_line

        record = {"error": f"{type(exc).__name__}: {one_line(exc)}", "device": device}
    if isinstance(extra, dict):
        extra["cuda_pass_images"] = record
    return record


def measured_pass_images(device: str, size) -> int | None:
    """Images per pass measured on ``device`` for input ``size`` (smallest over the models probed), or None."""
    return _by_size.get((device, int(size[0]), int(size[1])))


def reset() -> None:
    """Forget every measurement and worker placement (tests)."""
    _by_size.clear()
    _by_model.clear()
    _sharing.clear()
