"""Pixel removal and refilling for deletion / insertion / ROAD curves.

A perturbation curve removes the pixels a saliency map ranks most relevant
first (MoRF, "deletion") or least relevant first (LeRF, "insertion"), refills
them, and follows the classifier's score (Samek et al. 2017, "Evaluating the
visualization of what a deep neural network has learned", IEEE TNNLS).  This
module is the pure, batched part: which pixels are removed, and what they are
replaced with.  The model passes live elsewhere.

Removal order.  The order is a total order: pixels are sorted by map value and
ties are broken by a per-image seeded random permutation, so a fraction ``f``
removes exactly ``round(f * H * W)`` pixels.  Percentile thresholding (what
pytorch-grad-cam's ROAD does: remove every pixel whose value reaches
``np.percentile(map, 100 - 100 f)``) removes all tied pixels at once, and
GradCAM maps after the ReLU are mostly exact zeros, so a "20 %" step can remove
the whole image.

Refilling.  ROAD (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022, "A
Consistent and Efficient Evaluation Strategy for Attribution Methods") fills
removed pixels by *noisy linear imputation*: every removed pixel takes the
weighted mean of its in-image 8-neighbours (edge neighbours 1/6, diagonal ones
1/12), removed neighbours being unknowns themselves, and Gaussian noise
(std 0.01) is added to the filled pixels.  Unlike a blur or a constant it
leaks little information about the removed shape to the classifier, which is
what makes MoRF and LeRF rankings consistent.

Differences from the reference implementations (tleemann/road_evaluation
``road/imputations.py``, copied into pytorch-grad-cam
``pytorch_grad_cam/metrics/road.py``):

* Same equations.  Unknowns are the removed pixels; at the image border the
  weights of the neighbours that exist are used and the mean is normalised by
  their sum (5/12 in a corner, 2/3 along an edge), as in the reference.
* Solver.  The reference assembles a scipy sparse matrix and calls ``spsolve``
  (a sparse LU factorisation) once per image on the CPU.  Here the system is
  solved for the whole batch at once, on the images' device and in their
  float dtype, by conjugate gradients preconditioned with one geometric
  multigrid V-cycle (Tatebe 1993, "The multigrid preconditioned conjugate
  gradient method"), every step a tensor operation: the 3x3 stencil is two
  separable passes (``[1 2 1]^T [1 2 1] / 12`` less a third of the centre).
  The matrix is symmetric and weakly diagonally dominant, strictly so next to
  a kept pixel; as every connected removed region borders a kept pixel when
  an image keeps at least one, it is positive definite.  Iteration stops
  image by image at a relative residual ``tol``.  Only the coarsest multigrid
  level (at most 64 points) is inverted densely: a pseudo-inverse computed in
  float64, with the SVD as a fallback (single-precision ``eigh`` once failed
  to converge on it).
* Why multigrid.  Plain CG needs more iterations the wider the removed
  region: about 300 for an 80 % blob on 128x128 and 500 on 224x224.  Jacobi
  preconditioning changes nothing (the diagonal is 1 away from the border)
  and a mean or blurred warm start saves under 15 % at ``tol=1e-7``.  The
  preconditioned CG needs 3 to 11 iterations whatever the size or shape
  (8 with a single kept pixel).  On one CPU core, 384 removal masks of
  128x128 (fractions 0.2-0.8, MoRF and LeRF) take about 4 s instead of 10 s,
  64x3x224x224 about 13 s instead of 80 s; only scattered removal (80 % of
  pixels at random), which plain CG solves in about 40 iterations, is about
  twice slower.  In float32 ``tol=1e-7`` gives a largest error near 1e-5.
* pytorch-grad-cam's ROAD chooses the removed pixels by percentile
  thresholding (see above); the reference noise is drawn from the global
  generator, here from an optional seeded ``torch.Generator``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

FILLS = ("linear", "linear-exact", "blur", "mean", "random")

_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))  # stencil slot k <-> offset
_FINE_JACOBI = 0.8  # damped Jacobi weight on the image grid
_COARSEST = 64  # grids of at most this many pixels are solved exactly
_MAX_ITER = 500


def removal_order(maps: np.ndarray, seeds: Sequence[int]) -> torch.Tensor:
    """(N, H, W) saliency maps -> (N, H*W) int64 flat pixel indices, most relevant first.

    Ties (equal map values: GradCAM after its ReLU is mostly zeros, a constant
    map is all ties) are broken by a random permutation drawn from
    ``np.random.default_rng(seeds[i])`` for image i, so the order is
    reproducible per image and the same whichever batch the image is in.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"removal_order: maps must be (N, H, W), got shape {maps.shape}")
    if len(seeds) != len(maps):
        raise ValueError(f"removal_order: {len(maps)} maps but {len(seeds)} seeds")
    if not np.all(np.isfinite(maps)):
        raise ValueError("removal_order: a map contains NaN or infinite values")
    n, h, w = maps.shape
    order = np.empty((n, h * w), dtype=np.int64)
    for i, (values, seed) in enumerate(zip(maps.reshape(n, h * w), seeds)):
        tie_break = np.random.default_rng(int(seed)).permutation(h * w)
        order[i] = np.lexsort((tie_break, -values))  # the last key sorts first
    return torch.from_numpy(order)


