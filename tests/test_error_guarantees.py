"""Every verdict keeps the error rate it states: finite bounds at any planned n, the noise floor's variance
carried, no verdict decided on a bound that is not a number.  (The Monte-Carlo calibration of every rule is
benchmarks/bench_error_rates.py; these are the small checks that can run in CI.)"""
import math

import numpy as np
import pytest
from scipy import stats as st

from saliency_audit.stats import groupseq
from saliency_audit.common.errors import DegenerateBound
from saliency_audit.stats.sequential import Check, Looks, decide
from saliency_audit.stats import bootstrap_mean, clears, floor_terms
from tests.scripts import load_script, stored_result

ALPHA = 0.05
GUARDS = stored_result("verdict_guards")["studies"]  # benchmarks/bench_verdict_guards.py


def _planned(n_max: int, batch: int = 8) -> tuple[float, ...]:
    ks = list(range(batch, n_max, batch)) + [n_max]
    return tuple(k / n_max for k in ks[:-1]) + (1.0,)


@pytest.mark.parametrize("n_max", [160, 200, 500, 2000])
def test_every_look_of_a_large_audit_has_a_finite_boundary(n_max):
    """At 160 planned images or more the first look's share of alpha once rounded to 0: its boundary and its
    Student-t critical value were infinite, and the bound +inf passed every verdict."""
    fr = _planned(n_max)
    c = groupseq.boundaries(fr, ALPHA)
    logs = groupseq.log_nominal_levels(fr, ALPHA)
    assert all(math.isfinite(x) for x in c) and all(math.isfinite(x) for x in logs)
    assert all(a > b for a, b in zip(c[:-1], c[1:-1])), "boundaries fall look by look"
    assert 1.64 < c[-1] < 2.0, "the last look's boundary stays near the fixed-n one"
    first_t = groupseq.t_critical_log(logs[0], 8)
    assert math.isfinite(first_t) and first_t > c[0] > 5
    # the first look's boundary is its share's: P(Z >= c_1) = alpha spent by t_1 (computed in logs)
    assert st.norm.logsf(c[0]) == pytest.approx(groupseq.log_spent(fr[0], ALPHA), rel=1e-6)


def test_a_level_that_underflows_is_refused_not_infinite():
    with pytest.raises(ValueError, match="must lie in"):
        groupseq.t_critical(0.0, 8)  # scipy's stdtrit(7, 0) is +inf: the old bug's source
    # a level below the smallest double: the closed-form tail bound, larger than the normal's critical value
    t = groupseq.t_critical_log(-2000.0, 8)
    assert math.isfinite(t) and t > -float(__import__("scipy").special.ndtri_exp(-2000.0))
    # where both are computable the bound lies above the exact critical value (conservative) and close to it
    exact = groupseq.t_critical_log(-600.0, 8)
    nu = 7
    log_k = (math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi))
    bound = math.exp((log_k + 0.5 * (nu + 1) * math.log(nu) - math.log(nu) + 600.0) / nu)
    assert exact <= bound * (1 + 1e-12) and bound <= exact * 1.001


@pytest.mark.parametrize("n_max", [160, 200, 500, 2000])
def test_a_null_effect_does_not_pass_at_large_n(n_max):
    """Null effects (mean on the threshold, and below it) over every look of audits of 160 to 2,000 images:
    no pass, and every recorded bound a finite number."""
    rng = np.random.default_rng(n_max)
    for shift in (0.0, -0.02):
        x = rng.normal(shift, 0.1, n_max)
        x += shift - x.mean()  # the sample mean itself on (or below) the threshold
        for futility in (0.0, 0.05):
            looks = decide(x, n_max, ALPHA, futility=futility)
            assert looks.stopped != "pass", (n_max, shift, futility, looks.looks[-1])
            for look in looks.looks:
                for c in look["checks"]:
                    assert math.isfinite(c["lower"]) and math.isfinite(c["upper"]), look
                    assert c["lower"] <= c["mean"] <= c["upper"]


