"""The report's cost and sequential-verdict sections, on small hand-built evidence (no model, no audit run)."""
from __future__ import annotations

import copy
import html
import re

import pytest

from saliency_audit.report import cost
from saliency_audit.report.html import render

XSS = '<script>alert(1)</script>'


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">.*?</section>', page, re.S)
    assert m, sid
    return m.group(0)


def text(part: str) -> str:
    """Visible text of an HTML fragment, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part)))


def look(n: int, checks: list[tuple]) -> dict:
    cs = [{"name": name, "threshold": thr, "lower": lo, "upper": up, "mean": (lo + up) / 2, "critical_t": 3.4}
          for name, thr, lo, up in checks]
    return {"n": n, "lower": cs[0]["lower"], "upper": cs[0]["upper"], "checks": cs}


def seq(stopped: str, n_used: int, n_max: int, looks: list[dict], rule: str = "obf") -> dict:
    return {"rule": rule, "rule_text": "a rule", "alpha": 0.05, "batch": 8, "n_max": n_max, "n_used": n_used,
            "stopped": stopped, "looks": looks}


def res(criterion: str, method: str, verdict: str, passes: int | None, sequential: dict | None = None) -> dict:
    details = {} if passes is None else {"image_passes": passes}
    if sequential is not None:
        details["sequential"] = sequential
    return {"criterion": criterion, "method": method, "verdict": verdict, "model": "primary",
            "statistic": "mean(AP - AP_prior)", "value": 0.1, "ci": [0.05, 0.2], "bound": 0.05, "threshold": 0.0,
            "baseline": None, "baselines": [], "n": 8, "per_image": [], "explanation": f"{criterion}[{method}]",
            "details": details}


def evidence(results: list[dict], run_extra: dict | None = None) -> dict:
    methods = []
    for r in results:
        if r["method"] not in methods:
            methods.append(r["method"])
    run = {"started": "2026-01-01T10:00:00+00:00", "finished": "2026-01-01T10:05:00+00:00", "seed": 1,
           "argv": ["audits/"], "cwd": "/x", "versions": {"saliency_audit": "0.0"}, **(run_extra or {})}
    return {"schema": "saliency-audit/evidence@1", "run": run, "config": {"methods_audited": methods},
            "models": [{"spec": "demo", "arch": "democnn", "role": "primary"}],
            "dataset": {"name": "demo", "n_images": 16}, "samples": {}, "results": results}


def plain_plan(most: int, exact: bool = True, **extra) -> dict:
    return {"pairs": 3, "methods": ["grad", "gradcam"], "criteria": ["utility"], "exact": exact,
            "image_passes": most, "per_pair": {}, "models": {}, "images": {"localisation": 16}, **extra}


# -- the cost section ------------------------------------------------------------------------------------------
def test_cost_spent_vs_an_exact_plan_with_the_estimate():
    rs = [res("utility", "grad", "pass", 500), res("utility", "gradcam", "fail", 200),
          res("completeness", "grad", "pass", 31)]
    est = {"after_passes": 56, "after_seconds": 3.3, "seconds_per_1000_passes": 58.193, "seconds_left_at_most": 173.4}
    ev = evidence(rs, {"image_passes": 731, "plan": plain_plan(731, estimate=est)})
    page = render(ev)
    t = text(section(page, "cost"))
    assert "The run spent 731 of 731 planned image-passes" in t
    assert "at most" not in t.split("Estimate")[0]
    assert "56 image-passes in 3 s" in t and "58.2 s per 1,000 passes" in t and "at most 2.9 min" in t
    # the table: most expensive first, with its share of the total
    assert re.search(r"utility grad 500 68\.4% utility gradcam 200 27\.4% completeness grad 31 4\.2%", t), t
    assert '<a href="#cost">Cost</a>' in page
    assert "could not be drawn" not in section(page, "cost")


def test_cost_upper_bound_plan_says_at_most():
    ev = evidence([res("utility", "scorecam", "pass", 90)], {"image_passes": 90, "plan": plain_plan(120, exact=False)})
    t = text(section(render(ev), "cost"))
    assert "The run spent 90 of at most 120 planned image-passes (75.0% of the most)" in t
    assert "upper bound" in t


def test_cost_sequential_plan_gives_both_ends():
    ev = evidence([res("utility", "grad", "pass", 1748)],
                  {"image_passes": 1748, "plan": plain_plan(3036, image_passes_least=1668,
                                                            sequential={"rule": "obf", "batch": 8})})
    t = text(section(render(ev), "cost"))
    assert "spent 1,748 image-passes; the plan put them between 1,668" in t
    assert "and 3,036 (every look taken); that is 57.6% of the most" in t


def test_cost_without_a_plan_gives_the_spent_figure_only():
    ev = evidence([res("utility", "grad", "pass", 40), res("utility", "gradcam", "pass", 2)], {"image_passes": 42})
    t = text(section(render(ev), "cost"))
    assert "The run spent 42 image-passes (no plan was recorded)" in t
    assert "planned" not in t and "Estimate" not in t


def test_cost_top_ten_and_the_rest():
    rs = [res("utility", f"m{k:02d}", "pass", 100 - k) for k in range(12)]
    total = sum(100 - k for k in range(12))
    t = text(section(render(evidence(rs, {"image_passes": total})), "cost"))
    assert "The 10 most expensive" in t
    assert "m09 91" in t and "m10" not in t and "m11" not in t
    assert f"2 other pair(s) {90 + 89} {100 * 179 / total:.1f}%" in t


def test_cost_of_a_merged_sharded_run_sums_results_and_parts():
    rs = [res("utility", "grad", "pass", 300), res("utility", "gradcam", "pass", 200)]
    parts = [plain_plan(320, image_passes_least=100), plain_plan(250, image_passes_least=90)]
    # a merged run keeps one shard's run.image_passes: the report adds up the results instead
    ev = evidence(rs, {"image_passes": 300, "plan": {"parts": parts, "image_passes": 570}})
    t = text(section(render(ev), "cost"))
    assert "spent 500 image-passes; the plan put them between 190" in t and "and 570 (every look taken)" in t
    assert "2 shard(s)" in t


def test_no_passes_no_plan_no_sections():
    page = render(evidence([res("utility", "grad", "pass", None)]))
    assert '<section id="cost">' not in page and '<section id="sequential">' not in page
    assert 'href="#cost"' not in page and 'href="#sequential"' not in page
    assert "could not be drawn" not in page
    assert cost.cost_section({}) == "" and cost.sequential_section({}) == ""


def test_malformed_plan_and_looks_render_without_error():
    bad = seq("pass", None, "x", [None, {"n": 8}, {"n": 16, "checks": [{"name": None, "lower": float("-inf")}]}])
    ev = evidence([res("utility", "grad", "pass", "many", bad)], {"image_passes": None, "plan": {"parts": "x"}})
    page = render(ev)
    assert "could not be drawn" not in page
    assert '<section id="sequential">' in page


# -- the sequential section ------------------------------------------------------------------------------------
def sequential_evidence() -> dict:
    thr = "SSIM drop d, head stage"
    rs = [
        res("utility", "grad", "pass", 8, seq("pass", 8, 16, [look(8, [("mean(AP - AP_prior)", 0.0, 0.30, 0.52)])])),
        res("utility", "gradcam", "fail", 16, seq("n_images", 16, 16, [look(8, [("mean(AP - AP_prior)", 0.0, -0.10, 0.13)]),
                                                                       look(16, [("mean(AP - AP_prior)", 0.0, -0.04, 0.05)])])),
        res("randomization", "grad", "fail", 48, seq("fail", 8, 24, [look(8, [(thr, 0.5, 0.05, 0.22),
                                                                              ("SSIM drop d, all layers", 0.8, 1.41, 1.44)])])),
    ]
    plan = plain_plan(300, image_passes_least=60, sequential={"rule": "obf", "batch": 8})
    return evidence(rs, {"image_passes": 72, "plan": plan})


def test_sequential_section_rule_table_and_savings():
    page = render(sequential_evidence())
    s = section(page, "sequential")
    t = text(s)
    assert "Images were audited 8 at a time" in t and "O'Brien–Fleming" in t and "alpha = 0.05" in t
    assert "8: [+0.30, +0.52] vs +0" in t
    assert "8: [-0.10, +0.13] vs +0 16: [-0.04, +0.05] vs +0" in t
    assert "SSIM drop d, head stage [+0.05, +0.22] vs +0.5" in t and "[+1.41, +1.44] vs +0.8" in t
    assert re.search(r"utility grad PASS 8 / 16 pass", t), t
    assert re.search(r"utility gradcam FAIL 16 / 16 all images", t), t
    assert re.search(r"randomization grad FAIL 8 / 24 fail", t), t
    assert "used 32 of 56 planned images (summed over its 3 verdict(s)): 24 images saved (42.9%)" in t
    assert "72 image-passes where taking every look would have cost 300" in t
    assert '<a href="#sequential">Sequential verdicts</a>' in page
    # the sections come after the criteria and before the provenance
    assert page.index('<section id="utility">') < page.index('<section id="sequential">') \
        < page.index('<section id="cost">') < page.index('<section id="provenance">')


def test_betting_rule_in_words():
    ev = sequential_evidence()
    for r in ev["results"]:
        r["details"]["sequential"]["rule"] = "betting"
    t = text(section(render(ev), "sequential"))
    assert "confidence sequence" in t and "Waudby-Smith & Ramdas" in t and "O'Brien" not in t


def test_unknown_rule_is_shown_escaped():
    ev = sequential_evidence()
    for r in ev["results"]:
        r["details"]["sequential"].update(rule=XSS, rule_text=XSS)
    s = section(render(ev), "sequential")
    assert "<script>" not in s and "&lt;script&gt;" in s


@pytest.mark.parametrize("where", ["method", "check", "criterion", "stopped"])
def test_hostile_strings_are_escaped(where):
    ev = copy.deepcopy(sequential_evidence())
    r = ev["results"][2]
    if where == "method":
        r["method"] = XSS
        ev["config"]["methods_audited"][2:] = [XSS]
    elif where == "criterion":
        r["criterion"] = XSS
    elif where == "check":
        r["details"]["sequential"]["looks"][0]["checks"][0]["name"] = XSS
    else:
        r["details"]["sequential"]["stopped"] = XSS
    page = render(ev)
    for sid in ("sequential", "cost"):
        s = section(page, sid)
        assert "<script>" not in s
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page, "sequential")
    assert "<script" not in page.lower()


def test_estimate_strings_are_not_trusted():
    plan = plain_plan(10, estimate={"after_passes": XSS, "after_seconds": XSS, "seconds_per_1000_passes": XSS,
                                    "seconds_left_at_most": XSS})
    page = render(evidence([res("utility", "grad", "pass", 10)], {"image_passes": 10, "plan": plan}))
    assert "<script" not in page.lower()
    assert "could not be drawn" not in section(page, "cost")


def test_the_live_estimate_waits_for_the_first_criterion_and_expects_the_range_the_decided_pairs_took(monkeypatch):
    """The terminal's estimate is not taken from the first cheap verdict (56 passes in 1 s once put the demo at
    41 minutes): it waits until the first criterion has every method decided.  With sequential verdicts the
    pairs to come are expected to take the share of their looks' range the decided ones took."""
    import types

    from saliency_audit import plugin
    from saliency_audit.common import progress

    plan = {"image_passes": 100_000, "image_passes_least": 30_000,
            "per_pair": {"energy[grad]": 1_000, "energy[ig]": 1_000, "utility[grad]": 98_000},
            "per_pair_least": {"energy[grad]": 500, "energy[ig]": 500, "utility[grad]": 29_000}}
    session = plugin.AuditSession.__new__(plugin.AuditSession)
    session._audit = types.SimpleNamespace(plan=plan)
    session._plan_start, session.pair_passes, session.pair_shares = (0.0, 0), {}, {}
    now = {"passes": 56, "t": 1.0}
    monkeypatch.setattr(plugin, "_passes_now", lambda: now["passes"])
    monkeypatch.setattr(plugin.time, "perf_counter", lambda: now["t"])
    notes: list[str] = []
    monkeypatch.setattr(progress, "note", notes.append)
    session.pair_passes["energy[grad]"] = 1_000
    session._estimate()
    assert "estimate" not in plan and not notes  # energy[ig] is still to come
    now.update(passes=1_500, t=3.0)  # 2 ms per pass
    session.pair_passes["energy[ig]"] = 500  # energy took half its range: 1,500 of 1,000..2,000
    session._estimate()
    est = plan["estimate"]
    assert est["range_taken"] == 0.5 and est["seconds_left_at_least"] == 58.0 and est["seconds_left_at_most"] == 196.0
    assert est["seconds_left"] == 127.0  # 29,000 + 0.5 x 69,000 passes
    assert "about 2.1 min left" in notes[0] and "between 1.0 and 3.3" in notes[0]
    plan.update(plain_plan(100_000, image_passes_least=30_000, estimate=est), seconds_after_plan=150.0)
    t = text(section(render(evidence([res("utility", "grad", "pass", 1_500)], {"image_passes": 1_500, "plan": plan})),
                     "cost"))
    assert "1,500 image-passes in 3 s" in t and "about 2.1 min" in t and "between 58 s" in t and "it took 2.5 min" in t


