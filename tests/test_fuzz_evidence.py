"""Hypothesis: the evidence readers (validate, diff, merge, report, the gate) given a valid small evidence file
mutated anywhere -- NaN, wrong types, missing keys, huge numbers, control characters in names -- answer with
their one-line errors (AuditError) or problem lines, never another exception.  CI budget: tests/fuzzing.py."""
from __future__ import annotations

import copy
import json
import math

from hypothesis import given
from hypothesis import strategies as st

from saliency_audit.common.errors import AuditError
from saliency_audit.evidence import SCHEMA
from saliency_audit.report.gate import gate_of
from saliency_audit.evidence.schema import load, problems

from .fuzzing import FUZZ

IDS = ["img0", "img1", "img2", "img3"]


def _result(method: str) -> dict:
    return {"criterion": "utility", "method": method, "model": "primary", "verdict": "pass", "statistic": "mean(x)",
            "value": 0.2, "ci": [0.1, 0.3], "ci_level": 0.9, "threshold": 0.0, "bound": 0.1, "n": 4,
            "per_image": [{"id": i, "score": 0.2, "statistic": 0.1 * k} for k, i in enumerate(IDS)], "curve": [],
            "explanation": "", "baselines": [], "details": {"alpha": 0.05, "sequential": {"looks": [{"n": 4}]}},
            "p_value": 0.01}


def valid(index: int = 1, methods=("grad",), planned=("test_utility[grad]", "test_utility[ig]")) -> dict:
    return {"schema": SCHEMA,
            "run": {"started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00", "seed": 0,
                    "status": "complete", "exit_status": 0, "versions": {"saliency_audit": "0.1.0"},
                    "shard": {"index": index, "of": 2, "pairs": [f"test_utility[{m}]" for m in methods],
                              "planned": list(planned)}},
            "config": {"seed": 0, "n_images": 4}, "models": [{"role": "primary", "spec": "demo", "sha256": "ab" * 32}],
            "dataset": {"name": "demo", "n_images": 4, "eval_size": [128, 128], "manifest_sha256": "cd" * 32},
            "results": [_result(m) for m in methods], "samples": {}}


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


ODD = st.one_of(
    st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.just(10 ** 400), st.just(-(2 ** 70)),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(), st.none(),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2030), max_size=12),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just("\n\x00\u2028name"), st.just({}), st.just([]))


@st.composite
def mutated(draw, base=None):
    ev = copy.deepcopy(base or valid())
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(ev) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = ev
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)  # a missing key
        else:
            parent[path[-1]] = draw(ODD)
    return ev


def _only_audit_errors(fn, *args):
    try:
        return fn(*args)
    except AuditError as exc:
        assert "\n" not in str(exc)
        return None


@FUZZ
@given(ev=mutated())
def test_validate_and_the_gate_never_raise(ev):
    found = problems(ev)
    assert all(isinstance(p, str) for p in found)
    outcome, text = gate_of(ev)
    assert outcome in ("pass", "fail", "none") and isinstance(text, str)
    run = ev.get("run") if isinstance(ev.get("run"), dict) else {}
    if run.get("status") not in (None, "complete") or run.get("error") or run.get("startup_error"):
        assert outcome == "fail" and text.startswith("NOT"), text  # never a pass when the run did not finish


@FUZZ
@given(ev=mutated())
def test_a_mutated_file_reads_as_evidence_or_one_line(tmp_path_factory, ev):
    path = tmp_path_factory.mktemp("f") / "evidence.json"
    path.write_text(json.dumps(ev, default=str))  # NaN/Infinity tokens, 400-digit integers
    data, found = load(path)
    assert (data is None) == bool(found and found[0].startswith("(file)"))
    assert all("\n" not in p for p in found)


@FUZZ
@given(ev=mutated(valid(1, ("grad",))))
def test_merge_of_a_mutated_shard_is_one_line_or_a_merge(ev):
    from saliency_audit.evidence.merge import merge_shards

    merged = _only_audit_errors(merge_shards, [ev, valid(2, ("ig",))], ["a.json", "b.json"])
    if merged is not None:
        assert problems(merged) == [] or merged["run"].get("status") != "complete"


@FUZZ
@given(ev=mutated())
def test_diff_of_accepted_evidence_never_raises(tmp_path_factory, ev):
    from saliency_audit.decisions.comparison import compare

    if problems(ev):
        return  # diff reads through schema.load: a file with problems is refused in one line
    _only_audit_errors(compare, valid(), ev)


@FUZZ
@given(ev=mutated())
def test_report_of_accepted_evidence_never_raises(tmp_path_factory, ev):
    from saliency_audit.report.html import write_html

    if problems(ev):
        return
    _only_audit_errors(write_html, ev, tmp_path_factory.mktemp("r") / "r.html")
