"""The family-wise gate: verdict p-values, Holm and Bonferroni, and the demo's verdicts under Holm."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saliency_audit.stats.multiplicity import decide
from saliency_audit.stats.sequential import Looks, betting_p, decide as sequential_decide
from saliency_audit.stats import bootstrap_mean, pass_p_value
from tests.scripts import stored_result

pytest_plugins = ["pytester"]


def holm_by_hand(ps: list[float], alpha: float) -> list[bool]:
    """Holm (1979) as the textbook states it: order the p-values, reject H_(1..k) where k is the last rank
    before the first p_(j) > alpha / (m - j + 1)."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    keep = [False] * m
    for j, i in enumerate(order):
        if ps[i] > alpha / (m - j):
            break
        keep[i] = True
    return keep


def test_holm_and_bonferroni_on_a_textbook_example():
    ps = [0.01, 0.04, 0.03, 0.005]
    holm = decide(ps, 0.05, "holm")
    assert [d["passes"] for d in holm] == [True, False, False, True]  # 0.005 <= .0125, 0.01 <= .0167, 0.03 > .025
    assert [round(d["adjusted_p"], 6) for d in holm] == [0.03, 0.06, 0.06, 0.02]
    assert [d["rank"] for d in holm] == [2, 4, 3, 1]
    bonf = decide(ps, 0.05, "bonferroni")
    assert [d["passes"] for d in bonf] == [True, False, False, True] and bonf[0]["level"] == 0.0125
    assert [d["passes"] for d in decide(ps, 0.05, "none")] == [True, True, True, True]
    assert decide([None, 0.001], 0.05, "holm")[0] == {"p": 1.0, "adjusted_p": 1.0, "level": 0.05, "rank": 2,
                                                      "passes": False}  # an error: p = 1
    with pytest.raises(ValueError, match="multiplicity must be one of"):
        decide(ps, 0.05, "hochberg")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_is_between_bonferroni_and_no_correction(ps, alpha):
    holm = [d["passes"] for d in decide(ps, alpha, "holm")]
    assert holm == holm_by_hand(ps, alpha)
    bonf = [d["passes"] for d in decide(ps, alpha, "bonferroni")]
    alone = [d["passes"] for d in decide(ps, alpha, "none")]
    assert all(b <= h <= a for b, h, a in zip(bonf, holm, alone))
    assert all((d["adjusted_p"] <= alpha) == d["passes"] for d in decide(ps, alpha, "holm"))


@pytest.mark.parametrize("mu", [0.25, 0.12, 0.06, 0.0, -0.1])
def test_a_bootstrap_p_value_is_the_level_at_which_the_bound_clears(mu):
    x = np.random.default_rng(3).normal(mu, 0.3, 40)
    p = pass_p_value(x, 0.0, strict=True, seed=11, resamples=1000)
    for alpha in (0.001, 0.01, 0.05, 0.2, 0.45):
        if abs(math.log(alpha) - math.log(max(p, 1e-12))) < 0.01:
            continue  # at the bisection's resolution
        assert (bootstrap_mean(x, alpha=alpha, seed=11, resamples=1000).lo > 0) == (p <= alpha), (alpha, p)
    assert 0 <= p <= 1 and (p > 0.5) == (mu <= -0.1 or x.mean() < 0)


def test_a_sequential_verdict_passes_exactly_when_its_stagewise_p_is_at_most_alpha():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.normal(rng.uniform(-0.1, 0.5), 1.0, 48)
        looks = sequential_decide(x, 48, 0.05, batch=8)
        p = looks.p_value()
        assert (looks.stopped == "pass") == (p <= 0.05 + 1e-12), (looks.stopped, p, len(looks.looks))


def test_the_stagewise_p_value_is_valid_under_the_null():
    """Under a zero mean, the sequential rule's p-value is at most u with chance at most u (simulated: 1,500
    audits of 48 images, benchmarks/bench_verdict_guards.py: ``stagewise_p``)."""
    s = stored_result("verdict_guards")["studies"]["stagewise_p"]
    reps, at_most = s["reps"], s["at_most"]
    for u in (0.01, 0.05):
        share = at_most[str(u)] / reps
        assert share <= u + 2.5 * math.sqrt(u * (1 - u) / reps), (u, share)
    assert at_most["0.5"] / reps > 0.3  # and it is not vacuous: about half below 0.5


