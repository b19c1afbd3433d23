"""Issue 29: evidence that stays trustworthy when its inputs are not.

A run marks its evidence ``running`` before the first test (a crash never leaves the last run's ``complete``);
the writer turns a non-finite number or a self-contradicting result into a ``failed`` run naming the JSON path
instead of raising through every test; ``validate`` checks every verdict against its numbers; ``merge``
refuses shards that do not cover the planned selection exactly once; the evidence readers refuse NaN tokens,
deep nesting and oversized thumbnails in one line.
"""
from __future__ import annotations

import base64
import copy
import json
import math
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from saliency_audit.cli import main as cli
from saliency_audit.common.errors import AuditError, AuditInputError, AuditUsageError
from saliency_audit.evidence.check import contradictions, guard
from saliency_audit.evidence import SCHEMA, write_json, write_json_encoded
from saliency_audit.report.gate import gate_of
from saliency_audit.evidence.schema import load, problems

pytest_plugins = ["pytester"]
AUDITS = Path(__file__).resolve().parent.parent / "audits"
IDS = [f"img{i}" for i in range(4)]


def result(method="grad", verdict="pass", bound=0.1, threshold=0.0, criterion="utility", n=4, control=None):
    r = {"criterion": criterion, "method": method, "model": "primary", "verdict": verdict, "statistic": "mean(x)",
         "value": bound + 0.1, "ci": [bound, bound + 0.2], "threshold": threshold, "bound": bound, "n": n,
         "per_image": [{"id": i, "score": 0.2} for i in IDS], "curve": [], "explanation": "", "details": {}}
    if control:
        r["details"]["control"] = control
    return r


def evidence(*results, status="complete") -> dict:
    return {"schema": SCHEMA, "run": {"started": "2026-01-01T00:00:00+00:00", "finished": None, "seed": 0,
                                      "status": status},
            "config": {"seed": 0, "clip_percentile": 99.5}, "models": [{"role": "primary", "spec": "demo", "sha256": "ab" * 32}],
            "dataset": {"name": "demo", "n_images": 4}, "results": list(results) or [result()], "samples": {}}


# -- 1. never stale ------------------------------------------------------------------------------------------
CRASH = '''
import os

from saliency_audit.criteria.result import CriterionResult


class NaNResult(CriterionResult):
    def to_dict(self):
        d = super().to_dict()
        d["value"] = float("nan")  # a NaN from anywhere: the writer must not fail the run over it
        return d


def test_first(audit):
    if os.environ.get("CRASH_BEFORE"):
        os._exit(3)  # the process dies without a word: no hook runs after this
    cls = NaNResult if os.environ.get("NAN_RESULT") else CriterionResult
    audit.add_result(cls("utility", "grad", "pass", value=0.1, bound=0.05, threshold=0.0))


def test_second(audit):
    audit.add_result(CriterionResult("utility", "ig", "pass", value=0.1, bound=0.05, threshold=0.0))
'''


def _ev(pytester) -> dict:
    return json.loads((pytester.path / "rep" / "evidence.json").read_text())


def test_a_crash_before_the_first_result_leaves_running_not_the_last_runs_complete(pytester, monkeypatch):
    pytester.makepyfile(test_crash=CRASH)
    args = ["-p", "no:cacheprovider", "--audit-report=rep"]
    assert pytester.runpytest(*args).ret == 0  # in-process: only the crash needs a process of its own
    assert _ev(pytester)["run"]["status"] == "complete"  # the last run's PASSED evidence
    monkeypatch.setenv("CRASH_BEFORE", "1")
    crashed = pytester.runpytest_subprocess(*args)
    assert crashed.ret == 3
    ev = _ev(pytester)
    assert ev["run"]["status"] == "running" and ev["results"] == [] and problems(ev) == []
    outcome, text = gate_of(ev)
    assert outcome == "fail" and text.startswith("NOT COMPLETE — the run is running")
    page = (pytester.path / "rep" / "saliency-audit.html").read_text()
    assert "INCOMPLETE RUN" in page and "NOT COMPLETE" in page