def test_the_live_estimate_comes_after_a_minute_when_the_first_criterion_is_long(monkeypatch):
    from saliency_audit.engine.estimate import ready

    plan = {"image_passes": 100_000, "per_pair": {"energy[grad]": 50_000, "utility[grad]": 50_000}}
    assert not ready(plan, {}, 1_000, 59.0) and not ready(plan, {}, 1_000, 3_600.0)  # 1 %: too few passes
    assert ready(plan, {}, 2_000, 60.0) and ready(plan, {"energy[grad]": 50_000}, 50_000, 1.0)
    skipped_first = {"image_passes": 100_000, "per_pair": {"repeatability[grad]": 0, **plan["per_pair"]}}
    assert not ready(skipped_first, {"repeatability[grad]": 0}, 32, 1.0)  # a skipped criterion tells nothing
    assert ready(skipped_first, {"repeatability[grad]": 0, "energy[grad]": 50_000}, 50_032, 9.0)

def test_the_estimate_clocks_the_work_to_come_in_timed_units_scaled_by_the_decided_pairs():
    """Passes are a poor clock (a ROAD pass is not a map pass, a cascade is mostly copies): the work to come is
    counted by kind, timed per unit on the device, and scaled by how long the decided pairs took against the
    same clock."""
    from saliency_audit.engine.estimate import estimate

    plan = {"image_passes": 1_100, "per_pair": {"energy[grad]": 100, "completeness[grad]": 1_000},
            "per_pair_work": {"energy[grad]": {"grad": 100}, "completeness[grad]": {"road": 1_000, "copy": 10}},
            "unit_seconds": {"grad": 0.05, "road": 0.01, "copy": 0.5}}
    est = estimate(plan, {"energy[grad]": 100}, 100, 10.0)  # the clock said 5 s for energy: it took 10
    assert est["calibration"] == 2.0 and est["seconds_left"] == 2.0 * (1_000 * 0.01 + 10 * 0.5)
    assert estimate({k: v for k, v in plan.items() if k != "unit_seconds"}, {"energy[grad]": 100}, 100,
                    10.0)["seconds_left"] == 100.0  # no timed units (a plan made elsewhere): passes at the run's rate


