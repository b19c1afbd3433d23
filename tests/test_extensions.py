"""A third party's method, criterion and dataset, found through entry points, audited without editing the package.

The plugin package is written to ``tmp_path`` with a ``.dist-info`` whose ``entry_points.txt`` names its
specs; ``tmp_path`` on ``sys.path`` is all ``importlib.metadata`` needs to discover it (nothing installed).
"""
from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from saliency_audit.common import extensions

PLUGIN = '''
"""A third party's audit extensions: a model-free "centre" map, a "map_entropy" criterion, a small demo."""
from dataclasses import dataclass

import numpy as np
import torch

from saliency_audit import CriterionSpec, DatasetSpec, MethodSpec
from saliency_audit.criteria.mprt import entropy
from saliency_audit.criteria.result import CriterionResult
from saliency_audit.data.demo import DemoDataset
from saliency_audit.stats import bootstrap_mean, clears, stable_seed


def centre(model, x, keys, target, config, memo):
    """A Gaussian blob at the image's brightness centroid: it never looks at the model."""
    h, w = x.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for img in x.detach().float().mean(dim=1).cpu().numpy():
        wgt = img - img.min() + 1e-6
        cy, cx = (wgt * yy).sum() / wgt.sum(), (wgt * xx).sum() / wgt.sum()
        out.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.15 * min(h, w)) ** 2)))
    return torch.from_numpy(np.stack(out).astype(np.float32))[:, None]


@dataclass
class EntropyParams:
    alpha: float = 0.05
    min_concentration: float = 0.05  # 1 - entropy / its maximum
    bins: int = 32


def check_params(p, need):
    need(0 < p.alpha < 0.5, "alpha", "must be in (0, 0.5)")
    need(p.bins >= 2, "bins", "must be at least 2")


def map_entropy(ctx, method):
    p = ctx.config.section("map_entropy")
    loc, maps = ctx.localised_maps(method)
    conc = np.array([1 - entropy(m, p.bins) / np.log(p.bins) for m in maps.maps])
    b = bootstrap_mean(conc, alpha=p.alpha, resamples=ctx.config.stats.resamples, method=ctx.config.stats.method,
                       seed=stable_seed(ctx.config.seed, "map_entropy"))
    ok = clears(b.lo, p.min_concentration, strict=True, what="the lower bound of the mean concentration")
    return CriterionResult(
        criterion="map_entropy", method=method, verdict="pass" if ok else "fail",
        statistic="mean(1 - normalized entropy)", value=b.mean, ci=[b.lo, b.hi], bound=b.lo,
        threshold=p.min_concentration, n=b.n,
        explanation=f"mean concentration {b.mean:.3f}, lower bound {b.lo:.3f} vs {p.min_concentration}",
        per_image=[{"id": i, "statistic": float(c)} for i, c in zip(maps.ids, conc)],
        details={"mean_score": b.mean, "alpha": p.alpha})


class SmallDemo(DemoDataset):
    name = "small_demo"

    def __init__(self, n: int = 120, seed: int = 0):
        super().__init__(n=n, seed=seed)


METHOD = MethodSpec("centre", "Brightness-centred blob", (), False, fn="sa_ext_demo:centre", passes=0)
CRITERION = CriterionSpec("map_entropy", "Map concentration (<b>entropy</b>)", "sa_ext_demo:map_entropy",
                          ("maps", "lesions"), "is the map concentrated rather than spread out?",
                          section="map_entropy", params=EntropyParams, check="sa_ext_demo:check_params",
                          cost="saliency_audit.engine.plan:localisation_cost", score=("mean_score", "conc {:.3f}"))


def datasets():
    return [DatasetSpec("small_demo", "A smaller demo", "sa_ext_demo:SmallDemo", needs_root=False)]
'''

ENTRY_POINTS = """
[saliency_audit.methods]
centre = sa_ext_demo:METHOD

[saliency_audit.criteria]
map_entropy = sa_ext_demo:CRITERION

[saliency_audit.datasets]
small_demo = sa_ext_demo:datasets
"""


def _install(tmp_path, name: str, module: str, entry_points: str) -> None:
    """A package and its dist-info under ``tmp_path`` (on sys.path): importlib.metadata discovers it."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(module))
    info = tmp_path / f"{name.replace('_', '-')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def plugin_path(tmp_path):
    """``tmp_path`` on sys.path for the test; every registration and module undone after it."""
    site = tmp_path / "site"
    site.mkdir()
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    extensions.reset()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for mod in [m for m in sys.modules if m.startswith("sa_ext_")]:
            del sys.modules[mod]
        importlib.invalidate_caches()
        extensions.reset()


def test_a_plugin_package_adds_a_method_a_criterion_and_a_dataset(plugin_path, tmp_path):
    _install(plugin_path, "sa_ext_demo", PLUGIN, ENTRY_POINTS)
    from saliency_audit import Audit, AuditConfig, testing
    from saliency_audit.common.criteria_registry import CRITERIA
    from saliency_audit.data import DATASETS, check_options, dataset_names
    from saliency_audit.methods import METHODS
    from saliency_audit.engine.plan import plan_text
    from saliency_audit.report.html import render
    from saliency_audit.report.table import verdict_table
    from saliency_audit.evidence.schema import problems

    assert "map_entropy" in CRITERIA and "centre" in METHODS and "small_demo" in DATASETS
    assert dataset_names()[-1] == "small_demo" and list(CRITERIA)[-1] == "map_entropy"
    with pytest.raises(extensions.AuditUsageError, match="--finding applies to --dataset=nih or .*, not --dataset=small_demo"):
        check_options("small_demo", finding="Nodule")
    with pytest.raises(extensions.AuditUsageError, match="--dataset=small_demo takes no --split"):
        check_options("small_demo", split="test")

    cfg = AuditConfig(n_images=8, sequential=False, cache_dir=str(tmp_path / "cache"))
    cfg.stats.resamples = 500
    with pytest.raises(extensions.AuditUsageError, match="map_entropy.bins must be at least 2"):
        cfg.merged({"map_entropy": {"bins": 1}}, "test")
    cfg = cfg.merged({"map_entropy": {"bins": 16}}, "test")  # its own config section, validated by its check
    assert cfg.section("map_entropy").bins == 16 and cfg.to_dict()["map_entropy"]["bins"] == 16

    audit = Audit(model="demo", dataset="small_demo", methods=["grad", "centre"], config=cfg)
    pairs = [("map_entropy", "centre"), ("map_entropy", "grad"), ("utility", "centre")]
    plan = audit.make_plan(pairs)
    assert plan["per_pair"]["map_entropy[centre]"] == 0  # a model-free method: no model pass
    assert plan["per_pair"]["map_entropy[grad]"] > 0 and "not_estimated" not in plan
    assert "model passes" in plan_text(plan)

    results = {m: testing.check(audit, "map_entropy", m) if m == "centre" else audit.run("map_entropy", m)
               for m in ("centre", "grad")}
    assert results["centre"].verdict == "pass" and results["centre"].n == 8, results["centre"].explain()
    assert results["grad"].verdict in ("pass", "fail"), results["grad"].explain()
    assert audit.run("utility", "centre").verdict in ("pass", "fail")
    assert results["grad"].details["image_passes"] == plan["per_pair"]["map_entropy[grad]"]  # the plan is exact

    evidence = audit.evidence(finished=True)
    assert problems(evidence) == []
    assert evidence["dataset"]["name"] == "small_demo" and evidence["config"]["map_entropy"]["bins"] == 16
    page = render(evidence)
    assert '<section id="map_entropy"><h2>Map concentration (&lt;b&gt;entropy&lt;/b&gt;)</h2>' in page
    section = page[page.index('<section id="map_entropy">'):]
    section = section[:section.index("</section>")]
    assert "centre" in section and "grad" in section and "box plots" not in section and "<img" not in section
    assert any(line.startswith("map_entropy  centre  conc ") for line in verdict_table(evidence["results"]))


def test_names_that_clash_or_entry_points_that_do_not_load_are_one_line_errors(plugin_path):
    from saliency_audit import CriterionSpec, register_criterion
    from saliency_audit.common.criteria_registry import CRITERIA

    _install(plugin_path, "sa_ext_bad", "X = 1\n", "[saliency_audit.methods]\nbroken = sa_ext_bad:NOPE\n")
    with pytest.raises(extensions.ExtensionError) as err:
        from saliency_audit.methods import METHODS

        "grad" in METHODS
    assert "entry point broken = 'sa_ext_bad:NOPE' (group saliency_audit.methods): does not load" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(extensions.ExtensionError, match="clashes with the built-in criterion"):
        register_criterion(CriterionSpec("utility", "Mine", "x:y", ("maps",), ""))
    with pytest.raises(extensions.ExtensionError, match="lower-case letters"):
        register_criterion(CriterionSpec("Bad Name", "Mine", "x:y", ("maps",), ""))
    assert "utility" in CRITERIA and CRITERIA["utility"].title == "Localisation utility"


def test_a_criterion_without_its_own_section_or_cost_gets_the_generic_ones(plugin_path):
    """A registered criterion with no report module, and a name nobody registered, are each drawn as
    themselves (their verdicts, escaped), never as another criterion; the plan says it did not estimate it."""
    from saliency_audit import CriterionSpec, register_criterion
    from saliency_audit.engine.plan import plan_text
    from saliency_audit.report.html import render
    from tests.test_report import make_evidence

    register_criterion(CriterionSpec("sharpness", "Sharpness", "x:y", ("maps",), "is the map sharp?"))
    ev = make_evidence(criteria=("reproducibility",))
    for name in ("sharpness", "mystery<x>"):
        for r in [r for r in ev["results"] if r["criterion"] == "reproducibility"][:2]:
            ev["results"].append(dict(r, criterion=name))
    page = render(ev)
    for anchor, title in (('<section id="sharpness">', "<h2>Sharpness</h2>"), ('<section id="other">', "mystery&lt;x&gt;")):
        part = page[page.index(anchor):]
        part = part[:part.index("</section>")]
        assert title in part and ("PASS" in part or "FAIL" in part)
        assert "box plots" not in part and "map strips" not in part and "SSIM per model" not in part
        assert "<img" not in part and "mystery<x>" not in part
    assert page.count("reproducibility box plots") == 1  # reproducibility's own section still draws

    plan = {"pairs": 1, "methods": ["grad"], "criteria": ["sharpness"], "exact": True, "image_passes": 0,
            "per_pair": {}, "not_estimated": ["sharpness[grad]"], "images": {}, "models": {
                "primary": "demo", "replicates": [], "references": [], "random_label": None}}
    assert "cost not estimated" in plan_text(plan) and "sharpness[grad]" in plan_text(plan)
