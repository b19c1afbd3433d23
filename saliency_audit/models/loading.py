"""Model specs and safe loading.

SPEC forms (docs/options.md, below the options table): ``demo`` | ``demo:VARIANT`` |
``xrv:NAME[:PATH]`` (torchxrayvision,
:mod:`saliency_audit.models.xrv`) | ``PATH`` (TorchScript, or
a state dict; rebuilt as the torchvision architecture its weights are exactly,
:mod:`saliency_audit.models.autoarch`) | ``ARCH:PATH`` with ARCH a torchvision
model name, ``timm/NAME`` or ``package.module:factory``.  Checkpoints are read with
``torch.load(weights_only=True)``; a full pickle (which can run arbitrary
code) is refused unless ``allow_unsafe_pickle`` is set.
"""
from __future__ import annotations

import importlib
import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..common.errors import AuditUsageError, one_line
from ..common.hashing import file_sha256
from ..common.specs import Spec, parse_spec
from .autoarch import AUX_PREFIXES
from .archive import check_script_storages, check_zip
from .info import ModelInfo
from .wrapper import AuditModel

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _default_normalisation(channels: int) -> dict:
    """ImageNet's for 3 channels; for a grey (or other) input, ImageNet's averaged over its channels, per
    channel (``--normalize`` overrides either; the evidence records what was used)."""
    if channels == 3:
        return {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    grey_mean, grey_std = round(sum(IMAGENET_MEAN) / 3, 4), round(sum(IMAGENET_STD) / 3, 4)
    return {"mean": (grey_mean,) * channels, "std": (grey_std,) * channels}


def load_model(
    spec: str,
    *,
    role: str = "primary",
    option: str = "--model",
    allow_unsafe_pickle: bool = False,
    input_size: tuple[int, int] | None = None,
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    device: str | torch.device = "cpu",
) -> AuditModel:
    """Load a model spec into an eval-mode :class:`AuditModel` (images in [0, 1] in, logits out)."""
    parsed = parse_spec(spec, option)
    if parsed.kind == "demo":
        model = _load_demo(parsed, role)
    elif parsed.kind == "xrv":
        from .xrv import load_xrv  # its module imports this one's checkpoint checks

        model = load_xrv(parsed, role, option, allow_unsafe_pickle)
    else:
        path = Path(parsed.path).expanduser()
        if not path.is_file():
            raise AuditUsageError(f"{option}={spec}: checkpoint file not found: {path}")
        if parsed.kind == "torchscript":
            model = _load_bare(path, parsed, role, option, allow_unsafe_pickle, input_size)
        else:
            model = _load_arch(path, parsed, role, option, allow_unsafe_pickle, probe_size=input_size)
    if input_size is not None:
        model.info.input_size = tuple(input_size)
        model.info.extra.pop("input_size_from", None)
    if normalize is not None:
        mean, std = normalize
        model.info.mean, model.info.std = tuple(mean), tuple(std)
        model = AuditModel(model.net, model.info)
    model.eval()
    if parsed.kind != "demo":
        _check_output_depends_on_input(model, f"{option}={spec}")
    return model.to(device)


def _check_output_depends_on_input(model: AuditModel, what: str) -> None:
    """Every saliency method differentiates the logits with respect to the image: a network whose output is
    cut from its input (``detach``, ``torch.no_grad`` inside ``forward``) can give no map at all."""
    x = torch.rand(1, 1, *model.info.input_size,
                   generator=torch.Generator().manual_seed(0)).requires_grad_()
    try:
        out = model(x)
    except Exception as exc:  # noqa: BLE001 -- any failure here is the model not taking its own input size
        raise AuditUsageError(f"{what}: the model fails on a {tuple(x.shape[1:])} input ({one_line(exc)}); "
                              f"check --input-size") from None
    grad = torch.autograd.grad(out.sum(), x, allow_unused=True)[0] if out.requires_grad else None
    if grad is None:
        raise AuditUsageError(f"{what}: the model's output does not depend on its input (no gradient reaches the "
                              "image: detach() or torch.no_grad() in forward?); saliency maps need that gradient")


def _count(net: nn.Module) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def _load_demo(parsed: Spec, role: str) -> AuditModel:
    from ..demo import IMAGE_SIZE, load_demo_model
    from ..demo.archs import INPUT_MEAN, INPUT_STD

    net, meta = load_demo_model(parsed.arch)
    info = ModelInfo(
        spec=parsed.text, arch=meta["arch"], role=role, sha256=meta.get("sha256"), n_params=_count(net),
        num_classes=2, input_size=(IMAGE_SIZE, IMAGE_SIZE), in_channels=1,
        mean=(INPUT_MEAN,), std=(INPUT_STD,), extra={"demo": meta},
    )
    if parsed.arch.startswith("multilabel"):  # one sigmoid output per finding of the multi-finding world
        from ..demo.world import FINDINGS

        info.output, info.class_names, info.num_classes = "sigmoid", tuple(FINDINGS), len(FINDINGS)
    return AuditModel(net, info)


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())
    except zipfile.BadZipFile:
        return False


