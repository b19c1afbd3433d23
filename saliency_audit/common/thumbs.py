"""Thumbnails carried by the evidence: small 8-bit PNGs, base64-encoded, so the HTML can be rebuilt from the JSON.

Maps and images are downsampled (box filter) to at most ``SIZE`` pixels on
their longer side: enough to see where a map points, small enough that a
report of 8 methods × 100 images stays a few MB.
"""
from __future__ import annotations

import base64
import io

import numpy as np

SIZE = 64  # longer side of a map or image thumbnail, pixels
STAGE_IMAGES = 3  # images whose maps are kept at every randomization stage / compared model


def encode(arr: np.ndarray, size: int = SIZE) -> str:
    """A 2-D array with values in [0, 1] (or bool) as a base64 grayscale PNG of at most ``size`` px."""
    from PIL import Image

    a = np.asarray(arr, dtype=np.float32)
    a = np.nan_to_num(np.clip(a, 0.0, 1.0))
    im = Image.fromarray(np.round(a * 255).astype(np.uint8))
    scale = size / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BOX)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


#: the most a thumbnail read from an evidence file may hold: the writer makes them at most SIZE px a side, so
#: anything near this is not one of ours (a 12,000 x 12,000 PNG of a few kB decodes to gigabytes)
MAX_PIXELS = 1024 * 1024
MAX_CHARS = 4 * 2**20  # base64 characters of one thumbnail


def decode(text: str) -> np.ndarray:
    """A thumbnail back as float32 (H, W) in [0, 1]; AuditInputError (one line) for one larger than
    ``MAX_PIXELS`` or ``MAX_CHARS``, checked from the PNG header before any pixel is decoded."""
    from PIL import Image

    from .errors import AuditInputError

    if len(text) > MAX_CHARS:
        raise AuditInputError(f"thumbnail of {len(text):,} characters, more than the {MAX_CHARS:,} a report reads")
    import warnings

    with warnings.catch_warnings():  # PIL's own bomb check warns (or raises) far above MAX_PIXELS
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(base64.b64decode(text)))
        except Image.DecompressionBombError as exc:
            raise AuditInputError(f"thumbnail too large to decode ({exc})"[:200]) from None
    with im:
        if im.width * im.height > MAX_PIXELS:
            raise AuditInputError(f"thumbnail of {im.width} x {im.height} pixels, more than the {MAX_PIXELS:,} a "
                                  "report decodes: left out")
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def sample_thumbs(sample) -> dict:
    """{"image", "truth"} thumbnails of a Sample on its (evaluation) grid; truth None without ground truth."""
    truth = sample.truth()
    return {"image": encode(sample.image[0].numpy()),
            "truth": None if truth is None or not truth.any() else encode(truth.astype(np.float32))}


def map_thumbs(mapset, ids=None) -> dict[str, str]:
    """{id: thumbnail} of a MapSet's maps (all, or those of ``ids``)."""
    keep = None if ids is None else set(ids)
    return {i: encode(m) for i, m in zip(mapset.ids, mapset.maps) if keep is None or i in keep}
