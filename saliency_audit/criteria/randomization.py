"""Sanity checks (Adebayo et al. 2018; Arun et al. 2021): do the maps depend on what the model learned?

* ``randomization`` — cascading model-parameter randomization: blocks are
  re-initialised from the head down, cumulatively; after each stage the maps
  are compared with the trained model's maps of the same images.  Optionally
  (``randomization.independent``) each block is also randomized alone.
* ``label_randomization`` — the maps of a model trained on permuted labels
  against the trained model's.

Similarity, per image: SSIM (the verdict's measure), Spearman rank
correlation of the absolute and of the signed maps, and HOG similarity.  The
*noise floor* of each measure is the same similarity between maps of two
*different* images from the trained model: what "unrelated" looks like for
this method on these images.  Verdicts use the normalized drop

    d = (1 − s_stage) / (1 − s_floor)

per image (0: the map did not change; 1: as different as another image's
map), with a one-sided bootstrap lower bound of its mean.  The floor is itself estimated from the same
images, so the bound is taken over each image's delta-method term (:func:`saliency_audit.stats.floor_terms`),
which carries the floor's share of the variance: with the floor treated as known, the fully randomized
stage and label randomization passed 17-24 % of simulated audits whose true d sat on the threshold
(benchmarks/results/error_rates.json; tests/test_error_guarantees.py shows it on synthetic data).  The
sequential looks, the p-values and ``saliency-audit diff`` use the same terms.
"""
from __future__ import annotations

import math

import numpy as np

from ..metrics import similarity as sim
from ..stats import bootstrap_mean, clears, floor_terms, stable_seed
from .result import CriterionResult

MEASURES = ("ssim", "spearman_abs", "spearman_signed", "hog")


def _features(ms) -> dict:
    """Per-map ranks and HOG descriptors of a MapSet, computed once and kept on it.

    The reference maps are compared with every cascade stage and with the
    noise floor; recomputing their ranks and HOG each time dominated a warm run.
    """
    memo = ms.__dict__.setdefault("_memo", {})  # shared by the MapStore's copies of the same maps
    if "features" not in memo:
        memo["features"] = {"rank_abs": [sim.ranks(m) for m in ms.maps], "rank_signed": [sim.ranks(m) for m in ms.signed],
                            "hog": [sim.hog_features(m) for m in ms.maps]}
    return memo["features"]


#: Bump when a measure's computation changes: the scores kept in the cache (:func:`similarities`) are read by
#: this number, the maps' bytes and skimage's version, nothing else.
SCORES_VERSION = 1


def _digest(ms) -> str:
    """A digest of a MapSet's maps (both kinds), computed once per MapSet."""
    memo = ms.__dict__.setdefault("_memo", {})
    if "digest" not in memo:
        from ..common.hashing import array_digest

        memo["digest"] = array_digest(ms.maps, ms.signed).hex()
    return memo["digest"]


def kept_scores_path(a, b, what: str = ""):
    """Where the similarity scores of MapSet ``a`` against ``b`` are kept (None: the maps came from no cache);
    ``what``: anything else the scores depend on (consistency's grids)."""
    folder = a.cache or b.cache
    if folder is None:
        return None
    import hashlib

    import skimage

    key = f"{SCORES_VERSION} {skimage.__version__} {_digest(a)} {_digest(b)} {what}"
    key = hashlib.sha256(key.encode()).hexdigest()
    return folder / "similarities" / key[:2] / f"{key[:32]}.npz"


def similarities(a, b) -> dict[str, np.ndarray]:
    """Per-image similarity of two MapSets (same images, same order) under every measure.

    Kept in the maps' cache folder, keyed by both MapSets' bytes: a warm run reads the scores instead of ranking
    and describing every map again (the ranks and HOG of a cascade's maps were most of a warm randomization
    audit)."""
    from ..common.kept_arrays import load_arrays, save_arrays

    path = kept_scores_path(a, b)
    kept = load_arrays(path, {m: (len(a.maps),) for m in MEASURES})
    if kept is not None:
        return kept
    fa, fb = _features(a), _features(b)
    out = {m: np.empty(len(a.maps)) for m in MEASURES}
    for i in range(len(a.maps)):
        out["ssim"][i] = sim.ssim(a.maps[i], b.maps[i])
        out["spearman_abs"][i] = sim.spearman_from_ranks(fa["rank_abs"][i], fb["rank_abs"][i])
        out["spearman_signed"][i] = sim.spearman_from_ranks(fa["rank_signed"][i], fb["rank_signed"][i])
        out["hog"][i] = sim.hog_correlation(fa["hog"][i], fb["hog"][i])
    save_arrays(path, out)
    return out


