"""Methods on torchvision architectures with random weights (no downloads)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from saliency_audit.config import AuditConfig
from saliency_audit.data.sample import Sample
from saliency_audit.engine.maps import MapStore
from saliency_audit.methods.cam import gradcam_batch
from saliency_audit.models import load_model
from saliency_audit.models.layers import find_cam_layer
from saliency_audit.models.relu_mode import ReluMode


def _checkpoint(tmp_path, arch, **kw):
    torch.manual_seed(0)
    net = torchvision.models.get_model(arch, weights=None, num_classes=2, **kw)
    path = tmp_path / f"{arch}.pt"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    out = {}
    for arch, kw in [("resnet18", {}), ("densenet121", {}),
                     ("inception_v3", {"aux_logits": False, "init_weights": True})]:
        out[arch] = load_model(f"{arch}:{_checkpoint(tmp, arch, **kw)}")
    return out


@pytest.mark.parametrize("arch,layer,post_relu", [
    ("resnet18", "layer4", False),  # post-ReLU output of the last residual stage
    ("densenet121", "features", True),  # features ends in norm5: the functional ReLU after it is tapped
    ("inception_v3", "Mixed_7c", False),  # a container block: the concat of post-ReLU branches
])
def test_gradcam_layer_discovery(models, arch, layer, post_relu):
    found = find_cam_layer(models[arch])
    assert (found.name, found.post_relu) == (layer, post_relu)
    assert found.shape == ((8, 8) if arch == "inception_v3" else (7, 7))


@pytest.mark.parametrize("arch,size", [("densenet121", 64), ("inception_v3", 75)])
def test_guided_backprop_guides_functional_relus(models, arch, size):
    model = models[arch]
    model.info.input_size = (size, size)
    x = torch.rand(2, 1, size, size)
    with torch.no_grad():
        plain = model(x)
        with ReluMode(guided=True) as mode:
            guided = model(x)
    torch.testing.assert_close(plain, guided, rtol=0, atol=0)  # logits untouched
    assert mode.calls > 50  # every F.relu call of the network went through the guided rule
    store = MapStore(AuditConfig(), None)
    samples = [Sample(id=f"s{i}", image=x[i], label=1) for i in range(2)]
    keys = [s.key() for s in samples]
    g = store.raw(model, "grad", samples, keys)
    b = store.raw(model, "gbp", samples, keys)
    assert not torch.allclose(g, b)
    # the guided rule only lets positive gradients through ReLUs, so GBP and the gradient differ in sign pattern
    assert (torch.sign(g) != torch.sign(b)).float().mean() > 0.05


def test_gradcam_matches_hand_built_reference_on_densenet(models):
    model = models["densenet121"]
    model.info.input_size = (64, 64)
    torch.manual_seed(1)
    x = torch.rand(2, 1, 64, 64)
    layer = find_cam_layer(model)
    ours = gradcam_batch(model, x, 1, layer)
    net = model.net
    z = ((x.expand(-1, 3, -1, -1) - model.mean) / model.std).requires_grad_(True)
    act = F.relu(net.features(z))
    logits = net.classifier(torch.flatten(F.adaptive_avg_pool2d(act, 1), 1))
    (g,) = torch.autograd.grad(logits[:, 1].sum(), act)
    ref = torch.relu((g.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    ref = F.interpolate(ref, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, ref.detach())
    # the pre-ReLU module output would give another map: the tap matters
    pre = net.features(z)
    (gp,) = torch.autograd.grad(net.classifier(torch.flatten(F.adaptive_avg_pool2d(F.relu(pre), 1), 1))[:, 1].sum(), pre)
    wrong = torch.relu((gp.mean(dim=(2, 3), keepdim=True) * pre).sum(1, keepdim=True))
    assert not torch.allclose(F.interpolate(wrong, size=(64, 64), mode="bilinear", align_corners=False), ref)


def test_all_eight_methods_run_batched_on_resnet(models):
    model = models["resnet18"]
    model.info.input_size = (64, 64)
    cfg = AuditConfig()
    cfg.methods.sg.samples = 3
    store = MapStore(cfg, None)
    samples = [Sample(id=f"s{i}", image=torch.rand(1, 80, 80), label=1) for i in range(3)]
    for method in ("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam"):
        ms = store.maps(model, method, samples)
        assert ms.maps.shape == (3, 64, 64)
        assert ms.maps.min() >= 0 and ms.maps.max() <= 1
        assert np.isfinite(ms.maps).all()


class _GuidedReLU(torch.autograd.Function):
    """Reference guided ReLU (Springenberg et al. 2015): pass a gradient only where input > 0 and gradient > 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0) * (g > 0)


def _normalised_input(model, x):
    return ((x.expand(-1, 3, -1, -1) - model.mean) / model.std).requires_grad_(True)


def _reference_gbp_densenet(model, x):
    """GBP built by hand: every ReLU of DenseNet (nn.ReLU modules and the F.relu after ``features``) guided."""
    import copy

    net = copy.deepcopy(model.net)
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(module, child_name, _Lambda(_GuidedReLU.apply))
    z = _normalised_input(model, x)
    out = net.classifier(torch.flatten(F.adaptive_avg_pool2d(_GuidedReLU.apply(net.features(z)), 1), 1))
    (g,) = torch.autograd.grad(out[:, 1].sum(), z)
    return g


def _reference_gbp_inception(model, x):
    """GBP built by hand for Inception v3: its ReLUs are the functional ones inside every BasicConv2d."""
    import copy
    import types

    from torchvision.models.inception import BasicConv2d

    net = copy.deepcopy(model.net)
    for m in net.modules():
        if isinstance(m, BasicConv2d):
            m.forward = types.MethodType(lambda self, t: _GuidedReLU.apply(self.bn(self.conv(t))), m)
    net.transform_input = False
    z = _normalised_input(model, x)
    (g,) = torch.autograd.grad(net(z)[:, 1].sum(), z)
    return g


class _Lambda(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, t):
        return self.fn(t)


@pytest.mark.parametrize("arch,size,reference", [("densenet121", 64, _reference_gbp_densenet),
                                                 ("inception_v3", 80, _reference_gbp_inception)])
def test_guided_backprop_matches_hand_built_reference(models, arch, size, reference):
    model = models[arch]
    model.info.input_size = (size, size)
    assert not model.net.transform_input if arch == "inception_v3" else True
    torch.manual_seed(2)
    x = torch.rand(2, 1, size, size)
    samples = [Sample(id=f"g{i}", image=x[i], label=1) for i in range(2)]
    ours = MapStore(AuditConfig(), None).raw(model, "gbp", samples, [s.key() for s in samples])
    ref = reference(model, x)
    # our input is the 1-channel image replicated to RGB: its gradient is the sum over the RGB gradients / std
    ref = (ref / model.std).sum(1, keepdim=True)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)
    plain = MapStore(AuditConfig(), None).raw(model, "grad", samples, [s.key() for s in samples])
    assert not torch.allclose(plain, ref, rtol=1e-3, atol=1e-6)  # the reference is not the plain gradient


def test_gradcam_matches_hand_built_reference_on_inception(models):
    """Mixed_7c's output concatenates post-ReLU branches: GradCAM uses it as is."""
    model = models["inception_v3"]
    model.info.input_size = (80, 80)  # too small: Mixed_7c is 1x1 there, and the fallback says so
    small = find_cam_layer(model)
    assert small.name != "Mixed_7c" and "Mixed_7c) is 1x1 at input 80x80" in small.warning
    model.info.input_size = (139, 139)
    torch.manual_seed(3)
    x = torch.rand(2, 1, 139, 139)
    layer = find_cam_layer(model)
    assert (layer.name, layer.shape) == ("Mixed_7c", (3, 3)) and "coarse" in layer.warning
    ours = gradcam_batch(model, x, 1, layer)
    net = model.net
    seen = {}
    handle = net.Mixed_7c.register_forward_hook(lambda m, i, o: seen.setdefault("act", o))
    try:
        logits = net(_normalised_input(model, x))
    finally:
        handle.remove()
    act = seen["act"]
    assert (act >= 0).all()
    (g,) = torch.autograd.grad(logits[:, 1].sum(), act)
    ref = torch.relu((g.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    ref = F.interpolate(ref, size=(139, 139), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, ref.detach())
