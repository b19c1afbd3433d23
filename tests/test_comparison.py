"""Release-to-release comparison (``saliency-audit diff``): what got worse, with a bound, and nothing else.

Synthetic evidence with known per-image values: a real drop is flagged, noise is not (the family-wise rate
of a false flag measured over many seeds), and every way a pair cannot be compared is named.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saliency_audit.cli import main
from saliency_audit.decisions.comparison import compare, lost, regressions
from saliency_audit.report.comparison import section
from saliency_audit.evidence.schema import problems
from saliency_audit.stats import bootstrap_mean

pytest_plugins = ["pytester"]
IDS = [f"img{i:03d}" for i in range(40)]


def result(criterion, method, values, ids=IDS, *, verdict="pass", threshold=0.0, statistics=True, control=None,
           statistic="mean(x - prior)", alpha=0.05):
    """A result dict as the criteria write it; ``statistics``: per-image terms of the mean, or not (old files)."""
    x = np.asarray(values, dtype=float)
    b = bootstrap_mean(x, alpha=alpha, resamples=200, seed=1)
    per_image = [{"id": i, "score": float(v), **({"statistic": float(v)} if statistics else {})}
                 for i, v in zip(ids, x)]
    details = {"alpha": alpha}
    if control:
        details["control"] = {"role": "negative", "expected": "fail", "met": verdict == "fail", "note": ""}
    decided = verdict in ("pass", "fail")
    return {"criterion": criterion, "method": method, "model": "primary", "verdict": verdict,
            "statistic": statistic, "value": b.mean if decided else None, "ci": [b.lo, b.hi] if decided else [None, None],
            "ci_level": round(1 - 2 * alpha, 6), "threshold": threshold, "bound": b.lo if decided else None,
            "n": len(x), "per_image": per_image if decided else [], "curve": [], "explanation": "", "details": details}


def evidence(results, *, spec="demo", sha="ab" * 32, manifest="cd" * 32, seed=0, started="2025-01-02T03:04:05+00:00"):
    return {"schema": "saliency-audit/evidence@1",
            "run": {"started": started, "finished": None, "seed": seed, "status": "complete"},
            "config": {"seed": seed}, "models": [{"role": "primary", "spec": spec, "sha256": sha}],
            "dataset": {"name": "demo", "n_images": len(IDS), "manifest_sha256": manifest}, "results": results}


def base(rng, n=len(IDS)):
    """Per-image 'true' values of three methods: the images differ a lot, a re-run adds a little noise."""
    return {m: rng.uniform(0.0, 1.0, n) for m in ("grad", "gradcam", "ig")}


def run(truth, rng, *, shift=None, noise=0.05, **kw):
    shift = shift or {}
    return evidence([result("utility", m, v + shift.get(m, 0.0) + rng.normal(0, noise, v.size)) for m, v in truth.items()],
                    **kw)


def rows(c):
    return {r["method"]: r for r in c["rows"]}


def test_synthetic_evidence_is_valid():
    rng = np.random.default_rng(0)
    e = run(base(rng), rng)
    e["results"] += [result("utility", "edge", rng.normal(0, 0.1, 40), verdict="fail", control=True),
                     result("randomization", "grad", [], verdict="error")]
    assert problems(e) == []


def test_identical_runs_are_unchanged_with_a_zero_delta():
    rng = np.random.default_rng(1)
    e = run(base(rng), rng)
    c = compare(e, copy.deepcopy(e))
    assert [r["flag"] for r in c["rows"]] == ["unchanged"] * 3
    for r in c["rows"]:
        assert r["paired"] and r["n_paired"] == 40 and r["test"] == "paired"
        assert r["delta"] == 0.0 and r["ci"] == [0.0, 0.0] and r["p_worse"] == r["p_better"] == 1.0
        assert r["verdict_change"] is None
    assert c["summary"] == {"worse": 0, "better": 0, "unchanged": 3, "controls": 0, "paired": 3, "not_compared": 0,
                            "lost": 0}
    assert regressions(c) == []
    json.dumps(c, allow_nan=False)  # JSON-ready


def test_a_clear_drop_in_one_pair_is_worse_and_the_others_unchanged():
    rng = np.random.default_rng(2)
    truth = base(rng)
    old = run(truth, rng)
    new = run(truth, rng, shift={"gradcam": -0.1})
    c = compare(old, new)
    r = rows(c)
    assert r["gradcam"]["flag"] == "worse" and r["grad"]["flag"] == r["ig"]["flag"] == "unchanged"
    g = r["gradcam"]
    assert g["delta"] == pytest.approx(-0.1, abs=0.03)
    assert g["ci"][0] < g["delta"] < g["ci"][1] < 0  # the interval bounds the drop away from 0
    assert g["p_worse"] < 0.001 and g["p_better"] > 0.999 and g["p_worse_adjusted"] <= 3 * g["p_worse"]
    assert g["delta"] == pytest.approx(g["new_value"] - g["old_value"], abs=1e-12)  # all images paired
    assert [x["method"] for x in regressions(c)] == ["gradcam"]
    # the same drop the other way round is an improvement
    back = rows(compare(new, old))["gradcam"]
    assert back["flag"] == "better" and back["delta"] == pytest.approx(-g["delta"])


def test_noise_alone_rarely_flags_anything():
    """Same per-image values, independent noise per run, many seeds: the family-wise rate of a false "worse"
    stays near alpha (3 pairs per family, Holm, 40 images; the paired t-test).  Over 300 seeds: 3.3 % of the
    families with a false "worse", 9.3 % with any flag, 5.0 % of the pairs' p_worse <= 0.05; these 60 seeds:
    6.7 %, 15 % and 7.2 % (the bounds below leave room for that luck)."""
    reps, worse, any_flag, row_p = 60, 0, 0, []
    for s in range(reps):
        rng = np.random.default_rng(10_000 + s)
        truth = base(rng)
        c = compare(run(truth, rng), run(truth, rng))
        worse += bool(regressions(c))
        any_flag += any(r["flag"] != "unchanged" for r in c["rows"])
        row_p += [r["p_worse"] for r in c["rows"]]
    assert worse / reps <= 0.12  # nominal 0.05
    assert any_flag / reps <= 0.2  # both directions: nominal 0.10
    # the per-pair p-value is close to uniform under no change
    assert 0.02 <= float(np.mean(np.array(row_p) <= 0.05)) <= 0.11
    assert 0.4 <= float(np.median(row_p)) <= 0.6


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-0.08, 0.08))
def test_swapping_the_runs_mirrors_every_row(seed, shift):
    rng = np.random.default_rng(seed)
    truth = base(rng, 20)
    old = run(truth, rng, noise=0.05)
    new = run(truth, rng, shift={"grad": shift}, noise=0.05)
    ab, ba = rows(compare(old, new)), rows(compare(new, old))
    mirror = {"worse": "better", "better": "worse", "unchanged": "unchanged"}
    for m in ab:
        assert ba[m]["delta"] == pytest.approx(-ab[m]["delta"], abs=1e-12)
        assert ba[m]["p_better"] == pytest.approx(ab[m]["p_worse"], abs=1e-3)
        if min(ab[m]["p_worse_adjusted"], ab[m]["p_better_adjusted"]) < 0.049 or \
                max(ab[m]["p_worse_adjusted"], ab[m]["p_better_adjusted"]) > 0.051:  # not at the edge
            assert ba[m]["flag"] == mirror[ab[m]["flag"]]


def test_other_images_are_compared_unpaired_with_welch():
    rng = np.random.default_rng(3)
    old = evidence([result("utility", "grad", rng.uniform(0.2, 0.4, 40))])
    other = [f"new{i}" for i in range(30)]
    new = evidence([result("utility", "grad", rng.uniform(0.0, 0.2, 30), ids=other)])
    r = compare(old, new)["rows"][0]
    assert r["paired"] is False and r["test"] == "welch" and (r["old_n"], r["new_n"]) == (40, 30)
    assert "n_paired" not in r and r["flag"] == "worse" and r["ci"][1] < 0
    assert any("0 common image id" in n for n in r["notes"])
    # against scipy's Welch directly
    from scipy import stats

    x = [p["statistic"] for p in old["results"][0]["per_image"]]
    y = [p["statistic"] for p in new["results"][0]["per_image"]]
    assert r["p_worse"] == pytest.approx(stats.ttest_ind(y, x, equal_var=False, alternative="less").pvalue)


def test_partly_common_images_are_paired_on_the_common_ones():
    rng = np.random.default_rng(4)
    v = rng.uniform(0, 1, 40)
    old = evidence([result("utility", "grad", v)])
    new = evidence([result("utility", "grad", np.r_[v[:30] + 0.001, rng.uniform(0, 1, 5)],
                           ids=IDS[:30] + [f"x{i}" for i in range(5)])])
    r = compare(old, new)["rows"][0]
    assert r["paired"] and r["n_paired"] == 30 and r["delta"] == pytest.approx(0.001)
    assert any("paired on the 30 images" in n for n in r["notes"])


def test_old_evidence_without_per_image_statistics_uses_the_normal_approximation():
    rng = np.random.default_rng(5)
    truth = base(rng)
    old = evidence([result("utility", m, v + rng.normal(0, 0.05, 40), statistics=False) for m, v in truth.items()])
    old["results"][1]["per_image"] = []  # no per-image list at all
    new = run(truth, rng, shift={"ig": -0.25})
    c = compare(old, new)
    for r in c["rows"]:
        assert r["test"] == "normal" and r["paired"] is False
        assert any("normal approximation" in n and "90% interval" in n for n in r["notes"])
    r = rows(c)
    assert r["ig"]["flag"] == "worse" and r["grad"]["flag"] == r["gradcam"]["flag"] == "unchanged"
    # the arithmetic: delta from the values, its standard error from both sides
    g = r["grad"]
    o = old["results"][0]
    from scipy import stats

    se_old = (o["ci"][1] - o["ci"][0]) / (2 * stats.norm.ppf(0.95))
    x = np.array([p["statistic"] for p in new["results"][0]["per_image"]])
    se = math.hypot(se_old, x.std(ddof=1) / math.sqrt(x.size))
    assert g["delta"] == pytest.approx(new["results"][0]["value"] - o["value"])
    assert g["p_worse"] == pytest.approx(stats.norm.cdf(g["delta"] / se))
    assert g["ci"] == pytest.approx([g["delta"] - stats.norm.ppf(0.95) * se, g["delta"] + stats.norm.ppf(0.95) * se])


def test_errors_skips_missing_pairs_and_changed_statistics_are_not_compared():
    rng = np.random.default_rng(6)
    v = rng.uniform(0, 1, 40)
    old = evidence([result("utility", "grad", v), result("utility", "sg", v, verdict="error"),
                    result("repeatability", "grad", v), result("utility", "ig", v),
                    result("randomization", "grad", v, statistic="SSIM drop d, head stage")])
    new = evidence([result("utility", "grad", v), result("utility", "sg", v),
                    result("repeatability", "grad", v, verdict="skipped"), result("focus", "grad", v),
                    result("randomization", "grad", v, statistic="SSIM drop d, all layers")])
    c = compare(old, new)
    assert [(r["criterion"], r["method"]) for r in c["rows"]] == [("utility", "grad")]
    why = {(r["criterion"], r["method"]): r["reason"] for r in c["not_compared"]}
    assert why[("utility", "sg")] == "error in the old run"
    assert why[("repeatability", "grad")] == "skipped in the new run"
    assert why[("utility", "ig")] == "only in the old run"
    assert why[("focus", "grad")] == "only in the new run"
    assert "statistic differs" in why[("randomization", "grad")]
    assert c["summary"]["not_compared"] == 5 and c["family"] == 1
    assert c["summary"]["lost"] == 0 and lost(c) == []  # none of these passed and now errors


def test_a_pair_that_passed_and_now_errors_is_lost_and_diff_exits_1(tmp_path, capsys):
    """A release whose audit errors where the last one passed lost a verdict: ``diff`` must not exit 0 on it
    (it is not comparable, so no row can flag it worse).  A fail that now errors, a control, a pair the new
    run skipped or left out (``-k``) are not lost."""
    rng = np.random.default_rng(8)
    v = rng.uniform(0, 1, 40)
    old = evidence([result("utility", "grad", v), result("utility", "sg", v), result("utility", "ig", v, verdict="fail"),
                    result("utility", "oracle", v, control=True), result("focus", "grad", v), result("energy", "grad", v)])
    new = evidence([result("utility", "grad", v), result("utility", "sg", v, verdict="error"),
                    result("utility", "ig", v, verdict="error"), result("utility", "oracle", v, verdict="error",
                                                                        control=True),
                    result("focus", "grad", v, verdict="skipped")])
    c = compare(old, new)
    assert [(r["criterion"], r["method"]) for r in lost(c)] == [("utility", "sg")] and c["summary"]["lost"] == 1
    assert problems(new) == [] and regressions(c) == []
    a, b = _write(tmp_path / "a.json", old), _write(tmp_path / "b.json", new)
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "LOST: utility[sg]: error in the new run (it passed in the old run)" in out
    assert out[-1].startswith("0 worse, 1 lost (passed, now error), 0 better, 1 unchanged")
    assert "lost" in section(c) and main(["diff", a, a]) == 0


def test_controls_are_compared_but_never_flagged():
    rng = np.random.default_rng(7)
    truth = base(rng)
    old, new = run(truth, rng), run(truth, rng)
    noise = rng.normal(0.0, 0.05, 40)
    old["results"].append(result("utility", "oracle", 0.5 + noise, control=True))
    new["results"].append(result("utility", "oracle", 0.1 + noise, verdict="fail", control=True))  # a big drop
    c = compare(old, new)
    ctl = rows(c)["oracle"]
    assert ctl["control"] is True and ctl["flag"] is None and ctl["delta"] == pytest.approx(-0.4)
    assert ctl["p_worse"] < 1e-6 and ctl["verdict_change"] == "pass -> fail"
    assert c["family"] == 3 and c["summary"]["controls"] == 1 and regressions(c) == []


def _normal_row(method, old_value, new_value, se):
    """A result without per-image statistics whose 90 % interval gives standard error ``se``."""
    half = 1.6448536269514722 * se
    o = result("utility", method, [0.0, 1.0], statistics=False)
    n = copy.deepcopy(o)
    o.update(value=old_value, ci=[old_value - half, old_value + half])
    n.update(value=new_value, ci=[new_value - half, new_value + half])
    return o, n


def test_holm_over_the_family_keeps_a_lone_small_p_from_flagging():
    """One pair with p_worse 0.023 (below alpha on its own) among five: Holm's first level is 0.05 / 5."""
    se = 0.01
    pairs = [_normal_row("grad", 0.5, 0.5 - 2 * math.sqrt(2) * se, se)]  # z = -2 -> p = 0.0228
    pairs += [_normal_row(m, 0.5, 0.5, se) for m in ("sg", "ig", "sig", "gbp")]
    old, new = evidence([p[0] for p in pairs]), evidence([p[1] for p in pairs])
    holm = rows(compare(old, new))
    assert holm["grad"]["p_worse"] == pytest.approx(0.02275, abs=1e-4)
    assert holm["grad"]["flag"] == "unchanged" and holm["grad"]["p_worse_adjusted"] == pytest.approx(5 * 0.02275, abs=5e-4)
    assert rows(compare(old, new, multiplicity="none"))["grad"]["flag"] == "worse"
    assert rows(compare(old, new, multiplicity="bonferroni"))["grad"]["flag"] == "unchanged"
    # alone in its family the same pair is flagged
    assert compare(evidence([pairs[0][0]]), evidence([pairs[0][1]]))["rows"][0]["flag"] == "worse"


