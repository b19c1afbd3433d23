"""Targets of an explanation: one class for the whole batch, or one per image (``explain = "predicted"``).

captum's ``target`` accepts either form; these helpers give our own code
(GradCAM, SmoothGrad's stacked draws) the same two forms.
"""
from __future__ import annotations

import torch


def pick(logits: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
    """The explained logit of each image: (N,)."""
    if isinstance(target, torch.Tensor):
        return logits.gather(1, target.to(logits.device).view(-1, 1))[:, 0]
    return logits[:, target]


def repeat(target: int | torch.Tensor, times: int) -> int | torch.Tensor:
    """The target of ``times`` stacked copies of a batch (copies are concatenated along the batch)."""
    return target.repeat(times) if isinstance(target, torch.Tensor) else target
