"""The report in the pytest ecosystem and in a browser: JUnit properties, pytest-html, xdist, headless Chromium."""
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import saliency_audit.engine.audit  # noqa: F401  (numpy, scipy: loaded once, before pytester snapshots sys.modules)

pytest_plugins = ["pytester"]
AUDITS = Path(__file__).resolve().parents[1] / "audits"
XSS = "<img src=x onerror=alert(1)>"


def _copy_audits(pytester, *names):
    for name in names:
        shutil.copy(AUDITS / name, pytester.path / name)


@pytest.mark.slow
def test_junit_properties_and_pytest_html_rows_carry_the_numbers(pytester):
    _copy_audits(pytester, "test_utility.py")
    result = pytester.runpytest("--methods=gradcam,grad", "--no-controls", "--n-images=8", "--audit-report=rep",
                                "--junitxml=junit.xml",
                                "--html=pytest-report.html", "--self-contained-html", "-p", "no:cacheprovider")
    assert result.ret in (0, 1)
    ev = json.loads((pytester.path / "rep" / "evidence.json").read_text())
    by_method = {r["method"]: r for r in ev["results"]}
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    assert set(cases) == {"test_utility[gradcam]", "test_utility[grad]"}
    for method in ("gradcam", "grad"):
        props = {p.get("name"): p.get("value") for p in cases[f"test_utility[{method}]"].iter("property")}
        r = by_method[method]
        assert props["saliency_audit.criterion"] == "utility" and props["saliency_audit.method"] == method
        assert props["saliency_audit.verdict"] == r["verdict"]
        assert float(props["saliency_audit.value"]) == pytest.approx(r["value"], rel=1e-3)
        assert float(props["saliency_audit.bound"]) == pytest.approx(r["bound"], rel=1e-3)
        assert props["saliency_audit.baseline"] == "average-mask prior" and props["saliency_audit.n"] == "8"
    page = (pytester.path / "pytest-report.html").read_text()
    assert "saliency-audit model" in page and "saliency-audit seed" in page  # environment table
    primary = next(m for m in ev["models"] if m["role"] == "primary")
    assert primary["sha256"] in page and ev["dataset"]["manifest_sha256"] in page  # summary: by content hash
    assert page.count("mean(AP - AP_prior)") >= 2  # each row's numbers table
    assert "data:image/png;base64" in page or "image/png" in page  # each row's thumbnail
    assert (pytester.path / "rep" / "saliency-audit.html").is_file()


def _comparable(ev: dict) -> dict:
    """Evidence without what legitimately differs between two runs: times, argv, cache hits (and the passes
    they saved)."""
    ev = json.loads(json.dumps(ev))
    ev.pop("run")
    for r in ev["results"]:
        for key in ("seconds", "map_seconds", "maps_computed", "image_passes"):  # these depend on cache hits
            r["details"].pop(key, None)
    return ev


@pytest.mark.slow
def test_xdist_report_is_complete_and_equal_to_a_serial_run(pytester, tmp_path):
    """Under pytest-xdist the controller merges the workers' evidence into one report equal to a serial run's,
    and writes it before junitxml writes its file: the footer and the JUnit properties name the merged evidence,
    the models and the data by hash (tests/test_provenance.py checks the same of a serial run)."""
    from tests.test_provenance import check_named_by_hash

    _copy_audits(pytester, "test_utility.py", "test_randomization.py", "test_consistency.py")
    args = ["--methods=gradcam,grad", "--no-controls", "--n-images=8", "-p", "no:cacheprovider", "-k",
            "utility or label or repeat"]
    serial = pytester.runpytest(*args, "--audit-report=serial")
    parallel = pytester.runpytest(*args, "--audit-report=parallel", "-n", "2", "--junitxml=junit.xml")
    assert serial.ret == parallel.ret
    a = json.loads((pytester.path / "serial" / "evidence.json").read_text())
    b = check_named_by_hash(pytester.path / "parallel", pytester.path / "junit.xml", n_images=8)
    assert len(a["results"]) == len(b["results"]) == 6
    assert _comparable(a) == _comparable(b)
    html = (pytester.path / "parallel" / "saliency-audit.html").read_text()
    for r in b["results"]:
        assert r["explanation"].split(";")[0][:40].replace("'", "&#x27;") in html


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("SALIENCY_AUDIT_REQUIRE_CHROMIUM"):
        pytest.fail("chromium is required here (.ci/run installs Debian's chromium) but was not found")
    pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")


def _browser(chromium, tmp_path, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_renders_in_headless_chromium_and_escapes_hostile_ids(tmp_path):
    chromium = _chromium()
    from PIL import Image

    from saliency_audit import Audit, AuditConfig
    from saliency_audit.demo.export import export_demo
    from saliency_audit.report.html import write_html

    root = export_demo("folder", tmp_path / "data", n=40)
    victim = sorted((root / "masks").iterdir())[0].stem  # an image with a lesion, renamed to a hostile id
    for folder in ("images", "masks"):
        (root / folder / f"{victim}.png").rename(root / folder / f"{XSS}.png")
    labels = root / "labels.csv"
    labels.write_text(labels.read_text().replace(f"{victim}.png", f"{XSS}.png"))
    cfg = AuditConfig()
    cfg.n_images = 12
    cfg.utility.prior_images = 8
    cfg.cache_dir = str(tmp_path / "maps")
    audit = Audit(model="demo", dataset="folder", data_root=str(root), methods=["gradcam", "grad"], config=cfg)
    for m in ("gradcam", "grad"):
        audit.utility(m)
    ev = audit.evidence(finished=True)
    assert XSS in ev["samples"] and any(p["id"] == XSS for p in ev["results"][0]["per_image"])
    page = tmp_path / "saliency-audit.html"
    write_html(ev, page)
    text = page.read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "<img src=x" not in text
    dom = _browser(chromium, tmp_path, "--dump-dom", page.as_uri()).stdout
    assert 'id="verdict-matrix"' in dom
    assert "<img src=\"x\"" not in dom and "onerror" not in dom.replace("onerror=alert(1)&gt;", "")
    shot = tmp_path / "shot.png"
    _browser(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (1600, 1280)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # not blank: text, tables and figures drawn
