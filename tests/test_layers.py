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
