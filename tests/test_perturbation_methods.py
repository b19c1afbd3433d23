"""Occlusion and LIME: captum references, broken variants that must fail, seeding, a known-region model, MapStore.

References (torchvision models with seeded random weights, no downloads):

* occlusion vs ``captum.attr.Occlusion`` with the same window, stride and
  baseline: max |ours − captum| <= OCC_TOL × max |captum|.  Both evaluate the
  same occluded images in float32; only the batch composition (captum mixes
  images in a pass, we do not) and the summation order differ, ~1e-7 relative.
* lime vs ``captum.attr.Lime`` fed the same superpixels (``feature_mask``),
  the same on/off vectors (a generator ``perturb_func``), the same hidden
  values (``baselines`` = per-superpixel means), lime's kernel (captum's own
  exp kernel, applied to the on/off vector rather than to the images) and
  ``SkLearnRidge``: max |ours − captum| <= LIME_TOL × max |captum|.  captum fits
  the Ridge in float32 (it casts samples, outputs and weights with
  ``.float()``), we in float64: that is the whole difference.  captum is
  called one image at a time: for a batch it sizes every image's surrogate by
  the largest superpixel label of the *batch*, adding dead features to images
  with fewer superpixels.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import Lime, Occlusion
from captum.attr._core.lime import get_exp_kernel_similarity_function
from torch import nn

from saliency_audit.config import AuditConfig
from saliency_audit.data.sample import Sample
from saliency_audit.engine.maps import MapStore
from saliency_audit.methods import lime as lime_mod
from saliency_audit.methods import occlusion as occ_mod
from saliency_audit.methods.lime import draws, lime, segment_means, superpixels
from saliency_audit.methods.occlusion import occlusion
from saliency_audit.models.info import ModelInfo
from saliency_audit.models.randomize import randomize_copy
from saliency_audit.models.wrapper import AuditModel
from saliency_audit.methods.targets import pick

OCC_TOL = 1e-4  # of max |captum attribution|
LIME_TOL = 1e-4  # of max |captum coefficient|: float32 (captum) vs float64 (ours) Ridge
LIME_SAMPLES = 100


# -- models and images ------------------------------------------------------------------------------------------
def _torchvision(arch: str, size: tuple[int, int]) -> AuditModel:
    torch.manual_seed(0)
    net = torchvision.models.get_model(arch, weights=None, num_classes=2).eval()
    info = ModelInfo(spec=arch, arch=arch, num_classes=2, input_size=size, in_channels=3)
    return AuditModel(net, info).eval().requires_grad_(False)


def _tiny(seed=0, size=(64, 64)) -> AuditModel:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    info = ModelInfo(spec="tiny", arch="tiny", num_classes=2, input_size=size, in_channels=1, mean=(0.5,), std=(0.25,))
    return AuditModel(net, info).eval().requires_grad_(False)


def _images(n: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Grey images in [0, 1] with blobs (structure for SLIC) and pixel noise (texture for LIME's mean fill)."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    out = []
    for _ in range(n):
        img = 0.3 + 0.05 * torch.randn(h, w, generator=g)
        for _ in range(4):
            cy, cx = torch.rand(2, generator=g) * torch.tensor([h, w])
            r = 4 + 8 * torch.rand(1, generator=g)
            img += 0.4 * torch.rand(1, generator=g) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r**2).float()
        out.append(img.clamp(0, 1))
    return torch.stack(out)[:, None]


def _colour(x: torch.Tensor) -> torch.Tensor:
    """Three different channels from grey images."""
    return torch.cat([x, 0.5 * x + 0.25, x.flip(-1)], dim=1)


def _cfg(**lime) -> AuditConfig:
    cfg = AuditConfig()
    cfg.pass_batch = 16  # few batch shapes: on CPU each new one costs a network a one-off set-up (seconds for densenet)
    cfg.methods.lime.samples = LIME_SAMPLES
    for k, v in lime.items():
        setattr(cfg.methods.lime, k, v)
    return cfg


KEYS = ["img-a", "img-b"]


# -- occlusion vs captum ----------------------------------------------------------------------------------------
def _captum_occlusion(model, x, target, params, per_eval: int = 8) -> torch.Tensor:
    h, w = x.shape[-2:]
    win = tuple(max(1, round(params.window * s)) for s in (h, w))
    stride = tuple(max(1, round(params.stride * k)) for k in win)
    c = x.shape[1]
    base = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x).contiguous() if params.fill == "mean" else 0.0
    with torch.no_grad():
        ref = Occlusion(model).attribute(x, sliding_window_shapes=(c, *win), strides=(c, *stride), baselines=base,
                                         target=target, perturbations_per_eval=per_eval)
    assert torch.equal(ref, ref[:, :1].expand_as(ref)), "captum repeats a window's value in every channel"
    return ref[:, :1]


def _assert_close_to(ours: torch.Tensor, ref: torch.Tensor, rel: float) -> float:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    err = float((ours - ref).abs().max())
    scale = float(ref.abs().max())
    assert scale > 0 and err <= rel * scale, f"max |ours - ref| = {err:.3g} > {rel} x {scale:.3g}"
    return err / scale


@pytest.mark.parametrize("size,window,stride,fill", [
    ((64, 64), 0.125, 0.5, "zero"),  # the defaults: 8-px windows, stride 4, 15 x 15 windows
    ((72, 80), 0.125, 0.5, "mean"),  # 9 x 10 px, stride 4 x 5: 17 rows (the last cut off at 8 px) x 15 columns
    ((65, 97), 0.3, 0.7, "zero"),  # round(19.5) = 20 and round(29.1) = 29 px, stride 14 and 20, both cut off
])
def test_occlusion_window_geometry_equals_captum(size, window, stride, fill):
    """Window positions, cut-off last windows, fills and averaging, on a cheap network: many windows, many sizes."""
    model = _tiny(size=size)
    x = _images(2, size, seed=5)
    cfg = _cfg()
    cfg.methods.occlusion.window, cfg.methods.occlusion.stride, cfg.methods.occlusion.fill = window, stride, fill
    ours = occlusion(model, x, KEYS, 1, cfg, {})
    _assert_close_to(ours, _captum_occlusion(model, x, 1, cfg.methods.occlusion), OCC_TOL)


@pytest.fixture(scope="module")
def resnet_case():
    size = (64, 72)
    model = _torchvision("resnet18", size)
    x = _images(2, size, seed=1)
    return model, x


RESNET_WINDOW = 0.3  # 19 x 22 px (stride 10 x 11): 6 x 6 windows, the last of each axis cut off at the border


@pytest.mark.parametrize("fill,per_image_target", [("zero", False), ("mean", True)])
def test_occlusion_equals_captum_on_resnet18(resnet_case, fill, per_image_target):
    model, x = resnet_case
    if fill == "mean":
        x = _colour(x)  # the window covers all three channels; the mean is over all of them
    cfg = _cfg()
    cfg.methods.occlusion.fill, cfg.methods.occlusion.window = fill, RESNET_WINDOW
    assert occ_mod.axis_windows(64, 0.3, 0.5)[-1] == (50, 64) and occ_mod.axis_windows(72, 0.3, 0.5)[-1] == (55, 72)
    target = torch.tensor([1, 0]) if per_image_target else 1
    ours = occlusion(model, x, KEYS, target, cfg, {})
    ref = _captum_occlusion(model, x, target, cfg.methods.occlusion)
    rel = _assert_close_to(ours, ref, OCC_TOL)
    print(f"occlusion/{fill}: max |ours - captum| / max |captum| = {rel:.2e}")
    # broken variants the comparison must reject
    with pytest.raises(AssertionError):  # shifted by half a window
        _assert_close_to(torch.roll(ours, shifts=(19 // 2, 22 // 2), dims=(-2, -1)), ref, OCC_TOL)
    with pytest.raises(AssertionError):  # sign flipped (filled − original)
        _assert_close_to(-ours, ref, OCC_TOL)


def test_occlusion_last_window_positions_match_captum(monkeypatch):
    """A common variant (the last window moved back to lie flush with the border) is not captum's Occlusion."""
    size = (72, 80)
    model, x, cfg = _tiny(size=size), _images(2, size, seed=5), _cfg()
    assert occ_mod.axis_windows(72, 0.125, 0.5)[-1] == (64, 72)  # captum: start 16 x 4, cut off at the border
    assert occ_mod.axis_windows(80, 0.125, 0.5)[-1] == (70, 80)
    ref = _captum_occlusion(model, x, 1, cfg.methods.occlusion)

    def flush(side, window, stride):
        w = max(1, round(window * side))
        s = max(1, round(stride * w))
        return sorted({(min(k * s, side - w), min(k * s, side - w) + w) for k in range(math.ceil((side - w) / s) + 1)})

    monkeypatch.setattr(occ_mod, "axis_windows", flush)
    with pytest.raises(AssertionError):
        _assert_close_to(occlusion(model, x, KEYS, 1, cfg, {}), ref, OCC_TOL)


