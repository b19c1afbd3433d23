"""The criterion registry: name -> a spec that says everything the engine, plan, config and report need.

A criterion is one module with an entry point ``fn(ctx, method) -> CriterionResult`` (``ctx``:
:class:`saliency_audit.criteria.context.Context`), one spec, one audit test and one report section module
(:mod:`saliency_audit.report.sections`).  ``Audit.run(name, method)``, the plugin's parametrization, the
plan (``cost``), the config (``section``, ``params``, ``check``) and the report (``report``, ``score``)
read the spec; adding a criterion never edits them.  A third party registers its own spec
(:mod:`saliency_audit.common.extensions`).

``needs`` says what a criterion asks of the run, so a caller can tell in
advance what it costs and what it cannot do without (e.g. maps read from
disk cannot be re-computed on another model):

* ``maps`` — saliency maps of the primary model;
* ``lesions`` — images with lesion masks or boxes;
* ``randomized`` — maps of randomized copies of the primary;
* ``replicates`` / ``references`` / ``random_label`` — other trained models;
* ``model_passes`` — forward passes of the primary on perturbed images;
* ``human_annotations`` — a second set of annotations (``--human-annotations``): without it the criterion is
  absent from the run (not planned, its test skipped, nothing in the evidence).

``optional`` lists the needs that only feed a report-only baseline: maps made
elsewhere (``--maps``) serve a criterion whose other needs are ``maps`` and
``lesions`` (:func:`serves_external`: utility, energy, focus, pointing), and a model with no randomized
copies (a TorchScript archive) still gets utility and completeness verdicts,
the randomized-model baseline recorded as unavailable with the reason.

References (``entry``, ``cost``, ``check``, ``report``) are ``"module:attribute"`` strings or the objects
themselves; a module starting with ``.`` is relative to ``saliency_audit.criteria`` (``entry``) or
``saliency_audit`` (the others).

Importing this module is cheap (no torch).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from .errors import AuditUsageError
from .extensions import Registry, register


def resolve(ref, package: str = "saliency_audit"):
    """The object a ``"module:attribute"`` reference names (the object itself when it is not a string)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module, package if module.startswith(".") else None)
    return getattr(obj, attr) if attr else obj


@dataclass(frozen=True)
class CriterionSpec:
    name: str
    title: str
    entry: str | Callable  # "module:function" (".module": saliency_audit.criteria.module) or fn(ctx, method)
    needs: tuple[str, ...]
    summary: str
    optional: tuple[str, ...] = ()  # needs that only feed a report-only baseline (left out when unavailable)
    controls: tuple[tuple[str, str], ...] = ()  # (control method, the verdict it must get); absent: report-only
    control_note: str = ""  # what the controls show about this criterion, or why one is report-only
    #: the config section of its parameters: an AuditConfig field for a built-in, else ``params``' table
    #: ([tool.saliency_audit.<section>]); ``ctx.config.section(name)`` gives it
    section: str = ""
    params: type | None = None  # a third party's parameters: a dataclass with defaults (None: a built-in's)
    check: str | Callable | None = None  # check(params, need): need(ok, "key", "must be ...") per parameter
    #: the plan's image-passes of one (criterion, method): cost(ledger, method, stop) -> int
    #: (saliency_audit.engine.plan); None: the plan lists the pair under "not estimated"
    cost: str | Callable | None = None
    #: its report section module (render interface: saliency_audit.report.sections); "": the generic section
    report: str = ""
    score: tuple[str, str] = ()  # (details key, format) of its own mean score in the terminal table

    def expected(self, control: str) -> str | None:
        """The verdict ``control`` must get here ("pass" / "fail"), or None: reported, never gated."""
        return dict(self.controls).get(control)

    def function(self):
        return resolve(self.entry, "saliency_audit.criteria")

    def cost_function(self) -> Callable | None:
        return resolve(self.cost) if self.cost else None

    def check_function(self) -> Callable | None:
        return resolve(self.check) if self.check else None

    def report_module(self) -> Any | None:
        return resolve(self.report) if self.report else None


# What the controls (saliency_audit.methods.controls) must show.  None of them looks at the model.
_LOCALISES = (("edge", "fail"), ("random", "fail"), ("oracle", "pass"))
_LOCALISES_NOTE = ("neither the edge detector nor noise may beat the average-mask prior; the softened lesion "
                   "mask must")
_IGNORES_MODEL = (("edge", "fail"), ("random", "fail"), ("oracle", "fail"))
_IGNORES_MODEL_NOTE = "a map that ignores the model does not change when the model does, so every control must fail"
_CONSISTENT = (("edge", "pass"), ("random", "pass"), ("oracle", "pass"))
_CONSISTENT_NOTE = ("a map that ignores the model is the same for every model, so every control must pass: "
                    "consistency is necessary, not sufficient; read it beside the randomization criteria")

_S = "saliency_audit.report.sections"


#: what the controls must show, per family of built-in criteria (completeness names its own)
_FAMILY_CONTROLS = {"utility": (_LOCALISES, _LOCALISES_NOTE), "interpretability": (_LOCALISES, _LOCALISES_NOTE),
                    "randomization": (_IGNORES_MODEL, _IGNORES_MODEL_NOTE),
                    "consistency": (_CONSISTENT, _CONSISTENT_NOTE)}