def test_a_clear_effect_still_stops_early_at_large_n():
    x = np.random.default_rng(0).normal(0.5, 0.1, 2000)
    looks = decide(x, 2000, ALPHA)
    assert looks.stopped == "pass" and looks.looks[-1]["n"] <= 64  # early looks of 2,000 demand z > 17


def test_a_degenerate_last_look_is_an_error_never_a_pass():
    looks = Looks(ALPHA, 8, 16)
    assert not looks.look([Check("d", np.array([0.9] + [math.nan] * 7), 0.5)])  # one value: decides nothing
    assert looks.looks[-1]["checks"][0]["lower"] is None
    with pytest.raises(DegenerateBound, match="last look"):
        looks.look([Check("d", np.array([0.9] + [math.nan] * 15), 0.5)], final=True)


@pytest.mark.parametrize("bound", [math.inf, -math.inf, math.nan, None])
def test_a_bound_that_is_not_a_number_decides_nothing(bound):
    with pytest.raises(DegenerateBound, match="not a finite number"):
        clears(bound, 0.0, strict=True, what="the bound")
    with pytest.raises(DegenerateBound):
        clears(0.5, bound, strict=False)


def test_one_value_has_no_bound():
    b = bootstrap_mean(np.array([0.7]))
    assert math.isnan(b.lo) and b.method == "degenerate"


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _above_and_within(old_name: str, old: int, new_name: str, new: int, reps: int) -> None:
    """The old rule's wrong-pass rate lies above alpha (its whole Wilson interval), the new rule's interval
    reaches alpha or below; the message gives both with their intervals."""
    (lo_old, hi_old), (lo_new, hi_new) = _wilson(old, reps), _wilson(new, reps)
    message = (f"wrong-pass rate, {old_name}: {old / reps:.3f} [{lo_old:.3f}, {hi_old:.3f}]; {new_name}: "
               f"{new / reps:.3f} [{lo_new:.3f}, {hi_new:.3f}] (95 % Wilson, {reps} audits)")
    assert lo_old > ALPHA, message
    assert lo_new <= ALPHA, message


def test_a_noisy_floor_is_carried_by_the_randomization_bound():
    """Per image: SSIM s_i to the randomized model's map, and the image's floor term f_i (its map against
    another image's).  The true normalized drop (1 - E s) / (1 - E f) sits exactly on the threshold 0.8, the
    floor is noisy (sd 0.25) and the stage's SSIM is not (sd 0.05).  Treating the floor as known passes far
    more than 5 % of these audits; the bound over the floor-carrying terms does not.  (800 audits of 24 images,
    benchmarks/bench_verdict_guards.py: ``noisy_floor``.)"""
    s = GUARDS["noisy_floor"]
    _above_and_within("floor treated as known", s["floor_known_passes"], "floor carried", s["floor_carried_passes"],
                      s["reps"])


def test_floor_terms_average_to_the_statistic_and_carry_the_floor():
    rng = np.random.default_rng(0)
    f, s = rng.uniform(0.1, 0.5, 30), rng.uniform(0.0, 0.4, 30)
    d = (1 - s) / (1 - f.mean())
    t = floor_terms(d, f)
    assert t.mean() == pytest.approx(d.mean())
    assert np.var(t) != pytest.approx(np.var(d))
    # the influence terms are the ratio's: their variance matches the ratio's delta-method variance
    r = (1 - s).mean() / (1 - f).mean()
    grad = ((1 - s) - r * (1 - f)) / (1 - f).mean()
    assert np.allclose(t - t.mean(), grad - grad.mean())
    assert np.array_equal(floor_terms(d, np.full(30, np.nan)), d)


