"""Issue 30: the model's output kind (competing softmax classes, one sigmoid, independent sigmoids) is resolved
once, and every probability the audit computes reads it through ``models.target.explained_probability``.

The models here read known pixels: output k's logit is ``12 * (mean of region k - 0.5)``, so each output is an
independent finding whose probability is known in closed form.  A head of three such outputs explained at
output 0 must give exactly what the same network cut down to output 0 alone (a single logit, read by its
sigmoid) gives; a softmax across the three (the old reading) must give something else.
"""
import numpy as np
import pytest
import torch
from torch import nn

from saliency_audit import config as cfgmod
from saliency_audit.common.errors import AuditUsageError
from saliency_audit.config import AuditConfig, load_config
from saliency_audit.criteria.completeness import road_score
from saliency_audit.data.sample import Sample
from saliency_audit.engine import passes as passes_mod
from saliency_audit.engine.maps import MapStore
from saliency_audit.engine.passes import Passes
from saliency_audit.methods import camfamily
from saliency_audit.methods import lime as lime_mod
from saliency_audit.methods.targets import pick
from saliency_audit.models.info import ModelInfo
from saliency_audit.models.modelset import ModelSet
from saliency_audit.models.target import (OUTPUT_CHOICES, OUTPUT_KINDS, SOURCE_CONFIGURED, SOURCE_DEFAULT,
                                          SOURCE_MODEL, SOURCE_ONE_LOGIT, apply_output, explained_probability,
                                          parse_class_names, resolve_output)
from saliency_audit.models.wrapper import AuditModel
from saliency_audit.report.accuracy import summary
from saliency_audit.report.warnings import collect

SIZE = 32
#: the pixels each output reads: finding 0 (the audited one), finding 1 (present in every image), finding 2
REGIONS = ((slice(2, 12), slice(2, 12)), (slice(20, 30), slice(20, 30)), (slice(2, 12), slice(20, 30)))
GAIN = 12.0

FACTORY = '''
import torch
from torch import nn

REGIONS = {regions!r}


class Findings(nn.Module):
    input_size = (32, 32)
    in_channels = 1

    def __init__(self, num_classes=3):
        super().__init__()
        self.head = nn.Linear(3, num_classes)

    def forward(self, x):
        means = torch.stack([x[:, :, slice(*r), slice(*c)].mean(dim=(1, 2, 3)) for r, c in REGIONS], dim=1)
        return self.head(means)


def build(num_classes=3):
    return Findings(num_classes)
'''


class Findings(nn.Module):
    """Output k's logit: GAIN * (mean of REGIONS[k] - 0.5); ``keep``: only these outputs (a cut-down head)."""

    def __init__(self, keep=(0, 1, 2)):
        super().__init__()
        self.head = nn.Linear(3, len(keep))
        with torch.no_grad():
            self.head.weight.copy_(GAIN * torch.eye(3)[list(keep)])
            self.head.bias.fill_(-GAIN * 0.5)

    def forward(self, x):
        means = torch.stack([x[:, :, r, c].mean(dim=(1, 2, 3)) for r, c in REGIONS], dim=1)
        return self.head(means)


def _model(keep=(0, 1, 2), output=None, spec="findings"):
    info = ModelInfo(spec=spec, arch="test", num_classes=len(keep), input_size=(SIZE, SIZE), in_channels=1,
                     mean=(0.0,), std=(1.0,), output=output)
    return AuditModel(Findings(keep), info).eval()


def _samples(n=8, seed=0, labels=None):
    """Images with finding 1 in every image (brighter than finding 0: its logit is the largest), finding 0 in the
    positives (label 1; ``labels``, else every image) and a faint finding 2 in the negatives."""
    rng = np.random.default_rng(seed)
    labels = [1] * n if labels is None else labels
    out = []
    for i, y in enumerate(labels):
        img = 0.3 + 0.05 * rng.standard_normal((SIZE, SIZE))
        img[REGIONS[1]] += 0.65
        img[REGIONS[2]] += 0.2 * (1 - y)  # finding 2 where finding 0 is absent
        mask = np.zeros((SIZE, SIZE), bool)
        if y:
            img[REGIONS[0]] += 0.55
            mask[REGIONS[0]] = True
        out.append(Sample(f"s{i}", torch.from_numpy(np.clip(img, 0, 1)).float()[None], int(y), mask=mask))
    return out


def _oracle(n):
    m = np.zeros((SIZE, SIZE), np.float32)
    m[REGIONS[0]] = 1.0
    return np.stack([m] * n)


