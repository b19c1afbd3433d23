"""The utility verdict on hand-made maps: a map that finds the lesion passes, others fail."""
import numpy as np
import pytest

from saliency_audit.config import AuditConfig
from saliency_audit.criteria.utility import evaluate


def _world(n=30, size=48, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    truths, blobs = [], []
    for _ in range(n):
        cy, cx, r = rng.integers(10, size - 10), rng.integers(10, size - 10), rng.integers(3, 7)
        d = np.hypot(yy - cy, xx - cx)
        truths.append(d <= r)
        blobs.append(np.exp(-((d / r) ** 2)))
    prior = np.mean(truths, axis=0)
    return truths, np.stack(blobs).astype(np.float32), prior, rng


def _run(maps, truths, prior, random_maps=None):
    ids = [f"img{i}" for i in range(len(truths))]
    return evaluate("test", ids=ids, truths=truths, maps=maps, constant=np.zeros(len(maps), bool),
                    priors=[prior] * len(truths), prior_n=100, random_maps=random_maps, config=AuditConfig())


def test_map_on_the_lesion_passes_with_numbers():
    truths, blobs, prior, rng = _world()
    r = _run(blobs, truths, prior, random_maps=rng.random(blobs.shape))
    assert r.passed, r.explain()
    assert r.details["mean_ap"] > 0.9
    assert r.bound > 0 and r.ci[0] == r.bound and r.ci[1] >= r.value
    assert [b["name"] for b in r.baselines] == ["average-mask prior", "randomized model"]
    assert r.baselines[1]["value"] < 0.2
    assert len(r.per_image) == 30 and {"id", "score", "ap_prior"} <= set(r.per_image[0])
    assert "mean AP" in r.explanation
    assert r.to_dict()["ci_level"] == 0.9  # two-sided 90 %: its lower end is the one-sided 95 % bound


def test_noise_map_fails():
    truths, blobs, prior, rng = _world()
    r = _run(rng.random(blobs.shape).astype(np.float32), truths, prior)
    assert not r.passed and "not above 0" in r.explanation


def test_the_prior_itself_does_not_beat_the_prior():
    truths, blobs, prior, _ = _world()
    r = _run(np.repeat(prior[None], len(truths), 0).astype(np.float32), truths, prior)
    assert r.verdict == "fail"
    assert r.value == pytest.approx(0.0, abs=1e-9)


def test_map_pointing_at_a_corner_marker_fails():
    truths, blobs, prior, _ = _world()
    corner = np.zeros_like(blobs)
    corner[:, 2:8, 2:8] = 1.0
    r = _run(corner, truths, prior)
    assert r.verdict == "fail"


def test_min_ap_is_enforced_even_when_the_prior_is_beaten():
    truths, blobs, prior, rng = _world()
    weak = (0.5 * blobs + rng.random(blobs.shape)).astype(np.float32)
    ids = [f"i{i}" for i in range(len(truths))]
    kwargs = dict(ids=ids, truths=truths, maps=weak, constant=np.zeros(30, bool), priors=[prior] * 30, prior_n=10,
                  random_maps=None)
    lenient = evaluate("weak", config=AuditConfig(), **kwargs)
    assert lenient.passed and lenient.bound > 0, lenient.explain()
    cfg = AuditConfig()
    cfg.utility.min_ap = 0.9
    strict = evaluate("weak", config=cfg, **kwargs)
    assert strict.verdict == "fail" and "below the minimum 0.900" in strict.explanation
    assert strict.to_dict()["baseline"]["name"] == "average-mask prior"
