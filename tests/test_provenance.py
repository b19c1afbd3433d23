"""Provenance a regulator asks for: the evidence file's sha256 in the report footer, the audited models' and
data's hashes as JUnit properties, and the report printed to PDF (``saliency-audit report --pdf``)."""
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import saliency_audit.engine.audit  # noqa: F401  (numpy, scipy: loaded once, before pytester snapshots sys.modules)
from saliency_audit.cli import main
from saliency_audit.evidence import write_json
from saliency_audit.report.html import render
from saliency_audit.report.pdf import BROWSERS, ENV
from saliency_audit.plugin.pytest_extras import suite_properties
from tests.test_report import MANIFEST, SHA, make_evidence

pytest_plugins = ["pytester"]
FOOTER = re.compile(r'<p id="evidence-sha256">Evidence file <code>([^<]*)</code> sha256 <code>([0-9a-f]{64})</code>')


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def footer(page: str) -> tuple[str, str] | None:
    found = FOOTER.findall(page)
    assert len(found) <= 1
    return found[0] if found else None


# -- the footer ----------------------------------------------------------------------------------------------------

def test_footer_quotes_the_hash_given_and_nothing_without_one():
    ev = make_evidence(methods=("grad",), criteria=("utility",), n_images=3)
    assert footer(render(ev)) is None and "sha256sum" not in render(ev)
    assert footer(render(ev, "0f" * 32)) == ("evidence.json", "0f" * 32)
    page = render(ev, "0f" * 32, "<b>shard.json")  # a file name is escaped like any string
    assert footer(page) == ("&lt;b&gt;shard.json", "0f" * 32) and "<b>shard" not in page
    assert footer(render({"results": "not a list"}, "0f" * 32)) == ("evidence.json", "0f" * 32)  # the error page


def test_write_json_returns_the_hash_of_the_bytes_it_wrote(tmp_path):
    ev = make_evidence(methods=("grad",), criteria=("utility",), n_images=2)
    for indent in (1, None):
        digest = write_json(tmp_path / "evidence.json", ev, indent=indent)
        assert digest == sha256(tmp_path / "evidence.json")
        assert json.loads((tmp_path / "evidence.json").read_text()) == ev


def test_report_cli_footer_is_the_hash_of_the_file_read(tmp_path, capsys):
    src = tmp_path / "shard-3.json"
    src.write_text(json.dumps(make_evidence(methods=("grad",), criteria=("utility",), n_images=3), indent=2))
    assert main(["report", str(src), "-o", str(tmp_path / "out.html")]) == 0
    assert footer((tmp_path / "out.html").read_text()) == ("shard-3.json", sha256(src))


RECORD = """
    from saliency_audit.criteria.result import CriterionResult

    def test_record(audit, method):
        audit.models.get("primary")  # what an audit test loads: the model and (below) its images
        audit.samples.localisation()
        r = CriterionResult("utility", method, "pass", statistic="s", value=0.5, ci=[0.4, 0.6], bound=0.4,
                            baseline={"name": "prior", "value": 0.1}, n=3, per_image=[{"id": "a", "score": 0.5}],
                            explanation="numbers")
        audit.add_result(r)
"""