# -- lime vs captum ---------------------------------------------------------------------------------------------
def _captum_lime(model, x, keys, target, cfg, per_eval: int = 16) -> torch.Tensor:
    """captum's Lime fed our superpixels, draws and hidden values; lime's kernel and Ridge; one image at a time."""
    p = cfg.methods.lime
    kernel = get_exp_kernel_similarity_function("cosine", kernel_width=p.kernel_width)  # exp(-d²/(2w²))

    def similarity(original, perturbed, interpretable, **kwargs):  # lime: distance of the on/off vector to all-on
        return kernel(torch.ones_like(interpretable), interpretable, None)

    def forward(images):
        return torch.softmax(model(images), dim=1)

    out = []
    for i, key in enumerate(keys):
        seg = torch.from_numpy(superpixels(x[i], p))
        k = int(seg.max()) + 1
        z = torch.from_numpy(draws(cfg.seed, key, k, p.samples))

        def perturb(inputs, **kwargs):
            for row in z:
                yield row[None]

        explainer = Lime(forward, interpretable_model=SkLearnRidge(alpha=p.ridge), similarity_func=similarity,
                         perturb_func=perturb)
        t = int(target[i]) if isinstance(target, torch.Tensor) else target
        mask = seg[None, None].expand_as(x[i : i + 1])
        with torch.no_grad():
            ref = explainer.attribute(x[i : i + 1], target=t, feature_mask=mask,
                                      baselines=segment_means(x[i], seg, k)[None], n_samples=p.samples,
                                      perturbations_per_eval=per_eval)
        out.append(ref[:, :1])
    return torch.cat(out)


