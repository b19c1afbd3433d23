"""Maps out and maps in: ``saliency-audit maps`` / ``view`` and ``--maps [NAME=]DIR``."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliency_audit import Audit, AuditConfig
from saliency_audit.cli import main as cli
from saliency_audit.common.errors import AuditInputError, AuditUsageError
from saliency_audit.engine.external import ExternalMaps, parse_maps_option, read_map

N = 8
pytest_plugins = ["pytester"]


def config(n=N) -> AuditConfig:
    return AuditConfig(n_images=n)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """gradcam and grad maps of the demo model's N audited images, written by the CLI."""
    out = tmp_path_factory.mktemp("maps")
    assert cli(["maps", "-o", str(out), "--methods", "gradcam,grad", "--n-images", str(N)]) == 0
    return out


def test_maps_writes_npy_in_unit_range_and_a_manifest(written):
    files = sorted((written / "gradcam").glob("*.npy"))
    assert len(files) == N
    m = np.load(files[0])
    assert m.dtype == np.float32 and m.shape == (128, 128) and 0 <= m.min() and m.max() <= 1
    manifest = json.loads((written / "gradcam" / "maps.json").read_text())
    assert manifest["method"] == "gradcam" and len(manifest["ids"]) == N
    assert len(manifest["model"]["sha256"]) == 64 and manifest["params"]["gradcam"]["layer"] is None


def test_round_trip_gives_the_direct_numbers(written):
    """The acceptance: maps written, then audited with --maps, give the direct run's values."""
    direct = Audit(model="demo", methods=["gradcam"], config=config())
    again = Audit(model="demo", maps=[f"{written / 'gradcam'}", f"g2={written / 'grad'}"], config=config())
    assert again.methods == ("external", "g2")
    for criterion in ("utility", "energy", "focus", "pointing"):
        a, b = direct.run(criterion, "gradcam"), again.run(criterion, "external")
        assert (a.verdict, a.value, a.bound, a.n) == (b.verdict, b.value, b.bound, b.n), criterion
    u = again.run("utility", "external")
    assert [b["name"] for b in u.baselines] == ["average-mask prior"]  # no randomized model for maps made elsewhere
    assert u.details["method_params"]["maps"]["provenance"]["method"] == "gradcam"


@pytest.mark.parametrize("criterion", ["randomization", "label_randomization", "repeatability", "reproducibility",
                                       "completeness"])
def test_criteria_that_need_the_model_skip_naming_the_option(written, criterion):
    audit = Audit(model="demo", maps=[str(written / "gradcam")], config=config())
    r = audit.run(criterion, "external")
    assert r.verdict == "skipped" and r.explanation.startswith("--maps:"), r.explanation


