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
  shape and planned n, is the README's calibration table (benchmarks/results/error_rates.json); its cost
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
* ``stats.resamples = 4000``: bootstrap resamples; the Monte-Carlo error of a
  5 % quantile with 4000 resamples is well below the bounds' resolution.
* ``stats.multiplicity = "none"``, ``stats.family_alpha = 0.05``: each verdict
  at its own criterion's alpha (the papers' practice), or ``"holm"`` /
  ``"bonferroni"`` over the gate's verdicts (every method's, not the
  controls'), which keeps the chance that any pass of the run is wrong at most
  ``family_alpha`` (:mod:`saliency_audit.stats.multiplicity`).  A family needs every
  verdict before it can decide one, so the run computes them all at its first
  audit test; it cannot be split over ``--audit-shard`` or ``-n``.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from .common.criteria_params import DRAW_DESIGNS, STATISTICS, VARIANTS  # noqa: F401  (their home before)
from .common.criteria_registry import CRITERIA as _REGISTRY
from .common.errors import AuditUsageError

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
    model: ModelInputParams = field(default_factory=ModelInputParams)
    methods: MethodParams = field(default_factory=MethodParams)
    postprocess: PostprocessParams = field(default_factory=PostprocessParams)
    utility: UtilityParams = field(default_factory=UtilityParams)
    randomization: RandomizationParams = field(default_factory=RandomizationParams)
    consistency: ConsistencyParams = field(default_factory=ConsistencyParams)
    completeness: CompletenessParams = field(default_factory=CompletenessParams)
    interpretability: InterpretabilityParams = field(default_factory=InterpretabilityParams)
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
        setattr(obj, name, _coerce(value, current, f"{prefix}{name}", source))


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


def read_toml_table(path: Path, table: str | None = None) -> dict[str, Any]:
    """The TOML file's content, or one dotted table of it ({} when absent)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise AuditUsageError(f"--audit-config: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AuditUsageError(f"{path}: not valid TOML ({exc})") from None
    if table:
        for part in table.split("."):
            data = data.get(part, {})
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
        values = read_toml_table(Path(audit_config))
        values = values.get("tool", {}).get("saliency_audit", values)
        config = config.merged(values, str(audit_config))
    if overrides:
        config = config.merged(overrides, "command line")
    config.validate()
    return config
