"""AuditConfig: every threshold and parameter of an audit, with its source.

Values come, lowest precedence first, from the defaults below, the
``[tool.saliency_audit]`` table of the nearest ``pyproject.toml``, the TOML
file given with ``--audit-config`` and finally command-line options.  Every
value actually used is written to the evidence (``AuditConfig.to_dict``).

Why each default is what it is:

* ``methods.sg.samples = 25``, ``methods.sg.noise = 0.15``: SmoothGrad as in
  Smilkov et al. 2017 and the seed study (Arun et al. 2021, PAIR ``saliency``
  defaults): 25 draws, noise stdev 0.15 × (max − min) of each image.
* ``methods.ig.steps = 10``, ``methods.ig.baseline = "black"``: the seed
  study's Integrated Gradients setting.
* ``postprocess.clip_percentile = 99``: PAIR's ``VisualizeImageGrayscale``
  (abs-sum over channels, clip at the 99th percentile, min-max per map).
* ``methods.xrai.reference_size = 224``: XRAI's Felzenszwalb segmentation and
  5-px dilation are tuned for 224-px images; they are scaled from there.
* ``methods.gradcam.layer``: the one CAM layer of GradCAM, GradCAM++, ScoreCAM, LayerCAM and HiResCAM (the
  last convolutional block, post-ReLU; ``saliency_audit.models.layers``), so the CAM family differs only in
  how it weighs that layer's channels.
* ``methods.occlusion.window = 0.125``, ``stride = 0.5``, ``fill = "zero"``: Zeiler & Fergus (2014) slide a
  grey square; captum's tutorials use 15-px windows, stride 8, at 224 px.  A window of 1/8 of the input
  side (28 px at 224, 16 px at 128) with half-overlapping steps gives a 15 × 15 grid of windows at any
  size; the black fill is captum's default baseline.
* ``methods.lime.samples = 1000``, ``segments = 50``, ``kernel_width = 0.25``, ``ridge = 1``: the lime
  package's image defaults (1000 samples, kernel width 0.25 on the cosine distance, Ridge(alpha=1)); SLIC
  superpixels (50, compactness 0.1 for grey levels in [0, 1]) instead of lime's quickshift, which needs
  colour images.  Hidden superpixels show their own mean grey level (lime's ``hide_color=None``).
* ``sequential = true``, ``sequential_batch = 8``, ``sequential_rule = "obf"``, ``sequential_futility =
  0.05``: every criterion looks at its images 8 at a time and stops a (criterion, method) pair as soon as
  its verdict is decided (``saliency_audit/stats/sequential.py``); ``--no-sequential`` gives fixed-n verdicts.
  ``"obf"``: a group-sequential test with Lan–DeMets O'Brien–Fleming alpha spending (the clinical-trial
  design), Student-t bounds at each look's nominal level guarded by Hall's skewness-corrected t, and from
  half the images on a non-binding futility stop when the conditional power of a pass under the current
  trend is below 5 %.  Every look's boundary is finite for any planned n (alpha kept in logs:
  ``saliency_audit/stats/groupseq.py``).  Its wrong-pass rate at a true mean on the threshold, per criterion,
  shape and planned n, is the calibration table of docs/ci-and-release.md
  (benchmarks/results/error_rates.json); its cost
  is power (benchmarks/results/sequential_error.json), its gain model passes: the demo audit spends 40 %
  of the fixed-n one's (benchmarks/results/sequential.json).  Left-over limit: a rare, large negative
  value (10 % of images at -0.9) may not have shown at 8 images; the fixed-n bound at 24 misses it too.
  ``"betting"``: a distribution-free confidence sequence (Waudby-Smith & Ramdas 2023), exact at any n but
  too wide to stop at 8 images.
* ``utility.alpha = 0.05``: one-sided 95 % bootstrap bound, as the issue and
  common practice in equivalence/superiority testing.
* ``utility.min_ap = 0.1``: a floor on absolute usefulness.  In Arun et al.
  (SIIM) the methods the authors judged untrustworthy sit at AP 0.03–0.04
  (SG, SIG) while a segmentation network reached 0.40; below 0.1 fewer than
  one in ten highlighted pixels is lesion at any recall.
* ``utility.prior_images = 200``: images outside the audited set the
  average-mask prior is built from; enough for a smooth prior on the demo.
* ``randomization.head_min = 0.5``, ``randomization.all_min = 0.8``: the
  normalized drop d = (1 − s_stage) / (1 − s_floor) measures how far a map
  moved from "identical" (d = 0) toward "a map of an unrelated image"
  (d = 1).  Randomizing only the logit layer must move it at least half way,
  randomizing every layer at least 80 % of the way (Adebayo et al. 2018 find
  trustworthy methods at the noise floor once the model is random); label
  randomization uses the 0.8 bound (``label_min``).
* ``randomization.n_images = 24``: each cascade stage recomputes every map,
  so the cost is stages × images; 24 images give a bootstrap bound within
  about ±0.05 for the demo's spread of d.
* ``randomization.draw_design = "per_image"``, ``randomization.draws = 1``:
  every image is explained by its own random re-initialisation (the same
  one at every cascade stage: its own cascade), and ``draws`` of them are
  averaged per image at the two stages the verdict checks (the first, i.e.
  the head top-down, and the all-blocks stage;
  ``criteria.randomization.stage_draws`` / ``draw_index``).  Both papers
  draw once for all images (``"shared"``), and then one draw decides
  verdicts by luck: a random head is one random direction in feature space,
  it moves every image's map together, and the bootstrap over images cannot
  see it.  Over 10 randomization seeds at a fixed 24 images
  (``benchmarks/bench_flip_rate.py``, ``results/flip_rate.json``) the demo's
  head verdicts flip for 20 % of seeds on average with one shared draw (up
  to 40 %: Guided GradCAM), 11 % with three shared draws averaged, 5 % with
  five, and 2.5 % with one draw per image (only Guided GradCAM, 2 seeds of
  10, its mean d 0.86 with the widest per-image spread); the all-blocks
  verdicts of GradCAM and Guided GradCAM, which failed for 2 seeds of 10
  with one shared draw, pass for every seed per image.  Per image, the
  (image, draw) pairs are independent, so the bound covers the
  randomization's variance as well as the images', at the cost of one draw:
  the demo plan's 85,034 image-passes at most, where five shared draws
  cost 133,418 (the last release's defaults, five shared draws and the
  stages between on every image: 179,498).  What still flips is a method whose mean d sits at its
  threshold, which the bound then says.
* ``randomization.curve_images = 8``, ``variants = ("emprt",)``: the
  cascade stages between the verdict's two are descriptive (the curve of
  Adebayo et al.'s and Arun et al.'s figures), so they are computed on the
  first 8 of the verdict's images, each row with its n; Efficient MPRT reuses
  the verdict's two end points and costs nothing; the bottom-up order and
  Smooth MPRT are opt-in variants.  On the demo, Smooth IG's cascade was 110 s
  of a 300 s cold audit, 40 % of it the stages between and a quarter the
  bottom-up variant on 8 images.
* ``randomization.bn_policy = "reset"``: a randomized BatchNorm is the one of
  a freshly constructed network (affine re-initialised, running statistics
  reset), so the fully randomized stage *is* an untrained network.
* ``consistency.min_ssim = 0.5``: the reference line Arun et al. draw in
  their repeatability/reproducibility figure; ``consistency.n_images = 24``
  as for randomization.
* ``pass_batch = 64``: images per model pass inside IG / SmoothGrad.  On 2
  CPU cores a 128-px demo pass costs 1.6 ms/image in chunks of 64 and
  3.0 ms/image in one chunk of 320 (cache effects).
  ``pass_pixels = 64 × 128²`` caps a pass by input pixels for larger models:
  densenet121 at 224 px then runs 20 images per pass (0.12 s/image/pass
  against 0.35 s in passes of 64).  Both apply on CPU only: on CUDA a pass
  takes as many images as 60 % of the free GPU memory holds (measured once
  per model, ``saliency_audit/common/gpus.py``).
* ``utility.prior = "auto"``: the average-mask prior held out of the audited
  set, or leave-one-out when that gives more masks (a team auditing all of
  its positives keeps its verdicts); see :mod:`saliency_audit.data.samplesets`.
* ``completeness.fractions = (0.2, 0.4, 0.6, 0.8)``, ``fill = "linear"``,
  ``noise = 0.01``: ROAD as mednet's ``completeness`` command runs it (Rong
  et al. 2022: noisy linear imputation, noise std 0.01, MoRF and LeRF).
* ``completeness.n_images = 24``: the first 24 images of the localisation
  set, as for randomization; every map scored costs 2 × 4 imputed images.
* ``completeness.blur_control_sigma = 4`` px at 128 px: Song et al. (2023)
  show ROAD rewards blurry maps; the control is the method's map blurred
  this much (about a lesion radius on the demo), reported beside the verdict.
* ``completeness.lesion_sigma = 1`` px at 128 px: the lesion-as-map of the
  lesion-reliance diagnosis is the mask softened by one pixel, so its
  ordering inside the lesion is not arbitrary raster order.
* ``completeness.curve_steps = 10``, ``deletion_fill = "zero"``,
  ``insertion_start = "blur"``: RISE's deletion and insertion curves (Petsiuk
  et al. 2018) at 10 % steps.
* ``interpretability.pointing_tolerance = 0``: the pointing game without
  tolerance (Zhang et al. 2018 use 15 px at 224 px for natural images; a
  lesion-sized tolerance would let a map miss small lesions and still hit).
* ``human.alpha = 0.05``, ``human.margin = 0.9``, ``human.threshold = "otsu"``: the radiologist benchmark
  (``--human-annotations``); each default's reason is beside it in :class:`HumanParams`.
* ``stats.resamples = 4000``: bootstrap resamples; the Monte-Carlo error of a
  5 % quantile with 4000 resamples is well below the bounds' resolution.
* ``stats.multiplicity = "none"``, ``stats.family_alpha = 0.05``: each verdict
  at its own criterion's alpha (the papers' practice), or ``"holm"`` /
  ``"bonferroni"`` over the gate's verdicts (every method's, not the
  controls'), which keeps the chance that any pass of the run is wrong at most
  ``family_alpha`` (:mod:`saliency_audit.stats.multiplicity`).  A family needs every
  verdict before it can decide one, so the run computes them all at its first
  audit test; it cannot be split over ``--audit-shard`` or ``-n``.
* Limits: a config file comes from elsewhere, so every value is type-checked as it is read and must be
  finite, within its range, at most its documented maximum (e.g. ``utility.prior_images`` at most 100,000:
  the prior reads a mask per image up front) and one of its choices; ``postprocess.reduction`` and
  ``normalization`` have one choice each, the one postprocessing implements.  The full list of maxima and
  choices is the block after :func:`load_config` (``INT_RANGES``, ``FLOAT_RANGES``, ``CHOICES``).
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from .common.criteria_params import DRAW_DESIGNS, STATISTICS, VARIANTS  # noqa: F401  (their home before)
from .common.criteria_registry import CRITERIA as _REGISTRY
from .common.errors import AuditUsageError, one_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: The eight methods of Arun et al. 2021, in the paper's order.
PAPER_METHODS = ("grad", "sg", "ig", "sig", "gradcam", "xrai", "gbp", "ggcam")
#: Criterion names of the interface contract, in report order (the registry: saliency_audit.common.criteria_registry,
#: whose extensions, if any, follow these).
CRITERIA = _REGISTRY.builtin


@dataclass
class SmoothGradParams:
    samples: int = 25
    noise: float = 0.15  # fraction of each image's (max - min)


@dataclass
class IGParams:
    steps: int = 10
    baseline: str = "black"  # "black" (zeros in pixel space) or "mean" (image mean)
    integration: str = "riemann_trapezoid"  # captum ``method``; PAIR's IG is a Riemann sum


@dataclass
class GradCAMParams:
    layer: str | None = None  # module name; None = automatic discovery
    interpolation: str = "bilinear"


@dataclass
class XRAIParams:
    algorithm: str = "full"
    reference_size: int = 224
    scales: tuple = (50, 100, 150, 250, 500, 1200)
    sigma: float = 0.8
    min_segment_size: int = 150  # at reference_size
    dilation_radius: float = 5.0  # at reference_size


@dataclass
class OcclusionParams:
    window: float = 0.125  # side of the occluding square, as a fraction of the input side (28 px at 224)
    stride: float = 0.5  # step between windows, as a fraction of the window (half-overlapping windows)
    fill: str = "zero"  # what the window shows: "zero" (black, captum's default baseline) or "mean" (image mean)


@dataclass
class LimeParams:
    samples: int = 1000  # perturbed images per explained image (the lime package's LimeImageExplainer default)
    segments: int = 50  # SLIC superpixels asked for at any input size
    compactness: float = 0.1  # SLIC compactness for grey levels in [0, 1]
    kernel_width: float = 0.25  # exponential kernel on the cosine distance to the unperturbed image (lime's)
    ridge: float = 1.0  # L2 penalty of the linear surrogate (lime's Ridge(alpha=1))


@dataclass
class MethodParams:
    sg: SmoothGradParams = field(default_factory=SmoothGradParams)
    ig: IGParams = field(default_factory=IGParams)
    gradcam: GradCAMParams = field(default_factory=GradCAMParams)
    xrai: XRAIParams = field(default_factory=XRAIParams)
    occlusion: OcclusionParams = field(default_factory=OcclusionParams)
    lime: LimeParams = field(default_factory=LimeParams)


@dataclass
class PostprocessParams:
    reduction: str = "abs-sum"
    clip_percentile: float = 99.0
    normalization: str = "min-max per map"


@dataclass
class UtilityParams:
    alpha: float = 0.05
    min_ap: float = 0.1
    prior_images: int = 200
    prior: str = "auto"  # auto | held-out | leave-one-out (saliency_audit.data.samplesets)


@dataclass
class RandomizationParams:
    n_images: int = 24
    alpha: float = 0.05
    head_min: float = 0.5
    all_min: float = 0.8
    label_min: float = 0.8
    bn_policy: str = "reset"  # reset | affine | keep (saliency_audit.models.randomize)
    independent: bool = False  # also randomize one block at a time (its own curve)
    draws: int = 1  # re-initialisations averaged at the verdict's two stages (criteria.randomization.stage_draws)
    draw_design: str = "per_image"  # per_image: every image its own re-initialisations; shared: the same for all
    blocks: tuple = ()  # override: module names (or lists of names) head-first
    statistic: str = "ssim_drop"  # the verdict's: ssim_drop | smooth_mprt | emprt (criteria/mprt.py)
    order: str = "top_down"  # cascade order of the verdict: top_down (Adebayo et al.) | bottom_up (Binder et al.)
    variants: tuple = ("emprt",)  # also computed and reported: ssim_drop, smooth_mprt, emprt,
    # bottom_up, top_down (each on the first variant_images of the verdict's images; never gating)
    variant_images: int = 8
    curve_images: int = 8  # the stages between the verdict's two (descriptive) on the first 8 of its images
    smooth_samples: int = 50  # Smooth MPRT: noisy copies averaged per map (Hedström et al.'s ImageNet setting)
    smooth_noise: float = 0.1  # ... noise std as a fraction of each image's (max - min)
    emprt_bins: int = 100  # Efficient MPRT: histogram bins of the entropy
    emprt_min: float = 0.0  # ... the lower bound of the mean relative entropy rise must exceed this


@dataclass
class ConsistencyParams:
    n_images: int = 24
    alpha: float = 0.05
    min_ssim: float = 0.5


@dataclass
class CompletenessParams:
    n_images: int = 24  # the first images of the localisation set (each costs 8 imputed passes per map scored)
    alpha: float = 0.05
    fractions: tuple = (0.2, 0.4, 0.6, 0.8)  # share of pixels removed (mednet's ROAD percentiles)
    fill: str = "linear"  # ROAD's noisy linear imputation (saliency_audit.metrics.perturbation.FILLS)
    noise: float = 0.01  # std of the imputation noise, in pixel units (ROAD's default)
    blur_control_sigma: float = 4.0  # px on a 128-px grid, scaled with the grid: the blurred-map control
    lesion_sigma: float = 1.0  # px on a 128-px grid: the lesion-as-map is the mask lightly blurred
    curve_steps: int = 10  # deletion / insertion curves at 0, 1/steps, ..., 1 of the pixels
    deletion_fill: str = "zero"  # RISE: deleted pixels become black
    insertion_start: str = "blur"  # RISE: insertion starts from a blurred image


@dataclass
class InterpretabilityParams:
    alpha: float = 0.05
    pointing_tolerance: int = 0  # px on the evaluation grid the lesion is dilated by for the pointing game


@dataclass
class HumanParams:
    """The radiologist benchmark (criteria/human.py), run only with --human-annotations."""

    # one-sided 95 % bound, as every criterion's (Saporta et al. 2022 report two-sided 95 % bootstrap intervals)
    alpha: float = 0.05
    # non-inferiority margin: pass iff the lower bound of (method's hit rate / the readers') is at least this,
    # i.e. the method keeps at least 90 % of the radiologists' hit rate (a relative margin of 10 %).  A margin
    # is fixed before the audit, as in a non-inferiority trial (FDA, "Non-Inferiority Clinical Trials to
    # Establish Effectiveness", 2016); 10 % relative is about the 5-10 point margins diagnostic-accuracy
    # studies use for sensitivity, at the readers' hit rates (0.7-0.9 in CheXlocalize). A judgment call: set
    # your own.
    margin: float = 0.9
    # how a map becomes a segmentation for IoU: "otsu" (CheXlocalize's default, heatmap_to_segmentation.py) or
    # "fixed" (map > fixed_threshold on the min-max scaled map: CheXlocalize's tuned thresholds, 0.2 to 0.7)
    threshold: str = "otsu"
    fixed_threshold: float = 0.5


@dataclass
class ModelInputParams:
    """Overrides of every loaded model's input spec (empty: the architecture's defaults, e.g. ImageNet, 224/299)."""

    input_size: tuple = ()  # (H, W)
    mean: tuple = ()  # one value, or one per channel
    std: tuple = ()


@dataclass
class StatsParams:
    resamples: int = 4000
    method: str = "BCa"  # scipy.stats.bootstrap method; falls back to percentile when degenerate
    multiplicity: str = "none"  # "none" | "holm" | "bonferroni" over the gate's verdicts
    family_alpha: float = 0.05  # the family-wise level of holm / bonferroni


def pass_images(cfg: "AuditConfig", size: tuple[int, int]) -> int:
    """Images per model pass at input ``size``: ``pass_batch``, fewer for large inputs (``pass_pixels``).

    On CPU a pass slows down per image once its activations outgrow the
    caches: densenet121 at 224 px costs 0.12 s per image in passes of 8-16
    images and 0.35 s in passes of 64 (benchmarks/results/densenet121.json).
    On CUDA the figure comes from free GPU memory once a model of this input
    size has been probed (:mod:`saliency_audit.common.gpus`); until then, this rule.
    """
    if cfg.device != "cpu":
        from .common.gpus import measured_pass_images

        measured = measured_pass_images(cfg.device, size)
        if measured is not None:
            return measured
    return max(1, min(cfg.pass_batch, cfg.pass_pixels // (int(size[0]) * int(size[1]))))


@dataclass
class AuditConfig:
    n_images: int = 48
    seed: int = 0
    sequential: bool = True  # --sequential: audit images in batches, stop a pair once decided (sequential.py)
    sequential_batch: int = 8  # images added per look
    sequential_rule: str = "obf"  # "obf" (group-sequential, O'Brien-Fleming spending) or "betting" (sequential.py)
    sequential_futility: float = 0.05  # obf: stop as a fail when the conditional power of a pass is below this
    batch_size: int = 32
    pass_batch: int = 64  # images per forward/backward inside a method (IG steps, SmoothGrad draws)
    pass_pixels: int = 64 * 128 * 128  # ... and at most this many input pixels per pass (see pass_images)
    device: str = "cpu"
    target_class: int = 1
    explain: str = "target_class"  # or "predicted": each image's class as predicted by the primary model
    #: how the model's outputs become probabilities (models/target.py): "auto" (the model's own declaration,
    #: else one logit -> sigmoid, several -> softmax), "softmax" (competing classes), "sigmoid" (independent
    #: findings: a multi-label head); --output
    output: str = "auto"
    class_names: tuple = ()  # one name per model output (--class-names): findings chosen by name
    model: ModelInputParams = field(default_factory=ModelInputParams)
    methods: MethodParams = field(default_factory=MethodParams)
    postprocess: PostprocessParams = field(default_factory=PostprocessParams)
    utility: UtilityParams = field(default_factory=UtilityParams)
    randomization: RandomizationParams = field(default_factory=RandomizationParams)
    consistency: ConsistencyParams = field(default_factory=ConsistencyParams)
    completeness: CompletenessParams = field(default_factory=CompletenessParams)
    interpretability: InterpretabilityParams = field(default_factory=InterpretabilityParams)
    human: HumanParams = field(default_factory=HumanParams)  # --human-annotations: the radiologist benchmark
    stats: StatsParams = field(default_factory=StatsParams)
    cache_dir: str | None = None  # None: $SALIENCY_AUDIT_CACHE or ~/.cache/saliency-audit

    def to_dict(self) -> dict[str, Any]:
        extra = {name: asdict(self.section(name)) for name, (spec, _) in self._criterion_sections()
                 if spec.params is not None}
        return _jsonable({**asdict(self), **extra})

    def section(self, name: str):
        """A criterion's parameters: a built-in's AuditConfig field, or a registered criterion's ``params``
        (its defaults until a config file sets them)."""
        if name in {f.name for f in fields(self)}:
            return getattr(self, name)
        held = self.__dict__.setdefault("_sections", {})
        if name not in held:
            spec = dict(self._criterion_sections()).get(name, (None,))[0]
            if spec is None or spec.params is None:
                raise AuditUsageError(f"config: no criterion has a parameter section {name!r}")
            held[name] = spec.params()
        return held[name]

    @staticmethod
    def _criterion_sections() -> list[tuple[str, tuple]]:
        """(section, (the first spec declaring it, None)) of every registered criterion, in registry order."""
        out: dict = {}
        for spec in _REGISTRY.values():
            if spec.section and spec.section not in out:
                out[spec.section] = (spec, None)
        return list(out.items())

    def merged(self, values: dict[str, Any], source: str) -> "AuditConfig":
        """A copy with ``values`` (nested dict, e.g. from TOML) applied; unknown keys are errors."""
        new = copy.deepcopy(self)
        _apply(new, values, source, prefix="")
        new.validate(source)
        return new

    def validate(self, source: str = "config") -> None:
        def need(ok: bool, key: str, what: str):
            if not ok:
                raise AuditUsageError(f"{source}: {key} {what}")

        need(self.n_images >= 2, "n_images", "must be at least 2")
        need(self.sequential_batch >= 2, "sequential_batch", "must be at least 2")
        need(self.sequential_rule in ("obf", "betting"), "sequential_rule", "must be 'obf' or 'betting'")
        need(0.0 <= self.sequential_futility < 0.5, "sequential_futility", "must be in [0, 0.5)")
        need(self.target_class >= 0, "target_class", "must be >= 0")
        need(self.explain in ("target_class", "predicted"), "explain", "must be 'target_class' or 'predicted'")
        need(self.output in ("auto", "softmax", "sigmoid"), "output", "must be 'auto', 'softmax' or 'sigmoid'")
        need(all(isinstance(n, str) and n.strip() and n == n.strip() and len(n) <= 200 and n.isprintable()
                 for n in self.class_names), "class_names",
             "must be non-empty printable names of at most 200 characters, without surrounding spaces")
        need(len(set(self.class_names)) == len(self.class_names), "class_names", "must not repeat a name")
        need(self.batch_size >= 1, "batch_size", "must be at least 1")
        need(self.pass_batch >= 1, "pass_batch", "must be at least 1")
        need(self.pass_pixels >= 1, "pass_pixels", "must be at least 1")
        need(self.methods.sg.samples >= 1, "methods.sg.samples", "must be at least 1")
        need(self.methods.sg.noise >= 0, "methods.sg.noise", "must be >= 0")
        need(self.methods.ig.steps >= 2, "methods.ig.steps", "must be at least 2")
        need(self.methods.ig.baseline in ("black", "mean"), "methods.ig.baseline", "must be 'black' or 'mean'")
        need(self.methods.xrai.algorithm in ("full", "fast"), "methods.xrai.algorithm", "must be 'full' or 'fast'")
        o, lm = self.methods.occlusion, self.methods.lime
        need(0 < o.window <= 1, "methods.occlusion.window", "must be a fraction of the input side in (0, 1]")
        need(0 < o.stride <= 1, "methods.occlusion.stride", "must be a fraction of the window in (0, 1]")
        need(o.fill in ("zero", "mean"), "methods.occlusion.fill", "must be 'zero' or 'mean'")
        need(lm.samples >= 10, "methods.lime.samples", "must be at least 10")
        need(lm.segments >= 2, "methods.lime.segments", "must be at least 2")
        need(lm.compactness > 0, "methods.lime.compactness", "must be > 0")
        need(lm.kernel_width > 0, "methods.lime.kernel_width", "must be > 0")
        need(lm.ridge >= 0, "methods.lime.ridge", "must be >= 0")
        need(0 < self.postprocess.clip_percentile <= 100, "postprocess.clip_percentile", "must be in (0, 100]")
        for name, section in self._criterion_sections():
            spec = section[0]
            check = spec.check_function()
            if check is not None:
                check(self.section(name), lambda ok, key, what, _s=name: need(ok, f"{_s}.{key}", what))
        m = self.model
        need(len(m.input_size) in (0, 2) and all(isinstance(v, int) and v >= 8 for v in m.input_size),
             "model.input_size", "must be [height, width] of at least 8 pixels")
        need(len(m.mean) == len(m.std) and (len(m.mean) == 0 or all(v > 0 for v in m.std)),
             "model.mean/model.std", "must have the same length, with every std > 0")
        need(self.stats.resamples >= 100, "stats.resamples", "must be at least 100")
        need(self.stats.method in ("BCa", "percentile", "basic"), "stats.method", "must be BCa, percentile or basic")
        need(self.stats.multiplicity in ("none", "holm", "bonferroni"), "stats.multiplicity",
             "must be none, holm or bonferroni")
        need(0 < self.stats.family_alpha < 0.5, "stats.family_alpha", "must be in (0, 0.5)")
        check_values(self, source)  # issue 29: types, finiteness, ranges, maxima, choices (block at the end)


def _apply(obj: Any, values: dict[str, Any], source: str, prefix: str) -> None:
    if not isinstance(values, dict):
        raise AuditUsageError(f"{source}: {prefix.rstrip('.') or 'config'} must be a table")
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if not prefix and name not in known and isinstance(obj, AuditConfig) and _extension_section(obj, name):
            _apply(obj.section(name), value, source, prefix=f"{name}.")
            continue
        if name not in known:
            raise AuditUsageError(
                f"{source}: unknown key {prefix}{key!s} (known: {', '.join(sorted(known))})"
            )
        current = getattr(obj, name)
        if is_dataclass(current):
            _apply(current, value, source, prefix=f"{prefix}{name}.")
            continue
        key = f"{prefix}{name}"
        try:
            coerced = _coerce(value, current, key, source)
        except OverflowError:  # an integer too large for a float (TOML integers are unbounded in tomllib)
            raise AuditUsageError(f"{source}: {key}: expected a finite number, got {value!r:.80}") from None
        setattr(obj, name, check_loaded(key, coerced, current, source))


def _extension_section(config: "AuditConfig", name: str) -> bool:
    """Whether ``name`` is a registered (third-party) criterion's parameter section."""
    return any(sec == name and spec.params is not None for sec, (spec, _) in config._criterion_sections())


