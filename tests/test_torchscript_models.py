"""Models as teams deploy them (issue 17): a bare PATH, TorchScript or a state dict.

* The weights of a torchvision architecture (every name and shape) are recognised and rebuilt as it, a
  TorchScript archive only when the rebuilt network's logits equal the archive's.
* An archive of any other architecture is audited as it is: the gradient methods get utility and
  completeness verdicts with the randomized-model baseline recorded as unavailable, and what needs forward
  hooks (the CAMs, guided backprop, randomized copies) is skipped with a one-line reason.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn

from saliency_audit import Audit
from saliency_audit.config import AuditConfig
from saliency_audit.common.errors import AuditUsageError, Unavailable
from saliency_audit.models import autoarch, load_model


class Grey(nn.Module):
    """An architecture torchvision does not have: two convolutions, one grey channel, two classes."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


class Shifted(nn.Module):
    """A torchvision network with computation of its own after it: the weights match, the logits do not."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) + 1.0


def _trace(net: nn.Module, path, shape) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; still what teams ship
        torch.jit.trace(net.eval(), torch.rand(1, *shape)).save(str(path))


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=3).eval()


@pytest.fixture(scope="module")
def traced_r18(r18, tmp_path_factory):
    path = tmp_path_factory.mktemp("ts") / "r18.ts"
    _trace(r18, path, (3, 64, 64))
    return path


# -- the signature match ----------------------------------------------------------------------------------------
def test_signature_match_finds_resnet18_for_a_state_dict_and_a_traced_archive(r18, traced_r18):
    state = r18.state_dict()
    want = [{"arch": "resnet18", "num_classes": 3, "prefix": "", "aux": False}]
    assert autoarch.matches(state) == want
    assert autoarch.matches(dict(torch.jit.load(str(traced_r18)).state_dict())) == want
    # behind a wrapper prefix (DataParallel, Lightning), and with another class count: the same signature
    assert autoarch.matches({f"module.{k}": v for k, v in state.items()}) == [dict(want[0], prefix="module.")]
    one = torchvision.models.resnet18(weights=None, num_classes=1).state_dict()
    assert autoarch.matches(one) == [dict(want[0], num_classes=1)]
    # one layer's shape off, or one key missing: no match
    bad = dict(state, **{"layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)})
    assert autoarch.matches(bad) == []
    assert autoarch.matches({k: v for k, v in state.items() if k != "fc.bias"}) == []


def test_signature_match_finds_nothing_for_a_custom_network():
    assert autoarch.matches(Grey().state_dict()) == []


def test_signatures_are_built_without_weights_and_equal_real_builds():
    """Built on the meta device with initialisers skipped (RegNet computes its widths from tensors, which stay
    on the CPU): the signature is exactly a real build's, the head at the sentinel class count."""
    sig = autoarch.signature("regnet_x_400mf")
    real = torchvision.models.regnet_x_400mf(weights=None, num_classes=autoarch.SENTINEL).state_dict()
    assert sig == {k: tuple(v.shape) for k, v in real.items()}
    assert autoarch.STATS["built"] >= 1 and torch.empty(1).device.type == "cpu"  # no device mode left behind


def test_inception_without_its_aux_head_matches_and_is_rebuilt_without_it(tmp_path):
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=2).eval()
    path = tmp_path / "inc.pt"
    torch.save(net.state_dict(), path)
    assert [m["arch"] for m in autoarch.matches(net.state_dict())] == ["inception_v3"]
    model = load_model(str(path), input_size=(80, 80))
    assert model.info.arch == "inception_v3" and model.net.AuxLogits is None


@pytest.fixture
def twins(monkeypatch):
    """A fabricated second architecture with resnet18's signature."""
    monkeypatch.setitem(autoarch._SIGNATURES, "resnet18_twin", autoarch.signature("resnet18"))
    monkeypatch.setattr(torchvision.models, "list_models", lambda module=None: ["resnet18", "resnet18_twin"])


