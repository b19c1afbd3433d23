"""The randomization test's variants: Efficient MPRT, Smooth MPRT and the bottom-up order."""
from dataclasses import replace

import numpy as np
import pytest

from saliency_audit import Audit
from saliency_audit.config import AuditConfig
from saliency_audit.criteria.mprt import entropy, entropy_rise
from saliency_audit.common.errors import AuditUsageError
from saliency_audit.methods.mapset import MapSet


def _mapset(maps):
    maps = np.asarray(maps, np.float32)
    return MapSet("x", [f"i{k}" for k in range(len(maps))], maps, np.zeros(len(maps), bool), maps, 0, 0.0, {})


def _smooth_maps(n=6, seed=0):
    """Smooth blobs: a low-entropy histogram (mostly near zero)."""
    yy, xx = np.mgrid[:32, :32]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(8, 24, 2)
        m = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)
        out.append(m / m.max())
    return np.stack(out)


def test_efficient_mprt_of_a_map_against_itself_is_zero_and_against_noise_positive():
    trained = _mapset(_smooth_maps())
    rise, h0, h1 = entropy_rise(trained, [trained], bins=100)
    np.testing.assert_array_equal(rise, 0.0)
    noise = _mapset(np.random.default_rng(1).random((6, 32, 32)))
    rise, h0, h1 = entropy_rise(trained, [noise], bins=100)
    assert (rise > 0).all() and (h1 > h0).all()
    assert entropy(np.full((8, 8), 0.3), 100) == 0.0  # a constant map has no spread
    assert entropy(np.random.default_rng(0).random((256, 256)), 100) == pytest.approx(np.log(100), abs=1e-3)
    # a constant trained map has no relative rise: undefined, not a division by zero
    rise, _, _ = entropy_rise(_mapset(np.zeros((2, 8, 8))), [_mapset(np.random.default_rng(2).random((2, 8, 8)))], 100)
    assert np.isnan(rise).all()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cfg = AuditConfig(n_images=8, sequential=False, cache_dir=str(tmp_path_factory.mktemp("maps")))
    cfg.randomization.n_images = 8
    return Audit(model="demo", methods=["grad"], config=cfg)


def test_smooth_maps_with_one_noise_free_copy_are_the_plain_maps(demo):
    samples = demo.samples.first(4)
    model = demo.models.get("primary")
    plain = demo.store.maps(model, "grad", samples)
    one = demo.store.maps(model, "grad", samples, smooth=(1, 0.0))
    np.testing.assert_array_equal(one.maps, plain.maps)
    three = demo.store.maps(model, "grad", samples, smooth=(3, 0.1))
    assert not np.allclose(three.maps, plain.maps)
    np.testing.assert_array_equal(three.maps, demo.store.maps(model, "grad", samples, smooth=(3, 0.1)).maps)
    assert three.notes["smooth"] == {"samples": 3, "noise": 0.1}


def test_smooth_mprt_with_n_1_and_zero_noise_equals_the_plain_statistic(demo):
    plain = demo.randomization("grad")
    cfg = replace(demo.config, randomization=replace(demo.config.randomization, statistic="smooth_mprt",
                                                     smooth_samples=1, smooth_noise=0.0, variants=()))
    smooth = Audit(model="demo", methods=["grad"], config=cfg).randomization("grad")
    assert smooth.statistic.startswith("Smooth MPRT d") and plain.statistic.startswith("SSIM drop d")
    assert smooth.value == plain.value and smooth.bound == plain.bound and smooth.verdict == plain.verdict
    assert [c["d"] for c in smooth.curve] == [c["d"] for c in plain.curve]


def test_every_variant_is_in_the_evidence_beside_the_verdict(demo):
    cfg = replace(demo.config, randomization=replace(demo.config.randomization, smooth_samples=3,
                                                     variants=("ssim_drop", "smooth_mprt", "emprt", "bottom_up")))
    audit = Audit(model="demo", methods=["grad", "edge"], config=cfg)
    r = audit.randomization("grad")
    v = r.details["variants"]
    assert set(v) == {"images", "verdict", "smooth_mprt", "emprt", "bottom_up", "image_passes"}  # ssim_drop: verdict
    assert v["image_passes"] > 0
    assert v["verdict"]["statistic"] == r.statistic and v["verdict"]["lower"] == r.bound
    assert v["smooth_mprt"]["samples"] == 3 and v["smooth_mprt"]["n"] == v["images"] == 8
    assert len(v["bottom_up"]["curve"]) == len(audit.models.blocks())
    assert v["emprt"]["value"] > 0  # the plain gradient of a random network is noisier than the trained one's
    edge = audit.randomization("edge").details["variants"]  # a map that ignores the model fails every variant
    assert not any(edge[k]["would_pass"] for k in ("smooth_mprt", "emprt", "bottom_up"))
    assert edge["emprt"]["value"] == 0
    from saliency_audit.report.html import render

    html = render(audit.evidence())
    assert "Variants of the test" in html and "Efficient MPRT" in html and "Smooth MPRT" in html


def test_emprt_as_the_verdict(demo):
    cfg = replace(demo.config, randomization=replace(demo.config.randomization, statistic="emprt", variants=()))
    audit = Audit(model="demo", methods=["grad", "random"], config=cfg)
    r = audit.randomization("grad")
    assert r.statistic == "entropy rise (eMPRT)" and r.threshold == 0.0 and len(r.curve) == 1
    assert r.verdict == ("pass" if r.bound > 0 else "fail") and "nats" in r.explanation
    noise = audit.randomization("random")
    assert noise.verdict == "fail" and noise.value == 0 and noise.details["control"]["met"]


def test_bottom_up_stages_randomize_from_the_input_and_share_the_fully_random_model(demo):
    import torch

    ms = demo.models
    blocks = ms.blocks()
    first = ms.stage(1, order="bottom_up")
    trained = dict(ms.get("primary").net.named_parameters())
    changed = {n for n, p in first.net.named_parameters() if not torch.equal(p, trained[n])}
    assert changed and all(any(n.startswith(m + ".") or n == m for m in blocks[-1].modules) for n in changed)
    assert ms.stage(len(blocks), order="bottom_up") is ms.stage(len(blocks))
    assert demo.store.fingerprint(ms.stage(len(blocks) - 1, order="bottom_up")) != demo.store.fingerprint(
        ms.stage(len(blocks) - 1))


def test_the_variant_options_are_checked():
    for key, value, message in (("statistic", "mprt", "randomization.statistic must be one of ssim_drop"),
                                ("order", "sideways", "randomization.order must be top_down or bottom_up"),
                                ("variants", ["emprt", "lime"], "randomization.variants must list some of"),
                                ("smooth_samples", 0, "randomization.smooth_samples must be at least 1")):
        with pytest.raises(AuditUsageError, match=message):
            AuditConfig().merged({"randomization": {key: value}}, "test")
