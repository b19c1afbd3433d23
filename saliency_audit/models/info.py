"""ModelInfo: what the evidence records about a model."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ModelInfo:
    spec: str
    arch: str
    role: str = "primary"
    sha256: str | None = None
    n_params: int = 0
    num_classes: int = 2
    input_size: tuple[int, int] = (224, 224)
    in_channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    extra: dict[str, Any] = field(default_factory=dict)
    #: how the outputs become probabilities: "softmax" (classes that compete) or "sigmoid" (independent
    #: findings, or one logit); None when the model does not declare it (then ``--output``, else detection)
    output: str | None = None
    #: one name per output column (a finding's or a class's), when the model or ``--class-names`` gives them
    class_names: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("output", "class_names"):  # said only when known: a model that declares neither reads as before
            if d[key] is None:
                del d[key]
        if self.class_names is not None:
            d["class_names"] = list(self.class_names)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d
