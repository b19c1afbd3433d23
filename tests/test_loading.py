"""Model specs and safe checkpoint loading."""
import re
import pytest
import torch
import torchvision

from saliency_audit.common.errors import AuditUsageError
from saliency_audit.models import load_model
from saliency_audit.common.specs import DEMO_VARIANTS, parse_spec


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=3).eval()


def _same_logits(model, net):
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        ref = net((x.expand(-1, 3, -1, -1) - model.mean) / model.std)
        torch.testing.assert_close(model(x), ref)


@pytest.mark.parametrize("form", ["plain", "lightning", "dataparallel"])
def test_state_dict_forms(tmp_path, resnet, form):
    state = resnet.state_dict()
    obj = {"plain": state,
           "lightning": {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3},
           "dataparallel": {f"module.{k}": v for k, v in state.items()}}[form]
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path)
    model = load_model(f"resnet18:{path}")
    assert model.info.num_classes == 3 and model.info.arch == "resnet18" and len(model.info.sha256) == 64
    _same_logits(model, resnet)


def test_torchscript(tmp_path, resnet):
    """A traced torchvision network given as a bare PATH is recognised by its weights and rebuilt as it (eager,
    hookable); the archive of any other network stays TorchScript (tests/test_torchscript_models.py)."""
    path = tmp_path / "m.ts"
    torch.jit.trace(resnet, torch.rand(1, 3, 64, 64)).save(str(path))
    model = load_model(str(path))
    assert model.info.arch == "resnet18" and model.info.num_classes == 3
    assert not isinstance(model.net, torch.jit.ScriptModule)
    assert model.info.extra["auto_arch"]["from"] == "TorchScript archive"
    _same_logits(model, resnet)


def test_full_pickle_is_refused_without_the_flag(tmp_path, resnet):
    path = tmp_path / "full.pt"
    torch.save({"model": resnet}, path)  # a pickled nn.Module: loading it runs arbitrary code
    with pytest.raises(AuditUsageError, match="--allow-unsafe-pickle"):
        load_model(f"resnet18:{path}")
    model = load_model(f"resnet18:{path}", allow_unsafe_pickle=True)
    _same_logits(model, resnet)


def test_wrong_architecture_lists_missing_and_unexpected_keys(tmp_path, resnet):
    path = tmp_path / "r18.pt"
    torch.save(resnet.state_dict(), path)
    with pytest.raises(AuditUsageError, match=r"does not fit resnet34: \d+ missing keys \[layer1\.2\.") as exc:
        load_model(f"resnet34:{path}")
    assert "unexpected" not in str(exc.value) and "\n" not in str(exc.value)


def test_size_mismatch_names_keys_shapes_and_file_in_one_line(tmp_path, resnet):
    """resnet18 weights given as resnet50: torch's own error would stop at its first line."""
    path = tmp_path / "r18.pt"
    torch.save(resnet.state_dict(), path)
    with pytest.raises(AuditUsageError) as exc:
        load_model(f"resnet50:{path}")
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and msg.startswith("--model=resnet50:")
    assert re.search(r"\d+ missing keys \[", msg)  # resnet18's keys are a subset of resnet50's
    assert re.search(r"\d+ size mismatches \[conv1\.weight|\d+ size mismatches \[layer1\.0\.conv1\.weight", msg), msg


def test_bad_specs(tmp_path):
    with pytest.raises(AuditUsageError, match="checkpoint file not found"):
        load_model(f"resnet18:{tmp_path / 'nope.pt'}")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(AuditUsageError, match="cannot read checkpoint"):
        load_model(f"resnet18:{junk}")
    with pytest.raises(AuditUsageError, match="unknown architecture 'resnet9000'"):
        torch.save({}, tmp_path / "e.pt")
        load_model(f"resnet9000:{tmp_path / 'e.pt'}")
    with pytest.raises(AuditUsageError, match="not a TorchScript archive"):
        load_model(str(junk))


def test_spec_parsing_and_demo_variants_agree():
    from saliency_audit.demo import VARIANTS

    assert tuple(VARIANTS) == DEMO_VARIANTS
    assert parse_spec("demo").arch == "primary"
    assert parse_spec("pkg.mod:factory:w.pt").arch == "pkg.mod:factory"
    assert parse_spec("densenet121:ckpt/v2.pt").path == "ckpt/v2.pt"