def removal_masks(order: torch.Tensor, fractions: Sequence[float], shape: tuple[int, int], *,
                  reverse: bool = False) -> torch.Tensor:
    """(N, P) order -> (N, F, H, W) bool masks, True where a pixel is removed.

    For fraction f exactly ``round(f * P)`` pixels are removed (Python's
    ``round``: halves go to the even count): the first ones of ``order`` (MoRF),
    or with ``reverse=True`` the last ones (LeRF).  Masks of growing fractions
    are nested.  The masks are built on ``order``'s device.
    """
    h, w = shape
    if order.ndim != 2 or order.shape[1] != h * w:
        raise ValueError(f"removal_masks: order must be (N, {h * w}) for shape {shape}, got {tuple(order.shape)}")
    if any(not 0.0 <= f <= 1.0 for f in fractions):
        raise ValueError(f"removal_masks: fractions must lie in [0, 1], got {list(fractions)}")
    n, p = order.shape
    rank = torch.full_like(order, -1)
    rank.scatter_(1, order, torch.arange(p, device=order.device).expand(n, p))
    if (rank < 0).any():
        raise ValueError("removal_masks: each row of order must be a permutation of the pixel indices")
    if reverse:
        rank = p - 1 - rank
    counts = torch.tensor([round(f * p) for f in fractions], device=order.device)
    return (rank[:, None, :] < counts[None, :, None]).view(n, len(counts), h, w)


def _neighbour_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of the in-image 8-neighbours of every pixel, weights 1/6 (edge) and 1/12 (corner).

    The stencil is the separable ``[1 2 1]^T [1 2 1] / 12`` less its centre
    (1/3); zero padding drops the neighbours outside the image.
    """
    padded = F.pad(x, (1, 1, 1, 1))
    rows = padded[..., :, :-2] + 2 * padded[..., :, 1:-1] + padded[..., :, 2:]
    both = rows[..., :-2, :] + 2 * rows[..., 1:-1, :] + rows[..., 2:, :]
    return both / 12 - x / 3


def _image_operator(unknown: torch.Tensor, diag: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``A x = U (D - W) U x`` on the image grid (see :class:`_Multigrid`); ``x`` on kept pixels is ignored."""
    return unknown * (diag * x - _neighbour_sum(unknown * x))