def test_a_betting_pass_has_a_p_value_at_most_alpha_and_an_unmet_condition_has_none():
    rng = np.random.default_rng(2)
    for _ in range(30):
        x = np.clip(rng.normal(rng.uniform(-0.1, 0.4), 0.3, 48), -1, 1)
        looks = sequential_decide(x, 48, 0.05, batch=8, rule="betting")
        if looks.stopped == "pass":
            assert looks.p_value() <= 0.05
    assert betting_p(np.full(10, -0.5), 0.0, 0.05) == 1.0
    from saliency_audit.stats.sequential import Check

    looks = Looks(0.05, 8, 8)
    looks.look([Check("m", np.full(8, 0.9) + np.arange(8) * 0.01, 0.0)], extra_pass=False, final=True)
    assert looks.p_value() == 1.0  # e.g. utility's minimum AP unmet: no p below 1 is claimed




@pytest.mark.slow
def test_holm_on_the_demo_changes_the_verdicts_a_hand_computation_says(pytester):
    """Acceptance (issue 17): the run's Holm decisions, the tests' outcomes and the evidence all follow a
    hand computation from the per-verdict p-values."""
    from saliency_audit.common.paths import suite_sources as sources

    pytester.makepyfile(**{name[:-3]: text for name, text in sources().items()})  # the bundled suite
    pytester.makefile(".toml", holm="[stats]\nmultiplicity = \"holm\"\n")
    result = pytester.runpytest("--methods=grad,ig,gradcam,gbp,ggcam", "--audit-config=holm.toml",
                                "--audit-report=out", "-p", "no:cacheprovider", "-rA",
                                "-k", "test_utility or test_focus or test_pointing")
    ev = json.loads((pytester.path / "out" / "evidence.json").read_text())
    family = [r for r in ev["results"] if "multiplicity" in r["details"]]
    controls = [r for r in ev["results"] if r["details"].get("control")]
    assert len(family) == 15 and controls and all("multiplicity" not in r["details"] for r in controls)
    alone = [r["details"]["multiplicity"]["verdict_alone"] == "pass" for r in family]
    ps = [r["p_value"] for r in family]
    by_hand = [a and h for a, h in zip(alone, holm_by_hand(ps, 0.05))]
    assert [r["verdict"] == "pass" for r in family] == by_hand
    # each verdict alone passes exactly when its p-value is at most its criterion's alpha
    assert all(a == (p <= r["details"]["alpha"]) for a, p, r in zip(alone, ps, family))
    lost = [f"{r['criterion']}[{r['method']}]" for r, a, h in zip(family, alone, by_hand) if a and not h]
    assert lost, "on the demo Holm takes some pass away (focus[ig] and focus[gbp] at the time of writing)"
    assert ev["multiplicity"]["method"] == "holm" and ev["multiplicity"]["lost_pass"] == lost
    assert "at most 5 % chance that any pass in this report is wrong" in ev["multiplicity"]["sentence"]
    outcomes = {r.nodeid.split("::")[-1]: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport")
                if r.when == "call"}
    for r, ok in zip(family, by_hand):
        assert outcomes[f"test_{r['criterion']}[{r['method']}]"] == ("passed" if ok else "failed")
    html = (pytester.path / "out" / "saliency-audit.html").read_text()
    assert "Family-wise gate (holm, 15 verdicts)" in html and "vs holm level" in html


def test_a_family_cannot_be_split_over_shards(pytester):
    pytester.makepyfile("def test_x(): pass")
    pytester.makefile(".toml", holm="[stats]\nmultiplicity = \"bonferroni\"\n")
    result = pytester.runpytest("--audit-config=holm.toml", "--audit-shard=1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(['*stats.multiplicity = "bonferroni" decides every verdict together*'])
    pytester.makefile(".toml", bad="[stats]\nmultiplicity = \"hochberg\"\n")
    result = pytester.runpytest("--audit-config=bad.toml")
    result.stderr.fnmatch_lines(["*stats.multiplicity must be none, holm or bonferroni*"])
