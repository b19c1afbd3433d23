"""Randomization blocks: the units of Adebayo et al. (2018) cascading randomization.

Cascading randomization re-initialises a network block by block from the
logits down to the input and watches the saliency maps degrade.  The blocks
must therefore be listed head-first in *reverse execution order* (registration
order can differ from forward order), each parameterized module must sit in
exactly one block, and a BatchNorm goes with the conv whose output it
normalises -- randomizing a conv while keeping the statistics of its trained
outputs would be neither the trained nor an untrained layer.

How blocks are found (no per-architecture tables; one structural rule that
reproduces the papers' granularity for torchvision and the demo archs):

1. Wrappers with a single parameterized child and no parameters of their own
   are looked through (``nn.Sequential(resnet)`` gives ``0.fc``, ``0.layer4``...).
2. *Units*: if the network has exactly two parameterized children -- a body
   and a head, as torchvision's ``features``/``classifier`` and the demo archs'
   ``features``/``head`` -- each of the two is split into its parameterized
   children (a part with only one stays whole: EfficientNet's ``classifier``,
   the demo ``head``).  A ``Sequential`` made only of single layers (VGG
   ``features``) is split per pooling stage instead of per layer.  Otherwise
   (ResNet, Inception v3) each parameterized top-level child is a unit.
3. One forward probe (eval mode, no grad, batch 1) orders the units by
   execution.  Units whose executions interleave (a module reused across
   units) make the order ill-defined: that is an error asking for ``override``.
   Units that never run in eval mode (Inception's ``AuxLogits``) keep their
   registration place: they go right after the unit registered before them,
   which for ``AuxLogits`` is ``Mixed_6e``, exactly where it runs in training.
4. A unit made of normalization layers only (ResNet ``bn1``, DenseNet
   ``norm0``/``norm5``) joins the unit executed just before it, whose output it
   normalises (ResNet ``conv1+bn1``, DenseNet ``denseblock4+norm5``).
5. The forward list is reversed: head first.

Parameters held directly by a container that is split (e.g. a ViT class
token) belong to no block; they are reported with a warning.
"""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from ..common.errors import AuditUsageError, one_line

_NORMS = tuple(
    t for t in (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, getattr(nn, "RMSNorm", None)) if t
)
_POOLS = (
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
)


@dataclass(frozen=True)
class Block:
    name: str  # display name, e.g. "fc", "layer4", "conv1+bn1", "features.stage5"
    modules: tuple[str, ...]  # module names of the network whose parameters (recursively) form the block
    n_params: int

    def to_dict(self) -> dict:
        return {"name": self.name, "modules": list(self.modules), "n_params": self.n_params}


def _has_params(module: nn.Module, recurse: bool = True) -> bool:
    return any(True for _ in module.parameters(recurse=recurse))


def _param_children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, c) for n, c in module.named_children() if _has_params(c)]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _n_params(net: nn.Module, names: tuple[str, ...]) -> int:
    named = dict(net.named_modules())
    seen = {id(p): p.numel() for n in names for p in named[n].parameters()}  # shared tensors counted once
    return sum(seen.values())


