"""GradCAM++, ScoreCAM, LayerCAM and HiResCAM against TorchCAM 0.5 and a hand-built reference.

Networks (random weights, seeded, eval mode, 2 classes, 3-channel input, mean 0 / std 1 so that the
AuditModel's input is the network input TorchCAM sees):

* torchvision ``resnet18`` (``layer4``) and ``densenet121`` (``F.relu(features)``) at 96 px, 3x3 maps.  Both end
  in global average pooling and one linear layer, so the gradient at the CAM layer is the same at every position:
  HiResCAM then *equals* GradCAM (Draelos & Carin note it), and GradCAM++'s alpha does not depend on where the
  third derivative is taken.
* "spatial-head": a small CNN whose head flattens its 12x12 map into two linear layers, so gradients vary over
  the map and the per-position parts of GradCAM++, LayerCAM and HiResCAM are exercised.
* for ScoreCAM, whose reference costs K forward passes per image: a small torchvision ``DenseNet`` (the same class
  and forward, functional ReLU included, 32 channels instead of 1024), the spatial head, and (slow) resnet18.

Maps are compared at input resolution: TorchCAM's raw map (``normalized=False``: after its ReLU, before its
min-max) is upsampled as ours (bilinear, ``align_corners=False``); both are divided by their max per image and
must agree within ``TOL`` (an absolute difference relative to each map's max).  Each reference also rejects
deliberately broken variants by more than ``TOL``, so the tolerance is not vacuous.

Bridges between TorchCAM and what we explain (see saliency_audit/methods/camfamily.py for the choices):

* DenseNet's explained tensor is ``F.relu(features output)``, a functional ReLU TorchCAM cannot hook (its hook
  on ``features`` gives the pre-ReLU output, whose gradient is another tensor).  TorchCAM therefore runs on an
  equivalent network, the same modules and weights with ``features`` ending in an ``nn.ReLU`` *module* and no
  functional ReLU after it: its hooked output and gradient are exactly our post-ReLU tap's (the logits are
  checked equal).  Ours runs on the torchvision network itself, through the ``ReluMode`` tap.
* GradCAM++: TorchCAM 0.5's ``GradCAMpp`` divides ``alpha[mask].div_(...)``, which acts on a copy (boolean
  indexing), so its alpha is plain g^2, and its denominator sums ``A * g^3`` over positions where the paper
  (Eq. 19) has ``g_ij^3 * sum_ab A_ab``.  The reference is TorchCAM's extractor (hooks, backprop, combination,
  ReLU) with ``_get_weights`` corrected to Eq. 19.
* ScoreCAM: TorchCAM weighs channels by a softmax over channels of the target logit's increase; we (and the
  authors' code) by the softmax class probability of the target.  TorchCAM on the network followed by
  ``LogSoftmax`` computes ``softmax_k(log P_k - log P_0) = P_k / sum_m P_m``: ours up to a factor per image,
  which the division by the max removes.  TorchCAM also min-max normalises the activations before upsampling
  them into masks, the paper after; the reference upsamples first (stock TorchCAM is checked to be within 5e-3).
* HiResCAM has no TorchCAM implementation: the reference hooks the layer, takes the gradient by autograd and
  forms ReLU(sum_k g_k * A_k) by hand.
"""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchcam.methods import GradCAMpp, LayerCAM, ScoreCAM
from torchvision.models.densenet import DenseNet

from saliency_audit.config import AuditConfig
from saliency_audit.data.sample import Sample
from saliency_audit.data.resize import prepare
from saliency_audit.engine.maps import MapStore
from saliency_audit.methods import camfamily
from saliency_audit.methods.registry import METHODS
from saliency_audit.models.info import ModelInfo
from saliency_audit.models.layers import CamLayer, find_cam_layer
from saliency_audit.models.wrapper import AuditModel
from saliency_audit.methods.targets import pick

TOL = 1e-4  # max |ours/max(ours) - ref/max(ref)| per image; measured <= 5e-7 (ScoreCAM), 0 (the others)
SIZE = 96
TARGETS = {"int": lambda n: 1, "per-image": lambda n: torch.tensor([1, 0, 1, 0][:n])}
GAP_HEADS = ("resnet18", "densenet121")


