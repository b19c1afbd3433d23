"""XRAI on PAIR's framework-agnostic ``saliency.core`` fed captum IG.

XRAI ranks image segments by the Integrated Gradients attribution they hold.
Segments come from Felzenszwalb's algorithm at several scales; PAIR tunes the
segmentation for 224-px images (it resizes to 224 before segmenting) and then
dilates every segment by 5 px *at the original resolution*.  At 128 px that
dilation swells each segment by ~9 % of the image width, so even an oracle
attribution that is exactly the lesion scores poorly.  We therefore build
the segments ourselves (skimage, same algorithm and scales) and scale the
dilation radius and minimum segment size with the image; the segments are
model-independent and computed once per image.  PAIR's private segmentation
helper is not called because its resize and dilation are fixed.

Cost (CPU side; the model only runs for IG):

* segments are keyed by the image's content and parameters, memoised in the
  run (every model and criterion reuses them) and cached on disk next to the
  maps (``segments_cache``), so another run or xdist worker does not segment
  again;
* the dilation of every segment is done for all labels of a scale at once
  (:func:`dilated_masks`), identical to ``skimage.morphology.dilation`` with
  the disk footprint;
* the region ranking of the ``full`` algorithm (:func:`rank_regions`) is
  PAIR's ``XRAI._xrai`` made incremental: a segment's pixel gain and count
  only change when the region just added overlaps it, so only those are
  recomputed, with the very numpy expressions PAIR uses on the same pixels in
  the same order — the maps are bit-identical to PAIR's (tests/test_xrai_speed.py
  compares them with PAIR's code).  The ``fast`` algorithm, and attributions
  with non-finite values, still go through PAIR.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from saliency.core import XRAI, XRAIParameters
from skimage.morphology import disk
from skimage.segmentation import felzenszwalb
from skimage.transform import resize

from . import segments_cache

SEGMENTS_VERSION = "1"  # bump when segment_labels changes (it keys the on-disk segment cache)


def _grey(image: np.ndarray) -> np.ndarray:
    im = np.asarray(image, dtype=np.float64)
    if im.ndim == 3:
        im = im.mean(axis=-1) if im.shape[-1] > 1 else im[..., 0]
    return im


def segment_labels(image: np.ndarray, params) -> tuple[np.ndarray, int]:
    """Felzenszwalb label images (S, H, W), one per scale, at the image's resolution before dilation, and the
    dilation radius in pixels, for an (H, W) or (H, W, C) image in any value range."""
    im = _grey(image)
    h, w = im.shape
    span = im.max() - im.min()
    im = (im - im.min()) / (span if span > 0 else 1.0) * 2.0 - 1.0  # PAIR's [-1, 1] range
    ref = params.reference_size
    work = resize(im, (ref, ref), order=3, mode="constant", preserve_range=True, anti_aliasing=True)
    scale = min(h, w) / ref
    radius = int(round(params.dilation_radius * scale))
    labels = np.empty((len(params.scales), h, w), dtype=np.int64)
    for j, s in enumerate(params.scales):
        seg = felzenszwalb(work, scale=s, sigma=params.sigma, min_size=params.min_segment_size)
        labels[j] = resize(seg, (h, w), order=0, preserve_range=True, mode="constant", anti_aliasing=False).astype(int)
    return labels, radius


def dilated_masks(labels: np.ndarray, radius: int) -> np.ndarray:
    """(M, H, W) boolean segment masks: for each scale, each label present (ascending), dilated by ``disk(radius)``.

    Pixel p of label L's dilated mask is set iff some pixel p + o, o in the (symmetric) disk, inside the image,
    has label L — what ``skimage.morphology.dilation(seg == L, disk(radius))`` computes (its default
    ``mode="reflect"`` only adds reflected pixels, which lie closer to p along the reflected axis and so are
    in the disk already), but for all labels of a scale in one pass per footprint offset instead of one
    filter per segment.
    """
    _, h, w = labels.shape
    size = h * w
    offsets = np.argwhere(disk(radius)) - radius if radius > 0 else np.zeros((1, 2), dtype=np.int64)
    grid = np.arange(size).reshape(h, w)
    dst, src = [], []  # flat pixel p, and its neighbour p + o inside the image, over every offset o
    for dy, dx in offsets:
        y0, y1 = max(0, -dy), min(h, h - dy)
        x0, x1 = max(0, -dx), min(w, w - dx)
        if y0 < y1 and x0 < x1:
            dst.append(grid[y0:y1, x0:x1].ravel())
            src.append(grid[y0 + dy : y1 + dy, x0 + dx : x1 + dx].ravel())
    dst, src = np.concatenate(dst), np.concatenate(src)
    per_scale = []
    for seg in labels:
        present, inv = np.unique(seg, return_inverse=True)
        out = np.zeros(len(present) * size, dtype=bool)
        out[inv.reshape(-1)[src] * size + dst] = True
        per_scale.append(out.reshape(len(present), h, w))
    return np.concatenate(per_scale) if per_scale else np.zeros((0, h, w), dtype=bool)


def segments(image: np.ndarray, params) -> list[np.ndarray]:
    """Boolean segment masks for an (H, W) or (H, W, C) image in any value range."""
    return list(dilated_masks(*segment_labels(image, params)))


def segments_key(image: np.ndarray, params) -> str:
    """Content key of an image's segments: its grey levels (what the segmentation reads) and every parameter."""
    import skimage

    im = np.ascontiguousarray(_grey(image))
    h = hashlib.sha256(json.dumps(["xrai-segments", SEGMENTS_VERSION, skimage.__version__, list(im.shape),
                                   params.reference_size, list(params.scales), params.sigma,
                                   params.min_segment_size, params.dilation_radius]).encode())
    h.update(im.tobytes())
    return h.hexdigest()[:32]


