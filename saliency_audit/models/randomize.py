"""Weight randomization on a deep copy of a model (the user's object is never touched).

Each layer is re-initialised with its *own* init (``reset_parameters``) under a
recorded seed, so the randomized model is exactly a freshly constructed,
untrained network of the same architecture.  BatchNorm policy:

* ``reset`` (default): affine re-initialised and running statistics reset —
  the BN layer of an untrained network;
* ``affine``: affine re-initialised, trained running statistics kept;
* ``keep``: BN layers untouched.

The model stays in eval mode throughout.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..common.errors import AuditUsageError
from ..stats import stable_seed

BN_POLICIES = ("reset", "affine", "keep")


def _reinit(module: nn.Module, bn_policy: str) -> int:
    if isinstance(module, nn.modules.batchnorm._NormBase):
        if bn_policy == "keep":
            return 0
        if bn_policy == "affine":
            if module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            return 1
        module.reset_parameters()
        return 1
    reset = getattr(module, "reset_parameters", None)
    if callable(reset) and any(True for _ in module.parameters(recurse=False)):
        reset()
        return 1
    return 0


#: names the re-initialisation in a randomized copy's token (ModelSet.copy_token), which names its weights in the
#: map cache instead of a hash of them: bump it whenever the weights a copy gets change
VERSION = "1"


def reinit_blocks(net: nn.Module, blocks: Sequence[Sequence[str]] | None, seed: int, bn_policy: str) -> list[int]:
    """Re-initialise ``blocks`` (lists of module names of ``net``; None: every module, as one block) in place, each
    under its own seed derived from (``seed``, its names): a block gets the same weights whatever else is
    re-initialised, and in whatever order.  Returns the layers reset per block."""
    if bn_policy not in BN_POLICIES:
        raise ValueError(f"bn_policy must be one of {BN_POLICIES}, got {bn_policy!r}")
    named = dict(net.named_modules())
    counts = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for names in [[""]] if blocks is None else [list(b) for b in blocks]:
            torch.manual_seed(stable_seed(seed, *names))
            counts.append(sum(_reinit(sub, bn_policy) for name in names for sub in named[name].modules()))
    return counts


def restore_blocks(net: nn.Module, source: nn.Module, blocks: Sequence[Sequence[str]]) -> None:
    """Copy the parameters and buffers of ``blocks`` (lists of module names) from ``source``, a network of the same
    architecture, into ``net``: bit for bit, in place."""
    mine, theirs = dict(net.named_modules()), dict(source.named_modules())
    with torch.no_grad():
        for name in (n for b in blocks for n in b):
            src = dict(theirs[name].named_parameters())
            src.update(theirs[name].named_buffers())
            for key, t in [*mine[name].named_parameters(), *mine[name].named_buffers()]:
                t.copy_(src[key])


def check_reset(model, count: int) -> None:
    """A copy in which nothing was re-initialised is an error: it would pass every sanity check."""
    if count == 0:
        raise AuditUsageError(
            f"randomization re-initialised no layer of {getattr(getattr(model, 'info', None), 'spec', 'the model')} "
            f"(a TorchScript module, or blocks without parameters); a 'randomized' model equal to the trained one "
            f"would pass every sanity check: give ARCH:PATH, or list blocks in randomization.blocks"
        )


def randomize_copy(
    model: nn.Module,
    *,
    blocks: Sequence[Sequence[str]] | None = None,
    seed: int = 0,
    bn_policy: str = "reset",
) -> tuple[nn.Module, int]:
    """A deep copy with ``blocks`` (lists of module names; all modules when None) re-initialised
    (:func:`reinit_blocks`).

    Names are relative to the network (``model.net`` of an AuditModel).  Each
    block is re-initialised under its own seed derived from (``seed``, block
    names), so block j gets the same random weights at every cascade stage
    and in the independent test.  Returns (copy, number of layers reset).
    """
    if bn_policy not in BN_POLICIES:
        raise ValueError(f"bn_policy must be one of {BN_POLICIES}, got {bn_policy!r}")
    clone = copy.deepcopy(model)
    count = sum(reinit_blocks(getattr(clone, "net", clone), blocks, seed, bn_policy))
    clone.eval()
    check_reset(model, count)
    return clone, count
