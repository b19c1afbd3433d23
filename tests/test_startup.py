"""Start-up checks of the user's models, and a gate line that cannot read as passed when criteria never ran."""
import json
import xml.etree.ElementTree as ET

import pytest
import torch
import torchvision

pytest_plugins = ["pytester"]


def _usage_error(result, *needles):
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    err = result.stderr.str()
    lines = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _test_file(pytester):
    pytester.makepyfile(test_never="def test_never(audit):\n    raise AssertionError('must not run')\n")


def _r18(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), path)
    return path


@pytest.mark.parametrize("option,arch,needles", [
    ("--model", "resnet18", ["not found"]),  # the file is missing
    ("--model", "resnet81", ["unknown architecture 'resnet81'"]),
    ("--model", "resnet50", ["does not fit resnet50", "missing keys", "size mismatches",
                             "layer1.0.conv1.weight (64, 64, 3, 3) vs (64, 64, 1, 1)", "it looks like resnet18"]),
    ("--replicate", "resnet18", ["not found"]),
])
def test_bad_model_files_are_one_line_usage_errors_at_startup(pytester, tmp_path, option, arch, needles):
    _test_file(pytester)
    path = tmp_path / "nope" / "r18.pt" if needles == ["not found"] else _r18(tmp_path)
    spec = f"{option}={arch}:{path}"
    stale = pytester.path / "reports" / "evidence.json"
    stale.parent.mkdir()
    stale.write_text('{"results": [{"criterion": "utility", "method": "grad", "verdict": "pass"}]}')
    line = _usage_error(pytester.runpytest(spec, "-p", "no:cacheprovider"), spec, *needles)
    # the evidence and the report of an earlier run are replaced: a CI gate must not read a stale pass
    evidence = json.loads(stale.read_text())
    assert evidence["results"] == [] and line.endswith(evidence["run"]["startup_error"])
    page = (pytester.path / "reports" / "saliency-audit.html").read_text()
    assert "Gate: NOT RUN — the audit stopped at start-up" in page
    if arch == "resnet50":  # the full lists, which the line cuts to three, are in the evidence
        details = evidence["run"]["startup_error_details"]
        assert len(details["missing_keys"]) > 100 and details["likely_architectures"] == ["resnet18"]
        assert "layer1.0.conv1.weight (64, 64, 3, 3) vs (64, 64, 1, 1)" in details["size_mismatches"]


def test_a_skipped_criterion_is_not_evaluated_in_terminal_report_and_junit(pytester):
    pytester.makepyfile(test_gate='''
from saliency_audit.criteria.result import CriterionResult


def test_passes(audit):
    notes = {"map_notes": {"cam_layer": {"name": "layer4", "resolution": [4, 4],
                                         "warning": "GradCAM resolution 4x4 is coarse (below 7x7)"}}}
    audit.add_result(CriterionResult("utility", "grad", "pass", value=0.1, bound=0.05, threshold=0.0,
                                     baseline={"name": "average-mask prior", "n_masks": 5, "kind": "leave-one-out"},
                                     details=notes))


def test_cannot_run(audit):
    audit.add_result(CriterionResult("repeatability", "grad", "skipped", explanation="no --replicate"))
''')
    result = pytester.runpytest("--audit-report=rep", "--junitxml=junit.xml", "-p", "no:cacheprovider")
    assert result.ret == 0
    expected = "PASSED, 1 of 2 not evaluated: repeatability[grad]"
    out = result.stdout.str()
    assert f"gate: {expected}" in out and "--audit-strict" in out
    result.stdout.fnmatch_lines(["evidence: *evidence.json", "report: *saliency-audit.html"])
    page = (pytester.path / "rep" / "saliency-audit.html").read_text()
    assert f"Gate: {expected}" in page
    for text in ("GradCAM layer layer4: GradCAM resolution 4x4 is coarse (below 7x7) [grad]",
                 "the average-mask prior (leave-one-out) is built from only 5 mask(s)"):
        assert f"warning: {text}" in out and f"<li>{text}</li>" in page
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").getroot().iter("property")}
    assert props["saliency_audit.gate"] == "pass" and props["saliency_audit.gate_text"].startswith(expected)