def test_maps_of_another_model_are_refused(written, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(written / "gradcam", folder)
    manifest = json.loads((folder / "maps.json").read_text())
    manifest["model"]["fingerprint"] = "0" * 24
    (folder / "maps.json").write_text(json.dumps(manifest))
    audit = Audit(model="demo", maps=[str(folder)], config=config())
    r = audit.run("utility", "external")
    assert r.verdict == "error" and "audit with the model that made the maps" in r.explanation


def _folder(tmp_path, written, edit=None) -> Path:
    folder = tmp_path / "maps"
    folder.mkdir()
    for f in (written / "gradcam").glob("*.npy"):
        shutil.copy(f, folder / f.name)
    if edit:
        edit(folder)
    return folder


def _first(folder: Path) -> Path:
    return sorted(folder.glob("*.npy"))[0]


@pytest.mark.parametrize("edit,needle", [
    (lambda f: _first(f).unlink(), "no map for image"),
    (lambda f: np.save(_first(f), np.full((16, 16), np.nan, np.float32)), "NaN or infinite"),
    (lambda f: np.save(_first(f), np.zeros((2, 16, 16), np.float32)), "is not a 2-D (H, W) map"),
    (lambda f: np.save(_first(f), np.zeros((16, 64), np.float32)), "aspect ratio 4.0 times off"),
    (lambda f: _first(f).write_bytes(b"not numpy"), "cannot read map"),
])
def test_a_bad_map_is_a_one_line_error_or_a_listed_skip(tmp_path, written, edit, needle):
    folder = _folder(tmp_path, written, edit)
    r = Audit(model="demo", maps=[str(folder)], config=config()).run("utility", "external")
    assert r.verdict == "error" and needle in r.explanation and "\n" not in r.explanation, r.explanation
    audit = Audit(model="demo", maps=[str(folder)], config=config(), skip_bad_samples=True)
    r = audit.run("utility", "external")
    assert r.verdict in ("pass", "fail") and r.n == N - 1, r.explanation
    skipped = audit.evidence()["dataset"]["skipped"]
    assert len(skipped) == 1 and needle in skipped[0]["reason"]


def test_png_maps_any_resolution_and_a_manifest_csv(tmp_path, written):
    """16-bit PNG maps at twice the resolution (each pixel a 2x2 block, so resampling to the grid gives the map
    back), named through manifest.csv, score like the .npy maps they were made from (up to 16-bit grey levels)."""
    folder = tmp_path / "png"
    folder.mkdir()
    rows = ["image,file"]
    for k, f in enumerate(sorted((written / "gradcam").glob("*.npy"))):
        m = np.load(f)
        big = np.kron(m, np.ones((2, 2), np.float32))
        Image.fromarray((big * 65535).round().astype(np.uint16)).save(folder / f"m{k}.png")
        rows.append(f"{f.stem},m{k}.png")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    ext = parse_maps_option(f"vendor={folder}", set())
    assert ext.name == "vendor" and len(ext.files) == N
    a = Audit(model="demo", methods=["gradcam"], config=config()).run("utility", "gradcam")
    b = Audit(model="demo", maps=[ext], config=config()).run("utility", "vendor")
    assert abs(a.details["mean_ap"] - b.details["mean_ap"]) < 1e-3, (a.details["mean_ap"], b.details["mean_ap"])


def test_option_errors(tmp_path, written):
    with pytest.raises(AuditUsageError, match="no such directory"):
        parse_maps_option(str(tmp_path / "nowhere"), set())
    with pytest.raises(AuditUsageError, match="'gradcam' is a built-in method"):
        parse_maps_option(f"gradcam={written / 'gradcam'}", set())
    with pytest.raises(AuditUsageError, match="given twice"):
        parse_maps_option(str(written / "gradcam"), {"external"})
    (tmp_path / "two").mkdir()
    np.save(tmp_path / "two" / "a.npy", np.zeros((4, 4)))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "two" / "a.png")
    with pytest.raises(AuditUsageError, match="'a.npy' and 'a.png' are maps of one image 'a'"):
        parse_maps_option(str(tmp_path / "two"), set())
    np.save(tmp_path / "c.npy", np.array([[1 + 2j]]))
    with pytest.raises(AuditInputError, match="not real numbers"):
        read_map(tmp_path / "c.npy")


def test_a_constant_map_is_flagged(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((8, 8), np.float32))
    m, constant = ExternalMaps("x", tmp_path, {"a": tmp_path / "a.npy"}).load("a", (16, 16))
    assert constant and m.shape == (16, 16) and not m.any()


def test_view_writes_overlays(written, tmp_path):
    assert cli(["view", str(written / "gradcam"), "-o", str(tmp_path / "ov")]) == 0
    pngs = sorted((tmp_path / "ov").glob("*.png"))
    assert len(pngs) == N
    rgb = np.asarray(Image.open(pngs[0]))
    assert rgb.shape == (128, 128, 3) and (rgb == (51, 255, 102)).all(axis=2).any()  # the lesion outline


def test_pytest_option_audits_maps_and_skips_what_needs_the_model(pytester, written):
    """``pytest audits/ --maps DIR``: utility is a verdict, randomization a skip naming --maps, no error."""
    root = Path(__file__).resolve().parents[1] / "audits"
    for name in ("test_utility.py", "test_randomization.py"):
        shutil.copy(root / name, pytester.path / name)
    result = pytester.runpytest(f"--maps=vendor={written / 'gradcam'}", "--no-controls", f"--n-images={N}", "--audit-report=rep",
                                "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*--maps: randomization needs randomized*"])
    ev = json.loads((pytester.path / "rep" / "evidence.json").read_text())
    assert ev["config"]["methods_audited"] == ["vendor"] and "vendor" in ev["config"]["external_maps"]
    bad = pytester.runpytest("--maps=/nowhere/at/all", "-p", "no:cacheprovider")
    assert bad.ret == 4 and "--maps=/nowhere/at/all: no such directory" in bad.stderr.str()
