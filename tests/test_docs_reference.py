"""The reference pages under docs/reference/ are what docs/gen_reference.py makes of the code now."""
import re
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen():
    return load_script("docs/gen_reference.py")


@pytest.fixture(scope="module")
def pages(gen):
    return gen.pages()


def test_the_committed_pages_are_the_generated_ones(pages):
    stale = [rel for rel, text in pages.items()
             if not (ROOT / "docs" / rel).exists() or (ROOT / "docs" / rel).read_text(encoding="utf-8") != text]
    assert not stale, f"{', '.join(stale)} stale: run python docs/gen_reference.py"


def test_the_generator_is_deterministic(gen, pages):
    assert gen.pages() == pages


def test_every_option_is_on_the_options_page(pages):
    from saliency_audit.plugin import options

    page = pages["reference/options.md"]
    for name, short, _ in options._options():
        assert f"`{name}" in page and (short is None or f"`{short}`" in page), name


def test_every_setting_is_on_the_configuration_page(pages):
    from saliency_audit.config import AuditConfig, leaves

    page = pages["reference/configuration.md"]
    for key, _ in leaves(AuditConfig()):
        section, _, name = key.rpartition(".")
        table = "tool.saliency_audit" + (f".{section}" if section else "")
        part = page.split(f"## `[{table}]`", 1)[1].split("\n## ", 1)[0]
        assert f"| `{name}` |" in part, key
    # a reason of the module docstring is linked from the settings it names
    assert "| `min_ap` | `0.1` |" in page and re.search(r"\| `min_ap` .*\[why\]\(#why-\d+\)", page)


def test_every_command_is_on_the_cli_page(pages):
    import argparse

    from saliency_audit.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    page = pages["reference/cli.md"]
    for name, parser in sub.choices.items():
        assert f"\n## {name}\n" in page, name
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in ("-h", "--help") or f"`{flag}`" in page, (name, flag)


def test_every_schema_field_is_on_the_evidence_page(pages):
    import json

    schema = json.loads((ROOT / "saliency_audit" / "schemas" / "evidence-1.json").read_text())
    page = pages["reference/evidence.md"]
    for name in [*schema["properties"], *schema["$defs"]["result"]["properties"]]:
        assert f"| `{name}` |" in page, name


def test_readme_sections_the_site_includes_link_nothing_outside_the_site():
    """A part of the README that a docs page includes (``--8<-- "README.md:NAME"``) is read from inside
    docs/, where the README's ``docs/page.md`` links break (``mkdocs build --strict`` fails in CI after the
    whole suite): such parts link nothing relative."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    included = set()
    for page in (ROOT / "docs").rglob("*.md"):
        included |= set(re.findall(r'--8<-- "README\.md:([\w-]+)"', page.read_text(encoding="utf-8")))
    assert included
    for name in sorted(included):
        part = re.search(rf"\[start:{name}\]\s*-->(.*?)<!-- --8<-- \[end:{name}\]", readme, re.S)
        assert part, f"README.md has no section {name}"
        relative = [link for link in re.findall(r"\]\(([^)]+)\)", part.group(1)) if not re.match(r"https?:|#", link)]
        assert not relative, f"README section {name} links {relative}: the docs page that includes it cannot"


def test_ci_runs_the_readmes_test_command_as_written():
    """CI proves the README: the suite's quickstart command is, from its ``pip install`` on, the line
    ``.ci/run`` runs (a change to one that the other lacks fails here, not in a user's first minute)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("[start:quickstart-suite]", 1)[1].split("[end:quickstart-suite]", 1)[0]
    (command,) = [line.strip() for line in section.splitlines() if line.startswith("    ") and "pip install" in line]
    tail = command[command.index(". .venv/bin/activate"):]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if not line.startswith("#")]
    assert tail in ci, f".ci/run does not run the README's test command: {tail}"
