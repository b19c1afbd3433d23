"""The plugin is a guest in every pytest run of the environment it is installed in.

A repository that owns ``--device``, ``--seed``, ``--model`` and ``--dataset`` and a fixture or a
parametrization named ``method`` runs as if saliency-audit were not installed; its audit suite, in the same
repository, runs with the ``--saliency-`` names.  (These tests replace the audit-suite conftest the shared
``pytester`` fixture writes with the repository's own.)
"""
from __future__ import annotations

import json

import pytest

from saliency_audit.common.paths import suite_sources as sources

OWNER = """
import pytest

def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="OURS: the repository's device")
    parser.addoption("--seed", type=int, default=0)
    parser.addoption("--model", default="resnet")
    parser.addoption("--dataset", default="wards")

@pytest.fixture
def method():
    return "their method"
"""

THEIR_TESTS = """
import pytest

from saliency_audit.plugin import session_key


@pytest.mark.parametrize("method", ["lasso", "ridge"])
def test_parametrized(method):
    assert method in ("lasso", "ridge")


def test_fixture(method, request):
    assert method == "their method"
    assert request.config.stash.get(session_key, None) is None  # no audit was started


def test_options(request):
    opt = request.config.getoption
    assert (opt("--device"), opt("--seed"), opt("--model"), opt("--dataset")) == EXPECTED
"""


def _their_repo(pytester, expected) -> None:
    pytester.makeconftest(OWNER)  # replaces the audit-suite conftest: this folder is the repository's
    pytester.makepyfile(test_theirs=THEIR_TESTS.replace("EXPECTED", repr(expected)))


def test_a_repository_owning_the_short_names_runs_as_without_the_plugin(pytester):
    _their_repo(pytester, ("cuda:3", 7, "m.pt", "x"))
    result = pytester.runpytest("--device=cuda:3", "--seed=7", "--model=m.pt", "--dataset=x", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_parametrized?lasso? PASSED*", "*test_parametrized?ridge? PASSED*"])
    assert not (pytester.path / "reports").exists()  # no evidence, no report
    assert not any(line.startswith("saliency-audit") for line in result.stdout.lines)  # no header line, no table
    helptext = pytester.runpytest("--help").stdout.str()
    assert "OURS: the repository's device" in helptext and "--saliency-device=DEV" in helptext


def test_a_plain_repository_keeps_its_tests_as_written(pytester):
    (pytester.path / "conftest.py").unlink()
    pytester.makepyfile(test_plain="""
        import pytest

        @pytest.fixture(params=["a", "b"])
        def method(request):
            return request.param

        def test_one(method):
            assert method in "ab"

        @pytest.mark.parametrize("method", ["x"])
        def test_two(method):
            assert method == "x"
    """)
    result = pytester.runpytest("--collect-only", "-q")
    assert sorted(line for line in result.stdout.lines if "::" in line) == [
        "test_plain.py::test_one[a]", "test_plain.py::test_one[b]", "test_plain.py::test_two[x]"]
    pytester.runpytest().assert_outcomes(passed=3)


def test_a_marked_test_anywhere_is_an_audit_test(pytester):
    (pytester.path / "conftest.py").unlink()
    pytester.makepyfile(test_marked="""
        import pytest

        @pytest.mark.saliency_criterion("utility")
        def test_mine(method):
            pass

        def test_other(request):
            pass
    """)
    result = pytester.runpytest("--collect-only", "-q", "--saliency-methods=grad,gradcam", "--saliency-no-controls")
    assert sorted(line for line in result.stdout.lines if "::" in line) == [
        "test_marked.py::test_mine[grad]", "test_marked.py::test_mine[gradcam]", "test_marked.py::test_other"]


def test_the_audit_suite_beside_them_runs_with_the_prefixed_names(pytester):
    """The acceptance run: the repository's tests and a real audit (utility on the demo, one method, 8 images) in
    one repository that owns the four short names."""
    _their_repo(pytester, ("cuda:9", 0, "resnet", "wards"))
    audits = pytester.mkdir("audits")
    for name in ("conftest.py", "test_utility.py"):
        (audits / name).write_text(sources()[name])
    result = pytester.runpytest(
        "audits", "test_theirs.py", "--device=cuda:9", "--saliency-device=cpu", "--saliency-model=demo",
        "--saliency-dataset=demo", "--saliency-methods=grad", "--saliency-no-controls", "--saliency-n-images=8",
        "--saliency-seed=0", "--saliency-report=out", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 5, result.stdout.str()  # 4 theirs, 1 audit
    result.stdout.fnmatch_lines(["saliency-audit: --device is this repository's option; the audit reads "
                                 "--saliency-device", "*saliency-audit verdicts*"])
    ev = json.loads((pytester.path / "out" / "evidence.json").read_text())
    assert [(r["criterion"], r["method"]) for r in ev["results"]] == [("utility", "grad")]
    assert ev["config"]["device"] == "cpu" and ev["config"]["n_images"] == 8


def test_short_names_wait_for_every_initial_conftest(pytester):
    """``pytest audits other``: the audit suite's conftest loads before ``other/conftest.py``, which owns
    ``--device``; the short names are added only after both, so nothing conflicts and --device stays theirs."""
    (pytester.path / "conftest.py").unlink()
    audits, other = pytester.mkdir("audits"), pytester.mkdir("other")
    (audits / "conftest.py").write_text(sources()["conftest.py"])
    (audits / "test_a.py").write_text("def test_utility(method):\n    pass\n")
    (other / "conftest.py").write_text("def pytest_addoption(parser):\n    parser.addoption('--device')\n")
    (other / "test_b.py").write_text("def test_b(request):\n    assert request.config.getoption('--device') == 'tpu'\n")
    result = pytester.runpytest("audits", "other", "--device=tpu", "--methods=grad", "--no-controls")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("flag", ["--model", "--seed", "--device", "--dataset", "--audit-report"])
def test_outside_an_audit_suite_the_short_names_are_not_the_plugins(pytester, flag):
    (pytester.path / "conftest.py").unlink()
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(f"{flag}=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*unrecognized arguments: {flag}=1*"])
