"""Method names of the interface contract and what each one needs.

A method is one function ``fn(model, x, keys, target, config, memo) -> raw attributions`` and one
:class:`MethodSpec`; a third party registers its own (:mod:`saliency_audit.common.extensions`).  ``passes`` tells
the plan (:func:`saliency_audit.engine.plan.method_passes`) its own forward passes per image.  Importing this module
is cheap (no torch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..common.errors import AuditUsageError
from ..common.extensions import Registry, register


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    params: tuple[str, ...]  # config sections (AuditConfig.methods.*) the maps depend on
    stochastic: bool  # uses noise draws (seeded per sample and draw)
    needs: tuple[str, ...] = ()  # raw attributions of other methods it combines
    uses_cam_layer: bool = False
    fn: str = ""  # "module:function" computing raw attributions; default saliency_audit.methods.<family>
    control: str = ""  # "negative" / "positive": a control map that ignores the model (methods/controls.py)
    guided: bool = False  # rewrites the backward rule of every ReLU call the network makes (models/relu_mode.py)
    #: its own forward passes per image and map, without the methods it combines: a number, or
    #: passes(config, cam_channels, size) -> int; None: not estimated (the plan says so)
    passes: int | Callable | None = None
    per_channel: bool = False  # passes grow with the CAM layer's channels: the plan counts the most ("at most")
    segments: bool = False  # segments each image once (model-independent, cached): the estimate's "segment" unit

    @property
    def needs_eager(self) -> bool:
        """Needs the eager network, not a TorchScript archive: a forward hook on the CAM layer, or every ReLU
        call seen from Python (guided backprop; inside an archive's interpreter they are not, and the map would
        silently be the plain gradient), itself or through a method it combines."""
        return self.uses_cam_layer or self.guided or any(METHODS[n].needs_eager for n in self.needs)

    @property
    def cached(self) -> bool:
        """Whether its maps go to the disk cache under the model's fingerprint.  A control's map never reads the
        model: the map store caches it under what it reads instead (the input grid, the image, its lesion mask:
        :meth:`saliency_audit.engine.maps.MapStore.control_key`), once for every model."""
        return not self.control

    def function(self):
        import importlib

        module, _, name = self.fn.partition(":")
        return getattr(importlib.import_module(module), name)


def _sg(c, *_):
    return c.methods.sg.samples


def _ig(c, *_):
    return c.methods.ig.steps


def _sig(c, *_):
    return c.methods.sg.samples * c.methods.ig.steps


def _scorecam(c, channels, _size):
    return 1 + channels + 1  # the capture, every channel, the black image (at most)


def _occlusion(c, _channels, size):
    from .occlusion import windows

    return 1 + len(windows(size, c.methods.occlusion))


def _lime(c, *_):
    return c.methods.lime.samples


_G, _C, _F = "saliency_audit.methods.gradients", "saliency_audit.methods.cam", "saliency_audit.methods.camfamily"
_K = "saliency_audit.methods.controls"

#: name -> spec. Extensible: a new method is one function plus one entry here (or a registered spec).
METHODS: Registry = Registry("method", spec_class=MethodSpec, specs=(
        MethodSpec("grad", "Gradient", (), False, fn=f"{_G}:grad", passes=1),
        MethodSpec("sg", "SmoothGrad", ("sg",), True, fn=f"{_G}:sg", passes=_sg),
        MethodSpec("ig", "Integrated Gradients", ("ig",), False, fn=f"{_G}:ig", passes=_ig),
        MethodSpec("sig", "Smooth Integrated Gradients", ("sg", "ig"), True, fn=f"{_G}:sig", passes=_sig),
        MethodSpec("gradcam", "GradCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_C}:gradcam",
                   passes=1),
        MethodSpec("xrai", "XRAI", ("ig", "xrai"), False, needs=("ig",), fn="saliency_audit.methods.xrai:xrai",
                   passes=0, segments=True),
        MethodSpec("gbp", "Guided Backprop", (), False, fn=f"{_G}:gbp", guided=True, passes=1),
        MethodSpec("ggcam", "Guided GradCAM", ("gradcam",), False, needs=("gbp", "gradcam"), uses_cam_layer=True,
                   fn=f"{_C}:ggcam", passes=0),
        MethodSpec("ixg", "Input × Gradient", (), False, fn=f"{_G}:ixg", passes=1),
        MethodSpec("gradcampp", "GradCAM++", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:gradcampp",
                   passes=1),
        MethodSpec("scorecam", "ScoreCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:scorecam",
                   passes=_scorecam, per_channel=True),
        MethodSpec("layercam", "LayerCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:layercam",
                   passes=1),
        MethodSpec("hirescam", "HiResCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:hirescam",
                   passes=1),
        MethodSpec("occlusion", "Occlusion", ("occlusion",), False, fn="saliency_audit.methods.occlusion:occlusion",
                   passes=_occlusion),
        MethodSpec("lime", "LIME", ("lime",), True, fn="saliency_audit.methods.lime:lime", passes=_lime),
        MethodSpec("edge", "Edge detector (negative control)", (), False, fn=f"{_K}:edge", control="negative",
                   passes=0),
        MethodSpec("random", "Random map (negative control)", (), True, fn=f"{_K}:random", control="negative",
                   passes=0),
        MethodSpec("oracle", "Softened lesion mask (positive control)", (), False, fn=f"{_K}:oracle",
                   control="positive", passes=0),
))

#: The control methods, in report order (``--controls`` adds them to the audited methods).
CONTROLS = tuple(name for name in METHODS.builtin if dict.__getitem__(METHODS, name).control)


def resolve_methods(names: str | list[str] | tuple[str, ...], option: str = "--methods") -> tuple[str, ...]:
    """Validated, de-duplicated method names in the given order."""
    if isinstance(names, str):
        names = [n for n in (p.strip() for p in names.split(",")) if n]
    out: list[str] = []
    for name in names:
        key = name.strip().lower()
        if key not in METHODS:
            raise AuditUsageError(
                f"{option}: unknown saliency method {name!r} (choose from {', '.join(METHODS)})"
            )
        if key not in out:
            out.append(key)
    if not out:
        raise AuditUsageError(f"{option}: no saliency method given")
    return tuple(out)


def register_method(spec: MethodSpec) -> None:
    """Add a saliency method (its ``fn`` an absolute ``"module:function"``); entry points in the group
    ``saliency_audit.methods`` do the same."""
    register(METHODS, spec, f"register_method({getattr(spec, 'name', spec)!r})")