def _wrap(net: nn.Module, name: str, size: int) -> AuditModel:
    info = ModelInfo(spec=name, arch=name, num_classes=2, input_size=(size, size), in_channels=3,
                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return AuditModel(net.eval(), info).eval()


def _equivalent_densenet(net: DenseNet) -> nn.Module:
    """The same modules and weights, ``features`` ending in an nn.ReLU module instead of the functional F.relu."""
    features = nn.Sequential(OrderedDict([("body", net.features), ("relu", nn.ReLU())]))
    return nn.Sequential(OrderedDict([("features", features), ("pool", nn.AdaptiveAvgPool2d(1)),
                                      ("flatten", nn.Flatten()), ("classifier", net.classifier)])).eval()


def _spatial_head() -> nn.Module:
    """A CNN whose head sees every position of its last map (flatten + MLP): gradients vary over the map."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, stride=2, padding=1)), ("bn1", nn.BatchNorm2d(8)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1)), ("relu2", nn.ReLU()),
        ("conv3", nn.Conv2d(16, 16, 3, stride=2, padding=1)), ("relu3", nn.ReLU()),  # 12x12 at 96 px
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(16 * 12 * 12, 32)), ("relu4", nn.ReLU()),
        ("fc2", nn.Linear(32, 2)),
    ]))


class _Net:
    """An AuditModel for our methods, and the network and layer name the references hook."""

    def __init__(self, name: str, net: nn.Module, size: int, n: int, seed: int):
        self.name = name
        self.model = _wrap(net, name, size)
        self.layer = find_cam_layer(self.model)
        if isinstance(net, DenseNet):
            self.ref_net, self.ref_layer = _equivalent_densenet(net), "features"
            assert (self.layer.name, self.layer.post_relu) == ("features", True)
        else:
            self.ref_net, self.ref_layer = net, self.layer.name
            assert not self.layer.post_relu
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, size, size, generator=g)
        with torch.no_grad():  # the bridge is exact: the same logits
            torch.testing.assert_close(self.ref_net(self.x), self.model(self.x))

    def ours(self, method: str, target, cfg: AuditConfig | None = None, layer: CamLayer | None = None):
        fn = METHODS[method].function()
        return fn(self.model, self.x, [], target, cfg or AuditConfig(), {"cam_layer": layer or self.layer})


def _seeded(build, seed=0):
    torch.manual_seed(seed)
    return build()


@pytest.fixture(scope="module")
def nets():
    return {
        "resnet18": _Net("resnet18", _seeded(lambda: torchvision.models.resnet18(num_classes=2)), SIZE, 3, 1),
        "densenet121": _Net("densenet121", _seeded(lambda: torchvision.models.densenet121(num_classes=2)), SIZE, 3, 1),
        "spatial-head": _Net("spatial-head", _seeded(_spatial_head), SIZE, 3, 1),
    }


@pytest.fixture(scope="module")
def scorecam_nets(nets):
    small = _seeded(lambda: DenseNet(growth_rate=8, block_config=(2, 2, 2), num_init_features=16, bn_size=2,
                                     num_classes=2))
    return {"densenet-small": _Net("densenet-small", small, SIZE, 3, 2), "spatial-head": nets["spatial-head"]}


def _class_idx(target):
    return target.tolist() if isinstance(target, torch.Tensor) else target


def _torchcam(extractor, net: _Net, target, head: nn.Module | None = None, **kw) -> torch.Tensor:
    """TorchCAM's raw map (after its ReLU, before its normalisation), upsampled to the input like ours."""
    model, layer = net.ref_net, net.ref_layer
    if head is not None:
        model, layer = nn.Sequential(net.ref_net, head).eval(), f"0.{layer}"
    with extractor(model, layer, input_shape=tuple(net.x.shape[1:]), **kw) as ex:
        scores = model(net.x)
        m = ex(class_idx=_class_idx(target), scores=scores, normalized=False)[0]
    return F.interpolate(m[:, None], size=net.x.shape[-2:], mode="bilinear", align_corners=False).detach()


class _GradCAMppEq19(GradCAMpp):
    """TorchCAM's GradCAMpp with its weights as in the paper's Eq. 19 (see the module docstring)."""

    def _get_weights(self, class_idx, scores, eps=1e-8, **kwargs):
        self._backprop(scores, class_idx, **kwargs)
        weights = []
        for act, g in zip(self.hook_a, self.hook_g):
            g2 = g.pow(2)
            denom = 2 * g2 + g2 * g * act.flatten(2).sum(-1)[..., None, None]
            alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, 1.0), 0.0)
            weights.append((alpha * torch.relu(g)).flatten(2).sum(-1))
        return weights