def mean_similarities(ref, draws: list) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Per-image similarity averaged over independent randomization draws (NaNs ignored), and each draw's."""
    per = [similarities(ref, d) for d in draws]
    mean = {m: np.array([_mean(np.array(v)) if np.isfinite(v).any() else np.nan for v in zip(*(p[m] for p in per))])
            for m in MEASURES}
    return mean, per


def noise_floor(ref) -> dict[str, np.ndarray]:
    """Similarity between the maps of image i and image i+1 (a fixed pairing of different images).

    Kept on the MapSet: the same reference maps serve randomization, label
    randomization and both consistency criteria.
    """
    memo = ref.__dict__.setdefault("_memo", {})
    if "noise_floor" in memo:
        return memo["noise_floor"]
    shifted = type(ref)(ref.method, ref.ids[1:] + ref.ids[:1], np.roll(ref.maps, -1, axis=0), np.roll(ref.constant, -1),
                        np.roll(ref.signed, -1, axis=0), 0, 0.0, {})
    f = _features(ref)
    shifted._memo = {"features": {k: v[1:] + v[:1] for k, v in f.items()}}
    memo["noise_floor"] = similarities(ref, shifted)
    return memo["noise_floor"]


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def drop(s: np.ndarray, floor: float) -> np.ndarray:
    """Normalized drop; NaN everywhere when the floor is 1 (maps do not depend on the image)."""
    if not math.isfinite(floor) or floor >= 1.0:
        return np.full(len(s), np.nan)
    return (1.0 - s) / (1.0 - floor)


def stage_row(name: str, sims: dict[str, np.ndarray], floor: float, constant: np.ndarray, config, key: str,
              floors: np.ndarray | None = None) -> dict:
    """One stage's summary; ``floors``: the images' own noise-floor terms (the first ``len(sims)`` of them),
    whose share of the variance the bound on d carries (:func:`terms`)."""
    p = config.randomization
    d = drop(sims["ssim"], floor)
    b = bootstrap_mean(terms(d, floors, floor), alpha=p.alpha, resamples=config.stats.resamples,
                       method=config.stats.method, seed=stable_seed(config.seed, key, name))
    s = bootstrap_mean(sims["ssim"], alpha=p.alpha, resamples=config.stats.resamples, method=config.stats.method,
                       seed=stable_seed(config.seed, key, name, "ssim"))
    row = {"stage": name, "ssim": s.mean, "ssim_ci": [s.lo, s.hi], "d": b.mean, "d_lower": b.lo, "d_upper": b.hi,
           "constant_maps": int(np.sum(constant))}
    for m in MEASURES[1:]:
        row[m] = _mean(sims[m])
        row[f"{m}_undefined"] = int(np.sum(~np.isfinite(sims[m])))
    return row


def terms(d: np.ndarray, floors: np.ndarray | None, floor: float) -> np.ndarray:
    """The per-image terms a bound on mean d is taken over: :func:`saliency_audit.stats.floor_terms` of the
    images' own floor terms (``floors``, the first ``len(d)`` used), or ``d`` without them."""
    if floors is None:
        return d
    return floor_terms(d, np.asarray(floors, dtype=np.float64)[: len(d)], floor)


def passes_check(lower, threshold: float, floor, what: str) -> bool:
    """Whether a d bound clears its threshold; maps whose floor is 1 or undefined (they do not depend on the
    image, so d is undefined) fail; any other bound that is not a finite number is an error
    (:func:`saliency_audit.stats.clears`)."""
    if floor is None or not floor < 1.0:
        return False
    return clears(lower, threshold, strict=False, what=what)


def mean_noise_floors(ref) -> dict[str, float | None]:
    """Mean noise floor of every measure."""
    return {m: _mean(v) for m, v in noise_floor(ref).items()}


