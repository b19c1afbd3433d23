"""The finding axis: a model with one output per finding, audited per finding in one run.

A generated world with three findings in three column bands of a 32-px image, and a hand-built network whose
output for each finding is the bright area in that finding's band -- except ``Ignored``, whose output reads a
corner marker and never its own lesion.  The gradient of each output is therefore exactly known: a finding's
utility passes against its own masks, fails against another finding's, and fails for ``Ignored``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from saliency_audit.common.errors import AuditUsageError
from saliency_audit.common.subjects import canonical, finding_id, split, subject
from saliency_audit.config import AuditConfig
from saliency_audit.data.base import AuditDataset
from saliency_audit.data.registry import DATASETS, DatasetSpec
from saliency_audit.data.sample import Sample
from saliency_audit.models.info import ModelInfo
from saliency_audit.models.wrapper import AuditModel

SIZE = 32
BANDS = {"Top": (0, 10), "Bottom": (11, 21), "Ignored": (22, 32)}  # column bands (the names are only names)


class FindingsWorld(AuditDataset):
    """Each image: every finding present with probability 1/2, a bright disc in its band; a corner marker."""

    name = "test-findings"

    def __init__(self, finding: str | None = None, n: int = 48, skip_bad: bool = False, **_):
        hits = [f for f in BANDS if finding and canonical(f) == canonical(finding)]
        if not hits:
            raise AuditUsageError(f"--finding={finding}: not a finding of test-findings")
        self.finding, self.n = hits[0], n
        self.root = "generated"

    @classmethod
    def findings(cls, root=None, **options) -> list[str]:
        return list(BANDS)

    def __len__(self) -> int:
        return self.n

    def _draw(self, i: int):
        rng = np.random.default_rng([11, i])
        img = 0.2 + 0.05 * rng.standard_normal((SIZE, SIZE))
        masks = {}
        yy, xx = np.mgrid[:SIZE, :SIZE]
        for f, (c0, c1) in BANDS.items():
            present = rng.random() < 0.5
            cy, cx = rng.integers(8, SIZE - 4), rng.integers(c0 + 3, c1 - 3)
            masks[f] = (np.hypot(yy - cy, xx - cx) <= 2.5) & present
            img[masks[f]] = 0.9
        if rng.random() < 0.5:
            img[:3, -3:] = 0.9  # the marker, never on a lesion (lesion rows start at 5)
        return np.clip(img, 0, 1).astype(np.float32), masks

    def describe(self, i: int) -> dict:
        _, masks = self._draw(i)
        has = bool(masks[self.finding].any())
        return {"id": f"w{i:03d}", "label": int(has), "has_lesion": has}

    def load(self, i: int) -> Sample:
        img, masks = self._draw(i)
        m = masks[self.finding]
        return Sample(id=f"w{i:03d}", image=torch.from_numpy(img)[None], label=int(m.any()), mask=m)

    def order(self) -> list[int]:
        return list(range(self.n))


class BandNet(nn.Module):
    """Logit of finding k: the bright area (x > 0.5) in its band; ``Ignored``'s reads the corner marker."""

    def __init__(self):
        super().__init__()
        self.bright = nn.Conv2d(1, 1, 1)  # x - 0.5: a layer the randomization baseline can re-initialise
        with torch.no_grad():
            self.bright.weight.fill_(1.0)
            self.bright.bias.fill_(-0.5)
        self.scale = 4.0
        regions = torch.zeros(3, SIZE, SIZE)
        regions[0, :, 0:10] = 1
        regions[1, :, 11:21] = 1
        regions[2, :3, -3:] = 1  # Ignored: the marker's corner, not its band
        self.register_buffer("regions", regions)

    def forward(self, x):
        bright = torch.relu(self.bright(x[:, :1]))  # (B, 1, H, W)
        return self.scale * (bright * self.regions[None]).sum(dim=(2, 3)) - 1.0


def band_model(names=("Top", "Bottom", "Ignored")) -> AuditModel:
    info = ModelInfo(spec="test:bandnet", arch="bandnet", num_classes=3, input_size=(SIZE, SIZE), in_channels=1,
                     mean=(0.0,), std=(1.0,), output="sigmoid", class_names=tuple(names) if names else None)
    return AuditModel(BandNet(), info).eval()


