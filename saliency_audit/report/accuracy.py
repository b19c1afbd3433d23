"""How the audited model does on the audited images, in one sentence (terminal, report header, warnings)."""
from __future__ import annotations


def _usable(acc) -> bool:
    return isinstance(acc, dict) and isinstance(acc.get("accuracy"), (int, float))


def sigmoid_head(acc) -> bool:
    """Whether ``acc`` scores a sigmoid head (one output of independent findings, or a single logit): judged by
    its AUROC, its accuracy being the decisions at probability 0.5 (models/modelset.py ``accuracy``)."""
    return isinstance(acc, dict) and acc.get("output") == "sigmoid"


def output_label(acc: dict) -> str:
    """``output 3 (Nodule)``: the output a sigmoid head's measurement scored."""
    name = acc.get("output_name")
    return f"output {acc.get('output_index')}" + (f" ({name})" if name else "")


def _auroc(acc: dict) -> float | None:
    value = acc.get("auroc")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _one(acc: dict, what: str) -> str:
    if sigmoid_head(acc):
        auroc = _auroc(acc)
        head = f"AUROC {auroc:.3f}" if auroc is not None else "AUROC undefined (one label)"
        return (f"{head} of {output_label(acc)}'s sigmoid, accuracy at 0.5 {acc['accuracy']:.3f} (balanced "
                f"{acc['balanced_accuracy']:.3f}) on {what}; labels {acc.get('labels')}, predicted "
                f"{acc.get('predicted')}")
    return (f"accuracy {acc['accuracy']:.3f} (balanced {acc['balanced_accuracy']:.3f}) on {what}; "
            f"labels {acc.get('labels')}, predicted {acc.get('predicted')}")


def summary(acc) -> str | None:
    """``"accuracy 0.938 (balanced 0.938) on the 48 audited images; labels …"`` plus, when the audited
    images hold one label, the same on the label-stratified check images; None when nothing was measured."""
    if not _usable(acc):
        return None
    text = _one(acc, f"the {acc['n']} audited images")
    strat = acc.get("label_stratified")
    if _usable(strat):
        text += f" | {_one(strat, str(strat['n']) + ' label-stratified images')}"
    return text


def deciding(acc) -> tuple[dict, str] | None:
    """(measurement, what it was measured on) that a near-chance warning should judge: the label-stratified
    one when the audited images hold a single label (a model calling everything positive is perfect on
    lesion images)."""
    if not _usable(acc):
        return None
    strat = acc.get("label_stratified")
    return (strat, "label-stratified check images") if _usable(strat) else (acc, "audited images")