def test_a_nan_in_a_result_fails_the_run_naming_its_path_and_loses_nothing(pytester, monkeypatch):
    pytester.makepyfile(test_nan=CRASH)
    monkeypatch.setenv("NAN_RESULT", "1")
    # a process of its own: the suite's schema guard (tests/conftest.py) would refuse the NaN the writer is handed
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--audit-report=rep")
    out = run.stdout.str() + run.stderr.str()
    assert "Out of range float" not in out and "Traceback" not in out and "INTERNALERROR" not in out
    ev = _ev(pytester)
    assert ev["run"]["status"] == "failed" and "results[0].value is nan" in ev["run"]["error"]
    assert [r["method"] for r in ev["results"]] == ["grad", "ig"] and ev["results"][0]["value"] is None
    assert "gate: NOT COMPLETE — the run is failed" in out and "results[0].value is nan" in out
    assert problems(ev) == []


def test_a_nan_in_a_maps_json_replaces_the_last_runs_evidence_with_a_failed_start(pytester):
    """The finding as reported: a maps folder whose maps.json says ``clip_percentile: NaN``.  The run stops at
    start-up with one line naming the file, and the previous run's complete evidence is replaced by a failed
    one, which the gate reads as NOT RUN."""
    import numpy as np

    maps = pytester.mkdir("vendor")
    np.save(maps / "x.npy", np.ones((4, 4), dtype=np.float32))
    (maps / "maps.json").write_text('{"params": {"postprocess": {"clip_percentile": NaN}}}')
    rep = pytester.mkdir("rep")
    (rep / "evidence.json").write_text(json.dumps({"schema": SCHEMA, "run": {"status": "complete"}, "results": []}))
    pytester.makepyfile("def test_utility(method):\n    pass\n")
    run = pytester.runpytest(f"--maps=vendor={maps}", "--audit-report=rep")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    run.stderr.fnmatch_lines([f"*{maps / 'maps.json'}: not valid JSON*"])
    ev = _ev(pytester)
    assert ev["run"]["status"] == "failed" and "maps.json" in ev["run"]["startup_error"]
    outcome, text = gate_of(ev)
    assert outcome == "fail" and text.startswith("NOT RUN")


def test_the_writer_replaces_non_finite_evidence_with_a_failed_run(tmp_path):
    ev = evidence()
    ev["config"]["clip_percentile"] = float("nan")  # e.g. from a maps.json or a config file
    write_json(tmp_path / "e.json", ev)
    got = json.loads((tmp_path / "e.json").read_text())
    assert got["run"]["status"] == "failed" and got["config"]["clip_percentile"] is None
    assert "config.clip_percentile is nan" in got["run"]["error"] and "\n" not in got["run"]["error"]
    assert gate_of(got)[1].startswith("NOT COMPLETE — the run is failed")
    with pytest.raises(AuditInputError, match=r"x\.json: not written: a\[1\] is inf"):
        write_json(tmp_path / "x.json", {"a": [1.0, math.inf]})  # not evidence: one line, naming the path


def test_the_writer_flags_a_result_that_contradicts_its_numbers(tmp_path):
    ev = evidence(result(bound=-0.1, threshold=0.0))
    write_json(tmp_path / "e.json", ev)
    got = json.loads((tmp_path / "e.json").read_text())
    assert got["run"]["status"] == "failed" and "results[0].verdict" in got["run"]["error"]
    assert got["results"][0]["verdict"] == "error" and problems(got) == []
    assert ev["results"][0]["verdict"] == "pass"  # the caller's dict is left as it was


