"""torchxrayvision models (``--model=xrv:NAME[:PATH]``, saliency_audit/models/xrv.py), with weights the tests make:
random, seeded networks saved as a state dict, a zip-format pickle and a legacy-format pickle.  Nothing is
downloaded."""
import re
import warnings

import pytest
import torch
import torch.nn.functional as F

with warnings.catch_warnings():  # torchxrayvision.models sets warnings.filterwarnings("ignore") when imported
    xrv = pytest.importorskip("torchxrayvision", minversion="1.4",
                              reason="torchxrayvision is not installed (saliency-audit[xrv])")

from saliency_audit.common.errors import AuditUsageError  # noqa: E402
from saliency_audit.common.hashing import file_sha256  # noqa: E402
from saliency_audit.common.specs import parse_spec  # noqa: E402
from saliency_audit.methods.cam import capture, gradcam_batch, upsample  # noqa: E402
from saliency_audit.models import load_model  # noqa: E402
from saliency_audit.models.blocks import randomization_blocks  # noqa: E402
from saliency_audit.models.layers import find_cam_layer  # noqa: E402
from saliency_audit.models.xrv import build_network, cache_path, load_xrv, resolve  # noqa: E402

NIH = "densenet121-res224-nih"
SMALL = (96, 96)  # DenseNet's last map is 3x3 here: enough for GradCAM, fast on a CPU


def _trained_like(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A seeded random network whose BatchNorms are not the identity (as trained ones are not): norm5's output
    is then about half negative, which is what the in-place ReLU trap needs to show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
            elif isinstance(m, torch.nn.Linear):  # mostly positive: GradCAM's weighted sum is then not all < 0
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.05 + 0.02)
    return net.eval()


@pytest.fixture(scope="module")
def densenet():
    torch.manual_seed(0)
    return _trained_like(xrv.models.DenseNet(weights=None), seed=1)


