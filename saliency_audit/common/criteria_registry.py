"""The criterion registry: name -> the module that evaluates it and the inputs it needs.

A criterion is one module with an entry point ``fn(ctx, method) ->
CriterionResult`` (``ctx``: :class:`saliency_audit.criteria.context.Context`),
one entry here, one audit test in ``audits/`` and one report section.
``Audit.run(name, method)`` and the plugin's parametrization read this table;
adding a criterion never edits ``Audit``.

``needs`` says what a criterion asks of the run, so a caller can tell in
advance what it costs and what it cannot do without (e.g. maps read from
disk cannot be re-computed on another model):

* ``maps`` — saliency maps of the primary model;
* ``lesions`` — images with lesion masks or boxes;
* ``randomized`` — maps of randomized copies of the primary;
* ``replicates`` / ``references`` / ``random_label`` — other trained models;
* ``model_passes`` — forward passes of the primary on perturbed images.

``optional`` lists the needs that only feed a report-only baseline: maps made
elsewhere (``--maps``) serve a criterion whose other needs are ``maps`` and
``lesions`` (utility, energy, focus, pointing), and a model with no randomized
copies (a TorchScript archive) still gets utility and completeness verdicts,
the randomized-model baseline recorded as unavailable with the reason.

Importing this module is cheap (no torch).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import AuditUsageError


@dataclass(frozen=True)
class CriterionSpec:
    name: str
    title: str
    entry: str  # "module:function" relative to saliency_audit.criteria
    needs: tuple[str, ...]
    summary: str
    optional: tuple[str, ...] = ()  # needs that only feed a report-only baseline (left out when unavailable)
    controls: tuple[tuple[str, str], ...] = ()  # (control method, the verdict it must get); absent: report-only
    control_note: str = ""  # what the controls show about this criterion, or why one is report-only

    def expected(self, control: str) -> str | None:
        """The verdict ``control`` must get here ("pass" / "fail"), or None: reported, never gated."""
        return dict(self.controls).get(control)

    def function(self):
        module, _, fn = self.entry.partition(":")
        return getattr(importlib.import_module(f"saliency_audit.criteria.{module}"), fn)


# What the controls (saliency_audit.methods.controls) must show.  None of them looks at the model.
_LOCALISES = (("edge", "fail"), ("random", "fail"), ("oracle", "pass"))
_LOCALISES_NOTE = ("neither the edge detector nor noise may beat the average-mask prior; the softened lesion "
                   "mask must")
_IGNORES_MODEL = (("edge", "fail"), ("random", "fail"), ("oracle", "fail"))
_IGNORES_MODEL_NOTE = "a map that ignores the model does not change when the model does, so every control must fail"
_CONSISTENT = (("edge", "pass"), ("random", "pass"), ("oracle", "pass"))
_CONSISTENT_NOTE = ("a map that ignores the model is the same for every model, so every control must pass: "
                    "consistency is necessary, not sufficient; read it beside the randomization criteria")

CRITERIA: dict[str, CriterionSpec] = {
    c.name: c
    for c in (
        CriterionSpec("utility", "Localisation utility", "utility:run", ("maps", "lesions", "randomized"),
                      "does the map find the lesion better than the average-mask prior? (AP)",
                      optional=("randomized",), controls=_LOCALISES, control_note=_LOCALISES_NOTE),
        CriterionSpec("randomization", "Model-parameter randomization", "randomization:run_cascade",
                      ("maps", "randomized"), "do the maps change as the model's weights are randomized?",
                      controls=_IGNORES_MODEL, control_note=_IGNORES_MODEL_NOTE),
        CriterionSpec("label_randomization", "Label randomization", "randomization:run_label",
                      ("maps", "random_label"), "do the maps change for a model trained on permuted labels?",
                      controls=_IGNORES_MODEL, control_note=_IGNORES_MODEL_NOTE),
        CriterionSpec("repeatability", "Repeatability", "consistency:run_repeatability", ("maps", "replicates"),
                      "do the maps survive retraining the architecture with another seed?",
                      controls=_CONSISTENT, control_note=_CONSISTENT_NOTE),
        CriterionSpec("reproducibility", "Reproducibility", "consistency:run_reproducibility",
                      ("maps", "references"), "do the maps agree across architectures trained on the task?",
                      controls=_CONSISTENT, control_note=_CONSISTENT_NOTE),
        CriterionSpec("completeness", "Faithfulness (ROAD completeness)", "completeness:run",
                      ("maps", "lesions", "model_passes", "randomized"),
                      "does removing what the map highlights change the model's output more than a random order?",
                      optional=("randomized",), controls=(("random", "fail"),),
                      control_note=("noise is a random order and must fail; the edge map and the lesion mask are "
                                    "reported only: whether removing them changes the output is a property of "
                                    "the model (the oracle's value is the lesion reliance), not of the audit")),
        CriterionSpec("energy", "Proportional energy", "interpretability:run_energy", ("maps", "lesions"),
                      "what share of the map's mass lies in the lesion, against the prior?",
                      controls=_LOCALISES, control_note=_LOCALISES_NOTE),
        CriterionSpec("focus", "Average saliency focus", "interpretability:run_focus", ("maps", "lesions"),
                      "how much saliency per lesion pixel, against the prior?",
                      controls=_LOCALISES, control_note=_LOCALISES_NOTE),
        CriterionSpec("pointing", "Pointing game", "interpretability:run_pointing", ("maps", "lesions"),
                      "is the map's maximum inside the lesion more often than the prior's?",
                      controls=_LOCALISES, control_note=_LOCALISES_NOTE),
    )
}


EXTERNAL_OK = frozenset({"maps", "lesions"})


def external_gap(spec: CriterionSpec) -> list[str]:
    """What ``spec`` needs that maps made elsewhere cannot give (empty: it can audit them)."""
    return sorted(set(spec.needs) - set(spec.optional) - EXTERNAL_OK)


def criterion(name: str, option: str = "criterion") -> CriterionSpec:
    try:
        return CRITERIA[name]
    except KeyError:
        raise AuditUsageError(f"{option}: unknown criterion {name!r} (choose from {', '.join(CRITERIA)})") from None