def _per_image(ref, sims, d) -> list[dict]:
    """Each image's terms; ``floor`` is the image's own term of the SSIM noise floor (its map against the next
    image's), so a comparison of two runs can carry the floor's image-to-image variation (every image's d
    shares the floor: saliency_audit.decisions.comparison)."""
    return [{"id": i, "statistic": float(x), "score": float(x), "ssim": float(s), "floor": float(f)}
            for i, x, s, f in zip(ref.ids, d, sims["ssim"], noise_floor(ref)["ssim"])]


#: the verdict's two checks, per statistic prefix and cascade order
def labels(prefix: str = "SSIM drop d", order: str = "top_down") -> tuple[str, str]:
    first = "head stage" if order == "top_down" else "input stage (bottom-up)"
    return f"{prefix}, {first}", f"{prefix}, all layers"


def evaluate_cascade(method: str, ref, stages: list[tuple[str, object]], config, *,
                     independent: list[tuple[str, object]] | None = None, details: dict | None = None,
                     names: tuple[str, str] = labels()) -> CriterionResult:
    """``stages``: (cumulative stage name, [MapSet per randomization draw]), first stage first (the head, or the
    input block bottom-up), all-randomized last; ``names``: the two checks' names (:func:`labels`).

    With several draws the per-image similarity is the mean over draws: the
    expected similarity under the randomization, not one draw's luck (on the
    demo, GradCAM's head stage gives SSIM 0.84, -0.01 and 0.91 for three seeds).
    """
    p = config.randomization
    floors = mean_noise_floors(ref)
    floor = floors["ssim"]
    f_i = noise_floor(ref)["ssim"]
    curve, per_stage = [], []
    for name, draws in stages:
        n = len(draws[0].ids)  # the stages between the verdict's two may use its first curve_images only
        sims, per_draw = mean_similarities(ref if n == len(ref.ids) else ref.head(n), draws)
        row = stage_row(name, sims, floor, np.sum([d.constant for d in draws], axis=0), config, f"randomization-{method}",
                        f_i)
        row["n"] = n
        if len(draws) > 1:
            row["ssim_per_draw"] = [_mean(d["ssim"]) for d in per_draw]
        curve.append(row)
        per_stage.append(sims)
    head, last = curve[0], curve[-1]
    ok_head = passes_check(head["d_lower"], p.head_min, floor, f"{names[0]}'s lower bound")
    ok_all = passes_check(last["d_lower"], p.all_min, floor, f"{names[1]}'s lower bound")
    verdict = "pass" if ok_head and ok_all else "fail"
    ind_curve = []
    for name, draws in independent or []:
        ind_curve.append(stage_row(name, mean_similarities(ref, draws)[0], floor, draws[0].constant, config,
                                   f"randomization-independent-{method}", f_i))
    stages_txt = "; ".join(f"{r['stage']}: SSIM {r['ssim']:.3f}, d {r['d']:.2f} (lb {r['d_lower']:.2f})" for r in curve)
    reasons = []
    if floor is not None and floor >= 1.0:
        reasons.append("the noise floor is 1: the maps do not depend on the image")
    if not ok_head:
        reasons.append(f"{names[0].split(', ', 1)[1]} lower bound {head['d_lower']:.2f} < {p.head_min}")
    if not ok_all:
        reasons.append(f"fully-randomized lower bound {last['d_lower']:.2f} < {p.all_min}")
    text = (f"SSIM noise floor {floor:.3f} (maps of different images); cascading stages: {stages_txt}"
            + ("" if verdict == "pass" else " -> " + "; ".join(reasons)))
    # The headline number is the binding check: whichever lower bound is closer to (or further below) its threshold.
    def margin(row, threshold):
        lo = row["d_lower"]
        return lo - threshold if lo is not None and math.isfinite(lo) else -math.inf

    head_binds = margin(head, p.head_min) < margin(last, p.all_min)
    row, threshold, idx = (head, p.head_min, 0) if head_binds else (last, p.all_min, -1)
    d_row = drop(per_stage[idx]["ssim"], floor)
    per_image = _per_image(ref, per_stage[idx], d_row)
    # both checks' per-image terms: the binding one can differ between runs, and a comparison of two runs
    # (saliency_audit.decisions.comparison) then compares them on a check both recorded
    for item, h, a in zip(per_image, drop(per_stage[0]["ssim"], floor), drop(per_stage[-1]["ssim"], floor)):
        item["checks"] = {names[0]: float(h), names[1]: float(a)}
    return CriterionResult(
        criterion="randomization", method=method, verdict=verdict,
        statistic=names[0] if head_binds else names[1],
        value=row["d"], ci=[row["d_lower"], row["d_upper"]], bound=row["d_lower"], threshold=threshold,
        baseline={"name": "SSIM noise floor", "value": floor}, n=len(ref.ids),
        per_image=per_image, curve=curve, explanation=text,
        details={"noise_floor": floors, "head_min": p.head_min, "all_min": p.all_min, "alpha": p.alpha,
                 "head_d_lower": head["d_lower"], "all_d_lower": last["d_lower"], "binding_stage": row["stage"],
                 "independent_curve": ind_curve, **(details or {})},
    ).defer_p_value(*((terms(drop(per_stage[i]["ssim"], floor), f_i, floor), t, False,
                       stable_seed(config.seed, f"randomization-{method}", curve[i]["stage"]))
                      for i, t in ((0, p.head_min), (-1, p.all_min))))