def _input_channels(state: dict) -> int:
    """The channels a network takes, from its first 4-D weight (the stem convolution's in-channels); 3 when it
    has none.  A TorchScript archive does not say, and a grey-image model fails on an RGB probe."""
    first = next((v for k, v in state.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 4), None)
    return int(first.shape[1]) if first is not None else 3


def _last_line(exc: BaseException) -> str:
    """A TorchScript interpreter error on one line: its last line says what failed (the first only says that
    something did, in the interpreter)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return one_line(RuntimeError(lines[-1])) if len(lines) > 1 else one_line(exc)


def _load_bare(path: Path, parsed: Spec, role: str, option: str, allow_unsafe_pickle: bool,
               size_hint: tuple | None) -> AuditModel:
    """A bare ``PATH``: a TorchScript archive or a state dict, rebuilt as the torchvision architecture its weights
    are exactly (every key and shape: :mod:`saliency_audit.models.autoarch`).  An archive is rebuilt only when the
    eager network's logits equal the archive's on a probe, else kept as TorchScript with the reason; a state dict
    must match exactly one architecture (several or none is an error asking for ``ARCH:PATH``)."""
    import time

    from .autoarch import matches

    what = f"{option}={parsed.text}"
    script = None
    if _is_torchscript(path):
        script = _jit_load(path, what)
        state = dict(script.state_dict())
    elif zipfile.is_zipfile(path) or _is_plain_pickle(path):
        state = _state_dict_of(_read_checkpoint(path, parsed.text, option, allow_unsafe_pickle), parsed.text, option,
                               path)
        if isinstance(state, nn.Module):  # a whole pickled network (--allow-unsafe-pickle): eager already
            cls = type(state)
            return _load_arch(path, Spec("arch", f"{cls.__module__}.{cls.__qualname__}", parsed.path, parsed.text),
                              role, option, allow_unsafe_pickle, read=(None, state), probe_size=size_hint)
    else:
        raise AuditUsageError(f"{what}: {path} is not a TorchScript archive; give ARCH:PATH for a state dict")
    t0 = time.perf_counter()
    found = [m["arch"] for m in matches(state)]
    note = {"matches": found, "match_seconds": round(time.perf_counter() - t0, 3)}
    reason = None
    if len(found) == 1:
        arch = found[0]
        try:
            model = _load_arch(path, Spec("arch", arch, parsed.path, parsed.text), role, option, allow_unsafe_pickle,
                               read=(script, state), probe_size=size_hint)
        except AuditUsageError as exc:
            if script is None:
                raise
            model = None
            reason = f"its weights are {arch}'s, but they do not load into it ({str(exc).removeprefix(what + ': ')})"
        if model is not None and not isinstance(model.net, torch.jit.ScriptModule):
            model.info.extra["auto_arch"] = {
                "arch": arch, "from": "TorchScript archive" if script is not None else "state dict",
                "rule": "every weight's name and shape are torchvision's " + arch
                        + ("; its logits equal the archive's on a probe" if script is not None else ""), **note}
            return model
        reason = reason or (f"its weights are {arch}'s, but the rebuilt {arch}'s logits differ from the archive's on "
                            f"a probe (the archive computes something {arch} does not)")
    elif found:
        reason = f"its weights match several torchvision architectures exactly ({', '.join(found)})"
    else:
        reason = "its weights match no torchvision architecture"
    if script is None:
        if found:
            raise AuditUsageError(f"{what}: {path} is not a TorchScript archive and {reason}; give ARCH:PATH to "
                                  f"choose one")
        raise AuditUsageError(f"{what}: {path} is not a TorchScript archive and {reason} exactly; give ARCH:PATH for "
                              f"a state dict")
    model = _load_torchscript(path, parsed, role, option, script=script, size_hint=size_hint)
    model.info.extra["auto_arch"] = {"arch": None, "kept": "TorchScript archive", "reason": reason, **note}
    return model


def _load_torchscript(path: Path, parsed: Spec, role: str, option: str, *, script=None,
                      size_hint: tuple | None = None) -> AuditModel:
    what = f"{option}={parsed.text}"
    if script is None and not _is_torchscript(path):
        raise AuditUsageError(f"{what}: {path} is not a TorchScript archive; give ARCH:PATH for a state dict")
    net = script if script is not None else _jit_load(path, what)
    channels = _input_channels(dict(net.state_dict()))
    info = ModelInfo(spec=parsed.text, arch="torchscript", role=role, sha256=file_sha256(path), n_params=_count(net),
                     input_size=tuple(size_hint) if size_hint else (224, 224), in_channels=channels,
                     **_default_normalisation(channels))
    try:
        with torch.no_grad():
            probe = net(torch.zeros(1, channels, *info.input_size))
    except Exception as exc:  # noqa: BLE001 -- the interpreter's errors are many lines
        raise AuditUsageError(f"{what}: the TorchScript model fails on a {(channels, *info.input_size)} input "
                              f"({_last_line(exc)}); check --input-size") from None
    if isinstance(probe, (tuple, list)):
        probe = probe[0]
    info.num_classes = int(probe.shape[-1]) if probe.ndim > 1 else 1
    return AuditModel(net, info)


def _jit_load(path: Path, what: str):
    check_zip(path, what)
    check_script_storages(path, what)
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 -- a damaged archive raises multi-line RuntimeErrors
        raise AuditUsageError(f"{what}: cannot read TorchScript archive {path} ({type(exc).__name__}: "
                              f"{one_line(exc)})") from None
    return net.eval()  # before any probe: a forward pass in training mode would update BatchNorm statistics


def _is_plain_pickle(path: Path) -> bool:
    """A ``pickle.dump`` file (protocol 2-5 header), which the weights-only unpickler refuses outright."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _read_checkpoint(path: Path, spec: str, option: str, allow_unsafe_pickle: bool):
    if path.stat().st_size == 0:
        raise AuditUsageError(f"{option}={spec}: checkpoint {path} is empty (0 bytes)")
    check_zip(path, f"{option}={spec}")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler names the class it refused ("Unsupported global", "Unsupported
        # GLOBAL" in some torch versions), or refuses a plain pickle.dump file at its first opcode: a real
        # pickle that full unpickling may read; anything else is damaged or foreign.
        if not (re.search(r"unsupported global", str(exc), flags=re.I) or _is_plain_pickle(path)):
            raise AuditUsageError(f"{option}={spec}: cannot read checkpoint {path}: not a torch checkpoint or "
                                  f"damaged ({one_line(exc)})") from None
        if not allow_unsafe_pickle:
            raise AuditUsageError(
                f"{option}={spec}: {path} needs full unpickling, which can run arbitrary code; "
                f"re-run with --allow-unsafe-pickle if you trust this file"
            ) from None
    except Exception as exc:  # truncated zip, not a torch file...
        raise AuditUsageError(f"{option}={spec}: cannot read checkpoint {path}: not a torch checkpoint or damaged "
                              f"({type(exc).__name__}: {one_line(exc)})") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 -- e.g. a plain pickle.dump file, which torch.load cannot read
        raise AuditUsageError(f"{option}={spec}: cannot read checkpoint {path} even with full unpickling "
                              f"({type(exc).__name__}: {one_line(exc)}); save it with torch.save") from None


#: where a training script may keep its input size beside the weights ({"state_dict": ..., "image_size": 128});
#: an int, (H, W) or (C, H, W) as timm's ``input_size``
SIZE_KEYS = ("input_size", "image_size", "img_size")


def trained_size(obj) -> tuple[tuple[int, int], str] | None:
    """((H, W), key) of the training size a checkpoint dict records under one of :data:`SIZE_KEYS`, or None."""
    if not isinstance(obj, dict):
        return None
    for key in SIZE_KEYS:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value, value)
        if isinstance(value, (list, tuple)) and len(value) in (2, 3) and all(
                isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 16_384 for v in value[-2:]):
            return (int(value[-2]), int(value[-1])), key
    return None


