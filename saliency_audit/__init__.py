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

_LAZY = {
    "Audit": ("saliency_audit.engine.audit", "Audit"),
    "AuditConfig": ("saliency_audit.config", "AuditConfig"),
    "CriterionResult": ("saliency_audit.criteria.result", "CriterionResult"),
    "Sample": ("saliency_audit.data.sample", "Sample"),
    "load_dataset": ("saliency_audit.data", "load_dataset"),
    "load_model": ("saliency_audit.models", "load_model"),
    # extending the package from outside (saliency_audit.common.extensions; entry points do the same)
    "CriterionSpec": ("saliency_audit.common.criteria_registry", "CriterionSpec"),
    "DatasetSpec": ("saliency_audit.data.registry", "DatasetSpec"),
    "MethodSpec": ("saliency_audit.methods.registry", "MethodSpec"),
    "register_criterion": ("saliency_audit.common.criteria_registry", "register_criterion"),
    "register_dataset": ("saliency_audit.data.registry", "register_dataset"),
    "register_method": ("saliency_audit.methods.registry", "register_method"),
}


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
