"""torchxrayvision's published chest X-ray classifiers: ``--model=xrv:NAME`` and ``xrv:NAME:PATH``.

NAME is a key of ``torchxrayvision.models.model_urls`` (``densenet121-res224-all``, its alias ``all``,
``densenet121-res224-nih`` ... ``resnet50-res512-all``).  The network is built from the installed package with
random weights (``weights=None``: torchxrayvision's own constructor would download), then the weights are read
from PATH, else from the file torchxrayvision itself caches (``utils.get_cache_dir()`` + the file name of the
weight's URL).  Nothing is downloaded; a missing file is a one-line error naming the path to put it at.

Reading obeys the project's rule, ``torch.load(weights_only=True)``.  A plain state dict loads so; a whole
pickled network loads so when it is a zip-format file whose classes are exactly those the architecture is made
of (allowlisted with ``torch.serialization.safe_globals``: only their ``__new__`` and ``nn.Module.__setstate__``
run).  The DenseNet files torchxrayvision publishes are whole networks pickled in torch's legacy (pre-1.6)
format, which also stores each class's source and which torch's weights-only reader cannot read at all: they
need ``--allow-unsafe-pickle`` (torchxrayvision itself reads them with full unpickling), or a one-time
conversion to a state dict, which the error spells out.  The published ResNet file is a state dict.

Conventions, declared on the model's :class:`~saliency_audit.models.info.ModelInfo`: one channel; the input
size of the weights (224, 512 for the ResNet); the audit's [0, 1] images mapped onto torchxrayvision's
[-1024, 1024] (``(x - 0.5) / (1/2048)``, its ``utils.normalize``); one independent sigmoid per finding, named by
the weights' labels (``""`` marks an output the weights were not trained for).  The audit attributes logits:
``op_threshs=None`` and ``apply_sigmoid=False``, because the published operating-point calibration (``op_norm``)
squashes each output through a sigmoid and a piecewise-linear rescaling, and sets every output without a
threshold to a constant 0.5, whose gradient is zero.

The CAM trap: torchxrayvision's DenseNet ends ``features2`` with ``F.relu(features, inplace=True)``, which
overwrites the tensor a forward hook on ``features`` (or ``features.norm5``) just saw.  A hook that keeps it and
its gradient gets post-ReLU values with pre-ReLU gradients.  The audit is immune without changing the network:
GradCAM and the CAM family capture under :class:`~saliency_audit.models.relu_mode.ReluMode`, which makes every
ReLU out-of-place and taps the post-ReLU tensor (tests/test_xrv.py compares with a hand-computed GradCAM).
"""
from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..common.errors import AuditUsageError, one_line
from ..common.hashing import file_sha256
from ..common.specs import Spec
from .archive import check_zip
from .info import ModelInfo
from .loading import _checked_state, _count, _is_plain_pickle, _state_dict_of, load_weights
from .wrapper import AuditModel

#: torchxrayvision's pixel range: its ``utils.normalize`` maps [0, maxval] onto [-1024, 1024]
XRV_RANGE = (-1024.0, 1024.0)
#: ``(x - mean) / std`` with these maps the audit's [0, 1] images onto [-1024, 1024] exactly (1/2048 is a power of
#: two: no rounding in float32)
XRV_MEAN, XRV_STD = 0.5, 1.0 / 2048.0

#: The first torchxrayvision whose weight table gives each input size and whose networks resize only when built
#: with weights (pyproject.toml's extra asks for it too)
MIN_VERSION = (1, 4)

#: Names torchxrayvision publishes that are not classifiers (the audit explains a classifier's outputs).
NOT_CLASSIFIERS = {
    "chestx_det": "torchxrayvision's PSPNet (baseline_models.chestx_det) segments anatomy; it is not a classifier",
    "chestx_anatomy": "torchxrayvision's chestx_anatomy UNet segments anatomy; it is not a classifier",
}


@dataclass(frozen=True)
class XrvWeights:
    """One published weight name, resolved."""

    name: str  # as given (an alias such as "all" included)
    canonical: str  # "densenet121-res224-all", "resnet50-res512-all"
    family: str  # the architecture: "densenet121", "resnet50"
    labels: tuple[str, ...]  # one per output; "" for an output these weights were not trained for
    input_size: int
    url: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def import_xrv(what: str):
    """The torchxrayvision package, or a one-line error saying how to install it."""
    try:
        # torchxrayvision.models calls warnings.filterwarnings("ignore") when imported, which would silence every
        # warning of the process (the audit's own included) from then on; catch_warnings restores the filters
        with warnings.catch_warnings():
            import torchxrayvision
    except ImportError as exc:
        raise AuditUsageError(f"{what}: torchxrayvision is not installed ({one_line(exc)}); "
                              f"pip install 'saliency-audit[xrv]'") from None
    version = getattr(torchxrayvision, "__version__", "0")
    if tuple(int(p) for p in re.findall(r"\d+", version)[:2]) < MIN_VERSION:
        raise AuditUsageError(f"{what}: torchxrayvision {version} is older than 1.4, whose networks stopped resizing "
                              f"every input to their own size; pip install 'saliency-audit[xrv]'")
    return torchxrayvision


