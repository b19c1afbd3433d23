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
``lesions`` (utility, energy, focus, pointing).

Importing this module is cheap (no torch).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..errors import AuditUsageError


@dataclass(frozen=True)
class CriterionSpec:
    name: str
    title: str
    entry: str  # "module:function" relative to saliency_audit.criteria
    needs: tuple[str, ...]
    summary: str
    optional: tuple[str, ...] = ()  # needs that only feed a report-only baseline (left out when unavailable)

    def function(self):
        module, _, fn = self.entry.partition(":")
        return getattr(importlib.import_module(f"saliency_audit.criteria.{module}"), fn)


CRITERIA: dict[str, CriterionSpec] = {
    c.name: c
    for c in (
        CriterionSpec("utility", "Localisation utility", "utility:run", ("maps", "lesions", "randomized"),
                      "does the map find the lesion better than the average-mask prior? (AP)",
                      optional=("randomized",)),
        CriterionSpec("randomization", "Model-parameter randomization", "randomization:run_cascade",
                      ("maps", "randomized"), "do the maps change as the model's weights are randomized?"),
        CriterionSpec("label_randomization", "Label randomization", "randomization:run_label",
                      ("maps", "random_label"), "do the maps change for a model trained on permuted labels?"),
        CriterionSpec("repeatability", "Repeatability", "consistency:run_repeatability", ("maps", "replicates"),
                      "do the maps survive retraining the architecture with another seed?"),
        CriterionSpec("reproducibility", "Reproducibility", "consistency:run_reproducibility",
                      ("maps", "references"), "do the maps agree across architectures trained on the task?"),
        CriterionSpec("completeness", "Faithfulness (ROAD completeness)", "completeness:run",
                      ("maps", "lesions", "model_passes", "randomized"),
                      "does removing what the map highlights change the model's output more than a random order?"),
        CriterionSpec("energy", "Proportional energy", "interpretability:run_energy", ("maps", "lesions"),
                      "what share of the map's mass lies in the lesion, against the prior?"),
        CriterionSpec("focus", "Average saliency focus", "interpretability:run_focus", ("maps", "lesions"),
                      "how much saliency per lesion pixel, against the prior?"),
        CriterionSpec("pointing", "Pointing game", "interpretability:run_pointing", ("maps", "lesions"),
                      "is the map's maximum inside the lesion more often than the prior's?"),
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
