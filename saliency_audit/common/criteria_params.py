"""The built-in criteria's parameter checks, one per config section (``CriterionSpec.check``).

``check(params, need)``: ``need(ok, key, what)`` raises the usage error ``<source>: <section>.<key> <what>``
when ``ok`` is false.  Importing this module is cheap (no torch).
"""
from __future__ import annotations

#: randomization.statistic: the verdict's statistic; randomization.variants: what is reported beside it
STATISTICS = ("ssim_drop", "smooth_mprt", "emprt")
VARIANTS = STATISTICS + ("bottom_up", "top_down")
#: randomization.draw_design: whose re-initialisation explains each image (criteria.randomization.draw_index)
DRAW_DESIGNS = ("per_image", "shared")


def utility(u, need) -> None:
    need(0 < u.alpha < 0.5, "alpha", "must be in (0, 0.5)")
    need(0 <= u.min_ap <= 1, "min_ap", "must be in [0, 1]")
    need(u.prior_images >= 1, "prior_images", "must be at least 1")
    need(u.prior in ("auto", "held-out", "leave-one-out"), "prior", "must be auto, held-out or leave-one-out")


def completeness(k, need) -> None:
    need(k.n_images >= 2, "n_images", "must be at least 2")
    need(0 < k.alpha < 0.5, "alpha", "must be in (0, 0.5)")
    need(len(k.fractions) >= 1 and all(isinstance(f, (int, float)) and 0 < f < 1 for f in k.fractions),
         "fractions", "must be a list of fractions in (0, 1)")
    need(k.fill in ("linear", "linear-exact", "blur", "mean", "random"), "fill",
         "must be linear, linear-exact, blur, mean or random")
    need(k.noise >= 0, "noise", "must be >= 0")
    need(k.blur_control_sigma > 0, "blur_control_sigma", "must be > 0")
    need(k.lesion_sigma >= 0, "lesion_sigma", "must be >= 0")
    need(k.curve_steps >= 2, "curve_steps", "must be at least 2")
    need(k.deletion_fill in ("zero", "blur", "mean"), "deletion_fill", "must be zero, blur or mean")
    need(k.insertion_start in ("zero", "blur", "mean"), "insertion_start", "must be zero, blur or mean")


def interpretability(p, need) -> None:
    need(0 < p.alpha < 0.5, "alpha", "must be in (0, 0.5)")
    need(p.pointing_tolerance >= 0, "pointing_tolerance", "must be >= 0")


def human(h, need) -> None:
    need(0 < h.alpha < 0.5, "alpha", "must be in (0, 0.5)")
    need(0 < h.margin <= 2, "margin", "must be in (0, 2]")
    need(h.threshold in ("otsu", "fixed"), "threshold", "must be otsu or fixed")
    need(0 <= h.fixed_threshold < 1, "fixed_threshold", "must be in [0, 1)")


def randomization(r, need) -> None:
    need(r.n_images >= 2, "n_images", "must be at least 2")
    need(r.draws >= 1, "draws", "must be at least 1")
    need(r.draw_design in DRAW_DESIGNS, "draw_design", f"must be one of {', '.join(DRAW_DESIGNS)}")
    need(0 < r.alpha < 0.5, "alpha", "must be in (0, 0.5)")
    for key in ("head_min", "all_min", "label_min"):
        need(0 <= getattr(r, key) <= 2, key, "must be in [0, 2]")
    need(r.bn_policy in ("reset", "affine", "keep"), "bn_policy", "must be reset, affine or keep")
    need(r.statistic in STATISTICS, "statistic", f"must be one of {', '.join(STATISTICS)}")
    need(r.order in ("top_down", "bottom_up"), "order", "must be top_down or bottom_up")
    need(all(v in VARIANTS for v in r.variants), "variants", f"must list some of {', '.join(VARIANTS)}")
    need(r.variant_images >= 2, "variant_images", "must be at least 2")
    need(r.curve_images >= 2, "curve_images", "must be at least 2")
    need(r.smooth_samples >= 1, "smooth_samples", "must be at least 1")
    need(r.smooth_noise >= 0, "smooth_noise", "must be >= 0")
    need(r.emprt_bins >= 2, "emprt_bins", "must be at least 2")


def consistency(c, need) -> None:
    need(c.n_images >= 2, "n_images", "must be at least 2")
    need(0 < c.alpha < 0.5, "alpha", "must be in (0, 0.5)")
    need(-1 <= c.min_ssim <= 1, "min_ssim", "must be in [-1, 1]")