@pytest.fixture(scope="module")
def state_file(densenet, tmp_path_factory):
    path = tmp_path_factory.mktemp("xrv") / "nih.state.pt"
    torch.save(densenet.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def model(state_file):
    """``--model=xrv:densenet121-res224-nih:PATH`` as the audit loads it (at a small input size, for speed)."""
    return load_model(f"xrv:{NIH}:{state_file}", input_size=SMALL)


def _load(spec, unsafe=False):
    """The model of an ``xrv:`` spec without load_model's gradient probe (a DenseNet pass at 224 px)."""
    return load_xrv(parse_spec(spec), "primary", "--model", unsafe)


def _images(n=2, size=SMALL, seed=0):
    return torch.rand(n, 1, *size, generator=torch.Generator().manual_seed(seed))


def _same_weights(net, ref):
    got, want = net.state_dict(), ref.state_dict()
    assert set(got) == set(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)


def test_spec_forms():
    s = parse_spec("xrv:densenet121-res224-all")
    assert (s.kind, s.arch, s.path) == ("xrv", "densenet121-res224-all", None)
    s = parse_spec("xrv:nih:/w/C:/x.pt")  # the PATH keeps its own colons
    assert (s.kind, s.arch, s.path) == ("xrv", "nih", "/w/C:/x.pt")
    for bad in ("xrv:", "xrv::w.pt", "xrv:/tmp/w.pt"):
        with pytest.raises(AuditUsageError, match=r"expected xrv:NAME or xrv:NAME:PATH"):
            parse_spec(bad)
    # every published classifier name resolves, aliases to their architecture's name
    for name in xrv.models.model_urls:
        w = resolve(xrv, name, "--model")
        assert w.family in ("densenet121", "resnet50") and len(w.labels) == 18
        assert w.input_size == (512 if w.family == "resnet50" else 224)
    assert resolve(xrv, "all", "--model").canonical == "densenet121-res224-all"
    assert resolve(xrv, "resnet50-res512-all", "--model").file_name.endswith("resnet50-test512-e400-state.pt")
    with pytest.raises(AuditUsageError, match=r"101-elastic is torchxrayvision's autoencoder, not a classifier"):
        resolve(xrv, "101-elastic", "--model=xrv:101-elastic")
    with pytest.raises(AuditUsageError, match=r"unknown torchxrayvision weights 'densenet121' \(choose from all, "):
        resolve(xrv, "densenet121", "--model=xrv:densenet121")


def test_state_dict_file(densenet, state_file):
    """A state dict loads weights-only; the model declares xrv's conventions and explains logits."""
    model = _load(f"xrv:{NIH}:{state_file}")
    info = model.info
    _same_weights(model.net, densenet)
    assert (info.in_channels, info.input_size, info.num_classes) == (1, (224, 224), 18)
    assert info.output == "sigmoid"
    labels = tuple(xrv.models.model_urls[NIH]["labels"])
    assert info.class_names == labels and info.class_names[3] == "Pneumothorax" and info.class_names[14:] == ("",) * 4
    note = info.extra["xrv"]
    assert note["weights"] == NIH and note["read_as"] == "a state dict, weights-only"
    assert note["sha256"] == info.sha256 == file_sha256(state_file)
    assert note["unused_outputs"] == [14, 15, 16, 17] and note["input_range"] == [-1024, 1024]
    assert "op_threshs=None" in note["calibration"] and note["file_from"] == "PATH of the spec"
    d = info.to_dict()
    assert d["output"] == "sigmoid" and d["class_names"][3] == "Pneumothorax"
    # the logits are torchxrayvision's network on (x - 0.5) * 2048, uncalibrated
    x = _images()
    with torch.no_grad():
        torch.testing.assert_close(model(x), densenet((x - 0.5) * 2048))


def test_input_range(model):
    """The network sees [-1024, 1024] for the audit's [0, 1] images: 0 -> -1024, 0.25 -> -512, 1 -> 1024."""
    seen = {}
    handle = model.net.features.conv0.register_forward_pre_hook(lambda _m, inp: seen.update(x=inp[0].detach()))
    x = torch.zeros(1, 1, *SMALL)
    x[..., :32, :] = 1.0
    x[..., 32:48, :] = 0.25
    with torch.no_grad():
        model(x)
    handle.remove()
    got = seen["x"]
    assert got.shape == (1, 1, *SMALL)
    assert got.min().item() == -1024.0 and got.max().item() == 1024.0
    assert torch.equal(got[..., 32:48, :], torch.full_like(got[..., 32:48, :], -512.0))


def test_calibration_off_gradients_reach_the_input(densenet, model):
    """op_threshs on (torchxrayvision's default for published weights) would hold the outputs of unused findings
    at 0.5 with zero gradient; the audit's model gives every output's logit a gradient."""
    assert model.net.op_threshs is None and model.net.apply_sigmoid is False
    calibrated = xrv.models.DenseNet(weights=None)
    calibrated.load_state_dict(densenet.state_dict())
    calibrated.op_threshs = torch.tensor(xrv.models.model_urls[NIH]["op_threshs"])  # as weights=NIH would set it
    calibrated.eval()
    x = _images(n=1).requires_grad_(True)
    cal_out = calibrated((x - 0.5) * 2048)
    assert torch.all(cal_out[0, 14:] == 0.5)  # unused outputs: a constant
    (g_cal,) = torch.autograd.grad(cal_out[0, 14], x)
    assert torch.count_nonzero(g_cal) == 0
    out = model(x)
    assert out.min() < 0 or out.max() > 1  # logits, not probabilities
    (g,) = torch.autograd.grad(out[0, 14], x)  # an output the nih weights were not trained for
    assert g.abs().sum() > 0
    # the calibrated output is op_norm(sigmoid(logit)): the audit's logit fed to the published calibration
    torch.testing.assert_close(cal_out[0, :14], xrv.models.op_norm(torch.sigmoid(out[:, :14]),
                                                                   calibrated.op_threshs[:14])[0])


def test_whole_network_pickles(densenet, tmp_path):
    """A zip-format pickled network loads weights-only, its classes allowlisted; a legacy-format one (as xrv
    publishes its DenseNets) needs --allow-unsafe-pickle; a pickled class outside the allowlist is refused."""
    zipped = tmp_path / "zip.pt"
    torch.save(densenet, zipped)
    model = _load(f"xrv:{NIH}:{zipped}")
    _same_weights(model.net, densenet)
    assert model.info.extra["xrv"]["read_as"] == "a pickled DenseNet, weights-only"

    legacy = tmp_path / "legacy.pt"
    torch.save(densenet, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(AuditUsageError) as err:
        load_model(f"xrv:{NIH}:{legacy}")
    msg = str(err.value)
    assert "\n" not in msg and "legacy (pre-1.6) format" in msg and "--allow-unsafe-pickle" in msg
    assert f"xrv:{NIH}:{tmp_path / 'legacy.state.pt'}" in msg  # the safe conversion, spelled out
    model = _load(f"xrv:{NIH}:{legacy}", unsafe=True)
    _same_weights(model.net, densenet)
    assert model.info.extra["xrv"]["read_as"] == "a pickled DenseNet, full unpickling (--allow-unsafe-pickle)"

    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torch.nn.Identity()}, foreign)
    with pytest.raises(AuditUsageError, match=r"pickles torch\.nn\.modules\.linear\.Identity, which is not one of "
                                              r"the classes a torchxrayvision densenet121 is made of"):
        load_model(f"xrv:{NIH}:{foreign}")


