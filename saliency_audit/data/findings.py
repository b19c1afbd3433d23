"""Finding names of a dataset that holds several findings: matched loosely, chosen with a one-line error.

A finding given by ``--finding`` matches the data's own spelling case-insensitively, with ``_`` and a
space taken as the same character and runs of spaces as one (``pleural_effusion`` is ``Pleural Effusion``);
the adapter then reports the data's spelling.  An unknown finding is a usage error listing the findings
the data has, each with its count.
"""
from __future__ import annotations

from typing import Callable

from ..common.errors import AuditUsageError
from ..common.subjects import canonical


def key(name: str) -> str:
    """The form in which two spellings of a finding compare equal (the run's own matching of a finding to a
    model output: :func:`saliency_audit.common.subjects.canonical`)."""
    return canonical(name)


def shown(name: str) -> str:
    """A finding name in a message: as is when printable, else as a Python literal (one line, always)."""
    return name if name.isprintable() else repr(name)


def listing(counts: dict[str, int], unit: str = "") -> str:
    """``Nodule (12), Mass (3)``: the findings, most frequent first, with their counts."""
    def count(n: int) -> str:  # "1 image", "3 images"
        return f"{n} {unit[:-1] if n == 1 and unit.endswith('s') else unit}" if unit else str(n)

    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))
    return ", ".join(f"{shown(name)} ({count(n)})" for name, n in ordered)


def choose(finding: str | None, counts: dict[str, int], *, dataset: str, source: str, unit: str = "images",
           normal: Callable[[str], str] = key) -> str:
    """The data's spelling of ``finding`` among ``counts`` (``{spelling: count}``, one spelling per finding).

    ``None`` chooses the only finding, and is a usage error when there are several.  ``source`` names where
    the findings were read (a file), ``dataset`` the ``--dataset`` value, for the messages.
    """
    if not counts:
        raise AuditUsageError(f"--dataset={dataset}: {source} holds no finding with ground truth")
    if finding is None:
        if len(counts) == 1:
            return next(iter(counts))
        raise AuditUsageError(f"--dataset={dataset} needs --finding: {source} has {listing(counts, unit)}")
    by_key = {normal(name): name for name in counts}
    if normal(finding) not in by_key:
        raise AuditUsageError(f"--finding={shown(finding)}: no ground truth of that finding in {source} "
                              f"(it has {listing(counts, unit)})")
    return by_key[normal(finding)]
