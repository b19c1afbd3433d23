"""The time-left estimate: the plan's work still to come, in seconds timed on this device, scaled by how the
run has gone so far.

The plan counts each (criterion, method) pair's work by kind (``plan["per_pair_work"]``, the most;
``per_pair_work_least``, every sequential verdict stopping at its first look; :class:`engine.plan._Ledger`):

* ``grad``: map passes (forward and backward through the model);
* ``forward``: forward passes (predictions, the CAM probe, ROAD's intact images);
* ``road``: ROAD's imputed passes (an imputation, then a forward pass);
* ``copy``: randomized copies of the model built (re-initialising a densenet121 takes longer than a batch);
* ``segment``: images XRAI segments and ranks the segments of (six Felzenszwalb scales, once per image; on
  the demo they cost more than all of XRAI's passes).

Before the first map, :func:`unit_seconds` times one of each on this device (a batch of map passes, of forward
passes, of ROAD's passes, one copy, one segmentation; seconds on the demo, most of them ROAD's), and keeps them in
the cache for this machine and model: a later run of the same work reads them.  It is timed then, as cold as
the run's first criterion is: timed once that criterion had run, the warm units put a densenet121 run 49 % high.
A run whose passes all fall to one criterion makes no estimate and no timing (nothing would be left to estimate).  Passes alone were a poor clock: a densenet121's ROAD pass costs a third of
its map pass and its cascade is mostly copies, so a rate taken from the first (map) criterion put it 59 % high.

Once the first criterion of the run's order that costs anything has decided every method (the run runs
cheapest criterion first: every method's maps have then been computed once), or after a minute,
:func:`estimate` predicts:

* where in their looks' range the pairs to come will land: ``range_taken``, the share of their range the
  decided pairs spent (in passes);
* the seconds of the pairs to come: their expected work times the unit seconds, times ``calibration``, the
  seconds the decided pairs took over what the same clock predicts for them (what the units miss: statistics,
  SSIM, XRAI's segmentation, a busy machine).

``benchmarks/bench_estimate.py`` measures the error against the truth on the demo and on a densenet121.
"""
from __future__ import annotations

import time

#: the first estimate is made once the first criterion is complete, or after this many seconds (with at least
#: ``MIN_SHARE`` of the planned passes spent: a rate from a handful of passes is noise)
AFTER_S, MIN_SHARE = 60.0, 0.02
KINDS = ("grad", "forward", "road", "copy")


def _timed(fn, least_s: float = 0.2, most: int = 5) -> float:
    """The median seconds of ``fn()``, repeated until ``least_s`` have gone by (at most ``most`` times): one
    timing of a small model's batch is a few milliseconds, and a busy core skews it by half."""
    runs: list[float] = []
    while len(runs) < most and (not runs or sum(runs) < least_s):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return sorted(runs)[len(runs) // 2]


def _units_path(ctx, model, batch: int):
    """Where this machine's unit seconds of ``model`` are kept (None: no cache): keyed by the host, its cores and
    threads, the libraries, the device, the model's weights and input, and every setting a unit's work depends
    on, so only a run that would time the same work on the same machine reads them."""
    import hashlib
    import json
    import os
    import platform
    import socket

    import torch

    root = getattr(ctx.store, "cache_dir", None)
    if root is None:
        return None
    cfg = ctx.config
    key = json.dumps([1, socket.gethostname(), platform.machine(), os.cpu_count(), torch.__version__,
                      torch.get_num_threads(), cfg.device, ctx.store.fingerprint(model), list(model.input_size),
                      batch, cfg.pass_batch, cfg.pass_pixels, cfg.batch_size, cfg.completeness.fractions,
                      cfg.completeness.fill, cfg.completeness.noise, cfg.methods.xrai, cfg.randomization.bn_policy],
                     sort_keys=True, default=str)
    return root / "units" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def _kept_units(path) -> dict[str, float]:
    import json
    import math

    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(kept, dict):
        return {}
    return {k: float(v) for k, v in kept.items() if isinstance(k, str) and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v) and v > 0}


