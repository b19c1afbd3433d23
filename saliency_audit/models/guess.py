"""Which torchvision architecture a state dict was saved from, for the error of a checkpoint that does not fit.

torchvision has no such lookup.  Every classification builder is instantiated
on the ``meta`` device (no memory, no initialisation: all ~80 in a few
seconds, and only on this error path) and its parameter names and shapes are
compared with the checkpoint's; the architecture named in ``--model`` and its
family are tried first, so the usual slip (``resnet50`` for a ResNet-18 file)
is found at once.
"""
from __future__ import annotations

import re
import warnings


def _family(name: str) -> str:
    return re.sub(r"[\d_].*$", "", name)


def _signature(state: dict) -> dict:
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def likely_architectures(state: dict, num_classes: int, tried: str | None = None, limit: int = 3) -> list[str]:
    """torchvision architectures whose state dict has exactly ``state``'s keys and shapes (at most ``limit``)."""
    import torch
    import torchvision

    target = _signature(state)
    names = torchvision.models.list_models(module=torchvision.models)
    family = _family(tried or "")
    names.sort(key=lambda n: (_family(n) != family, n))
    found: list[str] = []
    for name in names:
        try:
            with warnings.catch_warnings(), torch.device("meta"):
                warnings.simplefilter("ignore")
                built = torchvision.models.get_model(name, num_classes=num_classes)
        except Exception:  # noqa: BLE001 -- some builders cannot run on the meta device (regnet); not a guess then
            continue
        sig = _signature(built.state_dict())
        if sig == target or (name.startswith("inception") and _without_aux(sig) == _without_aux(target)):
            found.append(name)
            if len(found) >= limit:
                break
    return found


def _without_aux(sig: dict) -> dict:
    return {k: v for k, v in sig.items() if not k.startswith("AuxLogits.")}
