"""Synthetic chest-X-ray-like images whose lesions are known to the pixel.

Saliency maps can only be scored against ground truth that is exact, so the
demo world draws its own lesions and returns their masks. The anatomy (body,
lungs, ribs, heart, smooth shading, gamma, noise) is there to give a
classifier plenty of lesion-like structure that it must *not* look at; the
optional corner marker is a laterality tag that a model can learn as a
shortcut when the data make it predictive.

Every image is a pure function of ``(split, index, seed, lesion, marker)``.
Anatomy, lesions and marker come from separate random streams, so the same
``(split, index, seed)`` gives the same patient with or without a lesion or a
marker: counterfactual pairs differ only where the lesion or marker is.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

IMAGE_SIZE = 128
#: Bump whenever a change alters rendered pixels; cached models key on it.
GENERATOR_VERSION = "1"

MARKER_MODES = ("independent", "label", "shortcut")

# Peak lesion opacity in linear intensity (lung ~0.3, soft tissue ~0.6, ribs +0.05).
_LESION_AMPLITUDE = (0.15, 0.26)

# Independent random streams of one sample (SeedSequence spawn keys).
_ANATOMY, _LESION, _MARKER, _DRAW = range(4)

# 7x7 glyphs for the marker: "L", "R" and a framed square, like the lead
# letters radiographers put on the plate.
_GLYPHS = tuple(
    np.array([[c == "#" for c in row] for row in rows.split()], dtype=bool)
    for rows in (
        "##..... ##..... ##..... ##..... ##..... ####### #######",
        "######. ##...## ##...## ######. ##.##.. ##..##. ##...##",
        "####### ##...## ##...## ##.#.## ##...## ##...## #######",
    )
)


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields cannot be compared with ==
class DemoImage:
    """One rendered sample.

    ``label`` is ``1`` iff at least one lesion is drawn -- except in splits made
    with ``marker_mode="shortcut"``, where ``label`` is the marker flag and the
    lesion is independent of it (see :func:`make_split`).
    """

    image: np.ndarray  # float32 (H, W) in [0, 1]
    mask: np.ndarray  # bool (H, W): union of the lesions
    boxes: tuple[tuple[int, int, int, int], ...]  # (x0, y0, x1, y1) inclusive, one per lesion
    label: int
    marker: bool  # whether the corner marker is drawn
    lungs: np.ndarray | None = None  # bool (H, W): visible lung fields, where lesions may lie
    marker_box: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) inclusive


def _split_code(split: str) -> int:
    # crc32, not hash(): hash() of a str is salted per process.
    return zlib.crc32(split.encode("utf-8"))


def _rng(split: str, index: int, seed: int, stream: int) -> np.random.Generator:
    ss = np.random.SeedSequence([seed, _split_code(split), index], spawn_key=(stream,))
    return np.random.default_rng(ss)


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in units of the image side, (u=x, v=y)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, :], c[:, None]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _soft_inside(r: np.ndarray, edge: float) -> np.ndarray:
    """~1 inside the unit level set ``r < 1`` and ~0 outside, over ``edge`` units of r."""
    return _sigmoid((1.0 - r) / edge)


def _anatomy(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-intensity thorax, its lung-visibility map and the visible-lung mask."""
    u, v = _grid(size)
    px = 1.0 / size  # one pixel in image units
    theta = math.radians(rng.uniform(-5, 5))
    scale = rng.uniform(0.92, 1.06)
    du, dv = u - (0.5 + rng.uniform(-0.03, 0.03)), v - (0.52 + rng.uniform(-0.03, 0.03))
    # Patient coordinates: p to the image right, q downwards, origin mid-thorax.
    p = (math.cos(theta) * du + math.sin(theta) * dv) / scale
    q = (math.cos(theta) * dv - math.sin(theta) * du) / scale
    edge = 1.2 * px / scale

    ax, ay = 0.40 * rng.uniform(0.95, 1.05), 0.46 * rng.uniform(0.95, 1.05)
    body = _soft_inside(np.sqrt((p / ax) ** 2 + ((q - 0.04) / ay) ** 2), edge / ax)

    lung_soft = np.zeros_like(body)
    for side in (-1.0, 1.0):
        cp = side * 0.19 * rng.uniform(0.95, 1.05)
        cq = -0.02 + rng.uniform(-0.02, 0.02)
        a, b = 0.125 * rng.uniform(0.9, 1.1), 0.27 * rng.uniform(0.9, 1.1)
        tilt = side * math.radians(rng.uniform(2, 8))  # apices lean towards the spine
        lp = math.cos(tilt) * (p - cp) + math.sin(tilt) * (q - cq)
        lq = math.cos(tilt) * (q - cq) - math.sin(tilt) * (p - cp)
        # Superellipse of power 2.5 (fuller than an ellipse, closer to a lung
        # field); its level-1 set is where s = |x|^2.5 + |y|^2.5 < 1, and near
        # it r = s^0.4 ~ 1 + 0.4 (s - 1), which spares a slow fractional power.
        x2, y2 = (lp / a) ** 2, (lq / b) ** 2
        r = 1.0 + 0.4 * (x2 * np.sqrt(np.sqrt(x2)) + y2 * np.sqrt(np.sqrt(y2)) - 1.0)
        lung_soft = np.maximum(lung_soft, _soft_inside(r, edge / a))

    hp, hq = 0.04 + rng.uniform(-0.02, 0.02), 0.16 + rng.uniform(-0.02, 0.02)
    ha, hb = 0.15 * rng.uniform(0.9, 1.1), 0.13 * rng.uniform(0.9, 1.1)
    heart = _soft_inside(np.sqrt(((p - hp) / ha) ** 2 + ((q - hq) / hb) ** 2), 3 * edge / ha)
    mediastinum = np.exp(-((p / 0.05) ** 2)) * _sigmoid((q + 0.32) / 0.02)

    # Ribs: curved low-contrast bands; sharpened cosines of a parabolic phase.
    t = q + rng.uniform(-0.25, 0.05) * np.abs(p) + rng.uniform(1.5, 3.0) * (np.abs(p) - 0.18) ** 2
    ribs = (0.5 + 0.5 * np.cos(2 * np.pi * t / rng.uniform(0.075, 0.095) + rng.uniform(0, 2 * np.pi))) ** 3

    img = 0.06 + body * (0.55 * rng.uniform(0.9, 1.1))
    img = img - 0.28 * rng.uniform(0.85, 1.15) * lung_soft * body
    img = img + body * (0.16 * heart + 0.10 * mediastinum * (1 - heart))
    img = img + 0.055 * rng.uniform(0.7, 1.3) * ribs * body * (0.3 + 0.7 * lung_soft)

    lung_vis = lung_soft * (1.0 - heart)
    lungs = (lung_soft > 0.5) & (heart < 0.5)
    # The heart's edge can cut off a sliver of lung; keep the two fields only.
    labels, n = ndimage.label(lungs)
    if n > 2:
        keep = np.argsort(np.bincount(labels.ravel())[1:])[-2:] + 1
        lungs = np.isin(labels, keep)
    return img.astype(np.float32), lung_vis.astype(np.float32), lungs


