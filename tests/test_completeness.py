"""ROAD completeness on a model built to depend on known pixels, the lesion reliance and the diagnosis."""
import numpy as np
import pytest
import torch
from torch import nn

from saliency_audit.config import AuditConfig
from saliency_audit.criteria.completeness import evaluate, reference_scores, road_score
from saliency_audit.criteria.context import Context
from saliency_audit.criteria.diagnosis import classify, diagnose
from saliency_audit.data.sample import Sample
from saliency_audit.data.samplesets import Localisation
from saliency_audit.engine.maps import MapStore
from saliency_audit.models.info import ModelInfo
from saliency_audit.models.wrapper import AuditModel
from saliency_audit.engine.passes import Passes

SIZE = 32
REGION = (slice(8, 24), slice(4, 20))  # the 16 x 16 pixels the model reads


class RegionReader(nn.Module):
    """logit(class 1) = 12 * (mean of the region - 0.5): a fixed linear read-out of known pixels."""

    def forward(self, x):
        z = 12.0 * (x[:, :, REGION[0], REGION[1]].mean(dim=(1, 2, 3)) - 0.5)
        return torch.stack([torch.zeros_like(z), z], dim=1)


def _model():
    info = ModelInfo(spec="region-reader", arch="test", input_size=(SIZE, SIZE), in_channels=1, mean=(0.0,),
                     std=(1.0,))
    m = AuditModel(RegionReader(), info)
    m.register_parameter("anchor", nn.Parameter(torch.zeros(1)))  # passes read the device from a parameter
    return m.eval()


def _samples(n=16, seed=0):
    rng = np.random.default_rng(seed)
    region = np.zeros((SIZE, SIZE), bool)
    region[REGION] = True
    out = []
    for i in range(n):
        img = 0.4 + 0.1 * rng.standard_normal((SIZE, SIZE))
        img[region] += 0.45
        out.append(Sample(f"s{i}", torch.from_numpy(np.clip(img, 0, 1)).float()[None], 1, mask=region.copy()))
    return out, region


def _passes(cfg=None):
    cfg = cfg or AuditConfig()
    return Passes(cfg, MapStore(cfg, None)), cfg


def test_an_oracle_map_beats_a_random_order_and_a_reversed_map_loses():
    samples, region = _samples()
    model = _model()
    P, cfg = _passes()
    oracle = np.stack([region.astype(np.float32)] * len(samples))
    o = road_score(P.road(model, samples, oracle))
    r = road_score(P.road(model, samples, np.zeros_like(oracle), seeds=P.random_seeds(samples)))
    rev = road_score(P.road(model, samples, 1.0 - oracle))
    assert o.mean() > r.mean() + 0.15, (o.mean(), r.mean())
    assert rev.mean() < r.mean() - 0.1, (rev.mean(), r.mean())
    ref = {"random": r, "reliance": {"lesion_road": float(o.mean()), "value": 0.0, "bound": 0.0},
           "random_deletion_auc": 0.5, "random_insertion_auc": 0.5}
    curves = P.curves(model, samples, oracle)
    kw = dict(ids=[s.id for s in samples], scores={"randomized": r, "blurred": r}, curves=curves, ref=ref,
              constant=np.zeros(len(samples), bool), config=cfg)
    good = evaluate("oracle", road=P.road(model, samples, oracle), **kw)
    assert good.passed and good.bound > 0, good.explain()
    bad = evaluate("reversed", road=P.road(model, samples, 1.0 - oracle), **kw)
    assert bad.verdict == "fail" and bad.value < 0, bad.explain()
    # deletion of the region first drops the probability faster than inserting it raises it from blur
    assert curves["deletion_auc"].mean() < curves["insertion_auc"].mean()


def test_scores_do_not_depend_on_batching_or_on_other_images():
    samples, region = _samples(6)
    maps = np.random.default_rng(1).random((6, SIZE, SIZE)).astype(np.float32)
    maps[:, :, :10] = 0  # ties
    P, _ = _passes()
    whole = P.road(_model(), samples, maps)
    small_cfg = AuditConfig()
    small_cfg.pass_batch = 1
    P1, _ = _passes(small_cfg)
    part = P1.road(_model(), samples[2:5], maps[2:5])
    np.testing.assert_allclose(part["morf"], whole["morf"][2:5], atol=1e-6)
    np.testing.assert_allclose(part["lerf"], whole["lerf"][2:5], atol=1e-6)


def _context(cfg):
    store = MapStore(cfg, None)
    return Context(cfg, None, None, store, lambda: Passes(cfg, store))