@pytest.fixture
def world():
    spec = DatasetSpec("test-findings", "three findings in bands", "tests.test_findings:FindingsWorld",
                       needs_root=False, finding=True)
    DATASETS._ready()
    dict.__setitem__(DATASETS, spec.name, spec)  # registered for this test only (register() is for good)
    yield spec
    dict.__delitem__(DATASETS, spec.name)


def _audit(findings, names=("Top", "Bottom", "Ignored"), cache=None, **kw):
    from saliency_audit.engine.audit import Audit

    cfg = AuditConfig(n_images=16, sequential=False, cache_dir=str(cache) if cache else None)
    audit = Audit(model="test", dataset="test-findings", methods=["grad"], config=cfg, findings=findings, **kw)
    audit.models["primary"] = band_model(names)
    return audit


def test_subjects_name_each_method_and_finding():
    assert finding_id("Pleural Effusion") == "Pleural_Effusion" and finding_id("a/b [c]") == "a_b_c"
    assert subject("gradcam", "Pleural Effusion") == "gradcam-Pleural_Effusion" and subject("grad") == "grad"
    methods, findings = ("gradcam", "guided_gradcam", "grad"), ("Pleural Effusion", "Nodule")
    assert split("guided_gradcam-Nodule", methods, findings) == ("guided_gradcam", "Nodule")
    assert split("gradcam-Pleural_Effusion", methods, findings) == ("gradcam", "Pleural Effusion")
    assert canonical("Infiltrate") == canonical("infiltration") and canonical("pleural_effusion") == "pleural effusion"


def test_each_finding_is_audited_against_its_own_masks_and_output(world):
    audit = _audit("all")
    assert audit.findings == ("Top", "Bottom", "Ignored")
    assert audit.subjects() == ("grad-Top", "grad-Bottom", "grad-Ignored")
    top, bottom = audit.utility("grad-Top"), audit.utility("grad", finding="Bottom")
    ignored = audit.utility("grad-Ignored")
    assert (top.finding, bottom.finding, ignored.finding) == ("Top", "Bottom", "Ignored")
    assert top.passed and bottom.passed, (top.explain(), bottom.explain())
    assert top.details["mean_ap"] > 0.9 and bottom.details["mean_ap"] > 0.9
    # the output that reads a marker, not its lesion, fails utility for that finding
    assert ignored.verdict == "fail" and ignored.details["mean_ap"] < 0.3, ignored.explain()
    assert "utility[grad-Ignored] FAIL" in ignored.explain()
    # each view explained its own output on its own positives
    assert [audit.view(f).config.target_class for f in ("Top", "Bottom", "Ignored")] == [0, 1, 2]
    ids = {f: {p["id"] for p in r.per_image} for f, r in (("Top", top), ("Bottom", bottom))}
    assert ids["Top"] != ids["Bottom"]
    ev = audit.evidence(finished=True)
    assert [(r["criterion"], r["method"], r["finding"]) for r in ev["results"]] == [  # sorted by finding name
        ("utility", "grad", "Bottom"), ("utility", "grad", "Ignored"), ("utility", "grad", "Top")]
    assert ev["config"]["findings_audited"] == ["Top", "Bottom", "Ignored"]
    assert set(ev["dataset"]["findings"]) == {"Top", "Bottom", "Ignored"}
    assert set(ev["diagnosis"]["findings"]) == set() or isinstance(ev["diagnosis"]["findings"], dict)
    some = next(iter(ev["samples"].values()))
    assert some["truth"] is None and set(some["truths"]) <= {"Top", "Bottom", "Ignored"}


def test_a_finding_scored_against_another_findings_masks_would_fail(world):
    """The control for the previous test: the outputs are swapped by name, so Top's maps meet Bottom's masks."""
    audit = _audit("Top", names=("Bottom", "Top", "Ignored"))
    r = audit.utility("grad-Top")
    assert r.verdict == "fail" and r.details["mean_ap"] < 0.3


