"""Which torchvision architecture a state dict was saved from, for the error of a checkpoint that does not fit.

torchvision has no such lookup.  :mod:`saliency_audit.models.autoarch` compares the checkpoint's parameter
names and shapes with every classification builder's (built once per process on the ``meta`` device: no
memory, no initialisation); the architecture named in ``--model`` and its family are listed first, so the
usual slip (``resnet50`` for a ResNet-18 file) is named first.
"""
from __future__ import annotations

import re


def _family(name: str) -> str:
    return re.sub(r"[\d_].*$", "", name)


def likely_architectures(state: dict, num_classes: int, tried: str | None = None, limit: int = 3) -> list[str]:
    """torchvision architectures whose state dict has exactly ``state``'s keys and shapes (at most ``limit``; the
    class count comes from the state itself, ``num_classes`` is kept for callers)."""
    import torchvision

    from .autoarch import matches

    names = torchvision.models.list_models(module=torchvision.models)
    family = _family(tried or "")
    names.sort(key=lambda n: (_family(n) != family, n))
    return [m["arch"] for m in matches(state, names)][:limit]