def unit_seconds(ctx, kinds) -> dict[str, float]:
    """Seconds per unit of each kind of work in ``kinds``, timed on this device (:func:`_timed`) with the
    primary model and the first localisation images (the passes are not counted as the run's, and the
    gradients they leave on the weights are dropped).  Kept in the cache for this machine and model
    (:func:`_units_path`): a later run of the same work reads them instead of timing again (the ROAD unit alone
    is seconds), and only the kinds not kept yet are timed."""
    from ..config import pass_images

    model = ctx.models.get("primary")
    samples = ctx.samples.localisation().samples
    batch = max(1, min(len(samples), pass_images(ctx.config, tuple(model.input_size))))
    path = _units_path(ctx, model, batch)
    kept = _kept_units(path) if path is not None else {}
    wanted = {"forward", *kinds}
    if wanted <= set(kept):
        return {k: kept[k] for k in sorted(wanted) if k in kept}
    out = _time_units(ctx, model, samples, batch, wanted - set(kept))
    if path is not None:
        from ..common.paths import atomic_write_text
        import json

        try:
            atomic_write_text(path, json.dumps({**kept, **out}, sort_keys=True))
        except OSError:  # a cache that cannot be written only costs the next run the timing
            pass
    return {k: v for k, v in sorted({**kept, **out}.items()) if k in wanted}


def _time_units(ctx, model, samples, batch: int, kinds) -> dict[str, float]:
    """:func:`unit_seconds`'s timing of ``kinds`` ("forward" always)."""
    import torch

    from ..common.passcount import PASSES
    from ..data.resize import prepare

    x = prepare(samples[:batch], model.input_size, next(model.parameters()).device)
    before, out = PASSES["images"], {}
    try:
        xg = x[:1].clone().requires_grad_(True)
        model(xg)[:, 0].sum().backward()  # warm-up: thread pools, the allocator, autograd's first graph
        with torch.no_grad():
            out["forward"] = _timed(lambda: model(x)) / len(x)
        if "grad" in kinds:
            def grad():
                model(x.clone().requires_grad_(True))[:, 0].sum().backward()

            out["grad"] = _timed(grad) / len(x)
        if "road" in kinds:  # the images ROAD imputes together (Passes._chunk), at most 8
            import numpy as np

            from .passes import Passes

            road = Passes(ctx.config, ctx.store, cache=False)  # timed: a cached result would time nothing
            few = samples[:max(1, min(len(samples), 8, road._chunk(model, 2 * len(ctx.config.completeness.fractions))))]
            maps = np.random.default_rng(0).random((len(few), *tuple(model.input_size)))
            n = len(few) * (1 + 2 * len(ctx.config.completeness.fractions))
            out["road"] = _timed(lambda: Passes(ctx.config, ctx.store, cache=False).road(model, few, maps)) / n
        if "segment" in kinds:  # XRAI's work on one image: its six Felzenszwalb scales, then the ranking
            import numpy as np

            from ..methods.xrai import image_segments, rank_regions

            img = x[0].detach().cpu().numpy().transpose(1, 2, 0)
            attr = np.random.default_rng(0).random(img.shape[:2])
            out["segment"] = _timed(lambda: rank_regions(attr, image_segments(img, ctx.config.methods.xrai)))
        if "copy" in kinds:  # after one copy (the first pays the allocator's first growth)
            from ..models.randomize import randomize_copy

            bn = ctx.config.randomization.bn_policy
            randomize_copy(model, seed=0, bn_policy=bn)
            out["copy"] = _timed(lambda: randomize_copy(model, seed=1, bn_policy=bn))
    finally:
        PASSES["images"] = before
        model.zero_grad(set_to_none=True)
    return {k: round(v, 6) for k, v in out.items()}


def ready(plan: dict, done: dict[str, int], spent: int, seconds: float) -> bool:
    """Whether enough has run for the first estimate (see the module's docstring)."""
    per = plan.get("per_pair") or {}
    if spent <= 0 or not per:
        return False
    costly = [k for k, v in per.items() if v]  # per_pair follows the run's order; a skipped criterion costs none
    first = costly[0].split("[", 1)[0] if costly else None
    complete = first is not None and all(k in done for k in per if k.split("[", 1)[0] == first)
    return complete or (seconds >= AFTER_S and spent >= MIN_SHARE * plan.get("image_passes", 0))


def _share(got: float, lo: float, hi: float) -> float:
    return 1.0 if hi <= lo else min(max((got - lo) / (hi - lo), 0.0), 1.0)