def test_lime_equals_captum_on_resnet18(resnet_case, monkeypatch):
    model, x = resnet_case
    x = torch.stack([x[0].expand(3, -1, -1), _colour(x)[1]])  # grey as RGB (SLIC on one channel), and colour
    cfg = _cfg()
    target = torch.tensor([1, 0])
    ours = lime(model, x, KEYS, target, cfg, {})
    ref = _captum_lime(model, x, KEYS, target, cfg)
    rel = _assert_close_to(ours, ref, LIME_TOL)
    print(f"lime: max |ours - captum| / max |captum| = {rel:.2e}")
    # broken variants the comparison must reject (on the first image: each costs a LIME run)
    with pytest.raises(AssertionError):  # no kernel weights (plain Ridge on the draws)
        monkeypatch.setattr(lime_mod, "kernel_weights", lambda z, width: np.ones(len(z)))
        _assert_close_to(lime(model, x[:1], KEYS[:1], target[:1], cfg, {}), ref[:1], LIME_TOL)
    monkeypatch.undo()
    with pytest.raises(AssertionError):  # logits instead of probabilities
        monkeypatch.setattr(lime_mod, "explained_probability", lambda logits, t, kind: pick(logits, t))
        _assert_close_to(lime(model, x[:1], KEYS[:1], target[:1], cfg, {}), ref[:1], LIME_TOL)


