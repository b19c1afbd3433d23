"""The report of a run audited per finding: each finding's verdicts, diagnosis and sections on their own.

A multi-finding run's evidence holds every finding's results (each with its ``finding``) and, per sample, one
image with each finding's ground truth (``samples[id].truths``).  The page shows, per finding, what a
single-label report shows: :func:`view` cuts the evidence down to one finding (its results, its diagnosis, its
dataset view, the images with that finding's truth), the ordinary parts render it, and :func:`scoped` gives
the fragment's element ids (and the links to them) the finding's prefix, so the findings' sections never share
an anchor.  Run-wide parts (header, plan and cost, comparison, provenance) stay whole.
"""
from __future__ import annotations

import re

from ..common.subjects import finding_id


def findings(evidence: dict) -> list[str]:
    """The findings of the run, as audited (then any other a result names); [] for a single-label run."""
    results = evidence.get("results") or []
    named = [str(r["finding"]) for r in results if isinstance(r, dict) and r.get("finding")]
    if not named:
        return []
    audited = (evidence.get("config") or {}).get("findings_audited") or []
    out = [str(f) for f in audited if str(f) in named]
    return out + [f for f in dict.fromkeys(named) if f not in out]


def view(evidence: dict, finding: str) -> dict:
    """The evidence as a single-label run of ``finding`` would have written it."""
    out = dict(evidence)
    out["results"] = [r for r in evidence.get("results") or [] if isinstance(r, dict) and r.get("finding") == finding]
    dx = evidence.get("diagnosis")
    if isinstance(dx, dict) and isinstance(dx.get("findings"), dict):
        out["diagnosis"] = dx["findings"].get(finding) or {}
    dataset = evidence.get("dataset")
    if isinstance(dataset, dict):
        per = dataset.get("findings")
        out["dataset"] = {**{k: v for k, v in dataset.items() if k != "findings"},
                          **(per.get(finding) if isinstance(per, dict) and isinstance(per.get(finding), dict) else {}),
                          "finding": finding}
    samples = evidence.get("samples")
    if isinstance(samples, dict):
        out["samples"] = {sid: ({**e, "truth": (e.get("truths") or {}).get(finding)}
                                if isinstance(e, dict) and isinstance(e.get("truths"), dict) else e)
                          for sid, e in samples.items()}
    return out


def anchor(finding: str) -> str:
    return f"finding-{finding_id(finding)}"


_ID = re.compile(r'\b(id|href)="(#?)([^"]*)"')


def scoped(fragment: str, finding: str) -> str:
    """``fragment`` with every ``id="x"`` and in-page ``href="#x"`` renamed ``<finding anchor>-x``."""
    prefix = anchor(finding)

    def rename(m: re.Match) -> str:
        attr, hash_, value = m.groups()
        if attr == "href" and not hash_:
            return m.group(0)  # not an in-page link (the report has none, but never rewrite one)
        return f'{attr}="{hash_}{prefix}-{value}"'

    return _ID.sub(rename, fragment)
