"""The plan's pass count is what the run then spends: per (criterion, method), exactly, on a cold cache."""
from __future__ import annotations

import pytest

from saliency_audit import Audit, AuditConfig
from saliency_audit.common.criteria_registry import CRITERIA
from saliency_audit.methods import METHODS
from saliency_audit.engine.plan import method_passes, plan_text, replay

EXACT = ["grad", "gradcam", "ig", "xrai", "ggcam", "sg", "gbp"]


def _config(tmp_path, **kw) -> AuditConfig:
    cfg = AuditConfig(cache_dir=str(tmp_path), **kw)
    cfg.randomization.n_images = cfg.consistency.n_images = cfg.completeness.n_images = min(cfg.n_images, 12)
    # ROAD's removed pixels filled with the image mean, not imputed: the fill is no model pass (the plan never reads it) and
    # the noisy linear imputation was half of these replays' time; ROAD's passes and caching are the same
    cfg.completeness.fill = "mean"
    cfg.methods.xrai.reference_size = 64  # XRAI segments at 64 px, not 224: no model pass either (it reuses IG's)
    cfg.methods.ig.steps = 2  # IG's (and XRAI's) passes per map are counted from the config, whatever their number
    return cfg


def _spent(audit, pairs) -> dict[str, int]:
    return {f"{c}[{m}]": audit.run(c, m).details["image_passes"] for c, m in pairs}


@pytest.mark.slow
def test_plan_equals_what_a_cold_run_spends(tmp_path):
    """Every criterion, the paper's methods (XRAI and Guided GradCAM reuse IG, guided backprop and GradCAM),
    the fully randomized stage shared with utility's randomized model, the CAM probes and ROAD's reuse of
    the intact images: the plan is exact pair by pair; ScoreCAM's count is an upper bound."""
    methods = [m for m in EXACT if m != "sg"] + ["scorecam"]  # SmoothGrad counts as IG does
    audit = Audit(model="demo", methods=methods, config=_config(tmp_path, n_images=8))
    pairs = [(c, m) for c in CRITERIA if audit.absent(c) is None for m in methods]
    plan = audit.make_plan(pairs)
    assert not plan["exact"] and "at most" in plan_text(plan)
    spent = _spent(audit, pairs)
    for key, passes in spent.items():
        if "scorecam" in key:
            assert passes <= plan["per_pair"][key], key
        else:
            assert passes == plan["per_pair"][key], key
    assert audit.evidence()["run"]["plan"]["image_passes"] == plan["image_passes"]
    again = audit.make_plan(pairs)["per_pair"]  # the maps, ROAD results and prediction logits are cached now
    assert not any(again.values()), {k: v for k, v in again.items() if v}
    warm = Audit(model="demo", methods=methods, config=_config(tmp_path, n_images=8))  # a later run: all cached
    completeness = [(c, m) for c, m in pairs if c == "completeness"]
    planned = warm.make_plan(completeness)["per_pair"]
    assert _spent(warm, completeness) == planned
    assert set(planned.values()) == {0, 1}  # only the CAM layer's probe (one image) of this run's first CAM map


@pytest.mark.slow
def test_sequential_plan_brackets_the_run_and_replays_it_exactly(tmp_path):
    audit = Audit(model="demo", methods=EXACT[:4], config=_config(tmp_path, n_images=24, sequential=True))
    pairs = [(c, m) for c in CRITERIA if audit.absent(c) is None for m in EXACT[:4]]
    plan = audit.make_plan(pairs)
    spent = _spent(audit, pairs)
    assert plan["image_passes_least"] <= sum(spent.values()) <= plan["image_passes"]
    stops = {(r.criterion, r.method): r.details["sequential"]["n_used"] for r in audit.results}
    assert replay(audit.context, pairs, stops, cold=True) == spent
    assert "between" in plan_text(plan)


@pytest.mark.parametrize("statistic,variants,design", [("smooth_mprt", ("ssim_drop", "emprt", "bottom_up"), "shared"),
                                                        ("emprt", ("smooth_mprt", "top_down"), "shared"),
                                                        ("ssim_drop", ("emprt", "bottom_up"), "per_image")])
