"""The evidence a run writes before its first test: ``running``, so a crash never leaves the last run's file.

Written by the pytest controller when the audit session starts (never by a pytest-xdist worker): until the
first result replaces it, ``reports/evidence.json`` and the HTML report say the run is in progress.  A run
that dies without a word (killed, a crash in a hook, ``os._exit``) therefore leaves ``running`` -- never the
previous run's ``complete`` -- and the gate reads NOT COMPLETE.
"""
from __future__ import annotations

from pathlib import Path


def running_evidence(option, audit_config=None, end: tuple[str, int] | None = None, argv: list[str] | None = None,
                     **run_fields) -> dict:
    """Schema-valid evidence of a run that has started and computed nothing yet (``end``: (status, pytest exit
    status) of a run that ended so, having audited nothing; ``run_fields``: more of its ``run`` record, e.g. a
    start-up error's)."""
    from ..evidence import SCHEMA, now, run_info

    run = run_info(getattr(option, "saliency_seed", None) or 0, argv)
    run["status"] = "running"
    if end is not None:
        run.update(status=end[0], exit_status=end[1], finished=now())
    run.update(run_fields)
    config = {"seed": run["seed"]}
    if audit_config is not None:
        try:
            config = dict(audit_config.to_dict(), seed=run["seed"])
        except Exception:  # never lose the marker over a diagnostic
            pass
    return {"schema": SCHEMA, "run": run, "config": config, "models": [],
            "dataset": {"name": getattr(option, "saliency_dataset", None) or "demo"}, "results": [], "samples": {}}


def mark_running(report_dir: Path, option, audit_config=None, end: tuple[str, int] | None = None,
                 argv: list[str] | None = None, **run_fields) -> str | None:
    """Replace ``report_dir``'s evidence and report with a ``running`` one (or, with ``end`` or ``run_fields``,
    one of a run that ended before any result); the evidence's sha256 (None when the folder cannot be written:
    the run itself reports that when it writes its first result)."""
    from ..evidence import write_json
    from .html import write_html

    evidence = running_evidence(option, audit_config, end, argv, **run_fields)
    try:
        sha = write_json(Path(report_dir) / "evidence.json", evidence)
        write_html(evidence, Path(report_dir) / "saliency-audit.html", sha)
    except OSError:
        return None
    return sha