def _state_dict_of(obj, spec: str, option: str, path: Path):
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, nn.Module)):
                return _checked_state(obj[key], spec, option, path) if isinstance(obj[key], dict) else obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return _checked_state(obj, spec, option, path)
    raise AuditUsageError(f"{option}={spec}: {path} holds no state dict (found {type(obj).__name__})")


def _checked_state(state: dict, spec: str, option: str, path: Path) -> dict:
    """A state dict maps parameter names to dense real tensors; anything else would fail deep inside
    load_state_dict, or (complex weights) load with a part silently dropped."""
    for key, value in state.items():
        if not isinstance(key, str):
            raise AuditUsageError(f"{option}={spec}: {path}: state dict key {key!r} is not a parameter name")
        if not isinstance(value, torch.Tensor):
            raise AuditUsageError(f"{option}={spec}: {path}: {key} is a {type(value).__name__}, not a tensor")
        if value.layout != torch.strided or value.is_meta or value.is_complex():
            raise AuditUsageError(f"{option}={spec}: {path}: {key} is a {value.layout}/{value.dtype}"
                                  f"{' meta' if value.is_meta else ''} tensor, not a dense real one")
    return state


def _check_exact(state: dict, loaded: dict, what: str) -> None:
    """Every value reached the network as the file holds it, up to the network dtype's rounding.
    load_state_dict converts dtypes silently: a NaN or 7.5 in a float file becomes some integer in an integer
    buffer (BatchNorm's num_batches_tracked), 1e300 becomes inf in float32, 300 wraps in uint8."""
    for key, saved in state.items():
        got = loaded.get(key)
        if got is None or got.dtype == saved.dtype:
            continue
        if got.is_floating_point():
            fi = torch.finfo(got.dtype)
            ok = torch.isclose(got.double(), saved.double(), rtol=fi.eps, atol=fi.tiny, equal_nan=True)
        elif saved.is_floating_point():
            ok = got.double() == saved.double()
        else:
            ok = got.long() == saved.long()
        if not bool(ok.all()):
            k = int((~ok).flatten().nonzero()[0])
            raise AuditUsageError(f"{what}: {key} holds {saved.flatten()[k].item()!r} ({saved.dtype}), which the "
                                  f"network's {got.dtype} cannot hold (it would load as {got.flatten()[k].item()!r})")