# ----------------------------------------------------------------- units (step 1-2)
def _split(prefix: str, part: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    """Units of one half of a body/head network, as (display name, member names)."""
    children = _param_children(part)
    if len(children) <= 1:
        return [(prefix, (prefix,))]
    if isinstance(part, nn.Sequential) and all(not _param_children(c) for _, c in children):
        if any(isinstance(c, _POOLS) for c in part):
            # A Sequential's registration order is its execution order, so the
            # pooling layers delimit stages directly (VGG: conv-BN-ReLU x n, pool).
            stages: list[list[str]] = [[]]
            for n, c in part.named_children():
                if isinstance(c, _POOLS):
                    stages.append([])
                elif _has_params(c):
                    stages[-1].append(_join(prefix, n))
            stages = [s for s in stages if s]
            return [(_join(prefix, f"stage{i}"), tuple(s)) for i, s in enumerate(stages, 1)]
    return [(_join(prefix, n), (_join(prefix, n),)) for n, _ in children]


def _units(net: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    prefix, root = "", net
    while not _has_params(root, recurse=False) and len(_param_children(root)) == 1:
        name, root = _param_children(root)[0]
        prefix = _join(prefix, name)
    children = _param_children(root)
    if not children:
        return [(prefix or type(net).__name__, (prefix,))]
    if len(children) == 2:
        return [u for n, c in children for u in _split(_join(prefix, n), c)]
    return [(_join(prefix, n), (_join(prefix, n),)) for n, _ in children]


# ----------------------------------------------------------------- probe (step 3)
def _default_shape(net: nn.Module) -> tuple[int, int, int]:
    conv = next((m for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return (conv.in_channels if conv is not None else 3, 224, 224)


def _execution_spans(net: nn.Module, units, input_shape) -> dict[str, tuple[int, int]]:
    """(first start, last end) event index of every unit that runs in an eval forward."""
    named = dict(net.named_modules())
    events: list[tuple[str, str]] = []  # (unit, "start" | "end"), in execution order
    handles = []
    for unit, members in units:
        for m in members:
            handles.append(named[m].register_forward_pre_hook(lambda *_, u=unit: events.append((u, "start"))))
            handles.append(named[m].register_forward_hook(lambda *_, u=unit: events.append((u, "end"))))
    modes = [(m, m.training) for m in net.modules()]
    ref = next((p for p in net.parameters() if p.is_floating_point()), None)
    x = torch.zeros(1, *input_shape, dtype=ref.dtype if ref is not None else None, device=ref.device if ref is not None else None)
    try:
        net.eval()  # never update BN running statistics of the caller's network
        with torch.no_grad():
            net(x)
    except Exception as exc:  # noqa: BLE001 -- any failure means the probe input does not fit
        msg = one_line(exc)
        raise AuditUsageError(
            f"randomization blocks: forward probe with input {tuple(x.shape)} failed ({msg}); "
            f"set --input-size, or list the blocks head first in randomization.blocks of the audit config"
        ) from None
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    spans: dict[str, tuple[int, int]] = {}
    for i, (unit, kind) in enumerate(events):
        s, e = spans.get(unit, (i, i))
        spans[unit] = (min(s, i), max(e, i) if kind == "end" else e)
    return spans


def _forward_order(units, spans) -> list[tuple[str, tuple[str, ...]]]:
    ran = sorted((u for u in units if u[0] in spans), key=lambda u: spans[u[0]][0])
    for before, after in zip(ran, ran[1:]):
        if spans[before[0]][1] > spans[after[0]][0]:
            raise AuditUsageError(
                f"randomization blocks: {before[0]} and {after[0]} execute interleaved (a module reused?), "
                f"so there is no head-to-input order; list the blocks head first in randomization.blocks "
                f"of the audit config"
            )
    # Units that did not run (Inception AuxLogits in eval mode) go right after
    # the unit registered before them, which is where they run in training.
    order = list(units)  # registration order
    for i, unit in enumerate(order):
        if unit[0] in spans:
            continue
        prev = next((order[j] for j in range(i - 1, -1, -1) if order[j] in ran), None)
        ran.insert(ran.index(prev) + 1 if prev else 0, unit)
    return ran


def _is_norm_only(net: nn.Module, members: tuple[str, ...]) -> bool:
    named = dict(net.named_modules())
    leaves = [m for n in members for m in named[n].modules() if _has_params(m, recurse=False)]
    return bool(leaves) and all(isinstance(m, _NORMS) for m in leaves)


# ----------------------------------------------------------------- coverage
def _coverage(net: nn.Module, groups: list[tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """(parameterized modules in more than one group, parameterized modules in none)."""
    named = dict(net.named_modules())
    counts: dict[int, int] = {}
    for members in groups:
        ids = {id(m) for n in members for m in named[n].modules()}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
    owners = [(n, m) for n, m in net.named_modules() if _has_params(m, recurse=False)]
    twice = [n or "<root>" for n, m in owners if counts.get(id(m), 0) > 1]
    missing = [n or "<root>" for n, m in owners if counts.get(id(m), 0) == 0]
    return twice, missing


def _warn_missing(missing: list[str], how: str) -> None:
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        warnings.warn(
            f"randomization blocks ({how}): {len(missing)} parameterized module(s) in no block, "
            f"never randomized: {shown}",
            stacklevel=3,
        )


def _from_override(net: nn.Module, override) -> list[Block]:
    if isinstance(override, str):
        override = [override]
    named = dict(net.named_modules())
    groups: list[tuple[str, ...]] = []
    for entry in override:
        members = (entry,) if isinstance(entry, str) else tuple(entry)
        if not members:
            raise AuditUsageError("randomization blocks: an override entry is an empty list")
        for name in members:
            if not name or name not in named:
                close = difflib.get_close_matches(name, [n for n in named if n], n=5, cutoff=0.6)
                raise AuditUsageError(
                    f"randomization blocks: no module named {name!r} in {type(net).__name__}"
                    + (f" (similar: {', '.join(close)})" if close else "")
                )
        groups.append(members)
    twice, missing = _coverage(net, groups)
    if twice:
        raise AuditUsageError(
            f"randomization blocks: parameterized module(s) listed in more than one block: {', '.join(twice[:5])}"
        )
    _warn_missing(missing, "override")
    return [Block("+".join(g), g, _n_params(net, g)) for g in groups]


def randomization_blocks(
    net: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    override: list[list[str]] | list[str] | None = None,
) -> list[Block]:
    """Head-first randomization blocks of a raw network (not an ``AuditModel``).

    ``input_shape`` is the (C, H, W) of the forward probe (default: the first
    conv's channels at 224 px; Inception v3 needs >= 75 px).  ``override`` is a
    head-first list of blocks, each a module name or a list of names; it is
    taken as given (no probe), names are validated, modules listed twice are an
    error and modules left out are warned about.
    """
    if override is not None:
        return _from_override(net, override)
    units = _units(net)
    spans = _execution_spans(net, units, tuple(input_shape) if input_shape else _default_shape(net))
    forward = _forward_order(units, spans)
    merged: list[tuple[str, tuple[str, ...]]] = []
    for name, members in forward:
        if merged and _is_norm_only(net, members):
            prev_name, prev_members = merged[-1]
            merged[-1] = (f"{prev_name}+{name}", prev_members + members)
        else:
            merged.append((name, members))
    merged.reverse()
    twice, missing = _coverage(net, [m for _, m in merged])
    if twice:  # weight sharing across units: cascading randomization would be ill-defined
        raise AuditUsageError(
            f"randomization blocks: module(s) shared between blocks: {', '.join(twice[:5])}; "
            f"list the blocks head first in randomization.blocks of the audit config"
        )
    _warn_missing(missing, "automatic")
    return [Block(name, members, _n_params(net, members)) for name, members in merged]
