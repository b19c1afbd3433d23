"""What is explained (--target-class N | predicted) and the model input spec (--input-size, --normalize)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from saliency_audit import Audit, AuditConfig
from saliency_audit.data.resize import prepare
from saliency_audit.engine.maps import MapStore

pytest_plugins = ["pytester"]
AUDITS = Path(__file__).resolve().parents[1] / "audits"


def _config(tmp_path, **kw):
    cfg = AuditConfig()
    cfg.cache_dir = str(tmp_path / "maps")
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_predicted_class_maps_equal_the_fixed_class_maps_of_that_class(tmp_path):
    audit = Audit(model="demo", config=_config(tmp_path))
    _, samples = audit.samples.select(12, lesion=False)  # stratified: lesion and healthy images
    primary = audit.model("primary")
    import torch

    with torch.no_grad():
        pred = primary(prepare(samples, primary.input_size, "cpu")).argmax(1).numpy()
    assert 0 < pred.sum() < len(pred), "need both predicted classes among the samples"
    fixed = {c: MapStore(_config(tmp_path, target_class=c), None).maps(primary, "gradcam", samples).maps for c in (0, 1)}
    store = MapStore(_config(tmp_path, explain="predicted"), None)
    store.predictor = lambda: primary
    ours = store.maps(primary, "gradcam", samples).maps
    expected = np.stack([fixed[int(c)][i] for i, c in enumerate(pred)])
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    assert store.predicted([s.key() for s in samples]) == pred.tolist()
    # another model explains the *primary's* predicted class, so the maps stay comparable
    rand = audit.model("randomized")
    rand_pred = MapStore(_config(tmp_path, explain="predicted"), None)
    rand_pred.predictor = lambda: primary
    fixed_rand = {c: MapStore(_config(tmp_path, target_class=c), None).maps(rand, "grad", samples).maps for c in (0, 1)}
    np.testing.assert_allclose(rand_pred.maps(rand, "grad", samples).maps,
                               np.stack([fixed_rand[int(c)][i] for i, c in enumerate(pred)]), atol=1e-6)
    # the cache keys differ: a cached fixed-class map is never served for the predicted class
    assert store.method_params("gradcam") != MapStore(_config(tmp_path), None).method_params("gradcam")


def test_target_class_out_of_range_names_the_model(tmp_path):
    audit = Audit(model="demo", methods=["grad"], config=_config(tmp_path, target_class=3, n_images=4))
    r = audit.utility("grad")
    assert r.verdict == "error"
    assert r.explanation == "--target-class=3: out of range for the 2-class model demo"


def test_options_reach_the_models_and_the_evidence(pytester):
    shutil.copy(AUDITS / "test_utility.py", pytester.path / "test_utility.py")
    result = pytester.runpytest("--methods=gradcam", "--no-controls", "--n-images=8", "--audit-report=rep", "--input-size=96",
                                "--normalize=0.4,0.3", "--target-class=predicted", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1) if result.ret == 0 else result.assert_outcomes(failed=1)
    ev = json.loads((pytester.path / "rep" / "evidence.json").read_text())
    primary = next(m for m in ev["models"] if m["role"] == "primary")
    assert primary["input_size"] == [96, 96] and primary["mean"] == [0.4] and primary["std"] == [0.3]
    assert ev["config"]["model"] == {"input_size": [96, 96], "mean": [0.4], "std": [0.3]}
    assert ev["config"]["explain"] == "predicted" and ev["dataset"]["eval_size"] == [96, 96]
    (r,) = ev["results"]
    assert r["verdict"] in ("pass", "fail") and r["details"]["method_params"]["explain"] == "predicted"
    assert r["details"]["map_notes"]["cam_layer"]["resolution"] == [12, 12]


def test_a_model_without_a_spatial_layer_says_which_option_to_set(tmp_path, monkeypatch):
    """A ``package.module:factory`` model whose layers cannot be discovered: the error names --target-layer."""
    import torch

    (tmp_path / "flatnet.py").write_text(
        "import torch\n"
        "def build(num_classes=2):\n"
        "    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, num_classes))\n"
        "    net.input_size = (32, 32)\n"
        "    return net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    path = tmp_path / "flat.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2)).state_dict(), path)
    audit = Audit(model=f"flatnet:build:{path}", methods=["gradcam", "grad"], config=_config(tmp_path, n_images=4))
    r = audit.utility("gradcam")
    assert r.verdict == "error"
    assert "set --target-layer (or methods.gradcam.layer in the audit config)" in r.explanation
    assert audit.utility("grad").verdict in ("pass", "fail")  # the other methods still run
    assert audit.evidence()["models"][0]["arch"] == "flatnet:build"