def _road(model, samples, maps, cfg=None):
    cfg = cfg or AuditConfig()
    cfg.target_class = 0
    P = Passes(cfg, MapStore(cfg, None))
    return P.road(model, samples, maps), P.curves(model, samples, maps)


def _settled(model, configured="auto", names=()):
    apply_output(model, configured, names)
    return model


# -- (a) ROAD and deletion/insertion on independent sigmoids --------------------------------------------------------

def test_road_reads_the_explained_sigmoid_and_a_softmax_across_the_findings_would_change_it():
    samples = _samples(6)
    maps = _oracle(len(samples))
    declared = _settled(_model(output="sigmoid"))
    assert (declared.info.output, declared.info.extra["output_source"]) == ("sigmoid", SOURCE_MODEL)
    road, curves = _road(declared, samples, maps)
    # the same network cut down to output 0 alone: a single logit, read by its sigmoid (unchanged since before)
    alone, alone_curves = _road(_settled(_model(keep=(0,))), samples, maps)
    for key in ("morf", "lerf", "base"):
        np.testing.assert_allclose(road[key], alone[key], atol=1e-6)
    for key in ("deletion", "insertion"):
        np.testing.assert_allclose(curves[key], alone_curves[key], atol=1e-6)
    # the intact images' probability is the finding's own sigmoid, by hand
    z0 = np.array([GAIN * (float(s.image[0][REGIONS[0]].mean()) - 0.5) for s in samples])
    np.testing.assert_allclose(road["base"], 1 / (1 + np.exp(-z0)), rtol=1e-5)
    assert road["base"].min() > 0.95  # the finding is there: its sigmoid says so
    # read as competing classes, finding 1 (present everywhere) takes most of the mass and damps every change
    soft, soft_curves = _road(_settled(_model(), "softmax"), samples, maps)
    assert soft["base"].max() < 0.4
    score, soft_score = road_score(road).mean(), road_score(soft).mean()
    assert score - soft_score > 0.15, (score, soft_score)
    # measured: ROAD 0.45 by the sigmoid, 0.23 through the softmax; insertion AUC 0.98 and 0.36
    assert soft_curves["insertion_auc"].mean() < curves["insertion_auc"].mean() - 0.3


def test_the_audit_uses_the_sigmoid_when_the_config_says_output_sigmoid(tmp_path, monkeypatch):
    """``--output=sigmoid`` (config ``output``): ModelSet loads the model and settles its kind; Passes then read
    the sigmoid.  Without it, three outputs are read as a softmax (the default, recorded as such)."""
    (tmp_path / "findings_factory.py").write_text(FACTORY.format(
        regions=tuple(((r.start, r.stop), (c.start, c.stop)) for r, c in REGIONS)))
    monkeypatch.syspath_prepend(str(tmp_path))
    weights = tmp_path / "findings.pt"
    torch.save(Findings().state_dict(), weights)
    samples = _samples()
    maps = _oracle(len(samples))
    fast = {"completeness": {"fill": "blur"}}  # no imputation solve (the test above runs the default fill)
    reference, _ = _road(_settled(_model(output="sigmoid")), samples, maps, load_config(overrides=fast))
    spec = f"findings_factory:build:{weights}"
    for configured, kind, source in (("sigmoid", "sigmoid", SOURCE_CONFIGURED), ("auto", "softmax", SOURCE_DEFAULT)):
        cfg = load_config(overrides={"output": configured, "target_class": 0,
                                     "class_names": ["Nodule", "Effusion", "Mass"],
                                     "model": {"mean": [0.0], "std": [1.0]}, **fast})
        model = ModelSet(cfg, spec).get("primary")
        assert (model.info.output, model.info.extra["output_source"]) == (kind, source)
        assert model.info.class_names == ("Nodule", "Effusion", "Mass")
        d = model.info.to_dict()
        assert d["output"] == kind and d["class_names"] == ["Nodule", "Effusion", "Mass"]
        road = Passes(cfg, MapStore(cfg, None)).road(model, samples, maps)
        same = np.allclose(road["morf"], reference["morf"], atol=1e-6) and np.allclose(road["base"],
                                                                                        reference["base"], atol=1e-6)
        assert same == (kind == "sigmoid"), configured


# -- (b) ScoreCAM and LIME --------------------------------------------------------------------------------------------

