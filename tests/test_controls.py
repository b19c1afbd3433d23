"""Controls: maps whose verdicts are known in advance, so the audit shows it can fail (and when it cannot)."""
import numpy as np
import pytest
import torch

from saliency_audit import Audit
from saliency_audit.config import AuditConfig
from saliency_audit.criteria.controls import attach, summary
from saliency_audit.common.criteria_registry import CRITERIA
from saliency_audit.criteria.result import CriterionResult
from saliency_audit.data.sample import Sample
from saliency_audit.methods import CONTROLS, METHODS
from saliency_audit.methods import controls as ctl
from saliency_audit.report.gate import gate
from saliency_audit.report.html import render
from saliency_audit.report.table import verdict_table
from saliency_audit.testing import check


def _samples():
    img = torch.zeros(1, 32, 32)
    img[:, 8:24, 8:24] = 1.0  # a bright square: its edges are the only edges
    mask = np.zeros((32, 32), bool)
    mask[12:20, 12:20] = True
    return [Sample("a", img, 1, mask=mask), Sample("b", img.flip(-1) * 0.5, 0)]


def _raw(name, samples, seed=0):
    x = torch.stack([s.image for s in samples])
    cfg = AuditConfig(seed=seed)
    return METHODS[name].function()(None, x, [s.key() for s in samples], None, cfg, {"samples": samples}).numpy()


def test_controls_are_registered_methods_that_never_touch_the_model():
    assert CONTROLS == ("edge", "random", "oracle")
    assert {METHODS[c].control for c in CONTROLS} == {"negative", "positive"}
    assert not any(METHODS[c].cached for c in CONTROLS)  # not under a model: under what they read (next test)
    s = _samples()
    for name in CONTROLS:  # model=None: a control that touched the model would raise here
        assert _raw(name, s).shape == (2, 1, 32, 32)


def test_controls_maps_are_cached_once_for_every_model_by_what_they_read(tmp_path):
    """A warm run computes no control map: each is cached under the input grid, the image and its lesion mask
    (the oracle's), for every model alike (randomization's copies too); another mask or softening is another."""
    from torch import nn

    from saliency_audit.engine.maps import MapStore
    from saliency_audit.models.info import ModelInfo
    from saliency_audit.models.wrapper import AuditModel

    def model(seed):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
        return AuditModel(net, ModelInfo(spec=f"m{seed}", arch="tiny", num_classes=2, input_size=(32, 32),
                                         in_channels=1, mean=(0.0,), std=(1.0,))).eval()

    cfg, samples = AuditConfig(), _samples()
    first = {c: MapStore(cfg, tmp_path).maps(model(0), c, samples) for c in CONTROLS}
    assert all(m.computed == 2 for m in first.values())
    for c in CONTROLS:  # another process, another model: read, the same maps
        again = MapStore(cfg, tmp_path).maps(model(1), c, samples)
        assert again.computed == 0 and np.array_equal(again.maps, first[c].maps)
    moved = [Sample("a", samples[0].image, 1, mask=np.roll(samples[0].mask, 3, axis=0)), samples[1]]
    oracle = MapStore(cfg, tmp_path).maps(model(1), "oracle", moved)
    assert oracle.computed == 1 and not np.array_equal(oracle.maps[0], first["oracle"].maps[0])
    cfg.completeness.lesion_sigma *= 2
    assert MapStore(cfg, tmp_path).maps(model(1), "oracle", samples).computed == 2


def test_edge_is_the_sobel_map_of_the_image():
    from skimage.filters import sobel

    s = _samples()
    out = _raw("edge", s)[0, 0]
    np.testing.assert_allclose(out, sobel(s[0].image[0].numpy()), atol=1e-6)
    assert out[16, 16] == 0 and out[8, 16] > 0  # flat inside, high on the square's border


def test_random_is_seeded_by_image_and_run_not_by_model():
    s = _samples()
    a, b = _raw("random", s), _raw("random", s)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])  # each image its own noise
    assert not np.allclose(a, _raw("random", s, seed=1))


def test_oracle_is_the_softened_lesion_and_zero_without_one():
    s = _samples()
    out = _raw("oracle", s)
    assert out[1].max() == 0
    inside, outside = out[0, 0][s[0].mask], out[0, 0][~s[0].mask]
    assert inside.min() > outside.max() * 0.5 and inside.mean() > 0.9 and outside.max() < 0.6


def _result(criterion, method, verdict):
    r = CriterionResult(criterion, method, verdict, explanation="x")
    attach(r)
    return r


def test_every_criterion_states_what_its_controls_must_show():
    for spec in CRITERIA.values():
        assert spec.control_note, spec.name
        assert set(dict(spec.controls)) <= set(CONTROLS) and set(dict(spec.controls).values()) <= {"pass", "fail"}
    assert CRITERIA["utility"].expected("oracle") == "pass" and CRITERIA["utility"].expected("edge") == "fail"
    assert CRITERIA["randomization"].expected("random") == "fail"
    assert CRITERIA["completeness"].expected("oracle") is None  # the lesion reliance: reported, not gated


