"""The diagnosis: what utility and completeness together say about each method, and about the model.

Utility asks "does the map point at the lesion?", completeness "does the map
show what the model uses?".  Neither alone can tell a coarse but faithful map
on a model that uses the lesion from a faithful map on a model that uses
something else (a shortcut): both fail utility and pass completeness.  The
*lesion reliance* (ROAD of the lesion itself, as a map, minus a random
order's; :mod:`saliency_audit.criteria.completeness`) separates them: it asks
the model, not the map.

Per method (from the results present; evidence dicts only, so it also runs
on merged pytest-xdist evidence):

=====================  ==============  ========  =======================================
diagnosis              completeness    utility   lesion reliance (bound > 0)
=====================  ==============  ========  =======================================
faithful-localises     pass            pass      any
faithful-coarse        pass            fail      yes: the model uses the lesion, the map
                                                 is too coarse or imprecise to show it
model-looks-elsewhere  pass            fail      no: the map faithfully shows that the
                                                 model relies on something else
localises-unused       pass            pass      no: the map finds the lesion, but the
                                                 model's output does not depend on it
not-faithful           fail            any       any: the map does not explain the model
localises-fails-gate   pass            pass      any, but the method fails another criterion
=====================  ==============  ========  =======================================

``localises-unused`` takes precedence over ``faithful-localises`` when the
reliance is known to be absent.  The diagnosis rests on completeness and utility (and the reliance), but it
is one story with the gate: each method's entry lists every other criterion the method fails or errs on
(``fails``: randomization, consistency, interpretability ...), and ``faithful-localises`` becomes
``localises-fails-gate`` when that list is not empty, so no method is called usable while the gate fails it.  A method whose completeness was not run (or
ended in an error) gets no diagnosis; without utility the diagnosis says
only whether the map is faithful.
"""
from __future__ import annotations

from ..common.subjects import subject
from .controls import control_of

LABELS = {
    "faithful-localises": "faithful and localises",
    "faithful-coarse": "faithful, but too coarse or imprecise to localise",
    "model-looks-elsewhere": "the model looks elsewhere (shortcut)",
    "localises-unused": "localises, but the model does not rely on the lesion",
    "not-faithful": "not faithful",
    "faithful": "faithful (utility not run)",
    "localises-fails-gate": "faithful and localises, but fails other criteria",
}


def _decided(results: list[dict], criterion: str) -> dict[str, dict]:
    return {r["method"]: r for r in results if r.get("criterion") == criterion and r.get("verdict") in ("pass", "fail")
            and r.get("model", "primary") == "primary" and not control_of(r)}


def classify(faithful: bool, localises: bool | None, uses_lesion: bool | None) -> str:
    if not faithful:
        return "not-faithful"
    if localises is None:
        return "faithful"
    if uses_lesion is False:
        return "localises-unused" if localises else "model-looks-elsewhere"
    if localises:
        return "faithful-localises"
    return "faithful-coarse" if uses_lesion else "faithful"


def diagnose(results: list[dict]) -> dict:
    """{"lesion_reliance": {...} | None, "methods": {method: {"diagnosis", "label", ...}}} from result dicts.
    A run audited per finding is diagnosed per finding (the model's reliance on each finding's lesion is its
    own): ``findings`` {finding: diagnosis}, and ``methods`` keyed by subject (``gradcam-Nodule``)."""
    findings = sorted({str(r["finding"]) for r in results if r.get("finding")})
    if findings:
        per = {f: _diagnose([r for r in results if r.get("finding") == f]) for f in findings}
        return {"lesion_reliance": None, "findings": per,
                "methods": {subject(m, f): d for f, p in per.items() for m, d in p["methods"].items()}}
    return _diagnose(results)


def _diagnose(results: list[dict]) -> dict:
    comp, util = _decided(results, "completeness"), _decided(results, "utility")
    reliance = next((r["details"]["lesion_reliance"] for r in comp.values()
                     if (r.get("details") or {}).get("lesion_reliance")), None)
    uses = reliance.get("uses_lesion") if reliance else None
    methods = {}
    for m, r in comp.items():
        localises = util[m]["verdict"] == "pass" if m in util else None
        key = classify(r["verdict"] == "pass", localises, uses)
        fails = _other_failures(results, m)
        if key == "faithful-localises" and fails:
            key = "localises-fails-gate"
        label = LABELS[key] + (f" ({', '.join(fails)})" if key == "localises-fails-gate" else "")
        methods[m] = {"diagnosis": key, "label": label, "rests_on": ["completeness", "utility", "lesion reliance"],
                      "fails": fails, "completeness": r["verdict"],
                      "completeness_bound": r.get("bound"),
                      "utility": util[m]["verdict"] if m in util else None,
                      "utility_bound": util[m].get("bound") if m in util else None,
                      "cam_resolution": _cam_resolution(r)}
    summary = None
    if reliance is not None:
        summary = {k: reliance.get(k) for k in ("value", "ci", "bound", "n", "uses_lesion", "lesion_road",
                                                "random_road")}
    return {"lesion_reliance": summary, "methods": methods}


def _other_failures(results: list[dict], method: str) -> list[str]:
    """The criteria other than completeness and utility on which the gate fails ``method`` (fail or error, any
    model), in the results' order."""
    out: list[str] = []
    for r in results:
        c = str(r.get("criterion"))
        if r.get("method") == method and not control_of(r) and c not in ("completeness", "utility") \
                and r.get("verdict") in ("fail", "error") and c not in out:
            out.append(c)
    return out


def _cam_resolution(r: dict):
    layer = ((r.get("details") or {}).get("map_notes") or {}).get("cam_layer") or {}
    return layer.get("resolution")