def test_a_long_lower_tail_is_guarded_by_the_skewness_corrected_bound():
    """Beta(5, 2) values (a method that fails badly on a few images), true mean on the threshold, 24 images:
    the t bound alone passes more than 5 % of audits; the bound the verdicts use (the lower of t and Hall's
    skewness-corrected t) does not.  (4,000 audits, benchmarks/bench_verdict_guards.py: ``long_lower_tail``.)"""
    s = GUARDS["long_lower_tail"]
    _above_and_within("t alone", s["t_alone_passes"], "guarded", s["guarded_passes"], s["reps"])


def test_the_guarded_bound_is_the_t_bound_on_symmetric_values_and_lower_on_left_skewed_ones():
    from saliency_audit.stats import mean_lower, mean_statistic, mean_upper

    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    t_bound = x.mean() - 2.0 * x.std(ddof=1) / math.sqrt(5)
    assert mean_lower(x, 2.0) == pytest.approx(t_bound)
    assert mean_upper(x, 2.0) == pytest.approx(-t_bound)
    skewed = np.array([0.3, 0.32, 0.35, 0.31, 0.33, 0.29, -0.6, 0.34])
    t_skewed = skewed.mean() - 2.0 * skewed.std(ddof=1) / math.sqrt(8)
    assert mean_lower(skewed, 2.0) < t_skewed
    # the statistic and the bound agree: the bound clears a threshold exactly when the statistic clears c
    for threshold in np.linspace(-0.3, 0.4, 29):
        assert (mean_lower(skewed, 2.0) > threshold) == (mean_statistic(skewed, threshold) > 2.0)


def _mapset(ids, maps):
    from saliency_audit.methods.mapset import MapSet

    maps = np.asarray(maps, dtype=np.float32)
    return MapSet("m", list(ids), maps, np.zeros(len(ids), bool), maps * 2 - 1, 0, 0.0, {})


def _smooth_maps(rng, n, size=24):
    from scipy import ndimage

    return np.stack([(lambda m: (m - m.min()) / (m.max() - m.min()))(
        ndimage.gaussian_filter(rng.random((size, size)), 2.0)) for _ in range(n)])


def test_the_randomization_bounds_are_the_comparisons_per_image_terms():
    """The verdicts' bounds are taken over the same floor-carrying terms ``saliency-audit diff`` compares
    (saliency_audit.decisions.comparison reads them back from the evidence): one implementation, stats.floor_terms."""
    from saliency_audit import AuditConfig
    from saliency_audit.decisions.comparison import _terms
    from saliency_audit.criteria.randomization import evaluate_cascade, evaluate_label
    from saliency_audit.stats import stable_seed

    rng = np.random.default_rng(3)
    cfg = AuditConfig()
    ids = [f"i{k}" for k in range(16)]
    base = _smooth_maps(rng, 16)
    ref = _mapset(ids, base)
    moved = _mapset(ids, 0.5 * base + 0.5 * _smooth_maps(rng, 16))
    gone = _mapset(ids, _smooth_maps(rng, 16))
    kw = dict(alpha=cfg.randomization.alpha, resamples=cfg.stats.resamples, method=cfg.stats.method)

    label = evaluate_label("m", ref, gone, cfg).to_dict()
    _, terms = _terms(label)
    seed = stable_seed(cfg.seed, "label-randomization-m", "random labels")
    assert bootstrap_mean(terms, seed=seed, **kw).lo == pytest.approx(label["bound"], abs=1e-12)
    d = np.array([i["statistic"] for i in label["per_image"]])
    assert not np.allclose(terms, d), "the floor's share is in the terms"

    cascade = evaluate_cascade("m", ref, [("head", [moved]), ("all (x)", [gone])], cfg).to_dict()
    binding = 0 if cascade["statistic"].endswith("head stage") else -1
    _, terms = _terms(cascade)
    seed = stable_seed(cfg.seed, "randomization-m", cascade["curve"][binding]["stage"])
    assert bootstrap_mean(terms, seed=seed, **kw).lo == pytest.approx(cascade["bound"], abs=1e-12)


