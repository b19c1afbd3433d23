"""Model spec parsing and the model-input options ``--input-size`` / ``--normalize`` (torch-free, so pytest
can validate options at start-up; the plugin and the CLI share them)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import AuditUsageError

#: The demo world's models (saliency_audit.demo.train.VARIANTS has the recipes).
DEMO_VARIANTS = ("primary", "replicate1", "replicate2", "other-arch", "random-label", "shortcut")
#: The multi-label demo models (saliency_audit.demo.train.MULTILABEL_VARIANTS has the recipes).
MULTILABEL_DEMO_VARIANTS = ("multilabel", "multilabel-random-label", "multilabel-replicate1", "multilabel-other-arch")


@dataclass(frozen=True)
class Spec:
    kind: str  # "demo" | "torchscript" (a bare PATH: TorchScript, or a torchvision model's weights) | "arch" | "xrv"
    arch: str | None  # demo variant, architecture name, or torchxrayvision weight name
    path: str | None
    text: str


def parse_spec(spec: str, option: str = "--model") -> Spec:
    """``demo`` | ``demo:VARIANT`` | ``PATH`` (TorchScript) | ``ARCH:PATH`` | ``xrv:NAME`` | ``xrv:NAME:PATH``
    (a torchxrayvision weight name; its weights from PATH, else torchxrayvision's cache)."""
    spec = (spec or "").strip()
    if not spec:
        raise AuditUsageError(f"{option}: empty model spec")
    if spec == "demo" or spec.startswith("demo:"):
        variant = spec.partition(":")[2] or "primary"
        if variant not in DEMO_VARIANTS + MULTILABEL_DEMO_VARIANTS:
            raise AuditUsageError(
                f"{option}={spec}: unknown demo variant {variant!r} "
                f"(choose from {', '.join(DEMO_VARIANTS + MULTILABEL_DEMO_VARIANTS)})"
            )
        return Spec("demo", variant, None, spec)
    if spec.startswith("xrv:"):
        name, _, path = spec[4:].partition(":")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise AuditUsageError(f"{option}={spec}: expected xrv:NAME or xrv:NAME:PATH, NAME a torchxrayvision "
                                  f"weight name such as densenet121-res224-all")
        return Spec("xrv", name, path or None, spec)
    if ":" in spec:
        arch, path = spec.rsplit(":", 1)
        if not arch or not path:
            raise AuditUsageError(f"{option}={spec}: expected ARCH:PATH")
        return Spec("arch", arch, path, spec)
    return Spec("torchscript", None, spec, spec)


def int_option(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise AuditUsageError(f"{option}={text}: expected an integer") from None


def model_input_overrides(input_size: str | None, normalize: str | None) -> dict:
    """``{"model": {...}}`` config overrides of ``--input-size`` and ``--normalize`` (empty when neither)."""
    model_input = {}
    if input_size:
        model_input["input_size"] = parse_input_size(input_size)
    if normalize:
        model_input["mean"], model_input["std"] = parse_normalize(normalize)
    return {"model": model_input} if model_input else {}


def parse_input_size(text: str) -> list[int]:
    """``--input-size``: ``512`` or ``512,384`` (height, width)."""
    parts = [int_option(p.strip(), "--input-size") for p in text.replace("x", ",").split(",") if p.strip()]
    if len(parts) not in (1, 2) or min(parts) < 8:
        raise AuditUsageError(f"--input-size={text}: expected SIZE or HEIGHT,WIDTH of at least 8 pixels")
    return parts * 2 if len(parts) == 1 else parts


def parse_normalize(text: str) -> tuple[list[float], list[float]]:
    """``--normalize``: ``MEAN,STD`` (all channels), ``M1,M2,M3,S1,S2,S3``, ``imagenet`` or ``none``."""
    named = {"imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "none": ([0.0], [1.0])}
    if text.strip().lower() in named:
        return named[text.strip().lower()]
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise AuditUsageError(f"--normalize={text}: expected numbers MEAN,STD or M1,M2,M3,S1,S2,S3") from None
    if len(values) not in (2, 6) or any(v <= 0 for v in values[len(values) // 2:]):
        raise AuditUsageError(f"--normalize={text}: expected MEAN,STD or M1,M2,M3,S1,S2,S3 with every STD > 0")
    half = len(values) // 2
    return values[:half], values[half:]
