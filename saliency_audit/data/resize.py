"""Resizing a Sample to the model's input grid: image bilinear, mask nearest, boxes scaled and rasterised inclusively.

Geometry follows pixel areas (``align_corners=False``): pixel ``x`` covers
``[x, x + 1)``, so a box of inclusive corners ``x0..x1`` covers ``[x0, x1 + 1)``
and scales to ``[x0 * s, (x1 + 1) * s)``; every output pixel that this interval
touches belongs to the box.  With an integer scale factor masks and boxes
resize exactly (tests rely on it).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..common.errors import AuditInputError
from .sample import Sample


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) -> (C, *size), bilinear, antialiased when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image.float()[None], size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=True)[0]


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask, sampling each output pixel's centre."""
    if mask.shape == tuple(size):
        return mask
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None, None].float()
    return F.interpolate(t, size=tuple(size), mode="nearest-exact")[0, 0].numpy() > 0.5


def scale_boxes(boxes, src: tuple[int, int], dst: tuple[int, int]):
    """Inclusive boxes on an ``src`` (H, W) grid -> inclusive boxes on ``dst``, covering every touched pixel."""
    sy, sx = dst[0] / src[0], dst[1] / src[1]
    out = []
    for x0, y0, x1, y1 in boxes:
        nx0, ny0 = math.floor(x0 * sx + 1e-9), math.floor(y0 * sy + 1e-9)
        nx1, ny1 = math.ceil((x1 + 1) * sx - 1e-9) - 1, math.ceil((y1 + 1) * sy - 1e-9) - 1
        out.append((max(nx0, 0), max(ny0, 0), min(max(nx1, nx0), dst[1] - 1), min(max(ny1, ny0), dst[0] - 1)))
    return tuple(out)


#: An image side stretched more than this many times to reach the model's input is not an image the model
#: can be audited on: a 1x1 "image" with a 1x1 mask becomes a lesion covering the whole grid (AP 1.0).
MAX_UPSCALE = 4.0
#: An aspect ratio this many times off the input's means the resize distorts anatomy (or the file is wrong).
MAX_ASPECT_CHANGE = 2.0


def check_resizable(src: tuple[int, int], size: tuple[int, int], where: str) -> None:
    """Refuse to silently stretch an image far smaller than the model's input, or of a far other shape."""
    (h, w), (H, W) = tuple(int(v) for v in src), tuple(int(v) for v in size)
    up = max(H / max(h, 1), W / max(w, 1))
    if up > MAX_UPSCALE:
        raise AuditInputError(f"{where}: image {h}x{w} would be stretched {up:.0f} times to the model's input {H}x{W} "
                              f"(more than {MAX_UPSCALE:g}); set --input-size for small images, or leave it out")
    aspect = (h / max(w, 1)) / (H / W)
    if max(aspect, 1 / aspect) > MAX_ASPECT_CHANGE:
        raise AuditInputError(f"{where}: image {h}x{w} has an aspect ratio {max(aspect, 1 / aspect):.1f} times "
                              f"off the model's input {H}x{W} (more than {MAX_ASPECT_CHANGE:g}); crop it, or set "
                              f"--input-size HEIGHT,WIDTH")


def resize_sample(sample: Sample, size: tuple[int, int]) -> Sample:
    """``sample`` on the (H, W) grid ``size``; the native size is kept in ``meta['native_size']``."""
    src = tuple(sample.image.shape[-2:])
    size = tuple(int(v) for v in size)
    if src == size:
        return sample
    return replace(
        sample,
        image=resize_image(sample.image, size).clamp_(0, 1),
        mask=None if sample.mask is None else resize_mask(sample.mask, size),
        boxes=None if sample.boxes is None else scale_boxes(sample.boxes, src, size),
        meta=dict(sample.meta, native_size=list(src)),
    )


def resize_truth(mask: np.ndarray | None, boxes, src: tuple[int, int], size: tuple[int, int]) -> np.ndarray | None:
    """The ground truth as a mask on ``size``, resized the same way as :func:`resize_sample` does."""
    from .sample import boxes_to_mask

    if mask is not None:
        return resize_mask(mask, size)
    if boxes:
        return boxes_to_mask(scale_boxes(boxes, src, size) if tuple(src) != tuple(size) else boxes, size)
    return None


def prepare(samples: Sequence[Sample], size: tuple[int, int], device) -> torch.Tensor:
    """Images resized (bilinear, antialiased when shrinking) to the model's input: (N, C, H, W)."""
    out = [resize_image(s.image.float(), tuple(size))[None] for s in samples]
    channels = {t.shape[1] for t in out}
    if len(channels) > 1:
        out = [t.expand(-1, max(channels), -1, -1) if t.shape[1] == 1 else t for t in out]
    return torch.cat(out).to(device)
