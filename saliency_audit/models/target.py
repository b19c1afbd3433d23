"""The model's output kind, and the one function that turns its logits into the explained probability.

A classifier's outputs become probabilities in one of two ways:

* ``softmax``: the outputs are classes that compete (a single-label model, e.g. the demo's two classes); the
  explained class's probability is the softmax over all outputs at its index;
* ``sigmoid``: every output is its own yes/no decision (a multi-label chest X-ray model with one output per
  finding, CheXNet, torchxrayvision); the explained finding's probability is the sigmoid of its own logit.
  A softmax across such outputs couples findings that are independent: it damps every change of the
  explained one by the others' mass (a model with three findings audited through a softmax read a ROAD
  change of -0.001 where the finding's own sigmoid moved by about half).

A single-logit head is always read by its sigmoid (a softmax over one output is the constant 1).

Every probability the audit computes (ROAD, deletion and insertion curves, ScoreCAM's weights, LIME's
surrogate targets, the accuracy check) goes through :func:`explained_probability` with the kind that
:func:`resolve_output` settled when :class:`~saliency_audit.models.modelset.ModelSet` loaded the model (kept
on ``model.info.output``, its source in ``model.info.extra["output_source"]``).  Methods that explain a logit
(the gradients, the CAMs, occlusion's logit differences as captum computes them) do not depend on the kind.
"""
from __future__ import annotations

import torch

from ..common.errors import AuditUsageError

OUTPUT_KINDS = ("softmax", "sigmoid")
#: the config's ``output`` values: a kind, or "auto" (the model's declaration, else detection)
OUTPUT_CHOICES = ("auto", *OUTPUT_KINDS)

SOURCE_CONFIGURED = "configured (--output / output)"
SOURCE_MODEL = "declared by the model"
SOURCE_ONE_LOGIT = "one output: its sigmoid"
SOURCE_DEFAULT = ("several outputs read as competing classes (softmax); say --output=sigmoid for independent "
                  "findings")


def explained_probability(logits: torch.Tensor, index: int | torch.Tensor, kind: str | None) -> torch.Tensor:
    """The explained output's probability per row, (N,), in float32 or wider.

    ``index``: one output column for every row, or a LongTensor of one column per row; ``kind``: "softmax"
    (softmax over dim 1, at ``index``), "sigmoid" (the sigmoid of ``logits[:, index]``) or None (not resolved:
    detected from the shape, a single logit being a sigmoid and several a softmax).  A single-logit head is its
    sigmoid whatever ``kind`` says, and its only column whatever ``index`` says.
    """
    if logits.shape[1] == 1:
        column = logits[:, 0]
        return torch.sigmoid(column if column.dtype == torch.float64 else column.float())
    if kind not in (None, *OUTPUT_KINDS):
        raise ValueError(f"output kind {kind!r}: expected one of {OUTPUT_KINDS}")
    wide = logits if logits.dtype == torch.float64 else logits.float()  # half precision saturates a softmax
    scores = torch.softmax(wide, dim=1) if kind in (None, "softmax") else wide
    if isinstance(index, torch.Tensor):
        picked = scores.gather(1, index.to(scores.device).view(-1, 1))[:, 0]
    else:
        picked = scores[:, int(index)]
    return picked if kind in (None, "softmax") else torch.sigmoid(picked)


def output_of(model) -> str | None:
    """The output kind a model was resolved to (None: not resolved, e.g. a network a test substituted)."""
    info = getattr(model, "info", None)
    return getattr(info, "output", None)


