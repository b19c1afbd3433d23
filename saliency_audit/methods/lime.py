"""LIME (Ribeiro et al. 2016) for images, as the lime package's ``LimeImageExplainer`` runs it.

Per image:

1. Superpixels: SLIC (scikit-image) on the grey image (the one channel of a
   grey or grey-replicated image, the channel mean of a colour one),
   ``segments`` asked for, ``compactness``; computed once per image and input
   size (they depend on the image only, so every model compared shares them).
2. ``samples`` on/off vectors over the K superpixels: the first is all-on
   (lime's ``data[0, :] = 1``), each other one a fair coin per superpixel.
   Draw d of image ``key`` comes from its own generator seeded with
   ``stable_seed(cfg.seed, key, "lime", d)``: the same draws whatever the
   batch, the sample count or the model (common random numbers — the trained
   and the randomized model are probed with the same perturbations).
3. Perturbed images: an off superpixel shows its own mean grey level (per
   channel; lime's ``hide_color=None``).
4. Score: the **probability** of the explained output, because lime explains
   the classifier's probabilities (``classifier_fn`` returns
   ``predict_proba``); the logit would let a saturated class swamp the
   surrogate with unbounded values.  Which probability follows the model's
   output kind (:func:`saliency_audit.models.target.explained_probability`):
   the softmax over competing classes, the output's own sigmoid for
   independent findings (lime's multi-label use: one sigmoid per label) or a
   single logit.
5. Weights: lime's kernel ``sqrt(exp(-d² / kernel_width²))`` with d the cosine
   distance between the on/off vector and all-ones (an all-off vector has
   distance 1, as in sklearn's ``cosine_distances``).
6. Surrogate: ``sklearn.linear_model.Ridge(alpha=ridge)`` (with intercept) fitted
   with those sample weights; each superpixel is painted with its
   coefficient.  lime's ``feature_selection="auto"`` keeps every feature at
   its default ``num_features=100000``, so this is its fit.

All samples of one image are scored in passes of at most ``pass_images``
images (``ceil(samples / pass_images)`` passes, ``samples`` images per
explained image), never mixed with other images', so a map is the same alone
or in any batch.  ``tests/test_perturbation_methods.py`` checks the surrogate
against captum's ``LimeBase`` fed the same superpixels and draws.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import pass_images
from ..models.target import explained_probability, output_of
from ..stats import stable_seed
from .targets import repeat


def grey(image: torch.Tensor) -> np.ndarray:
    """(H, W) float64 grey level of a (C, H, W) image: its channel when all channels are equal, else their mean."""
    im = image.detach().to("cpu", torch.float64)
    if im.shape[0] == 1 or bool((im == im[:1]).all()):
        return im[0].numpy()
    return im.mean(dim=0).numpy()


def superpixels(image: torch.Tensor, params) -> np.ndarray:
    """(H, W) int labels 0..K-1 of SLIC superpixels of a (C, H, W) image."""
    from skimage.segmentation import slic

    seg = slic(grey(image), n_segments=params.segments, compactness=params.compactness, start_label=0,
               channel_axis=None)
    _, labels = np.unique(seg, return_inverse=True)  # consecutive labels whatever SLIC returned
    return labels.reshape(seg.shape).astype(np.int64)


def draws(seed: int, key: str, n_features: int, samples: int) -> np.ndarray:
    """(samples, n_features) int on/off vectors: row 0 all-on, row d from its own (seed, key, d) generator."""
    z = np.ones((samples, n_features), dtype=np.int64)
    for d in range(1, samples):
        z[d] = np.random.default_rng(stable_seed(seed, key, "lime", d)).integers(0, 2, n_features)
    return z


def kernel_weights(z: np.ndarray, kernel_width: float) -> np.ndarray:
    """lime's weights: sqrt(exp(-d² / width²)), d = cosine distance of each row of ``z`` to all-ones."""
    z = np.asarray(z, dtype=np.float64)
    norms = np.linalg.norm(z, axis=1) * np.sqrt(z.shape[1])
    cos = np.divide(z.sum(axis=1), norms, out=np.zeros(len(z)), where=norms > 0)
    d = 1.0 - cos
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def surrogate(z: np.ndarray, scores: np.ndarray, kernel_width: float, ridge: float) -> np.ndarray:
    """Ridge coefficients (one per superpixel) of the kernel-weighted linear fit of ``scores`` on ``z``."""
    from sklearn.linear_model import Ridge

    fit = Ridge(alpha=ridge, fit_intercept=True)
    fit.fit(np.asarray(z, dtype=np.float64), np.asarray(scores, dtype=np.float64),
            sample_weight=kernel_weights(z, kernel_width))
    return fit.coef_


def segment_means(image: torch.Tensor, seg: torch.Tensor, k: int) -> torch.Tensor:
    """(C, H, W) image with every superpixel replaced by its mean, per channel (lime's hide_color=None)."""
    c = image.shape[0]
    flat = seg.view(-1)
    sums = torch.zeros((c, k), dtype=image.dtype, device=image.device).index_add_(1, flat, image.reshape(c, -1))
    counts = torch.bincount(flat, minlength=k).to(image.dtype)
    return (sums / counts)[:, flat].view_as(image)


def lime(model, x, keys, target, cfg, memo) -> torch.Tensor:
    p = cfg.methods.lime
    size = tuple(x.shape[-2:])
    per_pass = pass_images(cfg, size)
    cache = memo.setdefault("segments", {})
    kind = output_of(model)
    out = torch.zeros((len(x), 1) + size, dtype=torch.float32)
    counts = []
    with torch.no_grad():
        for i, key in enumerate(keys):
            img = x[i]
            ckey = ("lime", key, size, p.segments, p.compactness)
            if ckey not in cache:
                cache[ckey] = superpixels(img, p)
            seg_np = cache[ckey]
            k = int(seg_np.max()) + 1
            counts.append(k)
            seg = torch.from_numpy(seg_np).to(x.device)
            hidden = segment_means(img, seg, k)
            z = draws(cfg.seed, key, k, p.samples)
            zt = torch.from_numpy(z).to(x.device).bool()
            t = target[i : i + 1] if isinstance(target, torch.Tensor) else target
            scores = []
            for start in range(0, p.samples, per_pass):
                on = zt[start : start + per_pass][:, seg].unsqueeze(1)  # (n, 1, H, W)
                copies = torch.where(on, img.unsqueeze(0), hidden.unsqueeze(0))
                scores.append(explained_probability(model(copies), repeat(t, len(copies)), kind).double().cpu())
            coef = surrogate(z, torch.cat(scores).numpy(), p.kernel_width, p.ridge)
            out[i, 0] = torch.from_numpy(coef[seg_np]).float()
    if counts:
        notes = memo.setdefault("notes", {})
        seen = notes.get("lime_superpixels", {"min": min(counts), "max": max(counts)})
        notes["lime_superpixels"] = {"min": min(seen["min"], *counts), "max": max(seen["max"], *counts)}
    return out.to(x.device)
