"""Occlusion (Zeiler & Fergus 2014) with captum's ``Occlusion`` semantics, batched per image.

A square window, ``window`` × the input side per axis (at least 1 px), slides
in steps of ``stride`` × the window from the top-left corner until the image
is covered: ``ceil((side − w) / s) + 1`` positions per axis, the last window
cut off at the border when ``s`` does not divide ``side − w`` (captum's
``_occlusion_mask`` pads with a negative amount there).  The window covers all
channels and shows black (``fill = "zero"``) or the image's mean over all
pixels and channels (``fill = "mean"``).  A pixel's attribution is the mean,
over the windows covering it, of (explained logit of the image − explained
logit with the window filled) — captum's ``use_weights`` averaging.  It is
the explained logit itself (captum attributes the forward function it is
given, the network's logits), so it reads a softmax head and a head of
independent sigmoids alike: no softmax across outputs is ever taken.  The map
has one channel (captum repeats the same value in every channel of a window).

captum's ``Occlusion.attribute`` is not called: it evaluates the unoccluded
batch once and then whole batches of occluded copies, so an image's
attribution would depend (at float rounding) on which images share its batch.
Here every image has its own stream — the image itself, then its occluded
copies — cut into model passes of at most ``pass_images`` images, so a map is
the same alone or in any batch.  Cost per image: ``n_h · n_w + 1`` images in
``ceil((n_h · n_w + 1) / pass_images)`` passes (at the defaults 15 × 15
windows: 226 images, 4 passes of ≤ 64 at 128 px, 12 passes of ≤ 20 at 224 px).  ``tests/test_perturbation_methods.py`` checks the
maps against captum.
"""
from __future__ import annotations

import math

import torch

from ..config import pass_images
from .targets import pick, repeat


def axis_windows(side: int, window: float, stride: float) -> list[tuple[int, int]]:
    """(start, stop) of every window position along one axis of ``side`` pixels (captum's positions)."""
    w = max(1, round(window * side))
    s = max(1, round(stride * w))
    count = math.ceil((side - w) / s) + 1
    return [(k * s, min(k * s + w, side)) for k in range(count)]


def windows(size: tuple[int, int], params) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of every occluding window on an image of ``size`` = (H, W)."""
    rows = axis_windows(int(size[0]), params.window, params.stride)
    cols = axis_windows(int(size[1]), params.window, params.stride)
    return [(y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in cols]


def occlusion(model, x, keys, target, cfg, memo) -> torch.Tensor:
    p = cfg.methods.occlusion
    size = tuple(x.shape[-2:])
    wins = windows(size, p)
    per_pass = pass_images(cfg, size)
    count = torch.zeros(size, dtype=x.dtype, device=x.device)
    for y0, y1, x0, x1 in wins:
        count[y0:y1, x0:x1] += 1
    out = torch.zeros((len(x), 1) + size, dtype=x.dtype, device=x.device)
    stream = [None, *wins]  # None: the image itself, scored in the same passes as its occluded copies
    with torch.no_grad():
        for i in range(len(x)):
            img = x[i]
            fill = img.mean() if p.fill == "mean" else torch.zeros((), dtype=x.dtype, device=x.device)
            t = target[i : i + 1] if isinstance(target, torch.Tensor) else target
            scores = []
            for start in range(0, len(stream), per_pass):
                chunk = stream[start : start + per_pass]
                copies = img.unsqueeze(0).repeat(len(chunk), 1, 1, 1)
                for j, win in enumerate(chunk):
                    if win is not None:
                        y0, y1, x0, x1 = win
                        copies[j, :, y0:y1, x0:x1] = fill
                scores.append(pick(model(copies), repeat(t, len(chunk))))
            scores = torch.cat(scores).to(x.dtype)
            diff = scores[0] - scores[1:]
            total = out[i, 0]
            for d, (y0, y1, x0, x1) in zip(diff, wins):
                total[y0:y1, x0:x1] += d
            total /= count
    notes = memo.setdefault("notes", {})
    rows = axis_windows(size[0], p.window, p.stride)
    cols = axis_windows(size[1], p.window, p.stride)
    notes["occlusion_windows"] = [len(rows), len(cols)]
    notes["occlusion_window_px"] = [rows[0][1] - rows[0][0], cols[0][1] - cols[0][0]]
    notes["occlusion_images_per_image"] = len(stream)
    return out