def _blob(
    cx: float, cy: float, radius: float, aspect: float, psi: float,
    harm_amp: list[float], harm_phase: list[float], size: int,
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """A lobulated ellipse's relative radius (< 1 inside) on a window around its centre: ((y0, y1, x0, x1), rel)."""
    # Window wide enough for the profile's tail (< 0.5% of peak at its edge).
    h = int(np.ceil(3.5 * radius))
    y0, y1 = max(0, int(cy) - h), min(size, int(cy) + h + 1)
    x0, x1 = max(0, int(cx) - h), min(size, int(cx) + h + 1)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    ex = math.cos(psi) * dx + math.sin(psi) * dy
    ey = (math.cos(psi) * dy - math.sin(psi) * dx) / aspect
    ang = np.arctan2(ey, ex)
    rho = radius * (
        1.0
        + harm_amp[0] * np.cos(2 * ang + harm_phase[0])
        + harm_amp[1] * np.cos(3 * ang + harm_phase[1])
    )
    return (y0, y1, x0, x1), np.sqrt(ex**2 + ey**2) / rho


def _lesions(
    rng: np.random.Generator, lungs: np.ndarray, size: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One or two soft opacities inside the lungs: (intensity sum, per-lesion masks).

    The mask of a lesion is where its profile exceeds half its peak; each
    lesion is kept whole inside the lungs (one pixel clear of their edge) and
    apart from the other, so the connected components of the union mask are
    exactly the lesions. Shapes are drawn on a window around the centre only.
    """
    k = size / IMAGE_SIZE
    allowed = ndimage.binary_erosion(lungs, iterations=max(1, round(k)), border_value=0)
    candidates = np.flatnonzero(allowed)
    total = np.zeros((size, size), np.float32)
    masks: list[np.ndarray] = []
    n_lesions = 1 if rng.random() < 0.7 else 2
    for attempt in range(400):
        if len(masks) == n_lesions or candidates.size == 0:
            break
        radius = rng.uniform(5.0, 12.0) * k * 0.85 ** (attempt // 40)
        cy, cx = divmod(int(candidates[rng.integers(candidates.size)]), size)
        cx, cy = cx + rng.uniform(-0.5, 0.5), cy + rng.uniform(-0.5, 0.5)
        aspect, psi = rng.uniform(0.65, 1.0), rng.uniform(0, np.pi)
        harm_amp, harm_phase = rng.uniform(-0.12, 0.12, 2).tolist(), rng.uniform(0, 2 * np.pi, 2).tolist()
        sharpness = rng.uniform(2.0, 4.0)
        amplitude = rng.uniform(*_LESION_AMPLITUDE)

        (y0, y1, x0, x1), rel = _blob(cx, cy, radius, aspect, psi, harm_amp, harm_phase, size)
        mask = np.zeros((size, size), bool)
        mask[y0:y1, x0:x1] = rel < 1.0
        if not mask.any() or (mask & ~allowed).any():
            continue
        if masks and (ndimage.binary_dilation(mask, iterations=2) & masks[0]).any():
            continue
        if ndimage.label(mask[y0:y1, x0:x1], structure=np.ones((3, 3)))[1] != 1:
            continue
        masks.append(mask)
        # exp(-ln2 rel^s): exactly half the peak on the mask edge.
        total[y0:y1, x0:x1] += amplitude * np.exp(-math.log(2.0) * rel**sharpness)
    if len(masks) != n_lesions:  # pragma: no cover - would mean the lungs are tiny
        raise RuntimeError("demo world: could not place a lesion inside the lungs")
    return total, masks


def _marker(rng: np.random.Generator, size: int) -> tuple[np.ndarray, float, tuple[int, int, int, int]]:
    """A bright letter in the top-left corner, outside the body and the lungs.

    Returns (glyph mask, intensity, inclusive box).
    """
    k = size / IMAGE_SIZE
    glyph = _GLYPHS[rng.integers(len(_GLYPHS))]
    side = max(3, round(7 * k))
    idx = (np.arange(side) * 7 // side)
    glyph = glyph[np.ix_(idx, idx)]
    x0 = round(rng.integers(3, 9) * k)
    y0 = round(rng.integers(3, 9) * k)
    out = np.zeros((size, size), bool)
    out[y0 : y0 + side, x0 : x0 + side] = glyph
    return out, rng.uniform(0.85, 1.0), (x0, y0, x0 + side - 1, y0 + side - 1)


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _develop(
    img: np.ndarray, arng: np.random.Generator, split: str, index: int, seed: int, marker: bool, size: int
) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """From linear intensity to the detector's image: shading, gamma, window, the marker, noise.

    Draws from the anatomy stream ``arng`` (after the anatomy) in a fixed order, so a patient's exposure and
    noise do not depend on its lesions; returns (image, marker box or None).
    """
    # Smooth shading (uneven exposure), then detector gamma and window.
    u, v = _grid(size)
    field = np.ones((size, size), np.float32)
    for _ in range(3):  # cos(a u + b v + c), separably: outer products of 1-D waves
        a, b = (arng.uniform(-2.0, 2.0, 2) * np.pi).tolist()
        c, amp = arng.uniform(0, 2 * np.pi), 0.05 * arng.uniform(0, 1)
        field += amp * (np.cos(a * u) * np.cos(b * v + c) - np.sin(a * u) * np.sin(b * v + c))
    img = np.clip(img * field, 0.0, 1.0) ** np.exp(arng.uniform(-0.25, 0.25))
    lo, hi = arng.uniform(0.0, 0.06), arng.uniform(0.85, 1.0)
    img = lo + (hi - lo) * img

    marker_box = None
    if marker:
        glyph, brightness, marker_box = _marker(_rng(split, index, seed, _MARKER), size)
        img = np.where(glyph, np.float32(brightness), img)

    sigma = arng.uniform(0.02, 0.04)
    noise = arng.standard_normal((2, size, size), dtype=np.float32)
    img = img + sigma * noise[0] + 2.5 * sigma * ndimage.gaussian_filter(noise[1], 1.5)
    return np.clip(img, 0.0, 1.0).astype(np.float32), marker_box


def render_mask(split: str, index: int, seed: int = 0, *, lesion: bool, size: int = IMAGE_SIZE) -> np.ndarray:
    """The lesion mask :func:`render_sample` gives for the same arguments (bool, (size, size)), without
    developing the image: the lesions draw from their own stream and only need the anatomy's lungs (the
    average-mask prior renders 200 masks at every run's start)."""
    union = np.zeros((size, size), bool)
    if lesion:
        _, _, lungs = _anatomy(_rng(split, index, seed, _ANATOMY), size)
        for m in _lesions(_rng(split, index, seed, _LESION), lungs, size)[1]:
            union |= m
    return union


def render_sample(
    split: str,
    index: int,
    seed: int = 0,
    *,
    lesion: bool,
    marker: bool,
    size: int = IMAGE_SIZE,
) -> DemoImage:
    """Render one image; identical arguments give identical arrays in any process."""
    arng = _rng(split, index, seed, _ANATOMY)
    img, lung_vis, lungs = _anatomy(arng, size)

    masks: list[np.ndarray] = []
    if lesion:
        opacity, masks = _lesions(_rng(split, index, seed, _LESION), lungs, size)
        img = img + opacity * lung_vis

    img, marker_box = _develop(img, arng, split, index, seed, marker, size)

    union = np.zeros((size, size), bool)
    for m in masks:
        union |= m
    return DemoImage(
        image=img,
        mask=union,
        boxes=tuple(sorted(_box(m) for m in masks)),
        label=int(bool(masks)),
        marker=bool(marker),
        lungs=lungs,
        marker_box=marker_box,
    )


def make_split(split: str, n: int, seed: int = 0, **options) -> list[DemoImage]:
    """:func:`iter_split` as a list (``options``: ``lesion_rate``, ``marker_mode``)."""
    return list(iter_split(split, n, seed, **options))


def iter_split(
    split: str,
    n: int,
    seed: int = 0,
    *,
    lesion_rate: float = 0.5,
    marker_mode: str = "independent",
) -> Iterator[DemoImage]:
    """The first ``n`` images of a split, one at a time (an export of thousands must not hold them all).

    Each index draws its own lesion and marker flags from its own stream, so a
    split of 100 is a prefix of the same split of 1,000. ``marker_mode``:

    * ``"independent"``: lesion with probability ``lesion_rate``, marker with
      probability 0.5 independently; ``label`` = lesion. The marker carries no
      information, so a model trained here must learn the lesions.
    * ``"label"``: marker iff lesion; ``label`` = lesion (marker and lesion are
      confounded, as in a biased hospital data set).
    * ``"shortcut"``: marker with probability 0.5, lesion with probability
      ``lesion_rate`` independently, and **``label`` is the marker flag**, not
      the lesion: a model trained on it can only learn the marker.
    """
    if marker_mode not in MARKER_MODES:
        raise ValueError(f"marker_mode must be one of {MARKER_MODES}, got {marker_mode!r}")
    for i in range(n):
        draw = _rng(split, i, seed, _DRAW)
        lesion = bool(draw.random() < lesion_rate)
        coin = bool(draw.random() < 0.5)
        marker = lesion if marker_mode == "label" else coin
        sample = render_sample(split, i, seed, lesion=lesion, marker=marker)
        if marker_mode == "shortcut":
            sample = dataclasses.replace(sample, label=int(marker))
        yield sample


# --- the multi-finding world ---------------------------------------------------------------------------
#
# The same patients (anatomy, exposure, marker and noise from the same streams as above), with up to four
# findings, each a lesion type of its own, present independently of the others and of the marker. Every
# finding's geometry comes from its own stream and is worked out whether or not the finding is drawn (each
# keeps clear of those placed before it), so adding or removing one finding changes the pixels only where
# that finding is; an image with no finding is exactly ``render_sample(..., lesion=False)``.

#: The findings, in the order of the multi-label demo model's outputs.
FINDINGS = ("Nodule", "Effusion", "Consolidation", "Calcification")
#: Bump whenever a change alters the multi-finding world's pixels (it does not touch GENERATOR_VERSION's world).
FINDINGS_VERSION = "1"
#: Each finding is present with this probability, independently of the others and of the marker.
FINDING_RATE = 0.35

# Streams after the single-label world's four: the presence draw, then one per finding's geometry.
_FINDING_DRAW = 8
_FINDING_STREAM = {name: 9 + k for k, name in enumerate(FINDINGS)}
# Placement order: larger first; each finding keeps clear of the (possible) findings placed before it.
_PLACEMENT = ("Effusion", "Consolidation", "Nodule", "Calcification")


@dataclass(frozen=True, eq=False)
class FindingsImage:
    """One image of the multi-finding world: ``masks`` holds one mask per finding present (they never touch)."""

    image: np.ndarray  # float32 (H, W) in [0, 1]
    masks: dict[str, np.ndarray]  # finding -> bool (H, W), for the findings present only
    marker: bool
    lungs: np.ndarray  # bool (H, W)
    marker_box: tuple[int, int, int, int] | None = None

    @property
    def findings(self) -> tuple[str, ...]:
        """The findings present, in :data:`FINDINGS` order."""
        return tuple(f for f in FINDINGS if f in self.masks)

    @property
    def labels(self) -> tuple[int, ...]:
        """1 per finding present, in :data:`FINDINGS` order (the ground truth, not a training label)."""
        return tuple(int(f in self.masks) for f in FINDINGS)

    def mask(self, finding: str) -> np.ndarray:
        """The finding's mask (all False when it is absent)."""
        finding = finding_name(finding)
        return self.masks[finding] if finding in self.masks else np.zeros(self.image.shape, bool)

    def boxes(self, finding: str) -> tuple[tuple[int, int, int, int], ...]:
        """The finding's box (x0, y0, x1, y1 inclusive; one per finding, a calcification cluster's included)."""
        m = self.mask(finding)
        return (_box(m),) if m.any() else ()


def finding_name(text: str) -> str:
    """The finding ``text`` names, in :data:`FINDINGS`' spelling (case-insensitive); ValueError otherwise."""
    for f in FINDINGS:
        if f.lower() == str(text).strip().lower():
            return f
    raise ValueError(f"unknown finding {text!r} (the demo world has {', '.join(FINDINGS)})")


def _allowed(lungs: np.ndarray, blocked: np.ndarray, margin: float) -> np.ndarray:
    return ndimage.binary_erosion(lungs, iterations=max(1, round(margin)), border_value=0) & ~blocked


def _effusion(rng: np.random.Generator, lungs: np.ndarray, blocked: np.ndarray, size: int):
    """Fluid at one lung's base: a homogeneous opacity below a meniscus that climbs towards the chest wall."""
    k = size / IMAGE_SIZE
    labels, n = ndimage.label(lungs)
    fields = sorted(range(1, n + 1), key=lambda j: np.nonzero(labels == j)[1].mean())  # image-left first
    field = labels == fields[min(int(rng.integers(2)), n - 1)]
    level, rise, amplitude = rng.uniform(0.2, 0.34), rng.uniform(0.4, 0.9), rng.uniform(0.22, 0.3)
    ys, xs = np.nonzero(field)
    medial, lateral = (xs.max(), xs.min()) if xs.mean() < size / 2 else (xs.min(), xs.max())
    x = np.arange(size, dtype=np.float32)[None, :]
    y = np.arange(size, dtype=np.float32)[:, None]
    t = np.clip((x - medial) / (lateral - medial), 0.0, 1.0)
    depth = level * (ys.max() - ys.min() + 1)
    surface = ys.max() + 0.5 - depth * (1.0 + rise * t**2)
    profile = _sigmoid((y - surface) / k)  # half its peak on the surface
    reach = ndimage.gaussian_filter(
        ndimage.binary_dilation(field, iterations=max(1, round(3 * k))).astype(np.float32), k)
    mask = field & (profile > 0.5) & ~blocked
    return (amplitude * profile * reach).astype(np.float32), mask


def _consolidation(rng: np.random.Generator, lungs: np.ndarray, blocked: np.ndarray, size: int):
    """A large irregular patch with a soft edge: a disc whose outline a smooth random field bends."""
    k = size / IMAGE_SIZE
    allowed = _allowed(lungs, blocked, 2 * k)
    candidates = np.flatnonzero(allowed)
    amplitude = rng.uniform(0.1, 0.16)
    for attempt in range(300):
        radius = rng.uniform(10.0, 15.0) * k * 0.85 ** (attempt // 30)
        cy, cx = divmod(int(candidates[rng.integers(candidates.size)]), size)
        h = int(np.ceil(2 * radius))
        y0, y1, x0, x1 = max(0, cy - h), min(size, cy + h + 1), max(0, cx - h), min(size, cx + h + 1)
        wobble = ndimage.gaussian_filter(rng.standard_normal((y1 - y0, x1 - x0)).astype(np.float32), radius / 4)
        wobble /= wobble.std() + 1e-6
        dy = (np.arange(y0, y1, dtype=np.float32)[:, None] - cy) / radius
        dx = (np.arange(x0, x1, dtype=np.float32)[None, :] - cx) / radius
        r2 = dy**2 + dx**2
        # The wobble fades out beyond 1.26 radii, so no sub-threshold hump lies outside the mask.
        profile = _sigmoid((1.0 - r2 + 0.5 * wobble * np.clip(1.6 - r2, 0.0, 1.0)) / 0.12)
        inside = profile > 0.5
        if ndimage.label(inside, structure=np.ones((3, 3)))[1] != 1:
            continue
        placed = _place((y0, y1, x0, x1), inside, lambda: amplitude * profile, allowed, size)
        if placed is not None:
            return placed
    raise RuntimeError("demo world: could not place a consolidation inside the lungs")  # pragma: no cover


def _place(box, inside: np.ndarray, values, allowed: np.ndarray, size: int):
    """(the lesion's opacity, its mask) drawn in ``box`` (y0, y1, x0, x1), or None when its mask is empty or
    leaves ``allowed``; ``values()`` gives the opacity inside the box (computed only for a lesion kept)."""
    y0, y1, x0, x1 = box
    mask = np.zeros((size, size), bool)
    mask[y0:y1, x0:x1] = inside
    if not mask.any() or (mask & ~allowed).any():
        return None
    total = np.zeros((size, size), np.float32)
    total[y0:y1, x0:x1] = values()
    return total, mask


def _nodule(rng: np.random.Generator, lungs: np.ndarray, blocked: np.ndarray, size: int):
    """One small, dense, round opacity with a sharp edge (a consolidation is larger, fainter and soft-edged)."""
    k = size / IMAGE_SIZE
    allowed = _allowed(lungs, blocked, k)
    candidates = np.flatnonzero(allowed)
    amplitude, sharpness = rng.uniform(0.26, 0.36), rng.uniform(4.0, 6.0)
    for attempt in range(300):
        radius = rng.uniform(4.0, 7.0) * k * 0.85 ** (attempt // 30)
        cy, cx = divmod(int(candidates[rng.integers(candidates.size)]), size)
        cx, cy = cx + rng.uniform(-0.5, 0.5), cy + rng.uniform(-0.5, 0.5)
        harm_amp, harm_phase = rng.uniform(-0.08, 0.08, 2).tolist(), rng.uniform(0, 2 * np.pi, 2).tolist()
        box, rel = _blob(cx, cy, radius, rng.uniform(0.8, 1.0), rng.uniform(0, np.pi), harm_amp, harm_phase, size)
        placed = _place(box, rel < 1.0, lambda: amplitude * np.exp(-math.log(2.0) * rel**sharpness), allowed, size)
        if placed is not None:
            return placed
    raise RuntimeError("demo world: could not place a nodule inside the lungs")  # pragma: no cover


def _calcification(rng: np.random.Generator, lungs: np.ndarray, blocked: np.ndarray, size: int):
    """A cluster of two to four small, dense (bright) dots."""
    k = size / IMAGE_SIZE
    allowed = _allowed(lungs, blocked, k)
    candidates = np.flatnonzero(allowed)
    amplitude = rng.uniform(0.3, 0.45)
    for attempt in range(300):
        cy, cx = divmod(int(candidates[rng.integers(candidates.size)]), size)
        n_dots = int(rng.integers(2, 5))
        offsets = rng.uniform(-4.5, 4.5, (n_dots, 2)) * k
        radii = rng.uniform(1.4, 2.0, n_dots) * k
        total = np.zeros((size, size), np.float32)
        mask = np.zeros((size, size), bool)
        for (oy, ox), r in zip(offsets.tolist(), radii.tolist()):
            (y0, y1, x0, x1), rel = _blob(cx + ox, cy + oy, r, 1.0, 0.0, [0.0, 0.0], [0.0, 0.0], size)
            mask[y0:y1, x0:x1] |= rel < 1.0
            total[y0:y1, x0:x1] += amplitude * np.exp(-math.log(2.0) * rel**4)
        if mask.any() and not (mask & ~allowed).any():
            return total, mask
    raise RuntimeError("demo world: could not place a calcification inside the lungs")  # pragma: no cover


_PLACERS = {"Effusion": _effusion, "Consolidation": _consolidation, "Nodule": _nodule,
            "Calcification": _calcification}


def render_findings(
    split: str,
    index: int,
    seed: int = 0,
    *,
    findings: tuple[str, ...] | list[str] = (),
    marker: bool = False,
    size: int = IMAGE_SIZE,
) -> FindingsImage:
    """Render one image with the given findings (names, case-insensitive); same arguments, same arrays."""
    present = {finding_name(f) for f in findings}
    arng = _rng(split, index, seed, _ANATOMY)
    img, lung_vis, lungs = _anatomy(arng, size)
    blocked = np.zeros((size, size), bool)
    opacity = np.zeros((size, size), np.float32)
    masks: dict[str, np.ndarray] = {}
    for name in _PLACEMENT:
        total, mask = _PLACERS[name](_rng(split, index, seed, _FINDING_STREAM[name]), lungs, blocked, size)
        blocked |= ndimage.binary_dilation(mask, iterations=max(1, round(2 * size / IMAGE_SIZE)))
        if name in present:
            opacity += total
            masks[name] = mask
    if masks:
        img = img + opacity * lung_vis
    img, marker_box = _develop(img, arng, split, index, seed, marker, size)
    return FindingsImage(image=img, masks={f: masks[f] for f in FINDINGS if f in masks}, marker=bool(marker),
                         lungs=lungs, marker_box=marker_box)


def finding_flags(split: str, index: int, seed: int = 0, rate: float = FINDING_RATE) -> tuple[tuple[str, ...], bool]:
    """(the findings present, the marker flag) of one index of a split: each finding with probability
    ``rate``, the marker with probability 0.5, all independent."""
    u = _rng(split, index, seed, _FINDING_DRAW).random(len(FINDINGS) + 1)
    return tuple(f for f, x in zip(FINDINGS, u[:-1]) if x < rate), bool(u[-1] < 0.5)


def iter_findings(split: str, n: int, seed: int = 0, *, rate: float = FINDING_RATE) -> Iterator[FindingsImage]:
    """The first ``n`` images of a split of the multi-finding world (a prefix of any longer one)."""
    for i in range(n):
        present, marker = finding_flags(split, i, seed, rate)
        yield render_findings(split, i, seed, findings=present, marker=marker)
