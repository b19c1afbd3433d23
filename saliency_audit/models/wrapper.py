"""AuditModel: the user's network behind the preprocessing it was trained with.

Saliency methods differentiate with respect to the *image* in pixel units
([0, 1], one channel for a grayscale X-ray), not with respect to normalised
network input: the Integrated Gradients "black" baseline is then literally a
black image, SmoothGrad noise is a fraction of the image's range, and maps of
models with different normalisations stay comparable.  Channel replication
(grayscale -> RGB) and normalisation therefore live inside the module.
"""
from __future__ import annotations

import hashlib
import json

import torch
from torch import nn

from ..common.errors import AuditUsageError
from ..common.passcount import PASSES
from .info import ModelInfo


class AuditModel(nn.Module):
    def __init__(self, net: nn.Module, info: ModelInfo):
        super().__init__()
        self.net = net
        self.info = info
        c = info.in_channels
        self.register_buffer("mean", torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        if self.mean.shape[1] not in (1, c) or self.std.shape[1] not in (1, c):
            raise ValueError(f"normalisation has {self.mean.shape[1]} channels, model takes {c}")

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.info.input_size)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        PASSES["images"] += int(image.shape[0])
        c = self.info.in_channels
        if image.shape[1] == 1 and c != 1:
            image = image.expand(-1, c, -1, -1)
        elif image.shape[1] != c:
            raise ValueError(f"model {self.info.spec} takes {c} channels, got images with {image.shape[1]}")
        out = self.net((image - self.mean) / self.std)
        if isinstance(out, (tuple, list)):  # e.g. Inception's (logits, aux) in training mode
            out = out[0]
        elif hasattr(out, "logits"):
            out = out.logits
        if out.ndim == 1:
            out = out.unsqueeze(1)
        return out

    def target_index(self, target_class: int) -> int:
        """Output column explaining ``target_class`` (a single-logit head explains its only logit)."""
        n = self.info.num_classes
        if n == 1:
            return 0
        if not 0 <= target_class < n:
            raise AuditUsageError(f"--target-class={target_class}: out of range for the {n}-class model {self.info.spec}")
        return target_class


def model_fingerprint(model) -> str:
    """sha256 over the weights, buffers and input spec: two identical models share maps.

    Recomputed per call site that needs it rather than stored on the module:
    a fingerprint attribute would survive ``copy.deepcopy`` and make a
    randomized copy share the trained model's cache entries.
    """
    h = hashlib.sha256()
    h.update(json.dumps([model.info.arch, list(model.info.input_size), model.info.in_channels,
                         list(model.info.mean), list(model.info.std)]).encode())
    for name, t in sorted(model.net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32 if t.dtype == torch.bfloat16 else t.dtype).contiguous().numpy().tobytes())
    return h.hexdigest()[:24]
