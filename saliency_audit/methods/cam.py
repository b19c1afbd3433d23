"""GradCAM and Guided GradCAM, and the capture every CAM of the family shares.

GradCAM is written out here (a dozen lines) instead of using captum's
``LayerGradCam`` because captum can only target a *module's* output, while
GradCAM is defined on rectified activations and DenseNet's final ReLU is a
functional call after ``features``: the module output is pre-ReLU and its
gradients differ.  :class:`~saliency_audit.models.relu_mode.ReluMode` taps the
post-ReLU tensor.  Maps are upsampled bilinearly from the layer's resolution.

:func:`capture` is that tap: the layer's activation, the gradient of the
explained logit with respect to it, and the logits.  GradCAM and the CAMs of
:mod:`saliency_audit.methods.camfamily` (GradCAM++, ScoreCAM, LayerCAM,
HiResCAM) differ only in how they weigh what it returns.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.layers import CamLayer
from ..models.relu_mode import ReluMode
from .targets import pick


def capture(model, x: torch.Tensor, target: int | torch.Tensor, layer: CamLayer, *, grad: bool = True):
    """(activation, gradient, logits) of the CAM ``layer`` for images ``x``.

    activation: (N, K, h, w), the module output, or ``F.relu`` of it where ``layer.post_relu``.
    gradient: d(explained logit of each image)/d(activation), same shape; ``None`` when ``grad`` is false
    (the forward pass then runs under ``torch.no_grad``, as ScoreCAM needs).
    logits: (N, classes).
    """
    module = dict(model.net.named_modules())[layer.name]
    mode = ReluMode()
    seen: dict[str, torch.Tensor] = {}

    def hook(_m, _i, out):
        seen["act"] = out
        if layer.post_relu:
            mode.tap = out

    with torch.set_grad_enabled(grad):  # a caller's no_grad must not leave GradCAM without a graph
        handle = module.register_forward_hook(hook)
        try:
            if grad:
                x = x.detach().requires_grad_(True)
            with mode:
                logits = model(x)
        finally:
            handle.remove()
        act = mode.tapped if layer.post_relu else seen.get("act")
        if act is None:
            raise RuntimeError(f"CAM layer {layer.name} produced no activation for {model.info.spec}")
        if not grad:
            return act, None, logits
        (g,) = torch.autograd.grad(pick(logits, target).sum(), act)
    return act, g, logits


def upsample(cam: torch.Tensor, size, interpolation: str = "bilinear") -> torch.Tensor:
    """(N, 1, h, w) -> (N, 1, H, W), detached; linear modes with ``align_corners=False``."""
    linear = interpolation in ("linear", "bilinear", "bicubic", "trilinear")
    return F.interpolate(cam, size=tuple(size), mode=interpolation, align_corners=False if linear else None).detach()


def gradcam_batch(model, x: torch.Tensor, target: int | torch.Tensor, layer: CamLayer,
                  interpolation: str = "bilinear") -> torch.Tensor:
    """(N, 1, H, W) GradCAM at input resolution."""
    act, g, _ = capture(model, x, target, layer)
    weights = g.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * act).sum(dim=1, keepdim=True))
    return upsample(cam, x.shape[-2:], interpolation)


def gradcam(model, x, keys, target, cfg, memo) -> torch.Tensor:
    return gradcam_batch(model, x, target, memo["cam_layer"], cfg.methods.gradcam.interpolation)


def ggcam(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """Guided backprop × upsampled GradCAM (Selvaraju et al. 2017), from the two raw maps."""
    return memo["raw"]["gbp"] * memo["raw"]["gradcam"]
