"""README.md and the documentation pages quote only figures the benchmarks measured
(``benchmarks/readme_figures.py``)."""
import copy
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures():
    return load_script("benchmarks/readme_figures.py")


@pytest.fixture(scope="module")
def texts(figures):
    return {path: path.read_text(encoding="utf-8") for path in figures.pages()}


def test_the_pages_are_the_readme_and_every_docs_page(figures, texts):
    assert list(texts)[0] == ROOT / "README.md"
    assert set(texts) == {ROOT / "README.md", *ROOT.glob("docs/**/*.md")}


def test_every_generator_has_exactly_one_block(figures, texts):
    where = figures.block_names(texts)
    assert set(where) == set(figures.GENERATORS), "every generator has its block and vice versa"
    assert all(len(files) == 1 for files in where.values()), {n: f for n, f in where.items() if len(f) != 1}
    assert figures.placement_problems(texts) == []


def test_the_figures_are_the_benchmark_results(figures, texts):
    results = figures.load_results()
    stale = [str(path.relative_to(ROOT)) for path, text in texts.items() if figures.render(text, results) != text]
    assert not stale, f"{', '.join(stale)} stale: run python benchmarks/readme_figures.py"


def test_a_changed_result_changes_the_pages(figures, texts):
    results = copy.deepcopy(figures.load_results())
    results["demo_audit"]["demo_audit_all_criteria"]["cold_s"] += 100
    results["densenet121"]["methods"][0]["seconds_per_image"] += 1
    readme = texts[ROOT / "README.md"]
    assert figures.render(readme, results) != readme  # the quickstart's timing
    densenet_page = figures.block_names(texts)["densenet"][0]
    assert figures.render(texts[densenet_page], results) != texts[densenet_page]


def test_a_block_twice_or_missing_is_a_problem(figures, texts):
    readme = ROOT / "README.md"
    doubled = dict(texts)
    doubled[ROOT / "docs" / "extra.md"] = "<!-- figures:densenet -->\nx\n<!-- /figures:densenet -->\n"
    assert any(p.startswith("figures:densenet: 2 blocks") for p in figures.placement_problems(doubled))
    missing = {readme: ""}
    assert len(figures.placement_problems(missing)) == len(figures.GENERATORS)


def test_an_unknown_block_is_an_error(figures):
    with pytest.raises(KeyError, match="figures:nope has no generator"):
        figures.render("<!-- figures:nope -->\nx\n<!-- /figures:nope -->\n", {})