def test_missing_file_and_cache(densenet, state_file, tmp_path, monkeypatch):
    """Without PATH, the weights come from torchxrayvision's cache file; a missing one is one line naming it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    w = resolve(xrv, NIH, "--model")
    expected = (tmp_path / ".torchxrayvision" / "models_data"
                / "nih-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt")
    assert cache_path(xrv, w) == expected
    with pytest.raises(AuditUsageError) as err:
        load_model(f"xrv:{NIH}")
    msg = str(err.value)
    assert "\n" not in msg and f"not at {expected}," in msg and "never downloads" in msg
    assert w.url in msg and f"xrv:{NIH}:PATH" in msg
    assert not expected.exists()  # nothing was fetched
    with pytest.raises(AuditUsageError, match=re.escape(f"weights file not found: {tmp_path / 'nope.pt'}")):
        load_model(f"xrv:{NIH}:{tmp_path / 'nope.pt'}")
    expected.parent.mkdir(parents=True)
    expected.write_bytes(state_file.read_bytes())
    model = _load(f"xrv:{NIH}")
    _same_weights(model.net, densenet)
    assert model.info.extra["xrv"]["file_from"] == "torchxrayvision's cache"
    assert model.info.extra["xrv"]["file"] == str(expected)


def test_state_dict_that_does_not_fit(densenet, tmp_path):
    state = dict(densenet.state_dict())
    state["classifier.weight"] = state["classifier.weight"][:14]
    state["classifier.bias"] = state["classifier.bias"][:14]
    path = tmp_path / "nih14.pt"
    torch.save(state, path)
    with pytest.raises(AuditUsageError) as err:
        load_model(f"xrv:{NIH}:{path}")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"--model=xrv:{NIH}:{path}: weights file {path} does not fit torchxrayvision's {NIH} "
                          f"(densenet121, 18 outputs): 2 size mismatches [classifier.weight (14, 1024) vs (18, 1024), "
                          f"classifier.bias (14,) vs (18,)]")


def _reference_gradcam(net, x, target):
    """GradCAM by hand on an out-of-place forward: A = relu(features(x)), w = mean of dlogit/dA."""
    feats = net.features((x - 0.5) * 2048)
    act = F.relu(feats)
    logits = net.classifier(F.adaptive_avg_pool2d(act, 1).flatten(1))
    (g,) = torch.autograd.grad(logits[:, target].sum(), act)
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1, keepdim=True))
    return upsample(cam, x.shape[-2:]), logits.detach(), (feats < 0).float().mean().item()


def _naive_gradcam(net, x, target):
    """What a plain hook on ``features`` gets from xrv's forward: it keeps the tensor F.relu(inplace=True) then
    overwrites (post-ReLU values) and that tensor's gradient as hooked before the overwrite (pre-ReLU)."""
    seen = {}

    def hook(_m, _i, out):
        seen["act"] = out
        out.register_hook(lambda grad: seen.update(grad=grad))

    handle = net.features.register_forward_hook(hook)
    try:
        logits = net((x - 0.5) * 2048)
    finally:
        handle.remove()
    logits[:, target].sum().backward()
    act, g = seen["act"].detach(), seen["grad"]
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1, keepdim=True))
    return upsample(cam, x.shape[-2:]), act, g


def test_cam_trap_does_not_corrupt_gradcam(densenet, model):
    layer = find_cam_layer(model)
    assert layer.name == "features" and layer.post_relu and layer.shape == (3, 3)
    x, target = _images(), 3
    ref, ref_logits, negative = _reference_gradcam(densenet, x, target)
    assert negative > 0.3  # norm5's output has many negatives: the ReLU matters
    cam = gradcam_batch(model, x, target, layer)
    assert ref.amax() > 0
    torch.testing.assert_close(cam, ref, rtol=1e-4, atol=1e-4 * ref.amax().item())
    act, _, logits = capture(model, x, target, layer)
    torch.testing.assert_close(logits.detach(), ref_logits)  # the forward computed what xrv's computes
    # the hooked module output is left as it was: the audit taps ReLU's own (out-of-place) output
    assert act.min() >= 0
    # a naive hook on the stock network: post-ReLU activations, pre-ReLU gradients -> another map
    naive, naive_act, naive_grad = _naive_gradcam(densenet, x, target)
    assert naive_act.min() >= 0 and (naive_grad == 0).float().mean() > 0.3
    err = ((naive - ref).abs().amax() / ref.amax()).item()
    assert err > 0.05, err  # 12 % of the map's peak here: 500 times the tolerance the audit's map meets


def test_randomization_blocks(densenet):
    names = [b.name for b in randomization_blocks(densenet, (1, *SMALL), None)]
    assert names == ["classifier", "features.denseblock4+features.norm5", "features.transition3",
                     "features.denseblock3", "features.transition2", "features.denseblock2",
                     "features.transition1", "features.denseblock1", "features.conv0+features.norm0"]


def test_resnet512(tmp_path):
    """resnet50-res512-all: torchvision's ResNet-50 with xrv's one-channel stem, 512 px, from a state dict (the
    form xrv publishes it in); its randomization blocks are the ResNet stages."""
    w = resolve(xrv, "resnet50-res512-all", "--model")
    torch.manual_seed(0)
    net = _trained_like(build_network(xrv, w), seed=2)
    path = tmp_path / "r50.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, path)  # halved
    model = _load(f"xrv:resnet50-res512-all:{path}")
    assert model.info.input_size == (512, 512) and model.info.in_channels == 1 and model.info.num_classes == 18
    assert model.info.arch == "xrv:resnet50" and model.info.class_names == w.labels
    assert model.net.conv1.in_channels == 1
    names = [b.name for b in randomization_blocks(model.net, (1, 64, 64), None)]
    assert names == ["fc", "layer4", "layer3", "layer2", "layer1", "conv1+bn1"]
    x = _images(n=1, size=(64, 64))
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.net((x - 0.5) * 2048))
