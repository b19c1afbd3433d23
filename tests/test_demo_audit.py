"""End to end on the demo world: the audit's verdicts on models whose truth we know.

They audit the shipped demo models end to end (maps cached in the test session's own cache, tests/conftest.py),
so they are the slow part of the suite.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from saliency_audit import Audit, AuditConfig

pytestmark = pytest.mark.slow
pytest_plugins = ["pytester"]
AUDITS = Path(__file__).resolve().parents[1] / "audits"


def _config(tmp_path, n=24):
    cfg = AuditConfig(sequential=False)  # fixed n: these tests compare per-image numbers of all n images
    cfg.n_images = n
    cfg.cache_dir = str(tmp_path / "maps")  # fresh maps; demo models come from the shared cache
    return cfg


def test_demo_audit_via_pytest_gates_on_verdicts(pytester):
    shutil.copy(AUDITS / "test_utility.py", pytester.path / "test_utility.py")
    result = pytester.runpytest("--methods=gradcam,sg", "--n-images=24", "--no-sequential", "--audit-report=rep",
                                "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*saliency-audit verdicts*", "*utility*gradcam*PASS*"])
    ev = json.loads((pytester.path / "rep" / "evidence.json").read_text())
    by_method = {r["method"]: r for r in ev["results"]}
    assert set(by_method) == {"gradcam", "sg", "edge", "random", "oracle"}  # the demo runs its controls
    assert ev["controls"]["met"] == ev["controls"]["gated"] == 3
    for r in (by_method["gradcam"], by_method["sg"]):
        assert r["criterion"] == "utility" and r["n"] == 24 and len(r["per_image"]) == 24  # fixed n: all 24
        assert "sequential" not in r["details"] and ev["config"]["sequential"] is False
        assert r["ci"][0] is not None and r["baseline"]["name"] == "average-mask prior"
        assert [b["name"] for b in r["baselines"]] == ["average-mask prior", "randomized model"]
    assert by_method["gradcam"]["verdict"] == "pass"
    gradcam = by_method["gradcam"]
    assert gradcam["details"]["mean_ap"] > gradcam["baselines"][1]["value"]  # trained beats untrained
    assert by_method["gradcam"]["details"]["map_notes"]["cam_layer"]["resolution"] == [16, 16]
    roles = {m["role"] for m in ev["models"]}
    assert roles == {"primary", "randomized"}
    assert ev["dataset"]["manifest_sha256"] and ev["dataset"]["n_images"] == 24
    # exit status is the gate: 0 only when every audited method passes
    failed = sum(r["verdict"] != "pass" for r in ev["results"] if "control" not in r["details"])
    assert (result.ret == 0) == (failed == 0)


def test_shortcut_model_fails_utility_for_grad_and_gradcam(tmp_path):
    audit = Audit(model="demo:shortcut", config=_config(tmp_path))
    for method in ("grad", "gradcam"):
        r = audit.utility(method)
        assert r.verdict == "fail", r.explain()


def _sg_config(tmp_path):
    cfg = _config(tmp_path, n=8)
    cfg.methods.sg.samples = 5  # SmoothGrad's noise is what the seed fixes, at any number of samples
    return cfg


def test_same_seed_same_numbers(tmp_path):
    a = Audit(model="demo", config=_sg_config(tmp_path / "a")).utility("sg")  # two fresh caches: computed twice
    b = Audit(model="demo", config=_sg_config(tmp_path / "b")).utility("sg")
    assert a.value == b.value and a.ci == b.ci
    assert [p["score"] for p in a.per_image] == [p["score"] for p in b.per_image]
    c = Audit(model="demo", config=_sg_config(tmp_path / "c"))
    c.config.seed = 1
    other = c.utility("sg")
    assert not np.allclose([p["score"] for p in a.per_image], [p["score"] for p in other.per_image])


def test_folder_dataset_audit_end_to_end(tmp_path):
    """The demo's images written as a plain folder dataset audit like the demo itself."""
    from PIL import Image

    from saliency_audit.demo import render_sample

    root = tmp_path / "folder"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(40):
        d = render_sample("test", i, 0, lesion=i % 4 != 3, marker=False)
        Image.fromarray((d.image * 255).round().astype(np.uint8)).save(root / "images" / f"cxr{i:03d}.png")
        Image.fromarray(d.mask.astype(np.uint8) * 255).save(root / "masks" / f"cxr{i:03d}.png")
    cfg = _config(tmp_path, n=16)
    cfg.utility.prior_images = 14
    cfg.utility.prior = "held-out"  # 14 outside masks; auto would take leave-one-out (15)
    audit = Audit(model="demo", dataset="folder", data_root=str(root), config=cfg)
    r = audit.utility("gradcam")
    assert r.passed, r.explain()
    assert r.n == 16 and r.baselines[0]["n_masks"] == 14
    ev = audit.evidence()
    assert ev["dataset"]["name"] == "folder" and ev["dataset"]["n_images"] == 16