def evaluate_label(method: str, ref, other, config, *, details: dict | None = None) -> CriterionResult:
    p = config.randomization
    floors = mean_noise_floors(ref)
    floor = floors["ssim"]
    f_i = noise_floor(ref)["ssim"]
    sims = similarities(ref, other)
    row = stage_row("random labels", sims, floor, other.constant, config, f"label-randomization-{method}", f_i)
    d = drop(sims["ssim"], floor)
    ok = passes_check(row["d_lower"], p.label_min, floor, "SSIM drop d, random labels' lower bound")
    text = (f"SSIM to the random-label model's maps {row['ssim']:.3f} vs noise floor {floor:.3f}; "
            f"d {row['d']:.2f}, one-sided {100 * (1 - p.alpha):.0f}% lower bound {row['d_lower']:.2f}"
            + ("" if ok else f" -> lower bound below {p.label_min}"))
    return CriterionResult(
        criterion="label_randomization", method=method, verdict="pass" if ok else "fail",
        statistic="SSIM drop d, random labels", value=row["d"], ci=[row["d_lower"], row["d_upper"]], bound=row["d_lower"],
        threshold=p.label_min, baseline={"name": "SSIM noise floor", "value": floor}, n=len(ref.ids),
        per_image=_per_image(ref, sims, d), curve=[row], explanation=text,
        details={"noise_floor": floors, "ssim_ci": row["ssim_ci"], "alpha": p.alpha, **(details or {})},
    ).defer_p_value((terms(d, f_i, floor), p.label_min, False, stable_seed(config.seed, f"label-randomization-{method}",
                                                       "random labels")))


def with_thumbs(result: CriterionResult, ref, compared: list) -> CriterionResult:
    """Thumbnails of the first images' maps: the reference's, and each curve entry's (stage or compared model)."""
    from ..common.thumbs import STAGE_IMAGES, map_thumbs

    ids = ref.ids[:STAGE_IMAGES]
    result.details["reference_thumbnails"] = map_thumbs(ref, ids)
    for row, maps in zip(result.curve, compared):
        row["thumbnails"] = map_thumbs(maps, ids)
    return result


def _ssim_floors(ref) -> np.ndarray:
    """Each image's SSIM noise-floor term (the pairing :func:`noise_floor` uses), SSIM only: a look's cheap
    version of it."""
    n = len(ref.maps)
    return np.array([sim.ssim(ref.maps[i], ref.maps[(i + 1) % n]) for i in range(n)])


def _drop_checks(ref, compared: list[tuple[str, list, float]]) -> list:
    """A sequential look's checks: per (name, the draws of one stage or model, threshold), the per-image SSIM
    drop d against ``ref`` (SSIM averaged over draws, as in :func:`evaluate_cascade`) must reach the
    threshold, judged on the terms that carry the floor's variance (:func:`terms`).  d lies in
    [0, 2 / (1 - F)] and its term in [-2 (1 + F) / (1 - F)^2, 4 / (1 - F)] (F the floor): the betting rule's
    range."""
    from ..stats.sequential import Check

    f_i = _ssim_floors(ref)
    floor = _mean(f_i)
    ok = floor is not None and floor < 1
    lo, hi = (-2.0 * (1.0 + floor) / (1.0 - floor) ** 2, 4.0 / (1.0 - floor)) if ok else (0.0, 2.0)
    out = []
    for name, draws, threshold in compared:
        s = np.nanmean([[sim.ssim(ref.maps[i], d.maps[i]) for i in range(len(ref.maps))] for d in draws], axis=0)
        d = drop(s, floor if floor is not None else math.nan)
        out.append(Check(name, terms(d, f_i, floor) if ok else d, threshold, strict=False, lo=lo, hi=hi))
    return out


