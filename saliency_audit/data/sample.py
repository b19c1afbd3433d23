"""Sample: one audited image at its native resolution."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Sample:
    id: str
    image: torch.Tensor  # (C, H, W) float32 in [0, 1]
    label: int
    mask: np.ndarray | None = None  # (H, W) bool, lesion pixels
    boxes: tuple[tuple[int, int, int, int], ...] | None = None  # (x0, y0, x1, y1) inclusive
    meta: dict = field(default_factory=dict)
    _key: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def has_lesion(self) -> bool:
        return self.truth() is not None and bool(self.truth().any())

    def truth(self) -> np.ndarray | None:
        """The localisation ground truth as a mask: the mask, else the boxes rasterised inclusively."""
        if self.mask is not None:
            return self.mask
        if self.boxes:
            h, w = self.image.shape[-2:]
            return boxes_to_mask(self.boxes, (h, w))
        return None

    def key(self) -> str:
        """Content key for the map cache: id plus a hash of the pixels.  Remembered while the id, the tensor and
        its in-place version counter stay the same (a plan asks for it tens of thousands of times)."""
        stamp = (self.id, id(self.image), self.image._version)
        if self._key is None or self._key[0] != stamp:
            h = hashlib.sha256(self.id.encode())
            h.update(np.ascontiguousarray(self.image.numpy()).tobytes())
            self._key = (stamp, h.hexdigest()[:24])
        return self._key[1]


def boxes_to_mask(boxes, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    h, w = shape
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(x1), w - 1), min(int(y1), h - 1)
        if x1 >= x0 and y1 >= y0:
            mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask
