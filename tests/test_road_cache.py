"""ROAD results and deletion/insertion curves are cached on disk per image, keyed by content (engine.results.ResultCache)."""
import dataclasses

import numpy as np

from saliency_audit.common.passcount import PASSES
from saliency_audit.config import AuditConfig
from saliency_audit.engine.maps import MapStore
from saliency_audit.engine.passes import Passes
from tests.test_completeness import _model, _samples

F = 4  # fractions, AuditConfig's default


def _setup(n=6):
    samples, region = _samples(n)
    maps = np.stack([region.astype(np.float32) + 0.01 * i for i in range(n)])
    maps[:, 0, :5] = 0.5  # some ties, broken by the seed
    return _model(), samples, maps


def _road(cfg, cache, model, samples, maps, seeds=None):
    """ROAD on a fresh Passes (nothing memoised) with the cache in ``cache`` (None: uncached); (result, passes)."""
    before = PASSES["images"]
    r = Passes(cfg, MapStore(cfg, cache)).road(model, samples, maps, seeds=seeds)
    return r, PASSES["images"] - before


def _same(a, b, tol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=tol, err_msg=k)


def test_a_second_road_makes_no_pass_and_equals_the_uncached_values(tmp_path):
    cfg = AuditConfig()
    model, samples, maps = _setup()
    first, spent = _road(cfg, tmp_path, model, samples, maps)
    assert spent == len(samples) * (1 + 2 * F)  # the intact images, then 2F perturbed copies each
    again, spent = _road(cfg, tmp_path, model, samples, maps)
    assert spent == 0
    _same(first, again)
    some, spent = _road(cfg, tmp_path, model, samples[1:4], maps[1:4])  # per image: any subset hits
    assert spent == 0
    _same(some, {k: v[1:4] for k, v in first.items()})
    P = Passes(cfg, MapStore(cfg, tmp_path / "own"))
    P.road(model, samples, maps)
    before = PASSES["images"]
    P.road(model, samples, maps)  # what it wrote itself it computes again: the run spends what its plan counts
    assert PASSES["images"] - before == len(samples) * 2 * F  # (the intact images' probabilities are memoised)
    plain, _ = _road(cfg, None, model, samples, maps)  # no cache_dir: nothing cached, nothing read
    _same(first, plain, 1e-6)
    alone, _ = _road(cfg, None, model, samples[2:3], maps[2:3])  # an image's result does not depend on its batch
    _same(alone, {k: v[2:3] for k, v in first.items()}, 1e-6)


def test_curves_are_cached_alike(tmp_path):
    cfg = AuditConfig()
    model, samples, maps = _setup(4)
    first = Passes(cfg, MapStore(cfg, tmp_path)).curves(model, samples, maps)
    before = PASSES["images"]
    again = Passes(cfg, MapStore(cfg, tmp_path)).curves(model, samples, maps)
    assert PASSES["images"] == before
    plain = Passes(cfg, MapStore(cfg, None)).curves(model, samples, maps)
    for k in ("deletion", "insertion", "deletion_auc", "insertion_auc"):
        np.testing.assert_array_equal(first[k], again[k])
        np.testing.assert_allclose(first[k], plain[k], rtol=0, atol=1e-6)
    assert again["fractions"] == plain["fractions"]


def test_a_changed_map_seed_fill_noise_or_fraction_list_misses(tmp_path):
    cfg = AuditConfig()
    model, samples, maps = _setup(4)
    _road(cfg, tmp_path, model, samples, maps)
    one = maps.copy()
    one[2, 10, 10] += 1e-3  # one pixel of one image's map: that image alone is recomputed
    r, spent = _road(cfg, tmp_path, model, samples, one)
    assert spent == 1 + 2 * F
    _same(r, _road(cfg, None, model, samples, one)[0], 1e-6)
    seeds = Passes(cfg, MapStore(cfg, None)).tie_seeds(samples)
    assert _road(cfg, tmp_path, model, samples, maps, seeds=[s + 1 for s in seeds])[1] > 0
    assert _road(cfg, tmp_path, model, samples, maps, seeds=seeds)[1] == 0  # the default seeds: cached
    for change in ({"fill": "linear-exact"}, {"noise": 0.02}, {"fractions": (0.2, 0.5, 0.8)}):
        other = dataclasses.replace(cfg, completeness=dataclasses.replace(cfg.completeness, **change))
        assert _road(other, tmp_path, model, samples, maps)[1] > 0, change
    assert _road(dataclasses.replace(cfg, seed=cfg.seed + 1), tmp_path, model, samples, maps)[1] > 0


def test_a_torn_or_foreign_file_is_recomputed_and_an_unwritable_cache_only_costs_passes(tmp_path):
    cfg = AuditConfig()
    model, samples, maps = _setup(3)
    first, _ = _road(cfg, tmp_path, model, samples, maps)
    files = sorted((tmp_path / "road").rglob("*.npz"))
    assert len(files) == 3
    files[0].write_bytes(b"PK\x03\x04 torn")
    np.savez(files[1], morf=np.zeros(F + 1))  # foreign: the wrong arrays
    r, spent = _road(cfg, tmp_path, model, samples, maps)
    assert spent == 2 * (1 + 2 * F)
    _same(r, first, 1e-6)
    assert _road(cfg, tmp_path, model, samples, maps)[1] == 0  # rewritten
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    r, spent = _road(cfg, blocked, model, samples, maps)  # nothing can be saved under it: computed, no error
    assert spent == 3 * (1 + 2 * F)
    _same(r, first, 1e-6)


def test_a_warm_plan_counts_no_pass_for_cached_road_results_and_the_run_spends_none(tmp_path):
    from saliency_audit import Audit
    from saliency_audit.engine.plan import replay

    def audit():
        cfg = AuditConfig(cache_dir=str(tmp_path), n_images=6, sequential=False)
        cfg.completeness.n_images = 4
        return Audit(model="demo", methods=["grad", "edge"], config=cfg)

    pairs = [("completeness", "grad"), ("completeness", "edge")]  # a control's maps are not cached: the plan makes them
    first = audit()
    cold = first.make_plan(pairs)["per_pair"]
    assert {f"completeness[{m}]": first.run(c, m).details["image_passes"] for c, m in pairs} == cold
    assert all(cold.values())
    later = audit()
    assert set(later.make_plan(pairs)["per_pair"].values()) == {0}
    assert replay(later.context, pairs, cold=True) == cold
    for (c, m), before in zip(pairs, first.results):
        again = later.run(c, m)
        assert again.details["image_passes"] == 0
        assert again.value == before.value and again.per_image == before.per_image
