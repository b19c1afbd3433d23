"""The README quotes only figures the benchmarks measured (``benchmarks/readme_figures.py``)."""
import copy
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "benchmarks" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_figures_are_the_benchmark_results(figures):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = {m["name"] for m in figures.BLOCK.finditer(text)}
    assert blocks == set(figures.GENERATORS), "every generator has its README block and vice versa"
    assert figures.render(text, figures.load_results()) == text, \
        "README.md is stale: run python benchmarks/readme_figures.py"


def test_a_changed_result_changes_the_readme(figures):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    results = copy.deepcopy(figures.load_results())
    results["demo_audit"]["demo_audit_all_criteria"]["cold_s"] += 100
    results["densenet121"]["methods"][0]["seconds_per_image"] += 1
    changed = figures.render(text, results)
    assert changed != text


def test_an_unknown_block_is_an_error(figures):
    with pytest.raises(KeyError, match="figures:nope has no generator"):
        figures.render("<!-- figures:nope -->\nx\n<!-- /figures:nope -->\n", {})
