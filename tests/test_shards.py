"""CI matrices: ``--audit-shard I/N`` splits the (test, method) pairs; ``saliency-audit merge`` joins the shards."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from saliency_audit.cli import main as cli
from saliency_audit.common.errors import AuditUsageError
from saliency_audit.evidence.merge import merge_shards, parse_shard, shard_of

pytest_plugins = ["pytester"]
AUDITS = Path(__file__).resolve().parents[1] / "audits"


def test_shards_partition_the_pairs_evenly_and_deterministically():
    pairs = {(t, m) for t in ("test_utility", "test_energy", "test_randomization")
             for m in ("grad", "sg", "ig", "gradcam", "xrai")}
    shards = [shard_of(pairs, i, 4) for i in range(1, 5)]
    assert set().union(*shards) == pairs and sum(map(len, shards)) == len(pairs)
    assert {len(s) for s in shards} <= {3, 4}
    assert shards == [shard_of(set(sorted(pairs, reverse=True)), i, 4) for i in range(1, 5)]
    for text in ("0/2", "3/2", "a/b", "1"):
        with pytest.raises(AuditUsageError, match=f"--audit-shard={text}"):
            parse_shard(text)
    assert parse_shard("2/3") == (2, 3)


def _load(path):
    return json.loads(Path(path).read_text())


REFUSALS = [
    ("config", lambda d: d["config"].update(n_images=99), "config n_images differs"),
    ("model", lambda d: next(m for m in d["models"] if m["role"] == "primary").update(sha256="0" * 64),
     "model primary differs"),
    ("data", lambda d: d["dataset"].update(name="siim"), "dataset name differs"),
    ("code", lambda d: d["run"]["versions"].update(torch="0.0"), "version of torch differs"),
    ("plain", lambda d: d["run"].pop("shard"), "not a shard"),
]


def test_shards_run_their_share_and_merge_into_the_unsharded_audit(pytester, tmp_path, capsys):
    """The utility audit of three methods, unsharded and as shards 1/2 and 2/2: the merged shards are the
    unsharded audit; shards of another audit, a missing and a doubled shard are refused."""
    shutil.copy(AUDITS / "test_utility.py", pytester.path / "test_utility.py")
    runs = {}
    for name, extra in (("all", []), ("s1", ["--audit-shard=1/2"]), ("s2", ["--audit-shard=2/2"])):
        result = pytester.runpytest("--methods=grad,gradcam,gbp", "--no-controls", "--n-images=8", f"--audit-report={name}",
                                    "-p", "no:cacheprovider", *extra)
        assert result.ret in (0, 1)
        runs[name] = pytester.path / name / "evidence.json"
    s1, s2, whole = (_load(runs[k]) for k in ("s1", "s2", "all"))
    assert s1["run"]["shard"]["of"] == 2 and len(s1["results"]) + len(s2["results"]) == 3
    assert {r["method"] for r in s1["results"]}.isdisjoint({r["method"] for r in s2["results"]})
    assert cli(["merge", str(runs["s1"]), str(runs["s2"]), "-o", str(tmp_path / "m")]) == 0
    merged = _load(tmp_path / "m" / "evidence.json")
    key = lambda r: (r["criterion"], r["method"], r["verdict"], r["value"], r["bound"])  # noqa: E731
    assert sorted(map(key, merged["results"])) == sorted(map(key, whole["results"]))
    assert merged["run"]["status"] == "complete" and [s["index"] for s in merged["run"]["shards"]] == [1, 2]
    assert (tmp_path / "m" / "saliency-audit.html").is_file()
    capsys.readouterr()
    for name, edit, needle in REFUSALS:
        data = copy.deepcopy(s2)
        edit(data)
        other = tmp_path / f"{name}.json"
        other.write_text(json.dumps(data))
        assert cli(["merge", str(runs["s1"]), str(other), "-o", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert needle in err and str(other) in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / name).exists()
    with pytest.raises(AuditUsageError, match="shard\\(s\\) 2/2 missing"):
        merge_shards([s1], ["a.json"])
    with pytest.raises(AuditUsageError, match="b.json: shard 1/2 is also a.json"):
        merge_shards([s1, copy.deepcopy(s1)], ["a.json", "b.json"])
