"""Audits of random-weight torchvision checkpoints in every supported file form (issue 6).

Each listed architecture is built with random weights, saved as a plain state
dict, a Lightning-style checkpoint, a DataParallel (``module.``) state dict and
a TorchScript archive, and audited with ``grad``, ``gbp`` and ``gradcam`` on a
few demo images.  Every run must complete (verdict pass or fail, never error),
and the evidence must name the architecture, the checkpoint file's sha256, the
input size used and the GradCAM layer.  Random weights make the verdicts
themselves meaningless (they are almost always "fail"); only completion and
bookkeeping are under test.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import warnings

import pytest
import torch
import torchvision

from saliency_audit import Audit
from saliency_audit.config import AuditConfig
from saliency_audit.common.errors import AuditUsageError
from saliency_audit.models import load_model

METHODS = ("grad", "gbp", "gradcam")

# id -> (torchvision name, get_model kwargs, input size, acceptable GradCAM layers as (module name, functional_relu)).
# Inputs are small to keep CPU time down: 64 px where the arch allows.  Inception v3 runs down to 75 px,
# but below 107 px its last block (Mixed_7c) is 1x1 and discovery falls back to a layer inside Mixed_7a;
# 112 px keeps Mixed_7c spatial (2x2).  Its aux head only runs in training mode, so its size does not matter.
# init_weights=False: PyTorch's default init instead of Inception's truncated normal, as the loader builds it
# (random is random here; init_weights=True would cost only ~0.15 s more per build).
ARCHS = {
    "resnet18": ("resnet18", {}, (64, 64), {("layer4", False)}),
    "resnet50": ("resnet50", {}, (64, 64), {("layer4", False)}),
    # features ends in norm5; the functional ReLU after it is tapped
    "densenet121": ("densenet121", {}, (64, 64), {("features", True)}),
    "inception_v3-aux": ("inception_v3", {"aux_logits": True, "init_weights": False}, (112, 112),
                         {("Mixed_7c", False)}),
    "inception_v3-noaux": ("inception_v3", {"aux_logits": False, "init_weights": False}, (112, 112),
                           {("Mixed_7c", False)}),
    # The last conv block's rectified output: the Sequential ``features`` (= its final maxpool features.43,
    # the same tensor) or the ReLU before that pool (features.42).  Never ``avgpool``: the adaptive pool
    # resamples that map to 7x7 (upsampling 2x2 at 64 px, downsampling 10x10 at 320 px).
    "vgg16_bn": ("vgg16_bn", {}, (64, 64), {("features", False), ("features.43", False), ("features.42", False)}),
    # SiLU lives inside the modules, so no functional ReLU follows; features and features.8 are the same tensor
    "efficientnet_b0": ("efficientnet_b0", {}, (64, 64), {("features", False), ("features.8", False)}),
}

FORMS = ("plain", "lightning", "dataparallel", "torchscript")


class WrongCamLayer(AssertionError):
    """GradCAM was computed on another layer than the architecture's last rectified feature map."""


class AuditErrored(AssertionError):
    """A criterion ended in verdict 'error'."""


def _cases():
    for arch in ARCHS:
        # vgg16_bn files are ~537 MB each: two forms only, the plain state dict and TorchScript (the form
        # with its own loading path; the prefix forms are arch-independent and covered by the other archs).
        forms = ("plain", "torchscript") if arch == "vgg16_bn" else FORMS
        for form in forms:
            yield pytest.param(arch, form, id=f"{arch}-{form}")


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _build(arch: str, num_classes: int = 2) -> torch.nn.Module:
    name, kwargs, _, _ = ARCHS[arch]
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs).eval()


def _save_torchscript(net: torch.nn.Module, path, size) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        warnings.simplefilter("ignore", UserWarning)  # Inception3's scripting notes
        try:
            scripted = torch.jit.script(net)
        except Exception:  # noqa: BLE001 -- not scriptable: trace at the audit's input size
            scripted = torch.jit.trace(net, torch.rand(1, 3, *size))
        torch.jit.save(scripted, str(path))


