"""ROAD (Rong et al., ICML 2022) as computed by two peer libraries, on our inputs.

Runs only in the peer environment (``bash benchmarks/setup_peers.sh``):

    benchmarks/.venv-peers/bin/python benchmarks/peers_road.py   # smoke test

Both functions take what our ROAD takes -- ``model`` (torch module, images in
the pixel units given -> logits (N, K)), ``images`` (N, C, H, W), ``maps``
(N, H, W) in [0, 1], ``target`` (int) and ``fractions`` (fractions of the
pixels removed, e.g. (0.2, 0.4, 0.6, 0.8)) -- and return

    dict(morf=(N, F), lerf=(N, F), seconds=float, n_removed_morf=(N, F),
         n_removed_lerf=(N, F), p0=(N,), ...)

``morf``/``lerf`` are the softmax probability of ``target`` after removing the
top/bottom fraction f of the pixels by the map (not the difference from the
unperturbed probability, which is ``p0``).  ``seconds`` is the wall time of the
peer's ROAD only (both orders, all fractions, all images); the unperturbed
probability and the bookkeeping are outside it.  How each peer defines ROAD,
and where it differs from ours, is in benchmarks/PEERS_ROAD.md.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch


def _as_tensor(images) -> torch.Tensor:
    return torch.as_tensor(np.asarray(images, dtype=np.float32))


def _softmax_target(model, x: torch.Tensor, target: int) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(x), dim=-1)[:, target].cpu().numpy()


# --------------------------------------------------------------------------
# pytorch-grad-cam (pip package grad-cam)
# --------------------------------------------------------------------------

def gradcam_percentile(f: float) -> float:
    """grad-cam's ``percentile`` for removing a fraction ``f`` of the pixels.

    ``RemoveMostRelevantFirst`` keeps ``cam < np.percentile(cam, p)`` and
    imputes the rest, so percentile p removes the top (100 - p) %; LeRF does
    the same on ``1 - cam`` and so removes the bottom (100 - p) %.  (Their
    tutorial: "percentile=75 ... removing 25% of the image".)
    """
    return round(100.0 * (1.0 - f), 10)


def gradcam_road(model: torch.nn.Module, images, maps, target: int,
                 fractions: Sequence[float] = (0.2, 0.4, 0.6, 0.8),
                 seed: int | None = 0, noise: float = 0.01) -> dict:
    """pytorch-grad-cam's ROADMostRelevantFirst / ROADLeastRelevantFirst.

    One metric object per (order, fraction), called on the whole batch with
    ``ClassifierOutputSoftmaxTarget(target)`` and ``return_diff=False`` so the
    value is the target's probability after imputation (their default,
    ``return_diff=True``, returns that minus the unperturbed probability;
    ``p0`` is returned to convert).  Their noise comes from torch's global
    RNG, seeded here with ``seed``; ``noise`` (their fixed default 0.01, the
    std of the added Gaussian) is set on the metric's imputer, so ``noise=0``
    compares the imputation itself.  ``n_removed_*`` counts the pixels their
    imputer changed (every imputed pixel gets noise, so all of them change).
    """
    from pytorch_grad_cam.metrics.road import (ROADLeastRelevantFirst,
                                               ROADMostRelevantFirst)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model.eval()
    x = _as_tensor(images)
    cams = np.asarray(maps, dtype=np.float32)
    n = x.shape[0]
    targets = [ClassifierOutputSoftmaxTarget(int(target))] * n
    p0 = _softmax_target(model, x, target)
    out = {k: np.zeros((n, len(fractions))) for k in
           ("morf", "lerf", "n_removed_morf", "n_removed_lerf")}
    if seed is not None:
        torch.manual_seed(seed)
    seconds = 0.0
    for order, cls in (("morf", ROADMostRelevantFirst), ("lerf", ROADLeastRelevantFirst)):
        for j, f in enumerate(fractions):
            metric = cls(percentile=gradcam_percentile(f))
            metric.perturbation.imputer.noise = noise
            t0 = time.perf_counter()
            scores, perturbed = metric(x, cams, targets, model,
                                       return_visualization=True, return_diff=False)
            seconds += time.perf_counter() - t0
            out[order][:, j] = np.asarray(scores, dtype=np.float64).reshape(n)
            changed = (perturbed.cpu() != x).any(dim=1)  # (N, H, W)
            out["n_removed_" + order][:, j] = changed.flatten(1).sum(1).numpy()
    out.update(seconds=seconds, p0=p0, fractions=tuple(fractions),
               percentiles=tuple(gradcam_percentile(f) for f in fractions))
    return out


# --------------------------------------------------------------------------
# Quantus
# --------------------------------------------------------------------------

def _quantus_curves_metric():
    """Quantus ROAD, changed only in what it records.

    Stock ``quantus.ROAD.evaluate_batch`` ranks ``np.argsort(-a)`` per image,
    removes ``ordered[:, :int(a_size * p / 100)]`` with
    ``noisy_linear_imputation`` and records only ``argmax(pred) == y``; its
    ``custom_postprocess`` averages that over images of the *first* batch.
    This subclass keeps the ranking, the counts and the perturbation function
    call for call, and records the softmax probability of ``y`` per image and
    percentage (plus the stock correct-flag).  LeRF, which Quantus does not
    have, removes the tail of the same ranking (``ordered[:, ::-1]``), as
    tleemann/road_evaluation does (``salient_order[int(P * th_p):]``).
    """
    import quantus
    from quantus.helpers import warn

    class ROADCurves(quantus.ROAD):
        orders = ("morf", "lerf")

        def evaluate_batch(self, model, x_batch, y_batch, a_batch, **kwargs):
            if x_batch.shape != a_batch.shape:
                a_batch = np.broadcast_to(a_batch, x_batch.shape)
            bs = a_batch.shape[0]
            a_batch = a_batch.reshape(bs, -1)
            ordered_indices = np.argsort(-a_batch, axis=1)
            rows = np.arange(bs)
            res = {}
            for order in self.orders:
                ordering = ordered_indices if order == "morf" else ordered_indices[:, ::-1]
                prob, correct, counts = [], [], []
                for p in self.percentages:
                    top_k_indices = ordering[:, : int(self.a_size * p / 100)]
                    x_perturbed = []
                    for x_element, top_k_index in zip(x_batch, top_k_indices):
                        x_perturbed.append(self.perturb_func(arr=x_element, indices=top_k_index))
                        warn.warn_perturbation_caused_no_change(x=x_element, x_perturbed=x_perturbed)
                    x_perturbed = np.stack(x_perturbed, axis=0)
                    x_input = model.shape_input(x_perturbed, x_batch.shape,
                                                channel_first=True, batched=True)
                    pred = model.predict(x_input)
                    prob.append(pred[rows, y_batch])
                    correct.append(y_batch == np.argmax(pred, axis=-1))
                    counts.append(np.full(bs, top_k_indices.shape[1]))
                res[order] = np.stack(prob, axis=1)
                res["correct_" + order] = np.stack(correct, axis=1)
                res["n_removed_" + order] = np.stack(counts, axis=1)
            return [res]

        def custom_postprocess(self, **kwargs):
            batches = self.evaluation_scores
            self.evaluation_scores = {k: np.concatenate([b[k] for b in batches], axis=0)
                                      for k in batches[0]}

    return ROADCurves


def quantus_road(model: torch.nn.Module, images, maps, target: int,
                 fractions: Sequence[float] = (0.2, 0.4, 0.6, 0.8),
                 seed: int | None = 0, batch_size: int = 64, noise: float = 0.01) -> dict:
    """Quantus's ROAD with its noisy linear imputation, on CPU.

    ``percentages = 100 f``; ``normalise=False, abs=False`` (the default
    ``normalise=True`` divides the whole batch by its max |a|: rank-neutral
    for our non-negative maps, but turned off so the maps are exactly ours);
    ``softmax=True`` so the model output is a probability.  Noise comes from
    numpy's global RNG, seeded with ``seed``; ``noise`` is the std (0.01 by
    default, as theirs).  ``morf_correct`` is what stock
    ``quantus.ROAD`` would return per image (argmax == target).
    """
    ROADCurves = _quantus_curves_metric()
    model.eval()
    x = np.asarray(images, dtype=np.float32)
    a = np.asarray(maps, dtype=np.float32)[:, None]  # (N, 1, H, W)
    y = np.full(x.shape[0], int(target), dtype=np.int64)
    p0 = _softmax_target(model, torch.from_numpy(x), target)
    percentages = [round(100.0 * f, 10) for f in fractions]
    if seed is not None:
        np.random.seed(seed)
    t0 = time.perf_counter()
    metric = ROADCurves(percentages=percentages, noise=noise, abs=False, normalise=False,
                        disable_warnings=True, display_progressbar=False)
    res = metric(model=model, x_batch=x, y_batch=y, a_batch=a, channel_first=True,
                 softmax=True, device="cpu", batch_size=batch_size)
    seconds = time.perf_counter() - t0
    return dict(morf=res["morf"].astype(np.float64), lerf=res["lerf"].astype(np.float64),
                seconds=seconds, p0=p0, fractions=tuple(fractions),
                percentages=tuple(percentages),
                n_removed_morf=res["n_removed_morf"], n_removed_lerf=res["n_removed_lerf"],
                morf_correct=res["correct_morf"], lerf_correct=res["correct_lerf"])


def quantus_road_stock(model, images, maps, target, fractions, seed: int | None = 0) -> dict:
    """Stock ``quantus.ROAD`` (MoRF only): {percentage: accuracy over the images}."""
    import quantus

    model.eval()
    x = np.asarray(images, dtype=np.float32)
    a = np.asarray(maps, dtype=np.float32)[:, None]
    y = np.full(x.shape[0], int(target), dtype=np.int64)
    if seed is not None:
        np.random.seed(seed)
    metric = quantus.ROAD(percentages=[round(100.0 * f, 10) for f in fractions], noise=0.01,
                          abs=False, normalise=False, disable_warnings=True)
    return metric(model=model, x_batch=x, y_batch=y, a_batch=a, channel_first=True,
                  softmax=True, device="cpu", batch_size=max(len(x), 1))


# --------------------------------------------------------------------------
# smoke test
# --------------------------------------------------------------------------

def _demo_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 2),
    ).eval()
    with torch.no_grad():  # a random net's logits barely move; make the curves visible
        model[-1].weight.mul_(200.0)
    return model


def _demo_data(n: int = 8, size: int = 64, seed: int = 0, ties: bool = True):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    images = np.stack([gaussian_filter(rng.random((size, size)), 2.0) for _ in range(n)])
    images = ((images - images.min()) / (images.max() - images.min()))[:, None].astype(np.float32)
    noise = np.stack([gaussian_filter(rng.standard_normal((size, size)), 4.0) for _ in range(n)])
    if ties:
        maps = np.maximum(noise, 0.0)  # ReLU: about half the pixels tie at 0
    else:
        maps = noise - noise.min(axis=(1, 2), keepdims=True)
    maps = (maps / maps.max(axis=(1, 2), keepdims=True)).astype(np.float32)
    return images, maps


def _scenario(title, model, images, maps, target, fractions) -> None:
    import warnings

    n, p = maps.shape[0], maps[0].size
    distinct = [len(np.unique(m)) for m in maps]
    print(f"\n######## {title}: N={n} images {images.shape[1:]}, fractions {fractions}, "
          f"round(f*P) = {[round(f * p) for f in fractions]}")
    print(f"zero-valued map pixels {(maps == 0).mean(axis=(1, 2)).round(2).tolist()}, "
          f"distinct values per map {min(distinct)}..{max(distinct)} of {p}")
    runs = {"g": [], "q": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # grad-cam: np.float32(torch bool)
        for _ in range(2):  # interleaved; the faster of two runs is reported
            runs["g"].append(gradcam_road(model, images, maps, target, fractions))
            runs["q"].append(quantus_road(model, images, maps, target, fractions))
        g0 = gradcam_road(model, images, maps, target, fractions, noise=0.0)
    q0 = quantus_road(model, images, maps, target, fractions, noise=0.0)
    g, q = (min(runs[k], key=lambda r: r["seconds"]) for k in "gq")
    for name, r in (("grad-cam", g), ("quantus", q)):
        print(f"== {name}: {r['seconds']:.3f} s, {r['seconds'] / n * 1e3:.0f} ms/image "
              f"({2 * len(fractions)} imputations per image, best of 2); p0 {r['p0'].astype(float).round(3).tolist()}")
        for order in ("morf", "lerf"):
            lo, hi = r["n_removed_" + order].min(0), r["n_removed_" + order].max(0)
            print(f"  {order} mean prob {r[order].mean(0).round(4).tolist()}, pixels removed "
                  f"{[f'{int(a)}..{int(b)}' if a != b else int(a) for a, b in zip(lo, hi)]}")
    print(f"time ratio quantus/grad-cam: {q['seconds'] / g['seconds']:.2f}")
    for order in ("morf", "lerf"):
        same = g0["n_removed_" + order] == q0["n_removed_" + order]
        diff = np.abs(g[order] - q[order])
        diff0 = np.abs(g0[order] - q0[order])[same]
        print(f"  {order}: max|grad-cam - quantus| {diff.max():.4f} (noise 0.01); cells with equal "
              f"counts {int(same.sum())}/{same.size}, there max diff at noise=0 "
              f"{diff0.max(initial=0.0):.1e}")


def main() -> None:
    from importlib.metadata import version

    # One intra-op thread: on the shared 2-core machine, torch's default 2 threads
    # made each 8-image forward of this net ~200 ms instead of ~5 ms under load,
    # which swamped the ROAD timings.  Use the same setting for every contender.
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, grad-cam {version('grad-cam')}, quantus {version('quantus')}, "
          f"torch threads {torch.get_num_threads()}")
    np.set_printoptions(precision=4, suppress=True, linewidth=120)
    model = _demo_model()
    target = 1
    images, maps = _demo_data(ties=True)
    _scenario("ReLU'd maps (ties at 0)", model, images, maps, target, (0.2, 0.4, 0.6, 0.8))
    stock = quantus_road_stock(model, images, maps, target, (0.2, 0.4, 0.6, 0.8))
    print("stock quantus.ROAD (MoRF accuracy over images):",
          {k: float(v) for k, v in stock.items()})
    images, maps = _demo_data(ties=False)
    # f * P integral and no ties: grad-cam's percentile threshold removes exactly f * P pixels
    _scenario("tie-free maps", model, images, maps, target, (0.25, 0.5, 0.75))


if __name__ == "__main__":
    main()