class _ScoreCAMUpsampleFirst(ScoreCAM):
    """TorchCAM's ScoreCAM with the masks upsampled before their min-max normalisation (the paper's order)."""

    @torch.no_grad()
    def _get_weights(self, class_idx, *_, targets=None):
        acts = [self._normalize(self._upsample(a), a.ndim - 2) for a in self.hook_a]
        with self._hooks_off(), self._eval_mode():
            return self._get_score_weights(acts, class_idx, targets)


def _hirescam_reference(net: _Net, target) -> torch.Tensor:
    seen = {}
    module = dict(net.ref_net.named_modules())[net.ref_layer]
    handle = module.register_forward_hook(lambda m, i, o: seen.setdefault("act", o))
    try:
        logits = net.ref_net(net.x)
    finally:
        handle.remove()
    act = seen["act"]
    chosen = logits.gather(1, target.view(-1, 1))[:, 0] if isinstance(target, torch.Tensor) else logits[:, target]
    (g,) = torch.autograd.grad(chosen.sum(), act)
    ref = torch.relu((g * act).sum(dim=1, keepdim=True))
    return F.interpolate(ref, size=net.x.shape[-2:], mode="bilinear", align_corners=False).detach()


REFERENCES = {
    "gradcampp": lambda net, t: _torchcam(_GradCAMppEq19, net, t),
    "layercam": lambda net, t: _torchcam(LayerCAM, net, t),
    "hirescam": _hirescam_reference,
    "scorecam": lambda net, t: _torchcam(_ScoreCAMUpsampleFirst, net, t, head=nn.LogSoftmax(dim=1), batch_size=64),
}


