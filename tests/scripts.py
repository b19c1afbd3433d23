"""Load a repository script (not a package module) by its path, for the tests that check what it generates, and
read a benchmark's stored result."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str):
    """The module of ``ROOT / relative`` (e.g. ``benchmarks/readme_figures.py``), executed once per call."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored_result(name: str) -> dict:
    """``benchmarks/results/NAME.json``, as a benchmark wrote it."""
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text(encoding="utf-8"))
