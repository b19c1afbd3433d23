"""saliency-audit: audit whether the saliency maps of a medical-image classifier can be trusted.

The public API is imported lazily so that ``pytest`` start-up (the plugin is
loaded for every pytest run once installed) does not pay for torch.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "Audit",
    "AuditConfig",
    "CriterionResult",
    "CriterionSpec",
    "DatasetSpec",
    "MethodSpec",
    "Sample",
    "load_dataset",
    "load_model",
    "register_criterion",
    "register_dataset",
    "register_method",
    "__version__",
]

#: module -> the public names it holds (imported on first use)
_HOMES = {
    "saliency_audit.engine.audit": ("Audit",),
    "saliency_audit.config": ("AuditConfig",),
    "saliency_audit.criteria.result": ("CriterionResult",),
    "saliency_audit.data.sample": ("Sample",),
    "saliency_audit.data": ("load_dataset",),
    "saliency_audit.models": ("load_model",),
    # extending the package from outside (saliency_audit.common.extensions; entry points do the same)
    "saliency_audit.common.criteria_registry": ("CriterionSpec", "register_criterion"),
    "saliency_audit.data.registry": ("DatasetSpec", "register_dataset"),
    "saliency_audit.methods.registry": ("MethodSpec", "register_method"),
}
_LAZY = {name: (module, name) for module, names in _HOMES.items() for name in names}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'saliency_audit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