def _diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours/max(ours) - ref/max(ref)| over pixels and images (an all-zero map stays zero)."""
    def unit(m):
        return m / m.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-30)

    return float((unit(ours) - unit(ref)).abs().max())


def _check_reference(ref: torch.Tensor, ours: torch.Tensor):
    assert ours.shape == ref.shape and ours.shape[1] == 1
    assert not ours.requires_grad
    assert (ref.amax(dim=(1, 2, 3)) > 0).all(), "a reference map is all zero: the comparison would be vacuous"


@pytest.fixture(scope="module")
def reference(nets):
    """(reference map, target) of (arch, method, target form), each computed once."""
    cache: dict = {}

    def get(arch, method, form):
        if (arch, method, form) not in cache:
            target = TARGETS[form](len(nets[arch].x))
            cache[arch, method, form] = (REFERENCES[method](nets[arch], target), target)
        return cache[arch, method, form]

    return get


@pytest.mark.parametrize("form", sorted(TARGETS))
@pytest.mark.parametrize("cam_method", ["gradcampp", "layercam", "hirescam"])
@pytest.mark.parametrize("arch", ["resnet18", "densenet121", "spatial-head"])
def test_gradient_cams_match_the_reference(nets, reference, arch, cam_method, form):
    ref, target = reference(arch, cam_method, form)
    ours = nets[arch].ours(cam_method, target)
    _check_reference(ref, ours)
    assert _diff(ours, ref) <= TOL


def _alpha_g2(act, g):  # TorchCAM 0.5's effective GradCAM++ weights: its division by the denominator is lost
    return (g.pow(2) * torch.relu(g)).sum(dim=(2, 3), keepdim=True)


def _torchcam_denominator(act, g):  # TorchCAM's intended alpha: sum_ab A_ab g_ab^3 instead of g_ij^3 sum_ab A_ab
    g2 = g.pow(2)
    denom = 2 * g2 + (g2 * g * act).sum(dim=(2, 3), keepdim=True)
    alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), 0.0)
    return (alpha * torch.relu(g)).sum(dim=(2, 3), keepdim=True)


# (reference method, broken variant: our method run with one part of it replaced, networks where it must fail)
BROKEN = {
    "gradcampp with GradCAM's mean gradient": ("gradcampp", "gradcam", None, None),
    "gradcampp with alpha = g^2": ("gradcampp", "gradcampp", "_gradcampp_weights", _alpha_g2),
    "gradcampp with sum(A g^3) in alpha": ("gradcampp", "gradcampp", "_gradcampp_weights", _torchcam_denominator),
    "layercam without the gradient's ReLU": ("layercam", "hirescam", None, None),
    "hirescam with the gradient's ReLU": ("hirescam", "layercam", None, None),
    "hirescam with the mean gradient": ("hirescam", "gradcam", None, None),
}
# where the gradient is the same at every position (GAP + linear heads) these variants are the method itself
SAME_ON_GAP_HEADS = {"gradcampp with sum(A g^3) in alpha", "hirescam with the mean gradient"}


@pytest.mark.parametrize("variant", list(BROKEN))
@pytest.mark.parametrize("arch", ["resnet18", "densenet121", "spatial-head"])
def test_broken_variants_are_rejected(nets, reference, arch, variant, monkeypatch):
    method, run, attr, replacement = BROKEN[variant]
    ref, target = reference(arch, method, "per-image")
    if attr:
        monkeypatch.setattr(camfamily, attr, replacement)
    broken = nets[arch].ours(run, target)
    if arch in GAP_HEADS and variant in SAME_ON_GAP_HEADS:
        assert _diff(broken, ref) <= TOL  # an identity of these architectures, not a weak reference
    else:
        assert _diff(broken, ref) > 10 * TOL


@pytest.mark.parametrize("cam_method", ["gradcampp", "layercam", "hirescam"])
def test_densenet_functional_relu_tap(nets, reference, cam_method):
    """GradCAM++ averages gradients over positions: the pre-ReLU module output gives another map.  LayerCAM and
    HiResCAM multiply gradient and activation per position, which the tap leaves unchanged (the pre-ReLU gradient
    is the post-ReLU one where the activation is positive, and the activation is 0 elsewhere)."""
    net = nets["densenet121"]
    ref, target = reference("densenet121", cam_method, "per-image")
    pre = net.ours(cam_method, target, layer=CamLayer(net.layer.name, False, net.layer.shape))
    if cam_method == "gradcampp":
        assert _diff(pre, ref) > 10 * TOL
    else:
        assert _diff(pre, ref) <= TOL


@pytest.mark.parametrize("form", sorted(TARGETS))
@pytest.mark.parametrize("arch", ["densenet-small", "spatial-head"])
def test_scorecam_matches_torchcam(scorecam_nets, arch, form, monkeypatch):
    net = scorecam_nets[arch]
    target = TARGETS[form](len(net.x))
    ref = REFERENCES["scorecam"](net, target)
    cfg = AuditConfig()
    cfg.pass_batch = 7  # passes mix images and channels (16-32 channels x 3 images)
    ours = net.ours("scorecam", target, cfg)
    _check_reference(ref, ours)
    assert _diff(ours, ref) <= TOL
    # stock TorchCAM (masks normalised before upsampling) is close: only that order differs
    stock = _torchcam(ScoreCAM, net, target, head=nn.LogSoftmax(dim=1), batch_size=64)
    assert _diff(ours, stock) < 5e-3
    # broken: the raw logit of the masked image as weight, without the softmax
    monkeypatch.setattr(camfamily, "explained_probability", lambda logits, t, kind: pick(logits, t))
    assert _diff(net.ours("scorecam", target, cfg), ref) > 10 * TOL


@pytest.mark.slow
def test_scorecam_matches_torchcam_on_resnet18():
    """~10-20 s on 2 cores: 512 channels x 2 images = 1024 masked passes at 64 px for ours, as many for TorchCAM."""
    net = _Net("resnet18", _seeded(lambda: torchvision.models.resnet18(num_classes=2)), 64, 2, 2)
    target = TARGETS["per-image"](len(net.x))
    ref = REFERENCES["scorecam"](net, target)
    ours = net.ours("scorecam", target)
    _check_reference(ref, ours)
    assert _diff(ours, ref) <= TOL


def _scorecam_by_hand(model, x, target: list[int], layer_name: str) -> torch.Tensor:
    """The authors' loop: one pass per (image, channel), mask upsampled then min-max (0 if constant)."""
    seen = {}
    handle = dict(model.net.named_modules())[layer_name].register_forward_hook(lambda m, i, o: seen.update(act=o))
    with torch.no_grad():
        model(x)
        handle.remove()
        out = []
        for i, act in enumerate(seen["act"]):
            total = torch.zeros(act.shape[-2:])
            for a in act:
                up = F.interpolate(a[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
                mask = torch.zeros_like(up) if a.max() == a.min() else (up - up.min()) / (up.max() - up.min())
                p = torch.softmax(model(x[i : i + 1] * mask), dim=1)[0, target[i]]
                total += p * a
            out.append(F.interpolate(torch.relu(total)[None, None], size=x.shape[-2:], mode="bilinear",
                                     align_corners=False)[0])
    return torch.stack(out)


def test_scorecam_constant_channels_and_pass_batching():
    """A constant channel masks the whole image out (weight: the black image's probability); a dead one adds 0."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 5, 3, padding=1)
    with torch.no_grad():
        conv.weight[0].zero_()
        conv.bias[0] = 0.7  # channel 0: 0.7 everywhere
        conv.weight[1].zero_()
        conv.bias[1] = -1.0  # channel 1: dead after the ReLU
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))
    info = ModelInfo(spec="tiny", arch="tiny", num_classes=3, input_size=(20, 20), in_channels=1, mean=(0.5,),
                     std=(0.25,))
    model = AuditModel(net, info).eval()
    x = torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    layer = CamLayer("1", False, (20, 20))
    target = torch.tensor([2, 0, 1])
    ref = _scorecam_by_hand(model, x, target.tolist(), "1")
    for pass_batch in (2, 64):
        cfg = AuditConfig()
        cfg.pass_batch = pass_batch
        ours = camfamily.scorecam(model, x, [], target, cfg, {"cam_layer": layer})
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def _samples(n=6):
    g = torch.Generator().manual_seed(0)
    return [Sample(id=f"s{i}", image=torch.rand(1, 32, 32, generator=g), label=i % 2) for i in range(n)]


def _tiny(samples, num_classes=2):
    """A small CNN (24 px, one channel) whose bias splits its predictions among ``samples`` (both classes)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, num_classes))
    info = ModelInfo(spec=f"tiny{num_classes}", arch="tiny", num_classes=num_classes, input_size=(24, 24),
                     in_channels=1, mean=(0.5,), std=(0.25,))
    model = AuditModel(net, info).eval()
    if num_classes == 2:
        with torch.no_grad():
            logits = model(prepare(samples, (24, 24), "cpu"))
            margin = logits[:, 1] - logits[:, 0]
            net[-1].bias[1] -= float(margin.median())
    return model


