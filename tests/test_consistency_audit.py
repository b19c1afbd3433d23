"""Repeatability / reproducibility on the demo: identical models agree, a randomized one does not."""
import copy

import pytest

from saliency_audit import Audit, AuditConfig

pytestmark = pytest.mark.slow


def _audit(tmp_path, **kw):
    cfg = AuditConfig()
    cfg.consistency.n_images = 8
    cfg.cache_dir = str(tmp_path / "maps")
    return Audit(model="demo", config=cfg, **kw)


def test_two_copies_of_the_same_model_agree_perfectly(tmp_path):
    audit = _audit(tmp_path, replicates=["demo", "demo"])
    r = audit.repeatability("sg")  # stochastic: common random numbers make the two maps identical
    assert r.passed, r.explain()
    assert r.value == pytest.approx(1.0) and r.bound == pytest.approx(1.0)
    assert [p["prediction_agreement"] for p in r.curve] == [1.0, 1.0]
    assert len(r.curve) == 2 and len(r.curve[0]["per_image"]) == 8


def test_a_randomized_replicate_fails(tmp_path):
    audit = _audit(tmp_path, replicates=["randomized copy"])
    audit.models["replicate0"] = audit.models.stage(None)  # a "replicate" with untrained weights
    r = audit.repeatability("gradcam")
    assert r.verdict == "fail", r.explain()
    assert r.value < 0.5


def test_models_with_different_input_sizes_share_one_grid(tmp_path):
    audit = _audit(tmp_path, references=["same weights at 96 px"])
    other = copy.deepcopy(audit.model("primary"))
    other.info = copy.deepcopy(other.info)
    other.info.input_size = (96, 96)
    other.info.role = "reference"
    audit.models["reference0"] = other
    r = audit.reproducibility("gradcam")
    assert r.details["grid"].startswith("each image's ground-truth grid")
    assert r.n == 8 and 0.5 < r.value < 1.0  # same weights, coarser input: similar, not identical


def test_demo_defaults_and_skip(tmp_path):
    audit = _audit(tmp_path)
    assert audit.models.replicate_specs == ["demo:replicate1", "demo:replicate2"]
    assert audit.models.reference_specs == ["demo:other-arch"]
    plain = Audit(model="resnet18:/never/loaded.pt", config=AuditConfig())
    assert plain.repeatability("grad").verdict == "skipped"
    strict = Audit(model="resnet18:/never/loaded.pt", config=AuditConfig(), strict=True)
    r = strict.reproducibility("grad")
    assert r.verdict == "fail" and "--audit-strict" in r.explanation and "--reference-model" in r.explanation


def test_prediction_logits_are_computed_once_per_model_and_image_and_cached(tmp_path):
    """Prediction agreement reads each image's logits once per model (the primary's serve every compared model
    and criterion) and a later run reads them from the cache: no prediction pass when warm."""
    import torch

    from saliency_audit.common.passcount import PASSES

    audit = _audit(tmp_path)  # the demo's replicates: other training seeds
    primary, samples, other = audit.model("primary"), audit.samples.first(8), audit.model("replicate0")
    from saliency_audit.models.target import output_of, predicted_class

    def uncached(model):  # ModelSet's own passes (accuracy's), decided the same way
        return predicted_class(audit.models._logits(model, samples), output_of(model)).tolist()

    before = PASSES["images"]
    assert audit.context.predictions(primary, samples) == uncached(primary)
    assert PASSES["images"] - before == 2 * len(samples)  # the store's pass, then ModelSet's
    before = PASSES["images"]
    agreement = audit.context.prediction_agreement(primary, other, samples)
    assert PASSES["images"] - before == len(samples)  # the replicate's only: the primary's logits are kept
    assert agreement == sum(a == b for a, b in zip(uncached(primary), uncached(other))) / len(samples)
    later = _audit(tmp_path)
    before = PASSES["images"]
    cached = later.store.logits(later.model("primary"), samples + samples[:2])
    assert PASSES["images"] == before
    assert torch.equal(cached, torch.cat([audit.models._logits(primary, samples), audit.models._logits(primary, samples[:2])]))
