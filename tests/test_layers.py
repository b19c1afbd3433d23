"""The package's layers (pyproject.toml ``[tool.importlinter]``): ``lint-imports`` keeps every contract.

The README's ``pytest`` thereby checks that no module imports a layer above its own (criteria never import
the report, methods never the criteria, models never the map store, the CLI never the plugin ...)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str | None:
    here = Path(sys.executable).parent / ("lint-imports.exe" if sys.platform == "win32" else "lint-imports")
    return str(here) if here.exists() else shutil.which("lint-imports")


def test_the_import_contracts_are_kept(tmp_path):
    exe = _lint_imports()
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]' installs it)")
    done = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_every_relative_import_names_a_module_of_the_package():
    """lint-imports skips an import of a module that does not exist; a lazy ``from .x import y`` left behind by a
    move fails only when its function runs.  Each relative import (at any depth of the code) must name a module
    or package of the tree, and a name it takes from a package must be defined there."""
    import ast

    bad = []
    for f in sorted((ROOT / "saliency_audit").rglob("*.py")):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        package = parts[:-1]  # the package a module's relative imports start from (an __init__'s own)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            target = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            path = ROOT.joinpath(*target)
            where = f"{f.relative_to(ROOT)}:{node.lineno}"
            if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
                bad.append(f"{where}: no module {'.'.join(target)}")
                continue
            init = path / "__init__.py"
            for alias in node.names:
                sub = path / alias.name
                if init.is_file() and alias.name != "*" and not (sub.with_suffix(".py").is_file() or
                                                                  (sub / "__init__.py").is_file()):
                    if alias.name not in init.read_text(encoding="utf-8"):
                        bad.append(f"{where}: {alias.name} is not in {'.'.join(target)}")
    assert not bad, "\n".join(bad)
