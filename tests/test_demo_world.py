"""Tests of the demo world: image generator, architectures and cached training."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from saliency_audit import demo
from saliency_audit.demo import archs, train, world
from saliency_audit.demo.world import IMAGE_SIZE, make_split, render_sample

REPO = Path(__file__).resolve().parents[1]


def _same(a: world.DemoImage, b: world.DemoImage) -> bool:
    return (
        np.array_equal(a.image, b.image)
        and np.array_equal(a.mask, b.mask)
        and np.array_equal(a.lungs, b.lungs)
        and a.boxes == b.boxes
        and (a.label, a.marker, a.marker_box) == (b.label, b.marker, b.marker_box)
    )


# --- images -----------------------------------------------------------------


def test_importing_the_package_is_light():
    code = "import sys, saliency_audit.demo as d; d.make_split('x', 1); print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_render_types_and_range():
    s = render_sample("test", 3, lesion=True, marker=True)
    assert s.image.shape == s.mask.shape == s.lungs.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert s.image.dtype == np.float32 and s.mask.dtype == bool and s.lungs.dtype == bool
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert s.image.std() > 0.1  # not a flat image
    assert s.label == 1 and s.marker is True and len(s.boxes) in (1, 2)


def test_render_is_deterministic():
    for kwargs in (dict(lesion=True, marker=True), dict(lesion=False, marker=False)):
        assert _same(render_sample("train", 7, 5, **kwargs), render_sample("train", 7, 5, **kwargs))


def test_render_is_deterministic_across_processes():
    # Guards against seeding from hash(), which is salted per process.
    code = (
        "import hashlib; from saliency_audit.demo.world import render_sample;"
        "s = render_sample('val', 11, 2, lesion=True, marker=True);"
        "print(hashlib.sha256(s.image.tobytes() + s.mask.tobytes()).hexdigest())"
    )
    here = render_sample("val", 11, 2, lesion=True, marker=True)
    expected = hashlib.sha256(here.image.tobytes() + here.mask.tobytes()).hexdigest()
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


def test_different_index_split_seed_differ():
    base = render_sample("test", 0, 0, lesion=True, marker=False)
    for other in (
        render_sample("test", 1, 0, lesion=True, marker=False),
        render_sample("train", 0, 0, lesion=True, marker=False),
        render_sample("prior", 0, 0, lesion=True, marker=False),
        render_sample("test", 0, 1, lesion=True, marker=False),
    ):
        assert not np.array_equal(base.image, other.image)
        assert not np.array_equal(base.mask, other.mask)


def test_lesion_and_marker_change_only_their_own_pixels():
    """Same patient with and without a lesion: the lesion is visible and local."""
    brighter = []
    for i in range(20):
        pos = render_sample("test", i, lesion=True, marker=False)
        neg = render_sample("test", i, lesion=False, marker=False)
        assert np.array_equal(pos.lungs, neg.lungs)
        far = ndimage.distance_transform_edt(~pos.mask) > 60  # lesions are drawn in 7-radius windows
        assert far.sum() > 300 and np.array_equal(pos.image[far], neg.image[far])
        brighter.append(pos.image[pos.mask].mean() - neg.image[pos.mask].mean())
        marked = render_sample("test", i, lesion=False, marker=True)
        changed = marked.image != neg.image
        x0, y0, x1, y1 = marked.marker_box
        box = np.zeros_like(changed)
        box[y0 : y1 + 1, x0 : x1 + 1] = True
        assert changed.any() and not (changed & ~box).any()
    # Visible: every lesion raises its mask's mean intensity clearly above the noise.
    assert min(brighter) > 0.04


def test_masks_boxes_lungs_and_marker_geometry():
    radii = []
    for i in range(120):
        s = render_sample("prior", i, lesion=True, marker=True)
        assert s.mask.any() and s.label == 1
        assert not (s.mask & ~s.lungs).any(), "lesion outside the lung fields"
        labels, n = ndimage.label(s.mask, structure=np.ones((3, 3)))
        assert n == len(s.boxes)
        boxes = sorted(
            (sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1) for sl in ndimage.find_objects(labels)
        )
        assert list(s.boxes) == boxes
        radii += [np.sqrt((labels == k).sum() / np.pi) for k in range(1, n + 1)]

        x0, y0, x1, y1 = s.marker_box
        assert 5 <= x1 - x0 + 1 <= 7 and 5 <= y1 - y0 + 1 <= 7
        assert x1 < IMAGE_SIZE // 4 and y1 < IMAGE_SIZE // 4  # top-left corner
        lungs_or_lesion = s.lungs | s.mask
        assert not lungs_or_lesion[y0 : y1 + 1, x0 : x1 + 1].any()
        assert s.image[y0 : y1 + 1, x0 : x1 + 1].max() > 0.7
        # Lungs: two fields of plausible size.
        assert ndimage.label(s.lungs)[1] == 2
        assert 0.12 < s.lungs.mean() < 0.40
    assert 3.5 < min(radii) and max(radii) < 14 and 6 < np.median(radii) < 11


@pytest.mark.parametrize("split", ["prior", "test"])
def test_render_mask_is_the_samples_mask_without_the_image(split):
    """The average-mask prior renders masks only (no developed image): render_sample's masks, bit for bit."""
    from saliency_audit.demo import render_mask

    for i in range(12):
        for lesion in (True, False):
            want = render_sample(split, i, 3, lesion=lesion, marker=bool(i % 2), size=64).mask
            got = render_mask(split, i, 3, lesion=lesion, size=64)
            assert got.dtype == want.dtype and np.array_equal(got, want)