def test_lime_kernel_is_limes():
    """sqrt(exp(-d²/w²)) on the cosine distance to all-ones; an all-off vector is at distance 1."""
    z = np.array([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    d = np.array([0.0, 1 - 1 / 2, 1.0, 1 - math.sqrt(2) / 2])
    np.testing.assert_allclose(lime_mod.kernel_weights(z, 0.25), np.sqrt(np.exp(-(d**2) / 0.25**2)), rtol=1e-12)


@pytest.mark.slow
def test_occlusion_and_lime_equal_captum_on_densenet121():
    size = (64, 64)
    model = _torchvision("densenet121", size)
    x = _images(2, size, seed=2)
    cfg = _cfg(samples=32)
    cfg.methods.occlusion.window = 0.4  # 26-px windows, stride 13: 4 x 4 windows (the last cut off at 25 px)
    ours = occlusion(model, x, KEYS, 1, cfg, {})
    rel_occ = _assert_close_to(ours, _captum_occlusion(model, x, 1, cfg.methods.occlusion), OCC_TOL)
    ours = lime(model, x, KEYS, 1, cfg, {})
    rel_lime = _assert_close_to(ours, _captum_lime(model, x, KEYS, 1, cfg), LIME_TOL)
    print(f"densenet121: occlusion {rel_occ:.2e}, lime {rel_lime:.2e}")


# -- seeding: determinism, batch independence, common random numbers ----------------------------------------------
def _assert_deterministic(model, x, keys, cfg):
    a = lime(model, x, keys, 1, cfg, {})
    b = lime(model, x, keys, 1, cfg, {})
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_lime_is_deterministic_and_unseeded_draws_fail(monkeypatch):
    model, x, cfg = _tiny(), _images(2, (64, 64)), _cfg()
    _assert_deterministic(model, x, KEYS, cfg)

    def unseeded(seed, key, n_features, samples):
        z = np.random.default_rng().integers(0, 2, (samples, n_features))
        z[0] = 1
        return z

    monkeypatch.setattr(lime_mod, "draws", unseeded)
    with pytest.raises(AssertionError):
        _assert_deterministic(model, x, KEYS, cfg)


def test_maps_are_the_same_alone_or_in_a_batch():
    model, cfg = _tiny(), _cfg()
    cfg.methods.occlusion.window = 0.25  # 7 x 7 windows
    x = _images(3, (64, 64), seed=3)
    keys = ["a", "b", "c"]
    batch = lime(model, x, keys, 1, cfg, {})
    alone = lime(model, x[1:2], keys[1:2], 1, cfg, {})
    reordered = lime(model, x[[2, 1]], [keys[2], keys[1]], 1, cfg, {})
    torch.testing.assert_close(alone[0], batch[1], rtol=0, atol=0)
    torch.testing.assert_close(reordered[1], batch[1], rtol=0, atol=0)
    occ = occlusion(model, x, keys, 1, cfg, {})
    torch.testing.assert_close(occlusion(model, x[1:2], keys[1:2], 1, cfg, {})[0], occ[1], rtol=0, atol=0)


def test_draws_are_common_random_numbers_across_models(monkeypatch):
    x, cfg = _images(2, (64, 64)), _cfg()
    trained = _tiny()
    randomized, _ = randomize_copy(trained, seed=5)
    seen: dict[str, list] = {"trained": [], "randomized": []}
    real = lime_mod.draws
    for name, model in (("trained", trained), ("randomized", randomized)):
        monkeypatch.setattr(lime_mod, "draws", lambda *a, _s=seen[name]: _s.append(real(*a)) or _s[-1])
        lime(model, x, KEYS, 1, cfg, {})
    assert len(seen["trained"]) == 2
    for a, b in zip(seen["trained"], seen["randomized"]):
        np.testing.assert_array_equal(a, b)
    # the draw function itself: per (seed, key, draw), row 0 all-on, rows independent of the sample count
    z = draws(0, "a", 30, 50)
    assert z.shape == (50, 30) and (z[0] == 1).all() and set(np.unique(z[1:])) == {0, 1}
    np.testing.assert_array_equal(draws(0, "a", 30, 20), z[:20])
    assert not np.array_equal(draws(0, "b", 30, 50), z)
    assert not np.array_equal(draws(1, "a", 30, 50), z)
    # superpixels depend on the image only
    np.testing.assert_array_equal(superpixels(x[0], cfg.methods.lime), superpixels(x[0].expand(3, -1, -1),
                                                                                    cfg.methods.lime))


def test_per_image_target_equals_the_class_target():
    model, x, cfg = _tiny(), _images(2, (64, 64)), _cfg()
    cfg.methods.occlusion.window = 0.25
    both = lime(model, x, KEYS, torch.tensor([0, 1]), cfg, {})
    torch.testing.assert_close(both[0], lime(model, x, KEYS, 0, cfg, {})[0], rtol=0, atol=0)
    torch.testing.assert_close(both[1], lime(model, x, KEYS, 1, cfg, {})[1], rtol=0, atol=0)
    both = occlusion(model, x, KEYS, torch.tensor([0, 1]), cfg, {})
    torch.testing.assert_close(both[0], occlusion(model, x, KEYS, 0, cfg, {})[0], rtol=0, atol=0)
    torch.testing.assert_close(both[1], occlusion(model, x, KEYS, 1, cfg, {})[1], rtol=0, atol=0)


# -- a model that reads a known square ----------------------------------------------------------------------------
SIZE = 64
REGION = (slice(16, 40), slice(24, 48))


class RegionEnergy(nn.Module):
    """logit(class 1) = 200 × (mean of x² over the square − 0.49): only the square's pixels matter.

    Not the mean of the square (tests/test_completeness.py's RegionReader): LIME's hidden superpixels show
    their own mean, which leaves a mean unchanged; the mean of x² drops by each hidden superpixel's variance.
    """

    def forward(self, x):
        z = 200.0 * ((x[:, :, REGION[0], REGION[1]] ** 2).mean(dim=(1, 2, 3)) - 0.49)
        return torch.stack([torch.zeros_like(z), z], dim=1)


def _region_case():
    info = ModelInfo(spec="region", arch="test", input_size=(SIZE, SIZE), in_channels=1, mean=(0.0,), std=(1.0,))
    model = AuditModel(RegionEnergy(), info).eval()
    g = torch.Generator().manual_seed(0)
    # faint texture (sd 0.02): SLIC (compactness 0.1) then follows the square's edge instead of the noise
    x = 0.3 + 0.02 * torch.randn(2, 1, SIZE, SIZE, generator=g)
    x[:, :, REGION[0], REGION[1]] += 0.4
    inside = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    inside[REGION] = True
    return model, x.clamp(0, 1), inside


def test_perturbation_maps_put_their_mass_on_the_square_the_model_reads():
    model, x, inside = _region_case()
    cfg = _cfg()
    occ = occlusion(model, x, KEYS, 1, cfg, {})[:, 0].abs()
    li = lime(model, x, KEYS, 1, cfg, {})[:, 0].abs()
    for name, m, least in (("occlusion", occ, 0.75), ("lime", li, 0.75)):
        share = m[:, inside].sum(1) / m.flatten(1).sum(1)
        print(f"{name}: share of |attribution| inside the square {share.tolist()}")
        assert (share >= least).all(), (name, share)
    # occlusion: a pixel whose every window misses the square has exactly zero attribution
    w = 8
    far = torch.ones(SIZE, SIZE, dtype=torch.bool)
    far[REGION[0].start - w : REGION[0].stop + w, REGION[1].start - w : REGION[1].stop + w] = False
    assert (occ[:, far] == 0).all()


# -- through the product ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method_name", ["occlusion", "lime"])
def test_maps_through_mapstore(method_name):
    model = _tiny(size=(64, 64))
    imgs = _images(3, (64, 64), seed=4)
    samples = [Sample(id=f"s{i}", image=imgs[i], label=1) for i in range(3)]
    cfg = _cfg()
    fixed = MapStore(cfg, None).maps(model, method_name, samples)
    cfg_pred = _cfg()
    cfg_pred.explain = "predicted"
    store = MapStore(cfg_pred, None)
    store.predictor = lambda: model
    pred = store.maps(model, method_name, samples)
    for ms in (fixed, pred):
        assert ms.maps.shape == (3, 64, 64) and ms.computed == 3
        assert np.isfinite(ms.maps).all() and ms.maps.min() >= 0 and ms.maps.max() <= 1
        assert not ms.constant.any()
    classes = store.predicted([s.key() for s in samples])
    for i, c in enumerate(classes):
        if c == cfg.target_class:
            np.testing.assert_array_equal(pred.maps[i], fixed.maps[i])