class _Detached(torch.nn.Module):
    """A network whose logits are cut from the image: no saliency method can explain it."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x.detach()).mean((2, 3)))


def detached_net(num_classes=2):
    return _Detached(num_classes)


@pytest.mark.parametrize("content,needle", [
    (b"", "is empty (0 bytes)"),
    (b"hello world", "not a torch checkpoint or damaged (KeyError"),
])
def test_damaged_checkpoints_are_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(AuditUsageError, match=re.escape(needle)) as exc:
        load_model(f"resnet18:{path}")
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_plain_pickle_needs_full_unpickling_and_is_not_called_damaged(tmp_path, resnet):
    import pickle

    path = tmp_path / "plain.pkl"
    with open(path, "wb") as fh:
        pickle.dump(resnet.state_dict(), fh)
    with pytest.raises(AuditUsageError, match="needs full unpickling.*--allow-unsafe-pickle"):
        load_model(f"resnet18:{path}")
    with pytest.raises(AuditUsageError, match="even with full unpickling.*save it with torch.save"):
        load_model(f"resnet18:{path}", allow_unsafe_pickle=True)


def test_a_model_whose_output_ignores_its_input_is_refused_at_load(tmp_path):
    path = tmp_path / "detached.pt"
    torch.save(detached_net(2).state_dict(), path)
    spec = f"tests.test_loading:detached_net:{path}"
    with pytest.raises(AuditUsageError, match="output does not depend on its input") as exc:
        load_model(spec, option="--replicate")
    assert str(exc.value).startswith(f"--replicate={spec}: ")


def test_a_refused_class_is_needs_unpickling_whatever_the_case_of_torchs_message(tmp_path, resnet, monkeypatch):
    """torch versions spell it 'Unsupported global' or 'Unsupported GLOBAL'; neither is a damaged file."""
    import pickle

    path = tmp_path / "full.pt"
    torch.save({"model": resnet}, path)
    real_load = torch.load

    def load(*args, **kwargs):
        if kwargs.get("weights_only"):
            raise pickle.UnpicklingError("Weights only load failed. Unsupported GLOBAL torchvision.models.ResNet")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    with pytest.raises(AuditUsageError, match="needs full unpickling"):
        load_model(f"resnet18:{path}")


def test_a_grey_factory_model_loads_with_grey_normalisation(tmp_path):
    """A one-channel network from a factory gets ImageNet's normalisation averaged over its channels (it used
    to get ImageNet's three channels and could not be built); --normalize still overrides it."""
    import torch

    from saliency_audit.models.loading import load_model
    from tests.fake_methods import grey_democnn

    path = tmp_path / "grey.pt"
    torch.save(grey_democnn().state_dict(), path)
    model = load_model(f"tests.fake_methods:grey_democnn:{path}")
    assert model.info.in_channels == 1 and model.info.mean == (0.449,) and model.info.std == (0.226,)
    assert model(torch.rand(2, 1, 128, 128)).shape == (2, 2)
    again = load_model(f"tests.fake_methods:grey_democnn:{path}", normalize=((0.5,), (0.25,)))
    assert again.info.mean == (0.5,)


@pytest.mark.parametrize("key,value", [("image_size", 128), ("input_size", [3, 128, 96]), ("img_size", (128, 96))])
def test_a_checkpoint_that_records_its_training_size_is_audited_at_it(tmp_path, resnet, key, value):
    """{"state_dict": ..., "image_size": 128} (or timm's (C, H, W) input_size): the model's input size is the
    training size, and where it came from is recorded; --input-size still wins."""
    path = tmp_path / "r18.pt"
    torch.save({"state_dict": resnet.state_dict(), key: value, "epoch": 3}, path)
    model = load_model(f"resnet18:{path}")
    want = (128, 128) if key == "image_size" else (128, 96)
    assert tuple(model.input_size) == want and model.info.extra["input_size_from"] == f"the checkpoint's {key!r}"
    asked = load_model(f"resnet18:{path}", input_size=(64, 64))
    assert tuple(asked.input_size) == (64, 64) and "input_size_from" not in asked.info.extra
    torch.save({"state_dict": resnet.state_dict(), "image_size": "big", "input_size": [3, 2]}, path)  # not sizes
    assert tuple(load_model(f"resnet18:{path}").input_size) == (224, 224)