def _stencil(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply per-pixel 9-point stencils ``coef`` (B, 9, h, w) to ``x`` (B, C, h, w), zero outside."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    out = coef[:, 4:5] * x
    for k, (dy, dx) in enumerate(_OFFSETS):
        if k != 4:
            out = out + coef[:, k:k + 1] * padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    return out


def _coarse_shape(h: int, w: int) -> tuple[int, int]:
    """Coarse grid whose point I sits on fine pixel 2I (one past the last pixel when the size is even)."""
    return h // 2 + 1, w // 2 + 1


def _prolong(e: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear interpolation from the coarse grid to the (h, w) fine grid."""
    hc, wc = e.shape[-2:]
    out = e.new_zeros(*e.shape[:-2], 2 * hc - 1, 2 * wc - 1)
    out[..., ::2, ::2] = e
    out[..., ::2, 1::2] = 0.5 * (e[..., :, :-1] + e[..., :, 1:])
    out[..., 1::2, :] = 0.5 * (out[..., :-2:2, :] + out[..., 2::2, :])
    return out[..., :h, :w]


def _restrict(r: torch.Tensor, hc: int, wc: int) -> torch.Tensor:
    """Transpose of :func:`_prolong` (full weighting, unscaled)."""
    h, w = r.shape[-2:]
    p = F.pad(r, (1, 2 * wc - w))
    r = p[..., 1::2] + 0.5 * (p[..., 0:-1:2] + p[..., 2::2])
    p = F.pad(r, (0, 0, 1, 2 * hc - h))
    return p[..., 1::2, :] + 0.5 * (p[..., 0:-1:2, :] + p[..., 2::2, :])


def _galerkin(apply: Callable[[torch.Tensor], torch.Tensor], batch: int, fine: tuple[int, int],
              coarse: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """Stencils (B, 9, hc, wc) of the coarse operator ``P^T A P``, found by probing.

    ``P^T A P`` couples a coarse point only with its 8 neighbours, so colouring
    the coarse grid by (row mod 3, column mod 3) gives 9 classes whose points
    never share a neighbourhood: prolonging the indicator of one class,
    applying ``A`` and restricting reads off one stencil entry per point.
    """
    hc, wc = coarse
    iy = torch.arange(hc, device=like.device).view(-1, 1)
    ix = torch.arange(wc, device=like.device).view(1, -1)
    coef = like.new_zeros(batch, 9, hc, wc)
    for cy in range(3):
        for cx in range(3):
            probe = ((iy % 3 == cy) & (ix % 3 == cx)).to(like.dtype).expand(batch, 1, hc, wc)
            response = _restrict(apply(_prolong(probe, *fine)), hc, wc)[:, 0]
            for k, (dy, dx) in enumerate(_OFFSETS):
                coef[:, k] += response * ((iy + dy) % 3 == cy) * ((ix + dx) % 3 == cx)
    return coef


def _coarsest_inverse(apply: Callable[[torch.Tensor], torch.Tensor], batch: int, shape: tuple[int, int],
                      like: torch.Tensor) -> torch.Tensor:
    """(B, n, n) pseudo-inverse, in ``like``'s dtype, of the coarsest operator ``apply`` on a ``shape`` grid.

    The operator is only semi-definite: a coarse point whose support holds no
    removed pixel has an empty row and column, and a coarse vector whose
    prolongation vanishes on every removed pixel is a null vector.  On one such
    float32 matrix (a 20 % GradCAM mask of 112x112: 38 of its 64 rows empty),
    MKL's single-precision ``eigh`` failed to converge, although the matrix is
    finite and symmetric to rounding and the same matrix times 2 or permuted
    converged.  So the matrix is inverted in float64, exactly symmetric (``eigh``
    reads one triangle, the SVD both), with the empty rows and columns set
    apart as a diagonal block (their matrix's largest diagonal entry, so the
    eigenvalue cutoff is unchanged) that is zeroed again in the result; should
    ``eigh`` still raise, the SVD takes over.
    """
    n = shape[0] * shape[1]
    eye = torch.eye(n, dtype=torch.float64, device=like.device).view(1, n, *shape).expand(batch, -1, -1, -1)
    a = apply(eye).reshape(batch, n, n)  # a coarse grid's entries: stencil coefficients, upcast exactly
    a = (a + a.transpose(1, 2)) / 2
    empty = (a == 0).all(dim=2)
    scale = a.diagonal(dim1=1, dim2=2).amax(dim=1)
    a = a + torch.diag_embed(empty * torch.where(scale > 0, scale, 1.0)[:, None])  # 1 when nothing is removed
    # Eigenvalues under n eps of the largest are cut with the eps of the stencils' dtype (pinv's default for
    # that dtype), not float64's: in float32 the null vectors carry rounding eigenvalues near 1e-7.
    rtol = n * torch.finfo(like.dtype).eps
    try:
        inverse = torch.linalg.pinv(a, rtol=rtol, hermitian=True)
    except torch.linalg.LinAlgError:
        inverse = torch.linalg.pinv(a, rtol=rtol)
    kept = ~empty
    return (inverse * (kept[:, :, None] & kept[:, None, :])).to(like.dtype)


@dataclass(frozen=True)
class _Multigrid:
    """The imputation operator of a batch and its multigrid V-cycle preconditioner.

    The operator is ``A = U (D - W) U``: ``W`` the neighbour stencil, ``D`` each
    pixel's in-image neighbour weight sum, ``U`` the removed-pixel indicator.
    The V(1,1)-cycle uses bilinear prolongation ``P``, restriction ``P^T`` and
    Galerkin coarse operators ``P^T A P``, so it is symmetric; its smoothers are damped Jacobi (weight
    0.8) on the image grid, where ``D^-1 A`` has spectral radius at most 2,
    and l1-Jacobi on the coarse grids (Baker, Falgout, Kolev & Yang 2011,
    "Multigrid smoothers for ultraparallel computing", SIAM J. Sci. Comput.),
    which converges for any positive semi-definite operator; the coarsest grid
    is solved exactly (a float64 pseudo-inverse, :func:`_coarsest_inverse`: a
    coarse point whose support holds no removed pixel has an empty row).  Together these keep the preconditioner
    positive definite, as preconditioned CG needs.
    """

    unknown: torch.Tensor  # (B, 1, H, W), 1 on removed pixels
    diag: torch.Tensor  # (1, 1, H, W), D
    coefs: tuple[torch.Tensor, ...]  # (B, 9, h, w) Galerkin stencils of the coarse grids, finest first
    smoothers: tuple[torch.Tensor, ...]  # (B, 1, h, w) smoother diagonals, image grid first
    inverse: torch.Tensor  # (B, n, n) pseudo-inverse of the coarsest operator

    @classmethod
    def build(cls, unknown: torch.Tensor) -> _Multigrid:
        diag = _neighbour_sum(torch.ones_like(unknown[:1]))
        batch, shape = len(unknown), unknown.shape[-2:]
        coefs: list[torch.Tensor] = []
        apply = partial(_image_operator, unknown, diag)
        while shape[0] * shape[1] > _COARSEST:
            coarse = _coarse_shape(*shape)
            coefs.append(_galerkin(apply, batch, shape, coarse, unknown))
            apply, shape = partial(_stencil, coefs[-1]), coarse
        inverse = _coarsest_inverse(apply, batch, shape, unknown)
        smoothers = (_FINE_JACOBI * unknown / diag,
                     *(torch.nan_to_num(1 / c.abs().sum(dim=1, keepdim=True), posinf=0.0) for c in coefs))
        return cls(unknown, diag, tuple(coefs), smoothers, inverse)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` on the image grid."""
        return _image_operator(self.unknown, self.diag, x)

    def select(self, keep: torch.Tensor) -> _Multigrid:
        """The same for the images where ``keep`` is True."""
        return _Multigrid(self.unknown[keep], self.diag, tuple(c[keep] for c in self.coefs),
                          tuple(s[keep] for s in self.smoothers), self.inverse[keep])

    def __call__(self, r: torch.Tensor, level: int = 0) -> torch.Tensor:
        """One V-cycle for ``A z = r`` from ``z = 0``."""
        if level == len(self.coefs):
            return (self.inverse @ r.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(r.shape)
        apply = self.apply if level == 0 else partial(_stencil, self.coefs[level - 1])
        smoother = self.smoothers[level]
        h, w = r.shape[-2:]
        z = smoother * r
        correction = _prolong(self(_restrict(r - apply(z), *_coarse_shape(h, w)), level + 1), h, w)
        z = z + correction
        return z + smoother * (r - apply(z))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-(image, channel) inner products of two (B, C, H, W) tensors."""
    return (a * b).sum(dim=(2, 3))


def _conjugate_gradients(rhs: torch.Tensor, unknown: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    """Solve ``A x = rhs`` by multigrid-preconditioned CG for every (image, channel) of a batch.

    Each channel runs its own CG; an image leaves the batch once all its
    channels reach ``|r| <= tol |rhs|``.  Only the removed pixels of the
    result are meaningful: ``A`` ignores the kept ones.
    """
    grid = _Multigrid.build(unknown)
    solution = torch.zeros_like(rhs)
    active = torch.arange(len(rhs), device=rhs.device)
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    p = grid(r)
    rz = _dot(r, p)
    rr = _dot(r, r)
    goal = tol ** 2 * rr
    for iteration in range(max_iter + 1):
        done = (rr <= goal).all(dim=1)
        if done.any():
            solution[active[done]] = x[done]
            left = ~done
            if not left.any():
                return solution
            active, x, r, p, rz, rr, goal = (t[left] for t in (active, x, r, p, rz, rr, goal))
            grid = grid.select(left)
        if iteration == max_iter:
            break
        q = grid.apply(p)
        pq = _dot(p, q)
        alpha = torch.where(pq > 0, rz / pq, torch.zeros_like(rz))[..., None, None]
        x += alpha * p
        r -= alpha * q
        z = grid(r)
        rz_next = _dot(r, z)
        beta = torch.where(rz > 0, rz_next / rz, torch.zeros_like(rz))[..., None, None]
        p = z + beta * p
        rz, rr = rz_next, _dot(r, r)
    worst = (rr / goal.clamp_min(torch.finfo(rr.dtype).tiny)).sqrt().max().item() * tol
    raise RuntimeError(f"noisy_linear_impute: conjugate gradients did not reach relative residual {tol:g} "
                       f"in {max_iter} iterations ({len(active)} images left, worst {worst:.2g})")


def _check_batch(images: torch.Tensor, removed: torch.Tensor, what: str) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"{what}: images must be a float (B, C, H, W) tensor, "
                         f"got {images.dtype} {tuple(images.shape)}")
    b, _, h, w = images.shape
    if removed.dtype != torch.bool or tuple(removed.shape) != (b, h, w):
        raise ValueError(f"{what}: removed must be a bool ({b}, {h}, {w}) tensor, got {removed.dtype} "
                         f"{tuple(removed.shape)}")


def noisy_linear_impute(images: torch.Tensor, removed: torch.Tensor, *, noise: float = 0.01,
                        generator: torch.Generator | None = None, tol: float = 1e-7,
                        max_iter: int | None = None) -> torch.Tensor:
    """ROAD's noisy linear imputation (Rong et al., ICML 2022), batched on the images' device.

    ``images`` (B, C, H, W) float, ``removed`` (B, H, W) bool.  Every removed
    pixel becomes the weighted mean of its in-image 8-neighbours (edge
    neighbours 1/6, diagonal 1/12, normalised by the weights present at the
    border), solved jointly for all removed pixels of an image and channel by
    multigrid-preconditioned conjugate gradients to relative residual ``tol``.
    Kept pixels are returned unchanged; removed ones then get N(0, noise^2)
    noise (``noise`` is the standard deviation; 0 adds none) from
    ``generator``.  ``max_iter`` (default 500; about 10 are needed) raises
    RuntimeError when exceeded.  An image with every pixel removed has no
    solution: ValueError.
    """
    _check_batch(images, removed, "noisy_linear_impute")
    if noise < 0:
        raise ValueError(f"noisy_linear_impute: noise is a standard deviation, got {noise}")
    _, _, h, w = images.shape
    removed_counts = removed.flatten(1).sum(dim=1)
    if (removed_counts == h * w).any():
        i = int(torch.nonzero(removed_counts == h * w)[0])
        raise ValueError(f"noisy_linear_impute: image {i} has all of its {h * w} pixels removed; "
                         "linear imputation needs at least one kept pixel")
    work = images.to(torch.promote_types(images.dtype, torch.float32))
    unknown = removed[:, None].to(work.dtype)
    rhs = unknown * _neighbour_sum(work * (1 - unknown))
    filled = _conjugate_gradients(rhs, unknown, tol, _MAX_ITER if max_iter is None else max_iter)
    if noise > 0:
        filled = filled + noise * torch.randn(work.shape, generator=generator, dtype=work.dtype, device=work.device)
    return torch.where(removed[:, None], filled.to(images.dtype), images)


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius ceil(3 sigma)), normalised by the kernel mass inside the image.

    Normalised convolution keeps border pixels unbiased without reflecting the
    image, and works for any kernel size.
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)

    def smooth(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, 1, *x.shape[-2:])
        flat = F.conv2d(flat, kernel.view(1, 1, 1, -1), padding=(0, radius))
        flat = F.conv2d(flat, kernel.view(1, 1, -1, 1), padding=(radius, 0))
        return flat.view(x.shape)

    return smooth(images) / smooth(torch.ones_like(images[:1, :1]))


def fill(images: torch.Tensor, removed: torch.Tensor, how: str, *, generator: torch.Generator | None = None,
         blur_sigma: float | None = None) -> torch.Tensor:
    """Replace the removed pixels of (B, C, H, W) ``images`` (mask (B, H, W) bool) by a fill.

    * ``linear`` -- ROAD's noisy linear imputation, noise std 0.01;
      ``linear-exact`` -- the same without noise (see :func:`noisy_linear_impute`).
    * ``blur`` -- a Gaussian-blurred copy of the whole image (sigma default
      ``max(H, W) / 32``), pasted into the removed pixels (Fong & Vedaldi 2017,
      "Interpretable explanations of black boxes by meaningful perturbation").
    * ``mean`` -- each image and channel's mean over all its pixels (ROAD's
      "fixed" baseline).
    * ``random`` -- uniform noise in each image and channel's [min, max]
      (Samek et al. 2017, region perturbation).

    Kept pixels are returned unchanged.  ``generator`` drives the noise of
    ``linear`` and ``random``.
    """
    if how not in FILLS:
        raise ValueError(f"fill: unknown fill {how!r}; choose one of {', '.join(FILLS)}")
    if how in ("linear", "linear-exact"):
        return noisy_linear_impute(images, removed, noise=0.01 if how == "linear" else 0.0, generator=generator)
    _check_batch(images, removed, "fill")
    if how == "blur":
        sigma = max(images.shape[-2:]) / 32 if blur_sigma is None else blur_sigma
        if sigma <= 0:
            raise ValueError(f"fill: blur_sigma must be positive, got {sigma}")
        replacement = _gaussian_blur(images, sigma)
    elif how == "mean":
        replacement = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    else:
        low = images.amin(dim=(2, 3), keepdim=True)
        high = images.amax(dim=(2, 3), keepdim=True)
        uniform = torch.rand(images.shape, generator=generator, dtype=images.dtype, device=images.device)
        replacement = low + (high - low) * uniform
    return torch.where(removed[:, None], replacement, images)


# -- the per-image seeds of ROAD's pixel orders (engine/passes.py computes, engine/plan.py counts, alike) ---------
def tie_seeds(config, samples) -> list[int]:
    """Per image: the seed breaking ties in a map's pixel order (the same for every map of the image)."""
    from ..stats import stable_seed

    return [stable_seed(config.seed, "pixel-order-ties", s.id) for s in samples]


def random_seeds(config, samples) -> list[int]:
    """Per image: the seed of the random pixel order (an all-ties map broken by it)."""
    from ..stats import stable_seed

    return [stable_seed(config.seed, "random-pixel-order", s.id) for s in samples]