def test_the_calibration_study_is_of_the_rules_in_this_tree():
    """The calibration table of docs/ci-and-release.md (benchmarks/results/error_rates.json) measured the verdict
    rules as they are now: a change to the code (not the docstrings) of the files that decide a verdict's bound
    needs the study rerun (python benchmarks/bench_error_rates.py, about 40 minutes on one core)."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_error_rates", root / "benchmarks" / "bench_error_rates.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    stored = json.loads((root / "benchmarks" / "results" / "error_rates.json").read_text())
    assert not stored["quick"], "the stored study is a --quick smoke run"
    for name in bench.SOURCES:
        assert bench.code_hash(root / "saliency_audit" / name) == stored["sources"][name], (
            f"the code of saliency_audit/{name} changed since the calibration study ran: rerun "
            "python benchmarks/bench_error_rates.py and python benchmarks/readme_figures.py")


def test_the_guard_studies_are_of_the_rules_in_this_tree():
    """The Monte-Carlo guards of tests/test_sequential.py, tests/test_multiplicity.py and this file read
    benchmarks/results/verdict_guards.json: it must have been measured on the verdict rules as they are now
    (python benchmarks/bench_verdict_guards.py, about 20 s, after any change to the code of its sources) and
    with the shipped futility."""
    from saliency_audit import AuditConfig

    bench = load_script("benchmarks/bench_verdict_guards.py")
    stored = stored_result("verdict_guards")
    assert not stored["sources_changed_during_run"] and stored["futility"] == AuditConfig().sequential_futility
    assert set(stored["studies"]) >= {"obf_wrong_pass", "futility[48]", "futility[24]", "noisy_floor",
                                      "long_lower_tail", "stagewise_p"}
    for name in bench.SOURCES:
        assert bench.code_hash_of(name) == stored["sources"][name], (
            f"the code of saliency_audit/{name} changed since the verdict guards ran: rerun "
            "python benchmarks/bench_verdict_guards.py")


def test_the_report_legend_states_the_guarantee():
    from saliency_audit import AuditConfig
    from saliency_audit.report.html import guarantee

    cfg = AuditConfig().to_dict()
    seq = guarantee({**cfg, "sequential": True, "utility": {"alpha": 0.05}, "randomization": {"alpha": 0.05}})
    assert "passes at most 0.05 of the time" in seq and "group-sequential" in seq and "independent" in seq
    assert "noise floor" in seq and "error_rates.json" in seq
    fixed = guarantee({"sequential": False, "utility": {"alpha": 0.05}, "randomization": {"alpha": 0.1}})
    assert "its criterion's alpha (0.05, 0.1)" in fixed and "expanded BCa" in fixed
    assert "betting" in guarantee({"sequential": True, "sequential_rule": "betting"})


def test_warnings_name_where_the_calibration_says_the_level_does_not_hold():
    from saliency_audit.report.warnings import collect

    lopsided = [0.3] * 14 + [-0.9, -0.8]
    symmetric = list(np.linspace(0.1, 0.5, 16))

    def result(values, verdict="pass", p=0.04, **details):
        return {"criterion": "completeness", "method": "xrai", "verdict": verdict, "details": details,
                "p_value": p, "per_image": [{"id": str(i), "statistic": v} for i, v in enumerate(values)]}

    found = collect({"results": [result(lopsided)]})
    assert any("long lower tail" in w and "p 0.04" in w and "[xrai]" in w for w in found), found
    assert collect({"results": [result(symmetric), result(lopsided, "fail"), result(lopsided, p=0.001),
                                result(lopsided, control="oracle"), result(lopsided * 4)]}) == []
    holm = {"results": [], "config": {"sequential": True, "stats": {"multiplicity": "holm"}}}
    assert any("--no-sequential" in w for w in collect(holm))
    assert collect({"results": [], "config": {"sequential": False, "stats": {"multiplicity": "holm"}}}) == []
