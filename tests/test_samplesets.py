"""The average-mask prior (held-out or leave-one-out) and the criterion registry."""
from pathlib import Path

import numpy as np
import pytest

from saliency_audit import Audit, AuditConfig
from saliency_audit.config import CRITERIA as CONFIG_CRITERIA
from saliency_audit.common.criteria_registry import CRITERIA, criterion
from saliency_audit.data.base import AuditDataset
from saliency_audit.data.sample import Sample
from saliency_audit.data.samplesets import SampleSets, leave_one_out
from saliency_audit.common.errors import AuditUsageError

pytest_plugins = ["pytester"]
AUDITS = Path(__file__).resolve().parents[1] / "audits"


class Tiny(AuditDataset):
    """``n`` images, all with a lesion in a different row band (so priors differ visibly)."""

    name = "tiny"

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def load(self, i):
        import torch

        mask = np.zeros((16, 16), bool)
        mask[i % 16, :] = True
        return Sample(f"t{i}", torch.zeros(1, 16, 16), 1, mask=mask)


def _sets(n_data, n_audit, prior="auto", prior_images=200):
    cfg = AuditConfig()
    cfg.n_images = n_audit
    cfg.utility.prior, cfg.utility.prior_images = prior, prior_images
    ds = Tiny(n_data)
    return SampleSets(cfg, lambda: ds, lambda: (16, 16), name="tiny")


def test_leave_one_out_never_contains_the_image_itself():
    truths = [np.eye(4, dtype=bool)[i][None].repeat(4, 0) for i in range(4)]  # column i
    priors = leave_one_out(truths)
    for i, (t, p) in enumerate(zip(truths, priors)):
        assert p[t].max() == 0.0  # nothing of its own mask
        assert p.sum() == pytest.approx(4.0)  # the mean of three 4-pixel masks
    assert np.allclose(np.mean(priors, axis=0), np.mean(truths, axis=0))


def test_auditing_every_positive_uses_leave_one_out():
    loc = _sets(6, 6).localisation()
    assert loc.prior_kind == "leave-one-out" and loc.prior_n == 5
    assert all(p[t].max() == 0 for p, t in zip(loc.priors, loc.truths))


def test_held_out_when_it_has_more_masks_and_loo_otherwise():
    assert _sets(40, 6).localisation().prior_kind == "held-out"  # 34 outside vs 5
    loc = _sets(9, 6).localisation()  # 3 outside vs 5
    assert (loc.prior_kind, loc.prior_n) == ("leave-one-out", 5)
    loc = _sets(9, 6, prior="held-out").localisation()
    assert (loc.prior_kind, loc.prior_n) == ("held-out", 3)
    with pytest.raises(AuditUsageError, match="held-out"):
        _sets(6, 6, prior="held-out").localisation()


def test_every_registered_criterion_has_a_test_a_config_name_and_an_entry_point():
    assert CONFIG_CRITERIA == ("utility", "randomization", "label_randomization", "repeatability", "reproducibility",
                               "completeness", "energy", "focus", "pointing",
                               "human_benchmark")  # the contract's names and order
    from saliency_audit.common.paths import suite_sources as sources

    tests = "".join(sources().values())  # the bundled suite (audits/ imports it)
    for name, spec in CRITERIA.items():
        assert callable(spec.function())
        assert f"def test_{name}(audit, method)" in tests
        assert hasattr(Audit, name)  # the thin alias of Audit.run
    with pytest.raises(AuditUsageError, match="unknown criterion 'nope'"):
        criterion("nope")


def test_audit_run_rejects_unknown_criteria_and_methods():
    audit = Audit(model="demo")
    with pytest.raises(AuditUsageError, match="unknown criterion"):
        audit.run("nope", "grad")
    with pytest.raises(AuditUsageError, match="unknown saliency method"):
        audit.run("energy", "nope")


@pytest.mark.slow
def test_siim_layout_with_six_positives_audits_all_of_them(pytester, tmp_path):
    """The user's command on a SIIM-layout dataset whose 6 positives are all audited: a verdict, not an error."""
    import json
    import shutil

    from saliency_audit.data.demo import DemoDataset
    from saliency_audit.demo.export import export_demo

    flags = DemoDataset()
    n = next(k for k in range(1, 100) if sum(flags.describe(i)["has_lesion"] for i in range(k)) == 6)
    root = export_demo("siim", tmp_path / "siim", n=n)
    shutil.copy(AUDITS / "test_utility.py", pytester.path / "test_utility.py")
    shutil.copy(AUDITS / "test_interpretability.py", pytester.path / "test_interpretability.py")
    result = pytester.runpytest("--dataset=siim", f"--data-root={root}", "--model=demo", "--methods=gradcam",
                                "--n-images=6", "-k", "utility or energy", "--audit-report=rep",
                                "-p", "no:cacheprovider")
    ev = json.loads((pytester.path / "rep" / "evidence.json").read_text())
    by = {r["criterion"]: r for r in ev["results"]}
    assert set(by) == {"utility", "energy"}
    for r in by.values():
        assert r["verdict"] in ("pass", "fail") and r["n"] == 6, r["explanation"]
        assert r["baseline"]["kind"] == "leave-one-out" and r["baseline"]["n_masks"] == 5
    assert ev["dataset"]["prior"] == "leave-one-out" and ev["dataset"]["n_localisation"] == 6
    assert result.ret in (0, 1)  # a gate outcome, not a usage or internal error


def test_images_resized_to_a_default_input_size_are_said_once_and_recorded(monkeypatch):
    """A 64-px dataset audited at a model's default 128 px, no --input-size: one line, and the evidence says so."""
    import torch

    from saliency_audit.common import progress
    from saliency_audit.config import AuditConfig
    from saliency_audit.data.resize import resize_sample
    from saliency_audit.data.sample import Sample
    from saliency_audit.data.samplesets import SampleSets

    class Small:
        def select(self, n, size, lesion=False):
            return list(range(n)), [resize_sample(Sample(f"s{i}", torch.zeros(1, 64, 64), 0), size) for i in range(n)]

    monkeypatch.delenv("SALIENCY_AUDIT_PROGRESS", raising=False)
    said: list[str] = []
    progress.configure(enabled=True, write=said.append)
    try:
        sets = SampleSets(AuditConfig(), Small, lambda: (128, 128), name="small")
        sets.select(4, lesion=False)
        sets.select(6, lesion=True)
        asked = AuditConfig()
        asked.model.input_size = [128, 128]
        SampleSets(asked, Small, lambda: (128, 128), name="small").select(4, lesion=False)  # --input-size: silent
    finally:
        progress.configure()
    assert len(said) == 1 and "the images are 64x64 (4 of 4); they are audited at 128x128" in said[0]
    assert "give --input-size" in said[0]
    assert sets.describe()["resized_unasked"] == {"native_size": [64, 64], "images": 4, "of": 4,
                                                   "audited_at": [128, 128]}
    said.clear()
    progress.configure(enabled=True, write=said.append)
    try:  # the size read from the checkpoint (models/loading.py trained_size): said as such
        read = SampleSets(AuditConfig(), Small, lambda: (128, 128), name="small",
                          size_source=lambda: "the checkpoint's 'image_size'")
        read.select(4, lesion=False)
    finally:
        progress.configure()
    assert "audited at 128x128, the training size the checkpoint's 'image_size' records" in said[0]
    assert read.describe()["resized_unasked"]["size_from"] == "the checkpoint's 'image_size'"