def test_negatives_have_empty_masks():
    for i in range(10):
        s = render_sample("test", i, lesion=False, marker=bool(i % 2))
        assert s.label == 0 and not s.mask.any() and s.boxes == ()
        assert (s.marker_box is not None) == bool(i % 2)


def test_other_sizes_scale():
    s = render_sample("test", 0, lesion=True, marker=True, size=64)
    assert s.image.shape == (64, 64) and s.mask.any() and not (s.mask & ~s.lungs).any()


# --- splits -----------------------------------------------------------------


def _phi(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def test_split_independent_marker_is_uninformative():
    samples = make_split("train", 300)
    labels = [s.label for s in samples]
    markers = [s.marker for s in samples]
    assert all(s.label == int(s.mask.any()) for s in samples)
    assert 0.4 < np.mean(labels) < 0.6 and 0.4 < np.mean(markers) < 0.6
    assert abs(_phi(labels, markers)) < 0.15


def test_split_label_mode_confounds_marker():
    samples = make_split("train", 100, marker_mode="label")
    assert all(s.marker == bool(s.label) == s.mask.any() for s in samples)
    assert 0.3 < np.mean([s.label for s in samples]) < 0.7


def test_split_shortcut_mode_label_is_marker():
    samples = make_split("train", 300, marker_mode="shortcut")
    labels = [s.label for s in samples]
    lesions = [s.mask.any() for s in samples]
    assert all(s.label == int(s.marker) for s in samples)
    assert 0.4 < np.mean(labels) < 0.6 and 0.4 < np.mean(lesions) < 0.6
    assert abs(_phi(labels, lesions)) < 0.15


def test_split_prefix_and_rate_and_bad_mode():
    short, long_ = make_split("val", 10), make_split("val", 20)
    assert all(_same(a, b) for a, b in zip(short, long_))
    assert all(s.label == 1 for s in make_split("val", 20, lesion_rate=1.0))
    assert all(s.label == 0 for s in make_split("val", 20, lesion_rate=0.0))
    with pytest.raises(ValueError, match="marker_mode"):
        make_split("val", 2, marker_mode="sometimes")


# --- architectures ----------------------------------------------------------


def _macs(model: nn.Module) -> int:
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out[0].numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", ["democnn", "demoresnet"])
def test_arch_layout_suits_saliency(name):
    model = archs.ARCHS[name]().eval()
    assert type(model) is getattr(demo, {"democnn": "DemoCNN", "demoresnet": "DemoResNet"}[name])
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and all(not r.inplace for r in relus)
    assert len({id(r) for r in relus}) == len(relus)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())

    calls: dict[int, int] = {}
    completed: list[tuple[nn.Module, torch.Tensor]] = []

    def hook(m, inp, out):
        calls[id(m)] = calls.get(id(m), 0) + 1
        completed.append((m, out))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    x = torch.randn(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    out = model(x)
    for h in handles:
        h.remove()
    assert out.shape == (2, 2)
    assert all(calls.get(id(r)) == 1 for r in relus), "every ReLU module must run exactly once"

    spatial = [(m, o) for m, o in completed if isinstance(o, torch.Tensor) and o.dim() == 4 and o.shape[-1] > 1]
    gradcam_module, gradcam_out = spatial[-1]
    assert gradcam_module is model.features
    assert gradcam_out.shape[-2:] == (16, 16) and gradcam_out.min() >= 0
    spatial_leaves = [(m, o) for m, o in spatial if not list(m.children())]
    assert isinstance(spatial_leaves[-1][0], nn.ReLU) and spatial_leaves[-1][1] is gradcam_out

    assert _macs(model) <= 60e6


def test_arch_gradients_reach_input():
    model = archs.DemoCNN().eval()
    x = torch.randn(1, 1, IMAGE_SIZE, IMAGE_SIZE, requires_grad=True)
    model(x)[0, 1].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# --- training and cache -----------------------------------------------------


def test_variants_and_cache_dir(monkeypatch, tmp_path):
    assert set(train.VARIANTS) == {"primary", "replicate1", "replicate2", "other-arch", "random-label", "shortcut"}
    assert {v["arch"] for v in train.VARIANTS.values()} <= set(archs.ARCHS)
    assert train.VARIANTS["other-arch"]["arch"] != train.VARIANTS["primary"]["arch"]
    seeds = [train.VARIANTS[v]["seed"] for v in ("primary", "replicate1", "replicate2")]
    assert len(set(seeds)) == 3
    monkeypatch.setenv("SALIENCY_AUDIT_CACHE", str(tmp_path))
    assert demo.demo_cache_dir() == tmp_path
    monkeypatch.delenv("SALIENCY_AUDIT_CACHE")
    assert demo.demo_cache_dir() == Path.home() / ".cache" / "saliency-audit"


def test_unknown_variant_raises(tmp_path):
    with pytest.raises(ValueError, match="primary"):
        demo.load_demo_model("resnet50", cache_dir=tmp_path)
    assert not (tmp_path / "demo-models").exists()


def test_training_is_deterministic_and_leaves_caller_rng_alone():
    spec = dict(train.VARIANTS["primary"], n_train=48, epochs=1)
    torch.manual_seed(1234)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    a, info = train._train(spec)
    b, _ = train._train(spec)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c, _ = train._train(dict(spec, seed=2))
    assert not torch.equal(sa["head.2.weight"], c.state_dict()["head.2.weight"])
    assert info["n_train"] == 48 and 0 <= info["val_accuracy"] <= 1


def test_random_label_permutes_labels():
    x, y = train._training_data(dict(train.VARIANTS["random-label"], n_train=64))
    _, y_true = train._training_data(dict(train.VARIANTS["primary"], n_train=64))
    assert sorted(y.tolist()) == sorted(y_true.tolist()) and not torch.equal(y, y_true)
    x2, y2 = train._training_data(dict(train.VARIANTS["random-label"], n_train=64))
    assert torch.equal(y, y2)


@pytest.fixture
def fake_train(monkeypatch, tmp_path_factory):
    """Replace the slow training by an untrained model; count calls (no shipped weights: the cache is tested)."""
    monkeypatch.setattr(train, "SHIPPED", tmp_path_factory.mktemp("no-shipped-weights"))
    calls = []

    def _fake(spec, *args, **kwargs):
        calls.append(spec)
        time.sleep(0.2)  # long enough for a concurrent caller to queue on the lock
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec["seed"])
            model = archs.ARCHS[spec["arch"]]().eval()
        return model, {"train_accuracy": 0.5, "val_accuracy": 0.5, "n_train": 0, "epochs": 0, "train_seconds": 0.0}

    monkeypatch.setattr(train, "_train", _fake)
    return calls


