"""Trust criteria: one module each, each returning a CriterionResult."""
from .result import CriterionResult

__all__ = ["CriterionResult"]