def test_plugin_run_footer_and_junit_name_the_evidence_models_and_data_by_hash(pytester):
    """A small in-process run with --junitxml: the demo model and 4 of its images, a recorded result per method.
    (Under pytest-xdist, where the controller must write the workers' merged evidence before junitxml writes its
    file, the same is checked by tests/test_report_integration.py::test_xdist_report_is_complete_and_equal_to_a_serial_run.)"""
    pytester.makepyfile(test_record=RECORD)
    result = pytester.runpytest("--methods=grad,gradcam", "--no-controls", "--n-images=4", "--audit-report=out",
                                "--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    ev = check_named_by_hash(pytester.path / "out", pytester.path / "junit.xml", n_images=4)
    assert ev["run"]["status"] == "complete"


def check_named_by_hash(out: Path, junit: Path, n_images: int) -> dict:
    """The report footer names the evidence file by its sha256, and the JUnit file's suite properties name the
    evidence, the loaded models and the data by hash, each once; returns the evidence."""
    from saliency_audit.report.gate import gate_of

    ev = json.loads((out / "evidence.json").read_text())
    assert footer((out / "saliency-audit.html").read_text()) == ("evidence.json", sha256(out / "evidence.json"))

    suite = ET.parse(junit).getroot().find("testsuite")
    props = [(p.get("name"), p.get("value")) for p in suite.find("properties").iter("property")]
    named = dict(props)
    assert len(named) == len(props)  # no name twice
    primary = ev["models"][0]
    assert primary["role"] == "primary" and re.fullmatch(r"[0-9a-f]{64}", primary["sha256"])
    model_props = [k for k, _ in props if k.startswith("saliency_audit.model.")]
    assert model_props[:2] == ["saliency_audit.model.primary.sha256", "saliency_audit.model.primary.spec"]
    assert named["saliency_audit.model.primary.sha256"] == primary["sha256"]
    assert named["saliency_audit.model.primary.spec"] == primary["spec"] == "demo"
    assert len(model_props) == 2 * sum(1 for m in ev["models"] if m.get("sha256"))  # the loaded ones only
    ds = ev["dataset"]
    assert ds["n_images"] == n_images and re.fullmatch(r"[0-9a-f]{64}", ds["manifest_sha256"])
    assert named["saliency_audit.dataset.name"] == "demo"
    assert named["saliency_audit.dataset.n_images"] == str(n_images)
    assert named["saliency_audit.dataset.manifest_sha256"] == ds["manifest_sha256"]
    assert named["saliency_audit.evidence_sha256"] == sha256(out / "evidence.json")
    assert named["saliency_audit.gate"] == gate_of(ev)[0]
    return ev


def test_suite_properties_skip_unhashed_models_and_number_repeated_roles():
    ev = make_evidence(methods=("grad",), criteria=("utility",), n_images=2)
    ev["models"] += [dict(ev["models"][0], role="replicate", spec=f"rep{i}.pt", sha256=f"{i}" * 64) for i in (2, 1)]
    ev["models"].reverse()  # primary first whatever the order in the file
    props = suite_properties(ev, "ee" * 32)
    assert props == [("saliency_audit.model.primary.sha256", SHA), ("saliency_audit.model.primary.spec", "demo"),
                     ("saliency_audit.model.replicate0.sha256", "1" * 64),
                     ("saliency_audit.model.replicate0.spec", "rep1.pt"),
                     ("saliency_audit.model.replicate1.sha256", "2" * 64),
                     ("saliency_audit.model.replicate1.spec", "rep2.pt"),
                     ("saliency_audit.dataset.name", "demo"), ("saliency_audit.dataset.manifest_sha256", MANIFEST),
                     ("saliency_audit.dataset.n_images", "2"), ("saliency_audit.evidence_sha256", "ee" * 32)]
    assert suite_properties({"models": [], "dataset": {"name": "siim"}}) == [("saliency_audit.dataset.name", "siim")]


# -- report --pdf ----------------------------------------------------------------------------------------------------

FAKE = """#!{python}
import os, sys
with open(os.environ["FAKE_BROWSER_LOG"], "w") as fh:
    fh.write("\\n".join(sys.argv))
mode = os.environ.get("FAKE_BROWSER_MODE", "ok")
if mode == "fail":
    sys.stderr.write("[0101/000000.000:ERROR:gpu_init.cc] noise\\n")
    sys.stderr.write("[0101/000000.000:FATAL:zygote_host_impl_linux.cc] No usable sandbox!\\n")
    sys.exit(1)
out = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--print-to-pdf=")][0]
with open(out, "wb") as fh:
    fh.write(b"%PDF-1.4\\n%fake\\n" if mode == "ok" else b"<html>not a pdf</html>")
"""


@pytest.fixture
def evidence_file(tmp_path):
    src = tmp_path / "evidence.json"
    write_json(src, make_evidence(methods=("grad", "gradcam"), criteria=("utility",), n_images=3))
    return src


@pytest.fixture
def fake_browser(tmp_path, monkeypatch):
    """A 'chromium' on PATH that records its argv and writes a minimal PDF (FAKE_BROWSER_MODE: ok, fail, html)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "chromium"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("FAKE_BROWSER_LOG", str(tmp_path / "argv.txt"))
    return exe


def test_pdf_prints_the_html_with_a_headless_browser(evidence_file, fake_browser, tmp_path, capsys):
    assert main(["report", str(evidence_file), "--pdf"]) == 0
    html, pdf = tmp_path / "saliency-audit.html", tmp_path / "saliency-audit.pdf"
    assert capsys.readouterr().out.split() == [str(html), str(pdf)]
    assert pdf.read_bytes().startswith(b"%PDF-")
    argv = (tmp_path / "argv.txt").read_text().split("\n")
    assert argv[0] == str(fake_browser) and argv[-1] == html.resolve().as_uri()
    for flag in ("--headless", "--no-pdf-header-footer", "--disable-gpu", "--no-first-run", "--disable-extensions"):
        assert flag in argv
    assert ("--no-sandbox" in argv) == (os.geteuid() == 0)
    printed = [a for a in argv if a.startswith("--print-to-pdf=")]
    assert len(printed) == 1 and printed[0].endswith(".pdf")  # a scratch file, moved into place when it is a PDF
    profile = [a for a in argv if a.startswith("--user-data-dir=")]
    assert len(profile) == 1 and not Path(profile[0].split("=", 1)[1]).exists()  # a fresh profile, removed


def test_pdf_output_named_with_o_and_browser_named_by_the_environment(evidence_file, fake_browser, tmp_path,
                                                                     monkeypatch):
    renamed = fake_browser.rename(tmp_path / "bin" / "my-browser")
    monkeypatch.setenv(ENV, str(renamed))
    assert main(["report", str(evidence_file), "-o", str(tmp_path / "deep" / "audit.html"), "--pdf"]) == 0
    assert (tmp_path / "deep" / "audit.pdf").read_bytes().startswith(b"%PDF-")
    assert (tmp_path / "argv.txt").read_text().split("\n")[0] == str(renamed)
    assert main(["report", str(evidence_file), "-o", str(tmp_path / "x" / "signed.pdf"), "--pdf"]) == 0
    assert (tmp_path / "x" / "signed.pdf").read_bytes().startswith(b"%PDF-")  # -o NAME.pdf: the HTML beside it
    assert footer((tmp_path / "x" / "signed.html").read_text()) == ("evidence.json", sha256(evidence_file))


def test_no_browser_exits_2_saying_how_to_get_one_and_the_html_is_written(evidence_file, tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(ENV, raising=False)
    assert main(["report", str(evidence_file), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("saliency-audit: error: --pdf")
    assert "apt-get install chromium" in err and ENV in err and all(b in err for b in BROWSERS)
    assert (tmp_path / "saliency-audit.html").is_file() and not (tmp_path / "saliency-audit.pdf").exists()
    monkeypatch.setenv(ENV, str(tmp_path / "nowhere" / "chrome"))
    assert main(["report", str(evidence_file), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{ENV}={tmp_path / 'nowhere' / 'chrome'}: no such executable" in err


@pytest.mark.parametrize("mode,says", [("fail", "exit status 1): [0101/000000.000:FATAL:zygote_host_impl_linux.cc] "
                                                "No usable sandbox!"),
                                       ("html", "wrote a file that is not a PDF")])
def test_a_failing_browser_exits_2_naming_it(evidence_file, fake_browser, tmp_path, monkeypatch, capsys, mode, says):
    monkeypatch.setenv("FAKE_BROWSER_MODE", mode)
    (tmp_path / "saliency-audit.pdf").write_bytes(b"%PDF- an old one")
    assert main(["report", str(evidence_file), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"chromium ({fake_browser}): printing saliency-audit.html failed" in err
    assert says in err and "the HTML report is written" in err
    assert (tmp_path / "saliency-audit.pdf").read_bytes() == b"%PDF- an old one"  # not replaced by a broken one


def test_a_browser_that_hangs_is_stopped(evidence_file, tmp_path, monkeypatch):
    from saliency_audit.report.pdf import PdfError, print_pdf

    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    t0 = time.monotonic()
    with pytest.raises(PdfError, match=r"hang \(.*\): did not print r.html within 1 s"):
        print_pdf(html, tmp_path / "r.pdf", browser=str(hang), timeout=1)
    assert time.monotonic() - t0 < 10


def _pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


@pytest.mark.slow
def test_real_chromium_prints_the_report_offline(tmp_path, capsys):
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        if os.environ.get("SALIENCY_AUDIT_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (.ci/run installs Debian's chromium) but was not found")
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")
    src = tmp_path / "evidence.json"
    write_json(src, make_evidence(methods=("grad", "gradcam", "ig"), n_images=6))
    assert main(["report", str(src), "--pdf"]) == 0, capsys.readouterr().err
    page = (tmp_path / "saliency-audit.html").read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)  # nothing to fetch: printing is faithful
    assert not re.search(r"""url\(\s*["']?(?!data:)""", page) and "@import" not in page
    assert "<details" in page and "details::details-content" in page  # collapsed sections open in print
    data = (tmp_path / "saliency-audit.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and _pdf_pages(data) > 1
