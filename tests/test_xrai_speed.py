"""The fast XRAI path gives the maps of the previous, slow one, bit for bit.

saliency_audit.methods.xrai replaced per-segment skimage dilations by one scatter per footprint offset, PAIR's
region ranking (``XRAI._xrai``) by an incremental equivalent, and added an on-disk segment cache.  The slow
implementation is kept here as the reference: per-segment ``skimage.morphology.dilation`` and PAIR's
``XRAI.GetMask`` on those segments.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from saliency.core import XRAI, XRAIParameters
from saliency.core.xrai import _gain_density
from skimage.morphology import dilation, disk
from skimage.segmentation import felzenszwalb
from skimage.transform import resize
from torch import nn

import saliency_audit.methods.xrai as X
from saliency_audit.config import AuditConfig, XRAIParams
from saliency_audit.data.sample import Sample
from saliency_audit.engine.maps import MapStore
from saliency_audit.methods import segments_cache
from saliency_audit.models.info import ModelInfo
from saliency_audit.models.randomize import randomize_copy
from saliency_audit.models.wrapper import AuditModel


# -- the reference: saliency_audit/methods/xrai.py before the fast path ---------------------------------------------
def reference_segments(image: np.ndarray, params) -> list[np.ndarray]:
    im = np.asarray(image, dtype=np.float64)
    if im.ndim == 3:
        im = im.mean(axis=-1) if im.shape[-1] > 1 else im[..., 0]
    h, w = im.shape
    span = im.max() - im.min()
    im = (im - im.min()) / (span if span > 0 else 1.0) * 2.0 - 1.0
    ref = params.reference_size
    work = resize(im, (ref, ref), order=3, mode="constant", preserve_range=True, anti_aliasing=True)
    radius = int(round(params.dilation_radius * min(h, w) / ref))
    masks = []
    for s in params.scales:
        seg = felzenszwalb(work, scale=s, sigma=params.sigma, min_size=params.min_segment_size)
        seg = resize(seg, (h, w), order=0, preserve_range=True, mode="constant", anti_aliasing=False).astype(int)
        for label in np.unique(seg):
            m = seg == label
            masks.append(dilation(m, footprint=disk(radius)) if radius > 0 else m)
    return masks


def reference_xrai(model, x, keys, target, cfg, memo) -> torch.Tensor:
    p = cfg.methods.xrai
    base = memo["raw"]["ig"].cpu().numpy()
    images = x.detach().cpu().numpy()
    out = np.zeros((len(images), 1) + images.shape[-2:], dtype=np.float64)
    for i in range(len(keys)):
        img = np.transpose(images[i], (1, 2, 0))
        out[i, 0] = XRAI().GetMask(img, call_model_function=None, base_attribution=np.transpose(base[i], (1, 2, 0)),
                                   segments=reference_segments(img, p),
                                   extra_parameters=XRAIParameters(algorithm=p.algorithm))
    return torch.from_numpy(out)


# -- helpers ------------------------------------------------------------------------------------------------------
def _image(seed: int, shape=(48, 40), channels=1) -> np.ndarray:
    """Smooth blobs on a gradient plus noise: Felzenszwalb finds segments of many sizes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    im = yy / shape[0] + 0.2 * rng.normal(size=shape)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(3, 12)
        im += rng.uniform(0.5, 2) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    return np.repeat(im[..., None], channels, axis=-1).astype(np.float32)


