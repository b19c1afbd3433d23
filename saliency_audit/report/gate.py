"""The gate line: one sentence that cannot read as "passed" when part of the audit never ran.

Shown in the terminal summary, at the top of the HTML report and as a JUnit
``<testsuite>`` property, from the evidence's results alone.
"""
from __future__ import annotations

NAMED = 4  # skipped verdicts named in the line; the rest are counted


def _verdict(r: dict) -> str:
    v = str(r.get("verdict", "")).lower()
    return v if v in ("pass", "fail", "error", "skipped") else "error"


def gate(results: list[dict], startup_error: str | None = None) -> tuple[str, str]:
    """(outcome, text): outcome ``pass``, ``fail`` or ``none``; text the gate line."""
    if startup_error:
        return "fail", f"NOT RUN — the audit stopped at start-up: {startup_error}"
    n = {v: sum(_verdict(r) == v for r in results) for v in ("pass", "fail", "error", "skipped")}
    audited = n["pass"] + n["fail"] + n["error"]
    skipped = [f"{r.get('criterion')}[{r.get('method')}]" for r in results if _verdict(r) == "skipped"]
    not_run = ""
    if skipped:
        names = ", ".join(skipped[:NAMED]) + (f" and {len(skipped) - NAMED} more" if len(skipped) > NAMED else "")
        not_run = (f"{len(skipped)} of {len(results)} not evaluated: {names} "
                   "(--audit-strict makes a criterion that cannot run fail)")
    if n["fail"] or n["error"]:
        text = f"NOT PASSED — {n['fail']} fail, {n['error']} error out of {audited} audited verdict(s)"
        return "fail", text + (f"; {not_run}" if not_run else "")
    if n["pass"]:
        if not_run:
            return "pass", f"PASSED, {not_run}"
        return "pass", f"PASSED — all {audited} audited verdict(s) pass"
    return "none", "NO VERDICT — nothing was audited" + (f"; {not_run}" if not_run else "")
