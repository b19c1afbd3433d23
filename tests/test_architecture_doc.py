"""docs/architecture.md's worked examples run as written: a method, a criterion and a dataset registered from
outside the package, then audited, planned, reported and schema-valid.  Also: no file of the project cites a
document outside the repository."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from saliency_audit.common import extensions

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def examples() -> dict[str, str]:
    """name -> code of each ```python block of the doc that starts with '# example: NAME'."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return {m.group(1): b for b in blocks if (m := re.match(r"# example: (\w+)\n", b))}


@pytest.fixture
def doc_module(tmp_path):
    """The doc's three examples as one importable module (its functions are named by "module:attribute")."""
    code = examples()
    assert list(code) == ["method", "criterion", "dataset"]
    (tmp_path / "architecture_examples.py").write_text("\n\n".join(code.values()))
    sys.path.insert(0, str(tmp_path))
    extensions.reset()
    try:
        yield importlib.import_module("architecture_examples")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("architecture_examples", None)
        extensions.reset()


def test_the_worked_examples_register_and_audit(doc_module, tmp_path):
    from saliency_audit import Audit, AuditConfig
    from saliency_audit.common.criteria_registry import CRITERIA
    from saliency_audit.data.registry import DATASETS
    from saliency_audit.evidence.schema import problems
    from saliency_audit.methods import METHODS
    from saliency_audit.report.html import render

    assert "gradmag" in METHODS and "peak_share" in CRITERIA and "tiny_demo" in DATASETS
    cfg = AuditConfig(n_images=8, sequential=False, cache_dir=str(tmp_path / "cache"))
    cfg.stats.resamples = 500
    with pytest.raises(extensions.AuditUsageError, match="peak_share.min_share must be in"):
        cfg.merged({"peak_share": {"min_share": 2.0}}, "test")
    audit = Audit(model="demo", dataset="tiny_demo", methods=["gradmag", "random"], config=cfg)
    plan = audit.make_plan([("peak_share", "gradmag"), ("utility", "gradmag")])
    assert plan["per_pair"]["peak_share[gradmag]"] > 0 and "not_estimated" not in plan
    ours = audit.run("peak_share", "gradmag")
    noise = audit.run("peak_share", "random")  # a map of noise spreads its mass: the criterion can fail
    assert ours.verdict == "pass" and ours.n == 8, ours.explain()
    assert noise.verdict == "fail", noise.explain()
    assert audit.run("utility", "gradmag").verdict in ("pass", "fail")
    evidence = audit.evidence(finished=True)
    assert problems(evidence) == [] and evidence["dataset"]["name"] == "tiny_demo"
    assert '<section id="peak_share"><h2>Peak share</h2>' in render(evidence)


def test_no_file_cites_a_document_outside_the_repository():
    cited = []
    for path in [*ROOT.glob("saliency_audit/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py"),
                 *ROOT.glob("docs/**/*.md"), ROOT / "README.md", ROOT / "pyproject.toml",
                 ROOT / "mkdocs.yml", ROOT / "docs" / "gen_reference.py"]:
        if path == Path(__file__):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"DESIGN\.md|\.\./shared/", line):
                cited.append(f"{path.relative_to(ROOT)}:{n}")
    assert not cited, cited