def stage_draws(p, k: int, nb: int) -> int:
    """Random re-initialisations averaged at cascade stage ``k`` of ``nb``: ``randomization.draws`` at the two
    stages the verdict checks (the first and the all-blocks stage), one at the stages between, which are
    descriptive.  One draw decides verdicts by luck at both ends (benchmarks/bench_flip_rate.py: on the demo
    the head verdict flips for 20 % of randomization seeds, and GradCAM's and Guided GradCAM's all-blocks
    verdicts for 2 seeds of 10, whose randomly re-initialised CAM is sometimes rectified away)."""
    return p.draws if k in (1, nb) else 1


def draw_index(p, slot: int, position: int) -> int:
    """The re-initialisation (:meth:`ModelSet.stage`'s ``draw``) whose map of the image at ``position`` (in the
    criterion's image list) fills ``slot`` of a stage (``slot < stage_draws``).

    ``shared`` (Adebayo et al., Arun et al.): every image is explained by the same ``draws`` models, so a draw's
    luck moves every image together and the bootstrap over images cannot see it.  ``per_image``: image i gets
    its own re-initialisations, the same at every stage (its own cascade), so the (image, draw) pairs are
    independent and the bound over images covers the randomization's variance too.  Draw 0 is left to the
    shared design (and the ``randomized`` model other criteria use)."""
    return slot if p.draw_design == "shared" else 1 + position * p.draws + slot


def stage_maps(ctx, method: str, wanted: list[tuple[int, list]], order: str, smooth=None) -> list[list]:
    """The maps of cascade stages in ``order``: for each (stage k, samples) of ``wanted``, one MapSet per slot
    (:func:`stage_draws`), each image's map from the model :func:`draw_index` assigns it.

    The models are ModelSet.deferred: built in place, and only when a map of theirs is not cached.  Each draw
    walks its stages in cascade order (a stage re-initialises the blocks of the one before and one more), so the
    scratch network re-initialises each block once per draw; per-image draws one image at a time.  The maps are
    the same in any order."""
    from ..methods.mapset import MapSet

    p = ctx.config.randomization
    nb = len(ctx.models.blocks())
    slots = [stage_draws(p, k, nb) for k, _ in wanted]
    walk = sorted(range(len(wanted)), key=lambda w: wanted[w][0])
    per_image = p.draw_design == "per_image"
    got = {}
    for i in range(max(len(s) for _, s in wanted)) if per_image else [None]:  # None: every image at once
        for slot in range(max(slots)):
            for w in walk:
                k, images = wanted[w]
                if slot < slots[w] and (i is None or i < len(images)):
                    model = ctx.models.deferred(k, draw_index(p, slot, i or 0), order)
                    got[w, slot, i] = ctx.maps(model, method, images if i is None else [images[i]], smooth=smooth)
    if not per_image:
        return [[got[w, slot, None] for slot in range(n)] for w, n in enumerate(slots)]
    return [[MapSet.concat([got[w, slot, i] for i in range(len(images))]) for slot in range(n)]
            for w, ((_, images), n) in enumerate(zip(wanted, slots))]


def stage_names(blocks, order: str) -> list[str]:
    """Cumulative stage names in randomization order: the first block, "+next", ..., "all (last)"."""
    seq = list(blocks) if order == "top_down" else list(reversed(blocks))
    names = [b.name if k == 0 else f"+{b.name}" for k, b in enumerate(seq)]
    names[-1] = f"all ({names[-1]})"
    return names


