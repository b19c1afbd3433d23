"""The report's faithfulness (ROAD completeness), interpretability (energy/focus/pointing) and diagnosis parts,
on synthetic evidence (no model)."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from saliency_audit.criteria.diagnosis import LABELS, diagnose
from saliency_audit.report.html import render
from saliency_audit.report.table import verdict_table
from tests.test_report import XSS_ID, XSS_SPEC, Cells, make_evidence

METHODS = ("grad", "ig", "gradcam", "xrai")
BASE = ("utility", "randomization")
NEW = ("completeness", "energy", "focus", "pointing")
FRACTIONS = [0.2, 0.4, 0.6, 0.8]
STEPS = [k / 10 for k in range(11)]
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def completeness_result(method: str, verdict: str, ids: list[str], rng, value: float) -> dict:
    if verdict in ("error", "skipped"):
        return {"criterion": "completeness", "method": method, "verdict": verdict, "statistic": "", "value": None,
                "ci": [None, None], "bound": None, "threshold": None, "baseline": None, "baselines": [], "n": 0,
                "per_image": [], "curve": [], "model": "primary", "explanation": f"{verdict}: completeness/{method}",
                "details": {"traceback": "Traceback: ValueError: no <passes>"} if verdict == "error" else {}}
    per_image, lesion = [], []
    for i in ids:  # curves whose ROAD is about `value` above the random order's
        lerf = np.sort(rng.uniform(0.6, 0.95, len(FRACTIONS)))[::-1]
        morf = lerf - 2 * (value + 0.004 + rng.normal(0, 0.03)) * np.array(FRACTIONS) / np.mean(FRACTIONS)
        score = float(np.mean((lerf - morf) / 2))
        per_image.append({"id": i, "score": score, "random": float(rng.normal(0, 0.02)),
                          "randomized": float(rng.normal(0.02, 0.03)), "blurred": score + float(rng.normal(0.02, 0.02)),
                          "base_probability": 0.97, "morf": [float(v) for v in morf], "lerf": [float(v) for v in lerf],
                          "deletion_auc": float(rng.uniform(0.1, 0.3)), "insertion_auc": float(rng.uniform(0.5, 0.8)),
                          "constant": False})
        lesion.append({"id": i, "lesion_road": float(rng.uniform(0.05, 0.2)), "random_road": per_image[-1]["random"]})
    per_image[-1]["score"] = None  # NaN in the evidence
    mean_road = float(np.nanmean([p["score"] if p["score"] is not None else np.nan for p in per_image]))
    reliance = {"value": 0.11, "ci": [0.07, 0.15], "bound": 0.07, "n": len(ids), "uses_lesion": True,
                "lesion_road": 0.12, "random_road": 0.004, "per_image": lesion}
    base = {"name": "random pixel order", "value": 0.004}
    speed = 2 + 30 * max(value, 0.0)
    deletion = [float(v) for v in np.exp(-speed * np.array(STEPS)) * 0.97]
    insertion = [float(v) for v in 0.2 + 0.77 * np.array(STEPS) ** (1 / speed ** 0.5)]
    auc = {k: float(np.trapezoid(c, STEPS)) for k, c in (("deletion", deletion), ("insertion", insertion))}
    return {
        "criterion": "completeness", "method": method, "verdict": verdict, "model": "primary",
        "statistic": "mean(ROAD - ROAD of a random order)", "value": value, "ci": [value - 0.03, value + 0.03],
        "bound": value - 0.03, "threshold": 0.0, "baseline": base, "n": len(ids),
        "baselines": [base, {"name": "randomized model's maps", "value": 0.02},
                      {"name": "blurred-map control", "value": mean_road + 0.02, "sigma_px": 4.0},
                      {"name": "lesion as map", "value": 0.12}],
        "per_image": per_image,
        "curve": [{"fraction": f, "morf": float(np.mean([p["morf"][k] for p in per_image])),
                   "lerf": float(np.mean([p["lerf"][k] for p in per_image]))} for k, f in enumerate(FRACTIONS)],
        "explanation": f"completeness[{method}] synthetic mean ROAD {mean_road:+.3f}",
        "details": {"alpha": 0.05, "mean_road": mean_road, "mean_road_ci": [mean_road - 0.02, mean_road + 0.02],
                    "fractions": FRACTIONS, "fill": "linear", "noise": 0.01, "base_probability": 0.97,
                    "deletion_auc": auc["deletion"], "insertion_auc": auc["insertion"], "random_deletion_auc": 0.35,
                    "random_insertion_auc": 0.5,
                    "curves": {"fractions": STEPS, "deletion": deletion, "insertion": insertion,
                               "deletion_fill": "zero", "insertion_start": "blur"},
                    "lesion_reliance": reliance, "blur_sigma_px": 4.0,
                    "map_notes": {"cam_layer": {"name": "features.6", "resolution": [16, 16]}}
                    if "cam" in method else {}, "constant_maps": 0},
    }


def score_result(criterion: str, method: str, verdict: str, ids: list[str], rng, value: float) -> dict:
    if verdict in ("error", "skipped"):
        return {"criterion": criterion, "method": method, "verdict": verdict, "statistic": "", "value": None,
                "ci": [None, None], "bound": None, "threshold": None, "baseline": None, "n": 0, "per_image": [],
                "model": "primary", "explanation": f"{verdict}: {criterion}/{method}", "details": {}}
    prior = [float(rng.uniform(0.05, 0.3)) for _ in ids]
    per_image = [{"id": i, "score": float(np.clip(q + value + rng.normal(0, 0.1), 0, 1)), "prior": q,
                  "constant": False} for i, q in zip(ids, prior)]
    mean = float(np.mean([p["score"] for p in per_image]))
    details = {"mean_score": mean, "mean_score_ci": [mean - 0.05, mean + 0.05], "alpha": 0.05, "constant_maps": 1}
    if criterion == "pointing":
        details["tolerance_px"] = 0
    return {"criterion": criterion, "method": method, "verdict": verdict, "model": "primary",
            "statistic": f"mean({criterion} - prior's)", "value": value, "ci": [value - 0.06, value + 0.06],
            "bound": value - 0.06, "threshold": 0.0,
            "baseline": {"name": "average-mask prior", "value": float(np.mean(prior)), "n_masks": 37,
                         "kind": "leave-one-out"},
            "n": len(ids), "per_image": per_image, "explanation": f"{criterion}[{method}] synthetic",
            "details": details}


def make_faithfulness_evidence(methods=METHODS, n_images=8, seed=0, errors=True) -> dict:
    """Utility + randomization from tests.test_report, plus the four new criteria and the diagnosis."""
    ev = make_evidence(methods=methods, criteria=BASE, n_images=n_images, seed=seed, audited=True)
    rng = np.random.default_rng(seed + 1)
    ids = list(ev["samples"])
    for r in ev["results"]:
        if r["criterion"] == "utility":
            r["baseline"]["kind"] = r["baselines"][0]["kind"] = "leave-one-out"
            r["baseline"]["n_masks"] = r["baselines"][0]["n_masks"] = 37
    for k, m in enumerate(methods):
        verdict = ("pass", "fail", "pass", "error")[k % 4] if errors else ("pass", "fail")[k % 2]
        ev["results"].append(completeness_result(m, verdict, ids, rng, (0.052, -0.01, 0.03, 0.0)[k % 4]))
        for j, c in enumerate(NEW[1:]):
            v = ("pass", "fail", "skipped")[(k + j) % 3] if errors else ("pass", "fail")[(k + j) % 2]
            ev["results"].append(score_result(c, m, v, ids, rng, 0.1 if v == "pass" else -0.02))
    ev["config"].update(completeness={"alpha": 0.05, "fractions": FRACTIONS, "fill": "linear", "noise": 0.01,
                                      "blur_control_sigma": 4.0, "lesion_sigma": 1.0, "curve_steps": 10},
                        interpretability={"alpha": 0.05, "pointing_tolerance": 0})
    ev["diagnosis"] = diagnose(ev["results"])
    return ev


def all_diagnoses(methods: list[str]) -> dict:
    """A diagnosis panel with every diagnosis class, one per method."""
    keys = list(LABELS)
    return {"lesion_reliance": {"value": -0.01, "ci": [-0.03, 0.01], "bound": -0.03, "n": 8, "uses_lesion": False,
                                "lesion_road": 0.0, "random_road": 0.01},
            "methods": {m: {"diagnosis": keys[k % len(keys)], "label": LABELS[keys[k % len(keys)]],
                            "completeness": "fail" if keys[k % len(keys)] == "not-faithful" else "pass",
                            "completeness_bound": 0.01 * k, "utility": None if keys[k % len(keys)] == "faithful"
                            else "pass", "utility_bound": 0.02, "cam_resolution": [16, 16] if k % 2 else None}
                        for k, m in enumerate(methods)}}


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">.*?</section>', page, re.S)
    assert m, sid
    return m.group(0)


@pytest.fixture(scope="module")
def evidence():
    return make_faithfulness_evidence()


@pytest.fixture(scope="module")
def page(evidence):
    return render(evidence)


def test_every_new_section_and_figure_is_present(page):
    for sid in ("verdicts", "diagnosis", "utility", "randomization") + NEW:
        assert f'<section id="{sid}">' in page, sid
        assert f'href="#{sid}"' in page, sid
    # the diagnosis comes right after the matrix, and the new sections in contract order after the old ones
    order = [page.index(f'<section id="{s}">') for s in ("verdicts", "diagnosis", "utility", "randomization") + NEW]
    assert order == sorted(order)
    comp = section(page, "completeness")
    assert [a for a in re.findall(r'alt="([^"]+)"', comp)] == ["ROAD curves", "deletion and insertion curves",
                                                              "ROAD box plots"]
    for needle in ("Song et al. 2023", "<b>Look for</b>", "Baselines and curves", "Per-image ROAD",
                   "(p<sub>LeRF</sub> − p<sub>MoRF</sub>)/2", "{0.2, 0.4, 0.6, 0.8}", "noisy linear imputation",
                   "mean ROAD [CI]", "lesion as map", "deletion AUC (random)"):
        assert needle in comp, needle
    for c in NEW[1:]:
        body = section(page, c)
        assert re.findall(r'alt="([^"]+)"', body) == [f"{c} box plots"], c
        assert "mean score [CI]" in body and "<b>Look for</b>" in body and "leave-one-out" in body
        assert "37 masks" in body and "Per-image" in body
    assert "leave-one-out" in section(page, "utility").split("</p>")[0]  # the utility rule names the prior
    images = IMG.findall(page)
    # utility 2, randomization 2 (curves, strips), completeness 3, energy/focus/pointing 1 each
    assert len(images) == 2 + 2 + 3 + 3
    assert all(base64.b64decode(b).startswith(b"\x89PNG") for b in images)
    assert '<p class="note">' not in page


def test_matrix_headlines_and_legend(evidence, page):
    parser = Cells()
    parser.feed(page)
    titles = {"completeness": "Faithfulness (ROAD completeness)", "energy": "Proportional energy",
              "focus": "Average saliency focus", "pointing": "Pointing game"}
    seen = set()
    for r in evidence["results"]:
        if r["criterion"] not in titles or r["verdict"] not in ("pass", "fail"):
            continue
        cls, text = parser.cells[(titles[r["criterion"]], r["method"])]
        assert cls == f"v-{r['verdict']}"
        want = {"completeness": f"ΔROAD {r['value']:+.3f}", "pointing": f"Δhit {r['value']:+.2f}"}.get(
            r["criterion"], f"Δ {r['value']:+.2f}")
        assert want in text
        seen.add(r["criterion"])
    assert seen == set(NEW)
    assert "ΔROAD +0.052" in page and "Δhit" in page
    legend = section(page, "verdicts")
    assert "<b>ΔROAD</b>" in legend and "<b>Δhit</b> (pointing)" in legend and "<b>Δ</b> (energy)" in legend


def test_diagnosis_panel_from_diagnose(evidence, page):
    dx = section(page, "diagnosis")
    rel = evidence["diagnosis"]["lesion_reliance"]
    assert rel["uses_lesion"] and "the model's output depends on the lesion" in dx
    assert f"{rel['bound']:+.3f}" in dx
    for m, d in evidence["diagnosis"]["methods"].items():
        assert f'<span class="dx dx-{d["diagnosis"]}">{d["label"]}</span>' in dx.replace("&#x27;", "'"), m
    assert "16×16" in dx  # the CAM resolution of gradcam
    assert "xrai" not in evidence["diagnosis"]["methods"] and "<b>xrai</b>" not in dx  # completeness errored


def test_diagnosis_panel_shows_every_class_with_its_label_and_advice():
    ev = make_faithfulness_evidence(methods=("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp"))
    ev["diagnosis"] = all_diagnoses(list(ev["config"]["methods_audited"]))
    dx = section(render(ev), "diagnosis")
    advice = {"faithful-coarse": "finer layer", "model-looks-elsewhere": "shortcuts",
              "not-faithful": "Do not use this method to explain this model", "faithful-localises": "Usable",
              "localises-unused": "not an explanation", "faithful": "run the utility criterion",
              "localises-fails-gate": "Not usable as it stands"}
    rows = re.findall(r"<tr>(.*?)</tr>", dx.split("<details>")[0], re.S)[1:]
    assert len(rows) == len(LABELS)
    for key, label in LABELS.items():
        row = next(r for r in rows if f'class="dx dx-{key}"' in r)
        assert esc_label(label) in row and advice[key] in row, key
    assert "does not measurably depend on the lesion: it may rely on something else (a shortcut)" in dx
    assert "not run" in dx  # the utility of the "faithful" method
    coarse = next(r for r in rows if 'class="dx dx-faithful-coarse"' in r)
    assert "Its CAM has only 16×16 cells" in coarse  # the advice names the CAM's resolution
    assert dx.count("16×16") == 4


def esc_label(label: str) -> str:
    return label.replace("'", "&#x27;")


def test_hostile_method_and_sample_id_are_escaped_in_new_sections():
    ev = make_faithfulness_evidence(methods=("grad", "gradcam"), n_images=4, errors=False)
    old, evil_method = "img-001", XSS_SPEC
    ev["samples"][XSS_ID] = ev["samples"].pop(old)
    for r in ev["results"]:
        r["method"] = evil_method if r["method"] == "grad" else r["method"]
        for p in r.get("per_image") or []:
            if p.get("id") == old:
                p["id"] = XSS_ID
        rel = (r.get("details") or {}).get("lesion_reliance") or {}
        for p in rel.get("per_image") or []:
            if p["id"] == old:
                p["id"] = XSS_ID
        for key in ("thumbnails", "reference_thumbnails"):
            th = (r.get("details") or {}).get(key)
            if th and old in th:
                th[XSS_ID] = th.pop(old)
        for c in r.get("curve") or []:
            if isinstance(c.get("thumbnails"), dict) and old in c["thumbnails"]:
                c["thumbnails"][XSS_ID] = c["thumbnails"].pop(old)
    ev["config"]["methods_audited"] = [evil_method, "gradcam"]
    ev["diagnosis"] = diagnose(ev["results"])
    ev["diagnosis"]["methods"][evil_method]["label"] = XSS_ID
    ev["diagnosis"]["methods"][evil_method]["diagnosis"] = '"><script>x</script>'
    ev["diagnosis"]["methods"][evil_method]["cam_resolution"] = XSS_SPEC
    ev["results"][-1]["baseline"]["kind"] = XSS_ID
    text = render(ev)
    assert "<script" not in text.lower() and "<img src=x" not in text and 'onerror="' not in text
    for sid in ("diagnosis",) + NEW:
        body = section(text, sid)
        assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body, sid
    for sid in NEW:
        assert "&lt;img src=x onerror=alert(1)&gt;" in section(text, sid), sid  # the per-image tables
    assert 'class="dx dx-unknown"' in section(text, "diagnosis")
    assert len(IMG.findall(text)) == 2 + 2 + 3 + 3


def test_rendering_is_deterministic():
    ev = make_faithfulness_evidence(methods=("grad", "gradcam"), n_images=5)
    first = render(ev)
    assert render(json.loads(json.dumps(ev))) == first


def test_without_diagnosis_or_with_only_errors_still_renders():
    ev = make_faithfulness_evidence(methods=("grad", "gradcam"), n_images=4)
    del ev["diagnosis"]
    text = render(ev)
    assert '<section id="diagnosis">' not in text and 'href="#diagnosis"' not in text
    assert '<section id="completeness">' in text and '<p class="note">' not in text

    ev["diagnosis"] = {"lesion_reliance": None, "methods": {}}
    assert '<section id="diagnosis">' not in render(ev)
    ev["diagnosis"] = diagnose(ev["results"])
    ev["diagnosis"]["lesion_reliance"] = None
    assert "Lesion reliance</b>: not available" in section(render(ev), "diagnosis")

    for r in ev["results"]:  # every new result an error: sections with their explanations, no figures
        if r["criterion"] in NEW:
            r.update(verdict="error", value=None, ci=[None, None], bound=None, per_image=[], curve=[],
                     explanation=f"{r['criterion']} broke for {r['method']}", details={"traceback": "Boom <x>"})
    ev["diagnosis"] = diagnose(ev["results"])
    text = render(ev)
    for sid in NEW:
        body = section(text, sid)
        assert not IMG.findall(body) and "broke for gradcam" in body
        assert "Boom" not in body and "(traceback in the evidence file)" in body  # tracebacks stay in the evidence
    assert '<section id="diagnosis">' not in text and '<p class="note">' not in text


def test_malformed_new_parts_become_notes():
    ev = make_faithfulness_evidence(methods=("grad", "gradcam"), n_images=4, errors=False)
    comp = next(r for r in ev["results"] if r["criterion"] == "completeness")
    comp["baselines"] = "oops"
    comp["per_image"] = [{"id": "a", "score": "x", "random": None}]
    comp["details"]["curves"] = {"fractions": [0, 1], "deletion": "no"}
    ev["diagnosis"]["methods"]["grad"] = "not a dict"
    ev["diagnosis"]["lesion_reliance"] = {"value": "?", "uses_lesion": "maybe"}
    text = render(ev)
    assert '<section id="completeness">' in text and '<section id="diagnosis">' in text
    assert "undetermined" in text


def test_terminal_table_shows_the_new_scores(evidence):
    lines = "\n".join(verdict_table([r for r in evidence["results"] if r["verdict"] in ("pass", "fail")]))
    comp = next(r for r in evidence["results"] if r["criterion"] == "completeness" and r["verdict"] == "pass")
    assert f"ROAD {comp['details']['mean_road']:+.3f}" in lines
    for c, prefix in (("energy", "energy "), ("focus", "focus "), ("pointing", "hit ")):
        r = next(r for r in evidence["results"] if r["criterion"] == c and r["verdict"] == "pass")
        assert f"{prefix}{r['details']['mean_score']:.3f}" in lines
    assert "AP 0.400" in lines


def test_figures_kept_by_content_are_told_apart_by_their_function(tmp_path):
    """The completeness section draws three figures from the same results (ROAD curves, deletion/insertion,
    box plots): kept in a figure cache, each is its own, and the page is the one drawn without a cache."""
    from saliency_audit.report.html import write_html

    ev = make_faithfulness_evidence(methods=("grad", "gradcam"), n_images=4, errors=False)
    want = render(ev)
    for _ in range(2):  # drawn and kept, then read back
        assert write_html(ev, tmp_path / "r.html", figure_cache=tmp_path / "cache").read_text() == want
    pngs = re.findall(r"base64,([A-Za-z0-9+/=]+)", want)
    assert len(set(pngs)) == len(pngs) == len(list((tmp_path / "cache" / "figures").rglob("*.b64")))
