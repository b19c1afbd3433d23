"""The CAM family beyond GradCAM: GradCAM++, ScoreCAM, LayerCAM and HiResCAM.

All four explain the same tensor as GradCAM (the CAM layer's activation ``A``, post-ReLU where a functional
ReLU follows the module, as in DenseNet) from :func:`saliency_audit.methods.cam.capture`, and differ only in
how they weigh its K channels; each map is ``ReLU(sum_k w_k * A_k)`` at the layer's resolution, upsampled to the
input like GradCAM (``methods.gradcam.interpolation``, bilinear with ``align_corners=False``).

* GradCAM++ (Chattopadhyay et al. 2018): one weight per channel from the positive gradients, each position
  weighted by ``alpha``.
* ScoreCAM (Wang et al. 2020): one weight per channel from forward passes of the image masked by that channel;
  no gradients.
* LayerCAM (Jiang et al. 2021): one weight per position and channel, the positive gradient.
* HiResCAM (Draelos & Carin 2020): one weight per position and channel, the gradient itself.

With ``g = d logit / dA`` (the explained logit ``S``, before softmax) they are, for each image::

    GradCAM++  w_k = sum_ij alpha_kij ReLU(g_kij),
               alpha_kij = g_kij^2 / (2 g_kij^2 + g_kij^3 sum_ab A_kab)   (0 where the denominator is 0)
    ScoreCAM   w_k = P(target | x * H_k),  H_k = min-max of the upsampled A_k (0 for a constant channel)
    LayerCAM   map = ReLU(sum_k ReLU(g_k) * A_k)
    HiResCAM   map = ReLU(sum_k g_k * A_k)

Behind global average pooling and one linear layer (ResNet, DenseNet) ``g`` is the same at every position, so
HiResCAM equals GradCAM there (as its paper notes); they differ where the head sees positions (VGG, flatten
heads).  LayerCAM and HiResCAM multiply ``g`` and ``A`` per position, which DenseNet's post-ReLU tap leaves
unchanged; GradCAM and GradCAM++ sum the gradient over positions, which it does not.

Choices, where the papers and TorchCAM 0.5 (the reference of tests/test_cam_family.py) disagree:

* GradCAM++ uses the paper's closed form for an exponential score ``Y = exp(S)`` of a piecewise-linear network
  (Eq. 19): the 2nd and 3rd derivatives of ``Y`` are ``exp(S) g^2`` and ``exp(S) g^3``, ``exp(S)`` cancels in
  ``alpha`` and only scales the map, so it is dropped.  The third derivative is taken at the position (i, j)
  itself and multiplies the spatial *sum of the activation*, ``g_ij^3 * sum_ab A_ab``, as in the paper and the
  authors' code; TorchCAM 0.5's ``GradCAMpp`` writes ``sum_ab A_ab g_ab^3`` instead, and its in-place division
  ``alpha[mask].div_(...)`` acts on a copy (boolean indexing), so its alpha is plain ``g^2``.  The test compares
  with TorchCAM's extractor with those two lines corrected.
* ScoreCAM's weight is the softmax *class* probability of the target for the masked image, as in the authors'
  released code; for a head of independent sigmoid outputs (or a single logit) the target output's own sigmoid
  (:func:`saliency_audit.models.target.explained_probability`, the model's output kind).  The masks are
  upsampled, then min-max normalised (paper, Algorithm 1, and the authors' code).  TorchCAM normalises before upsampling (its maps then differ from ours by
  ~3e-4 of their max) and weighs channels by a softmax *over channels* of the increase of the target logit, as
  its docstring writes the paper's weights; the test bridges that by giving TorchCAM a log-softmax head, whose channel
  softmax is then ``P_k / sum_m P_m``: our weights up to a factor per image.  Masks multiply the image in pixel
  units (a masked-out pixel is black, the Integrated Gradients baseline), before the model's normalisation.
"""
from __future__ import annotations

import torch

from ..config import pass_images
from ..models.target import explained_probability, output_of
from .cam import capture, upsample


def _combine(act: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_k w_k A_k): (N, 1, h, w) at the layer's resolution; ``weights`` (N, K, 1, 1) or (N, K, h, w)."""
    return torch.relu((weights * act).sum(dim=1, keepdim=True))


