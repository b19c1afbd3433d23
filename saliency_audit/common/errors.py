"""Errors that carry a one-line message naming the file or option at fault."""
from __future__ import annotations


#: Every character that ends a line (str.splitlines), written as its escape: a message quoting a file's text
#: (an id, a path) stays one line whatever the file holds.  Messages quote such text with !r where they can;
#: this is the guarantee for the rest (a path from the file system, a library's message).
_ESCAPE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


class AuditError(Exception):
    """Base class: the message is one line, meant to be shown to the user as is; ``details`` (JSON-able)
    holds what does not fit on that line, for the evidence."""

    def __init__(self, message: str = "", details: dict | None = None):
        super().__init__(message.translate(_ESCAPE_BREAKS))
        self.details = details or {}


class AuditUsageError(AuditError):
    """A bad option value (unknown method, bad model spec, missing data root...)."""


class AuditInputError(AuditError):
    """Bad input data: a corrupt file, a mask of the wrong size, a NaN map..."""


class DegenerateBound(AuditError):
    """A verdict's bound (or threshold) is not a finite number: NaN, +inf or -inf.  The verdict is an error,
    never a pass or a fail (:func:`saliency_audit.stats.clears`)."""


class Unavailable(AuditError):
    """What this run cannot compute for the model it was given (a TorchScript archive has no forward hooks:
    no GradCAM, no randomized copies).  A criterion that needs it is skipped, and a report-only baseline that
    needs it is recorded as unavailable, with this one-line reason; never an error verdict."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``exc``'s message on one line (its first clause of a multi-line message), or its type name when the
    message is empty, so an error report can never fail on the error it reports."""
    text = " ".join(str(exc).strip().splitlines()[0].split()) if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
