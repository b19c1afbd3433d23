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


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_per_image_copies_are_built_in_place_and_stage_copies_bounded(tmp_path, monkeypatch):
    """Per-image draws need one model per image and stage: the criterion builds each in place on one scratch
    network (ModelSet.deferred) and keeps none; ModelSet.stage's deep copies of draws (other callers) are kept
    up to DRAW_BYTES (the least recently used go) and rebuilt with the same weights."""
    from saliency_audit.models.modelset import ModelSet

    audit = _audit(tmp_path, n=4)
    audit.randomization("grad")
    models = audit.models
    assert not models._draws and models._scratch is not None
    assert not [k for k in models._models if k.startswith(("stage", "bstage"))]
    one = sum(t.numel() * t.element_size() for t in models.get("primary").net.state_dict().values())
    monkeypatch.setattr(ModelSet, "DRAW_BYTES", 3 * one)
    first = models.stage(1, 1)
    for draw in (2, 3, 4):
        models.stage(1, draw)
    assert len(models._draws) == 3
    assert models.stage(1, 1) is not first  # dropped, rebuilt ...
    assert _same_weights(models.stage(1, 1), first)  # ... with the same weights


@pytest.mark.parametrize("bn_policy", ["reset", "affine", "keep"])
def test_deferred_copies_have_the_deep_copies_weights(tmp_path, bn_policy):
    """A copy built in place (blocks re-initialised on, and restored from the primary into, one scratch network,
    whatever was asked before) has the weights, the ModelInfo and the name of ModelSet.stage's deep copy of the
    same stage and draw, bit for bit; the primary is left alone."""
    audit = _audit(tmp_path, n=2)
    audit.config.randomization.bn_policy = bn_policy
    models, store = audit.models, audit.context.store
    nb = len(models.blocks())
    primary = {k: v.clone() for k, v in models.get("primary").state_dict().items()}
    walk = [(1, 1, "top_down"), (2, 1, "top_down"), (nb, 1, "top_down"), (1, 1, "top_down"),  # back: restored
            (2, 2, "top_down"), (1, 2, "bottom_up"), (nb - 1, 2, "bottom_up"), (1, 0, "top_down"),
            (nb, 0, "bottom_up"), (None, 3, "top_down")]
    for k, draw, order in walk:
        deferred = models.deferred(k, draw, order)
        built, copy = deferred.build(), models.stage(k, draw, order)
        assert _same_weights(built, copy), (k, draw, order)
        assert built.info == copy.info and deferred.info.extra["copy"] == copy.info.extra["copy"]
        assert store.fingerprint(deferred) == store.fingerprint(built) == store.fingerprint(copy)
    for k, v in models.get("primary").state_dict().items():
        assert torch.equal(v, primary[k])


def test_a_build_interrupted_midway_leaves_no_wrong_weights(tmp_path, monkeypatch):
    """Interrupted while it restores blocks, the scratch network trusts none of its blocks: the next copy is
    still the deep copy's weights."""
    import saliency_audit.models.randomize as randomize

    models = _audit(tmp_path, n=2).models
    models.deferred(3, 1).build()
    real = randomize.restore_blocks

    def interrupted(net, source, blocks):
        real(net, source, blocks[:1])
        raise KeyboardInterrupt

    monkeypatch.setattr(randomize, "restore_blocks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        models.deferred(1, 1).build()
    monkeypatch.setattr(randomize, "restore_blocks", real)
    assert _same_weights(models.deferred(3, 1).build(), models.stage(3, 1))


def test_a_warm_run_builds_no_copy(tmp_path, monkeypatch):
    """Every map cached: the criterion finds each stage's maps by the copy's name and builds no copy."""
    import saliency_audit.models.randomize as randomize

    cold = _audit(tmp_path, n=4).randomization("grad")
    warm = _audit(tmp_path, n=4)

    def refuse(*a, **k):
        raise AssertionError("a copy was built")

    monkeypatch.setattr(randomize, "reinit_blocks", refuse)
    result = warm.randomization("grad")
    assert warm.models._scratch is None and not warm.models._draws
    assert result.curve == cold.curve and result.per_image == cold.per_image


def test_the_stages_between_use_the_first_curve_images(tmp_path):
    audit = _audit(tmp_path, n=6)
    audit.config.randomization.curve_images = 3
    r = audit.randomization("grad")
    assert [row["n"] for row in r.curve] == [6] + [3] * (len(r.curve) - 2) + [6]
    assert r.n == 6 and len(r.per_image) == 6
