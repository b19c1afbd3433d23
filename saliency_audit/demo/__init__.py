"""The demo world: synthetic chest X-rays with known lesions, and models trained on them.

It lets the audit run end to end with no data or model of the user's: every
lesion mask is exact, and the six model variants (see :data:`VARIANTS`) are
built so that some saliency checks should pass and others must fail. The
multi-finding world (four lesion types, one mask each) has its own multi-label
models (:data:`MULTILABEL_VARIANTS`), one of whose outputs was trained to ignore
its lesion.

The image generator needs only numpy/scipy; the torch parts are imported on
first use, so importing this package neither imports torch nor trains
anything.
"""
from __future__ import annotations

from saliency_audit.demo.world import (
    FINDINGS,
    GENERATOR_VERSION,
    IMAGE_SIZE,
    DemoImage,
    FindingsImage,
    iter_findings,
    make_split,
    render_findings,
    render_mask,
    render_sample,
)

__all__ = [
    "FINDINGS",
    "FindingsImage",
    "render_findings",
    "iter_findings",
    "companions",
    "MULTILABEL_VARIANTS",
    "IMAGE_SIZE",
    "GENERATOR_VERSION",
    "DemoImage",
    "render_sample",
    "render_mask",
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
    "MULTILABEL_VARIANTS": "saliency_audit.demo.train",
    "load_demo_model": "saliency_audit.demo.train",
    "demo_cache_dir": "saliency_audit.demo.train",
}

#: The models the audit's comparison criteria need beside each demo model, by the family it belongs to.
_COMPANIONS = {
    "single-label": {"random_label": "demo:random-label", "replicates": ["demo:replicate1", "demo:replicate2"],
                     "references": ["demo:other-arch"]},
    "multilabel": {"random_label": "demo:multilabel-random-label", "replicates": ["demo:multilabel-replicate1"],
                   "references": ["demo:multilabel-other-arch"]},
}


def companions(variant: str) -> dict:
    """The companion model specs of a demo model: ``{"random_label": SPEC, "replicates": [SPEC, ...],
    "references": [SPEC, ...]}`` (the label-randomisation, repeatability and cross-architecture criteria's).

    ``variant`` is a demo variant (``"multilabel"``) or spec (``"demo"``, ``"demo:multilabel-replicate1"``);
    the multi-label models' companions are multi-label models (same outputs, same findings). A fresh dict.
    """
    name = variant.partition(":")[2] if variant == "demo" or variant.startswith("demo:") else variant
    family = "multilabel" if (name or "primary").startswith("multilabel") else "single-label"
    c = _COMPANIONS[family]
    return {"random_label": c["random_label"], "replicates": list(c["replicates"]), "references": list(c["references"])}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'saliency_audit.demo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