class _Checkpoints:
    """Every file form of one architecture at a time: written on first request, the previous arch's deleted."""

    def __init__(self, root):
        self.root = root
        self.arch: str | None = None
        self.files: dict[str, tuple] = {}  # form -> (path, sha256)

    def get(self, arch: str, form: str):
        if arch != self.arch:
            self.clear()
            self._write(arch)
        return self.files["torchscript" if form == "torchscript-bare" else form]

    def _write(self, arch: str) -> None:
        net = _build(arch)
        state = net.state_dict()
        folder = self.root / arch
        folder.mkdir()
        forms = ("plain", "torchscript") if arch == "vgg16_bn" else FORMS
        for form in forms:
            path = folder / f"{form}.pt"
            if form == "plain":
                torch.save(state, path)
            elif form == "lightning":
                torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3}, path)
            elif form == "dataparallel":
                torch.save({f"module.{k}": v for k, v in state.items()}, path)
            else:
                _save_torchscript(net, path, ARCHS[arch][2])
            self.files[form] = (path, _sha256(path))
        self.arch = arch

    def clear(self) -> None:
        if self.arch is not None:
            shutil.rmtree(self.root / self.arch, ignore_errors=True)
        self.arch, self.files = None, {}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    store = _Checkpoints(tmp_path_factory.mktemp("arch-ckpts"))
    yield store
    store.clear()


def _config(tmp_path, size) -> AuditConfig:
    cfg = AuditConfig()
    cfg.n_images = 3
    cfg.utility.prior_images = 3
    cfg.cache_dir = str(tmp_path / "maps")
    cfg.model.input_size = tuple(size)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("arch,form", list(_cases()))
def test_checkpoint_form_is_audited(arch, form, checkpoints, tmp_path):
    name, _, size, cam_layers = ARCHS[arch]
    path, sha = checkpoints.get(arch, form)
    spec = str(path) if form == "torchscript-bare" else f"{name}:{path}"
    report = tmp_path / "report"
    audit = Audit(model=spec, methods=list(METHODS), config=_config(tmp_path, size), report_dir=report)

    results = {m: audit.utility(m) for m in METHODS}
    for method, r in results.items():
        if r.verdict == "error":
            raise AuditErrored(f"utility[{method}] on {spec}: {r.explanation}\n{r.details.get('traceback') or ''}")
        assert r.verdict in ("pass", "fail"), (method, r.verdict, r.explanation)
        assert r.n == 3, (method, r.n)

    evidence = audit.evidence()
    roles = {m["role"]: m for m in evidence["models"]}
    assert set(roles) == {"primary", "randomized"}
    primary = roles["primary"]
    assert primary["arch"] == ("torchscript" if form == "torchscript-bare" else name)
    assert primary["spec"] == spec
    assert primary["sha256"] == sha
    assert primary["input_size"] == list(size)
    assert primary["num_classes"] == 2
    randomized = roles["randomized"]
    assert randomized["sha256"] is None  # no file: a re-initialised copy of the primary
    assert randomized["extra"]["derived_from_sha256"] == sha
    assert randomized["extra"]["layers_reset"] > 0
    assert randomized["arch"] == primary["arch"] and randomized["input_size"] == list(size)
    assert evidence["dataset"]["eval_size"] == list(size)
    # the evidence file on disk says the same
    on_disk = json.loads((report / "evidence.json").read_text())
    assert [m["sha256"] for m in on_disk["models"] if m["role"] == "primary"] == [sha]
    assert {(r["criterion"], r["method"]) for r in on_disk["results"]} == {("utility", m) for m in METHODS}

    cam = results["gradcam"].details["map_notes"]["cam_layer"]
    assert cam["tensor"] == (f"F.relu({cam['name']} output)" if cam["functional_relu"] else f"{cam['name']} output")
    if (cam["name"], cam["functional_relu"]) not in cam_layers:
        raise WrongCamLayer(f"{arch}: GradCAM on {cam}, expected one of {sorted(cam_layers)}")


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "densenet121.pt"
    torch.save(_build("densenet121").state_dict(), path)
    with pytest.raises(AuditUsageError, match=r"does not fit resnet18: \d+ missing keys \[conv1\.weight, .*\]; "
                                              r"\d+ unexpected keys \[features\.conv0\.weight, "):
        load_model(f"resnet18:{path}")
    # through the Audit: the criterion reports the same usage error, it does not crash
    audit = Audit(model=f"resnet18:{path}", methods=["grad"], config=_config(tmp_path, (64, 64)))
    result = audit.utility("grad")
    assert result.verdict == "error"
    assert "missing keys" in result.explanation and "unexpected keys" in result.explanation