def _model(size=40, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    info = ModelInfo(spec=f"tiny{size}", arch="tiny", num_classes=2, input_size=(size, size), in_channels=1,
                     mean=(0.5,), std=(0.25,))
    return AuditModel(net, info).eval()


def _samples(n=3, size=40):
    return [Sample(id=f"x{i}", image=torch.from_numpy(_image(i, (size, size))[..., 0])[None] / 4, label=1)
            for i in range(n)]


# -- pieces -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 7])
def test_dilated_masks_equal_skimage_dilation(radius):
    rng = np.random.default_rng(radius)
    for shape in ((1, 1), (3, 17), (23, 9), (30, 30)):
        labels = np.stack([rng.integers(0, 6, size=shape), rng.integers(2, 4, size=shape),
                           np.zeros(shape, dtype=int)])
        labels[1, : shape[0] // 2] = 9  # a label that skips values, and a scale with one label
        fast = X.dilated_masks(labels, radius)
        slow = [dilation(seg == v, footprint=disk(radius)) if radius else seg == v
                for seg in labels for v in np.unique(seg)]
        assert fast.dtype == bool and fast.shape == (len(slow),) + shape
        for a, b in zip(fast, slow):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape,channels", [((48, 40), 1), ((32, 32), 3)])
def test_segments_equal_the_reference(shape, channels):
    img, p = _image(1, shape, channels), XRAIParams()
    fast, slow = X.segments(img, p), reference_segments(img, p)
    assert len(fast) == len(slow) > 10
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def test_rank_regions_is_pairs_ranking_bit_for_bit():
    p = XRAIParams()
    rng = np.random.default_rng(0)
    for seed in range(3):
        img = _image(seed)
        masks = X.segments(img, p)
        attrs = [rng.normal(size=img.shape[:2]).astype(np.float32),
                 np.round(rng.normal(size=img.shape[:2]), 1).astype(np.float32),  # many tied gains
                 np.zeros(img.shape[:2], np.float32),  # every gain tied
                 (img[..., 0] * rng.uniform(0.5, 2)).astype(np.float32)]
        for attr in attrs:
            for th, diff in ((1.0, 50), (0.4, 50), (1.0, 1), (0.7, 5)):
                ref = XRAI._xrai(attr, list(masks), gain_fun=_gain_density, area_perc_th=th, min_pixel_diff=diff)[0]
                got = X.rank_regions(attr, np.stack(masks), diff, th)
                assert got.dtype == ref.dtype
                np.testing.assert_array_equal(got, ref)


# -- through MapStore: the maps -----------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["full", "fast"])
def test_maps_equal_the_reference_on_trained_and_randomized_models(monkeypatch, algorithm):
    cfg = AuditConfig()
    cfg.methods.xrai.algorithm = algorithm
    model, samples = _model(), _samples()
    rand, _ = randomize_copy(model, seed=1)
    fast_store = MapStore(cfg, None)
    fast = [fast_store.maps(m, "xrai", samples) for m in (model, rand)]
    monkeypatch.setattr(X, "xrai", reference_xrai)
    slow = [MapStore(cfg, None).maps(m, "xrai", samples) for m in (model, rand)]
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.maps, b.maps)
        np.testing.assert_array_equal(a.signed, b.signed)
        np.testing.assert_array_equal(a.constant, b.constant)
    assert not np.array_equal(fast[0].maps, fast[1].maps)


def test_non_finite_attributions_take_pairs_path(monkeypatch):
    calls = []
    real = XRAI.GetMask
    monkeypatch.setattr(XRAI, "GetMask", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    cfg = SimpleNamespace(methods=SimpleNamespace(xrai=XRAIParams()))
    img = _image(0)
    ig = np.random.default_rng(0).normal(size=(1, 1) + img.shape[:2]).astype(np.float32)
    x = torch.from_numpy(np.transpose(img, (2, 0, 1))[None])
    memo = {"raw": {"ig": torch.from_numpy(ig)}}
    X.xrai(None, x, ["k"], 0, cfg, memo)
    assert not calls
    ig[0, 0, 3, 3] = np.inf  # (PAIR would fail on NaN gains: a mask no scan can pick)
    out = X.xrai(None, x, ["k"], 0, cfg, {"raw": {"ig": torch.from_numpy(ig)}})
    assert calls and out.shape == (1, 1) + img.shape[:2]


# -- segments are computed once per image: across models in a run, and across runs through the cache folder ------
def _count_segmentations(monkeypatch):
    seen = []
    real = X.segment_labels
    monkeypatch.setattr(X, "segment_labels", lambda image, params: seen.append(1) or real(image, params))
    return seen


def test_segments_are_shared_across_models_and_runs(tmp_path, monkeypatch):
    seen = _count_segmentations(monkeypatch)
    model, samples = _model(), _samples()
    other = _model(seed=1)
    store = MapStore(AuditConfig(), tmp_path / "a")
    first = store.maps(model, "xrai", samples)
    store.maps(other, "xrai", samples)
    assert len(seen) == len(samples)  # once per image, not per model
    files = sorted((tmp_path / "a" / "segments").rglob("*.npz"))
    assert len(files) == len(samples)
    # a new process (another xdist worker, a second run) whose map cache is empty reads the segments
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "segments").symlink_to(tmp_path / "a" / "segments")
    again = MapStore(AuditConfig(), tmp_path / "b").maps(model, "xrai", samples)
    assert again.computed == len(samples) and len(seen) == len(samples)
    np.testing.assert_array_equal(again.maps, first.maps)
    # a torn file is recomputed, and rewritten
    files[0].write_bytes(b"torn")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "segments").symlink_to(tmp_path / "a" / "segments")
    third = MapStore(AuditConfig(), tmp_path / "c").maps(model, "xrai", samples)
    assert len(seen) == len(samples) + 1
    np.testing.assert_array_equal(third.maps, first.maps)
    assert segments_cache.load(tmp_path / "a", files[0].stem) is not None


def test_segment_key_follows_image_and_parameters(tmp_path):
    img, p = _image(0), XRAIParams()
    key = X.segments_key(img, p)
    assert X.segments_key(img.copy(), p) == key
    assert X.segments_key(np.repeat(img, 3, axis=-1), p) == key  # the grey levels the segmentation reads
    assert X.segments_key(img * 1.001, p) != key
    assert X.segments_key(img, XRAIParams(scales=(50, 100))) != key
    assert X.segments_key(img, XRAIParams(dilation_radius=4.0)) != key
    assert X.segments_key(img[:40], p) != key
    X.image_segments(img, p, None, None)  # no cache folder: nothing written
    assert not list(tmp_path.iterdir())
