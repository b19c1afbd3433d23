"""Control "methods": maps whose verdicts are known before the audit runs.

Every laboratory assay runs positive and negative controls beside its samples; an audit that cannot fail
them cannot be trusted to fail a bad saliency method either.  The controls are registered like any method
(``--controls`` adds them) and go through the same postprocessing, but they never look at the model:

* ``edge`` (negative): the Sobel edge magnitude of the image, Adebayo et al.'s (2018) comparison with an
  edge detector.  It ignores the model, so it must fail every criterion that asks whether the map depends
  on what the model learned, and, unless the lesions are the strongest edges in the image, utility.
* ``random`` (negative): uniform noise, seeded by the run seed and the image's content key only, so every
  model gets the same noise for the same image.
* ``oracle`` (positive): the lesion mask itself, softened by ``completeness.lesion_sigma`` (px on a
  128-px grid), so its ordering inside the lesion is not arbitrary; zero on images without a lesion.

What each criterion expects of them lives in the criterion registry
(:data:`saliency_audit.common.criteria_registry.CONTROL_EXPECTATIONS`).
"""
from __future__ import annotations

import numpy as np
import torch

#: control name -> "negative" or "positive"
ROLES = {"edge": "negative", "random": "negative", "oracle": "positive"}


def _out(maps: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(maps).astype(np.float32))[:, None]


def edge(model, x: torch.Tensor, keys, target, config, memo) -> torch.Tensor:
    """Sobel gradient magnitude of the channel-mean image (scikit-image's ``sobel``)."""
    from skimage.filters import sobel

    grey = x.detach().float().mean(dim=1).cpu().numpy()
    return _out([sobel(g) for g in grey])


def random(model, x: torch.Tensor, keys, target, config, memo) -> torch.Tensor:
    """Uniform noise per image, from ``(seed, image key)``: the same for every model."""
    from ..stats import stable_seed

    h, w = x.shape[-2:]
    return _out([np.random.default_rng(stable_seed(config.seed, "random-control", k)).random((h, w))
                 for k in keys])


def oracle(model, x: torch.Tensor, keys, target, config, memo) -> torch.Tensor:
    """The lesion mask on the model's input grid, softened; zeros where an image has no lesion."""
    from ..metrics.localisation import grid_sigma, lesion_maps, resize_map

    h, w = x.shape[-2:]
    sigma = grid_sigma(config.completeness.lesion_sigma, (h, w))
    out = []
    for s in memo["samples"]:
        truth = s.truth()
        if truth is None or not truth.any():
            out.append(np.zeros((h, w)))
            continue
        mask = resize_map(truth.astype(np.float32), (h, w))
        out.append(lesion_maps([mask], sigma)[0])
    return _out(out)