class TinyFindings(nn.Module):
    """A small CNN with three outputs (``keep``: a cut-down head of the same weights)."""

    def __init__(self, keep=(0, 1, 2)):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1),
                                      nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        full = nn.Linear(6, 3)
        with torch.no_grad():
            full.bias.copy_(torch.tensor([0.0, 3.0, 1.0]))  # outputs 1 and 2 large: a softmax damps output 0
        self.head = nn.Linear(6, len(keep))
        with torch.no_grad():
            self.head.weight.copy_(full.weight[list(keep)])
            self.head.bias.copy_(full.bias[list(keep)])

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


def _tiny(keep=(0, 1, 2), output=None):
    info = ModelInfo(spec="tiny-findings", arch="tiny", num_classes=len(keep), input_size=(24, 24), in_channels=1,
                     mean=(0.5,), std=(0.25,), output=output)
    return _settled(AuditModel(TinyFindings(keep), info).eval())


def _images(n=3):
    g = torch.Generator().manual_seed(1)
    return [Sample(f"t{i}", torch.rand(1, 24, 24, generator=g), 1) for i in range(n)]


@pytest.mark.parametrize("method", ["scorecam", "lime"])
def test_scorecam_and_lime_weigh_by_the_explained_sigmoid(method):
    samples = _images()
    cfg = AuditConfig()
    cfg.target_class = 0
    cfg.methods.lime.samples = 40
    cfg.methods.lime.segments = 8

    def raw(model):  # the method's own output: ScoreCAM's weighted activations, LIME's surrogate coefficients
        return MapStore(cfg, None).raw(model, method, samples, [s.key() for s in samples]).numpy()

    sigmoid = raw(_tiny(output="sigmoid"))
    alone = raw(_tiny(keep=(0,)))  # output 0 alone: its sigmoid, as a single-logit head has always been read
    scale = np.abs(alone).max()
    assert scale > 0
    np.testing.assert_allclose(sigmoid, alone, atol=1e-5 * scale)
    softmax = raw(_tiny())  # three outputs, nothing declared: read as competing classes
    assert np.abs(softmax - sigmoid).max() > 0.1 * scale


# -- (c) a softmax head and a single logit: the numbers from before --------------------------------------------------

def _old_passes(logits, target):  # engine/passes.py's probabilities before issue 30
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    p = torch.softmax(logits.float(), dim=1)
    if isinstance(target, torch.Tensor):
        return p.gather(1, target.view(-1, 1).to(p.device))[:, 0]
    return p[:, int(target)]


def _old_lime(logits, target):  # methods/lime.py's probabilities before issue 30
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return pick(torch.softmax(logits, dim=1), target)


def _old_scorecam(logits, target):  # methods/camfamily.py's _probability (then pick) before issue 30
    return pick(torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1), target)


@pytest.mark.parametrize("keep", [(0, 1), (0,)], ids=["2-class softmax", "1 logit"])
def test_softmax_and_single_logit_heads_give_exactly_the_old_numbers(keep, monkeypatch):
    model = _settled(_model(keep=keep))
    assert model.info.output == ("softmax" if len(keep) == 2 else "sigmoid")
    samples = _samples(6)
    maps = _oracle(6)
    z = torch.randn(16, len(keep), generator=torch.Generator().manual_seed(3)) * 4
    per_row = torch.randint(0, len(keep), (16,), generator=torch.Generator().manual_seed(4))
    for old in (_old_passes, _old_lime, _old_scorecam):
        for target in (0, per_row):
            assert torch.equal(explained_probability(z, target, model.info.output), old(z, target))
    fast = load_config(overrides={"completeness": {"fill": "blur"}})  # the fill does not read the model
    road, curves = _road(model, samples, maps, fast)
    tiny, images = _tiny(keep=keep), _images()
    cfg = AuditConfig()
    cfg.methods.lime.samples = 30
    new = {m: MapStore(cfg, None).maps(tiny, m, images).maps for m in ("scorecam", "lime")}
    monkeypatch.setattr(passes_mod, "explained_probability", lambda logits, t, kind: _old_passes(logits, t))
    monkeypatch.setattr(lime_mod, "explained_probability", lambda logits, t, kind: _old_lime(logits, t))
    monkeypatch.setattr(camfamily, "explained_probability", lambda logits, t, kind: _old_scorecam(logits, t))
    old_road, old_curves = _road(model, samples, maps, fast)
    for key in ("morf", "lerf", "base"):
        np.testing.assert_array_equal(road[key], old_road[key])
    np.testing.assert_array_equal(curves["deletion"], old_curves["deletion"])
    for m in ("scorecam", "lime"):
        np.testing.assert_array_equal(new[m], MapStore(cfg, None).maps(tiny, m, images).maps)


