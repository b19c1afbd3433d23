"""Sanity checks on the demo: a model-blind method fails, randomization leaves the user's model alone."""
import numpy as np
import pytest
import torch

from saliency_audit import Audit, AuditConfig
from saliency_audit.methods import METHODS, MethodSpec

pytestmark = pytest.mark.slow


@pytest.fixture
def edges_method(monkeypatch):
    monkeypatch.setitem(METHODS, "edges", MethodSpec("edges", "Sobel edges (model-blind)", (), False,
                                                     fn="tests.fake_methods:edges"))
    return "edges"


def _audit(tmp_path, n=8):
    cfg = AuditConfig()
    cfg.randomization.n_images = n
    cfg.cache_dir = str(tmp_path / "maps")
    return Audit(model="demo", config=cfg)


def test_model_blind_method_fails_both_sanity_checks(tmp_path, edges_method):
    audit = _audit(tmp_path)
    r = audit.randomization(edges_method)
    assert r.verdict == "fail", r.explain()
    assert all(row["ssim"] == pytest.approx(1.0) for row in r.curve)  # the map never moved
    assert r.value == pytest.approx(0.0, abs=1e-9)
    assert r.details["noise_floor"]["ssim"] < 0.9  # yet maps of different images do differ
    lr = audit.label_randomization(edges_method)
    assert lr.verdict == "fail" and lr.value == pytest.approx(0.0, abs=1e-9)


def test_curve_has_every_stage_and_noise_floors(tmp_path):
    audit = _audit(tmp_path)
    audit.config.randomization.independent = True
    r = audit.randomization("grad")
    assert [row["stage"] for row in r.details["independent_curve"]] == [b["name"] for b in r.details["blocks"]]
    blocks = [b["name"] for b in r.details["blocks"]]
    assert len(r.curve) == len(blocks) >= 4  # head, intermediate stages, all
    assert r.curve[0]["stage"] == blocks[0] and r.curve[-1]["stage"].startswith("all")
    for row in r.curve:
        assert {"ssim", "ssim_ci", "d", "d_lower", "spearman_abs", "spearman_signed", "hog", "constant_maps"} <= set(row)
    assert set(r.details["noise_floor"]) == {"ssim", "spearman_abs", "spearman_signed", "hog"}
    assert r.curve[-1]["ssim"] < r.curve[0]["ssim"] + 0.2  # randomizing more does not bring the map back


def test_randomization_never_touches_the_users_model(tmp_path):
    audit = _audit(tmp_path, n=4)
    model = audit.model("primary")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    audit.randomization("gradcam")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_same_seed_gives_identical_numbers(tmp_path):
    a, b = _audit(tmp_path / "a", n=6), _audit(tmp_path / "b", n=6)  # two fresh caches: computed twice
    a.config.methods.sg.samples = b.config.methods.sg.samples = 5  # the seed fixes the noise at any count
    a, b = a.randomization("sg"), b.randomization("sg")
    assert a.curve == b.curve and a.value == b.value and a.ci == b.ci
    assert [p["score"] for p in a.per_image] == [p["score"] for p in b.per_image]


def test_skipped_without_a_random_label_model(tmp_path):
    cfg = AuditConfig()
    cfg.cache_dir = str(tmp_path)
    audit = Audit(model="resnet18:/nonexistent.pt", config=cfg)
    r = audit.label_randomization("grad")
    assert r.verdict == "skipped" and "--random-label-model" in r.explanation


def test_several_draws_average_independent_randomizations(tmp_path):
    audit = _audit(tmp_path, n=4)
    audit.config.randomization.draws = 2
    r = audit.randomization("gradcam")
    assert r.details["draws"] == 2
    head = r.curve[0]
    assert len(head["ssim_per_draw"]) == 2 and head["ssim_per_draw"][0] != head["ssim_per_draw"][1]
    assert head["ssim"] == pytest.approx(np.mean(head["ssim_per_draw"]), abs=1e-9)
    assert len(r.curve[-1]["ssim_per_draw"]) == 2  # the all-blocks stage, the verdict's other check, too
    assert all("ssim_per_draw" not in row for row in r.curve[1:-1])  # the stages between: one draw
    assert r.details["draws_at"] == "first and all-blocks stages"


def test_per_image_design_gives_every_image_its_own_cascade(tmp_path):
    """draw_design = per_image: image i's map at every stage comes from its own re-initialisation (the same one
    at every stage), so no draw is shared between images; draws = 2 averages two of them per image."""
    from saliency_audit.criteria.randomization import draw_index
    from saliency_audit.metrics import similarity as sim

    audit = _audit(tmp_path, n=3)
    p = audit.config.randomization
    p.draw_design, p.draws = "per_image", 2
    r = audit.randomization("gradcam")
    assert r.details["draw_design"] == "per_image"
    ctx, models = audit.context, audit.models
    samples = ctx.samples.first(3)
    nb = len(models.blocks())
    draws = {draw_index(p, s, i) for s in range(2) for i in range(3)}
    assert draws == {1, 2, 3, 4, 5, 6}  # disjoint across images, none is the shared draw 0
    ref = ctx.maps(models.get("primary"), "gradcam", samples)
    for k, row in ((1, r.curve[0]), (nb, r.curve[-1])):
        per = [[sim.ssim(ref.maps[i], ctx.maps(models.stage(k, draw_index(p, s, i)), "gradcam", [x]).maps[0])
                for i, x in enumerate(samples)] for s in range(2)]
        assert row["ssim"] == pytest.approx(float(np.mean(per)), abs=1e-6)
    seeds = {models.stage(1, d).info.extra["randomization_seed"] for d in draws}
    assert len(seeds) == len(draws)
    # the stages between use each image's first draw: its own cascade
    mid = ctx.maps(models.stage(2, draw_index(p, 0, 1)), "gradcam", [samples[1]]).maps[0]
    assert r.curve[1]["ssim"] == pytest.approx(float(np.mean(
        [sim.ssim(ref.maps[i], ctx.maps(models.stage(2, draw_index(p, 0, i)), "gradcam", [x]).maps[0])
         for i, x in enumerate(samples)])), abs=1e-6)
    assert mid.shape == ref.maps[0].shape


def test_per_image_copies_are_bounded_and_rebuilt_identically(tmp_path, monkeypatch):
    """Per-image draws make one randomized copy per image and stage: the ModelSet keeps a bounded number (the
    least recently used go) and rebuilds a dropped one with the same weights, so verdicts do not change."""
    from saliency_audit.models.modelset import ModelSet

    free = _audit(tmp_path / "free", n=4).randomization("grad")
    audit = _audit(tmp_path / "tight", n=4)
    one = sum(t.numel() * t.element_size() for t in audit.models.get("primary").net.state_dict().values())
    monkeypatch.setattr(ModelSet, "DRAW_BYTES", 3 * one)
    first = audit.models.stage(1, 1)
    fp = audit.context.store.fingerprint(first)
    tight = audit.randomization("grad")
    assert len(audit.models._draws) == 3
    assert audit.models.stage(1, 1) is not first  # dropped, rebuilt ...
    assert audit.context.store.fingerprint(audit.models.stage(1, 1)) == fp  # ... with the same weights
    assert tight.curve == free.curve and tight.bound == free.bound


def test_the_stages_between_use_the_first_curve_images(tmp_path):
    audit = _audit(tmp_path, n=6)
    audit.config.randomization.curve_images = 3
    r = audit.randomization("grad")
    assert [row["n"] for row in r.curve] == [6] + [3] * (len(r.curve) - 2) + [6]
    assert r.n == 6 and len(r.per_image) == 6