def test_ambiguous_match_is_refused_for_a_state_dict_and_keeps_an_archive(twins, r18, traced_r18, tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(r18.state_dict(), path)
    assert [m["arch"] for m in autoarch.matches(r18.state_dict())] == ["resnet18", "resnet18_twin"]
    with pytest.raises(AuditUsageError) as exc:
        load_model(str(path))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"--model={path}: ")
    assert "match several torchvision architectures exactly (resnet18, resnet18_twin); give ARCH:PATH" in msg
    model = load_model(str(traced_r18), input_size=(64, 64))  # an archive runs as it is, and says why
    assert isinstance(model.net, torch.jit.ScriptModule) and model.info.arch == "torchscript"
    assert "several" in model.info.extra["auto_arch"]["reason"]


# -- loading a bare PATH ------------------------------------------------------------------------------------------
def test_traced_resnet18_bare_path_loads_as_resnet18_with_equal_logits(r18, traced_r18):
    model = load_model(str(traced_r18), input_size=(64, 64))
    assert not isinstance(model.net, torch.jit.ScriptModule)
    assert model.info.arch == "resnet18" and model.info.num_classes == 3
    auto = model.info.extra["auto_arch"]
    assert auto["arch"] == "resnet18" and auto["from"] == "TorchScript archive" and auto["matches"] == ["resnet18"]
    script = torch.jit.load(str(traced_r18))
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), script((x.expand(-1, 3, -1, -1) - model.mean) / model.std))
        torch.testing.assert_close(model(x), r18((x.expand(-1, 3, -1, -1) - model.mean) / model.std))


def test_bare_state_dict_is_rebuilt_and_an_unknown_one_is_the_one_line_error(r18, tmp_path):
    path = tmp_path / "r18.pt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in r18.state_dict().items()}, "epoch": 3}, path)
    model = load_model(str(path))
    assert model.info.arch == "resnet18" and model.info.extra["auto_arch"]["from"] == "state dict"
    grey = tmp_path / "grey.pt"
    torch.save(Grey().state_dict(), grey)
    with pytest.raises(AuditUsageError, match=r"is not a TorchScript archive and its weights match no torchvision "
                                              r"architecture exactly; give ARCH:PATH for a state dict") as exc:
        load_model(str(grey))
    assert "\n" not in str(exc.value) and str(exc.value).startswith(f"--model={grey}: ")


def test_archive_whose_logits_differ_from_the_rebuilt_network_is_kept(r18, tmp_path):
    path = tmp_path / "shifted.ts"
    _trace(Shifted(r18), path, (3, 64, 64))
    model = load_model(str(path), input_size=(64, 64))
    assert isinstance(model.net, torch.jit.ScriptModule) and model.info.arch == "torchscript"
    auto = model.info.extra["auto_arch"]
    assert auto["arch"] is None and auto["matches"] == ["resnet18"]  # the weights match (behind the "net." prefix)
    assert "resnet18's logits differ from the archive's on a probe" in auto["reason"]