def test_findings_are_chosen_by_name_with_one_line_errors(world):
    assert _audit("top, BOTTOM").findings == ("Top", "Bottom")
    with pytest.raises(AuditUsageError, match=r"--finding=Nodule: not a finding of --dataset=test-findings "
                                              r"\(it has Top, Bottom, Ignored\)"):
        _audit("Nodule").findings
    audit = _audit("Top,Bottom", names=None)  # outputs not named: which is which cannot be guessed
    with pytest.raises(AuditUsageError, match="does not name its 3 outputs; give --class-names"):
        audit.utility("grad-Top")
    audit = _audit("Top", names=("Bottom", "x", "Ignored"))
    with pytest.raises(AuditUsageError, match=r"--finding=Top: the model test:bandnet has no output of that name"):
        audit.utility("grad-Top")
    audit = _audit("Top,Bottom")
    with pytest.raises(AuditUsageError, match="name the finding"):
        audit.utility("grad")
    # all: only the findings the model has an output for, the others recorded
    audit = _audit("all", names=("Top", "Bottom", "Other"))
    assert audit.findings == ("Top", "Bottom")
    assert audit.findings_left_out == [{"finding": "Ignored", "reason": "the model has no output of that name"}]


def test_a_single_label_run_keeps_its_evidence(world):
    from saliency_audit.engine.audit import Audit

    audit = Audit(model="demo", methods=["grad"], config=AuditConfig(n_images=8, sequential=False))
    assert audit.findings == () and audit.subjects() == ("grad",)
    from saliency_audit.criteria.result import CriterionResult

    d = CriterionResult("utility", "grad", "pass").to_dict()
    assert "finding" not in d


def test_the_report_and_plan_carry_the_finding_axis(world, tmp_path):
    import re

    from saliency_audit.report.html import render

    audit = _audit("Top,Ignored", cache=tmp_path)  # a cold map cache: the plan counts every map
    plan = audit.make_plan([("utility", "grad-Top"), ("utility", "grad-Ignored")])
    assert plan["findings"] == ["Top", "Ignored"] and plan["pairs"] == 2
    assert set(plan["per_pair"]) == {"utility[grad-Top]", "utility[grad-Ignored]"}
    assert plan["image_passes"] == sum(plan["per_pair"].values()) > 0
    audit.utility("grad-Top"), audit.utility("grad-Ignored")
    evidence = audit.evidence(finished=True)
    from saliency_audit.evidence.schema import problems

    assert problems(evidence) == []  # the schema knows a result's finding
    page = render(evidence)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "every anchor once"
    assert {"finding-Top", "finding-Ignored", "finding-Top-utility", "finding-Ignored-utility",
            "finding-Top-verdict-matrix"} <= set(ids)
    assert 'href="#finding-Ignored-utility"' in page and "Verdicts per finding" in page
    assert "each of its findings <b>Top</b>, <b>Ignored</b> against its own ground truth" in page
    top = page.index('id="finding-Top"')
    assert page.index('id="finding-Ignored"') > top  # as audited


def test_parts_of_a_run_per_finding_merge_and_compare_by_finding(world):
    import copy

    from saliency_audit.decisions.comparison import compare
    from saliency_audit.evidence.merge import merge_evidence

    audit = _audit("Top,Bottom")
    audit.utility("grad-Top"), audit.utility("grad-Bottom")
    ev = audit.evidence(finished=True)
    parts = []
    for f in ("Top", "Bottom"):  # as two xdist workers would write it: each saw one finding
        part = copy.deepcopy(ev)
        part["results"] = [r for r in ev["results"] if r["finding"] == f]
        part["dataset"]["findings"] = {f: ev["dataset"]["findings"][f]}
        part["samples"] = {sid: {**e, "truths": {f: e["truths"][f]}} for sid, e in ev["samples"].items()
                           if f in e["truths"]}
        parts.append(part)
    merged = merge_evidence(parts)
    assert [(r["method"], r["finding"]) for r in merged["results"]] == [("grad", "Bottom"), ("grad", "Top")]
    assert set(merged["dataset"]["findings"]) == {"Top", "Bottom"}
    both = [sid for sid, e in ev["samples"].items() if set(e["truths"]) == {"Top", "Bottom"}]
    assert both and all(set(merged["samples"][sid]["truths"]) == {"Top", "Bottom"} for sid in both)
    # against itself: one row per (method, finding), never one finding's verdict paired with another's
    cmp = compare(ev, merged)
    assert sorted((r["method"], r["finding"]) for r in cmp["rows"]) == [("grad", "Bottom"), ("grad", "Top")]
    assert all(r["delta"] == 0 for r in cmp["rows"])