@pytest.mark.parametrize("cam_method", ["gradcampp", "scorecam", "layercam", "hirescam"])
def test_maps_through_the_map_store_for_both_target_forms(cam_method):
    method = cam_method  # not "method": the plugin parametrizes that name with the audit's methods
    samples = _samples()
    model = _tiny(samples)
    fixed = {}
    for c in (0, 1):
        cfg = AuditConfig()
        cfg.target_class = c
        ms = MapStore(cfg, None).maps(model, method, samples)  # an int target
        assert ms.maps.shape == (len(samples), 24, 24)
        assert np.isfinite(ms.maps).all() and ms.maps.min() >= 0 and ms.maps.max() <= 1
        assert ms.notes["cam_layer"]["name"] == "4"  # the last ReLU's output (24x24)
        fixed[c] = ms.maps
    assert not np.allclose(fixed[0], fixed[1])
    cfg = AuditConfig()
    cfg.explain = "predicted"
    store = MapStore(cfg, None)
    store.predictor = lambda: model
    ms = store.maps(model, method, samples)  # a LongTensor target: each image's predicted class
    pred = store.predicted([s.key() for s in samples])
    assert 0 < sum(pred) < len(pred), "need both predicted classes among the samples"
    assert ms.maps.shape == (len(samples), 24, 24)
    assert np.isfinite(ms.maps).all() and ms.maps.min() >= 0 and ms.maps.max() <= 1
    np.testing.assert_allclose(ms.maps, np.stack([fixed[c][i] for i, c in enumerate(pred)]), atol=1e-5)


def test_scorecam_on_a_single_logit_head_weighs_by_the_sigmoid():
    samples = _samples(3)
    ms = MapStore(AuditConfig(), None).maps(_tiny(samples, num_classes=1), "scorecam", samples)
    assert ms.maps.shape == (3, 24, 24) and np.isfinite(ms.maps).all()
    z = torch.tensor([[0.0], [2.0]])
    assert torch.equal(camfamily.explained_probability(z, 0, None), torch.sigmoid(z[:, 0]))