def test_compare_names_both_runs_and_warns_about_other_data():
    rng = np.random.default_rng(8)
    truth = base(rng)
    old = run(truth, rng, spec="demo:primary", sha="11" * 32, seed=1)
    new = run(truth, rng, spec="demo:shortcut", sha="22" * 32, manifest="ef" * 32, seed=2)
    c = compare(old, new, old_name="r1/evidence.json", new_name="r2/evidence.json")
    assert c["old"]["model"] == {"spec": "demo:primary", "arch": None, "sha256": "11" * 32}
    assert c["old"]["seed"] == 1 and c["new"]["seed"] == 2 and c["old"]["name"] == "r1/evidence.json"
    assert c["old"]["started"] == "2025-01-02T03:04:05+00:00" and c["new"]["dataset"]["manifest_sha256"] == "ef" * 32
    assert c["alpha"] == 0.05 and c["multiplicity"] == "holm"
    assert len(c["warnings"]) == 1 and "manifests differ" in c["warnings"][0]
    with pytest.raises(ValueError):
        compare(old, new, alpha=0.5)
    with pytest.raises(ValueError):
        compare(old, new, multiplicity="fdr")


def test_a_manifest_that_differs_only_by_what_k_sampled_is_a_note_and_other_data_a_precise_warning():
    """A full run against a -k run of the same data: the manifests differ (randomization sampled negatives), but
    every compared pair used the same images, ids and thumbnails alike: no "different data" warning."""
    rng = np.random.default_rng(13)
    truth = base(rng)
    full, narrow = run(truth, rng), run(truth, rng, manifest="ef" * 32)
    for e in (full, narrow):
        e["samples"] = {i: {"image": f"png-of-{i}", "truth": None} for i in IDS}
    c = compare(full, narrow)
    assert c["warnings"] == [] and "only in images that the criteria of one run sampled" in c["new"]["dataset"]["note"]
    from saliency_audit.cli import diff_lines

    assert diff_lines(c, lambda r: r["criterion"])[-2].startswith("note: the dataset manifests differ")
    narrow["samples"][IDS[3]] = {"image": "other pixels", "truth": None}  # same id, other file
    assert ["different data" in w for w in compare(full, narrow)["warnings"]] == [True]
    narrow["samples"][IDS[3]] = full["samples"][IDS[3]]
    narrow["dataset"]["split"], full["dataset"]["split"] = "val", "test"
    (w,) = compare(full, narrow)["warnings"]
    assert w.startswith("the dataset differs (split 'test' -> 'val')")


