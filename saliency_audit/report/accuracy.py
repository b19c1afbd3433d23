"""How the audited model does on the audited images, in one sentence (terminal, report header, warnings)."""
from __future__ import annotations


def _usable(acc) -> bool:
    return isinstance(acc, dict) and isinstance(acc.get("accuracy"), (int, float))


def _one(acc: dict, what: str) -> str:
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
