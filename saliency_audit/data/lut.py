"""DICOM lookup tables (VOI LUT, Palette Colour LUT) applied as PS3.3 defines them.

Hand-written rather than pydicom's ``apply_voi`` / ``apply_color_lut`` (pydicom 3.0) because those compute
the table index in the table's entry type: with 8-bit entries, a stored value 256 above the first mapped
value wraps to index 0 instead of clamping to the last entry (PS3.3 C.11.2.1.1, C.7.6.3.1.5), a silently
wrong image.  Found by tests/test_fuzz_files.py.  Segmented palettes are still expanded by pydicom (their
entries are 16-bit, so they do not wrap).
"""
from __future__ import annotations

import numpy as np
import pydicom


def lookup(values: np.ndarray, descriptor, data, ds: pydicom.Dataset, *, bytes_per_entry: int | None = None
           ) -> np.ndarray:
    """``data[clamp(values - first, 0, n - 1)]`` with ``n, first`` from the LUT ``descriptor`` (n = 0 means
    65536).  ``data``: a list of integers (VR US) or bytes (VR OW, in the file's byte order; 16-bit entries
    unless ``bytes_per_entry`` says 1)."""
    n = int(descriptor[0]) or 2**16
    first = int(descriptor[1])
    table = entries(data, n, ds, bytes_per_entry)
    if len(table) < n:
        raise ValueError(f"LUT Data holds {len(table)} entries, its descriptor says {n}")
    # clip in floating point first: modality-rescaled values may be fractional or far out of any int range
    index = np.clip(np.floor(np.asarray(values, dtype=np.float64)) - first, 0, n - 1).astype(np.int64)
    return table[:n][index]


def entries(data, n: int, ds: pydicom.Dataset, bytes_per_entry: int | None = None) -> np.ndarray:
    """The entries of LUT Data as an int64 array."""
    if isinstance(data, (bytes, bytearray)):
        width = bytes_per_entry or 2
        little = ds.original_encoding[1] is not False  # None: written here, little endian
        dtype = np.dtype("u1") if width == 1 else np.dtype("<u2" if little else ">u2")
        return np.frombuffer(data, dtype, count=len(data) // width).astype(np.int64)
    return np.atleast_1d(np.asarray(data, dtype=np.int64))


def palette_rgb(indices: np.ndarray, ds: pydicom.Dataset) -> tuple[np.ndarray, int]:
    """(RGB of each stored index, full scale of the entries: 255 or 65535) of a PALETTE COLOR image."""
    descriptor = ds.RedPaletteColorLookupTableDescriptor
    n = int(descriptor[0]) or 2**16
    if "RedPaletteColorLookupTableData" not in ds:  # segmented: pydicom expands it (16-bit entries)
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(indices, ds)
        return rgb, int(np.iinfo(rgb.dtype).max)
    channels = [ds[f"{c}PaletteColorLookupTableData"].value for c in ("Red", "Green", "Blue")]
    width = len(channels[0]) // n  # 8-bit entries may be packed two to a word (PS3.3 C.7.6.3.1.6)
    if width not in (1, 2) or any(len(c) != len(channels[0]) for c in channels):
        raise ValueError(f"palette LUT Data of {len(channels[0])} bytes for {n} entries")
    rgb = np.stack([lookup(indices, descriptor, c, ds, bytes_per_entry=width) for c in channels], axis=-1)
    return rgb, 255 if width == 1 else 65535
