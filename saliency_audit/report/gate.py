"""The gate line: one sentence that cannot read as "passed" when part of the audit never ran.

Shown in the terminal summary, at the top of the HTML report and as a JUnit
``<testsuite>`` property, from the evidence's results alone.
"""
from __future__ import annotations

NAMED = 4  # skipped verdicts named in the line; the rest are counted


def _verdict(r: dict) -> str:
    v = str(r.get("verdict", "")).lower()
    return v if v in ("pass", "fail", "error", "skipped") else "error"


def _readable(r: dict) -> dict:
    """A result dict whose ``details`` (and its control and regression blocks) are dicts, whatever the file held."""
    d = r.get("details")
    if d is None or (isinstance(d, dict) and all(isinstance(d.get(k), (dict, type(None))) for k in ("control", "regression"))):
        return r
    d = {k: v for k, v in d.items() if k not in ("control", "regression") or isinstance(v, dict)} if isinstance(d, dict) else {}
    return {**r, "details": d}


def gate_of(evidence: dict) -> tuple[str, str]:
    """The gate of an evidence file: its results, and how its run ended."""
    run = evidence.get("run") or {}
    if not isinstance(run, dict):
        run = {}
    results = evidence.get("results")
    results = [_readable(r) for r in results if isinstance(r, dict)] if isinstance(results, list) else []
    return gate(results, run.get("startup_error"), run.get("status"), run.get("exit_status"), run.get("error"))


def gate(results: list[dict], startup_error: str | None = None, status: str | None = None,
         exit_status: int | None = None, error: str | None = None) -> tuple[str, str]:
    """(outcome, text): outcome ``pass``, ``fail`` or ``none``; text the gate line.

    ``status`` is the run's (``complete``, ``running``, ``interrupted``, ``failed``; None for evidence
    written before runs had one): anything but complete fails the gate, whatever the verdicts so far.
    ``error``: why a run failed (the evidence writer's one line, :func:`saliency_audit.evidence.check.guard`).
    """
    if startup_error:
        return "fail", f"NOT RUN — the audit stopped at start-up: {startup_error}"
    if error and status in (None, "complete"):
        status = "failed"  # an error never reads as a complete run
    if status not in (None, "complete"):
        code = f", pytest exit status {exit_status}" if exit_status is not None else ""
        why = f" ({error})" if error else ""
        _, text = gate(results)
        return "fail", f"NOT COMPLETE — the run is {status}{code}{why}; so far: {text}"
    from ..criteria.controls import control_of, summary

    controls = summary(results)
    results = [r for r in results if not control_of(r)]  # a control's verdict is its check's, below
    n = {v: sum(_verdict(r) == v for r in results) for v in ("pass", "fail", "error", "skipped")}
    audited = n["pass"] + n["fail"] + n["error"]
    skipped = [f"{r.get('criterion')}[{r.get('method')}]" for r in results if _verdict(r) == "skipped"]
    not_run = ""
    if skipped:
        names = ", ".join(skipped[:NAMED]) + (f" and {len(skipped) - NAMED} more" if len(skipped) > NAMED else "")
        not_run = (f"{len(skipped)} of {len(results)} not evaluated: {names} "
                   "(--audit-strict makes a criterion that cannot run fail)")
    checked = ""
    if controls and controls["gated"]:
        checked = f"; controls: {controls['met']} of {controls['gated']} as expected"
    if controls and controls["unmet"]:
        pairs = controls["unmet_pairs"]
        named = ", ".join(pairs[:NAMED]) + (f" and {len(pairs) - NAMED} more" if len(pairs) > NAMED else "")
        text = (f"NOT PASSED — the audit is not discriminating on this model and data: {len(pairs)} control(s) "
                f"came out wrong ({named}; a control's verdict is known in advance, so the criterion cannot be "
                f"trusted for any method); {n['pass']} pass, {n['fail']} fail, {n['error']} error out of "
                f"{audited} audited verdict(s)")
        return "fail", text + (f"; {not_run}" if not_run else "")
    regressed = [f"{r.get('criterion')}[{r.get('method')}]" for r in results
                 if ((r.get("details") or {}).get("regression") or {}).get("gated")]
    if regressed:  # --audit-fail-on-regression: a worse pair fails its test even when its verdict passes
        named = ", ".join(regressed[:NAMED]) + (f" and {len(regressed) - NAMED} more" if len(regressed) > NAMED else "")
        checked = f"; {len(regressed)} pair(s) regressed against the baseline ({named})" + checked
    if n["fail"] or n["error"] or regressed:
        text = f"NOT PASSED — {n['fail']} fail, {n['error']} error out of {audited} audited verdict(s)"
        return "fail", text + checked + (f"; {not_run}" if not_run else "")
    if n["pass"]:
        if not_run:
            return "pass", f"PASSED, {not_run}{checked}"
        return "pass", f"PASSED — all {audited} audited verdict(s) pass{checked}"
    return "none", "NO VERDICT — nothing was audited" + checked + (f"; {not_run}" if not_run else "")
