"""The standalone HTML report and the ``saliency-audit report`` command, on synthetic evidence (no training)."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from saliency_audit.report.html import render, write_html

METHODS = ("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam")
CRITERIA = ("utility", "randomization", "label_randomization", "repeatability", "reproducibility")
XSS_ID = "<img src=x onerror=alert(1)>"
XSS_SPEC = '"><script>alert(1)</script>'
SHA = "ab" * 32
MANIFEST = "cd" * 32


def png(arr: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def verdict_for(c: int, m: int) -> str:
    """A fixed, varied verdict pattern over the matrix."""
    return ("pass", "fail", "pass", "error", "skipped", "fail", "pass")[(c * 3 + m) % 7]


def result(criterion: str, method: str, verdict: str, ids: list[str], thumbs, rng) -> dict:
    """One result dict of the evidence schema, with numbers; error/skipped ones carry only an explanation."""
    base = {"criterion": criterion, "method": method, "verdict": verdict, "statistic": "", "value": None,
            "ci": [None, None], "threshold": None, "baseline": None, "n": 0, "per_image": [], "curve": [],
            "explanation": "", "bound": None, "baselines": [], "details": {"seconds": 0.1}, "model": "primary"}
    if verdict in ("error", "skipped"):
        base["explanation"] = f"{verdict} because of {criterion}/{method}: no model to compare with"
        if verdict == "error":
            base["details"]["traceback"] = "Traceback (most recent call last):\n  RuntimeError: boom <b>"
        return base
    few = ids[:3]
    floor = {"ssim": 0.28, "spearman_abs": 0.1, "spearman_signed": 0.0, "hog": 0.2}
    value = float(rng.uniform(0.1, 0.9))
    base.update(value=value, ci=[value - 0.05, value + 0.05], bound=value - 0.05, n=len(ids),
                explanation=f"{criterion}[{method}] synthetic explanation value {value:.3f}")
    if criterion == "utility":
        base.update(statistic="mean(AP - AP_prior)", threshold=0.0,
                    baseline={"name": "average-mask prior", "value": 0.17, "n_masks": 200},
                    baselines=[{"name": "average-mask prior", "value": 0.17, "n_masks": 200},
                               {"name": "randomized model", "value": 0.05}],
                    per_image=[{"id": i, "score": float(rng.uniform()), "ap_prior": float(rng.uniform(0, 0.3)),
                                "pr_auc": 0.3, "ap_randomized": float(rng.uniform(0, 0.2)), "constant": False}
                               for i in ids])
        base["per_image"][-1]["score"] = None  # NaN in the evidence is null
        base["details"].update(mean_ap=0.4, mean_ap_ci=[0.35, 0.45], alpha=0.05,
                               map_notes={"cam_layer": {"name": "features.6", "resolution": [16, 16]}},
                               method_params={"steps": 10}, thumbnails={i: thumbs() for i in ids})
    elif criterion in ("randomization", "label_randomization"):
        stages = ["head", "+features.7", "+features.4", "all (features.0)"] if criterion == "randomization" \
            else ["random labels"]
        curve = []
        for k, s in enumerate(stages):
            ssim = float(0.9 - 0.2 * k)
            curve.append({"stage": s, "ssim": ssim, "ssim_ci": [ssim - 0.03, ssim + 0.03], "d": 0.3 + k * 0.2,
                          "d_lower": 0.25 + k * 0.2, "d_upper": 0.35 + k * 0.2, "constant_maps": 0,
                          "spearman_abs": 0.5, "spearman_signed": 0.4, "hog": 0.6,
                          "thumbnails": {i: thumbs() for i in few}})
        base.update(statistic="SSIM drop d", threshold=0.5, baseline={"name": "SSIM noise floor", "value": 0.28},
                    curve=curve, per_image=[{"id": i, "score": 0.5, "ssim": 0.6} for i in ids])
        base["details"].update(noise_floor=floor, head_d_lower=0.25, head_min=0.5, all_d_lower=0.85, all_min=0.8,
                               alpha=0.05, reference_thumbnails={i: thumbs() for i in few})
    else:
        specs = ["demo:replicate1", "demo:replicate2"] if criterion == "repeatability" else ["demo:other-arch"]
        curve = [{"model": s, "ssim": 0.6, "ssim_ci": [0.55, 0.65], "spearman_abs": 0.7,
                  "prediction_agreement": 0.95, "constant_maps": 0,
                  "per_image": [{"id": i, "ssim": float(rng.uniform())} for i in ids],
                  "thumbnails": {i: thumbs() for i in few}} for s in specs]
        base.update(statistic="mean SSIM to primary", threshold=0.5,
                    baseline={"name": "SSIM noise floor", "value": 0.28}, curve=curve,
                    per_image=[{"id": i, "score": float(rng.uniform())} for i in ids])
        base["details"].update(alpha=0.05, reference_thumbnails={i: thumbs() for i in few})
    return base


def make_evidence(methods=METHODS, criteria=CRITERIA, n_images=8, noisy=False, seed=0, audited=False) -> dict:
    """``audited``: every result pass or fail (all numbers and thumbnails present), else a mix with error/skipped."""
    rng = np.random.default_rng(seed)
    ids = [f"img-{k:03d}" for k in range(n_images)]
    yy, xx = np.mgrid[:64, :64] / 63.0

    def thumbs():
        if noisy:  # incompressible: the worst case for the report's size
            return png(rng.uniform(size=(64, 64)))
        cx, cy = rng.uniform(0.2, 0.8, size=2)
        return png(np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02))

    samples = {i: {"image": png(rng.uniform(size=(64, 64)) if noisy else 0.5 + 0.3 * xx * yy),
                   "truth": png(((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.04).astype(float))} for i in ids}
    results = [result(c, m, ("pass", "fail")[(ci + mi) % 2] if audited else verdict_for(ci, mi), ids, thumbs, rng)
               for ci, c in enumerate(criteria) for mi, m in enumerate(methods)]
    return {
        "schema": "saliency-audit/evidence@1",
        "run": {"started": "2026-01-01T10:00:00+00:00", "finished": "2026-01-01T10:05:00+00:00", "seed": 1234,
                "argv": ["audits/", "--audit-report=rep", "-q"], "cwd": "/data/project",
                "git": {"commit": "f" * 40, "dirty": True}, "versions": {"python": "3.11.7", "torch": "2.4.0"},
                "host": {"name": "ci-runner", "cpus": 2}, "timings": {"dataset": 0.5, "maps": {"cached": 10}}},
        "config": {"n_images": n_images, "seed": 1234, "utility": {"alpha": 0.05, "min_ap": 0.1},
                   "randomization": {"alpha": 0.05, "head_min": 0.5, "all_min": 0.8, "label_min": 0.8,
                                     "bn_policy": "reset", "blocks": []},
                   "consistency": {"alpha": 0.05, "min_ssim": 0.5}, "methods": {"xrai": {"scales": [50, 100]}},
                   "methods_audited": list(methods)},
        "models": [{"spec": "demo", "arch": "democnn", "role": "primary", "sha256": SHA, "n_params": 70962,
                    "num_classes": 2, "input_size": [128, 128], "in_channels": 1, "mean": [0.5], "std": [0.25],
                    "extra": {"demo": {"seed": 1}}},
                   {"spec": "demo (all blocks re-initialised)", "arch": "democnn", "role": "randomized",
                    "sha256": None, "n_params": 70962, "num_classes": 2, "input_size": [128, 128],
                    "in_channels": 1, "mean": [0.5], "std": [0.25],
                    "extra": {"derived_from_sha256": SHA, "blocks": ["head"], "layers_reset": 5,
                              "bn_policy": "reset"}}],
        "dataset": {"name": "demo", "root": "generated:v1:seed0", "size": 400, "n_images": n_images,
                    "eval_size": [128, 128], "manifest_sha256": MANIFEST, "split": "test", "finding": "nodule",
                    "skipped": [{"id": "broken-17", "reason": "unreadable DICOM"}]},
        "samples": samples,
        "results": results,
    }


class Cells(HTMLParser):
    """The verdict matrix as {(criterion row title, method): (td class, text)}."""

    def __init__(self):
        super().__init__()
        self.inside, self.row, self.head, self.cells, self.cls, self.text, self.cur = False, [], [], {}, None, [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "verdict-matrix":
            self.inside = True
        if not self.inside:
            return
        if tag == "tr":
            self.row = []
        if tag in ("td", "th"):
            self.cur, self.cls, self.text = tag, a.get("class"), []

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag in ("td", "th"):
            self.row.append((self.cur, self.cls, " ".join("".join(self.text).split())))
        if tag == "tr":
            if all(t == "th" for t, _, _ in self.row):
                self.head = [x for _, _, x in self.row[1:]]
            else:
                for method, (_, cls, text) in zip(self.head, self.row[1:]):
                    self.cells[(self.row[0][2], method)] = (cls, text)
        if tag == "table":
            self.inside = False

    def handle_data(self, data):
        if self.inside and self.cur:
            self.text.append(data)


@pytest.fixture(scope="module")
def evidence():
    return make_evidence()


@pytest.fixture(scope="module")
def page(evidence):
    return render(evidence)


TITLES = {"utility": "Localisation utility", "randomization": "Model-parameter randomization",
          "label_randomization": "Label randomization", "repeatability": "Repeatability",
          "reproducibility": "Reproducibility"}


def test_verdict_matrix_has_every_cell_with_text_and_class(evidence, page):
    parser = Cells()
    parser.feed(page)
    assert parser.head == list(METHODS)
    assert len(parser.cells) == len(CRITERIA) * len(METHODS)
    for r in evidence["results"]:
        cls, text = parser.cells[(TITLES[r["criterion"]], r["method"])]
        assert cls == f"v-{r['verdict']}"
        assert text.startswith(r["verdict"].upper())
        if r["verdict"] in ("pass", "fail"):
            headline = {"utility": f"ΔAP {r['value']:+.3f}", "repeatability": f"SSIM {r['value']:.2f}",
                        "reproducibility": f"SSIM {r['value']:.2f}"}.get(r["criterion"], f"d {r['value']:.2f}")
            assert headline in text


def test_sections_provenance_figures_and_no_active_content(evidence, page):
    for c in CRITERIA:
        assert f'<section id="{c}">' in page
    assert '<section id="provenance">' in page
    for needle in (SHA, MANIFEST, "audits/ --audit-report=rep -q", "1234", "f" * 40, "uncommitted changes",
                   "broken-17", "unreadable DICOM", "randomization.head_min", "consistency.min_ssim",
                   "methods.xrai.scales", "nodule", "3.11.7", "/data/project", "ci-runner"):
        assert needle in page, needle
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # utility: box plot + overlays; randomization: curves + strips; label: bars + strips; 2 x (box + strips)
    assert len(images) == 10
    assert all(base64.b64decode(b).startswith(b"\x89PNG") for b in images)
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert len(re.findall(r"<img ", page)) == len(images)
    assert re.search(r"Gate: NOT PASSED", page)


def test_error_and_skipped_results_show_their_explanation(evidence, page):
    for r in evidence["results"]:
        if r["verdict"] in ("error", "skipped"):
            assert r["explanation"].replace("/", "/") in page
    # the traceback stays in the evidence: internal paths do not belong in a reviewer's report
    assert any("RuntimeError: boom <b>" in (r.get("details") or {}).get("traceback", "") for r in evidence["results"])
    assert "RuntimeError: boom" not in page and "Traceback" not in page
    assert "(traceback in the evidence file)" in page


@pytest.mark.parametrize("status,code,banner", [
    ("interrupted", 2, "INCOMPLETE RUN"), ("running", None, "INCOMPLETE RUN"), ("failed", 3, "INCOMPLETE RUN"),
    ("complete", 1, None), (None, None, None),  # evidence from before runs had a status
])
def test_a_run_that_did_not_complete_has_a_banner_and_fails_the_gate(status, code, banner):
    from saliency_audit.report.gate import gate_of
    from saliency_audit.report.html import render

    ev = make_evidence(methods=("grad",), n_images=4)
    for r in ev["results"]:
        r["verdict"] = "pass"
    ev["run"].update(status=status, exit_status=code)
    page = render(ev)
    outcome, text = gate_of(ev)
    if banner:
        assert banner in page and f"<b>{status}</b>" in page
        assert outcome == "fail" and text.startswith(f"NOT COMPLETE — the run is {status}")
        assert "so far: PASSED" in text
    else:
        assert "INCOMPLETE RUN" not in page and outcome == "pass"


def test_hostile_strings_are_escaped():
    ev = make_evidence(methods=("grad", "gradcam"), n_images=4)
    old = "img-000"
    ev["samples"][XSS_ID] = ev["samples"].pop(old)
    for r in ev["results"]:
        for p in r["per_image"]:
            if p["id"] == old:
                p["id"] = XSS_ID
        thumbs = r["details"].get("thumbnails")
        if thumbs and old in thumbs:
            thumbs[XSS_ID] = thumbs.pop(old)
    ev["dataset"]["skipped"].append({"id": XSS_ID, "reason": XSS_SPEC})
    ev["models"][0]["spec"] = XSS_SPEC
    ev["run"]["argv"].append(XSS_SPEC)
    ev["config"]["weird"] = XSS_SPEC
    ev["results"][0]["explanation"] = XSS_SPEC
    ev["results"][0]["details"]["thumbnails"]["img-001"] = 'x" onerror="alert(1)'  # not base64: left out
    text = render(ev)
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img src=x" not in text and "<script" not in text.lower()
    assert "onerror" not in text.replace("onerror=alert(1)&gt;", "")
    assert 'onerror="' not in text
    # a payload that is not pure base64 never reaches a src attribute
    from saliency_audit.report.figures import is_base64
    from saliency_audit.report.html import figure

    assert is_base64(ev["samples"]["img-001"]["image"]) and not is_base64('AAAA" onerror="alert(1)')
    hostile = figure("a figure", lambda: 'AAAA" onerror="alert(1)', (), "caption")
    assert "<img" not in hostile and "onerror" not in hostile


def test_only_utility_renders_without_other_sections():
    ev = make_evidence(methods=("grad", "gradcam"), criteria=("utility",), n_images=6)
    text = render(ev)
    assert '<section id="utility">' in text and 'id="verdict-matrix"' in text
    for c in CRITERIA[1:]:
        assert f'<section id="{c}">' not in text
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 2


def test_broken_parts_become_notes_not_crashes():
    ev = make_evidence(methods=("grad",), n_images=4)
    ev["results"][0]["per_image"] = "not a list"
    ev["results"][1]["curve"] = [{"stage": None, "ssim": "x"}]
    ev["samples"] = {"img-000": {"image": "!!!", "truth": None}}
    text = render(ev)
    assert '<p class="note">' in text and 'id="verdict-matrix"' in text
    assert render({"schema": "saliency-audit/evidence@1", "results": []}).startswith("<!DOCTYPE html>")


def test_worst_case_size_of_8_methods_by_100_images(tmp_path):
    ev = make_evidence(n_images=100, noisy=True, audited=True)
    assert sum(len(r["details"].get("thumbnails", {})) for r in ev["results"]) == 8 * 100
    path = write_html(ev, tmp_path / "big.html")
    size = path.stat().st_size
    print(f"worst-case report: {size / 1e6:.2f} MB")
    assert size < 15e6


def test_rendering_is_deterministic():
    ev = make_evidence(methods=("grad", "gradcam"), n_images=4)
    first = render(ev)
    assert render(json.loads(json.dumps(ev))) == first  # and across processes: test_cli_rebuilds_the_same_bytes
    pngs = [base64.b64decode(b) for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", first)]
    assert pngs and not any(b"tIME" in p or b"Software" in p for p in pngs)  # no timestamp, no version tag


def test_figures_kept_by_content_give_the_same_page_and_are_not_drawn_again(tmp_path, monkeypatch):
    """With a figure cache the page is the same bytes; a second report of the same evidence (what a warm run
    spent differs: seconds, passes) draws no figure; changed values draw theirs again."""
    from saliency_audit.report import figures as F
    from saliency_audit.report import markup

    ev = make_evidence(methods=("grad", "gradcam"), n_images=4)
    want = render(ev)
    first = write_html(ev, tmp_path / "a.html", figure_cache=tmp_path / "cache").read_text()
    assert first == want and list((tmp_path / "cache" / "figures").rglob("*.b64"))
    drawn = []
    monkeypatch.setattr(F, "to_png", lambda fig, _to_png=F.to_png: drawn.append(1) or _to_png(fig))
    warm = json.loads(json.dumps(ev))
    for r in warm["results"]:
        r.setdefault("details", {}).update(seconds=123.0, image_passes=0, maps_computed=0)
    assert write_html(warm, tmp_path / "b.html", figure_cache=tmp_path / "cache").read_text() == render(warm)
    assert len(drawn) == sum(1 for _ in re.finditer("<figure>", want))  # render() alone draws; the cache none
    drawn.clear()
    write_html(warm, tmp_path / "b.html", figure_cache=tmp_path / "cache")
    assert not drawn
    changed = json.loads(json.dumps(ev))
    changed["results"][0]["value"] = 0.123456
    write_html(changed, tmp_path / "c.html", figure_cache=tmp_path / "cache")
    assert 0 < len(drawn) < len(re.findall("<figure>", want))
    assert markup._FIGURE_CACHE.get() is None  # only within write_html


def test_no_figure_reads_what_a_run_spent():
    """A figure's cache key leaves out markup.COST_KEYS (seconds, passes: a warm run's differ), so the modules
    whose functions draw figures must never read them."""
    from pathlib import Path

    from saliency_audit.report import markup

    here = Path(markup.__file__).parent
    for name in ("figures.py", "faithfulness.py", "interpretability.py"):
        source = (here / name).read_text()
        for key in markup.COST_KEYS:
            assert f'"{key}"' not in source and f"'{key}'" not in source, (name, key)


def test_cli_rebuilds_the_same_bytes(tmp_path):
    ev = make_evidence(methods=("grad", "gradcam"), n_images=5)
    src = tmp_path / "evidence.json"
    src.write_text(json.dumps(ev))
    out = tmp_path / "out" / "report.html"
    proc = subprocess.run([sys.executable, "-m", "saliency_audit", "report", str(src), "-o", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout
    sha256 = hashlib.sha256(src.read_bytes()).hexdigest()  # the footer names the file read by its hash
    assert out.read_bytes() == render(ev, sha256).encode("utf-8")


def test_cli_default_output_is_next_to_the_evidence(tmp_path, capsys):
    from saliency_audit.cli import main

    ev = make_evidence(methods=("grad",), criteria=("repeatability",), n_images=3)
    src = tmp_path / "evidence.json"
    src.write_text(json.dumps(ev))
    assert main(["report", str(src)]) == 0
    assert (tmp_path / "saliency-audit.html").is_file()
    assert str(tmp_path / "saliency-audit.html") in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_cli_missing_or_invalid_evidence_exits_2(tmp_path, capsys, content):
    from saliency_audit.cli import main

    src = tmp_path / "evidence.json"
    if content is not None:
        src.write_text(content)
    assert main(["report", str(src)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evidence.json" in err
    assert not (tmp_path / "saliency-audit.html").exists()


@pytest.mark.parametrize("design,says", [("per_image", "its own random re-initialisation (2 per image"),
                                         ("shared", "the same 2 random re-initialisation(s)")])
def test_the_randomization_text_says_whose_draws_explain_each_image(design, says):
    ev = make_evidence()
    ev["config"]["randomization"].update(draw_design=design, draws=2)
    assert says in render(ev)
