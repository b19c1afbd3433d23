"""Errors that carry a one-line message naming the file or option at fault."""
from __future__ import annotations


class AuditError(Exception):
    """Base class: the message is one line, meant to be shown to the user as is; ``details`` (JSON-able)
    holds what does not fit on that line, for the evidence."""

    def __init__(self, message: str = "", details: dict | None = None):
        super().__init__(message)
        self.details = details or {}


class AuditUsageError(AuditError):
    """A bad option value (unknown method, bad model spec, missing data root...)."""


class AuditInputError(AuditError):
    """Bad input data: a corrupt file, a mask of the wrong size, a NaN map..."""
