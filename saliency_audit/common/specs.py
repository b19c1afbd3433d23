"""Model spec parsing (torch-free, so pytest can validate options at start-up)."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import AuditUsageError

#: The demo world's models (saliency_audit.demo.train.VARIANTS has the recipes).
DEMO_VARIANTS = ("primary", "replicate1", "replicate2", "other-arch", "random-label", "shortcut")


@dataclass(frozen=True)
class Spec:
    kind: str  # "demo" | "torchscript" (a bare PATH: TorchScript, or a torchvision model's weights) | "arch"
    arch: str | None  # demo variant, or architecture name
    path: str | None
    text: str


def parse_spec(spec: str, option: str = "--model") -> Spec:
    """``demo`` | ``demo:VARIANT`` | ``PATH`` (TorchScript) | ``ARCH:PATH``."""
    spec = (spec or "").strip()
    if not spec:
        raise AuditUsageError(f"{option}: empty model spec")
    if spec == "demo" or spec.startswith("demo:"):
        variant = spec.partition(":")[2] or "primary"
        if variant not in DEMO_VARIANTS:
            raise AuditUsageError(
                f"{option}={spec}: unknown demo variant {variant!r} (choose from {', '.join(DEMO_VARIANTS)})"
            )
        return Spec("demo", variant, None, spec)
    if ":" in spec:
        arch, path = spec.rsplit(":", 1)
        if not arch or not path:
            raise AuditUsageError(f"{option}={spec}: expected ARCH:PATH")
        return Spec("arch", arch, path, spec)
    return Spec("torchscript", None, spec, spec)