def _strip_prefix(state: dict, expected: set[str]) -> dict:
    """Drop a wrapper prefix ('module.', 'model.', Lightning's 'net.' ...) when that makes keys match."""
    if set(state) & expected:
        return state
    for key in state:
        for cut in range(1, key.count(".") + 1):
            prefix = key.split(".")[:cut]
            prefix = ".".join(prefix) + "."
            stripped = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if stripped and set(stripped) & expected:
                return stripped
        break
    return state


def _build_arch(arch: str, num_classes: int, state: dict, spec: str, option: str) -> tuple[nn.Module, tuple, int]:
    """Network, input size and channels for an ARCH name."""
    if arch.startswith("timm/"):
        try:
            timm = importlib.import_module("timm")
        except ImportError:
            raise AuditUsageError(f"{option}={spec}: timm is not installed (pip install timm)") from None
        net = timm.create_model(arch[5:], pretrained=False, num_classes=num_classes)
        size = tuple(net.default_cfg.get("input_size", (3, 224, 224))[1:])
        return net, size, 3
    if ":" in arch:
        module_name, _, factory = arch.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), factory)
        except (ImportError, AttributeError) as exc:
            raise AuditUsageError(f"{option}={spec}: cannot import factory {arch}: {exc}") from None
        try:
            net = fn(num_classes=num_classes)
        except TypeError:
            net = fn()
        return net, tuple(getattr(net, "input_size", (224, 224))), int(getattr(net, "in_channels", 3))
    import torchvision.models as tvm

    if arch not in tvm.list_models(module=tvm):
        raise AuditUsageError(f"{option}={spec}: unknown architecture {arch!r} (a torchvision model name, timm/NAME or package.module:factory)")
    kwargs = {"weights": None, "num_classes": num_classes}
    if arch in AUX_PREFIXES:
        # the state may still carry a wrapper prefix ("model.", "module."): look for the component anywhere
        aux = AUX_PREFIXES[arch][0]
        kwargs.update(aux_logits=any(k.startswith(aux) or f".{aux}" in k for k in state), init_weights=False)
    net = tvm.get_model(arch, **kwargs)
    return net, ((299, 299) if arch == "inception_v3" else (224, 224)), 3