def image_segments(image: np.ndarray, params, memo: dict | None = None, cache_dir=None) -> np.ndarray:
    """(M, H, W) masks of ``image``, from the in-run memo, else the disk cache, else computed (and kept in both)."""
    key = segments_key(image, params)
    if memo is not None and key in memo:
        return memo[key]
    hit = segments_cache.load(cache_dir, key)
    if hit is None:
        labels, radius = segment_labels(image, params)
        segments_cache.save(cache_dir, key, labels, radius)
    else:
        labels, radius = hit
    masks = dilated_masks(labels, radius)
    if memo is not None:
        memo[key] = masks
    return masks


def rank_regions(attr: np.ndarray, masks: np.ndarray, min_pixel_diff: int = 50,
                 area_threshold: float = 1.0) -> np.ndarray:
    """PAIR's ``XRAI._xrai(attr, segs, _gain_density, area_threshold, min_pixel_diff)[0]``, bit for bit, faster.

    PAIR rescans every remaining segment after each region it adds: the pixels the segment would add to the
    current region (``mask & ~current``), their count and their mean attribution.  Both only change for
    segments that overlap the pixels just added, so they are kept per segment and recomputed for those
    alone.  They are recomputed as PAIR computes them: the attribution of the same pixels in the same
    (row-major) order, averaged by ``ndarray.mean`` — same values, same rounding — and the winner is the
    first segment (in PAIR's order) of maximal gain, as PAIR's strict ``>`` scan picks.  PAIR's removal of
    segments that add fewer than ``min_pixel_diff`` pixels, its area stopping rule and its final fill of
    uncovered pixels are kept as they are.  ``attr`` (H, W) must be finite (callers use PAIR otherwise).
    """
    shape = attr.shape
    a = np.ascontiguousarray(attr).reshape(-1)
    m = np.asarray(masks, dtype=bool).reshape(len(masks), -1)
    n = len(m)
    output = -np.inf * np.ones(a.shape, dtype=float)
    current = np.zeros(a.shape, dtype=bool)
    pixels = [np.flatnonzero(row) for row in m]  # ascending: row-major, the order of attr[mask]
    count = np.array([len(p) for p in pixels], dtype=np.int64)
    gain = np.full(n, -np.inf)
    alive = np.ones(n, dtype=bool)

    def update(k: int) -> None:
        added = pixels[k][~current[pixels[k]]]
        pixels[k] = added  # what segment k would still add: only shrinks, and keeps its order
        count[k] = len(added)
        if count[k] >= min_pixel_diff:  # PAIR computes the gain of these only
            gain[k] = a[added].mean() if len(added) else -np.inf

    for k in range(n):
        update(k)
    area = 0.0
    while area <= area_threshold:
        alive &= count >= min_pixel_diff
        candidates = np.flatnonzero(alive)
        if not len(candidates):
            break
        best = candidates[np.argmax(gain[candidates])]
        if not gain[best] > -np.inf:  # PAIR would fail on it (no segment with pixels); only with min_pixel_diff < 1
            raise ValueError("XRAI: no remaining segment adds any pixel")
        added = pixels[best]  # its pixels not yet covered (= mask & ~current)
        output[added] = gain[best]
        current[added] = True
        area = np.mean(current)
        alive[best] = False
        for k in np.flatnonzero(alive & m[:, added].any(axis=1)):
            update(k)
    uncomputed = output == -np.inf
    if uncomputed.any():
        output[uncomputed] = a[uncomputed].mean()
    return output.reshape(shape)


def xrai(model, x, keys, target, cfg, memo) -> torch.Tensor:
    p = cfg.methods.xrai
    base = memo["raw"]["ig"].cpu().numpy()  # (N, C, H, W)
    images = x.detach().cpu().numpy()
    # keyed by the image as the model sees it (a model of another input size gets its own) and the parameters
    seg_memo = memo.setdefault("segments", {})
    extra = XRAIParameters(algorithm=p.algorithm)
    out = np.zeros((len(images), 1) + images.shape[-2:], dtype=np.float64)
    for i in range(len(keys)):
        img = np.transpose(images[i], (1, 2, 0))
        masks = image_segments(img, p, seg_memo, memo.get("cache_dir"))
        attr = np.transpose(base[i], (1, 2, 0))
        if attr.shape != img.shape:
            raise ValueError(f"XRAI: IG attribution of shape {attr.shape} for an image of shape {img.shape}")
        grey_attr = attr.max(axis=-1)  # PAIR merges attribution channels by their maximum
        if p.algorithm == "full" and np.isfinite(grey_attr).all():
            out[i, 0] = rank_regions(grey_attr, masks, extra.experimental_params["min_pixel_diff"],
                                     extra.area_threshold)
        else:
            out[i, 0] = XRAI().GetMask(img, call_model_function=None, base_attribution=attr, segments=list(masks),
                                       extra_parameters=extra)
    return torch.from_numpy(out)
