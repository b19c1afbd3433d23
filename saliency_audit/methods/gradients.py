"""Gradient-family methods on captum: grad, SmoothGrad, IG, Smooth IG, guided backprop, gradient × input.

SmoothGrad noise is drawn here rather than by captum's ``NoiseTunnel`` for
two reasons NoiseTunnel cannot serve: its ``stdevs`` is one number per input
tensor, while the seed study scales the noise to *each image's* range
(0.15 × (max − min)); and the audit needs common random numbers — draw d of
image i must be the same tensor for every model compared (trained,
randomized, replicate), which a per-(sample, draw) seed gives and
NoiseTunnel's global-RNG draws do not.  The gradients themselves are captum's.
"""
from __future__ import annotations

from typing import Sequence

import torch
from captum.attr import InputXGradient, IntegratedGradients, Saliency

from ..config import pass_images
from ..models.relu_mode import ReluMode
from ..stats import stable_seed
from .targets import repeat


def _saliency(model, x: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
    return Saliency(model).attribute(x.detach().requires_grad_(True), target=target, abs=False).detach()


def _ig(model, x: torch.Tensor, target: int | torch.Tensor, params, pass_batch: int) -> torch.Tensor:
    baseline = torch.zeros_like(x) if params.baseline == "black" else x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
    ig = IntegratedGradients(model)
    return ig.attribute(
        x.detach().requires_grad_(True), baselines=baseline, target=target, n_steps=params.steps, method=params.integration,
        internal_batch_size=max(len(x), pass_batch),
    ).detach()


def noise(x: torch.Tensor, keys: Sequence[str], draw: int, params, seed: int) -> torch.Tensor:
    """Draw ``draw`` of SmoothGrad noise: seeded per (run seed, sample key, draw), scaled per image."""
    out = torch.empty_like(x, device="cpu")
    for i, key in enumerate(keys):
        g = torch.Generator().manual_seed(stable_seed(seed, key, draw))
        out[i] = torch.randn(x.shape[1:], generator=g)
    span = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)
    return out.to(x.device) * (params.noise * span)


def grad(model, x, keys, target, cfg, memo) -> torch.Tensor:
    return _saliency(model, x, target)


def ixg(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """Gradient × input (Shrikumar et al. 2016; captum's InputXGradient), in the pixel units the methods see."""
    return InputXGradient(model).attribute(x.detach().requires_grad_(True), target=target).detach()


def gbp(model, x, keys, target, cfg, memo) -> torch.Tensor:
    with ReluMode(guided=True) as mode:
        out = _saliency(model, x, target)
    notes = memo.setdefault("notes", {})
    notes["gbp_guided_relu_calls_per_forward"] = mode.calls
    if mode.calls == 0:  # e.g. EfficientNet (SiLU): the guided rule has nothing to act on
        notes["gbp_warning"] = "the model has no ReLU: guided backprop equals the plain gradient"
    return out


def ig(model, x, keys, target, cfg, memo) -> torch.Tensor:
    return _ig(model, x, target, cfg.methods.ig, pass_images(cfg, x.shape[-2:]))


def _draw_chunks(n_images: int, samples: int, per_pass: int):
    """Groups of draw indices so that one model pass sees about ``per_pass`` images."""
    k = max(1, min(samples, per_pass // max(n_images, 1)))
    return [range(d, min(d + k, samples)) for d in range(0, samples, k)]


def sg(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """Mean gradient over noisy copies; several draws share one batched pass."""
    p = cfg.methods.sg
    total = torch.zeros_like(x)
    n = len(x)
    for draws in _draw_chunks(n, p.samples, pass_images(cfg, x.shape[-2:])):
        noisy = torch.cat([x + noise(x, keys, d, p, cfg.seed) for d in draws])
        total += _saliency(model, noisy, repeat(target, len(draws))).view(len(draws), *x.shape).sum(0)
    return total / p.samples


def sig(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """Mean IG over the same noisy copies as SmoothGrad (IG already batches its steps)."""
    p = cfg.methods.sg
    total = torch.zeros_like(x)
    per_pass = pass_images(cfg, x.shape[-2:])
    for d in range(p.samples):
        total += _ig(model, x + noise(x, keys, d, p, cfg.seed), target, cfg.methods.ig, per_pass)
    return total / p.samples
