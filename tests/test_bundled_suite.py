"""The suite ships with the package: ``pytest --saliency-audit`` runs it from any folder, ``saliency-audit init``
writes an editable copy (``audits/`` and a ``[tool.saliency_audit]`` block) that ``pytest audits/`` runs."""
import json
import shutil

import numpy as np
import sys
from pathlib import Path

import saliency_audit.engine.audit  # noqa: F401  (numpy, scipy: loaded once, before pytester snapshots sys.modules)
from saliency_audit.cli import main as cli
from saliency_audit.config import AuditConfig, load_config
from saliency_audit.common.criteria_registry import CRITERIA
from saliency_audit.common.paths import bundled_suite
from saliency_audit.plugin import _pairs
from saliency_audit.common.paths import SUITE_MODULES as MODULES
from saliency_audit.common.paths import suite_sources as sources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]
SMALL = ("--methods=grad", "--no-controls", "--n-images=8", "-p", "no:cacheprovider")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_repository_audits_import_the_bundled_tests():
    """audits/ is a thin copy: each module imports the bundled module's tests, which hold one test per criterion."""
    import importlib.util

    assert sorted(p.name for p in bundled_suite().glob("test_*.py")) == sorted(MODULES)
    names = set()
    for name in MODULES:
        spec = importlib.util.spec_from_file_location(f"_audits_{name[:-3]}", ROOT / "audits" / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        bundled = __import__(f"saliency_audit.suite.{name[:-3]}", fromlist=["_"])
        tests = {k: v for k, v in vars(bundled).items() if k.startswith("test_")}
        assert tests and all(getattr(module, k) is v for k, v in tests.items()), name
        names |= set(tests)
    assert names == {f"test_{c}" for c in CRITERIA}


def test_flag_collects_the_bundled_suite_instead_of_the_folders_tests(pytester):
    pytester.makepyfile(test_mine="def test_mine(method): pass")
    items, _ = pytester.inline_genitems("--saliency-audit", "--methods=grad", "--no-controls")
    assert sorted(i.name for i in items) == sorted(f"test_{c}[grad]" for c in CRITERIA)
    assert sorted(_pairs(items)) == sorted((c, "grad") for c in CRITERIA)  # the plugin finds them by name
    assert all(Path(i.path).parent == bundled_suite() for i in items)
    # explicit paths: the suite joins them (once, even when it is given too)
    items, _ = pytester.inline_genitems("--saliency-audit", "test_mine.py", str(bundled_suite()), "--methods=grad",
                                        "--no-controls")
    assert sorted(i.name for i in items) == sorted(["test_mine[grad]"] + [f"test_{c}[grad]" for c in CRITERIA])


def test_help_names_the_flag(pytester):
    out = pytester.runpytest("--help").stdout.str()
    assert "--saliency-audit" in out and "pytest --saliency-audit runs the audit suite that ships" in out


def test_k_selects_from_the_bundled_suite(pytester):
    result = pytester.runpytest("--saliency-audit", "-k", "utility", "--methods=gradcam", "--collect-only", "-q")
    selected = [line for line in result.stdout.lines if "::" in line]
    assert all(line.endswith("test_utility.py::test_utility[" + m + "]") for line, m in
               zip(selected, ["gradcam", "edge", "random", "oracle"])), selected  # the demo adds its controls
    assert len(selected) == 4
    result = pytester.runpytest("--saliency-audit", "-k", "utility", "--methods=gradcam", "--no-controls",
                                "--collect-only", "-q")
    assert [line for line in result.stdout.lines if "::" in line] == ["test_utility.py::test_utility[gradcam]"]


def test_flag_runs_the_utility_audit_in_an_empty_folder(pytester):
    result = pytester.runpytest("--saliency-audit", "-k", "utility", *SMALL, "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_utility.py::test_utility?grad? *", "*saliency-audit verdicts*"])
    ev = json.loads((pytester.path / "reports" / "evidence.json").read_text())
    assert [(r["criterion"], r["method"]) for r in ev["results"]] == [("utility", "grad")]
    assert ev["results"][0]["verdict"] in ("pass", "fail") and ev["config"]["n_images"] == 8
    assert (pytester.path / "reports" / "saliency-audit.html").is_file()


