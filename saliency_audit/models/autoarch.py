"""Which torchvision classification architecture a file's weights belong to, exactly.

A bare ``--model=PATH`` (a TorchScript archive or a state dict) names no
architecture.  When its parameter and buffer names and shapes are exactly
those of one torchvision classification builder (the class count read from
the head), the loader rebuilds that architecture, so every criterion gets an
eager network (forward hooks, guided backprop, randomized copies).

Signatures (name -> shape of every state-dict entry) are built once per
process and architecture on the ``meta`` device: no memory and no
initialisation, about 80 builders in a few seconds, every later match a dict
comparison.  The head is built with :data:`SENTINEL` classes, a width no
torchvision layer has, so one signature serves every class count: a
dimension equal to the sentinel matches the file's class count, the same at
every place it appears.  Auxiliary heads (Inception v3's ``AuxLogits``,
GoogLeNet's ``aux1``/``aux2``) may be absent from the file, as they are when
a model is saved without them; the loader then builds it without them.
"""
from __future__ import annotations

import time
import warnings

#: the class count the signatures are built with (prime, far from any layer width torchvision uses)
SENTINEL = 7919

#: auxiliary-head key prefixes a file may lack (the builder's ``aux_logits=False``)
AUX_PREFIXES = {"inception_v3": ("AuxLogits.",), "googlenet": ("aux1.", "aux2.")}

_SIGNATURES: dict[str, dict[str, tuple] | None] = {}  # name -> signature; None: the builder fails on meta
STATS = {"built": 0, "seconds": 0.0}  # signatures built in this process and the time they took


def _meta_build_mode():
    """A torch-function mode, entered inside ``torch.device("meta")``, that makes building on the meta device
    work for every builder and cheaper:

    * small constants (``arange``, ``linspace``, ``tensor``) stay real CPU tensors, because some builders read
      them back as numbers (RegNet's block widths); every weight still goes to the meta device;
    * initialisers (``torch.nn.init``) and in-place value ops (``normal_``, ``fill_`` ...) on a meta tensor return
      the tensor at once: a meta tensor has no values, and these leave its shape as it is.
    """
    import torch
    from torch.overrides import TorchFunctionMode

    constants = {torch.arange, torch.linspace, torch.logspace, torch.tensor, torch.as_tensor}
    value_ops = {getattr(torch.Tensor, n) for n in (
        "normal_", "uniform_", "fill_", "zero_", "mul_", "add_", "sub_", "div_", "clamp_", "clamp_min_",
        "clamp_max_", "erfinv_", "copy_", "exponential_", "bernoulli_", "random_", "addcmul_", "addcdiv_",
        "sqrt_", "abs_", "neg_") if hasattr(torch.Tensor, n)}
    # torch.nn.init's initialisers are torch functions themselves (they dispatch before the tensor ops they run)
    value_ops |= {getattr(torch.nn.init, n) for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")}

    class _MetaBuild(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in value_ops:  # torch.nn.init passes its tensor by keyword
                target = args[0] if args else kwargs.get("tensor", kwargs.get("input"))
                if getattr(target, "is_meta", False):
                    return target
            if func in constants and kwargs.get("device") is None:
                kwargs = dict(kwargs, device="cpu")
            return func(*args, **kwargs)

    return _MetaBuild()


def signature(name: str) -> dict[str, tuple] | None:
    """{state-dict key: shape} of torchvision's ``name`` with :data:`SENTINEL` classes (None: not buildable)."""
    if name not in _SIGNATURES:
        import torch
        import torchvision

        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(), torch.device("meta"), _meta_build_mode():
                warnings.simplefilter("ignore")
                net = torchvision.models.get_model(name, weights=None, num_classes=SENTINEL)
            _SIGNATURES[name] = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        except Exception:  # noqa: BLE001 -- a builder that cannot run here is no candidate
            _SIGNATURES[name] = None
        STATS["built"] += 1
        STATS["seconds"] += time.perf_counter() - t0
    return _SIGNATURES[name]


def _shapes(state: dict) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def _classes(arch: dict[str, tuple], target: dict[str, tuple]) -> int | None:
    """The class count under which ``target`` is exactly ``arch`` (None: it is not)."""
    if len(arch) != len(target) or arch.keys() != target.keys():
        return None
    classes = None
    for key, shape in arch.items():
        got = target[key]
        if len(got) != len(shape):
            return None
        for want, have in zip(shape, got):
            if want == SENTINEL:
                if classes is None:
                    classes = have
                elif have != classes:
                    return None
            elif want != have:
                return None
    return classes if classes is not None else -1  # -1: no head dimension (never for a classifier)


def _variants(state: dict) -> list[tuple[str, dict]]:
    """(prefix, state with it cut) for the state as saved and each wrapper prefix of its first key
    ('module.', 'model.', Lightning's 'net.' ...), keeping the keys that start with it."""
    out = [("", state)]
    first = next(iter(state), None)
    if isinstance(first, str):
        parts = first.split(".")
        for cut in range(1, len(parts)):
            prefix = ".".join(parts[:cut]) + "."
            out.append((prefix, {k[len(prefix):]: v for k, v in state.items()
                                 if isinstance(k, str) and k.startswith(prefix)}))
    return out


def _without(sig: dict, prefixes: tuple[str, ...]) -> dict:
    return {k: v for k, v in sig.items() if not k.startswith(prefixes)}


def matches(state: dict, names: list[str] | None = None) -> list[dict]:
    """Every torchvision classification architecture whose state dict is exactly ``state``'s keys and shapes
    (after cutting a wrapper prefix): ``[{"arch", "num_classes", "prefix", "aux"}]``, in torchvision's order.

    ``names``: the builders to try (default: ``torchvision.models.list_models(module=torchvision.models)``).
    """
    import torchvision

    names = list(names) if names is not None else torchvision.models.list_models(module=torchvision.models)
    variants = [(p, _shapes(s)) for p, s in _variants(state)]
    variants = [(p, s) for p, s in variants if s]
    sizes = {len(s) for _, s in variants}
    found = []
    for name in names:
        sig = signature(name)
        if sig is None:
            continue
        aux = AUX_PREFIXES.get(name, ())
        plain = _without(sig, aux) if aux else sig
        if len(sig) not in sizes and len(plain) not in sizes:  # the cheap pre-filter: the number of entries
            continue
        for prefix, target in variants:
            with_aux = not aux or any(k.startswith(aux) for k in target)
            classes = _classes(sig if with_aux else plain, target)
            if classes is not None and classes > 0:
                found.append({"arch": name, "num_classes": classes, "prefix": prefix, "aux": bool(aux) and with_aux})
                break
    return found
