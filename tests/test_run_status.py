"""The evidence says how its run ended: a run stopped by SIGINT never reads as finished."""
import json
import os

import pytest

pytest_plugins = ["pytester"]

TESTS = '''
import os
import signal

from saliency_audit.criteria.result import CriterionResult


def test_first(audit):
    audit.add_result(CriterionResult("utility", "grad", "pass", value=0.1, bound=0.05, threshold=0.0))


def test_second(audit):
    if os.environ.get("STOP_HERE"):
        # what Ctrl-C does; a process started in the background inherits SIGINT ignored, so restore
        # Python's handler first (it turns the signal into KeyboardInterrupt, as in a terminal)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGINT)
    audit.add_result(CriterionResult("utility", "ig", "pass", value=0.1, bound=0.05, threshold=0.0))
'''


def _evidence(pytester):
    return json.loads((pytester.path / "rep" / "evidence.json").read_text())


def test_sigint_leaves_interrupted_evidence_and_a_rerun_completes_it(pytester, monkeypatch):
    pytester.makepyfile(test_two=TESTS)
    args = ["-p", "no:cacheprovider", "--audit-report=rep", "--junitxml=junit.xml"]
    monkeypatch.setenv("STOP_HERE", "1")
    stopped = pytester.runpytest_subprocess(*args)
    assert stopped.ret == pytest.ExitCode.INTERRUPTED
    ev = _evidence(pytester)
    assert ev["run"]["status"] == "interrupted" and ev["run"]["exit_status"] == 2
    assert [(r["method"], r["verdict"]) for r in ev["results"]] == [("grad", "pass")]
    assert "gate: NOT COMPLETE — the run is interrupted, pytest exit status 2" in stopped.stdout.str()
    page = (pytester.path / "rep" / "saliency-audit.html").read_text()
    assert "INCOMPLETE RUN" in page and "Gate: NOT COMPLETE — the run is interrupted" in page

    monkeypatch.delenv("STOP_HERE")
    rerun = pytester.runpytest(*args)  # in-process: only the interrupted run needs a process of its own
    assert rerun.ret == 0
    ev = _evidence(pytester)
    assert ev["run"]["status"] == "complete" and ev["run"]["exit_status"] == 0 and len(ev["results"]) == 2
    assert "INCOMPLETE RUN" not in (pytester.path / "rep" / "saliency-audit.html").read_text()


def test_evidence_written_during_the_run_says_running(pytester):
    pytester.makepyfile(test_peek='''
import json
from pathlib import Path

from saliency_audit.criteria.result import CriterionResult


def test_peek(audit):
    audit.add_result(CriterionResult("utility", "grad", "pass", value=0.1, bound=0.05, threshold=0.0))
    run = json.loads((Path("rep") / "evidence.json").read_text())["run"]
    assert run["status"] == "running" and run["finished"] is None
''')
    assert pytester.runpytest("-p", "no:cacheprovider", "--audit-report=rep").ret == 0


def test_stopping_at_the_first_failure_is_not_complete(pytester):
    pytester.makepyfile(test_x='''
from saliency_audit.criteria.result import CriterionResult


def test_a(audit):
    audit.add_result(CriterionResult("utility", "grad", "fail", value=-0.1, bound=-0.2, threshold=0.0))
    assert False


def test_b(audit):
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--audit-report=rep", "-x")
    assert result.ret == 1
    assert _evidence(pytester)["run"]["status"] == "interrupted"