def _gradcampp_weights(act: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(N, K, 1, 1) GradCAM++ channel weights (Eq. 19 of Chattopadhyay et al., exponential score)."""
    g2 = g * g
    denom = 2 * g2 + g2 * g * act.sum(dim=(2, 3), keepdim=True)
    alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g2))
    return (alpha * torch.relu(g)).sum(dim=(2, 3), keepdim=True)


def _scorecam_masks(maps: torch.Tensor, constant: torch.Tensor, size, interpolation: str) -> torch.Tensor:
    """(P, 1, h, w) activations -> (P, 1, H, W) masks in [0, 1]: upsampled, min-max normalised, 0 where constant.

    Constancy is judged at the layer's resolution: upsampling a constant map can leave rounding noise that
    min-max would stretch to [0, 1].
    """
    up = upsample(maps, size, interpolation)
    lo = up.amin(dim=(2, 3), keepdim=True)
    span = up.amax(dim=(2, 3), keepdim=True) - lo
    ok = (~constant).view(-1, 1, 1, 1) & (span > 0)
    return torch.where(ok, (up - lo) / torch.where(ok, span, torch.ones_like(span)), torch.zeros_like(up))


def _target_of(target: int | torch.Tensor, images: torch.Tensor) -> int | torch.Tensor:
    return target[images.to(target.device)] if isinstance(target, torch.Tensor) else target


def gradcampp(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """GradCAM++: ReLU(sum_k w_k A_k), w_k = sum_ij alpha_kij ReLU(g_kij) (see the module docstring)."""
    act, g, _ = capture(model, x, target, memo["cam_layer"])
    cam = _combine(act, _gradcampp_weights(act, g))
    return upsample(cam, x.shape[-2:], cfg.methods.gradcam.interpolation)


def layercam(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """LayerCAM: ReLU(sum_k ReLU(g_k) * A_k), elementwise weights."""
    act, g, _ = capture(model, x, target, memo["cam_layer"])
    return upsample(_combine(act, torch.relu(g)), x.shape[-2:], cfg.methods.gradcam.interpolation)


def hirescam(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """HiResCAM: ReLU(sum_k g_k * A_k), the gradient itself as elementwise weight (no spatial averaging)."""
    act, g, _ = capture(model, x, target, memo["cam_layer"])
    return upsample(_combine(act, g), x.shape[-2:], cfg.methods.gradcam.interpolation)


@torch.no_grad()
def scorecam(model, x, keys, target, cfg, memo) -> torch.Tensor:
    """ScoreCAM: w_k = P(target | x * H_k), forward passes only, (image, channel) pairs batched per pass.

    A channel that is constant over the layer gives the zero mask (as in TorchCAM): its weight is the
    probability of a black image, one pass for all of them; an all-zero channel adds nothing to the map,
    whatever its weight, and costs no pass.
    """
    interpolation = cfg.methods.gradcam.interpolation
    kind = output_of(model)
    act, _, _ = capture(model, x, target, memo["cam_layer"], grad=False)
    n, k = act.shape[:2]
    size = tuple(x.shape[-2:])
    flat = act.reshape(n * k, 1, *act.shape[-2:])
    lo, hi = flat.amin(dim=(1, 2, 3)), flat.amax(dim=(1, 2, 3))
    constant = lo == hi
    weights = torch.zeros(n * k, dtype=act.dtype, device=act.device)
    images = torch.arange(n * k, device=act.device) // k
    if bool((constant & (hi != 0)).any()):  # constant, nonzero channels: weighted by the black image's score
        pairs = torch.nonzero(constant & (hi != 0))[:, 0]
        black = model(torch.zeros_like(x[:1])).expand(len(pairs), -1)
        weights[pairs] = explained_probability(black, _target_of(target, images[pairs]), kind).to(weights.dtype)
    todo = torch.nonzero(~constant)[:, 0]
    per_pass = pass_images(cfg, size)
    for start in range(0, len(todo), per_pass):
        pairs = todo[start:start + per_pass]
        masks = _scorecam_masks(flat[pairs], constant[pairs], size, interpolation)
        logits = model(x[images[pairs]] * masks)
        weights[pairs] = explained_probability(logits, _target_of(target, images[pairs]), kind).to(weights.dtype)
    cam = _combine(act, weights.view(n, k, 1, 1))
    return upsample(cam, size, interpolation)