def resolve_output(info, configured: str = "auto") -> tuple[str, str]:
    """(kind, source) of a model's output: how its logits become probabilities, and why.

    ``configured``: the config's ``output`` ("auto", "softmax" or "sigmoid").  In order:

    1. a single output is a sigmoid (a softmax over one logit is 1 for every image): ``--output=softmax`` on
       it is a usage error;
    2. an explicit ``--output`` wins, but not over a head the model declares otherwise (``info.output``, set by
       a loader that knows how the model was trained, e.g. torchxrayvision's sigmoids): the two disagreeing
       is a usage error, since either reading would be a silent guess about a model that says what it is;
    3. the model's declaration;
    4. several outputs: competing classes (softmax), the single-label models this audit was built for; a
       multi-label model that declares nothing needs ``--output=sigmoid``.
    """
    if configured not in OUTPUT_CHOICES:
        raise AuditUsageError(f"--output={configured}: expected one of {', '.join(OUTPUT_CHOICES)}")
    declared = getattr(info, "output", None)
    n = int(info.num_classes)
    if declared is not None and declared not in OUTPUT_KINDS:
        raise AuditUsageError(f"model {info.spec}: declares output {declared!r}; expected one of "
                              f"{', '.join(OUTPUT_KINDS)}")
    if n == 1:
        if configured == "softmax" or declared == "softmax":
            raise AuditUsageError(f"--output=softmax: model {info.spec} has a single output, which is read by its "
                                  "sigmoid (a softmax over one logit is always 1); leave --output out")
        return "sigmoid", SOURCE_ONE_LOGIT
    if configured != "auto":
        if declared is not None and declared != configured:
            raise AuditUsageError(f"--output={configured}: model {info.spec} declares {declared} outputs; leave "
                                  f"--output out (or say --output={declared})")
        return configured, SOURCE_CONFIGURED
    if declared is not None:
        return declared, SOURCE_MODEL
    return "softmax", SOURCE_DEFAULT


def apply_output(model, configured: str = "auto", class_names=()) -> None:
    """Settle ``model``'s output kind (:func:`resolve_output`) on ``model.info.output``, with its source in
    ``model.info.extra["output_source"]``, and ``--class-names`` on ``model.info.class_names`` (one name per
    output; the model's own names, if it declared others, are kept in ``extra["declared_class_names"]``).
    Idempotent: a model already settled is left as it is."""
    info = model.info
    if "output_source" in info.extra:
        return
    kind, source = resolve_output(info, configured)
    names = tuple(class_names or ())
    if names:
        if len(names) != int(info.num_classes):
            raise AuditUsageError(f"--class-names: {len(names)} name(s) given for the {info.num_classes} "
                                  f"output(s) of model {info.spec}")
        if len(set(names)) != len(names):
            raise AuditUsageError(f"--class-names: a name is given twice ({', '.join(names)})")
        if info.class_names is not None and tuple(info.class_names) != names:
            info.extra["declared_class_names"] = list(info.class_names)
        info.class_names = names
    elif info.class_names is not None and len(info.class_names) != int(info.num_classes):
        raise AuditUsageError(f"model {info.spec}: declares {len(info.class_names)} class names for its "
                              f"{info.num_classes} outputs")
    info.output = kind
    info.extra["output_source"] = source


def independent(model) -> bool:
    """Whether ``model`` has several outputs read as independent sigmoids (no single predicted class)."""
    return output_of(model) == "sigmoid" and int(model.info.num_classes) > 1


def check_predicted(model) -> None:
    """``explain = "predicted"`` needs one predicted class per image: a usage error on independent sigmoids."""
    if independent(model):
        names = model.info.class_names
        hint = f" or --finding={names[0]}" if names else " or --finding=NAME"
        raise AuditUsageError(f"--target-class=predicted: model {model.info.spec} has {model.info.num_classes} "
                              "independent sigmoid outputs, which have no single predicted class; name the output "
                              f"audited with --target-class=N{hint}")


def predicted_class(logits: torch.Tensor, kind: str | None, index: int = 0) -> torch.Tensor:
    """(N,) LongTensor: each row's decision.  Softmax: the argmax class; a sigmoid (one logit, or output ``index``
    of independent ones): 1 where the probability exceeds 0.5 (logit > 0), else 0."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    if kind == "sigmoid":
        return (logits[:, int(index)] > 0).long()
    return logits.argmax(1)


def parse_class_names(text: str) -> list[str]:
    """``--class-names=A,B,C`` as a list of names (spaces around each are dropped); an empty name is a usage
    error naming the option."""
    names = [n.strip() for n in str(text).split(",")]
    if not names or any(not n for n in names):
        raise AuditUsageError(f"--class-names={text}: expected comma-separated names, one per model output "
                              "(an empty name in the list)")
    return names
