"""The demo world: synthetic chest X-rays with known lesions, and models trained on them.

It lets the audit run end to end with no data or model of the user's: every
lesion mask is exact, and the six model variants (see :data:`VARIANTS`) are
built so that some saliency checks should pass and others must fail.

The image generator needs only numpy/scipy; the torch parts are imported on
first use, so importing this package neither imports torch nor trains
anything.
"""
from __future__ import annotations

from saliency_audit.demo.world import GENERATOR_VERSION, IMAGE_SIZE, DemoImage, make_split, render_sample

__all__ = [
    "IMAGE_SIZE",
    "GENERATOR_VERSION",
    "DemoImage",
    "render_sample",
    "make_split",
    "DemoCNN",
    "DemoResNet",
    "INPUT_MEAN",
    "INPUT_STD",
    "VARIANTS",
    "load_demo_model",
    "demo_cache_dir",
]

_LAZY = {
    "DemoCNN": "saliency_audit.demo.archs",
    "DemoResNet": "saliency_audit.demo.archs",
    "INPUT_MEAN": "saliency_audit.demo.archs",
    "INPUT_STD": "saliency_audit.demo.archs",
    "VARIANTS": "saliency_audit.demo.train",
    "load_demo_model": "saliency_audit.demo.train",
    "demo_cache_dir": "saliency_audit.demo.train",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'saliency_audit.demo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