def test_the_control_check_and_the_gate():
    ok = [_result("utility", "gradcam", "pass"), _result("utility", "edge", "fail"), _result("utility", "oracle", "pass"),
          _result("completeness", "oracle", "fail")]
    assert "control" not in ok[0].details
    assert ok[1].details["control"] == {"role": "negative", "expected": "fail", "met": True,
                                        "note": CRITERIA["utility"].control_note}
    assert ok[3].details["control"]["met"] is None
    dicts = [r.to_dict() for r in ok]
    assert summary(dicts) == {"gated": 2, "met": 2, "report_only": 1, "unmet": [], "unmet_pairs": []}
    outcome, text = gate(dicts)
    assert outcome == "pass" and text.startswith("PASSED — all 1 audited verdict(s) pass; controls: 2 of 2")

    wrong = dicts + [_result("randomization", "random", "pass").to_dict()]
    outcome, text = gate(wrong)
    assert outcome == "fail" and "not discriminating" in text and "randomization[random]" in text
    assert "1 pass, 0 fail, 0 error out of 1 audited" in text
    assert "(control, WRONG)" in "\n".join(verdict_table(wrong))
    # a control that could not be evaluated where its criterion gates it is wrong too; skipped is not checked
    assert gate(dicts + [_result("utility", "random", "error").to_dict()])[0] == "fail"
    assert _result("repeatability", "edge", "skipped").details["control"]["met"] is None


def test_a_control_test_passes_when_the_control_behaves_and_is_skipped_when_only_reported():
    check(_result("utility", "edge", "fail"))  # a negative control failing: as expected, the test passes
    with pytest.raises(pytest.fail.Exception, match="not discriminating"):
        check(_result("utility", "edge", "pass"))
    with pytest.raises(pytest.skip.Exception, match="reported, not gated"):
        check(_result("completeness", "edge", "pass"))


@pytest.fixture(scope="module")
def control_audit(tmp_path_factory):
    cfg = AuditConfig(n_images=16, cache_dir=str(tmp_path_factory.mktemp("maps")))
    return Audit(model="demo", methods=list(CONTROLS), config=cfg)


def test_on_the_demo_the_controls_come_out_as_their_criteria_say(control_audit):
    for criterion in ("utility", "pointing", "randomization"):
        for method in CONTROLS:
            r = control_audit.run(criterion, method)
            assert r.details["control"]["met"], r.explain()
            assert r.details["image_passes"] == 0 or criterion == "randomization"  # no model pass for a control map
    ev = control_audit.evidence()
    assert ev["controls"]["met"] == ev["controls"]["gated"] == 9
    html = render(ev)
    assert "negative control" in html and "as expected (fail)" in html and "9 of 9 gated" in html


def test_breaking_a_criterion_on_purpose_fails_the_gate_through_its_controls(control_audit, monkeypatch):
    """Randomization broken the way a misaligned batch breaks it: each image's map is compared with the
    randomized model's map of *another* image.  Every method then seems to change completely, a map of pure
    noise that ignores the model included, and the gate says the audit is not discriminating instead of
    reporting the passes."""
    from dataclasses import replace

    from saliency_audit.criteria import randomization

    real = randomization.mean_similarities

    def misaligned(ref, draws):
        return real(ref, [replace(d, maps=np.roll(d.maps, 1, axis=0), signed=np.roll(d.signed, 1, axis=0))
                          for d in draws])

    monkeypatch.setattr(randomization, "mean_similarities", misaligned)
    cfg = replace(control_audit.config, sequential=False)  # the fixed-n path is the one patched here
    broken = Audit(model="demo", methods=["random"], config=cfg)
    r = broken.randomization("random")
    assert r.verdict == "pass" and r.details["control"]["met"] is False, r.explain()
    outcome, text = gate([x.to_dict() for x in broken.results])
    assert outcome == "fail" and "not discriminating" in text and "randomization[random]" in text
    html = render(broken.evidence())
    assert "WRONG: must fail" in html and "The audit is not discriminating here" in html


def test_a_failing_audit_test_shows_its_verdict_and_explanation_not_the_plugin_s_source(pytester):
    """check() fails with the verdict line; its frames are hidden (__tracebackhide__) whatever --tb asks."""
    pytester.makepyfile(test_fails="""
from saliency_audit.criteria.result import CriterionResult
from saliency_audit.testing import check


def test_mine():
    check(CriterionResult("utility", "grad", "fail", explanation="lower bound -0.028 is not above 0"))
""")
    for tb in ("auto", "long", "short"):
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--tb={tb}", "test_fails.py")
        result.assert_outcomes(failed=1)
        out = result.stdout.str()
        assert "utility[grad] FAIL: lower bound -0.028 is not above 0" in out
        assert "def _check" not in out and "testing.py" not in out and "assert result.passed" not in out, tb
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tb=no", "test_fails.py")
    assert "= FAILURES =" not in result.stdout.str()  # --tb=no still works: the summary line only
