"""Model specs, safe loading, preprocessing and layer discovery."""
from .info import ModelInfo
from ..common.specs import parse_spec
from .loading import load_model
from .wrapper import AuditModel

__all__ = ["AuditModel", "ModelInfo", "load_model", "parse_spec"]
