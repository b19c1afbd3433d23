"""Layer discovery: which activation GradCAM explains.

Rule: the last module, in forward-*completion* order, whose output is a 4-D
spatial map (N, C, H, W) with H, W > 1.  Forward hooks fire when a module
finishes, so a container block (ResNet ``layer4``, Inception ``Mixed_7c``)
wins over the leaves inside it, and the global pooling that follows (1×1)
never qualifies.  If that output is then passed through a ReLU outside any
module (DenseNet: ``F.relu(features)``), the post-ReLU tensor is used, as
GradCAM is defined on rectified activations.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..common.errors import AuditUsageError, Unavailable
from .relu_mode import ReluMode


@dataclass(frozen=True)
class CamLayer:
    name: str  # module name inside AuditModel.net
    post_relu: bool  # a functional ReLU (outside any module) follows the module output and is explained instead
    shape: tuple[int, int]  # spatial resolution of the activation
    warning: str | None = None  # the map is coarser than GradCAM is meant to be, or comes from an inner layer

    def to_dict(self) -> dict:
        # "tensor" says exactly what is explained: a module's output (which for ResNet and VGG blocks already
        # ends in a ReLU module) or a functional F.relu applied to it (DenseNet); no bare "post_relu: false"
        # that reads as "not rectified" for a ResNet block
        tensor = f"F.relu({self.name} output)" if self.post_relu else f"{self.name} output"
        d = {"name": self.name, "tensor": tensor, "functional_relu": self.post_relu, "resolution": list(self.shape)}
        if self.warning:
            d["warning"] = self.warning
        return d


def _probe(model, names: dict[nn.Module, str]):
    order: list[tuple[str, torch.Tensor]] = []

    def hook(module, _inp, out):
        if isinstance(out, torch.Tensor):
            order.append((names[module], out))

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        size = model.input_size
        x = torch.zeros(1, model.info.in_channels, *size, device=next(model.parameters()).device)
        with torch.no_grad(), ReluMode(record=True) as mode:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return order, mode.inputs


def script_module_message(model, why: str) -> str:
    """One line: what ``model``, a TorchScript archive, cannot give (``why``), why it was kept as TorchScript,
    and the spec that rebuilds it as an eager network (the architecture its weights matched, when one did)."""
    spec = model.info.spec
    extra = model.info.extra or {}
    note = extra.get("auto_arch") or extra.get("rebuild") or {}
    path = spec if "auto_arch" in extra or ":" not in spec else spec.rsplit(":", 1)[1]
    found = note.get("matches") or ([note["arch"]] if note.get("arch") else [])
    if len(found) == 1:  # its weights are that architecture's, but the archive computes something else
        ask = (f"give package.module:factory:{path} with a factory that builds what the archive computes "
               f"({found[0]} and the rest)")
    elif found:
        ask = "give " + " or ".join(f"{a}:{path}" for a in found)
    else:
        ask = f"give ARCH:{path} (ARCH a torchvision name, timm/NAME or package.module:factory) to rebuild it"
    return (f"{spec} is a TorchScript archive: {why}" + (f" (kept as TorchScript: {note['reason']})"
                                                         if note.get("reason") else "") + f"; {ask}")


def find_cam_layer(model, override: str | None = None) -> CamLayer:
    """The GradCAM target of an :class:`AuditModel` (``override``: a module name of ``model.net``)."""
    named = dict(model.net.named_modules())
    if override:
        if override not in named:
            close = [n for n in named if n and override.split(".")[-1] in n][:5]
            raise AuditUsageError(
                f"--target-layer={override}: no such module in {model.info.spec}"
                + (f" (similar: {', '.join(close)})" if close else "")
            )
        candidates = {named[override]: override}
    else:
        candidates = {m: n for n, m in named.items() if n}
    if isinstance(model.net, torch.jit.ScriptModule):
        raise Unavailable(script_module_message(model, "the CAM methods need forward hooks on a layer, which "
                                                       "an archive has not"))
    order, relu_inputs = _probe(model, candidates)
    # read-out modules (global/adaptive pooling, dropout, identity) resample or pass on a feature map:
    # GradCAM belongs on the map itself (VGG: ``features``, not the AdaptiveAvgPool2d(7) after it)
    readout = (nn.Dropout, nn.Dropout2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Identity, nn.Flatten)
    spatial = [(n, t) for n, t in order if t.ndim == 4 and t.shape[-1] > 1 and t.shape[-2] > 1
               and (override or not isinstance(named[n], readout))]
    if not spatial:
        raise AuditUsageError(
            f"cannot find a spatial layer for GradCAM in {model.info.spec}; set --target-layer "
            f"(or methods.gradcam.layer in the audit config) to a module name"
        )
    name, tensor = spatial[-1]
    shape = tuple(tensor.shape[-2:])
    warning = None
    last = [(n, t) for n, t in order if t.ndim == 4 and not isinstance(named[n], readout)][-1]
    if last[0] != name and not override:
        warning = (f"the last feature map ({last[0]}) is {last[1].shape[-2]}x{last[1].shape[-1]} at input "
                   f"{model.input_size[0]}x{model.input_size[1]}; GradCAM falls back to {name}: raise --input-size")
    elif min(shape) < 7:
        warning = f"GradCAM resolution {shape[0]}x{shape[1]} is coarse (below 7x7) at input {model.input_size}"
    return CamLayer(name, any(t is tensor for t in relu_inputs), shape, warning)