def test_the_plan_counts_the_randomization_variants_exactly(tmp_path, statistic, variants, design):
    """Smooth MPRT's noisy copies (XRAI reusing IG on each copy), the bottom-up stages, eMPRT's two states and
    the per-image draws (one model per image and stage)."""
    cfg = _config(tmp_path, n_images=4, sequential=True)
    cfg.randomization.statistic, cfg.randomization.variants = statistic, variants
    cfg.randomization.draw_design, cfg.randomization.draws = design, 2
    cfg.randomization.curve_images = 2  # the stages between on fewer images than the verdict's two
    cfg.randomization.smooth_samples, cfg.randomization.order = 3, "bottom_up" if statistic == "emprt" else "top_down"
    methods = ["grad", "xrai", "edge"]
    audit = Audit(model="demo", methods=methods, config=cfg)
    pairs = [("randomization", m) for m in methods]
    plan = audit.make_plan(pairs)
    spent = _spent(audit, pairs)
    stops = {(r.criterion, r.method): r.details["sequential"]["n_used"] for r in audit.results}
    assert replay(audit.context, pairs, stops, cold=True) == spent
    assert spent["randomization[edge]"] == 0 and spent["randomization[grad]"] > 0


def test_each_methods_passes_per_image_are_counted_right(tmp_path):
    """The pass count of every registered method, against the counter, on 2 images of a fresh store."""
    from saliency_audit.common.passcount import PASSES

    cfg = AuditConfig(cache_dir=str(tmp_path))
    # fewer passes per map than the defaults (each method's count is read from these settings), XRAI segmenting small
    cfg.methods.sg.samples, cfg.methods.ig.steps, cfg.methods.lime.samples = 3, 2, 20
    cfg.methods.occlusion.window, cfg.methods.xrai.reference_size = 0.5, 64
    audit = Audit(model="demo", methods=list(METHODS), config=cfg)
    samples = audit.context.samples.first(2)
    model = audit.model("primary")
    audit.store.cam_layer(model)  # the one-image CAM probe, counted by the plan on its own
    for method, spec in METHODS.items():
        audit.store._raw.clear()
        before = PASSES["images"]
        audit.store.maps(model, method, samples)
        want = sum(method_passes(m, audit.config, 64, model.input_size) for m in (method, *spec.needs))
        got = PASSES["images"] - before
        if method == "scorecam":  # 1 + 64 channels + the black image, at most
            assert got <= 2 * want, method
        else:
            assert got == 2 * want, method


def test_a_warm_plan_finds_the_copies_maps_without_building_the_copies(tmp_path):
    """A randomized copy's fingerprint is its recipe's name, so a later run's plan sees the cascade's cached maps
    (0 passes, no copy to build) without re-initialising a copy per image and stage only to hash it."""
    cfg = _config(tmp_path, n_images=6, sequential=False)
    first = Audit(model="demo", methods=["grad"], config=cfg)
    built = first.make_plan([("randomization", "grad")])["per_pair_work"]["randomization[grad]"]
    assert built["copy"] == 6  # each image's draw walks its cascade on the scratch network once
    first.run("randomization", "grad")
    later = Audit(model="demo", methods=["grad"], config=cfg)
    plan = later.make_plan([("randomization", "grad")])
    assert plan["per_pair"]["randomization[grad]"] == 0
    assert "copy" not in plan["per_pair_work"]["randomization[grad]"]  # nor will the run build one
    assert not [k for k in later.models._models if k.startswith(("stage", "single"))] and not later.models._draws
    cold = replay(later.context, [("randomization", "grad")], cold=True)["randomization[grad]"]
    assert cold > 0 and not later.models._draws  # cold: counted by recipe, nothing built either


def test_the_estimates_units_are_timed_once_per_machine_and_model(tmp_path, monkeypatch):
    """The time estimate's unit seconds are kept in the cache: a later run of the same model reads them (the ROAD
    unit alone is seconds of every run), times only a kind it lacks, and times again over a torn file."""
    from saliency_audit.engine import estimate

    timed = []
    monkeypatch.setattr(estimate, "_timed", lambda fn, *a, **k: timed.append(fn) or 0.5)
    first = Audit(model="demo", config=_config(tmp_path)).unit_seconds({"per_pair_work": {"x": {"grad": 1}}})
    assert set(first) == {"forward", "grad"} and first["forward"] == first["grad"] > 0 and len(timed) == 2
    timed.clear()
    later = Audit(model="demo", config=_config(tmp_path))
    assert later.unit_seconds({"per_pair_work": {"x": {"grad": 1}}}) == first and not timed
    assert later.unit_seconds({"per_pair_work": {"x": {"grad": 1, "copy": 2}}}) == {**first, "copy": 0.5}
    assert len(timed) == 2  # forward (always) and the copy
    (kept,) = (tmp_path / "units").glob("*.json")
    kept.write_text("{torn")
    timed.clear()
    assert later.unit_seconds({"per_pair_work": {"x": {"copy": 1}}}) == {"forward": first["forward"], "copy": 0.5}
    assert len(timed) == 2