def test_archive_that_fails_on_the_probe_size_is_a_one_line_error(tmp_path):
    """A grey-image archive gets a grey probe (its channels from its first convolution); one specialised to its
    trace size fails at another, in one line that names the file and --input-size (was: INTERNALERROR)."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 2))
    path = tmp_path / "fixed.ts"
    _trace(net, path, (1, 32, 32))
    with pytest.raises(AuditUsageError) as exc:
        load_model(str(path))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"--model={path}: the TorchScript model fails on a (1, 224, 224) input")
    assert msg.endswith("check --input-size") and "interpreter" not in msg
    model = load_model(str(path), input_size=(32, 32))
    assert model.info.in_channels == 1 and len(model.info.mean) == 1


# -- audits -----------------------------------------------------------------------------------------------------
def _config(tmp_path, size) -> AuditConfig:
    cfg = AuditConfig()
    cfg.n_images = 4
    cfg.utility.prior_images = 4
    cfg.completeness.n_images = 4
    cfg.cache_dir = str(tmp_path / "maps")
    cfg.model.input_size = tuple(size)
    return cfg


def test_unknown_architecture_archive_gets_gradient_verdicts_and_skips_what_needs_hooks(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "grey.ts"
    _trace(Grey(), path, (1, 64, 64))
    audit = Audit(model=str(path), methods=["grad", "ig", "gradcam", "gbp"], config=_config(tmp_path, (64, 64)),
                  report_dir=tmp_path / "report")
    plan = audit.make_plan([("utility", m) for m in audit.methods] + [("randomization", "grad"),
                                                                      ("completeness", "grad")])
    assert set(plan["unavailable"]["methods"]) == {"gradcam", "gbp"} and "randomized" in plan["unavailable"]
    assert plan["per_pair"]["utility[gradcam]"] == plan["per_pair"]["randomization[grad]"] == 0

    for method in ("grad", "ig"):
        r = audit.utility(method)
        assert r.verdict in ("pass", "fail"), (r.explanation, r.details.get("traceback"))
        (rand,) = [b for b in r.baselines if b["name"] == "randomized model"]
        assert rand["available"] is False and "value" not in rand
        assert rand["reason"].startswith(f"{path} is a TorchScript archive: randomized copies need forward hooks")
        assert f"give ARCH:{path}" in rand["reason"] and "densenet121" not in rand["reason"]
        assert "Randomized-model baseline unavailable: " in r.explanation
    r = audit.completeness("grad")
    assert r.verdict in ("pass", "fail"), (r.explanation, r.details.get("traceback"))
    (rand,) = [b for b in r.baselines if b["name"] == "randomized model's maps"]
    assert rand["available"] is False and "maps unavailable" in r.explanation
    for method, needs in (("gradcam", "gradcam needs forward hooks on a layer"),
                          ("gbp", "gbp must see every ReLU call from Python")):
        r = audit.utility(method)
        assert r.verdict == "skipped" and r.explanation.startswith(f"{path} is a TorchScript archive: {needs}")
        assert "\n" not in r.explanation and "its weights match no torchvision architecture" in r.explanation
    r = audit.randomization("grad")
    assert r.verdict == "skipped" and "randomized copies need forward hooks" in r.explanation

    evidence = audit.evidence()
    (primary,) = evidence["models"]
    assert primary["arch"] == "torchscript" and primary["in_channels"] == 1
    assert primary["extra"]["auto_arch"]["reason"] == "its weights match no torchvision architecture"
    from saliency_audit.report.html import render

    page = render(evidence)
    assert "randomized model <span" in page and "unavailable</span>" in page

    # saliency-audit maps: what can be mapped is written, then one line says what cannot and why
    from saliency_audit.engine.mapsout import write_maps

    with pytest.raises(Unavailable, match=r"^gradcam, gbp: not written \(.*\); the maps of grad, ig are written"):
        write_maps(audit, tmp_path / "maps-out")
    assert len(list((tmp_path / "maps-out" / "ig").glob("*.npy"))) == len(audit.samples.localisation().samples)


def test_traced_resnet18_bare_path_gets_grad_gbp_and_gradcam_verdicts(traced_r18, tmp_path):
    audit = Audit(model=str(traced_r18), methods=["grad", "gbp", "gradcam"], config=_config(tmp_path, (64, 64)))
    for method in ("grad", "gbp", "gradcam"):
        r = audit.utility(method)
        assert r.verdict in ("pass", "fail"), (method, r.explanation, r.details.get("traceback"))
        assert [b["name"] for b in r.baselines if "value" in b] == ["average-mask prior", "randomized model"]
    assert r.details["map_notes"]["cam_layer"]["name"] == "layer4"
    roles = {m["role"]: m for m in audit.evidence()["models"]}
    assert roles["primary"]["arch"] == roles["randomized"]["arch"] == "resnet18"
    assert roles["primary"]["extra"]["auto_arch"]["arch"] == "resnet18"
