"""Method names of the interface contract and what each one needs."""
from __future__ import annotations

from dataclasses import dataclass

from ..common.errors import AuditUsageError


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

    @property
    def needs_eager(self) -> bool:
        """Needs the eager network, not a TorchScript archive: a forward hook on the CAM layer, or every ReLU
        call seen from Python (guided backprop; inside an archive's interpreter they are not, and the map would
        silently be the plain gradient), itself or through a method it combines."""
        return self.uses_cam_layer or self.guided or any(METHODS[n].needs_eager for n in self.needs)

    @property
    def cached(self) -> bool:
        """Whether its maps go to the disk cache (controls cost no model pass, and the oracle's map depends
        on the lesion mask, which the cache key does not cover)."""
        return not self.control

    def function(self):
        import importlib

        module, _, name = self.fn.partition(":")
        return getattr(importlib.import_module(module), name)


_G, _C, _F = "saliency_audit.methods.gradients", "saliency_audit.methods.cam", "saliency_audit.methods.camfamily"
_K = "saliency_audit.methods.controls"

#: name -> spec. Extensible: a new method is one function plus one entry here.
METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in (
        MethodSpec("grad", "Gradient", (), False, fn=f"{_G}:grad"),
        MethodSpec("sg", "SmoothGrad", ("sg",), True, fn=f"{_G}:sg"),
        MethodSpec("ig", "Integrated Gradients", ("ig",), False, fn=f"{_G}:ig"),
        MethodSpec("sig", "Smooth Integrated Gradients", ("sg", "ig"), True, fn=f"{_G}:sig"),
        MethodSpec("gradcam", "GradCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_C}:gradcam"),
        MethodSpec("xrai", "XRAI", ("ig", "xrai"), False, needs=("ig",), fn="saliency_audit.methods.xrai:xrai"),
        MethodSpec("gbp", "Guided Backprop", (), False, fn=f"{_G}:gbp", guided=True),
        MethodSpec("ggcam", "Guided GradCAM", ("gradcam",), False, needs=("gbp", "gradcam"), uses_cam_layer=True,
                   fn=f"{_C}:ggcam"),
        MethodSpec("ixg", "Input × Gradient", (), False, fn=f"{_G}:ixg"),
        MethodSpec("gradcampp", "GradCAM++", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:gradcampp"),
        MethodSpec("scorecam", "ScoreCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:scorecam"),
        MethodSpec("layercam", "LayerCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:layercam"),
        MethodSpec("hirescam", "HiResCAM", ("gradcam",), False, uses_cam_layer=True, fn=f"{_F}:hirescam"),
        MethodSpec("occlusion", "Occlusion", ("occlusion",), False, fn="saliency_audit.methods.occlusion:occlusion"),
        MethodSpec("lime", "LIME", ("lime",), True, fn="saliency_audit.methods.lime:lime"),
        MethodSpec("edge", "Edge detector (negative control)", (), False, fn=f"{_K}:edge", control="negative"),
        MethodSpec("random", "Random map (negative control)", (), True, fn=f"{_K}:random", control="negative"),
        MethodSpec("oracle", "Softened lesion mask (positive control)", (), False, fn=f"{_K}:oracle",
                   control="positive"),
    )
}

#: The control methods, in report order (``--controls`` adds them to the audited methods).
CONTROLS = tuple(name for name, spec in METHODS.items() if spec.control)


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
