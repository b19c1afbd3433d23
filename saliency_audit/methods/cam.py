"""GradCAM and Guided GradCAM.

GradCAM is written out here (a dozen lines) instead of using captum's
``LayerGradCam`` because captum can only target a *module's* output, while
GradCAM is defined on rectified activations and DenseNet's final ReLU is a
functional call after ``features``: the module output is pre-ReLU and its
gradients differ.  :class:`~saliency_audit.models.relu_mode.ReluMode` taps the
post-ReLU tensor.  Maps are upsampled bilinearly from the layer's resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.layers import CamLayer
from ..models.relu_mode import ReluMode
from .targets import pick


def gradcam_batch(model, x: torch.Tensor, target: int | torch.Tensor, layer: CamLayer) -> torch.Tensor:
    """(N, 1, H, W) GradCAM at input resolution."""
    module = dict(model.net.named_modules())[layer.name]
    mode = ReluMode()
    seen: dict[str, torch.Tensor] = {}

    def hook(_m, _i, out):
        seen["act"] = out
        if layer.post_relu:
            mode.tap = out

    handle = module.register_forward_hook(hook)
    try:
        x = x.detach().requires_grad_(True)
        with mode:
            logits = model(x)
    finally:
        handle.remove()
    act = mode.tapped if layer.post_relu else seen.get("act")
    if act is None:
        raise RuntimeError(f"GradCAM layer {layer.name} produced no activation for {model.info.spec}")
    (g,) = torch.autograd.grad(pick(logits, target).sum(), act)
    weights = g.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * act).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).detach()


def gradcam(model, x, keys, target, cfg, memo) -> torch.Tensor:
    return gradcam_batch(model, x, target, memo["cam_layer"])


def ggcam(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """Guided backprop × upsampled GradCAM (Selvaraju et al. 2017), from the two raw maps."""
    return memo["raw"]["gbp"] * memo["raw"]["gradcam"]