def _family(key: str) -> str | None:
    match = re.match(r"(densenet\d+|resnet\d+)-", key)
    return match.group(1) if match else None


def resolve(xrv, name: str, what: str) -> XrvWeights:
    """NAME (a key of ``xrv.models.model_urls``) resolved to its canonical name, architecture and labels."""
    urls = xrv.models.model_urls
    if name not in urls:
        autoencoders = getattr(getattr(xrv, "autoencoders", None), "model_urls", {})
        if name in autoencoders:
            raise AuditUsageError(f"{what}: {name} is torchxrayvision's autoencoder, not a classifier: it has no "
                                  f"outputs to explain")
        if name in NOT_CLASSIFIERS:
            raise AuditUsageError(f"{what}: {NOT_CLASSIFIERS[name]}")
        raise AuditUsageError(f"{what}: unknown torchxrayvision weights {name!r} (choose from "
                              f"{', '.join(sorted(urls))})")
    entry = urls[name]
    # an alias ("all", "nih" ...) is the same entry as a name that says its architecture
    canonical = name if _family(name) else next((k for k, v in urls.items() if v is entry and _family(k)), None)
    if canonical is None or _family(canonical) is None:
        raise AuditUsageError(f"{what}: cannot tell the architecture of torchxrayvision weights {name!r} (no "
                              f"densenetN-/resnetN- name lists them)")
    family = _family(canonical)
    if family.startswith("resnet") and family not in ("resnet50", "resnet101"):
        raise AuditUsageError(f"{what}: torchxrayvision has no {family} network (its ResNet is resnet50 or "
                              f"resnet101)")
    return XrvWeights(name=name, canonical=canonical, family=family, labels=tuple(entry["labels"]),
                      input_size=int(entry.get("input_resolution", 224)), url=entry["weights_url"])


def cache_path(xrv, weights: XrvWeights) -> Path:
    """Where torchxrayvision keeps the file of ``weights`` (its ``get_weights``: cache dir + the URL's file name)."""
    return Path(xrv.utils.get_cache_dir()).expanduser() / weights.file_name


def build_network(xrv, weights: XrvWeights) -> nn.Module:
    """The untrained network of ``weights``: logits out, calibration off."""
    n = len(weights.labels)
    if weights.family.startswith("densenet"):
        net = xrv.models.DenseNet(**xrv.models.get_densenet_params(weights.family), num_classes=n, in_channels=1,
                                  weights=None, op_threshs=None, apply_sigmoid=False)
    else:
        # torchxrayvision's ResNet constructor always fetches and fully unpickles its weights file, so its network
        # is built here as it builds it: torchvision's ResNet with a one-channel stem (its forward is that
        # network's, plus the resize to 512 and the calibration that are off here)
        import torchvision.models as tvm

        net = tvm.get_model(weights.family, weights=None, num_classes=n)
        net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.targets = net.pathologies = list(weights.labels)  # torchxrayvision's names for its output labels
    return net


def _allowlist(xrv, family: str) -> list[type]:
    """The classes a whole pickled network of ``family`` is made of, and nothing else."""
    common = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Linear, nn.Sequential]
    if family.startswith("densenet"):
        m = xrv.models
        return common + [m.DenseNet, m._DenseBlock, m._DenseLayer, m._Transition, nn.AvgPool2d]
    import torchvision.models.resnet as tvr

    return common + [xrv.models.ResNet, tvr.ResNet, tvr.Bottleneck, nn.AdaptiveAvgPool2d]


def _convert_hint(path: Path, name: str) -> str:
    out = path.with_name(path.stem + ".state.pt")
    return (f"or convert it once to a state dict, which loads safely: python -c \"import torch; torch.save(torch.load("
            f"'{path}', weights_only=False).state_dict(), '{out}')\" and give xrv:{name}:{out}")


def read_weights(path: Path, weights: XrvWeights, option: str, spec: str, allow_unsafe_pickle: bool,
                 xrv) -> tuple[dict, str]:
    """(state dict, how it was read) from ``path``: a state dict, or a whole pickled network (see the module doc)."""
    what = f"{option}={spec}"
    if path.stat().st_size == 0:
        raise AuditUsageError(f"{what}: weights file {path} is empty (0 bytes)")
    check_zip(path, what)
    allow = _allowlist(xrv, weights.family)
    try:
        with torch.serialization.safe_globals(allow):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        how = "weights-only"
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        legacy = "persistent_load" in msg  # a legacy-format whole network: its classes' source is stored with them
        foreign = re.search(r"unsupported global:?\s*GLOBAL\s+([\w.]+)", msg, flags=re.I)
        if not (legacy or foreign or _is_plain_pickle(path)):
            raise AuditUsageError(f"{what}: cannot read weights file {path}: not a torch checkpoint or damaged "
                                  f"({one_line(exc)})") from None
        if not allow_unsafe_pickle:
            if legacy:
                why = ("is a whole network pickled in torch's legacy (pre-1.6) format, as torchxrayvision publishes "
                       "its DenseNet weights, which torch's weights-only reader cannot read")
            elif foreign:
                why = (f"pickles {foreign.group(1)}, which is not one of the classes a torchxrayvision "
                       f"{weights.family} is made of")
            else:
                why = "is a plain pickle, which only full unpickling reads"
            raise AuditUsageError(f"{what}: {path} {why}; full unpickling can run arbitrary code: re-run with "
                                  f"--allow-unsafe-pickle if you trust this file, {_convert_hint(path, weights.name)}"
                                  ) from None
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 -- anything full unpickling raises
            raise AuditUsageError(f"{what}: cannot read weights file {path} even with full unpickling "
                                  f"({type(exc).__name__}: {one_line(exc)})") from None
        how = "full unpickling (--allow-unsafe-pickle)"
    except Exception as exc:  # noqa: BLE001 -- a truncated zip, not a torch file...
        raise AuditUsageError(f"{what}: cannot read weights file {path}: not a torch checkpoint or damaged "
                              f"({type(exc).__name__}: {one_line(exc)})") from None
    obj = _state_dict_of(obj, spec, option, path)
    if isinstance(obj, nn.Module):
        how = f"a pickled {type(obj).__name__}, {how}"
        obj = _checked_state(dict(obj.state_dict()), spec, option, path)
    else:
        how = f"a state dict, {how}"
    return obj, how


def load_xrv(parsed: Spec, role: str, option: str, allow_unsafe_pickle: bool) -> AuditModel:
    """``xrv:NAME[:PATH]`` -> an eval-mode :class:`AuditModel` that explains the logits of each finding."""
    what = f"{option}={parsed.text}"
    xrv = import_xrv(what)
    weights = resolve(xrv, parsed.arch, what)
    if parsed.path:
        path, origin = Path(parsed.path).expanduser(), "PATH of the spec"
        if not path.is_file():
            raise AuditUsageError(f"{what}: weights file not found: {path}")
    else:
        path, origin = cache_path(xrv, weights), "torchxrayvision's cache"
        if not path.is_file():
            raise AuditUsageError(
                f"{what}: the weights of {weights.canonical} are not at {path}, where torchxrayvision keeps them "
                f"(saliency-audit never downloads): fetch {weights.url} to that path (or let torchxrayvision do it: "
                f"torchxrayvision.models.get_model('{weights.canonical}')), or give xrv:{weights.name}:PATH")
    state, how = read_weights(path, weights, option, parsed.text, allow_unsafe_pickle, xrv)
    net = build_network(xrv, weights)
    dropped = [k for k in ("op_threshs",) if state.pop(k, None) is not None]  # a pickled network's calibration
    # (a pickled torchxrayvision ResNet holds the network as .model: the prefix is cut as a wrapper's)
    load_weights(net, state, what, path, f"weights file {path} does not fit torchxrayvision's {weights.canonical} "
                                         f"({weights.family}, {len(weights.labels)} outputs)", weights.family)
    net.eval()
    sha = file_sha256(path)
    unused = [i for i, label in enumerate(weights.labels) if not label]
    note = {
        "weights": weights.canonical, "name": weights.name, "torchxrayvision": getattr(xrv, "__version__", None),
        "network": f"torchxrayvision {weights.family}" if weights.family.startswith("densenet")
        else f"torchvision {weights.family} with torchxrayvision's one-channel stem",
        "file": str(path.absolute()), "file_from": origin, "sha256": sha, "read_as": how, "url": weights.url,
        "input_range": list(XRV_RANGE), "input_mapping": "(x - 0.5) * 2048 of the audit's image x in [0, 1]",
        "input_resolution": weights.input_size,
        "outputs": "logits, one independent sigmoid per finding; the audit attributes logits",
        "calibration": "off: op_threshs=None and apply_sigmoid=False; the published op_threshs (op_norm) squash "
                       "each output through a sigmoid and a piecewise-linear rescaling, and hold every output "
                       "without a threshold at 0.5 (zero gradient), hiding gradients from attribution",
        "unused_outputs": unused,
    }
    if dropped:
        note["dropped_from_file"] = dropped
    info = ModelInfo(spec=parsed.text, arch=f"xrv:{weights.family}", role=role, sha256=sha, n_params=_count(net),
                     num_classes=len(weights.labels), input_size=(weights.input_size, weights.input_size),
                     in_channels=1, mean=(XRV_MEAN,), std=(XRV_STD,), output="sigmoid",
                     class_names=weights.labels, extra={"xrv": note})
    return AuditModel(net, info)