def test_running_evidence_with_results_encoded_once_is_the_same_bytes(tmp_path, monkeypatch):
    """The run rewrites its evidence after every result with each result encoded once: the bytes write_json
    writes; a result or another part with a non-finite number, or a contradiction, takes the guard's path."""
    import saliency_audit.evidence as ev_module

    monkeypatch.setattr(ev_module, "write_json", write_json)  # its guard's path: the bad evidence is on purpose

    ev = evidence(result(), result("random", "fail"))
    texts = [json.dumps(r, allow_nan=False) for r in ev["results"]]
    want = write_json(tmp_path / "plain.json", ev, indent=None)
    assert write_json_encoded(tmp_path / "encoded.json", ev, texts) == want
    assert (tmp_path / "encoded.json").read_bytes() == (tmp_path / "plain.json").read_bytes()
    for edit, encoded in ((lambda e: e["results"][1].update(value=math.nan), [texts[0], None]),
                          (lambda e: e["config"].update(x=math.inf), texts),
                          (lambda e: e["results"][0].update(bound=-0.5), texts)):
        bad = json.loads(json.dumps(ev))
        edit(bad)
        write_json_encoded(tmp_path / "bad.json", bad, encoded)
        write_json(tmp_path / "guarded.json", bad, indent=None)
        got = json.loads((tmp_path / "bad.json").read_text())
        assert got["run"]["status"] == "failed" and got == json.loads((tmp_path / "guarded.json").read_text())


# -- 2. self-consistent ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("edit,needle", [
    (lambda e: e["results"][0].update(bound=-0.01), "results[0].verdict: utility[grad] is 'pass' but its bound -0.01 is below"),
    (lambda e: e["results"][0].update(bound=-1e-9), "(> needed)"),  # utility is strict
    (lambda e: e["results"][0].update(n=-1), "results[0].n: -1"),
    (lambda e: e["results"][0].update(ci=[0.3, 0.1]), "results[0].ci: lower end"),
    (lambda e: e["results"].append(result("random", "fail", control={"role": "negative", "expected": "fail",
                                                                      "met": False, "note": ""})),
     "results[1].details.control.met: False"),
    (lambda e: e["run"].update(exit_status=2), "run.status: 'complete', but pytest's exit status 2"),
    (lambda e: e["run"].update(startup_error="boom"), "run.status: 'complete', but the run stopped at start-up"),
    (lambda e: e["config"].update(x=float("inf")), "config.x is inf"),
])
def test_validate_refuses_evidence_that_contradicts_itself(tmp_path, capsys, edit, needle):
    ev = evidence()
    assert contradictions(ev) == [] and problems(ev) == []
    edit(ev)
    assert any(needle in p for p in problems(ev)), problems(ev)
    path = tmp_path / "e.json"
    path.write_text(json.dumps(ev))  # allow_nan: a NaN/Infinity token
    assert cli(["validate", str(path)]) in (1, 2)
    err = capsys.readouterr().err
    assert err.strip() and all(line.startswith(f"{path}: ") for line in err.strip().splitlines())


def test_a_consistent_control_and_a_strictly_passing_bound_are_valid():
    ok = evidence(result(), result("random", "fail", control={"role": "negative", "expected": "fail", "met": True,
                                                              "note": ""}),
                  result("edge", "pass", bound=0.6, threshold=0.6, criterion="consistency"))  # >= at equality
    assert problems(ok) == [] and guard(ok) is ok