def run_cascade(ctx, method: str) -> CriterionResult:
    """Cascading (and optionally independent) weight randomization of ``method``'s maps, decided on
    ``randomization.statistic`` in ``randomization.order``; the other statistics go in
    ``details.variants`` (:func:`variants`)."""
    from .mprt import emprt_check

    p = ctx.config.randomization
    models = ctx.models
    blocks = models.blocks()
    nb = len(blocks)
    primary = models.get("primary")
    smooth = (p.smooth_samples, p.smooth_noise) if p.statistic == "smooth_mprt" else None
    names = labels("Smooth MPRT d" if smooth else "SSIM drop d", p.order)

    def at(*wanted):
        return stage_maps(ctx, method, list(wanted), p.order, smooth)

    def checks(samples):
        """Sequential looks: the verdict's checks only; the stages between are computed once, on the first
        ``curve_images`` of the images the verdict used."""
        ref = ctx.maps(primary, method, samples, smooth=smooth)
        if p.statistic == "emprt":
            return [emprt_check(ref, at((nb, samples))[0], p)], True
        head, full = at((1, samples), (nb, samples))
        return _drop_checks(ref, [(names[0], head, p.head_min), (names[1], full, p.all_min)]), True

    samples, looks = ctx.sequential_samples(ctx.samples.first(p.n_images), p.alpha, checks)
    ref = ctx.maps(primary, method, samples, smooth=smooth)
    details = {"blocks": [b.to_dict() for b in blocks], "bn_policy": p.bn_policy, "draws": p.draws,
               "draws_at": "first and all-blocks stages", "draw_design": p.draw_design,
               "order": p.order, "method_params": ctx.method_params(method),
               **({"smooth": {"samples": smooth[0], "noise": smooth[1]}} if smooth else {})}
    if p.statistic == "emprt":
        (last,) = at((nb, samples))
        result = evaluate_emprt(method, ref, last, stage_names(blocks, p.order)[-1], ctx.config, details)
        compared = [last[0]]
    else:
        maps = at(*((k, samples if k in (1, nb) else samples[: p.curve_images]) for k in range(1, nb + 1)))
        stages = list(zip(stage_names(blocks, p.order), maps))
        independent = None
        if p.independent:
            independent = [(b.name, [ctx.maps(models.single_block(j), method, samples)]) for j, b in enumerate(blocks)]
        result = evaluate_cascade(method, ref, stages, ctx.config, independent=independent, details=details,
                                  names=names)
        compared = [d[0] for _, d in stages]
    result = _sequential(with_thumbs(result, ref, compared), looks)
    result.details["variants"] = variants(ctx, method, samples, result)  # after the looks: the verdict's own bound
    return result


def evaluate_emprt(method: str, ref, randomized: list, stage: str, config, details: dict) -> CriterionResult:
    """Efficient MPRT as the verdict: the lower bound of the mean relative entropy rise must exceed
    ``randomization.emprt_min``; the fully randomized stage's SSIM drop is shown beside it."""
    from .mprt import emprt_summary

    p = config.randomization
    e = emprt_summary(ref, randomized, config, f"randomization-{method}")
    floors = mean_noise_floors(ref)
    row = stage_row(stage, mean_similarities(ref, randomized)[0], floors["ssim"],
                    np.sum([d.constant for d in randomized], axis=0), config, f"randomization-{method}",
                    noise_floor(ref)["ssim"])
    ok = clears(e["lower"], p.emprt_min, strict=True, what="the entropy rise's lower bound")
    text = (f"map entropy ({e['bins']}-bin histogram) {e['entropy_trained']:.2f} nats on the trained model, "
            f"{e['entropy_randomized']:.2f} fully randomized; mean relative rise {e['value']:+.3f}, one-sided "
            f"{100 * (1 - p.alpha):.0f}% lower bound {e['lower']:+.3f}; SSIM drop d {row['d']:.2f} beside it"
            + (f"; {e['undefined']} constant trained map(s) without a relative rise" if e["undefined"] else "")
            + ("" if ok else f" -> lower bound not above {p.emprt_min:g}: the maps are no more complex on a random "
                             "model (a map that ignores the model rises by 0)"))
    return CriterionResult(
        criterion="randomization", method=method, verdict="pass" if ok else "fail", statistic=e["statistic"],
        value=e["value"], ci=[e["lower"], e["upper"]], bound=e["lower"], threshold=p.emprt_min,
        baseline={"name": "trained map entropy", "value": e["entropy_trained"]}, n=len(ref.ids),
        per_image=[{"id": x["id"], "statistic": x["rise"], "score": x["rise"], "entropy_trained": x["entropy_trained"],
                    "entropy_randomized": x["entropy_randomized"]} for x in e["per_image"]],
        curve=[row], explanation=text,
        details={"noise_floor": floors, "emprt_min": p.emprt_min, "bins": e["bins"], "alpha": p.alpha,
                 "entropy_trained": e["entropy_trained"], "entropy_randomized": e["entropy_randomized"], **details}
    ).defer_p_value((np.array([x["rise"] for x in e["per_image"]], dtype=np.float64), p.emprt_min, True,
                     stable_seed(config.seed, f"randomization-{method}", "emprt")))


