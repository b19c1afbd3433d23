"""Intercept every ReLU a forward pass performs, whoever calls it.

Guided backprop must guide *every* ReLU.  captum's ``GuidedBackprop`` hooks
``nn.ReLU`` modules only, so on torchvision DenseNet and Inception v3 — which
call ``F.relu`` — it silently returns the plain gradient.  A ``torch.fx`` pass
could turn each call into its own module; we intercept the calls at the
torch-function level instead, because (1) it also works on models fx cannot
trace (data-dependent control flow), (2) it keeps the module tree intact, so
GradCAM's forward hooks on container blocks (``layer4``, ``Mixed_7c``) still
fire, and (3) forward values are untouched: relu(x) is computed exactly as
before, only its backward rule changes.  In-place ReLUs
are made out-of-place so autograd never sees a modified view.

The same mode lets GradCAM tap the *post*-ReLU activation of DenseNet, whose
final ReLU is a functional call after ``features`` (not a module).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
_RELU_FUNCS.add(getattr(F, "relu_", F.relu))


class _GuidedReLU(torch.autograd.Function):
    """relu forward; backward passes only positive gradients where the input was positive."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0).to(grad.dtype) * (grad > 0).to(grad.dtype)


class ReluMode(TorchFunctionMode):
    """Within the block: ReLUs are out-of-place; optionally guided; optionally one is tapped.

    ``guided``: apply the guided-backprop rule to every ReLU.
    ``tap``: a tensor; the output of the ReLU applied to it is kept in ``tapped``.
    ``record``: keep every tensor a ReLU consumed in ``inputs`` (layer discovery;
    references, not ids, so a freed temporary can never alias a live tensor).
    """

    def __init__(self, *, guided: bool = False, tap: torch.Tensor | None = None, record: bool = False):
        super().__init__()
        self.guided = guided
        self.tap = tap
        self.record = record
        self.tapped: torch.Tensor | None = None
        self.calls = 0
        self.inputs: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RELU_FUNCS:
            x = args[0]
            self.calls += 1
            if self.record:
                self.inputs.append(x)
            out = _GuidedReLU.apply(x) if self.guided else torch.relu(x)
            if self.tap is not None and x is self.tap:
                self.tapped = out
            return out
        return func(*args, **kwargs)
