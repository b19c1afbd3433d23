"""Sample sizes (``saliency-audit plan``, :mod:`saliency_audit.decisions.power`): the analytic n against brute force,
no n for an effect that does not exceed its threshold, the noise floor's share and the largest check counted,
and the command's lines and one-line errors.  Small synthetic data; a few seconds in all."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from saliency_audit.decisions import power
from saliency_audit.stats import sequential
from saliency_audit.cli import main
from saliency_audit.evidence.schema import problems
from saliency_audit.stats import floor_terms

HEAD, ALL = "SSIM drop d, head stage", "SSIM drop d, all layers"


def result(criterion, method, values, *, threshold=0.0, floors=None, checks=None, details=None, verdict="pass"):
    """A result dict as the criteria write it (only what a plan reads has meaning)."""
    values = np.asarray(values, dtype=float)
    per_image = []
    for i, v in enumerate(values):
        item = {"id": f"img{i:03d}", "statistic": float(v), "score": float(v)}
        if floors is not None:
            item["floor"] = float(floors[i])
        if checks is not None:
            item["checks"] = {name: float(x[i]) for name, x in checks.items()}
        per_image.append(item)
    return {"criterion": criterion, "method": method, "model": "primary", "verdict": verdict,
            "statistic": "mean(x - prior)", "value": float(values.mean()), "ci": [0.0, 1.0], "ci_level": 0.9,
            "threshold": threshold, "bound": 0.0, "n": len(values), "per_image": per_image, "curve": [],
            "explanation": "", "details": {"alpha": 0.05, **(details or {})}}


def evidence(results):
    return {"schema": "saliency-audit/evidence@1",
            "run": {"started": "2025-01-02T03:04:05+00:00", "finished": None, "seed": 0, "status": "complete"},
            "config": {"seed": 0, "sequential_batch": 8, "sequential_futility": 0.05},
            "models": [{"role": "primary", "spec": "demo", "sha256": "ab" * 32}],
            "dataset": {"name": "demo", "n_images": 48, "manifest_sha256": "cd" * 32}, "results": results}


# -- the analytic n against brute force ----------------------------------------------------------------------------
def test_fixed_n_is_the_smallest_n_whose_simulated_t_test_power_reaches_the_target():
    delta, target, alpha = 0.5, 0.8, 0.05
    n = power.fixed_n(delta, target, alpha)
    assert power.fixed_power(delta, n, alpha) >= target > power.fixed_power(delta, n - 1, alpha)
    assert 25 <= n <= 29  # the normal approximation ((z_.95 + z_.8) / 0.5)^2 = 24.7, plus the t test's share
    rng = np.random.default_rng(0)

    def simulated(m, sims=4000):
        x = rng.normal(delta, 1.0, (sims, m))
        t = x.mean(1) / (x.std(1, ddof=1) / math.sqrt(m))
        return float((t >= stats.t.isf(alpha, m - 1)).mean())

    assert abs(simulated(n) - power.fixed_power(delta, n, alpha)) < 0.025  # Monte-Carlo sd 0.0063
    assert simulated(round(0.6 * n)) < target - 0.08  # well below: the n is not needlessly large


def test_sequential_n_reaches_the_target_with_the_products_rule():
    delta, target, alpha = 0.8, 0.8, 0.05
    nf = power.fixed_n(delta, target, alpha)
    ns, exact = power.sequential_n(delta, target, alpha, batch=8, futility=0.05)
    assert exact and ns >= nf
    rng = np.random.default_rng(1)
    sims = 800
    passes = sum(sequential.decide(rng.normal(delta, 1.0, ns), ns, alpha, 8, "obf", 0.05).stopped == "pass"
                 for _ in range(sims))
    assert passes / sims >= target - 0.045  # Monte-Carlo sd 0.014
    assert power.inflation(4, target, alpha)[0] == pytest.approx(1.0)  # one look: the fixed test


def test_design_integration_spends_alpha_under_the_null():
    from saliency_audit.stats import groupseq

    t = tuple(k / 48 for k in sequential.sizes(48, 8))
    c = groupseq.boundaries(t, 0.05)
    assert power._crossing(0.0, t, c, (-math.inf,) * len(t)) == pytest.approx(0.05, abs=5e-4)
    # more drift, more power; a futility bound only takes power away
    _, upper, lower = power._design(48, 0.05, 8, 0.05)
    free = power._crossing(2.5, t, upper, (-math.inf,) * len(t))
    assert power._crossing(1.5, t, upper, lower) < power._crossing(2.5, t, upper, lower) <= free


# -- no n -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shift", [0.0, -0.2])
def test_an_effect_at_or_below_the_threshold_has_no_n(shift):
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, 48)
    x = x - x.mean() + 0.3 + shift  # mean exactly at (or below) the threshold 0.3
    for rule in power.RULES:
        need = power.need(x, 0.3, 0.8, rule=rule)
        assert need.n is None and need.why == "effect"
    pair = power.pair_from_result(result("utility", "grad", x, threshold=0.3))[0]
    text = power.line(power.plan(pair, rule="fixed"))
    assert text.startswith("utility[grad]: no n: the observed effect does not exceed the threshold")
    assert "power needs" not in text


def test_a_tiny_effect_says_more_than_the_cap():
    x = np.random.default_rng(3).normal(0.0, 1.0, 48)
    x = x - x.mean() + 0.01
    plan = power.plan(power.Pair("focus", "ig", [power.CheckTerms("m", 0.0, x)]), rule="fixed")
    assert all(t.n is None and t.why == "cap" for t in plan.targets)
    assert "80 % power needs more than 5,000 images" in power.line(plan)


# -- the randomization criteria -------------------------------------------------------------------------------------
def _randomization(rng, n=24, floor_sd=0.15):
    s = rng.normal(0.45, 0.1, n)  # SSIM of each image's map to the randomized model's
    f_i = np.clip(rng.normal(0.3, floor_sd, n), -0.5, 0.95)  # each image's own floor term, independent of s
    fb = f_i.mean()
    head, every = (1 - s) / (1 - fb), (1 - s / 3) / (1 - fb)
    return head, every, f_i


def test_a_noisy_floor_needs_more_images_than_the_known_floor_d():
    head, every, f_i = _randomization(np.random.default_rng(4))
    r = result("label_randomization", "grad", head, threshold=0.7, floors=f_i)
    with_floor, _ = power.pair_from_result(r)
    assert with_floor.floors is not None
    np.testing.assert_allclose(with_floor.terms(with_floor.checks[0]), floor_terms(head, f_i))
    # a drawn audit of the same images is normalized by the same floor; of the noisier half, by its own
    np.testing.assert_allclose(with_floor.terms(with_floor.checks[0], np.arange(24)), floor_terms(head, f_i))
    half = np.argsort(f_i)[12:]
    np.testing.assert_allclose(with_floor.terms(with_floor.checks[0], half),
                               floor_terms(head[half] * (1 - f_i.mean()) / (1 - f_i[half].mean()), f_i[half]))
    known = power.Pair("label_randomization", "grad", [power.CheckTerms("d", 0.7, head)], strict=False)
    n_floor = power.plan(with_floor, rule="fixed").targets[0].n
    n_known = power.plan(known, rule="fixed").targets[0].n
    assert n_floor is not None and n_known is not None and n_floor > n_known


def test_the_largest_check_binds():
    head, every, f_i = _randomization(np.random.default_rng(5))
    r = result("randomization", "grad", head, threshold=0.5, floors=f_i, checks={HEAD: head, ALL: every},
               details={"head_min": 0.5, "all_min": 0.8})
    pair, why = power.pair_from_result(r)
    assert why is None and [(c.name, c.threshold) for c in pair.checks] == [(HEAD, 0.5), (ALL, 0.8)]
    assert not pair.strict
    plan = power.plan(pair, rule="fixed")
    for t in plan.targets:
        per = {x.check: x.n for x in t.needs}
        assert t.n == max(per.values()) and t.binding == max(per, key=per.get)
    assert {t.binding for t in plan.targets} == {HEAD}  # mean 1.1 against 0.5 binds before 1.3 against 0.8
    # lift the head check's threshold until it fails: no n, whatever the other check says
    r["details"]["head_min"] = 5.0
    text = power.line(power.plan(power.pair_from_result(r)[0], rule="fixed"))
    assert "no n: the observed effect does not exceed the threshold (head stage check)" in text


def test_resampling_the_observed_terms_through_the_products_rule():
    rng = np.random.default_rng(6)
    strong = power.Pair("pointing", "ig", [power.CheckTerms("m", 0.0, rng.normal(0.8, 1.0, 48))])
    null = power.Pair("pointing", "ig", [power.CheckTerms("m", 0.0, rng.normal(0.0, 1.0, 48))])
    null.checks[0].values -= null.checks[0].values.mean()
    kw = dict(audits=60, resamples=200)
    assert power.resampled_power(strong, 30, 0.05, "fixed", **kw) >= 0.9
    assert power.resampled_power(null, 30, 0.05, "fixed", **kw) <= 0.2
    assert power.resampled_power(strong, 30, 0.05, "sequential", **kw) >= 0.9


def test_a_long_lower_tail_falls_short_and_the_check_finds_a_larger_n():
    """The product's bound guards against long lower tails (Hall's skewness correction), which the t test's
    n does not know: the resampled audits say so and find the n that does reach the target."""
    x = 1.0 - np.random.default_rng(9).exponential(0.6, 48)  # mean about 0.4, a long lower tail
    pair = power.Pair("pointing", "ig", [power.CheckTerms("m", 0.0, x)])
    t = power.plan(pair, (0.8,), rule="fixed", audits=80, resamples=200).targets[0]
    assert t.resampled < 0.7 and t.resampled_n > t.n
    assert power.resampled_power(pair, t.resampled_n, 0.05, "fixed", audits=80, resamples=200) >= 0.8
    assert f"(resampled: {100 * t.resampled:.0f} % pass; 80 % at ≈ {t.resampled_n})" in power.line(
        power.PairPlan(pair, "fixed", 0.05, 8, 0.05, [t]))


def test_effects_file_round_trip_and_the_shipped_demo():
    head, every, f_i = _randomization(np.random.default_rng(7))
    r = result("randomization", "sg", head, floors=f_i, checks={HEAD: head, ALL: every},
               details={"head_min": 0.5, "all_min": 0.8})
    pairs, _ = power.pairs_from_evidence(evidence([r]))
    back = power.pairs_from_effects(json.loads(json.dumps(power.effects_json(pairs, {}))))
    for a, b in zip(power.summary(back[0]), power.summary(pairs[0])):
        assert a["name"] == b["name"] and a["n"] == b["n"] == 24 and a["threshold"] == b["threshold"]
        assert (a["mean"], a["sd"]) == pytest.approx((b["mean"], b["sd"]), rel=1e-4)
    demo, source = power.demo_effects()
    assert source.get("sequential") is False and any(p.criterion == "utility" for p in demo)


# -- the command ------------------------------------------------------------------------------------------------------
def test_plan_prints_a_line_per_pair(tmp_path, capsys):
    rng = np.random.default_rng(8)
    e = evidence([result("utility", "gradcam", rng.normal(0.21, 0.18, 48), details={"min_ap": 0.1, "mean_ap": 0.3}),
                  result("utility", "grad", rng.normal(-0.1, 0.18, 48), verdict="fail"),
                  {**result("energy", "ig", [0.0]), "verdict": "error", "per_image": []}])
    assert problems(e) == []
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(e))
    assert main(["plan", "--evidence", str(path), "--rule", "fixed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("plan: fixed-n verdicts")
    ok = next(x for x in lines if x.startswith("utility[gradcam]"))
    assert "80 % power needs ≈ " in ok and " lesion images (resampled: " in ok and "at this run's effect" in ok
    assert "a pass also needs mean AP >= 0.1" in ok
    assert next(x for x in lines if x.startswith("utility[grad]:")).startswith("utility[grad]: no n: ")
    assert any(x.startswith("energy[ig]: not planned") for x in lines)
    n80 = int(ok.split("≈ ")[1].split()[0])
    x = np.array([i["statistic"] for i in e["results"][0]["per_image"]])
    assert n80 == power.fixed_n(x.mean() / x.std(ddof=1), 0.8, 0.05)


def test_plan_of_the_demo_says_so(capsys, monkeypatch):
    """Without --evidence the command plans the shipped demo effects; three of its pairs (one per kind of terms:
    utility's, randomization's with the floor, completeness's), as every pair is planned by the same code, which
    the synthetic tests above check; planning all 99 with their resampled checks took 13 s of CI."""
    pairs, source = power.demo_effects()
    keep = {("utility", "gradcam"), ("randomization", "gradcam"), ("completeness", "gradcam")}
    kept = [p for p in pairs if (p.criterion, p.method) in keep]
    assert len(kept) == 3 and len(pairs) > len(kept)
    monkeypatch.setattr(power, "demo_effects", lambda: (kept, source))
    assert main(["plan", "--rule", "fixed", "--power", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "at the demo's effect" in out and "utility[gradcam]: " in out and "lesion images" in out
    assert "randomization[gradcam]: " in out and "completeness[gradcam]: " in out


@pytest.mark.parametrize("args, expected", [
    (["--evidence", "{missing}"], "missing.json: no such file"),
    (["--evidence", "{corrupt}"], "corrupt.json: cannot read as JSON"),
    (["--evidence", "{invalid}"], "invalid.json: not valid evidence: "),
    (["--power", "1.5"], "--power must be in (0, 1)"),
    (["--alpha", "0.7"], "--alpha must be in (0, 0.5)"),
])
def test_plan_errors_are_one_line(tmp_path, capsys, args, expected):
    (tmp_path / "corrupt.json").write_text('{"schema": "saliency-audit/evidence@1", "results": [')
    (tmp_path / "invalid.json").write_text(json.dumps({"schema": "saliency-audit/evidence@1", "results": []}))
    paths = {k: str(tmp_path / f"{k}.json") for k in ("missing", "corrupt", "invalid")}
    assert main(["plan", *[a.format(**paths) for a in args]]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err and err.startswith("saliency-audit: error: ")