def _work(plan: dict, key: str, taken: float) -> dict[str, float]:
    """A pair's expected work by kind when it takes ``taken`` of its looks' range."""
    most = (plan.get("per_pair_work") or {}).get(key) or {}
    least = (plan.get("per_pair_work_least") or {}).get(key, most)
    return {k: least.get(k, 0) + taken * (most.get(k, 0) - least.get(k, 0)) for k in set(most) | set(least)}


def _clock(work: dict[str, float], unit: dict[str, float]) -> float:
    return sum(unit.get(k, 0.0) * v for k, v in work.items())


def look_share(result_details: dict) -> float | None:
    """The share of its looks' range a sequential verdict took: 0 when it stopped at its first look, 1 at its
    last (in images: a verdict whose maps other pairs computed shows it in no pass count); None if not
    sequential."""
    seq = result_details.get("sequential") or {}
    looks, used, most = seq.get("looks") or [], seq.get("n_used"), seq.get("n_max")
    if not looks or not isinstance(used, int) or not isinstance(most, int):
        return None
    first = looks[0].get("n")
    if not isinstance(first, int):
        return None
    return _share(used, first, most)


def estimate(plan: dict, done: dict[str, int], spent: int, seconds: float,
             shares: dict[str, float] | None = None) -> dict:
    """{"after_passes", "after_seconds", "seconds_per_1000_passes", "seconds_left", "seconds_left_at_most",
    with sequential verdicts "seconds_left_at_least" and "range_taken", and "calibration"} from the plan, the
    passes of the pairs decided so far (``done``: "criterion[subject]" -> passes; ``shares``: the share of
    their looks' range they took, :func:`look_share`), and the run's passes and seconds since the plan.
    Without unit seconds (a plan made elsewhere) the passes are the clock."""
    most = plan.get("per_pair") or {}
    least = plan.get("per_pair_least") or most
    decided = [k for k in done if k in most]
    shares = {k: v for k, v in (shares or {}).items() if k in most and v is not None}

    def share(k: str) -> float:
        return shares[k] if k in shares else _share(done[k], least.get(k, most[k]), most[k])

    lo_done, hi_done = sum(least.get(k, most[k]) for k in decided), sum(most[k] for k in decided)
    got = sum(done[k] for k in decided)
    if shares:  # the pairs to come are expected to take the share the decided verdicts took, in images
        taken = sum(shares.values()) / len(shares)
    else:  # in passes; none with a range to read yet (none sequential, or none costing passes): the middle
        taken = 0.5 if hi_done <= lo_done else _share(got, lo_done, hi_done)
    to_come = [k for k in most if k not in done]
    unit = plan.get("unit_seconds")
    if unit and plan.get("per_pair_work"):
        predicted = sum(_clock(_work(plan, k, share(k)), unit) for k in decided)
        scale = seconds / predicted if predicted > 0 else 1.0

        def left(t: float) -> float:
            return scale * sum(_clock(_work(plan, k, t), unit) for k in to_come)
    else:  # the passes as the clock, at the run's rate so far
        scale = None

        def left(t: float) -> float:
            return seconds / spent * sum(least.get(k, most[k]) + t * (most[k] - least.get(k, most[k]))
                                         for k in to_come)
    out = {"after_passes": spent, "after_seconds": round(seconds, 1),
           "seconds_per_1000_passes": round(1000 * seconds / spent, 3), "seconds_left": round(left(taken), 1),
           "seconds_left_at_most": round(left(1.0), 1)}
    if scale is not None:
        out["calibration"] = round(scale, 3)
    if "per_pair_least" in plan:
        out.update(seconds_left_at_least=round(left(0.0), 1), range_taken=round(taken, 3))
    return out


def estimate_text(est: dict) -> str:
    """The estimate in one terminal line."""
    head = f"audit plan: {est['after_passes']:,} passes in {est['after_seconds']:.0f} s; about " \
           f"{est['seconds_left'] / 60:.1f} min left on this device"
    if "seconds_left_at_least" in est:
        return head + (f" (between {est['seconds_left_at_least'] / 60:.1f} and {est['seconds_left_at_most'] / 60:.1f}"
                       f": the verdicts so far took {100 * est['range_taken']:.0f} % of their looks' range)")
    return head