def _coerce(value: Any, current: Any, key: str, source: str) -> Any:
    if isinstance(current, bool) and not isinstance(value, bool):
        raise AuditUsageError(f"{source}: {key} must be true or false, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AuditUsageError(f"{source}: {key} must be an integer, got {value!r}")
    if isinstance(current, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise AuditUsageError(f"{source}: {key} must be a number, got {value!r}")
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        if not isinstance(value, (list, tuple)):
            raise AuditUsageError(f"{source}: {key} must be a list, got {value!r}")
        return tuple(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def read_toml_table(path: Path, table: str | None = None, source: str | None = None) -> dict[str, Any]:
    """The TOML file's content, or one dotted table of it ({} when absent)."""
    data = load_toml(path, source or str(path))
    if table:
        for part in table.split("."):
            data = data.get(part, {})
            if not isinstance(data, dict):
                raise AuditUsageError(f"{source or path}: {table}: expected a table, got {data!r:.80}")
    return data


def load_config(
    pyproject: Path | None = None,
    audit_config: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> AuditConfig:
    """Defaults <- pyproject [tool.saliency_audit] <- --audit-config <- overrides."""
    config = AuditConfig()
    if pyproject is not None and pyproject.is_file():
        values = read_toml_table(pyproject, "tool.saliency_audit")
        if values:
            config = config.merged(values, f"{pyproject} [tool.saliency_audit]")
    if audit_config is not None:
        source = f"--audit-config={audit_config}"
        values = read_toml_table(Path(audit_config), source=source)
        tool = values.get("tool", {})
        values = tool.get("saliency_audit", values) if isinstance(tool, dict) else values
        config = config.merged(values, source)
    if overrides:
        config = config.merged(overrides, "command line")
    config.validate()
    return config


# == Untrusted values (issue 29): every value type-checked at load, finite, in range, bounded, one of its choices ==
#
# A config file comes from elsewhere (a repository, a CI job), so nothing in it may reach the audit unchecked:
# a wrong type used to surface as an INTERNALERROR deep in a run, a NaN threshold as a verdict that can never
# pass (or always does), a huge count as a run that never ends, and a value the code never read as a
# recorded "value used".  :func:`check_loaded` runs as each value is read (one line naming the key and the
# file), :func:`check_values` on the merged config (from :meth:`AuditConfig.validate`).
#
# Documented maxima (far beyond any real audit; each bounds time or memory a value could otherwise claim):
#
# * images: ``n_images``, ``*.n_images``, ``randomization.variant_images`` / ``curve_images`` at most
#   1,000,000; ``utility.prior_images`` at most 100,000 (the prior reads a mask per image up front);
# * per-image work: ``methods.sg.samples``, ``methods.ig.steps``, ``randomization.smooth_samples``,
#   ``randomization.emprt_bins`` at most 10,000; ``methods.lime.samples`` at most 100,000,
#   ``methods.lime.segments`` 10,000; ``randomization.draws`` 100; ``completeness.curve_steps`` 1,000;
#   ``stats.resamples`` 1,000,000;
# * batches: ``sequential_batch``, ``batch_size``, ``pass_batch`` at most 10,000; ``pass_pixels`` at most 2**31;
# * pixels: ``model.input_size`` 8 to 8,192; ``methods.xrai.reference_size`` 8 to 8,192,
#   ``min_segment_size`` at most 8,192²; ``interpretability.pointing_tolerance`` at most 8,192;
# * ``target_class`` at most 100,000; ``seed`` 0 to 2**63 - 1; lists at most 64 entries;
# * real numbers: finite (TOML allows ``nan`` and ``inf``); ``randomization.emprt_min`` within the entropy
#   rise's range [-1, 10] (criteria/mprt.py ``RISE_RANGE``); ``model.mean`` in [-1000, 1000], ``model.std`` in
#   (0, 1000]; noise levels, sigmas and radii at most 1,000; ``methods.lime.ridge`` at most 10**6;
# * strings: every enum-like key one of :data:`CHOICES`; ``postprocess.reduction`` and
#   ``postprocess.normalization`` have one choice each ("abs-sum", "min-max per map": the only ones
#   ``saliency_audit.methods.postprocess`` implements), so the evidence's record of them is what was used;
#   ``device``, ``methods.gradcam.layer`` and ``cache_dir`` non-empty, at most 4,096 characters, no NUL;
# * the file: at most 1 MiB of UTF-8 TOML.
MAX_CONFIG_BYTES = 2**20
MAX_LIST = 64
MAX_TEXT = 4096
#: key -> (least, most) for every integer value
INT_RANGES: dict[str, tuple[int, int]] = {
    "n_images": (2, 1_000_000), "seed": (0, 2**63 - 1), "sequential_batch": (2, 10_000), "batch_size": (1, 10_000),
    "pass_batch": (1, 10_000), "pass_pixels": (1, 2**31), "target_class": (0, 100_000),
    "methods.sg.samples": (1, 10_000), "methods.ig.steps": (2, 10_000), "methods.xrai.reference_size": (8, 8192),
    "methods.xrai.min_segment_size": (1, 8192 * 8192), "methods.lime.samples": (10, 100_000),
    "methods.lime.segments": (2, 10_000), "utility.prior_images": (1, 100_000),
    "randomization.n_images": (2, 1_000_000), "randomization.draws": (1, 100),
    "randomization.variant_images": (2, 1_000_000), "randomization.curve_images": (2, 1_000_000),
    "randomization.smooth_samples": (1, 10_000), "randomization.emprt_bins": (2, 10_000),
    "consistency.n_images": (2, 1_000_000), "completeness.n_images": (2, 1_000_000),
    "completeness.curve_steps": (2, 1000), "interpretability.pointing_tolerance": (0, 8192),
    "stats.resamples": (100, 1_000_000),
}
#: key -> (least, most) for real values not bounded by :meth:`AuditConfig.validate`'s own ranges
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "methods.sg.noise": (0.0, 1000.0), "methods.xrai.sigma": (0.0, 1000.0),
    "methods.xrai.dilation_radius": (0.0, 1000.0), "methods.lime.compactness": (0.0, 1000.0),
    "methods.lime.kernel_width": (0.0, 1000.0), "methods.lime.ridge": (0.0, 1e6),
    "randomization.smooth_noise": (0.0, 1000.0), "randomization.emprt_min": (-1.0, 10.0),
    "completeness.noise": (0.0, 1000.0), "completeness.blur_control_sigma": (0.0, 1000.0),
    "completeness.lesion_sigma": (0.0, 1000.0),
}
#: every enum-like string key and its choices
CHOICES: dict[str, tuple[str, ...]] = {
    "sequential_rule": ("obf", "betting"), "explain": ("target_class", "predicted"),
    "output": ("auto", "softmax", "sigmoid"),  # models/target.py OUTPUT_CHOICES
    "methods.ig.baseline": ("black", "mean"),
    "methods.ig.integration": ("riemann_trapezoid", "riemann_right", "riemann_left", "riemann_middle",
                               "gausslegendre"),  # captum's IntegratedGradients methods
    "methods.gradcam.interpolation": ("bilinear", "nearest", "bicubic", "area", "nearest-exact"),  # torch's
    "methods.xrai.algorithm": ("full", "fast"), "methods.occlusion.fill": ("zero", "mean"),
    "postprocess.reduction": ("abs-sum",), "postprocess.normalization": ("min-max per map",),
    "utility.prior": ("auto", "held-out", "leave-one-out"),
    "randomization.bn_policy": ("reset", "affine", "keep"), "randomization.draw_design": DRAW_DESIGNS,
    "randomization.statistic": STATISTICS, "randomization.order": ("top_down", "bottom_up"),
    "completeness.fill": ("linear", "linear-exact", "blur", "mean", "random"),
    "completeness.deletion_fill": ("zero", "blur", "mean"), "completeness.insertion_start": ("zero", "blur", "mean"),
    "human.threshold": ("otsu", "fixed"),
    "stats.method": ("BCa", "percentile", "basic"), "stats.multiplicity": ("none", "holm", "bonferroni"),
}
#: free-text keys (a string; ``None`` only as the default)
TEXT = ("device", "cache_dir", "methods.gradcam.layer")
#: list keys -> what each entry must be
LIST_OF = {"model.input_size": "integer", "model.mean": "number", "model.std": "number",
           "methods.xrai.scales": "number", "completeness.fractions": "number",
           "randomization.variants": "string", "randomization.blocks": "name or list of names",
           "class_names": "string"}


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _entry_ok(value: Any, what: str) -> bool:
    if what == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if what == "number":
        return (isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 2**1000
                and math.isfinite(value))
    if what == "string":
        return isinstance(value, str)
    return isinstance(value, str) or (isinstance(value, (list, tuple)) and len(value) <= MAX_LIST
                                      and all(isinstance(v, str) for v in value))


def check_loaded(key: str, value: Any, default: Any, source: str) -> Any:
    """``value`` read for ``key`` (whose default is ``default``), type-checked: one line naming key and file."""
    def bad(expected: str):
        raise AuditUsageError(f"{source}: {key}: expected {expected}, got {value!r:.80}")

    if key in TEXT or isinstance(default, str):
        if not isinstance(value, str):
            bad("a string")
        if key in TEXT and (not value or len(value) > MAX_TEXT or "\x00" in value):
            bad(f"a non-empty string of at most {MAX_TEXT} characters without NUL")
    elif isinstance(value, float) and not math.isfinite(value):
        bad("a finite number")
    elif isinstance(value, tuple):
        what = LIST_OF.get(key, "number")
        if len(value) > MAX_LIST:
            bad(f"a list of at most {MAX_LIST} entries")
        if not all(_entry_ok(v, what) for v in value):
            bad(f"a list of {'finite numbers' if what == 'number' else what + 's'}")
    return value


def leaves(obj: Any, prefix: str = ""):
    """(dotted key, value) of every setting of a config dataclass, its sections' included."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from leaves(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value


def check_values(cfg: "AuditConfig", source: str) -> None:
    """Every value of ``cfg`` of its type, finite, within its documented range, one of its choices."""
    for key, value in leaves(cfg):
        default = _DEFAULTS[key]
        if value is None and default is None:
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            raise AuditUsageError(f"{source}: {key}: expected true or false, got {value!r:.80}")
        check_loaded(key, value, default, source)
        if key in INT_RANGES:
            lo, hi = INT_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise AuditUsageError(f"{source}: {key}: expected an integer from {lo:,} to {hi:,}, got {value!r:.80}")
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise AuditUsageError(f"{source}: {key}: expected a finite number, got {value!r:.80}")
            if key in FLOAT_RANGES and not FLOAT_RANGES[key][0] <= value <= FLOAT_RANGES[key][1]:
                lo, hi = FLOAT_RANGES[key]
                raise AuditUsageError(f"{source}: {key}: expected a number in [{lo:g}, {hi:g}], got {value!r:.80}")
        if key in CHOICES and value not in CHOICES[key]:
            raise AuditUsageError(f"{source}: {key}: expected one of {', '.join(map(repr, CHOICES[key]))}, "
                                  f"got {value!r:.80}")
    m = cfg.model
    if not all(-1000 <= v <= 1000 for v in m.mean) or not all(0 < v <= 1000 for v in m.std):
        raise AuditUsageError(f"{source}: model.mean/model.std: expected means in [-1000, 1000] and standard "
                              f"deviations in (0, 1000], got {list(m.mean)!r:.80} / {list(m.std)!r:.80}")
    if not all(0 < v <= 100_000 for v in cfg.methods.xrai.scales):
        raise AuditUsageError(f"{source}: methods.xrai.scales: expected segmentation scales in (0, 100000], got "
                              f"{list(cfg.methods.xrai.scales)!r:.80}")
    if not all(8 <= v <= 8192 for v in m.input_size):
        raise AuditUsageError(f"{source}: model.input_size: expected sides of 8 to 8,192 pixels, got "
                              f"{list(m.input_size)!r:.80}")


def _flat_defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(obj: Any, prefix: str):
        for f in fields(obj):
            value = getattr(obj, f.name)
            if is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                out[f"{prefix}{f.name}"] = value
    walk(AuditConfig(), "")
    return out


_DEFAULTS = _flat_defaults()


def load_toml(path: Path, source: str) -> dict[str, Any]:
    """A TOML config file, read under :data:`MAX_CONFIG_BYTES`, as UTF-8: one line naming the file otherwise."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise AuditUsageError(f"{source}: file not found") from None
    except OSError as exc:
        raise AuditUsageError(f"{source}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise AuditUsageError(f"{source}: more than the {MAX_CONFIG_BYTES:,} bytes a config file may have")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AuditUsageError(f"{source}: not UTF-8 text (a TOML file is UTF-8)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AuditUsageError(f"{source}: not valid TOML ({one_line(exc)})") from None
    except RecursionError:
        raise AuditUsageError(f"{source}: not valid TOML (nested too deep)") from None