def test_cache_roundtrip(fake_train, tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCY_AUDIT_CACHE", str(tmp_path))
    model, info = demo.load_demo_model("replicate1")
    assert len(fake_train) == 1
    path = Path(info["path"])
    assert path.parent == tmp_path / "demo-models"
    assert path.name == f"replicate1-g{world.GENERATOR_VERSION}-t{train.TRAIN_VERSION}-s2.pt"
    assert path.with_suffix(".json").exists()
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {"variant", "arch", "seed", "generator_version", "train_version", "val_accuracy",
            "train_accuracy", "n_train", "epochs", "train_seconds", "path", "sha256"} <= set(info)
    assert not model.training and all(p.requires_grad for p in model.parameters())
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]

    again, info2 = demo.load_demo_model("replicate1")
    assert len(fake_train) == 1, "second load must come from the cache"
    assert info2["sha256"] == info["sha256"]
    x = torch.randn(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))

    demo.load_demo_model("replicate1", retrain=True)
    assert len(fake_train) == 2
    path.write_bytes(b"corrupt")
    _, info3 = demo.load_demo_model("replicate1")
    assert len(fake_train) == 3, "a corrupt cache file must be retrained"
    assert info3["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_concurrent_loads_train_once(fake_train, tmp_path):
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(demo.load_demo_model("shortcut", cache_dir=tmp_path)[1]))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_train) == 1
    assert len({r["sha256"] for r in results}) == 1


def test_shipped_weights_are_used_verified_and_never_trained(fake_train, tmp_path, monkeypatch):
    """The package ships the weights the demo's documented tables come from: no training on first use, and a shipped
    file whose sha256 is not the manifest's is not used."""
    monkeypatch.setattr(train, "SHIPPED", Path(train.__file__).resolve().parent / "weights")
    manifest = json.loads((train.SHIPPED / "manifest.json").read_text())
    assert set(manifest) == {train._stem(v) for v in (*train.VARIANTS, *train.MULTILABEL_VARIANTS)}
    for variant in train.VARIANTS:
        _, info = demo.load_demo_model(variant, cache_dir=tmp_path)
        assert info["source"] == "shipped" and info["sha256"] == manifest[train._stem(variant)]["sha256"]
    assert not fake_train and not (tmp_path / "demo-models").exists()
    tampered = tmp_path / "tampered"
    shutil.copytree(train.SHIPPED, tampered)
    blob = bytearray((tampered / f"{train._stem('primary')}.pt").read_bytes())
    blob[-100] ^= 1
    (tampered / f"{train._stem('primary')}.pt").write_bytes(bytes(blob))
    monkeypatch.setattr(train, "SHIPPED", tampered)
    _, info = demo.load_demo_model("primary", cache_dir=tmp_path)
    assert len(fake_train) == 1 and "source" not in info  # trained, not loaded from the damaged file


@pytest.mark.slow
def test_primary_trains_and_caches(tmp_path, monkeypatch):
    """The training that made the shipped weights still runs and gives the same model up to float kernels:
    retrained here, it agrees with the shipped primary on nearly every validation image."""
    shipped, _ = demo.load_demo_model("primary")
    monkeypatch.setattr(train, "SHIPPED", tmp_path / "no-shipped-weights")
    monkeypatch.setenv("SALIENCY_AUDIT_CACHE", str(tmp_path))
    model, info = demo.load_demo_model("primary")
    assert info["val_accuracy"] >= 0.9
    assert info["train_accuracy"] >= 0.9
    assert info["n_train"] >= 1500
    x, _ = train._split_tensors("val", 200, "independent")
    with torch.no_grad():
        agree = (model(x).argmax(1) == shipped(x).argmax(1)).float().mean().item()
    assert agree >= 0.95, agree

    def _no_training(spec):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(train, "_train", _no_training)
    again, info2 = demo.load_demo_model("primary")
    assert info2["sha256"] == info["sha256"] and info2["val_accuracy"] == info["val_accuracy"]
    x = torch.rand(4, 1, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