@pytest.mark.parametrize("bare", [False, True], ids=["arch-spec", "bare-spec"])
def test_torchscript_class_count_comes_from_its_output(tmp_path, bare):
    net = _build("resnet18", num_classes=3)
    path = tmp_path / "three.ts"
    _save_torchscript(net, path, (64, 64))
    spec = str(path) if bare else f"resnet18:{path}"
    # 128 px: the demo images' native size (this test is about the class count, not about resizing)
    audit = Audit(model=spec, methods=["grad"], config=_config(tmp_path, (128, 128)))
    result = audit.utility("grad")
    assert result.verdict in ("pass", "fail"), (result.explanation, result.details.get("traceback"))
    (primary,) = [m for m in audit.evidence()["models"] if m["role"] == "primary"]
    assert primary["num_classes"] == 3
    assert primary["arch"] == "resnet18"  # a bare PATH: recognised by its weights (saliency_audit.models.autoarch)
    assert ("auto_arch" in primary["extra"]) == bare
    assert primary["sha256"] == _sha256(path)


class _Doubled(torch.nn.Module):
    """A network with computation of its own around a torchvision model (as baked-in preprocessing is)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x * 2.0)


@pytest.mark.parametrize("wrapped", [False, True], ids=["same-computation", "extra-computation"])
def test_arch_spec_rebuilds_torchscript_only_when_it_computes_the_same(tmp_path, wrapped):
    """ARCH:PATH on a TorchScript archive gives the eager ARCH (hookable) unless the archive computes otherwise."""
    net = _build("resnet18", num_classes=3)
    scripted = _Doubled(net).eval() if wrapped else net
    path = tmp_path / "m.ts"
    _save_torchscript(scripted, path, (64, 64))
    model = load_model(f"resnet18:{path}")
    assert isinstance(model.net, torch.jit.ScriptModule) == wrapped
    assert model.info.num_classes == 3 and model.info.sha256 == _sha256(path)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), scripted((x.expand(-1, 3, -1, -1) - model.mean) / model.std))


def test_bare_torchscript_kept_as_archive_is_skipped_where_it_needs_hooks(tmp_path):
    """A bare TorchScript PATH that computes more than the torchvision network its weights match stays
    TorchScript: the methods and criteria that need hooks are skipped, the reason naming the file and the
    spec that rebuilds it, and no 'randomized' model equal to the trained one is ever produced."""
    net = _build("resnet18")
    path = tmp_path / "r18.ts"
    _save_torchscript(_Doubled(net).eval(), path, (64, 64))
    audit = Audit(model=str(path), methods=["grad", "gradcam"], config=_config(tmp_path, (64, 64)))
    r = audit.utility("gradcam")
    assert r.verdict == "skipped" and r.explanation.startswith(f"{path} is a TorchScript archive: gradcam needs")
    assert "resnet18's logits differ from the archive's" in r.explanation and "densenet121" not in r.explanation
    assert f"give package.module:factory:{path}" in r.explanation and "\n" not in r.explanation
    r = audit.randomization("grad")
    assert r.verdict == "skipped" and "randomized copies need forward hooks" in r.explanation
    assert not audit.models.is_loaded("randomized")