def test_nan_tokens_and_deep_nesting_are_one_line(tmp_path, capsys):
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(evidence()).replace("99.5", "NaN"))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for path, needle in ((nan, "NaN is not a number JSON allows"), (deep, "nested 100000 deep")):
        data, found = load(path)
        assert data is None and len(found) == 1 and needle in found[0], found
        assert cli(["validate", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0]
        with pytest.raises(AuditUsageError, match=needle):
            from saliency_audit.evidence.schema import read_baseline

            read_baseline(path)


# -- 3. merge ----------------------------------------------------------------------------------------------------
def _run_shards(pytester, selections) -> list[Path]:
    shutil.copy(AUDITS / "test_utility.py", pytester.path / "test_utility.py")
    out = []
    for i, k in enumerate(selections, 1):
        ret = pytester.runpytest("--methods=grad,gradcam", "--no-controls", "--n-images=8", f"--audit-report=s{i}",
                                 "-p", "no:cacheprovider", "-k", k, f"--audit-shard={i}/{len(selections)}").ret
        assert ret in (0, 1, 5)
        out.append(pytester.path / f"s{i}" / "evidence.json")
    return out


def test_merge_refuses_shards_of_different_selections_naming_the_pair(pytester, tmp_path, capsys):
    s1, s2 = _run_shards(pytester, ["utility and gradcam", "utility"])
    a, b = (json.loads(p.read_text()) for p in (s1, s2))
    assert b["run"]["shard"]["planned"] == ["test_utility[grad]", "test_utility[gradcam]"]
    capsys.readouterr()
    assert cli(["merge", str(s1), str(s2), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "utility[grad]" in err[0] and not (tmp_path / "m").exists(), err

    from saliency_audit.evidence.merge import merge_shards

    # shards written before "planned" was recorded: the overlap is named
    old = [copy.deepcopy(a), copy.deepcopy(b)]
    for e in old:
        del e["run"]["shard"]["planned"]
    with pytest.raises(AuditUsageError, match=r"test_utility\[gradcam\] is also audited by s1"):
        merge_shards(old, ["s1", "s2"])
    # a gap: both planned the same pairs, but one shard's pair is missing
    gap = [copy.deepcopy(a), copy.deepcopy(b)]
    gap[0]["run"]["shard"]["planned"] = gap[1]["run"]["shard"]["planned"]
    gap[1]["run"]["shard"]["pairs"] = []
    gap[1]["results"] = []
    with pytest.raises(AuditUsageError, match=r"merge: test_utility\[grad\] planned but audited by no shard"):
        merge_shards(gap, ["s1", "s2"])
    # every pair once, but not each shard's own share (shards of different splits)
    swapped = [copy.deepcopy(gap[0]), copy.deepcopy(b)]
    swapped[1]["run"]["shard"]["pairs"] = ["test_utility[grad]"]
    swapped[1]["results"] = [r for r in swapped[1]["results"] if r["method"] == "grad"]
    swapped[0]["run"]["shard"]["pairs"], swapped[1]["run"]["shard"]["pairs"] = (["test_utility[gradcam]"],
                                                                                 ["test_utility[grad]"])
    with pytest.raises(AuditUsageError, match=r"s1: holds test_utility\[grad\], test_utility\[gradcam\] against its share"):
        merge_shards(swapped, ["s1", "s2"])
    # evaluation sizes that differ
    other = copy.deepcopy(b)  # checked before the pairs: the evaluation itself must be the same
    other["dataset"]["eval_size"] = [64, 64]
    with pytest.raises(AuditUsageError, match="dataset eval_size differs"):
        merge_shards([a, other], ["s1", "s2"])
    other["dataset"]["eval_size"] = a["dataset"]["eval_size"]
    other["results"][0]["per_image"][0]["id"] = "someone-else"
    with pytest.raises(AuditUsageError, match="utility was evaluated on different images"):
        merge_shards([a, other], ["s1", "s2"])


# -- 4. thumbnails ----------------------------------------------------------------------------------------------
def _png_header(width: int, height: int) -> str:
    """A PNG that claims ``width`` x ``height`` pixels in a few bytes (what a decompression bomb looks like)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1) * 4)) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode("ascii")


def test_oversized_thumbnails_are_left_out_with_one_line(tmp_path, capsys):
    from saliency_audit.common import thumbs
    from saliency_audit.report import figures
    from saliency_audit.report.html import write_html

    bomb = _png_header(12_000, 12_000)
    with pytest.raises(AuditInputError, match="12000 x 12000 pixels"):
        thumbs.decode(bomb)
    assert figures.decode(bomb) is None
    assert figures.decode(thumbs.encode(__import__("numpy").zeros((8, 8)))) is not None
    ev = evidence()
    ev["samples"] = {i: {"image": bomb, "truth": bomb} for i in IDS}
    ev["results"][0]["details"]["thumbnails"] = {i: bomb for i in IDS}
    write_html(ev, tmp_path / "r.html")
    err = capsys.readouterr().err
    assert err.count("12000 x 12000") == 1 and "saliency-audit: note:" in err