def test_a_verdicts_share_of_its_looks_is_read_in_images():
    """A verdict whose maps other pairs computed spends no pass; its looks still say how far it went."""
    from saliency_audit.engine.estimate import estimate, look_share

    seq = {"n_max": 48, "n_used": 24, "looks": [{"n": 8}, {"n": 16}, {"n": 24}]}
    assert look_share({"sequential": seq}) == 0.4 and look_share({}) is None
    assert look_share({"sequential": dict(seq, n_used=8)}) == 0.0
    plan = {"image_passes": 100, "per_pair": {"energy[xrai]": 0, "focus[xrai]": 100},
            "per_pair_least": {"energy[xrai]": 0, "focus[xrai]": 20},
            "per_pair_work": {"energy[xrai]": {"segment": 48}, "focus[xrai]": {"grad": 100}},
            "per_pair_work_least": {"energy[xrai]": {"segment": 8}, "focus[xrai]": {"grad": 20}},
            "unit_seconds": {"segment": 0.5, "grad": 0.1}}
    est = estimate(plan, {"energy[xrai]": 0}, 1, 12.0, {"energy[xrai]": 0.4})
    assert est["range_taken"] == 0.4 and est["calibration"] == 1.0  # 24 segments of 0.5 s: 12 s, as it took
    assert est["seconds_left"] == round(0.1 * (20 + 0.4 * 80), 1)
