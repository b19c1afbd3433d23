"""--audit-baseline and --audit-fail-on-regression: a run compared with an earlier release's evidence."""
import json

import pytest

import saliency_audit.engine.audit  # noqa: F401  (loaded once, before pytester snapshots sys.modules)

pytest_plugins = ["pytester"]

UTILITY_TEST = """
from saliency_audit.testing import check


def test_utility(audit, method):
    check(audit.utility(method))
"""
ARGS = ("--methods=grad,gradcam", "--no-controls", "-p", "no:cacheprovider")


def _outcomes(result) -> dict:
    return {r.nodeid.split("::")[-1]: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport")
            if r.when == "call"}


@pytest.mark.slow
def test_a_release_worse_than_its_baseline_fails_only_with_the_gate(pytester):
    pytester.makepyfile(test_audit=UTILITY_TEST)
    first = pytester.runpytest(*ARGS, "--audit-report=old")
    old = json.loads((pytester.path / "old" / "evidence.json").read_text())
    verdicts = {f"test_utility[{r['method']}]": r["verdict"] for r in old["results"]}
    assert _outcomes(first) == {k: "passed" if v == "pass" else "failed" for k, v in verdicts.items()}

    # the same release against itself: nothing changed, nothing regressed, the outcomes are the verdicts'
    same = pytester.runpytest(*ARGS, "--audit-report=same", "--audit-baseline=old/evidence.json",
                              "--audit-fail-on-regression")
    assert _outcomes(same) == _outcomes(first)
    ev = json.loads((pytester.path / "same" / "evidence.json").read_text())
    assert {r["flag"] for r in ev["comparison"]["rows"]} == {"unchanged"}
    assert all(r["test"] == "paired" and r["delta"] == 0 for r in ev["comparison"]["rows"])
    assert "Compared with" in (pytester.path / "same" / "saliency-audit.html").read_text()

    # a baseline whose every image scored 0.3 higher: this release is worse on both pairs
    better = json.loads(json.dumps(old))
    for r in better["results"]:
        r["value"] += 0.3
        for item in r["per_image"]:
            item["statistic"] += 0.3
    (pytester.path / "better.json").write_text(json.dumps(better))
    told = pytester.runpytest(*ARGS, "--audit-report=new", "--audit-baseline=better.json")
    assert _outcomes(told) == _outcomes(first)  # compared, reported, not gated
    ev = json.loads((pytester.path / "new" / "evidence.json").read_text())
    assert [r["flag"] for r in ev["comparison"]["rows"]] == ["worse", "worse"]
    assert all("regression" not in r["details"] for r in ev["results"])

    gated = pytester.runpytest(*ARGS, "--audit-report=gated", "--audit-baseline=better.json",
                               "--audit-fail-on-regression")
    assert set(_outcomes(gated).values()) == {"failed"}
    gated.stdout.fnmatch_lines(["*regressed against the baseline*REGRESSION against better.json*"])
    ev = json.loads((pytester.path / "gated" / "evidence.json").read_text())
    assert [r["verdict"] for r in ev["results"]] == [r["verdict"] for r in old["results"]]  # verdicts stand
    assert all(r["details"]["regression"]["gated"] for r in ev["results"])
    from saliency_audit.report.gate import gate_of

    outcome, text = gate_of(ev)
    assert outcome == "fail" and "2 pair(s) regressed against the baseline" in text


@pytest.mark.parametrize("args,message", [
    (["--audit-fail-on-regression"], "*--audit-fail-on-regression needs --audit-baseline OLD.json*"),
    (["--audit-baseline=missing.json"], "*--audit-baseline=missing.json: cannot read the evidence file*"),
    (["--audit-baseline=bad.json"], "*--audit-baseline=bad.json: not saliency-audit evidence: *"),
    (["--audit-baseline=bad.json", "--audit-fail-on-regression", "--audit-shard=1/2"], "*not saliency-audit*"),
])
def test_a_baseline_that_cannot_be_used_is_a_one_line_usage_error(pytester, args, message):
    pytester.makepyfile("def test_x(): pass")
    (pytester.path / "bad.json").write_text(json.dumps({"schema": "saliency-audit/evidence@1", "results": []}))
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