@pytest.mark.parametrize("verdicts,outcome,start", [
    (["pass", "pass"], "pass", "PASSED — all 2"),
    (["pass", "fail", "skipped"], "fail", "NOT PASSED — 1 fail, 0 error out of 2"),
    (["skipped"], "none", "NO VERDICT"),
    (["pass"] + ["skipped"] * 6, "pass", "PASSED, 6 of 7 not evaluated"),
])
def test_gate_line(verdicts, outcome, start):
    from saliency_audit.report.gate import gate

    results = [{"criterion": "c", "method": f"m{i}", "verdict": v} for i, v in enumerate(verdicts)]
    got, text = gate(results)
    assert got == outcome and text.startswith(start), text
    if verdicts.count("skipped") > 4:
        assert "and 2 more" in text


def test_warnings_name_skipped_samples_and_deduplicate():
    from saliency_audit.report.warnings import collect

    cam = {"map_notes": {"cam_layer": {"name": "f", "warning": "coarse"}}}
    ev = {"results": [{"method": "gradcam", "details": cam}, {"method": "ggcam", "details": cam},
                      {"method": "gbp", "details": {"map_notes": {"gbp_warning": "no ReLU"}}}],
          "dataset": {"skipped": [{"id": f"x{i}", "reason": "bad"} for i in range(5)]}}
    assert collect(ev) == ["GradCAM layer f: coarse [gradcam, ggcam]", "guided backprop: no ReLU [gbp]",
                           "5 sample(s) left out of the audit (x0, x1, x2 and 2 more): see dataset.skipped in the "
                           "evidence"]
    assert collect({"results": []}) == []


def test_warnings_name_a_kept_torchscript_model_an_unavailable_baseline_and_the_comparisons():
    """What a bare TorchScript PATH of an unknown architecture and a baseline run leave in the evidence reaches
    the terminal and the report's warning box, not only the evidence."""
    from saliency_audit.report.warnings import collect

    missing = {"name": "randomized model", "available": False, "reason": "a TorchScript archive has no hooks"}
    ev = {"results": [{"method": m, "baselines": [missing]} for m in ("grad", "ig")],
          "models": [{"role": "primary", "spec": "net.pt",
                      "extra": {"auto_arch": {"arch": None, "reason": "its weights match no torchvision architecture"}}},
                     {"role": "replicate", "spec": "r.pt", "extra": {"auto_arch": {"arch": "resnet18"}}}],
          "comparison": {"warnings": ["the dataset manifests differ"]}}
    got = collect(ev)
    assert got[0] == "randomized model baseline unavailable: a TorchScript archive has no hooks [grad, ig]"
    assert got[1].startswith("primary model net.pt is kept as a TorchScript archive (its weights match no "
                             "torchvision architecture)") and "ARCH:PATH" in got[1]
    assert got[2:] == ["compared with the baseline: the dataset manifests differ"]


def test_progress_reaches_the_terminal_past_capture_and_not_under_q(pytester, monkeypatch):
    """A long step shows a bar while the test runs (pytest captures output; the plugin writes around it)."""
    monkeypatch.setenv("SALIENCY_AUDIT_PROGRESS_DELAY", "0")
    pytester.makepyfile(test_maps='''
from saliency_audit.data.demo import DemoDataset


def test_maps(audit):
    samples = [DemoDataset()[i] for i in range(3)]
    audit.store.maps(audit.models.get("primary"), "grad", samples)
''')
    args = ["-p", "no:cacheprovider", "--audit-report=rep"]
    (pytester.path / "cfg.toml").write_text(f'cache_dir = "{pytester.path / "maps"}"\n')
    shown = pytester.runpytest_subprocess(*args, "--audit-config=cfg.toml")
    assert shown.ret == 0
    assert "grad maps, demo: 100%" in shown.stderr.str(), shown.stderr.str()[-1500:]
    assert "saliency-audit: starting" in shown.stderr.str()  # the first second is not silent
    (pytester.path / "maps").rename(pytester.path / "old")  # the quiet run must compute maps too
    quiet = pytester.runpytest_subprocess(*args, "--audit-config=cfg.toml", "-q")
    assert quiet.ret == 0 and "grad maps" not in quiet.stderr.str() + quiet.stdout.str()


def test_bars_are_named_after_the_criterion_and_method_being_audited(monkeypatch):
    from saliency_audit.common import progress

    monkeypatch.setenv("SALIENCY_AUDIT_PROGRESS_DELAY", "0")
    monkeypatch.delenv("SALIENCY_AUDIT_PROGRESS", raising=False)
    written: list[str] = []
    progress.configure(enabled=True, write=written.append)
    try:
        with progress.step("randomization[sg]"):
            with progress.bar(2, "sg maps, demo") as shown:
                shown.update(2)
        with progress.bar(1, "outside") as shown:
            shown.update(1)
    finally:
        progress.configure()
    text = "".join(written)
    assert "randomization[sg]: sg maps, demo: 100%" in text
    assert "\routside: 100%" in text or text.splitlines()[-1].startswith("outside")