# -- the command ------------------------------------------------------------------------------------------------
def _write(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def test_diff_exit_codes_table_and_json(tmp_path, capsys):
    rng = np.random.default_rng(9)
    truth = base(rng)
    old, same, worse = run(truth, rng), run(truth, rng), run(truth, rng, shift={"grad": -0.15})
    a, b, w = _write(tmp_path / "a.json", old), _write(tmp_path / "b.json", same), _write(tmp_path / "w.json", worse)
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    assert "utility[grad]" in out and "paired n=40" in out and "0 worse, " in out.splitlines()[-1]
    out_json = tmp_path / "c.json"
    assert main(["diff", a, w, "--json", str(out_json)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("utility[grad]") and lines[2].endswith("WORSE")  # worse first, under the header
    assert lines[-1].startswith("1 worse, 0 better, 2 unchanged of 3 pair(s)")
    saved = json.loads(out_json.read_text())
    assert [r["method"] for r in regressions(saved)] == ["grad"]
    assert main(["diff", a, w, "--alpha", "0.6"]) == 2
    assert "--alpha" in capsys.readouterr().err


def test_diff_names_a_broken_file_in_one_line(tmp_path, capsys):
    rng = np.random.default_rng(10)
    good = _write(tmp_path / "good.json", run(base(rng), rng))
    (tmp_path / "trunc.json").write_text('{"schema": ')
    bad = run(base(rng), rng)
    del bad["results"][0]["verdict"]
    invalid = _write(tmp_path / "invalid.json", bad)
    for broken, what in ((str(tmp_path / "trunc.json"), "cannot read as JSON"),
                         (invalid, "results[0].verdict: missing"), (str(tmp_path / "none.json"), "no such file")):
        for args in (["diff", broken, good], ["diff", good, broken]):
            assert main(args) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"saliency-audit: error: {broken}: ") and what in err[0], err


def test_diff_warns_in_one_line_when_the_manifests_differ(tmp_path, capsys):
    rng = np.random.default_rng(11)
    truth = base(rng)
    a = _write(tmp_path / "a.json", run(truth, rng))
    b = _write(tmp_path / "b.json", run(truth, rng, manifest="ef" * 32))
    assert main(["diff", a, b]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("saliency-audit: warning: the dataset manifests differ")


# -- the report section -----------------------------------------------------------------------------------------
def test_section_escapes_what_comes_from_the_evidence_and_puts_worse_first():
    rng = np.random.default_rng(12)
    truth = base(rng)
    hostile = "<script>alert(1)</script>"
    old = run(truth, rng, spec=hostile, sha="<b>" * 8, started="<i>yesterday</i>")
    new = run(truth, rng, shift={"ig": -0.2})
    old["results"].append(result("utility", "<img src=x>", rng.uniform(0, 1, 40)))
    c = compare(old, new)
    html = section(c)
    assert "<script>" not in html and "<img" not in html and "<i>yesterday" not in html and "<b><b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x&gt;" in html
    assert html.startswith('<section id="comparison"><h2>Compared with &lt;script&gt;')
    assert "paired by image id" in html and "Holm" in html and "Not compared" in html
    assert html.index("utility[ig]") < html.index("utility[grad]")  # worse first
    assert 'class="v-fail"><span class="verdict">WORSE' in html
    assert section({}).startswith('<section id="comparison">')  # never raises on a thin dict


# -- end to end -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_shortcut_model_against_the_primary_regresses_utility_for_grad_and_gradcam(pytester):
    """Two small demo audits (the primary, then the shortcut model on the same images), then ``diff``."""
    shutil.copy(Path(__file__).resolve().parents[1] / "audits" / "test_utility.py", pytester.path)
    common = ["--methods=grad,gradcam", "--no-controls", "--n-images=16", "-p", "no:cacheprovider"]
    pytester.runpytest(*common, "--audit-report=old")
    pytester.runpytest(*common, "--model=demo:shortcut", "--seed=2", "--audit-report=new")
    old, new = (str(pytester.path / d / "evidence.json") for d in ("old", "new"))
    assert main(["diff", old, old]) == 0
    out = pytester.path / "diff.json"
    assert main(["diff", old, new, "--json", str(out)]) == 1
    c = json.loads(out.read_text())
    print(json.dumps([{k: r[k] for k in ("method", "old_value", "new_value", "delta", "ci", "n_paired", "p_worse")}
                      for r in c["rows"]]))
    assert sorted(r["method"] for r in regressions(c)) == ["grad", "gradcam"]
    assert all(r["paired"] and r["criterion"] == "utility" and r["ci"][1] < 0 for r in c["rows"])


def test_a_randomization_pair_whose_binding_check_moved_is_compared_on_a_check_both_record():
    rng = np.random.default_rng(5)
    ids = [f"img{i}" for i in range(16)]
    head, every = rng.normal(0.9, 0.2, 16), rng.normal(1.1, 0.2, 16)

    def result(statistic, shift, checks=True):
        items = [{"id": i, "statistic": float(h if statistic.endswith("head stage") else a),
                  **({"checks": {"SSIM drop d, head stage": float(h + shift),
                                 "SSIM drop d, all layers": float(a)}} if checks else {})}
                 for i, h, a in zip(ids, head, every)]
        return {"criterion": "randomization", "method": "gradcam", "model": "primary", "verdict": "pass",
                "statistic": statistic, "value": 1.0, "ci": [0.9, 1.1], "ci_level": 0.9, "threshold": 0.5,
                "n": 16, "per_image": items, "details": {"alpha": 0.05}}

    def evidence(r):
        return {"schema": "saliency-audit/evidence@1", "results": [r]}

    old = result("SSIM drop d, all layers", 0.0)
    new = result("SSIM drop d, head stage", -0.5)  # the head stage now binds, and it dropped
    c = compare(evidence(old), evidence(new))
    (row,) = c["rows"]
    assert row["statistic"] == "SSIM drop d, head stage" and row["test"] == "paired" and row["flag"] == "worse"
    assert row["delta"] == pytest.approx(-0.5) and "binding check differs" in row["notes"][0]
    assert not any("threshold changed" in n for n in row["notes"])
    bare = compare(evidence(result("SSIM drop d, all layers", 0.0, checks=False)), evidence(new))
    assert not bare["rows"] and "statistic differs" in bare["not_compared"][0]["reason"]


def _label_randomization(s, f, ids):
    """A label-randomization result as the criterion writes it: d_i = (1 - s_i) / (1 - mean floor), each image's
    own floor term beside it (``floor=None``: evidence written before the floor terms)."""
    fb = float(np.mean(f)) if f is not None else 0.3
    d = (1.0 - s) / (1.0 - fb)
    items = [{"id": i, "statistic": float(x), "ssim": float(y), **({"floor": float(z)} if f is not None else {})}
             for i, x, y, z in zip(ids, d, s, f if f is not None else s)]
    return {"criterion": "label_randomization", "method": "sig", "model": "primary", "verdict": "pass",
            "statistic": "SSIM drop d, random labels", "value": float(d.mean()), "ci": [0.0, 2.0], "ci_level": 0.9,
            "threshold": 0.5, "n": len(ids), "per_image": items, "details": {"alpha": 0.05}}


def test_a_shared_noise_floor_shift_between_seeds_is_not_a_change_of_the_model():
    """Two seeds of one model: the per-image SSIMs barely move, but every image's d is divided by the same
    floor, whose own per-image terms move more; paired on d alone the shared shift is flagged (what the demo's
    Smooth IG showed: +0.018 [+0.013, +0.022] 'better' of 8 images), carrying each image's floor term it is
    flagged about as often as the nominal 2 x 5 %.  A real change is still flagged: random-label maps that
    come closer to the trained model's (SSIM +0.15) are worse."""
    ids = [f"img{i}" for i in range(8)]

    def flags(with_floor, ssim_rise=0.0, trials=200):
        rng = np.random.default_rng(11)
        out = []
        for _ in range(trials):
            s, f = rng.uniform(0.0, 0.2, 8), rng.uniform(0.2, 0.45, 8)
            s2, f2 = s + rng.normal(0, 0.01, 8) + ssim_rise, f + rng.normal(0, 0.02, 8)
            old = _label_randomization(s, f if with_floor else None, ids)
            new = _label_randomization(s2, f2 if with_floor else None, ids)
            if not with_floor:  # the statistic as written, divided by the run's own floor
                for r, ff in ((old, f), (new, f2)):
                    for item, x in zip(r["per_image"], (1.0 - np.array([i["ssim"] for i in r["per_image"]]))
                                       / (1.0 - ff.mean())):
                        item["statistic"] = float(x)
            (row,) = compare({"results": [old]}, {"results": [new]})["rows"]
            out.append(row["flag"])
        return out

    bare, carried = flags(False), flags(True)
    assert sum(f != "unchanged" for f in bare) / len(bare) > 0.3
    assert sum(f != "unchanged" for f in carried) / len(carried) <= 0.15
    risen = flags(True, ssim_rise=0.15, trials=40)
    assert sum(f == "worse" for f in risen) / len(risen) >= 0.9
    (row,) = compare({"results": [_label_randomization(np.full(8, 0.1), np.linspace(0.2, 0.4, 8), ids)]},
                     {"results": [_label_randomization(np.full(8, 0.1), np.linspace(0.2, 0.4, 8), ids)]})["rows"]
    assert row["delta"] == pytest.approx(0.0, abs=1e-12) and any("noise floor" in n for n in row["notes"])