def _drop_summary(ref, stages: list[tuple[str, list]], config, key: str, names: tuple[str, str]) -> dict:
    """A variant's SSIM-drop verdict on its images: d of the first and the last stage against head_min and
    all_min, and the stage-by-stage curve."""
    p = config.randomization
    floor = mean_noise_floors(ref)["ssim"]
    f_i = noise_floor(ref)["ssim"]
    curve = [stage_row(n, mean_similarities(ref, d)[0], floor, np.sum([x.constant for x in d], axis=0), config, key,
                       f_i) for n, d in stages]

    def ok(row, threshold):  # a variant never gates: a bound that is not a number is reported, not raised
        lo = row["d_lower"]
        return lo is not None and math.isfinite(lo) and passes_check(lo, threshold, floor, row["stage"])

    first, last = curve[0], curve[-1]
    return {"statistic": names[1].split(",")[0], "first": {"name": names[0], "d": first["d"], "lower": first["d_lower"],
                                                          "threshold": p.head_min},
            "all": {"name": names[1], "d": last["d"], "lower": last["d_lower"], "threshold": p.all_min},
            "would_pass": bool(ok(first, p.head_min) and ok(last, p.all_min)), "n": len(ref.ids),
            "noise_floor": floor,
            "curve": [{k: r[k] for k in ("stage", "ssim", "d", "d_lower", "d_upper", "constant_maps")} for r in curve]}


def variants(ctx, method: str, samples: list, result: CriterionResult) -> dict:
    """The randomization statistics other than the verdict's (``randomization.variants``), on the first
    ``randomization.variant_images`` of the verdict's images: reported beside the verdict, never gating."""
    from ..common.passcount import PASSES
    from .mprt import emprt_summary

    passes0 = PASSES["images"]
    p = ctx.config.randomization
    nb = len(ctx.models.blocks())
    vs = samples[: p.variant_images]
    primary = ctx.models.get("primary")
    out: dict = {"images": len(vs), "verdict": {"statistic": result.statistic, "value": result.value,
                                                 "lower": result.bound, "threshold": result.threshold,
                                                 "n": result.n, "variant": p.statistic, "order": p.order}}

    def at(ks, order, sm=None):
        return stage_maps(ctx, method, [(k, vs) for k in ks], order, sm)

    def cascade(order, sm=None, full=False):
        ref = ctx.maps(primary, method, vs, smooth=sm)
        ks = range(1, nb + 1) if full else (1, nb)
        names = stage_names(ctx.models.blocks(), order)
        return _drop_summary(ref, [(names[k - 1], m) for k, m in zip(ks, at(ks, order, sm))], ctx.config,
                             f"randomization-variant-{method}", labels("Smooth MPRT d" if sm else "SSIM drop d", order))

    wanted = list(dict.fromkeys(("ssim_drop", *p.variants)))
    for v in wanted:
        if v == p.statistic or v == p.order:
            continue
        if v == "ssim_drop":
            out[v] = cascade(p.order)
        elif v == "smooth_mprt":
            out[v] = cascade(p.order, (p.smooth_samples, p.smooth_noise))
            out[v].update(samples=p.smooth_samples, noise=p.smooth_noise)
        elif v == "emprt":
            e = emprt_summary(ctx.maps(primary, method, vs), at((nb,), p.order)[0], ctx.config,
                              f"randomization-variant-{method}")
            out[v] = {k: x for k, x in e.items() if k != "per_image"}
        elif v in ("bottom_up", "top_down"):
            out[v] = cascade(v, full=True)
    out["image_passes"] = PASSES["images"] - passes0  # what the variants cost beside the verdict
    return out