def _builtin(name: str, title: str, entry: str, needs: tuple[str, ...], summary: str, family: str,
             score: tuple[str, str] = ("mean_ap", "AP {:.3f}"), cost: str = "cost", **kw) -> CriterionSpec:
    """A built-in criterion's spec: its parameters are the config section ``family``, checked by
    common/criteria_params.py's function of that name, drawn by report/sections/<family>.py, its controls the
    family's, and its cost the function ``cost`` of its own module (beside the loop it replays)."""
    controls, note = _FAMILY_CONTROLS.get(family, ((), ""))
    kw = {"controls": controls, "control_note": note, **kw}
    return CriterionSpec(name, title, entry, needs, summary, section=family, check=f".common.criteria_params:{family}",
                         cost=f".criteria.{entry[1:].partition(':')[0]}:{cost}", report=f"{_S}.{family}", score=score,
                         **kw)


_ROAD_NOTE = ("noise is a random order and must fail; the edge map and the lesion mask are reported only: whether "
              "removing them changes the output is a property of the model (the oracle's value is the lesion "
              "reliance), not of the audit")

#: name -> spec, in the contract's (report) order; extensions follow (saliency_audit.common.extensions)
CRITERIA: Registry = Registry("criterion", spec_class=CriterionSpec, specs=(
    _builtin("utility", "Localisation utility", ".utility:run", ("maps", "lesions", "randomized"),
             "does the map find the lesion better than the average-mask prior? (AP)", "utility",
             optional=("randomized",)),
    _builtin("randomization", "Model-parameter randomization", ".randomization:run_cascade", ("maps", "randomized"),
             "do the maps change as the model's weights are randomized?", "randomization", cost="cascade_cost"),
    _builtin("label_randomization", "Label randomization", ".randomization:run_label", ("maps", "random_label"),
             "do the maps change for a model trained on permuted labels?", "randomization", cost="label_cost"),
    _builtin("repeatability", "Repeatability", ".consistency:run_repeatability", ("maps", "replicates"),
             "do the maps survive retraining the architecture with another seed?", "consistency",
             cost="repeatability_cost"),
    _builtin("reproducibility", "Reproducibility", ".consistency:run_reproducibility", ("maps", "references"),
             "do the maps agree across architectures trained on the task?", "consistency",
             cost="reproducibility_cost"),
    _builtin("completeness", "Faithfulness (ROAD completeness)", ".completeness:run",
             ("maps", "lesions", "model_passes", "randomized"),
             "does removing what the map highlights change the model's output more than a random order?",
             "completeness", ("mean_road", "ROAD {:+.3f}"), controls=(("random", "fail"),), control_note=_ROAD_NOTE,
             optional=("randomized",)),
    *(_builtin(name, title, f".interpretability:run_{name}", ("maps", "lesions"), question, "interpretability",
               ("mean_score", f"{short} {{:.3f}}"))
      for name, title, short, question in (
          ("energy", "Proportional energy", "energy",
           "what share of the map's mass lies in the lesion, against the prior?"),
          ("focus", "Average saliency focus", "focus", "how much saliency per lesion pixel, against the prior?"),
          ("pointing", "Pointing game", "hit", "is the map's maximum inside the lesion more often than the prior's?"))),
    CriterionSpec("human_benchmark", "Radiologist benchmark", ".human:run", ("maps", "lesions", "human_annotations"),
                  "does the map localise the finding nearly as well as the radiologists? (hit rate, IoU, AP)",
                  controls=_LOCALISES, control_note=("neither the edge detector nor noise may come near the readers' "
                                                     "hit rate; the softened lesion mask must"),
                  section="human", check=".common.criteria_params:human", cost=".criteria.human:cost",
                  report=f"{_S}.human_benchmark", score=("hit_rate", "hit {:.2f}")),
))

#: the needs that make a criterion absent (never planned nor recorded) when the run lacks them: need -> option
ABSENT_WITHOUT = {"human_annotations": "--human-annotations"}

def absent(spec: CriterionSpec, given: set[str]) -> str | None:
    """Why ``spec`` is absent from a run that was given the options ``given`` (one line), or None."""
    lacking = [option for need, option in ABSENT_WITHOUT.items() if need in spec.needs and option not in given]
    return f"{spec.name} runs only with {', '.join(lacking)}" if lacking else None


#: what maps made elsewhere (--maps) can give a criterion
EXTERNAL_OK = frozenset({"maps", "lesions", "human_annotations"})  # the readers' annotations do not depend on the model


def external_gap(spec: CriterionSpec) -> list[str]:
    """What ``spec`` needs that maps made elsewhere cannot give (empty: it can audit them)."""
    return sorted(set(spec.needs) - set(spec.optional) - EXTERNAL_OK)


def serves_external() -> tuple[str, ...]:
    """The criteria that can audit maps made elsewhere (``--maps``), in registry order."""
    return tuple(name for name, spec in CRITERIA.items() if not external_gap(spec))


def criterion(name: str, option: str = "criterion") -> CriterionSpec:
    try:
        return CRITERIA[name]
    except KeyError:
        raise AuditUsageError(f"{option}: unknown criterion {name!r} (choose from {', '.join(CRITERIA)})") from None


def register_criterion(spec: CriterionSpec) -> None:
    """Add a criterion (its ``entry`` an absolute ``"module:function"`` or a callable ``fn(ctx, method) ->
    CriterionResult``); entry points in the group ``saliency_audit.criteria`` do the same."""
    register(CRITERIA, spec, f"register_criterion({getattr(spec, 'name', spec)!r})")
