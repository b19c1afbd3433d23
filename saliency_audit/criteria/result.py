"""CriterionResult: one (criterion, method) verdict with the numbers behind it."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("pass", "fail", "error", "skipped")


def _clean(value: Any) -> Any:
    """Builtin JSON types only (numpy scalars -> float/int, NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class CriterionResult:
    criterion: str
    method: str
    verdict: str
    statistic: str = ""
    value: float | None = None
    ci: list[float | None] = field(default_factory=lambda: [None, None])
    threshold: float | None = None
    baseline: dict | None = None
    n: int = 0
    per_image: list[dict] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    explanation: str = ""
    bound: float | None = None
    baselines: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    model: str = "primary"
    p_value: float | None = None  # the smallest level at which this verdict passes (see defer_p_value)
    finding: str | None = None  # the finding explained, for a model audited per finding (common/subjects.py)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}")

    def defer_p_value(self, *checks: tuple, otherwise: bool = True) -> "CriterionResult":
        """Record what the verdict's p-value is computed from, once the result is final (a sequential rule
        replaces it with its own): ``checks`` are (per-image values, threshold, strict, bootstrap seed), each
        of which must clear its threshold; ``otherwise``: the verdict's non-statistical condition (e.g.
        utility's minimum AP), without which no p below 1 is claimed.  Kept off the dataclass's fields: the
        values are arrays."""
        self._p_checks = (checks, bool(otherwise))
        return self

    def settle_p_value(self, resamples: int, method: str) -> None:
        """Compute the deferred fixed-n p-value (:func:`saliency_audit.stats.pass_p_value` per check; a
        verdict whose checks must all clear has their largest, an intersection-union test)."""
        pending = self.__dict__.pop("_p_checks", None)
        if pending is None or self.p_value is not None or self.verdict not in ("pass", "fail"):
            return
        from ..stats import pass_p_value

        checks, otherwise = pending
        if not otherwise or not checks:
            self.p_value = 1.0
            return
        self.p_value = max(pass_p_value(v, t, strict=s, resamples=resamples, method=method, seed=seed)
                           for v, t, s, seed in checks)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def subject(self) -> str:
        """``method``, or ``method-Finding`` for a verdict about one finding (its test id)."""
        from ..common.subjects import subject

        return subject(self.method, self.finding)

    def __repr__(self) -> str:  # short: pytest prints it under every failed assertion
        return (f"CriterionResult({self.criterion}[{self.subject}] {self.verdict}, "
                f"value={self.value!r}, bound={self.bound!r}, n={self.n})")

    def explain(self) -> str:
        return f"{self.criterion}[{self.subject}] {self.verdict.upper()}: {self.explanation}"

    def to_dict(self) -> dict:
        d = _clean(asdict(self))
        if d["finding"] is None:  # a single-label run's evidence reads as it always has
            del d["finding"]
        alpha = self.details.get("alpha")
        if isinstance(alpha, float) and any(v is not None for v in d["ci"]):
            d["ci_level"] = round(1 - 2 * alpha, 6)  # two-sided; its lower end is the one-sided (1 - alpha) bound
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CriterionResult":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})