def _sequential(result: CriterionResult, looks) -> CriterionResult:
    if looks is None:
        return result
    from ..stats.sequential import apply

    return apply(result, looks)


def run_label(ctx, method: str) -> CriterionResult:
    """Maps of the model trained on permuted labels against the primary's."""
    if not ctx.models.random_label_spec:
        ctx.skip("no model trained on permuted labels: pass --random-label-model SPEC")
    p = ctx.config.randomization
    primary = ctx.models.get("primary")

    def checks(samples):
        ref = ctx.maps(primary, method, samples)
        return _drop_checks(ref, [("SSIM drop d, random labels",
                                   [ctx.maps(ctx.models.get("random_label"), method, samples)], p.label_min)]), True

    samples, looks = ctx.sequential_samples(ctx.samples.first(p.n_images), p.alpha, checks)
    ref = ctx.maps(primary, method, samples)
    other = ctx.maps(ctx.models.get("random_label"), method, samples)
    result = evaluate_label(method, ref, other, ctx.config, details={"method_params": ctx.method_params(method)})
    return _sequential(with_thumbs(result, ref, [other]), looks)


# -- its cost in model passes (CriterionSpec.cost), beside the loop it replays: ``ledger`` is the plan's
# (saliency_audit.engine.plan), which counts the passes each ``ledger.maps``/``ledger.road`` would make.
def cascade_cost(ledger, method: str, stop=None) -> int:
    return _cascade_passes(ledger, method, stop) if ledger.randomized() else 0


def _cascade_passes(ledger, method: str, stop) -> int:
    """run_cascade replayed: the verdict's statistic in its order (sequential looks on
    its two checks, then every stage), then each variant on the first ``variant_images`` images."""
    ctx, cfg = ledger.ctx, ledger.config
    p = cfg.randomization
    samples = ctx.samples.first(p.n_images)
    nb = len(ctx.models.blocks())
    sm = (p.smooth_samples, p.smooth_noise) if p.statistic == "smooth_mprt" else None

    def at(k, images, order=p.order, smooth=sm):
        key = f"bstage{k}" if order == "bottom_up" and k < nb else f"stage{k}"
        if p.draw_design == "shared":
            return sum(ledger.maps(f"{key}-draw{r}", method, images, smooth) for r in range(stage_draws(p, k, nb)))
        return sum(ledger.maps(f"{key}-draw{draw_index(p, r, i)}", method, [s], smooth)
                   for r in range(stage_draws(p, k, nb)) for i, s in enumerate(images))

    emprt = p.statistic == "emprt"
    cost = 0
    if cfg.sequential:
        for k in ledger.looks(len(samples), stop):
            cost += ledger.maps("primary", method, samples[:k], sm)
            cost += sum(at(stage, samples[:k]) for stage in ((nb,) if emprt else (1, nb)))
        samples = samples[:k]
    cost += ledger.maps("primary", method, samples, sm)
    cost += sum(at(stage, samples if stage in (1, nb) else samples[: p.curve_images])
                for stage in ((nb,) if emprt else range(1, nb + 1)))
    if p.independent and not emprt:
        cost += sum(ledger.maps(f"single{j}", method, samples) for j in range(nb))
    vs = samples[: p.variant_images]
    for v in dict.fromkeys(("ssim_drop", *p.variants)):
        if v in (p.statistic, p.order):
            continue
        smooth = (p.smooth_samples, p.smooth_noise) if v == "smooth_mprt" else None
        order = v if v in ("bottom_up", "top_down") else p.order
        stages = (nb,) if v == "emprt" else range(1, nb + 1) if v == order != p.order else (1, nb)
        cost += ledger.maps("primary", method, vs, smooth) + sum(at(k, vs, order, smooth) for k in stages)
    return cost


def label_cost(ledger, method: str, stop=None) -> int:
    ctx, cfg = ledger.ctx, ledger.config
    if not ctx.models.random_label_spec:
        return 0
    passes = 0
    samples = ctx.samples.first(cfg.randomization.n_images)
    if cfg.sequential:
        for k in ledger.looks(len(samples), stop):
            passes += ledger.maps("primary", method, samples[:k]) + ledger.maps("random_label", method, samples[:k])
        samples = samples[:k]
    return passes + ledger.maps("primary", method, samples) + ledger.maps("random_label", method, samples)