def test_lesion_reliance_says_whether_the_model_uses_the_lesion():
    samples, region = _samples()
    cfg = AuditConfig()
    model = _model()
    truths = [region] * len(samples)
    used = reference_scores(_context(cfg), model, Localisation(list(range(16)), samples, truths, truths, "held-out", 1))
    assert used["reliance"]["uses_lesion"] and used["reliance"]["value"] > 0.15, used["reliance"]
    elsewhere = np.zeros_like(region)
    elsewhere[24:30, 24:30] = True  # a "lesion" the model never reads
    moved = [Sample(s.id, s.image, 1, mask=elsewhere) for s in samples]
    truths = [elsewhere] * len(samples)
    unused = reference_scores(_context(cfg), model, Localisation(list(range(16)), moved, truths, truths, "held-out", 1))
    assert not unused["reliance"]["uses_lesion"], unused["reliance"]
    assert abs(unused["reliance"]["value"]) < 0.05


@pytest.mark.parametrize("faithful,localises,uses,expected", [
    (True, True, True, "faithful-localises"),
    (True, False, True, "faithful-coarse"),
    (True, False, False, "model-looks-elsewhere"),
    (True, True, False, "localises-unused"),
    (False, True, True, "not-faithful"),
    (False, False, False, "not-faithful"),
    (True, None, True, "faithful"),
])
def test_the_diagnosis_table(faithful, localises, uses, expected):
    assert classify(faithful, localises, uses) == expected


def test_diagnose_reads_results_and_ignores_undecided_ones():
    reliance = {"value": 0.2, "ci": [0.1, 0.3], "bound": 0.1, "n": 10, "uses_lesion": True, "lesion_road": 0.3,
                "random_road": 0.1}
    results = [
        {"criterion": "completeness", "method": "gradcam", "verdict": "pass", "bound": 0.1,
         "details": {"lesion_reliance": reliance, "map_notes": {"cam_layer": {"resolution": [4, 4]}}}},
        {"criterion": "utility", "method": "gradcam", "verdict": "fail", "bound": -0.1},
        {"criterion": "completeness", "method": "grad", "verdict": "error"},
        {"criterion": "completeness", "method": "edge", "verdict": "fail", "bound": -0.01,
         "details": {"lesion_reliance": reliance}},
    ]
    d = diagnose(results)
    assert d["lesion_reliance"]["uses_lesion"] is True
    assert d["methods"]["gradcam"]["diagnosis"] == "faithful-coarse"
    assert d["methods"]["gradcam"]["cam_resolution"] == [4, 4]
    assert d["methods"]["edge"]["diagnosis"] == "not-faithful"
    assert "grad" not in d["methods"]


def test_a_method_the_gate_fails_elsewhere_is_never_called_usable():
    """One story with the gate: faithful and localising, but failing randomization, is not 'usable'."""
    from saliency_audit.report.faithfulness import diagnosis_section

    reliance = {"value": 0.2, "ci": [0.1, 0.3], "bound": 0.1, "n": 10, "uses_lesion": True, "lesion_road": 0.3,
                "random_road": 0.1}
    results = [{"criterion": c, "method": m, "verdict": v, "bound": 0.1, "details": {"lesion_reliance": reliance}}
               for c, m, v in (("completeness", "gradcam", "pass"), ("utility", "gradcam", "pass"),
                               ("randomization", "gradcam", "fail"), ("energy", "gradcam", "error"),
                               ("completeness", "ig", "pass"), ("utility", "ig", "pass"),
                               ("randomization", "ig", "pass"), ("repeatability", "ig", "pass"))]
    d = diagnose(results)["methods"]
    assert d["gradcam"]["diagnosis"] == "localises-fails-gate" and d["gradcam"]["fails"] == ["randomization", "energy"]
    assert d["gradcam"]["label"] == "faithful and localises, but fails other criteria (randomization, energy)"
    assert d["ig"]["diagnosis"] == "faithful-localises" and d["ig"]["fails"] == []
    assert d["gradcam"]["rests_on"] == ["completeness", "utility", "lesion reliance"]
    page = diagnosis_section({"results": results, "diagnosis": diagnose(results), "config": {}})
    row = next(r for r in page.split("<tr>") if "<b>gradcam</b>" in r)
    assert "Usable" not in row and "Not usable as it stands" in row and "The gate fails it on randomization, energy" in row
    assert "Usable for this model" in next(r for r in page.split("<tr>") if "<b>ig</b>" in r)