def test_a_bar_in_a_log_is_a_few_milestone_lines_and_draws_in_place_on_a_terminal(monkeypatch):
    from saliency_audit.common import progress

    monkeypatch.setenv("SALIENCY_AUDIT_PROGRESS_DELAY", "0")
    monkeypatch.delenv("SALIENCY_AUDIT_PROGRESS", raising=False)
    for is_terminal in (False, True):
        written: list[str] = []
        progress.configure(enabled=True, write=written.append, terminal=is_terminal)
        try:
            with progress.step("utility[grad]"):
                with progress.bar(16, "grad maps, demo") as shown:
                    for _ in range(16):
                        shown.update(1)
        finally:
            progress.configure()
        text = "".join(written)
        if is_terminal:
            assert "\r" in text and "utility[grad]: grad maps, demo: 100%" in text  # tqdm, redrawn in place
            continue
        lines = text.splitlines()
        assert "\r" not in text and [line.split(" (")[0] for line in lines] == [
            f"utility[grad]: grad maps, demo: {p}%" for p in (25, 50, 75, 100)], lines  # each once
        assert lines[-1].endswith(" done") and "16/16 img" in lines[-1]


@pytest.mark.parametrize("bound,threshold,text", [
    (-0.0003, 0.0, "-0.00030"),  # not "-0.000": the sign is real
    (0.0, 0.0, "0.000 (tie)"),
    (0.4996, 0.5, "0.49960"),
    (0.21, 0.0, "0.210"),
    (None, 0.0, "—"),
])
def test_bounds_show_which_side_of_the_threshold_they_fall(bound, threshold, text):
    from saliency_audit.report.table import bound_text

    assert bound_text(bound, threshold) == text


def test_report_header_gives_images_per_criterion():
    from saliency_audit.report.html import render

    ev = {"schema": "saliency-audit/evidence@1", "run": {}, "config": {}, "models": [],
          "dataset": {"name": "demo", "n_images": 48},
          "results": [{"criterion": "utility", "method": "grad", "verdict": "pass", "n": 48},
                      {"criterion": "completeness", "method": "grad", "verdict": "pass", "n": 24}]}
    assert "48 images in all; images per criterion: utility 48, completeness 24" in render(ev)


def test_accuracy_on_the_audited_images_and_the_near_chance_warning():
    from saliency_audit import Audit
    from saliency_audit.data.demo import DemoDataset
    from saliency_audit.report.warnings import collect

    ds = DemoDataset()
    samples = [ds[i] for i in range(16)]
    acc = Audit(model="demo").models.accuracy("primary", samples)
    assert acc["n"] == 16 and acc["accuracy"] >= 0.8 and sum(acc["labels"].values()) == 16
    assert set(acc["labels"]) == {"0", "1"} and 0.8 <= acc["balanced_accuracy"] <= 1.0
    ok = {"results": [], "dataset": {"primary_accuracy": acc}}
    assert collect(ok) == []
    bad = {"results": [], "dataset": {"primary_accuracy": {**acc, "balanced_accuracy": 0.52}}}
    (warning,) = collect(bad)
    assert "balanced accuracy on 16 audited images is 0.52" in warning and "--input-size" in warning


def test_a_model_calling_every_image_positive_is_caught_on_label_stratified_images():
    """Lesion images alone cannot show it: a model that calls everything positive is perfect on them."""
    import torch

    from saliency_audit import Audit
    from saliency_audit.report.accuracy import summary
    from saliency_audit.report.warnings import collect

    class AlwaysPositive(torch.nn.Module):
        input_size = (128, 128)

        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([0.0, 1.0]))

        def forward(self, x):
            return self.bias.expand(len(x), 2)

    audit = Audit(model="demo", report_dir=None)
    audit.models["primary"] = AlwaysPositive()
    audit.samples.select(8, lesion=True)
    acc = audit._performance()
    assert acc["accuracy"] == 1.0 and acc["labels"] == {"1": 8}
    strat = acc["label_stratified"]
    assert strat["n"] == 8 and set(strat["labels"]) == {"0", "1"} and strat["balanced_accuracy"] == 0.5
    assert "8 label-stratified images" in summary(acc)
    (warning,) = collect({"results": [], "dataset": {"primary_accuracy": acc}})
    assert "balanced accuracy on 8 label-stratified check images is 0.50" in warning
