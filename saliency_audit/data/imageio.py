"""Reading image files (PNG/JPEG/TIFF via Pillow, DICOM via pydicom) as grayscale float arrays in [0, 1]."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import AuditInputError

# DAMAGED: Pillow's plugins report a damaged file with many exception types (OSError, ValueError, SyntaxError for
# a broken PNG chunk, MemoryError when a header claims a size the decoder will not allocate, struct.error...);
# inside the few lines that open and decode one file, each means "this file cannot be read" (found by
# tests/test_fuzz_files.py), so they are caught as one.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm"}
DICOM_SUFFIXES = (".dcm", ".dicom")  # VinDr-CXR names its DICOM files <image_id>.dicom


def read_gray(path: Path) -> np.ndarray:
    """A raster image file as float32 (H, W) in [0, 1] (16-bit files scaled by 65535, others by 255)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            sixteen = im.mode in ("I;16", "I;16B", "I;16L", "I")
            arr = np.asarray(im.convert("I") if sixteen else im.convert("L"))
    except FileNotFoundError:
        raise AuditInputError(f"{path}: file not found") from None
    except Exception as exc:  # noqa: BLE001 -- see DAMAGED
        raise AuditInputError(f"{path}: cannot read image ({exc.__class__.__name__})") from None
    if sixteen and arr.size and (arr.min() < 0 or arr.max() > 65535):  # 32-bit integer TIFFs: no 16-bit scale
        raise AuditInputError(f"{path}: integer pixel values {int(arr.min())}..{int(arr.max())} lie outside "
                              "0..65535; save the image as 8- or 16-bit")
    return arr.astype(np.float32) / (65535.0 if sixteen else 255.0)


def read_image(path: Path) -> np.ndarray:
    """Any supported image file as float32 (H, W) in [0, 1]."""
    if Path(path).suffix.lower() in DICOM_SUFFIXES:
        from .dicom import read_dicom

        if not Path(path).is_file():
            raise AuditInputError(f"{path}: file not found")
        return read_dicom(path)
    return read_gray(Path(path))


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding the pixels."""
    if Path(path).suffix.lower() in DICOM_SUFFIXES:
        from .dicom import dicom_size

        if not Path(path).is_file():
            raise AuditInputError(f"{path}: file not found")
        return tuple(dicom_size(path))
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except FileNotFoundError:
        raise AuditInputError(f"{path}: file not found") from None
    except Exception as exc:  # noqa: BLE001 -- see DAMAGED
        raise AuditInputError(f"{path}: cannot read image ({exc.__class__.__name__})") from None


#: A saliency map file of more pixels than this is refused before its pixels are decoded (8192 x 8192: far
#: beyond any medical classifier's input, and a decompression bomb's header cannot make the reader allocate more).
MAX_MAP_PIXELS = 8192 * 8192
COLOUR_MAP = ("colour PNG: a saliency map must be one channel (greyscale); a colour-mapped image cannot be "
              "inverted reliably")


def read_map_levels(path: Path) -> np.ndarray:
    """A PNG saliency map's grey levels as an integer (H, W) array, exactly as stored (8- or 16-bit, no scaling).

    A map is one channel: an RGB/RGBA (or palette) PNG is accepted only when its colour channels are equal
    (a grey image saved as colour; alpha ignored); one whose channels differ is a colour-mapped rendering
    (jet, inferno...) whose grey conversion would silently give other saliency ranks, and is refused."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_MAP_PIXELS:
                raise AuditInputError(f"{path}: map of {im.height}x{im.width} pixels is larger than the "
                                      f"{MAX_MAP_PIXELS:,} pixels a map may have")
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "L"):
                arr = np.asarray(im.convert("I") if mode != "L" else im)
            elif mode in ("1", "LA", "La"):
                arr = np.asarray(im.convert("L"))
            else:  # RGB, RGBA, P (palette), CMYK, YCbCr...: one channel only if the colour channels agree
                rgb = np.asarray(im.convert("RGB"))
                if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()):
                    raise AuditInputError(f"{path}: {COLOUR_MAP}")
                arr = rgb[..., 0]
    except AuditInputError:
        raise
    except FileNotFoundError:
        raise AuditInputError(f"{path}: file not found") from None
    except Exception as exc:  # noqa: BLE001 -- see DAMAGED
        raise AuditInputError(f"{path}: cannot read image ({exc.__class__.__name__})") from None
    return np.array(arr, copy=True)
