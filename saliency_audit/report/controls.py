"""The controls in the HTML report: their columns of the verdict matrix and the paragraph that reads them."""
from __future__ import annotations

from ..criteria.controls import control_of, summary
from .markup import esc

CSS = """
#verdict-matrix th.ctl,#verdict-matrix td.ctl{border-left:2px solid #8c959f}
td.ctl-ok{background:#eef2f6;color:#24292f}td.ctl-wrong{background:var(--error-bg);color:var(--error);
outline:2px solid var(--error);outline-offset:-2px}td.ctl-info{background:#f6f8fa;color:var(--muted)}
.controls-box{margin:8px 0;padding:6px 12px;border-left:3px solid #8c959f;background:#f6f8fa;font-size:13px}
.controls-box.wrong{border-left-color:var(--error);background:var(--error-bg)}
"""

_ROLE = {"negative": "negative control", "positive": "positive control"}


def is_control_column(evidence: dict, method: str) -> str | None:
    """The role of ``method`` when its results are control results, else None."""
    for r in evidence.get("results") or []:
        if str(r.get("method")) == method and control_of(r):
            return control_of(r).get("role")
    return None


def header_cell(method: str, role: str) -> str:
    return f'<th class="ctl">{esc(method)}<span class="lb">{esc(_ROLE.get(role, "control"))}</span></th>'


def cell(r: dict, verdict: str, inner: str) -> str:
    """A control's cell: its own verdict and number, then whether that is what its criterion expects."""
    c = control_of(r) or {}
    expected = c.get("expected")
    if c.get("met") is None:
        cls = "ctl-info"
        tag = "reported, not gated" if expected is None else "not evaluated"
    elif c["met"]:
        cls, tag = "ctl-ok", f"as expected ({esc(str(expected))})"
    else:
        cls, tag = "ctl-wrong", f"WRONG: must {esc(str(expected))}"
    return f'<td class="ctl {cls}">{inner}<span class="lb"><b>{tag}</b></span></td>'


def paragraph(evidence: dict) -> str:
    """What the controls show, under the matrix: how many came out as expected, and each one that did not."""
    s = summary(evidence.get("results") or [])
    if not s:
        return ""
    head = (f"<b>Controls</b>: {s['met']} of {s['gated']} gated control verdict(s) as expected"
            + (f", {s['report_only']} reported only" if s["report_only"] else "") + ". ")
    what = ("The controls ignore the model: <code>edge</code> is the image's Sobel edge map and <code>random</code> "
            "seeded noise (negative controls), <code>oracle</code> the softened lesion mask (positive control). Each "
            "criterion states beforehand what they must get: negative controls fail utility, the interpretability "
            "scores and both randomization tests, the oracle passes utility; every control passes repeatability and "
            "reproducibility, which is why consistency alone proves little. Control verdicts are not counted in the "
            "gate's verdicts; a control that comes out wrong fails the gate on its own.")
    if not s["unmet"]:
        return f'<div class="controls-box">{head}{what}</div>'
    items = "".join(f"<li>{esc(m)}</li>" for m in s["unmet"])
    return (f'<div class="controls-box wrong">{head}<b>The audit is not discriminating here:</b><ul>{items}</ul>'
            f"{what}</div>")