def test_init_writes_the_suite_and_a_block_that_loads(tmp_path, capsys):
    assert cli(["init", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'pyproject.toml'}: created" in out and f"next: cd {tmp_path} && pytest audits/" in out
    for name, source in sources().items():
        assert (tmp_path / "audits" / name).read_text(encoding="utf-8") == source
        assert source == (bundled_suite() / name).read_text(encoding="utf-8")
    table = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["saliency_audit"]
    assert table["n_images"] == 48 and table["sequential"] is True and table["stats"]["resamples"] == 4000
    assert load_config(pyproject=tmp_path / "pyproject.toml").to_dict() == AuditConfig().to_dict()  # the defaults


def test_init_refuses_to_overwrite_and_force_rewrites(tmp_path, capsys):
    assert cli(["init", str(tmp_path)]) == 0
    edited = (tmp_path / "pyproject.toml").read_text().replace("n_images = 48 ", "n_images = 12 ", 1)
    (tmp_path / "pyproject.toml").write_text(edited)
    (tmp_path / "audits" / "test_utility.py").write_text("# ours\n")
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert cli(["init", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'audits' / 'conftest.py'}: exists" in err and "--force" in err
    assert _snapshot(tmp_path) == before
    shutil.rmtree(tmp_path / "audits")  # only the block is in the way now: named
    assert cli(["init", str(tmp_path)]) == 1
    assert f"{tmp_path / 'pyproject.toml'}: has a [tool.saliency_audit] table" in capsys.readouterr().err
    assert cli(["init", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "audits" / "test_utility.py").read_text() == sources()["test_utility.py"]
    assert load_config(pyproject=tmp_path / "pyproject.toml").n_images == 48


HEAD = '[project]\r\nname = "ward-classifier"  # ours\r\ndependencies = ["torch"]\r\n\r\n'
BLOCK = "[tool.saliency_audit]\r\nn_images = 12\r\n\r\n[tool.saliency_audit.utility]\r\nalpha = 0.1\r\n\r\n"
TAIL = "# pytest's own settings\r\n[tool.pytest.ini_options]\r\nmarkers = [\r\n  \"gpu: needs one\",\r\n]\r\n"


def test_init_keeps_the_rest_of_an_existing_pyproject(tmp_path, capsys):
    project = tmp_path / "pyproject.toml"
    without = HEAD + TAIL
    project.write_bytes(without.encode())
    assert cli(["init", str(tmp_path)]) == 0
    written = project.read_bytes()
    assert written.startswith(without.encode()) and b"\n" not in written.replace(b"\r\n", b"")  # appended, CRLF
    data = tomllib.loads(written.decode())
    assert data["project"]["name"] == "ward-classifier" and data["tool"]["pytest"]["ini_options"]["markers"]
    load_config(pyproject=project)
    # --force over a block with a subtable: the text before and after it is kept byte for byte
    project.write_bytes((HEAD + BLOCK + TAIL).encode())
    assert cli(["init", str(tmp_path)]) == 1
    assert cli(["init", str(tmp_path), "--force"]) == 0
    written = project.read_bytes().decode()
    assert written.startswith(HEAD) and written.endswith(TAIL)
    assert "alpha = 0.1" not in written and load_config(pyproject=project).to_dict() == AuditConfig().to_dict()


def test_init_names_an_unusable_folder_or_pyproject(tmp_path, capsys):
    assert cli(["init", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such directory" in capsys.readouterr().err
    (tmp_path / "pyproject.toml").write_text("[project\nname = 1\n")
    assert cli(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'pyproject.toml'}: not valid TOML" in err and err.count("\n") == 1
    assert not (tmp_path / "audits").exists()  # nothing written
    (tmp_path / "pyproject.toml").write_text("tool = { black = { line-length = 100 } }\n")
    assert cli(["init", str(tmp_path)]) == 2
    assert f"{tmp_path / 'pyproject.toml'}: adding [tool.saliency_audit] would not be valid TOML" in \
        capsys.readouterr().err


def test_pytest_runs_the_files_init_wrote(pytester, capsys):
    assert cli(["init", str(pytester.path)]) == 0
    project = pytester.path / "pyproject.toml"
    project.write_text(project.read_text().replace("n_images = 48 ", "n_images = 8  ", 1))  # the block is read
    result = pytester.runpytest("audits/", "-k", "utility", *[a for a in SMALL if not a.startswith("--n-images")])
    assert result.ret in (0, 1), result.stdout.str()
    result.assert_outcomes(**{"passed" if result.ret == 0 else "failed": 1})
    ev = json.loads((pytester.path / "reports" / "evidence.json").read_text())
    assert [(r["criterion"], r["method"]) for r in ev["results"]] == [("utility", "grad")]
    assert ev["config"]["n_images"] == 8


def test_init_fills_the_input_size_from_the_users_images(tmp_path, capsys):
    """A 128-px folder dataset: the next-step command carries --input-size=128 (not the architecture's 224);
    without --dataset it still names --input-size, and an unreadable dataset leaves SIZE with a reason."""
    from PIL import Image

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((128, 128), np.uint8)).save(root / "images" / f"x{i}.png")
        Image.fromarray(np.full((128, 128), 255 * (i % 2), np.uint8)).save(root / "masks" / f"x{i}.png")
    (tmp_path / "p1").mkdir()
    assert cli(["init", str(tmp_path / "p1"), "--dataset=folder", f"--data-root={root}"]) == 0
    out = capsys.readouterr().out
    assert f"--dataset=folder --data-root={root} --input-size=128" in out and "128x128 is your images' size" in out
    (tmp_path / "p2").mkdir()
    assert cli(["init", str(tmp_path / "p2")]) == 0
    assert "--dataset=NAME --data-root=PATH --input-size=SIZE" in capsys.readouterr().out
    (tmp_path / "p3").mkdir()
    assert cli(["init", str(tmp_path / "p3"), "--dataset=folder", f"--data-root={tmp_path / 'none'}"]) == 0
    captured = capsys.readouterr()
    assert "--input-size=SIZE" in captured.out and "could not read --dataset=folder" in captured.err