def test_a_softmax_heads_accuracy_is_the_argmax_as_before():
    samples = _samples(8, labels=[0, 1] * 4)
    model = _settled(_model(keep=(1, 0)))
    with torch.no_grad():  # class 0: a constant logit 0; class 1: finding 0's, right on every image
        model.net.head.weight[0] = 0.0
        model.net.head.bias[0] = 0.0
    ms = ModelSet(AuditConfig(), "unused")
    ms["primary"] = model
    acc = ms.accuracy("primary", samples)
    assert acc == {"n": 8, "accuracy": 1.0, "balanced_accuracy": 1.0, "labels": {"0": 4, "1": 4},
                   "predicted": {"0": 4, "1": 4}}


# -- (d) accuracy of a sigmoid head: AUROC, and no blame on the input --------------------------------------------------

def _accuracy(model, samples, target_class=0):
    cfg = AuditConfig()
    cfg.target_class = target_class
    ms = ModelSet(cfg, "unused")
    ms["primary"] = model
    return ms.accuracy("primary", samples)


def test_a_sigmoid_heads_accuracy_is_its_auroc_and_a_high_one_draws_no_input_size_warning():
    samples = _samples(12, labels=[0, 1, 1] * 4)
    acc = _accuracy(_settled(_model(output="sigmoid"), names=("Nodule", "Effusion", "Mass")), samples)
    assert acc["output"] == "sigmoid" and acc["output_index"] == 0 and acc["output_name"] == "Nodule"
    assert acc["auroc"] == 1.0 and acc["accuracy"] == 1.0 and acc["labels"] == {"0": 4, "1": 8}
    # the argmax over the three sigmoids names finding 1 (in every image) everywhere: balanced accuracy 0.5, which
    # the near-chance warning used to blame on --input-size and --normalize
    with torch.no_grad():
        assert (_model()(torch.stack([s.image for s in samples])).argmax(1) == 1).all()
    evidence = {"results": [], "dataset": {"primary_accuracy": acc}}
    assert collect(evidence) == []
    assert summary(acc).startswith("AUROC 1.000 of output 0 (Nodule)'s sigmoid, accuracy at 0.5 1.000")
    # output 2 reads another finding (present exactly where finding 0 is not): a low AUROC, and the warning names it
    bad = _accuracy(_settled(_model(output="sigmoid")), samples, target_class=2)
    assert bad["auroc"] == 0.0
    (warning,) = collect({"results": [], "dataset": {"primary_accuracy": bad}})
    assert f"AUROC of output 2 on 12 audited images is {bad['auroc']:.2f}" in warning and "--finding" in warning
    # a three-output model read as a softmax by default, near chance: the warning asks whether they are sigmoids
    soft = _settled(_model())
    acc = _accuracy(soft, samples)
    (warning,) = collect({"results": [], "models": [soft.info.to_dict()],
                          "dataset": {"primary_accuracy": acc}})
    assert "say --output=sigmoid" in warning and "balanced accuracy" in warning


def test_a_single_logit_is_scored_by_its_sigmoid_not_an_argmax_of_one_column():
    samples = _samples(8, labels=[0, 1] * 4)
    acc = _accuracy(_settled(_model(keep=(0,))), samples)
    assert acc["auroc"] == 1.0 and acc["accuracy"] == 1.0 and acc["predicted"] == {"0": 4, "1": 4}


# -- (e) resolving the kind, class names, explain = "predicted" ------------------------------------------------------

def test_resolve_output_sources_and_errors():
    assert OUTPUT_KINDS == ("softmax", "sigmoid") and OUTPUT_CHOICES == cfgmod.CHOICES["output"]
    info = lambda n, output=None: ModelInfo(spec="m", arch="a", num_classes=n, output=output)  # noqa: E731
    assert resolve_output(info(1)) == ("sigmoid", SOURCE_ONE_LOGIT)
    assert resolve_output(info(1), "sigmoid") == ("sigmoid", SOURCE_ONE_LOGIT)
    assert resolve_output(info(2)) == ("softmax", SOURCE_DEFAULT)
    assert resolve_output(info(14)) == ("softmax", SOURCE_DEFAULT) and "--output=sigmoid" in SOURCE_DEFAULT
    assert resolve_output(info(14), "sigmoid") == ("sigmoid", SOURCE_CONFIGURED)
    assert resolve_output(info(2), "softmax") == ("softmax", SOURCE_CONFIGURED)
    assert resolve_output(info(18, "sigmoid")) == ("sigmoid", SOURCE_MODEL)
    assert resolve_output(info(18, "sigmoid"), "sigmoid") == ("sigmoid", SOURCE_CONFIGURED)
    with pytest.raises(AuditUsageError, match=r"^--output=softmax: model m declares sigmoid outputs"):
        resolve_output(info(18, "sigmoid"), "softmax")
    with pytest.raises(AuditUsageError, match=r"^--output=softmax: model m has a single output"):
        resolve_output(info(1), "softmax")
    with pytest.raises(AuditUsageError, match="--output=bogus"):
        resolve_output(info(3), "bogus")
    with pytest.raises(AuditUsageError, match="x.toml: output"):
        AuditConfig().merged({"output": "logits"}, "x.toml")