def check_fit(state: dict, expected: dict, what: str, arch: str | None = None) -> None:
    """One line for a state dict that does not fit the network: counts and the first keys of each kind, and
    the torchvision architecture the file looks like; the full lists go in the error's ``details``.

    Checked before ``load_state_dict``, whose size-mismatch error is a multi-line RuntimeError that
    hides the missing and unexpected keys behind the first mismatch.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in expected
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or shapes):
        return
    from .guess import likely_architectures

    def few(items):
        return "[" + ", ".join(items[:3]) + (f", +{len(items) - 3} more" if len(items) > 3 else "") + "]"

    parts = [f"{len(v)} {name} {few(v)}" for name, v in
             (("missing keys", missing), ("unexpected keys", unexpected), ("size mismatches", shapes)) if v]
    likely = likely_architectures(state, _head_classes(state) or 2, tried=arch)
    parts.append(f"it looks like {' or '.join(likely)}" if likely else "it matches no torchvision architecture")
    raise AuditUsageError(f"{what}: " + "; ".join(parts), details={
        "missing_keys": missing, "unexpected_keys": unexpected, "size_mismatches": shapes,
        "likely_architectures": likely})


#: More classes than any medical-image classifier has: a head this wide means the file is something else.
MAX_CLASSES = 100_000


def load_weights(net: nn.Module, state: dict, what: str, path, misfit: str, arch: str) -> dict:
    """Load ``state`` into ``net`` exactly (a wrapper's prefix cut): a checkpoint that does not fit is one
    usage error (``what: misfit`` and the keys that differ), never a partly loaded network; the state loaded."""
    state = _strip_prefix(state, set(net.state_dict()))
    check_fit(state, net.state_dict(), f"{what}: {misfit}", arch=arch)
    try:
        net.load_state_dict(state, strict=False)
    except Exception as exc:  # noqa: BLE001 -- dtype or layout that copy_ refuses
        raise AuditUsageError(f"{what}: cannot load the weights of {path} ({type(exc).__name__}: "
                              f"{one_line(exc)})") from None
    _check_exact(state, net.state_dict(), f"{what}: {path}")
    return state


def _head_classes(state: dict) -> int | None:
    """Classes from the last 2-D weight that is not an auxiliary head's."""
    heads = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2 and "aux" not in k.lower()]
    return int(heads[-1].shape[0]) if heads else None


def _same_outputs(script: nn.Module, net: nn.Module, channels: int, size: tuple) -> bool:
    """Whether the rebuilt eager network computes what the TorchScript archive does (eval mode, one probe)."""
    x = torch.rand(1, channels, *size, generator=torch.Generator().manual_seed(0))
    outs = []
    try:
        with torch.no_grad():
            for m in (script.eval(), net.eval()):
                out = m(x)
                if isinstance(out, (tuple, list)):
                    out = out[0]
                outs.append(getattr(out, "logits", out))
    except Exception:  # noqa: BLE001 -- e.g. a traced archive specialised to another input size
        return False
    return outs[0].shape == outs[1].shape and torch.allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def _load_arch(path: Path, parsed: Spec, role: str, option: str, allow_unsafe_pickle: bool, *,
               read: tuple | None = None, probe_size: tuple | None = None) -> AuditModel:
    """``ARCH:PATH``.  ``read``: (TorchScript module or None, state dict) already read from PATH (a bare PATH's
    automatic rebuild); ``probe_size``: the input size the rebuilt network is compared with the archive at."""
    spec = parsed.text
    script = trained = None  # trained: the training size a checkpoint dict records (trained_size)
    if read is not None:
        script, state = read
        net = state.eval() if isinstance(state, nn.Module) else None
    elif _is_torchscript(path):
        # ARCH is known: rebuild the eager network from the archive's weights (below), because a
        # ScriptModule cannot be audited (no forward hooks for GradCAM and randomization blocks,
        # its ReLUs bypass guided backprop); the scripted module is kept if it computes otherwise.
        script = _jit_load(path, f"{option}={spec}")
        state = dict(script.state_dict())
        net = None
    else:
        obj = _read_checkpoint(path, spec, option, allow_unsafe_pickle)
        state = _state_dict_of(obj, spec, option, path)
        net = state.eval() if isinstance(state, nn.Module) else None  # eval before the class-count probe
        trained = trained_size(obj)
    kept = None  # why a TorchScript archive was kept as it is
    if net is not None:
        num_classes = None
        size, channels = (299, 299) if parsed.arch == "inception_v3" else (224, 224), 3
    else:
        head = _head_classes(state)
        num_classes = head or 2
        if num_classes > MAX_CLASSES:
            raise AuditUsageError(f"{option}={spec}: the checkpoint's head has {num_classes} classes (more than "
                                  f"{MAX_CLASSES}); {path} is not a classifier's state dict")
        net, size, channels = _build_arch(parsed.arch, num_classes, state, spec, option)
        state = load_weights(net, state, f"{option}={spec}", path,
                             f"checkpoint {path} does not fit {parsed.arch}", parsed.arch)
        if script is not None and not _same_outputs(script, net, channels, tuple(probe_size or size)):
            net, num_classes = script, None
            kept = {"arch": parsed.arch, "kept": "TorchScript archive",
                    "reason": f"the rebuilt {parsed.arch} computes other logits than the archive on a probe"}
        if head is None:  # no linear head in the weights (a factory's own head): the outputs are counted
            num_classes = None
    extra = {"rebuild": kept} if kept else {}
    if trained is not None:  # the size the checkpoint says the model was trained at, not the architecture's default
        size, extra["input_size_from"] = trained[0], f"the checkpoint's {trained[1]!r}"
    info = ModelInfo(
        spec=spec, arch=parsed.arch, role=role, sha256=file_sha256(path), n_params=_count(net),
        input_size=size, in_channels=channels, **_default_normalisation(channels), extra=extra,
    )
    model = AuditModel(net, info)
    if num_classes is None:
        with torch.no_grad():
            num_classes = int(model(torch.zeros(1, 1, *tuple(probe_size or size))).shape[-1])
    info.num_classes = num_classes
    return model
