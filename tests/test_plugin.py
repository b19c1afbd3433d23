"""The pytest plugin: options, usage errors, parametrization, evidence and the verdict table."""
import json

import pytest

import saliency_audit.engine.audit  # noqa: F401  (numpy, scipy: loaded once, before pytester snapshots sys.modules)

pytest_plugins = ["pytester"]


def test_options_are_registered(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for opt in ("--model", "--saliency-model", "--replicate", "--reference-model", "--random-label-model",
                "--dataset", "--data-root", "--methods", "--n-images", "--device", "--seed", "--audit-report",
                "--audit-config", "--allow-unsafe-pickle", "--target-layer", "--target-class", "--input-size",
                "--normalize", "--split", "--split-file", "--finding", "--skip-bad-samples"):
        assert opt in out, opt


def test_unknown_method_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(method): pass")
    result = pytester.runpytest("--methods=grad,smoothgrad")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--methods: unknown saliency method 'smoothgrad'*"])


@pytest.mark.parametrize("args,message", [
    (["--model=demo:nope"], "*unknown demo variant 'nope'*"),
    (["--replicate=:x"], "*--replicate=:x: expected ARCH:PATH*"),
    (["--n-images=1"], "*n_images must be at least 2*"),
    (["--device=tpu"], "*--device=tpu: expected cpu, cuda or cuda:N*"),
    (["--dataset=siim"], "*--dataset=siim needs --data-root*"),
    (["--dataset=siim", "--data-root=/nonexistent/x"], "*--data-root=/nonexistent/x: no such directory*"),
    (["--finding=Nodule"], "*--finding applies to --dataset=nih or *, not --dataset=demo*"),
    (["--target-class=two"], "*--target-class=two: expected an integer*"),
    (["--target-class=-1"], "*target_class must be >= 0*"),
    (["--input-size=4"], "*--input-size=4: expected SIZE or HEIGHT,WIDTH of at least 8 pixels*"),
    (["--input-size=1,2,3"], "*--input-size=1,2,3: expected SIZE or HEIGHT,WIDTH*"),
    (["--normalize=0.5"], "*--normalize=0.5: expected MEAN,STD or M1,M2,M3,S1,S2,S3 with every STD > 0*"),
    (["--normalize=a,b"], "*--normalize=a,b: expected numbers*"),
])
def test_bad_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_method_parametrization_follows_methods_option(pytester):
    pytester.makepyfile("def test_x(method): pass")
    result = pytester.runpytest("--methods=gradcam, grad ,gradcam", "--no-controls", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_x?gradcam?*PASSED*", "*test_x?grad?*PASSED*"])


def test_default_parametrization_is_the_papers_eight_and_on_the_demo_the_controls(pytester):
    pytester.makepyfile("def test_x(method): pass")
    result = pytester.runpytest("--collect-only", "-q")
    for m in ("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam", "edge", "random", "oracle"):
        result.stdout.fnmatch_lines([f"*test_x?{m}?*"])
    assert result.ret == 0
    # on other data the controls are asked for; --no-controls leaves them out of the demo
    for args, expected in ((["--no-controls"], 8), (["--dataset=folder", f"--data-root={pytester.path}"], 8),
                           (["--dataset=folder", f"--data-root={pytester.path}", "--controls"], 11)):
        out = pytester.runpytest("--collect-only", "-q", *args)
        assert sum("test_x[" in line for line in out.stdout.lines) == expected, (args, out.stdout.lines)


def test_audit_config_file_is_validated(pytester):
    pytester.makefile(".toml", bad="[utility]\nmin_ap = 'high'\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--audit-config=bad.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bad.toml: utility.min_ap must be a number*"])


def test_results_become_evidence_and_a_verdict_table(pytester):
    """Criterion results recorded during a run land in evidence.json and the terminal table."""
    pytester.makepyfile("""
        from saliency_audit.criteria.result import CriterionResult

        def test_record(audit, method):
            r = CriterionResult("utility", method, "pass" if method == "grad" else "fail", statistic="s",
                                value=0.5, ci=[0.4, 0.6], bound=0.4, baseline={"name": "prior", "value": 0.1},
                                n=3, per_image=[{"id": "a", "score": 0.5}], explanation="numbers")
            audit.add_result(r)
            assert r.passed, r.explain()
    """)
    result = pytester.runpytest("--methods=grad,gradcam", "--no-controls", "--audit-report=out")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the exit status is the gate
    result.stdout.fnmatch_lines(["*saliency-audit verdicts*", "*utility*grad*+0.500*+0.400*PASS*",
                                 "*utility*gradcam*FAIL*", "*1 pass, 1 fail*"])
    ev = json.loads((pytester.path / "out" / "evidence.json").read_text())
    assert ev["schema"] == "saliency-audit/evidence@1"
    assert [r["method"] for r in ev["results"]] == ["grad", "gradcam"]
    assert ev["run"]["finished"] and ev["run"]["seed"] == 0
    assert ev["config"]["utility"]["min_ap"] == 0.1


def test_audit_strict_turns_a_skip_into_a_failure(pytester):
    pytester.makepyfile("""
        import pytest

        def test_rep(audit, method):
            r = audit.repeatability(method)
            if r.verdict == "skipped":
                pytest.skip(r.explanation)
            assert r.passed, r.explain()
    """)
    import torch
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), pytester.path / "r18.pt")
    args = ["--methods=grad", "--no-controls", "--model=resnet18:r18.pt", "--audit-report=out"]
    result = pytester.runpytest(*args, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no model to compare with: pass --replicate SPEC*"])
    result = pytester.runpytest(*args, "--audit-strict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--audit-strict: no model to compare with*"])


def test_plugin_loads_without_pytest_xdist(pytester):
    """The xdist hook is optional: a venv without the test extras (README's first command) must work."""
    pytester.makepyfile("def test_x(method): pass")
    result = pytester.runpytest("-p", "no:xdist", "--methods=grad", "--no-controls")
    result.assert_outcomes(passed=1)


def test_audit_tests_run_cheapest_criterion_first_and_other_tests_keep_their_place(pytester):
    """Files run alphabetically, but a cold run's first verdict must not wait for ROAD and the cascade: the
    audit tests are reordered by the plan's passes (methods keep their order), every other test stays put."""
    pytester.makepyfile(test_a_faithfulness="def test_completeness(audit, method): pass",
                        test_b_plain="def test_plain(): pass",
                        test_c_randomization="def test_randomization(audit, method): pass",
                        test_d_utility="def test_utility(audit, method): pass")
    result = pytester.runpytest("--methods=grad,gradcam", "--no-controls", "--audit-report=out", "-v", "--n-images=6")
    ran = [line.split("::")[1].split(" ")[0] for line in result.stdout.lines if "::test_" in line and "PASSED" in line]
    assert ran[:3] == ["test_utility[grad]", "test_utility[gradcam]", "test_plain"]  # test_plain keeps its slot
    plan = json.loads((pytester.path / "out" / "evidence.json").read_text())["run"]["plan"]
    assert list(plan["per_pair"]) == [t.removeprefix("test_") for t in ran if t != "test_plain"]  # the plan's order
    assert plan["seconds_after_plan"] >= 0  # what the estimate is judged against
    assert plan["images"] == {"localisation": 6, "randomization": 6, "completeness": 6}  # --n-images caps every set
