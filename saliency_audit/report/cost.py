"""Report sections of the audit's cost and of its sequential verdicts.

* :func:`cost_section` — the model passes the run spent against its plan (``run.plan``,
  :mod:`saliency_audit.engine.plan`), the time estimate made once 2 % of the planned passes (or 30 s) have run, and the (criterion, method)
  pairs that cost the most (``details.image_passes``).
* :func:`sequential_section` — with sequential verdicts (the default; :mod:`saliency_audit.stats.sequential`): the stopping rule in
  words, and per verdict the images used, why it stopped, and the bounds at every look against the
  thresholds.

Rendered from the evidence alone; every evidence string escaped.  Either returns "" when the evidence has
nothing for it.
"""
from __future__ import annotations

import math

from ..common.subjects import of as subject_of
from .markup import N, esc, fmt, table, verdict_of

CSS = """
.looks{font-size:12px;font-variant-numeric:tabular-nums;white-space:nowrap}
.looks .ck{color:var(--muted)}
"""

#: how many of the most expensive pairs the cost table shows
TOP = 10


# -- helpers ---------------------------------------------------------------------------------------------------
def _int(x) -> int | None:
    """``x`` as an int when it is a finite number (not a bool), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return int(x)


def _num(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _count(x) -> str:
    """A count with thousands separators, or an em dash."""
    v = _int(x)
    return "—" if v is None else f"{v:,}"


def _pct(part, whole) -> str:
    if part is None or not whole:
        return "—"
    return f"{100 * part / whole:.1f}%"


def _minutes(seconds) -> str:
    s = _num(seconds)
    if s is None:
        return "—"
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def _results(evidence: dict) -> list[dict]:
    return [r for r in evidence.get("results") or [] if isinstance(r, dict)]


def _details(r: dict) -> dict:
    d = r.get("details")
    return d if isinstance(d, dict) else {}


def _passes_of(r: dict) -> int | None:
    return _int(_details(r).get("image_passes"))


def spent(evidence: dict) -> int | None:
    """Image-passes the run spent: the sum over its results (a merged run's ``run.image_passes`` is one
    shard's), else ``run.image_passes``; None when neither is recorded."""
    each = [p for p in map(_passes_of, _results(evidence)) if p is not None]
    if each:
        return sum(each)
    return _int((evidence.get("run") or {}).get("image_passes"))


def _plans(plan: dict) -> list[dict]:
    """The plan's parts (a merged sharded run) or the plan itself, as a list of dicts."""
    parts = plan.get("parts")
    if isinstance(parts, list):
        return [p for p in parts if isinstance(p, dict)]
    return [plan]


def planned(plan) -> dict | None:
    """{"most", "least" (or None), "exact", "parts", "estimates"} of ``run.plan``; None without a usable one."""
    if not isinstance(plan, dict):
        return None
    plans = _plans(plan)
    most = _int(plan.get("image_passes"))
    if most is None:
        each = [_int(p.get("image_passes")) for p in plans]
        most = sum(each) if plans and None not in each else None
    if most is None:
        return None
    least = [_int(p.get("image_passes_least")) for p in plans]
    return {"most": most, "least": sum(least) if plans and None not in least else None,
            "exact": all(p.get("exact") is not False for p in plans),
            "parts": len(plans) if isinstance(plan.get("parts"), list) else 0,
            "estimates": [p.get("estimate") for p in plans if isinstance(p.get("estimate"), dict)],
            "took": [p.get("seconds_after_plan") for p in plans if isinstance(p.get("estimate"), dict)],
            "pairs": [p.get("pairs") for p in plans]}


def _estimate_text(est: dict, took=None) -> str:
    least, point = est.get("seconds_left_at_least"), _num(est.get("seconds_left"))
    if point is not None:  # the expected time left, and its range (engine/estimate.py)
        left = f"<b>about {_minutes(point)}</b>" + (
            f" (between {_minutes(least)} if every verdict to come stopped at its first look and "
            f"{_minutes(est.get('seconds_left_at_most'))} if each took every look)" if least is not None else "")
    elif least is not None:
        left = (f"<b>{_minutes(least)} to {_minutes(est.get('seconds_left_at_most'))}</b> (every verdict stopping at "
                "its next look, or every look taken)")
    else:
        left = f"<b>at most {_minutes(est.get('seconds_left_at_most'))}</b>, if every planned pass were taken"
    after, took = _num(est.get("after_seconds")), _num(took)
    truth = (f"; it took {_minutes(took - after)}" if took is not None and after is not None and took >= after
             else "")
    return (f"after {_count(est.get('after_passes'))} image-passes in {_minutes(est.get('after_seconds'))} "
            f"({fmt(_num(est.get('seconds_per_1000_passes')), '.1f')} s per 1,000 passes) the time left on this "
            f"device was {left}{truth}")


def _by_pair(evidence: dict) -> list[tuple[str, str, int]]:
    """(criterion, method, image-passes) summed over models, most expensive first (ties in result order)."""
    total: dict[tuple[str, str], int] = {}
    for r in _results(evidence):
        p = _passes_of(r)
        if p is None:
            continue
        key = (str(r.get("criterion")), subject_of(r))
        total[key] = total.get(key, 0) + p
    order = list(total)
    return sorted(((c, m, p) for (c, m), p in total.items()), key=lambda t: (-t[2], order.index(t[:2])))


# -- the cost section ------------------------------------------------------------------------------------------
def cost_section(evidence: dict) -> str:
    """The cost panel (``<section id="cost">``), or "" when the evidence records no passes at all."""
    used = spent(evidence)
    plan = planned((evidence.get("run") or {}).get("plan"))
    if used is None and plan is None:
        return ""
    unit = ("Cost is counted in <i>image-passes</i>: model forward passes in images (a pass over 8 images counts "
            "8); maps found in the cache cost none.")
    if plan is None:
        head = f"<p>The run spent <b>{_count(used)}</b> image-passes (no plan was recorded). {unit}</p>"
    else:
        bound = "" if plan["exact"] else "at most "
        if plan["least"] is not None:
            head = (f"<p>The run spent <b>{_count(used)}</b> image-passes; the plan put them between "
                    f"{_count(plan['least'])} (every verdict decided at its first look) and {bound}"
                    f"{_count(plan['most'])} (every look taken)")
        else:
            head = f"<p>The run spent <b>{_count(used)}</b> of {bound}{_count(plan['most'])} planned image-passes"
        if used is not None and plan["most"] and used != plan["most"]:
            pct = _pct(used, plan["most"])
            head += f"; that is {pct} of the most" if plan["least"] is not None else f" ({pct} of the most)"
        head += f". {unit}"
        if not plan["exact"]:
            head += (" The plan is an upper bound: ScoreCAM skips channels that are constant on an image, so "
                     "its passes depend on the data.")
        if plan["parts"]:
            head += f" The run was sharded: {plan['parts']} shard(s) each planned their own share."
        head += "</p>"
        ests = plan["estimates"]
        if len(ests) == 1:
            head += f"<p>Estimate: {_estimate_text(ests[0], plan['took'][0])}.</p>"
        elif ests:
            head += ("<p>Estimates, per shard: "
                     + "; ".join(f"shard {k + 1}: {_estimate_text(e, t)}" for k, (e, t) in enumerate(zip(ests, plan["took"]))) + ".</p>")
    pairs = _by_pair(evidence)
    body = ""
    if pairs:
        total = sum(p for _, _, p in pairs)
        rows = [[esc(c), esc(m), N(f"{p:,}"), N(_pct(p, total))] for c, m, p in pairs[:TOP]]
        rest = pairs[TOP:]
        if rest:
            r = sum(p for _, _, p in rest)
            rows.append([f"<i>{len(rest)} other pair(s)</i>", "", N(f"{r:,}"), N(_pct(r, total))])
        n = min(TOP, len(pairs))
        body = (f"<h3>The {n} most expensive (criterion, method) pair{'s' if n > 1 else ''}</h3>"
                + table(["criterion", "method", "image-passes", "share of the total"], rows)
                + "<p class='small muted'>A pair's passes are those spent while its verdict was computed, over "
                  "all its models; maps an earlier pair already computed are shared, so a pair audited later "
                  "can cost less than it would alone.</p>")
    return f'<section id="cost"><h2>Cost</h2>{head}{body}</section>'


# -- the sequential section ------------------------------------------------------------------------------------
def _sequential(r: dict) -> dict | None:
    s = _details(r).get("sequential")
    return s if isinstance(s, dict) else None


def rule_words(rule, alpha, batch, rule_text=None) -> str:
    """The stopping rule in words a reviewer understands (trusted HTML; evidence values escaped)."""
    a, b = fmt(alpha, "g"), fmt(batch)
    start = f"Images were audited {b} at a time. After each batch every undecided verdict was tested with "
    if rule == "obf":
        text = (start + "a group-sequential test (Lan–DeMets O'Brien–Fleming alpha spending, as in clinical "
                "trials): early looks need an overwhelming effect, the last look about the fixed-sample one, and "
                f"the chance of a wrong pass stays at alpha = {a} however early a verdict stops.")
    elif rule == "betting":
        text = (start + "an anytime-valid confidence sequence (Waudby-Smith &amp; Ramdas 2023, by betting): its "
                "bounds hold at every look at once and need no normal approximation, so the chance of a wrong "
                f"pass stays at alpha = {a} however early a verdict stops; they are wider than fixed-sample "
                "bounds.")
    else:
        text = (start + f"the rule <code>{esc(rule)}</code>"
                + (f" ({esc(rule_text)})" if rule_text else "") + f" at alpha = {a}.")
    return (text + " A verdict stops as a <b>pass</b> once every lower bound clears its threshold and as a "
            "<b>fail</b> once some upper bound falls short of its threshold; one still undecided after all its "
            "images is decided there (pass only if every lower bound clears).")


def _bound(x) -> str:
    v = _num(x)
    return "—" if v is None else f"{v:+.2f}"


def _looks_cell(looks) -> str:
    """One line per look: ``n: [lower, upper] vs threshold`` for each check (named when there are several)."""
    if not isinstance(looks, list) or not looks:
        return "—"
    lines = []
    for look in looks:
        if not isinstance(look, dict):
            continue
        checks = [c for c in look.get("checks") or [] if isinstance(c, dict)]
        if not checks:  # an older record: the first check's bounds only
            checks = [{"lower": look.get("lower"), "upper": look.get("upper"), "threshold": None}]
        parts = []
        for c in checks:
            name = f'<span class="ck">{esc(c.get("name"))}</span> ' if len(checks) > 1 else ""
            thr = _num(c.get("threshold"))
            vs = f" vs {thr:+g}" if thr is not None else ""
            parts.append(f"{name}[{_bound(c.get('lower'))}, {_bound(c.get('upper'))}]{vs}")
        lines.append(f"{fmt(look.get('n'))}: " + "<br>&emsp;".join(parts))
    return '<div class="looks">' + "<br>".join(lines) + "</div>"


def _checks_named(looks) -> str:
    """The check a single-check record tests (its name), for the table's check column."""
    names = []
    for look in looks if isinstance(looks, list) else []:
        for c in (look.get("checks") or []) if isinstance(look, dict) else []:
            if isinstance(c, dict) and c.get("name") is not None and str(c["name"]) not in names:
                names.append(str(c["name"]))
    return "<br>".join(esc(n) for n in names) or "—"


STOPPED = {"pass": "pass", "fail": "fail", "futility": "futility (fail)", "n_images": "all images"}


def sequential_section(evidence: dict) -> str:
    """The sequential panel (``<section id="sequential">``), or "" when no result has ``details.sequential``."""
    rs = [(r, s) for r in _results(evidence) if (s := _sequential(r)) is not None]
    if not rs:
        return ""
    rules = []
    for _, s in rs:
        key = (s.get("rule"), s.get("alpha"), s.get("batch"))
        if key not in [k for k, _ in rules]:
            rules.append((key, s.get("rule_text")))
    words = "".join(f'<p class="rule">{rule_words(*k, t)}</p>' for k, t in rules)
    several = len({str(r.get("model")) for r, _ in rs}) > 1
    rows, used_all, max_all = [], 0, 0
    for r, s in rs:
        used, most = _int(s.get("n_used")), _int(s.get("n_max"))
        if used is not None and most is not None:
            used_all, max_all = used_all + used, max_all + most
        v = verdict_of(r)
        stop = s.get("stopped")
        row = [esc(r.get("criterion")), esc(subject_of(r))]
        if several:
            row.append(esc(r.get("model") or "—"))
        row += [f'<span class="verdict v-{v}">{v.upper()}</span>', N(f"{_count(used)} / {_count(most)}", ""),
                esc(STOPPED.get(str(stop), stop) if stop is not None else "—"),
                f'<span class="small">{_checks_named(s.get("looks"))}</span>', _looks_cell(s.get("looks"))]
        rows.append(row)
    head = ["criterion", "method", *(["model"] if several else []), "verdict", "images used / planned",
            "stopped", "check(s)", "bounds at each look (images: [lower, upper] vs threshold)"]
    saved = max_all - used_all
    summary = (f"<p>Sequential stopping used <b>{used_all:,}</b> of {max_all:,} planned images (summed over "
               f"its {len(rs)} verdict(s)): <b>{saved:,} images saved</b> ({_pct(saved, max_all)})" if max_all else "")
    plan = planned((evidence.get("run") or {}).get("plan"))
    used_passes = spent(evidence)
    if summary and plan and used_passes is not None:
        summary += (f"; in model passes, {used_passes:,} image-passes where taking every look would have cost "
                    f"{'' if plan['exact'] else 'at most '}{plan['most']:,} (see <a href=\"#cost\">Cost</a>)")
    summary += ".</p>" if summary else ""
    return ('<section id="sequential"><h2>Sequential verdicts</h2>' + words + summary
            + table(head, rows, "wide")
            + "<p class='small muted'>Stopped: <i>pass</i> — every lower bound cleared its threshold; <i>fail</i> "
              "— an upper bound fell short of its threshold; <i>futility</i> — from half the images on, the chance "
              "of a pass at the last look, if the effect stayed as estimated, fell below the futility level (a "
              "fail: it never turns a fail into a pass); <i>all images</i> — none of these happened before the "
              "last look. The bounds are the sequential rule's one-sided bounds at each look, not the fixed-sample "
              "ones; the verdict's bound in the tables above is the last look's.</p></section>")
