"""The evidence file's JSON Schema: what the audit writes validates, and what breaks it is named by its path."""
from __future__ import annotations

import copy
import json

import pytest

from saliency_audit import Audit, AuditConfig
from saliency_audit.cli import main
from saliency_audit.evidence.schema import problems, schema


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A small real audit's evidence, as written to disk (a control and a method, two criteria)."""
    tmp = tmp_path_factory.mktemp("schema")
    cfg = AuditConfig(cache_dir=str(tmp / "cache"))
    cfg.n_images = cfg.randomization.n_images = 8
    audit = Audit(model="demo", methods=["grad", "random"], config=cfg, report_dir=tmp / "rep")
    for m in ("grad", "random"):
        audit.utility(m)
        audit.randomization(m)
    return audit.write_evidence(finished=True)


def test_the_written_evidence_is_valid_and_the_cli_says_so(written, capsys):
    data = json.loads(written.read_text())
    assert problems(data) == []
    assert any("control" in r["details"] for r in data["results"])  # the control's record is covered too
    assert main(["validate", str(written)]) == 0
    assert "valid (saliency-audit/evidence@1, 4 results)" in capsys.readouterr().out


def test_a_missing_verdict_is_named_by_its_path(written, tmp_path, capsys):
    data = json.loads(written.read_text())
    del data["results"][0]["verdict"]
    bad = tmp_path / "evidence.json"
    bad.write_text(json.dumps(data))
    assert problems(data) == ["results[0].verdict: missing (required)"]
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{bad}: results[0].verdict: missing (required)"]


@pytest.mark.parametrize("edit,path", [
    (lambda d: d["results"][1].update(verdict="maybe"), "results[1].verdict"),
    (lambda d: d["results"][0].update(n="24"), "results[0].n"),
    (lambda d: d["run"].update(status="paused"), "run.status"),
    (lambda d: d["results"][0]["ci"].append(0.5), "results[0].ci"),
    (lambda d: d.pop("models"), "models"),
])
def test_each_broken_field_is_one_line_naming_it(written, edit, path):
    data = copy.deepcopy(json.loads(written.read_text()))
    edit(data)
    found = problems(data)
    assert len(found) == 1 and found[0].startswith(path + ":"), found


def test_added_fields_stay_version_1(written):
    data = json.loads(written.read_text())
    data["results"][0]["details"]["something_new"] = {"x": 1}
    data["run"]["new_field"] = 3
    data["new_section"] = []
    assert problems(data) == []


@pytest.mark.parametrize("tag,says", [("saliency-audit/evidence@2", "a newer, breaking version"),
                                      ("saliency-audit/evidence@0", "an older version"),
                                      ("something-else", "is not a saliency-audit evidence version")])
def test_a_version_mismatch_is_named(written, tag, says):
    data = json.loads(written.read_text())
    data["schema"] = tag
    found = problems(data)
    assert len(found) == 1 and found[0].startswith("schema:") and says in found[0]
    if "@" in tag:
        assert tag in found[0] and "saliency-audit/evidence@1" in found[0]


def test_unreadable_files_exit_2(tmp_path, capsys):
    (tmp_path / "x.json").write_text("{not json")
    assert main(["validate", str(tmp_path / "x.json"), str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "x.json: (file): cannot read as JSON" in err and "missing.json: (file): no such file" in err


def test_the_schema_ships_with_the_package():
    from importlib import resources

    assert resources.files("saliency_audit").joinpath("schemas/evidence-1.json").is_file()
    assert schema()["properties"]["schema"]["const"] == "saliency-audit/evidence@1"
