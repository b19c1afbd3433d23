"""Evidence that does not contradict itself, and a writer that never loses a run over a bad number.

:func:`contradictions` checks what the JSON Schema cannot: every verdict against its own numbers (a ``pass``
whose lower bound is below its threshold), ``n`` not negative, a control's ``met`` against its
expected and actual verdicts, every number finite, and the run's status fields against each other.
``saliency-audit validate`` reports them (:func:`saliency_audit.evidence.schema.problems`), and the writer
(:func:`guard`, called by :func:`saliency_audit.evidence.write_json`) turns evidence that breaks them
into a ``failed`` run naming the first problem in one line: a result that contradicts its numbers is a bug,
and a non-finite number would otherwise make ``json.dumps(allow_nan=False)`` fail every later write of the
run, leaving the previous run's evidence in place.  Works on plain dicts, walks without recursion.
"""
from __future__ import annotations

import json
import math

from ..common.subjects import of

#: criteria whose verdict needs the bound to exceed the threshold (``stats.clears(..., strict=True)``); the
#: others pass at equality.  Unknown criteria are checked with the lenient rule.
STRICT = frozenset({"utility", "completeness", "interpretability"})
#: pytest exit statuses a complete run cannot have (interrupted, internal error, usage error)
_NOT_COMPLETE_CODES = (2, 3, 4)
NAMED = 3  # problems named on the writer's one line
_LARGEST = int(1.7976931348623157e308)  # the largest float: an integer beyond it is infinite to every reader


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def nonfinite(obj, limit: int = 10) -> list[str]:
    """JSON paths (``results[0].bound``) of the NaN / +inf / -inf floats (and integers too large for a float)
    in ``obj``, at most ``limit``."""
    found: list[str] = []
    stack = [((), obj)]
    while stack and len(found) < limit:
        parts, value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                found.append(f"{_path(parts)} is {value!r}")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST:
            found.append(f"{_path(parts)} is an integer of {value.bit_length()} bits, beyond any float")
        elif isinstance(value, dict):
            stack.extend(((*parts, str(k)), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend(((*parts, i), v) for i, v in reversed(list(enumerate(value))))
    return found


def without_nonfinite(obj):
    """A copy of ``obj`` with every non-finite float as None (JSON null)."""
    return json.loads(json.dumps(obj, allow_nan=True, default=str), parse_constant=lambda _: None)


def _number(v) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))  # an int of 400 digits compares fine


def _result_problems(i: int, r) -> list[str]:
    if not isinstance(r, dict):
        return []
    at = f"results[{i}]"
    name = f"{r.get('criterion')}[{of(r)}]"
    out = []
    verdict, bound, threshold = r.get("verdict"), r.get("bound"), r.get("threshold")
    if verdict == "pass" and _number(bound) and _number(threshold):
        strict = isinstance(r.get("criterion"), str) and r["criterion"] in STRICT
        if bound < threshold:  # at equality a strict criterion fails, but files written by hand (and older
            # releases) record a bound of 0.0 against 0.0 for a pass: only a bound below is a contradiction
            out.append(f"{at}.verdict: {name} is 'pass' but its bound {bound!r} is below its threshold "
                       f"{threshold!r} ({'>' if strict else '>='} needed)")
    ci = r.get("ci")
    if verdict in ("pass", "fail") and isinstance(ci, list) and len(ci) == 2 and all(map(_number, ci)) \
            and ci[0] > ci[1]:
        out.append(f"{at}.ci: lower end {ci[0]!r} above upper end {ci[1]!r}")
    n = r.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        if n < 0:
            out.append(f"{at}.n: {n} images")
    control = (r.get("details") or {}).get("control") if isinstance(r.get("details"), dict) else None
    if isinstance(control, dict) and "met" in control:
        expected, met = control.get("expected"), control.get("met")
        if expected is None or verdict == "skipped":
            should = None
        else:
            should = verdict in ("pass", "fail") and verdict == expected
        if met is not should:
            out.append(f"{at}.details.control.met: {met!r}, but a control expected to {expected!r} whose verdict "
                       f"is {verdict!r} has met {should!r}")
    return out


def contradictions(evidence, results_checked: bool = False) -> list[str]:
    """One line per way ``evidence`` contradicts itself (empty: consistent), each starting with its JSON path.
    Checks only what is there: a field of the wrong type is the schema's problem, not this one's.
    ``results_checked``: the caller vouches that no result holds a non-finite number (the evidence writer's
    encoded results, :func:`saliency_audit.evidence.write_json_encoded`): only the rest is walked for them."""
    if not isinstance(evidence, dict):
        return []
    out = nonfinite({k: v for k, v in evidence.items() if k != "results"} if results_checked else evidence)
    results = evidence.get("results")
    if isinstance(results, list):
        for i, r in enumerate(results):
            out.extend(_result_problems(i, r))
    run = evidence.get("run")
    if isinstance(run, dict):
        status, code = run.get("status"), run.get("exit_status")
        if status == "complete" and isinstance(code, int) and code in _NOT_COMPLETE_CODES:
            out.append(f"run.status: 'complete', but pytest's exit status {code} means the run did not finish")
        if run.get("startup_error") and status not in (None, "failed"):
            out.append(f"run.status: {status!r}, but the run stopped at start-up (run.startup_error)")
        if run.get("error") and status not in (None, "failed"):
            out.append(f"run.status: {status!r}, but the run records an error (run.error)")
    from ..common.errors import _ESCAPE_BREAKS

    return [line.translate(_ESCAPE_BREAKS) for line in out]  # names from the file stay on one line


def guard(evidence: dict) -> dict:
    """``evidence`` itself when it is finite and consistent; otherwise a copy marked ``failed`` whose
    ``run.error`` names the first problems in one line: non-finite numbers written as null, and a result that
    contradicts its own numbers (a bug) turned into an ``error`` verdict naming the contradiction.  So the
    writer never fails, what it writes is consistent, and the gate never reads it as complete."""
    found = contradictions(evidence)
    if not found:
        return evidence
    fixed = without_nonfinite(evidence)
    run = fixed.get("run") if isinstance(fixed.get("run"), dict) else {}
    fixed["run"] = run
    results = fixed.get("results") if isinstance(fixed.get("results"), list) else []
    for i, r in enumerate(results):
        wrong = _result_problems(i, r)
        if not wrong:
            continue
        r["verdict"] = "error"
        r["explanation"] = f"evidence writer: contradicts its own numbers: {wrong[0]}"
        details = r.get("details") if isinstance(r.get("details"), dict) else {}
        r["details"] = details
        details["contradiction"] = wrong
        control = details.get("control")
        if isinstance(control, dict) and "met" in control:
            control["met"] = None if control.get("expected") is None else False
    what = "a non-finite number" if nonfinite(evidence, 1) else "evidence that contradicts itself"
    more = f" (and {len(found) - NAMED} more)" if len(found) > NAMED else ""
    line = f"the evidence writer found {what}: " + "; ".join(found[:NAMED]) + more
    run["error"] = " ".join(line.split())
    run["status"] = "failed"
    return fixed