def band_net(num_classes: int = 3) -> nn.Module:
    """``--model=tests.test_findings:band_net:PATH``: the BandNet as a user's factory."""
    return BandNet()


def test_audit_tests_run_per_method_and_finding(world, pytester, tmp_path):
    ckpt = tmp_path / "band.pt"
    torch.save(BandNet().state_dict(), ckpt)
    result = pytester.runpytest(
        "--saliency-audit", "-k", "utility", "-v", "-p", "no:cacheprovider",
        f"--saliency-model=tests.test_findings:band_net:{ckpt}", "--saliency-dataset=test-findings",
        "--saliency-finding=all", "--saliency-class-names=Top,Bottom,Ignored", "--saliency-output=sigmoid",
        "--saliency-methods=grad", "--saliency-input-size=32", "--saliency-normalize=none",
        "--saliency-n-images=16", "--saliency-no-sequential", f"--saliency-report={tmp_path / 'rep'}")
    result.stdout.fnmatch_lines(["*test_utility[[]grad-Top[]] PASSED*", "*test_utility[[]grad-Bottom[]] PASSED*",
                                 "*test_utility[[]grad-Ignored[]] FAILED*"])
    result.assert_outcomes(passed=2, failed=1)
    ev = json.loads((tmp_path / "rep" / "evidence.json").read_text())
    assert [(r["method"], r["finding"], r["verdict"]) for r in ev["results"]] == [
        ("grad", "Bottom", "pass"), ("grad", "Ignored", "fail"), ("grad", "Top", "pass")]
    primary = next(m for m in ev["models"] if m["role"] == "primary")
    assert primary["output"] == "sigmoid" and primary["class_names"] == ["Top", "Bottom", "Ignored"]
    # the accuracy of each finding's view is that output's AUROC against that finding's labels
    assert ev["dataset"]["findings"]["Top"]["primary_accuracy"]["output_index"] == 0
    assert ev["dataset"]["findings"]["Ignored"]["primary_accuracy"]["output_index"] == 2


def test_a_family_gate_decides_every_finding_s_verdicts_together(world):
    from saliency_audit.config import StatsParams

    audit = _audit("Top,Ignored")
    audit.config.stats = StatsParams(multiplicity="holm")  # before any view: each copies the run's config
    family = audit.decide_family([("utility", "grad-Top"), ("utility", "grad-Ignored")])
    assert family["m"] == 2 and family["method"] == "holm"
    top = audit.utility("grad-Top")  # the family's decided result, handed to the test that asks
    assert top.finding == "Top" and top.details["multiplicity"]["m"] == 2
    assert audit.view("Top").config.stats.multiplicity == "holm"


def test_each_finding_s_warnings_and_the_resize_notice_reach_the_terminal_and_report_list():
    """collect() feeds the terminal's warning lines and the report's box: a finding's own near-chance output, the
    findings left out and images resized unasked are said there, not only in the evidence."""
    from saliency_audit.report.warnings import collect

    weak = {"n": 40, "labels": {"0": 20, "1": 20}, "output": "sigmoid", "output_index": 2, "output_name": "Ignored",
            "auroc": 0.52, "accuracy": 0.5, "balanced_accuracy": 0.5, "predicted": {"0": 40}}
    ev = {"results": [], "dataset": {"name": "x", "findings_left_out": [{"finding": "Other", "reason": "no output"}],
                                     "findings": {"Top": {"resized_unasked": {"native_size": [64, 64],
                                                                              "audited_at": [224, 224]}},
                                                  "Ignored": {"primary_accuracy": weak}}}}
    said = collect(ev)
    assert any(w.startswith("Ignored: the audited model's AUROC of") for w in said), said
    assert any(w.startswith("Top: the images are 64x64 natively and were audited at 224x224") for w in said)
    assert any("1 finding(s) of the dataset not audited (Other: no output)" in w for w in said)
