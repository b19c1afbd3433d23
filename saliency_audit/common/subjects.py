"""What one verdict is about: a method, and with a multi-finding model the finding it explains.

A single-label audit's verdicts are about methods (``utility[gradcam]``).  A model with one output per finding
is audited per finding, and each verdict is about a (method, finding) *subject*, spelt ``gradcam-Pneumothorax``
in test ids, plans and labels; the evidence keeps the two apart (``method``, ``finding``).  Everything that
pairs or groups verdicts (the family gate, a comparison with a baseline, merged shards, the report) keys on
:func:`key`, so two findings' verdicts of one method never collide.
"""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")


def finding_id(finding: str) -> str:
    """A finding's spelling in test ids (``Pleural Effusion`` -> ``Pleural_Effusion``): ``-k`` can select it and
    ``[`` ``]`` or spaces never reach a node id."""
    return _UNSAFE.sub("_", str(finding)).strip("_") or "_"


def subject(method: str, finding: str | None = None) -> str:
    """``method``, or ``method-FindingId`` for a verdict about one finding."""
    return str(method) if finding is None else f"{method}-{finding_id(finding)}"


def _get(r, name: str):
    return r.get(name) if isinstance(r, dict) else getattr(r, name, None)


def of(r) -> str:
    """The subject of a result (a CriterionResult or its evidence dict)."""
    return subject(str(_get(r, "method")), _get(r, "finding"))


def key(r) -> tuple:
    """What identifies a result in a run: (criterion, method, model, finding)."""
    return (str(_get(r, "criterion")), str(_get(r, "method")), str(_get(r, "model") or "primary"), _get(r, "finding"))


def split(value: str, methods, findings) -> tuple[str, str | None]:
    """(method, finding) of a subject among the run's ``methods`` and ``findings`` (names); a bare method
    when the run has no findings.  The longest method name that matches wins (``guided_gradcam`` over ``gradcam``
    cannot both end a subject, but a method name may contain ``-``)."""
    if value in methods and not findings:
        return value, None
    for m in sorted(methods, key=len, reverse=True):
        for f in findings:
            if value == subject(m, f):
                return m, f
    return value, None


#: spellings of one finding in the published label sets (NIH's box list says Infiltrate, its labels Infiltration)
ALIASES = {"infiltrate": "infiltration"}


def canonical(finding: str) -> str:
    """A finding's name for matching (case, ``_`` and spaces, known aliases ignored)."""
    f = " ".join(str(finding).strip().lower().replace("_", " ").split())
    return ALIASES.get(f, f)
