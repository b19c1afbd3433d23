"""Methods on torchvision architectures with random weights (no downloads)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from saliency_audit.config import AuditConfig
from saliency_audit.data.sample import Sample
from saliency_audit.maps import MapStore
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