def test_maps_of_a_sigmoid_reading_are_cached_apart_and_a_softmax_models_key_is_unchanged():
    """ScoreCAM's and LIME's maps depend on the reading: the map cache keys it for independent sigmoids only."""
    from saliency_audit.models.wrapper import model_fingerprint

    store = MapStore(AuditConfig(), None)
    soft, sig = _settled(_model()), _settled(_model(), "sigmoid")
    assert model_fingerprint(soft) == model_fingerprint(sig)  # the same weights (what --maps checks)
    assert store.fingerprint(soft) == model_fingerprint(soft) != store.fingerprint(sig)
    two, one = _settled(_model(keep=(0, 1))), _settled(_model(keep=(0,)))
    assert store.fingerprint(two) == model_fingerprint(two) and store.fingerprint(one) == model_fingerprint(one)


def test_class_names_must_name_every_output():
    model = _model()
    with pytest.raises(AuditUsageError, match=r"^--class-names: 2 name\(s\) given for the 3 output\(s\) of model "
                                              r"findings$"):
        apply_output(model, "sigmoid", ("Nodule", "Mass"))
    assert model.info.output is None  # nothing settled by a refused call
    _settled(model, "sigmoid", ("Nodule", "Effusion", "Mass"))
    assert model.info.class_names == ("Nodule", "Effusion", "Mass")
    assert parse_class_names(" Nodule, Effusion ,Mass") == ["Nodule", "Effusion", "Mass"]
    with pytest.raises(AuditUsageError, match=r"^--class-names=Nodule,,Mass: expected comma-separated names"):
        parse_class_names("Nodule,,Mass")
    with pytest.raises(AuditUsageError, match="class_names must not repeat a name"):
        load_config(overrides={"class_names": ["a", "a"]})
    with pytest.raises(AuditUsageError, match="class_names must be non-empty printable names"):
        load_config(overrides={"class_names": ["a\nb", "c"]})  # a name lands in one-line messages and the report
    with pytest.raises(AuditUsageError, match="class_names: expected a list of strings"):
        load_config(overrides={"class_names": [1, 2]})


def test_explaining_the_predicted_class_of_independent_sigmoids_is_a_usage_error():
    samples = _samples(2)
    cfg = AuditConfig()
    cfg.explain = "predicted"
    store = MapStore(cfg, None)
    model = _settled(_model(), "sigmoid", ("Nodule", "Effusion", "Mass"))
    store.predictor = lambda: model
    with pytest.raises(AuditUsageError, match=r"^--target-class=predicted: model findings has 3 independent sigmoid "
                                              r"outputs, which have no single predicted class; name the output "
                                              r"audited with --target-class=N or --finding=Nodule$"):
        store.targets(model, samples, [s.key() for s in samples])
    single = _settled(_model(keep=(0,)))  # one logit: its only output is the one explained
    store.predictor = lambda: single
    assert torch.equal(store.targets(single, samples, [s.key() for s in samples]), torch.tensor([0, 0]))


def test_output_and_class_names_options_reach_the_loaded_model(pytester):
    pytester.makepyfile(test_x='''
import pytest
from saliency_audit.common.errors import AuditUsageError


def test_x(saliency_audit, request):
    cfg = saliency_audit.config
    assert cfg.output == "sigmoid" and cfg.class_names == ("absent", "present")
    m = saliency_audit.models.get("primary")
    assert m.info.output == "sigmoid" and m.info.class_names == ("absent", "present")
''')
    result = pytester.runpytest("--saliency-output=sigmoid", "--saliency-class-names=absent, present",
                                "--saliency-report=rep", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    bad = pytester.runpytest("--saliency-class-names=a,", "-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--class-names=a,: expected comma-separated names*"])
    wrong = pytester.runpytest("--saliency-output=logits", "-p", "no:cacheprovider")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR
