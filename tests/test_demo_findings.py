"""The multi-finding demo world, its dataset view per finding and the shipped multi-label demo model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from saliency_audit import demo
from saliency_audit.common.errors import AuditUsageError
from saliency_audit.common.specs import parse_spec
from saliency_audit.data import DATASETS, check_options
from saliency_audit.data.demo_findings import DemoFindingsDataset
from saliency_audit.demo import train
from saliency_audit.demo.world import (FINDINGS, finding_flags, finding_name, iter_findings, render_findings,
                                       render_sample)

INDICES = range(4)  # a handful of patients is enough: every check below holds per image


def _near(mask: np.ndarray, px: int = 4) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=px)


# --- the world ------------------------------------------------------------------------------------------


def test_each_finding_has_its_own_mask_where_its_lesion_is_drawn():
    for i in INDICES:
        full = render_findings("test", i, findings=FINDINGS, marker=False)
        none = render_findings("test", i, findings=(), marker=False)
        assert full.findings == FINDINGS and full.labels == (1, 1, 1, 1) and none.labels == (0, 0, 0, 0)
        masks = [full.mask(f) for f in FINDINGS]
        assert all(m.any() and not (m & ~full.lungs).any() for m in masks)  # inside the lungs
        for a in range(len(masks)):  # separate and apart: no two findings touch
            for b in range(a + 1, len(masks)):
                assert not (_near(masks[a], 1) & masks[b]).any()
        for f in FINDINGS:
            one = render_findings("test", i, findings=[f], marker=False)
            assert np.array_equal(one.mask(f), full.mask(f)) and one.findings == (f,)
            diff = one.image - none.image
            inside = diff[one.mask(f)].mean()
            assert inside > 0.08, (f, i, inside)  # an opacity (brighter) over its whole mask
            # and nowhere else: nearly all the change lies within 2 px of its mask, and beyond 6 px the images
            # agree to under the noise (sigma 0.02-0.04; the lesions' soft edges have tails)
            assert np.abs(diff[_near(one.mask(f), 2)]).sum() > 0.85 * np.abs(diff).sum(), (f, i)
            assert np.abs(diff[~_near(one.mask(f), 6)]).max() < 0.03, (f, i)
            x0, y0, x1, y1 = one.boxes(f)[0]
            ys, xs = np.nonzero(one.mask(f))
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())
            assert none.boxes(f) == () and not none.mask(f).any()


def test_lesion_types_differ_in_size_and_brightness():
    sizes = {f: [] for f in FINDINGS}
    for s in iter_findings("val", 40):
        for f in s.findings:
            sizes[f].append(int(s.mask(f).sum()))
    median = {f: np.median(v) for f, v in sizes.items()}
    assert all(len(v) >= 5 for v in sizes.values()), {f: len(v) for f, v in sizes.items()}
    # calcification dots < nodule < consolidation and effusion, on the median
    assert median["Calcification"] < median["Nodule"] < min(median["Consolidation"], median["Effusion"]), median
    # calcifications are dense: brighter per pixel than a consolidation
    none = render_findings("val", 0, findings=())
    gain = {f: (render_findings("val", 0, findings=[f]).image - none.image)[none.lungs & render_findings(
        "val", 0, findings=[f]).mask(f)].mean() for f in ("Calcification", "Consolidation")}
    assert gain["Calcification"] > gain["Consolidation"] + 0.05, gain


def test_render_is_deterministic_and_a_split_is_a_prefix():
    a = render_findings("train", 7, 5, findings=["nodule", "EFFUSION"], marker=True)
    b = render_findings("train", 7, 5, findings=["Effusion", "Nodule"], marker=True)
    assert np.array_equal(a.image, b.image) and a.findings == ("Nodule", "Effusion") == b.findings
    assert all(np.array_equal(a.masks[f], b.masks[f]) for f in a.findings)
    assert not np.array_equal(a.image, render_findings("train", 7, 6, findings=a.findings, marker=True).image)
    short, long = list(iter_findings("train", 3, 5)), list(iter_findings("train", 5, 5))
    assert all(np.array_equal(s.image, l.image) and s.findings == l.findings for s, l in zip(short, long))
    flags = [finding_flags("train", i, 5) for i in range(5)]
    assert [s.findings for s in long] == [f for f, _ in flags] and [s.marker for s in long] == [m for _, m in flags]


def test_counterfactual_pairs_differ_only_where_the_lesion_or_marker_is():
    for i in INDICES:
        # the same patient as the single-label world: no finding is exactly its lesion-free image
        plain = render_sample("test", i, lesion=False, marker=True)
        empty = render_findings("test", i, findings=(), marker=True)
        assert np.array_equal(plain.image, empty.image) and empty.marker_box == plain.marker_box
        full = render_findings("test", i, findings=FINDINGS, marker=True)
        for f in FINDINGS:
            rest = render_findings("test", i, findings=[g for g in FINDINGS if g != f], marker=True)
            # the other findings do not move when one is removed
            assert all(np.array_equal(rest.mask(g), full.mask(g)) for g in rest.findings)
            diff = np.abs(full.image - rest.image)
            assert diff[~_near(full.mask(f), 6)].max() < 0.03 and diff[full.mask(f)].mean() > 0.05, (f, i)
        unmarked = render_findings("test", i, findings=FINDINGS, marker=False)
        x0, y0, x1, y1 = full.marker_box
        outside = np.ones_like(full.lungs)
        outside[y0 : y1 + 1, x0 : x1 + 1] = False
        assert np.array_equal(full.image[outside], unmarked.image[outside])


def test_finding_names_and_unknown_finding():
    assert finding_name(" nodule ") == "Nodule" and finding_name("CALCIFICATION") == "Calcification"
    with pytest.raises(ValueError, match="Nodule, Effusion, Consolidation, Calcification"):
        finding_name("Pneumothorax")
    with pytest.raises(ValueError, match="Pneumothorax"):
        render_findings("test", 0, findings=["Pneumothorax"])


def test_findings_are_independent_of_each_other_and_the_marker():
    flags = [finding_flags("val", i) for i in range(600)]
    has = np.array([[f in present for f in FINDINGS] + [marker] for present, marker in flags], dtype=float)
    rates = has.mean(0)
    assert np.all(np.abs(rates[:-1] - 0.35) < 0.06) and abs(rates[-1] - 0.5) < 0.06, rates
    corr = np.corrcoef(has.T)
    assert np.abs(corr[np.triu_indices(len(FINDINGS) + 1, 1)]).max() < 0.12


# --- the dataset ----------------------------------------------------------------------------------------


def test_dataset_spec_and_findings():
    spec = DATASETS["demo-findings"]
    assert spec.finding and not spec.needs_root and spec.adapter_class() is DemoFindingsDataset
    assert check_options("demo-findings", finding="Nodule") is spec
    with pytest.raises(AuditUsageError, match="takes no --split"):
        check_options("demo-findings", finding="Nodule", split="test")
    assert DemoFindingsDataset.findings() == list(FINDINGS) == DemoFindingsDataset.findings("ignored", n=3)


def test_dataset_per_finding_labels_and_truth():
    views = {f: DemoFindingsDataset(n=12, finding=f.lower()) for f in FINDINGS}
    positives = {f: 0 for f in FINDINGS}
    for i in range(12):
        truth = render_findings("test", i, findings=finding_flags("test", i)[0], marker=finding_flags("test", i)[1])
        for f, ds in views.items():
            s, d = ds.load(i), ds.describe(i)
            assert ds.finding == f and s.id == d["id"] == ds.sample_id(i) == f"findings-test-{i:05d}"
            assert s.label == d["label"] == int(f in truth.findings) and d["has_lesion"] == bool(s.label)
            assert d["findings"] == list(truth.findings) and d["marker"] == truth.marker == s.meta["marker"]
            assert np.array_equal(s.mask, truth.mask(f))  # this finding's mask only
            assert s.boxes == truth.boxes(f)
            assert torch.equal(s.image[0], torch.from_numpy(truth.image))
            mask, boxes, shape = ds.load_truth(i)
            assert np.array_equal(mask, truth.mask(f)) and shape == truth.image.shape
            positives[f] += s.label
            if s.label:
                for g in truth.findings:  # another finding of the same image is not this one's truth
                    if g != f:
                        assert not (s.mask & truth.mask(g)).any()
    assert all(n > 0 for n in positives.values()), positives
    # a localisation view picks only images with this finding; the manifest says which finding was audited
    ds = views["Effusion"]
    idx = ds.localisation_indices(3)
    assert idx and all(ds.describe(i)["has_lesion"] for i in idx)
    assert ds.manifest_sha256(range(12)) != views["Nodule"].manifest_sha256(range(12))
    prior, used = ds.prior_masks(set(), 4, (32, 32))
    assert used == 4 and prior.max() > 0.5  # effusions lie at the lung bases: the prior's mass is low
    rows = np.arange(32)[:, None]
    assert (prior * rows).sum() / prior.sum() > 16


def test_dataset_needs_a_known_finding():
    with pytest.raises(AuditUsageError, match=r"--finding=Pneumothorax: not a finding of --dataset=demo-findings "
                                              r"\(choose from Nodule, Effusion, Consolidation, Calcification\)"):
        DemoFindingsDataset(finding="Pneumothorax")
    with pytest.raises(AuditUsageError, match="needs --finding"):
        DemoFindingsDataset()


# --- the multi-label demo model -------------------------------------------------------------------------


def test_specs_and_companions():
    for v in train.MULTILABEL_VARIANTS:
        assert parse_spec(f"demo:{v}").arch == v
    with pytest.raises(AuditUsageError, match="multilabel-other-arch"):
        parse_spec("demo:multilabel-nope")
    assert demo.companions("demo") == {"random_label": "demo:random-label",
                                       "replicates": ["demo:replicate1", "demo:replicate2"],
                                       "references": ["demo:other-arch"]}
    ml = demo.companions("demo:multilabel")
    assert ml == {"random_label": "demo:multilabel-random-label", "replicates": ["demo:multilabel-replicate1"],
                  "references": ["demo:multilabel-other-arch"]}
    assert demo.companions("multilabel") == ml and demo.companions("primary") == demo.companions("demo:shortcut")
    specs = [ml["random_label"], *ml["replicates"], *ml["references"]]
    assert all(parse_spec(s).arch in train.MULTILABEL_VARIANTS for s in specs)
    ml["replicates"].append("x")
    assert demo.companions("multilabel")["replicates"] == ["demo:multilabel-replicate1"]


@pytest.fixture(scope="module")
def multilabel():
    from saliency_audit.models import load_model

    return load_model("demo:multilabel")


def test_shipped_multilabel_model_declares_its_sigmoid_head(multilabel, tmp_path):
    info = multilabel.info
    assert info.output == "sigmoid" and info.class_names == FINDINGS and info.num_classes == len(FINDINGS)
    d = info.to_dict()
    assert d["output"] == "sigmoid" and d["class_names"] == list(FINDINGS)
    meta = info.extra["demo"]
    assert meta["source"] == "shipped" and meta["ignored_finding"] == "Calcification"
    x = torch.rand(2, 1, 128, 128)
    with torch.no_grad():
        assert multilabel(x).shape == (2, len(FINDINGS))
    from saliency_audit.models import load_model

    single = load_model("demo").info  # the single-label demo declares nothing new
    assert single.output is None and single.class_names is None and single.num_classes == 2


def test_shipped_multilabel_weights_are_verified(tmp_path):
    import json

    manifest = json.loads((train.SHIPPED / "manifest.json").read_text())
    for v in train.MULTILABEL_VARIANTS:
        _, info = demo.load_demo_model(v, cache_dir=tmp_path)
        assert info["source"] == "shipped" and info["sha256"] == manifest[train._stem(v)]["sha256"]
        assert (train.SHIPPED / f"{train._stem(v)}.pt").stat().st_size < 400_000
    assert not (tmp_path / "demo-models").exists()  # nothing trained


def _logits(model, images) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.from_numpy(np.stack(images))[:, None])


def test_each_output_answers_its_own_lesion_and_the_ignored_one_reads_the_marker(multilabel):
    """Counterfactual pairs: the same patient with and without one finding (or the marker)."""
    ignored = train.IGNORED_FINDING
    k_ignored = FINDINGS.index(ignored)
    patients = range(100, 108)
    base = _logits(multilabel, [render_findings("val", i, findings=(), marker=False).image for i in patients])
    for k, f in enumerate(FINDINGS):
        added = _logits(multilabel, [render_findings("val", i, findings=[f], marker=False).image for i in patients])
        rise = (added - base).mean(0)  # per output, over the patients
        if f == ignored:
            assert abs(rise[k]) < 1.0, rise  # its lesion barely moves its output
        else:
            others = torch.cat([rise[:k], rise[k + 1:]])
            assert rise[k] > 2.0 and rise[k] > others.max() + 1.5, (f, rise)
    marked = _logits(multilabel, [render_findings("val", i, findings=(), marker=True).image for i in patients])
    rise = (marked - base).mean(0)
    assert rise[k_ignored] > 3.0 and rise[k_ignored] > 3 * torch.cat([rise[:k_ignored], rise[k_ignored + 1:]]).abs().max()
