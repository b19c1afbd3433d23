"""Property-based fuzzing of the file readers: DICOM, raster images and model checkpoints.

The property, for every reader: a file either loads into exactly what it says (pixel values equal to an oracle
computed here from the values written; a model's weights equal the tensors saved), or the reader raises its
one-line error naming the file (``AuditInputError`` for images, ``AuditUsageError`` for checkpoints).  No other
exception type, no NaN/inf or values outside [0, 1] in an image, no silent change of shape or grey levels.
Where the documented behaviour does not say what a file means (garbage header values, damaged bytes), only the
invariants are checked: a finite float32 (Rows, Columns) image in [0, 1], or the clean error.

A product bug this fuzzing finds is marked ``xfail(strict=True)`` on its test, with its reproducer as an
``@example`` so that it fails under every hypothesis profile; once fixed, the mark goes and the example stays
(found and fixed so far: 8-bit VOI LUT and palette indices wrapping past entry 255, a TorchScript tensor
member cut short, NaN loaded into an integer buffer, Pillow's SyntaxError and MemoryError on damaged PNGs).
Budgets: ``tests/fuzzing.py`` (``SALIENCY_AUDIT_FUZZ=deep`` for a long run).
"""
from __future__ import annotations

import contextlib
import io
import pickle
import struct
import tempfile
import warnings
import zipfile
import zlib
from math import nan
from pathlib import Path
from unittest import mock

import numpy as np
import pydicom
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import SecondaryCaptureImageStorage
from torch import nn

from saliency_audit.data.imageio import read_gray, read_image
from saliency_audit.common.errors import AuditInputError, AuditUsageError
from saliency_audit.models import load_model
from tests.fuzzing import FUZZ

REFUSE = "refuse"  # oracle value: the file has no defined image, the reader must raise its clean error
ATOL = 1e-5  # float32 output of float64 arithmetic


@contextlib.contextmanager
def _tmpdir():
    """A fresh directory per hypothesis example (function-scoped tmp_path would be shared by all of them)."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom/Pillow/torch warn about every odd value we write on purpose
        yield Path(tmp)


def check_image(read, path, expected=None, shape=None):
    """The property for an image reader: ``expected`` (an array) must be read as is, REFUSE must raise, None
    accepts either; whatever loads is a finite float32 ``shape`` image in [0, 1], whatever fails is one line
    naming the file.  Any other exception propagates and fails the test."""
    try:
        out = read(path)
    except AuditInputError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(path) in msg, f"error message not one line naming the file: {msg!r}"
        assert not isinstance(expected, np.ndarray), f"a valid file was refused: {msg}"
        return None
    assert not (isinstance(expected, str) and expected == REFUSE), f"loaded a file with no defined image: {out}"
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.ndim == 2, (type(out), out.dtype, out.shape)
    assert out.size > 0, f"an empty image {out.shape}"
    assert np.isfinite(out).all(), "NaN/inf in a returned image"
    assert out.min() >= 0.0 and out.max() <= 1.0, f"values outside [0, 1]: {out.min()} .. {out.max()}"
    if shape is not None:
        assert out.shape == tuple(shape), f"shape {out.shape}, file says {tuple(shape)}"
    if isinstance(expected, np.ndarray):
        assert out.shape == expected.shape, f"shape {out.shape}, expected {expected.shape}"
        np.testing.assert_allclose(out, expected, atol=ATOL, rtol=0)
    return out


# ================================================================================================================
# DICOM: a writer that writes exactly what it is given (group 0028 garbage included), and oracles
# ================================================================================================================

SYNTAX_UIDS = {"implicit": "1.2.840.10008.1.2", "explicit": "1.2.840.10008.1.2.1", "big": "1.2.840.10008.1.2.2"}
ENCODINGS = {"implicit": (True, True), "explicit": (False, True), "big": (False, False)}  # (implicit VR, little)


def _raw(keyword: str, value: bytes, vr: str | None = None) -> tuple[Tag, RawDataElement]:
    tag = Tag(keyword)
    return tag, RawDataElement(tag, vr or dictionary_VR(tag)[:2], len(value), value, 0, False, True)


def _dataset(header: dict, pixel_data: bytes | None) -> Dataset:
    """header: keyword -> value.  A str is written byte for byte (so DS/IS/CS/UI elements can hold anything),
    bytes as OB/OW data, an int or list of ints with the element's dictionary VR, a list of Datasets as a
    sequence."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = SecondaryCaptureImageStorage, "1.2.826.0.1.3680043.9.1", "OT"
    for keyword, value in header.items():
        if isinstance(value, str):
            raw = value.encode("latin-1")
            tag, elem = _raw(keyword, raw + b" " * (len(raw) % 2))
            ds[tag] = elem
        elif isinstance(value, bytes):  # OB/OW data (palette tables), as is
            tag, elem = _raw(keyword, value + b"\0" * (len(value) % 2))
            ds[tag] = elem
        elif isinstance(value, list) and value and isinstance(value[0], Dataset):
            ds.add_new(Tag(keyword), "SQ", value)
        else:
            ds.add_new(Tag(keyword), dictionary_VR(Tag(keyword))[:2], value)
    if pixel_data is not None:
        bits = header.get("BitsAllocated", 8)
        tag, elem = _raw("PixelData", pixel_data, "OB" if not isinstance(bits, int) or bits <= 8 else "OW")
        ds[tag] = elem
    return ds


def _file_meta(transfer_syntax: bytes) -> bytes:
    """Group 0002 (always explicit VR little endian), written by hand so that any Transfer Syntax UID fits."""
    def element(number: int, vr: bytes, value: bytes) -> bytes:
        value += b"\0" * (len(value) % 2)
        if vr == b"OB":
            return struct.pack("<HH2sHI", 2, number, vr, 0, len(value)) + value
        return struct.pack("<HH2sH", 2, number, vr, len(value)) + value

    body = (element(1, b"OB", b"\0\1") + element(2, b"UI", SecondaryCaptureImageStorage.encode())
            + element(3, b"UI", b"1.2.826.0.1.3680043.9.1") + element(0x10, b"UI", transfer_syntax))
    return element(0, b"UL", struct.pack("<I", len(body))) + body


def write_dicom_file(path: Path, header: dict, pixel_data: bytes | None, *, syntax: str = "explicit",
                     meta: str = "full", transfer_syntax: bytes | None = None) -> Path:
    """A DICOM file whose data set is encoded with ``syntax``; ``meta``: "full" (preamble, DICM, group 0002 with
    ``transfer_syntax``, by default the one of ``syntax``), "none" (preamble and DICM only) or "bare" (no
    preamble: a raw data set)."""
    implicit, little = ENCODINGS[syntax]
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, _dataset(header, pixel_data), implicit_vr=implicit, little_endian=little,
                     force_encoding=True, enforce_file_format=False)
    head = b""
    if meta != "bare":
        head = b"\0" * 128 + b"DICM"
        if meta == "full":
            head += _file_meta(SYNTAX_UIDS[syntax].encode() if transfer_syntax is None else transfer_syntax)
    path.write_bytes(head + buf.getvalue())
    return path


def stored_range(bits_stored: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)


def pixel_bytes(stored: np.ndarray, bits_allocated: int, signed: bool, syntax: str) -> bytes:
    """Native pixel data: ``stored`` (frames, rows, columns[, samples]) in the container of ``bits_allocated``,
    two's complement when signed, byte order of the syntax, padded to an even length."""
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits_allocated // 8}").newbyteorder("<" if syntax != "big" else ">")
    data = stored.astype(dtype).tobytes()
    return data + b"\0" * (len(data) % 2)


def ds_number(x: float) -> str:
    """A Decimal String (at most 16 characters) for x; its float value is what the file says."""
    return f"{x:.6g}"


def first_value(text: str) -> float:
    return float(text.split("\\")[0])


@st.composite
def stored_pixels(draw, shape, bits_stored: int, signed: bool) -> np.ndarray:
    """Random, constant or extreme stored values (generated by numpy from a drawn seed: fast for any size)."""
    lo, hi = stored_range(bits_stored, signed)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    style = draw(st.sampled_from(["random", "constant", "extremes"]))
    if style == "constant":
        return np.full(shape, rng.integers(lo, hi + 1), np.int64)
    values = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    if style == "extremes":
        flat = values.reshape(-1)
        flat[: min(2, flat.size)] = [lo, hi][: min(2, flat.size)]
    return values


IMAGE_SHAPES = st.one_of(st.tuples(st.integers(1, 24), st.integers(1, 24)),
                         st.sampled_from([(1, 1), (1, 3000), (3000, 1), (300, 200)]))


def grey_header(rows, cols, bits_allocated, bits_stored, signed, photometric, frames=None) -> dict:
    header = {"SamplesPerPixel": 1, "PhotometricInterpretation": photometric, "Rows": rows, "Columns": cols,
              "BitsAllocated": bits_allocated, "BitsStored": bits_stored, "HighBit": bits_stored - 1,
              "PixelRepresentation": int(signed)}
    if frames is not None:
        header["NumberOfFrames"] = str(frames)
    return header


@st.composite
def grey_files(draw, numbers=None):
    """A valid single-sample (grey) DICOM: bit depth, sign, MONOCHROME1/2, frames, byte order, and optional
    Rescale Slope/Intercept and Window Center/Width (+ VOI LUT Function) drawn from ``numbers`` (DS strings)."""
    rows, cols = draw(IMAGE_SHAPES)
    frames = draw(st.sampled_from([None, 1, 2, 3]))
    bits_allocated = draw(st.sampled_from([8, 16]))
    bits_stored = draw(st.sampled_from([b for b in (8, 12, 16, 1) if b <= bits_allocated])
                       | st.integers(1, bits_allocated))
    signed = draw(st.booleans())
    photometric = draw(st.sampled_from(["MONOCHROME1", "MONOCHROME2"]))
    stored = draw(stored_pixels((frames or 1, rows, cols), bits_stored, signed))
    header = grey_header(rows, cols, bits_allocated, bits_stored, signed, photometric, frames)
    if numbers is None:
        slopes = st.floats(-20, 20).filter(lambda s: abs(s) >= 1e-3).map(ds_number) | st.sampled_from(["1", "1.0"])
        intercepts = st.floats(-5000, 5000).map(ds_number) | st.sampled_from(["0", "-1024", "0.0"])
        centers = st.floats(-70000, 70000).map(ds_number)
        widths = st.floats(0, 140000).map(ds_number) | st.sampled_from(["0", "0.5", "1", "1.5", "2", "-3"])
    else:
        slopes = intercepts = centers = widths = numbers
    if draw(st.booleans()):
        for keyword, values in (("RescaleSlope", slopes), ("RescaleIntercept", intercepts)):
            if draw(st.integers(0, 5)):  # sometimes only one of the two: no rescale at all
                header[keyword] = draw(values)
    if draw(st.booleans()):
        header["WindowCenter"] = "\\".join(draw(st.lists(centers, min_size=1, max_size=3)))
        header["WindowWidth"] = "\\".join(draw(st.lists(widths, min_size=1, max_size=3)))
        function = draw(st.sampled_from([None, "LINEAR", "LINEAR_EXACT", "SIGMOID", "sigmoid"]))
        if function is not None:
            header["VOILUTFunction"] = function
    syntax = draw(st.sampled_from(list(ENCODINGS)))
    return header, stored, syntax


def modality_values(header: dict, stored: np.ndarray) -> np.ndarray:
    """PS3.3 C.11.1: stored values through Rescale Slope/Intercept (both present), in float64."""
    x = stored.astype(np.float64)
    if "RescaleSlope" in header and "RescaleIntercept" in header:
        with np.errstate(all="ignore"):
            return x * first_value(header["RescaleSlope"]) + first_value(header["RescaleIntercept"])
    return x


def window(v: np.ndarray, center: float, width: float, function: str):
    """PS3.3 C.11.2.1.2 / C.11.2.1.3 onto [0, 1], or REFUSE where the standard requires a larger width."""
    with np.errstate(all="ignore"):
        if function == "SIGMOID":
            return REFUSE if not width > 0 else 1.0 / (1.0 + np.exp(-4.0 * (v - center) / width))
        if function == "LINEAR":
            if not width >= 1:
                return REFUSE
            center, width = center - 0.5, width - 1.0
        elif not width > 0:
            return REFUSE
        ramp = (v - center) / width + 0.5 if width > 0 else np.zeros_like(v)
        return np.where(v <= center - width / 2, 0.0, np.where(v > center + width / 2, 1.0, ramp))


def grey_oracle(header: dict, stored: np.ndarray):
    """The first frame as a radiologist sees it: modality LUT, then the window (if any), else the stored bit
    depth (unsigned, not rescaled) or the image's own min..max; MONOCHROME1 inverted."""
    x = stored[0]
    v = modality_values(header, x)
    if not np.isfinite(v).all():
        return REFUSE  # NaN or infinite modality values: no image is defined
    rescaled = "RescaleSlope" in header and "RescaleIntercept" in header and (
        first_value(header["RescaleSlope"]), first_value(header["RescaleIntercept"])) != (1.0, 0.0)
    if "WindowCenter" in header:
        function = header.get("VOILUTFunction", "LINEAR").upper()
        y = window(v, first_value(header["WindowCenter"]), first_value(header["WindowWidth"]), function)
        if isinstance(y, str):
            return y
    elif not rescaled and header["PixelRepresentation"] == 0:
        y = x / (2.0 ** header["BitsStored"] - 1)
    else:
        y = (v - v.min()) / (v.max() - v.min()) if v.max() > v.min() else np.zeros_like(v)
    return 1.0 - y if header["PhotometricInterpretation"] == "MONOCHROME1" else y


def read_dcm(path):
    return read_image(path)  # dispatches on the .dcm suffix to read_dicom


# --- DICOM properties --------------------------------------------------------------------------------------------


@FUZZ
@given(grey_files())
def test_dicom_grey_levels_equal_the_oracle(case):
    """Valid grey files with moderate rescale/window values read exactly as the oracle (or, where the standard
    leaves no image, e.g. a LINEAR window narrower than 1, the clean error)."""
    header, stored, syntax = case
    with _tmpdir() as tmp:
        path = write_dicom_file(tmp / "a.dcm", header, pixel_bytes(stored, header["BitsAllocated"],
                                                                    bool(header["PixelRepresentation"]), syntax),
                                syntax=syntax)
        check_image(read_dcm, path, grey_oracle(header, stored), shape=stored.shape[1:])


EXTREME_NUMBERS = st.sampled_from(["0", "-0", "1", "-1", "NaN", "nan", "inf", "-inf", "Infinity", "1e300",
                                   "-1e300", "1e-300", "1e308", "-1.7e308", "4.9e-324", "1e999", "-2.5", "4096"])


@FUZZ
@example(case=(grey_header(1, 3, 8, 8, False, "MONOCHROME2") | {"RescaleSlope": "NaN", "RescaleIntercept": "0"},
               np.array([[[0, 128, 255]]]), "explicit"))
@given(grey_files(numbers=EXTREME_NUMBERS))
def test_dicom_extreme_rescale_and_window_values(case):
    """0, -0, NaN, inf, 1e308...: a NaN/inf modality value must be refused; anything else may load or not."""
    header, stored, syntax = case
    expected = grey_oracle(header, stored)
    with _tmpdir() as tmp:
        path = write_dicom_file(tmp / "a.dcm", header, pixel_bytes(stored, header["BitsAllocated"],
                                                                    bool(header["PixelRepresentation"]), syntax),
                                syntax=syntax)
        check_image(read_dcm, path, REFUSE if isinstance(expected, str) else None, shape=stored.shape[1:])


def lut_item(descriptor, data) -> Dataset:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", list(descriptor))
    item.add_new("LUTData", "US", [int(d) for d in data])
    return item


@st.composite
def voi_lut_files(draw):
    """Unsigned grey data with a VOI LUT Sequence (n entries from stored value ``first``, 8..16-bit output)
    and a window, which the LUT takes precedence over."""
    rows, cols = draw(IMAGE_SHAPES)
    bits_allocated = draw(st.sampled_from([8, 16]))
    bits_stored = draw(st.integers(1, bits_allocated))
    photometric = draw(st.sampled_from(["MONOCHROME1", "MONOCHROME2"]))
    stored = draw(stored_pixels((1, rows, cols), bits_stored, False))
    entries = draw(st.integers(2, 300))  # (a 1-entry LUT is refused: pydicom reads its LUT Data as a number)
    first = draw(st.integers(0, 2**bits_stored - 1))
    lut_bits = draw(st.sampled_from([8, 10, 12, 16]))
    lut = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 2**lut_bits, entries)
    header = grey_header(rows, cols, bits_allocated, bits_stored, False, photometric)
    return header, stored, (entries, first, lut_bits), lut, draw(st.sampled_from(list(ENCODINGS)))


@FUZZ
@example(case=(grey_header(1, 4, 16, 12, False, "MONOCHROME2"), np.array([[[0, 255, 256, 300]]]),
               (256, 0, 8), np.arange(256), "explicit"))
@given(voi_lut_files())
def test_dicom_voi_lut_sequence_equals_the_oracle(case):
    """PS3.3 C.11.2.1.1: stored x -> LUTData[clamp(x - first, 0, n - 1)], over the LUT's output range."""
    header, stored, descriptor, lut, syntax = case
    entries, first, lut_bits = descriptor
    header = header | {"VOILUTSequence": [lut_item(descriptor, lut)], "WindowCenter": "10", "WindowWidth": "2"}
    expected = np.asarray(lut)[np.clip(stored[0] - first, 0, entries - 1)] / (2.0**lut_bits - 1)
    if header["PhotometricInterpretation"] == "MONOCHROME1":
        expected = 1.0 - expected
    with _tmpdir() as tmp:
        path = write_dicom_file(tmp / "a.dcm", header, pixel_bytes(stored, header["BitsAllocated"], False, syntax),
                                syntax=syntax)
        check_image(read_dcm, path, expected, shape=stored.shape[1:])


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma, the grey level of a colour pixel."""
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


@st.composite
def palette_files(draw):
    """PALETTE COLOR: unsigned stored indices, three n-entry tables of 8- or 16-bit entries from ``first``."""
    rows, cols = draw(IMAGE_SHAPES)
    bits_allocated = draw(st.sampled_from([8, 16]))
    bits_stored = draw(st.integers(1, bits_allocated))
    stored = draw(stored_pixels((1, rows, cols), bits_stored, False))
    entry_bytes = draw(st.sampled_from([1, 2]))
    entries = draw(st.integers(1, 300)) * (2 if entry_bytes == 1 else 1)  # tables (OW) have an even length
    first = draw(st.integers(0, 2**bits_stored - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tables = rng.integers(0, 2 ** (8 * entry_bytes), (3, entries))
    header = grey_header(rows, cols, bits_allocated, bits_stored, False, "PALETTE COLOR")
    return header, stored, first, tables, entry_bytes, draw(st.sampled_from(["implicit", "explicit"]))


@FUZZ
@example(case=(grey_header(1, 4, 16, 12, False, "PALETTE COLOR"), np.array([[[0, 255, 256, 300]]]), 0,
               np.tile(np.arange(256), (3, 1)), 1, "explicit"))
@given(palette_files())
def test_dicom_palette_colour_equals_the_oracle(case):
    """PS3.3 C.7.6.3.1.5: index x -> table[clamp(x - first, 0, n - 1)] per channel; the reader takes the luma."""
    header, stored, first, tables, entry_bytes, syntax = case
    dtype = np.dtype("<u1" if entry_bytes == 1 else "<u2")
    header = dict(header)
    for colour, table in zip(("Red", "Green", "Blue"), tables):
        header[f"{colour}PaletteColorLookupTableDescriptor"] = [len(table), first, 8 * entry_bytes]
        header[f"{colour}PaletteColorLookupTableData"] = table.astype(dtype).tobytes()
    rgb = tables[:, np.clip(stored[0] - first, 0, tables.shape[1] - 1)]
    expected = luminance(np.moveaxis(rgb, 0, -1)) / (2.0 ** (8 * entry_bytes) - 1)
    with _tmpdir() as tmp:
        path = write_dicom_file(tmp / "a.dcm", header, pixel_bytes(stored, header["BitsAllocated"], False, syntax),
                                syntax=syntax)
        check_image(read_dcm, path, expected, shape=stored.shape[1:])


PHOTOMETRICS = ["RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR", "MONOCHROME3", "",
                "monochrome1", "RGB ", "HSV", "CMYK", "ARGB", "\\"]


@st.composite
def colour_files(draw):
    """Multi-sample and odd Photometric Interpretations (any Samples per Pixel and Planar Configuration)."""
    rows, cols = draw(IMAGE_SHAPES)
    bits_allocated = draw(st.sampled_from([8, 16]))
    bits_stored = draw(st.integers(1, bits_allocated))
    signed = draw(st.booleans())
    samples = draw(st.sampled_from([3, 1, 2, 4]))
    planar = draw(st.sampled_from([0, 1, None, 2]))
    stored = draw(stored_pixels((1, rows, cols, samples), bits_stored, signed))
    header = grey_header(rows, cols, bits_allocated, bits_stored, signed, draw(st.sampled_from(PHOTOMETRICS)))
    header["SamplesPerPixel"] = samples
    if planar is not None:
        header["PlanarConfiguration"] = planar
    return header, stored, draw(st.sampled_from(list(ENCODINGS)))


@FUZZ
@given(colour_files())
def test_dicom_colour_and_odd_photometric(case):
    """RGB (unsigned, 3 samples, either planar order) reads as its luma over the stored bit depth; any other
    combination only has to give a finite (Rows, Columns) image in [0, 1] or the clean error."""
    header, stored, syntax = case
    planar = header.get("PlanarConfiguration")
    layout = np.moveaxis(stored, -1, 1) if planar == 1 else stored  # planar 1: all R, then all G, then all B
    expected = None
    if (header["PhotometricInterpretation"], header["SamplesPerPixel"], header["PixelRepresentation"]) == (
            "RGB", 3, 0) and planar in (0, 1):
        expected = luminance(stored[0]) / (2.0 ** header["BitsStored"] - 1)
    with _tmpdir() as tmp:
        path = write_dicom_file(tmp / "a.dcm", header, pixel_bytes(layout, header["BitsAllocated"],
                                                                    bool(header["PixelRepresentation"]), syntax),
                                syntax=syntax)
        check_image(read_dcm, path, expected, shape=stored.shape[1:3])


GROUP_0028 = ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
              "PlanarConfiguration"]
GARBAGE_TEXT = st.sampled_from(["", "0", "-1", "2", "3", "1000000", "2147483648", "abc", "1\\2", "2.5", "NaN",
                                "MONOCHROME1", "RGB", "PALETTE COLOR", "\\", " "]) | st.text(
    st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
HEADER_DAMAGE = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(GROUP_0028 + ["PhotometricInterpretation", "PixelData"])),
    st.tuples(st.just("set"), st.sampled_from(GROUP_0028),
              st.sampled_from([0, 1, 2, 3, 4, 7, 8, 9, 12, 15, 16, 17, 24, 32, 33, 64, 255, 256, 65535])
              | st.integers(0, 65535)),
    st.tuples(st.just("text"), st.sampled_from(["NumberOfFrames", "PhotometricInterpretation", "RescaleSlope",
                                                "RescaleIntercept", "WindowCenter", "WindowWidth", "VOILUTFunction"]),
              GARBAGE_TEXT),
    st.tuples(st.just("pixels"), st.sampled_from(["truncate", "extend", "empty", "odd"]), st.integers(0, 5000)),
    st.tuples(st.just("voi"), st.lists(st.integers(0, 65535), min_size=0, max_size=4),
              st.lists(st.integers(0, 65535), min_size=0, max_size=20)),
)


@st.composite
def damaged_headers(draw):
    """A valid grey file, then 1-3 of: a group 0028 element dropped or set to any US value, a text element
    (frames, photometric, rescale, window) set to garbage, pixel data cut/extended/emptied, a bad VOI LUT."""
    rows, cols = draw(st.tuples(st.integers(1, 16), st.integers(1, 16)))
    bits_allocated = draw(st.sampled_from([8, 16]))
    bits_stored = draw(st.integers(1, bits_allocated))
    signed = draw(st.booleans())
    stored = draw(stored_pixels((1, rows, cols), bits_stored, signed))
    syntax = draw(st.sampled_from(list(ENCODINGS)))
    header = grey_header(rows, cols, bits_allocated, bits_stored, signed, "MONOCHROME2")
    data = pixel_bytes(stored, bits_allocated, signed, syntax)
    for damage in draw(st.lists(HEADER_DAMAGE, min_size=1, max_size=3)):
        kind = damage[0]
        if kind == "drop" and damage[1] == "PixelData":
            data = None
        elif kind == "drop":
            header.pop(damage[1], None)
        elif kind in ("set", "text"):
            header[damage[1]] = damage[2]
        elif kind == "pixels" and data is not None:
            how, n = damage[1:]
            data = {"truncate": data[: n % (len(data) + 1)], "extend": data + bytes(n), "empty": b"",
                    "odd": data + b"\0"}[how]
        elif kind == "voi":
            header["VOILUTSequence"] = [lut_item(damage[1], damage[2])]
    return header, data, syntax


@FUZZ
@given(damaged_headers())
def test_dicom_damaged_header_and_pixel_data(case):
    """Whatever the header says, the reader gives a finite (Rows, Columns) image in [0, 1] or the clean error."""
    header, data, syntax = case
    rows, cols = header.get("Rows"), header.get("Columns")
    with _tmpdir() as tmp:
        path = write_dicom_file(tmp / "a.dcm", header, data, syntax=syntax)
        check_image(read_dcm, path, None, shape=(rows, cols) if None not in (rows, cols) else None)


TRANSFER_SYNTAXES = st.sampled_from([
    b"1.2.840.10008.1.2", b"1.2.840.10008.1.2.1", b"1.2.840.10008.1.2.2", b"1.2.840.10008.1.2.1.99",  # deflated
    b"1.2.840.10008.1.2.4.50", b"1.2.840.10008.1.2.5", b"1.2.840.10008.1.2.4.90", b"1.2.840.10008.1.2.4.80",
    b"1.2.840.10008.1.2.4.999", b"1.2.3.4", b"1.2.840.10008.5.1.4.1.1.7", b"", b"abc", b"\xff\xfe\x00",
]) | st.binary(max_size=24)


@FUZZ
@example(case=("full", b"1.2.3.4", "explicit", np.array([[[0, 128, 255]]])))
@given(st.tuples(st.sampled_from(["full", "none", "bare"]), TRANSFER_SYNTAXES, st.sampled_from(list(ENCODINGS)),
                 stored_pixels((1, 3, 5), 8, False)))
def test_dicom_file_meta_and_transfer_syntax(case):
    """No preamble, no group 0002, or any Transfer Syntax UID (compressed, unknown, not a UID) over a native
    data set: the image when the file meta is right, else either a finite image or the clean error."""
    meta, transfer_syntax, syntax, stored = case
    header = grey_header(3, 5, 8, 8, False, "MONOCHROME2")
    right = meta == "full" and transfer_syntax == SYNTAX_UIDS[syntax].encode()
    with _tmpdir() as tmp:
        path = write_dicom_file(tmp / "a.dcm", header, pixel_bytes(stored, 8, False, syntax), syntax=syntax,
                                meta=meta, transfer_syntax=transfer_syntax)
        check_image(read_dcm, path, stored[0] / 255.0 if right else None, shape=None if not right else (3, 5))


def dicom_blob(header: dict, stored: np.ndarray) -> bytes:
    """The bytes of a valid explicit VR little endian file with ``header`` over 16-bit ``stored`` pixels."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, _dataset(header, pixel_bytes(stored, 16, False, "explicit")), implicit_vr=False,
                     little_endian=True, force_encoding=True, enforce_file_format=False)
    return b"\0" * 128 + b"DICM" + _file_meta(SYNTAX_UIDS["explicit"].encode()) + buf.getvalue()



def damage(draw, intact: bytes, kind: str) -> bytes:
    """``intact`` cut short at a drawn length (``truncate``), or with one to four drawn bytes flipped."""
    if kind == "truncate":
        return intact[: draw(st.integers(0, len(intact)))]
    blob = bytearray(intact)
    for pos, xor in draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(1, 255)),
                                  min_size=1, max_size=4)):
        blob[pos] ^= xor
    return bytes(blob)

@st.composite
def damaged_dicom_bytes(draw):
    """A valid windowed file cut short, with bytes flipped, or random bytes (behind a DICM preamble or not);
    with the image the intact file gives."""
    stored = draw(stored_pixels((1, 6, 7), 16, False))
    header = grey_header(6, 7, 16, 16, False, "MONOCHROME2") | {"WindowCenter": "30000", "WindowWidth": "40000"}
    intact = dicom_blob(header, stored)
    kind = draw(st.sampled_from(["truncate", "flip", "random"]))
    if kind in ("truncate", "flip"):
        blob = damage(draw, intact, kind)
    else:
        blob = draw(st.sampled_from([b"", b"\0" * 128 + b"DICM"])) + draw(st.binary(max_size=2000))
    return blob, intact, window(stored[0].astype(np.float64), 30000.0, 40000.0, "LINEAR")


@FUZZ
@given(damaged_dicom_bytes())
def test_dicom_damaged_bytes(case):
    """The intact file gives its windowed image; damaged bytes a finite 2-D image in [0, 1] or the clean error."""
    blob, intact, image = case
    with _tmpdir() as tmp:
        path = tmp / "a.dcm"
        path.write_bytes(blob)
        check_image(read_dcm, path, image if blob == intact else None)


# ================================================================================================================
# Raster images (Pillow)
# ================================================================================================================

RASTER_SUFFIXES = {"1": ["png", "tif", "bmp"], "L": ["png", "tif", "bmp"], "LA": ["png", "tif"], "P": ["png", "tif"],
                   "RGB": ["png", "tif", "bmp"], "RGBA": ["png", "tif"], "I": ["tif"], "I;16": ["png", "tif"],
                   "F": ["tif"]}


@st.composite
def raster_files(draw):
    """An image of any Pillow mode, its file suffix, and the grey levels the reader documents: 16-bit modes
    over 65535, the others through Pillow's luma ("L") over 255; alpha is ignored."""
    mode = draw(st.sampled_from(list(RASTER_SUFFIXES)))
    h, w = draw(IMAGE_SHAPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    suffix = draw(st.sampled_from(RASTER_SUFFIXES[mode]))
    if mode == "1":
        x = rng.integers(0, 2, (h, w)).astype(bool)
        return Image.fromarray(x), suffix, x.astype(np.float64)
    if mode in ("L", "LA", "RGB", "RGBA"):
        x = rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
        im = Image.frombytes(mode, (w, h), x.tobytes())
        grey = x[..., 0] if mode[0] == "L" else luminance(x)
        return im, suffix, grey / 255.0
    if mode == "P":
        index, palette = rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (256, 3), dtype=np.uint8)
        im = Image.frombytes("P", (w, h), index.tobytes())
        im.putpalette(palette.tobytes())
        return im, suffix, luminance(palette[index]) / 255.0
    if mode in ("I", "I;16"):
        x = rng.integers(0, 65536, (h, w))
        return Image.fromarray(x.astype(np.int32 if mode == "I" else np.uint16)), suffix, x / 65535.0
    x = rng.integers(0, 256, (h, w)).astype(np.float32)  # "F": whole grey levels 0..255
    return Image.fromarray(x), suffix, x / 255.0


@FUZZ
@given(raster_files())
def test_raster_modes_equal_the_oracle(case):
    """Every Pillow mode reads as its documented grey levels, in its (height, width), through both readers."""
    im, suffix, expected = case
    with _tmpdir() as tmp:
        path = tmp / f"a.{suffix}"
        im.save(path)
        # Pillow's luma is integer arithmetic (ITU-R 601-2, rounded): allow one grey level
        out = check_image(read_image, path, None, shape=expected.shape)
        assert out is not None, "a valid image was refused"
        np.testing.assert_allclose(out, expected, atol=1.0 / 255 + ATOL, rtol=0)
        assert np.array_equal(read_gray(path), out)


@FUZZ
@example(case=("I", np.array([[0, 70000, -5]])))
@given(st.one_of(
    st.tuples(st.just("I"), st.lists(st.integers(-2**31, 2**31 - 1) | st.sampled_from([0, 65535, 65536, -1]),
                                     min_size=1, max_size=8).map(lambda v: np.array([v]))),
    st.tuples(st.just("F"), st.lists(st.floats(width=32) | st.sampled_from([-1.0, 0.5, 255.5, 1e30]),
                                     min_size=1, max_size=8).map(lambda v: np.array([v]))),
))
def test_raster_32bit_integer_and_float_tiffs_stay_in_unit_range(case):
    """32-bit integer and float TIFFs hold any value (negative, > 65535, NaN, inf): the image stays in [0, 1]."""
    mode, values = case
    with _tmpdir() as tmp:
        path = tmp / "a.tif"
        Image.fromarray(values.astype(np.int32 if mode == "I" else np.float32)).save(path)
        check_image(read_image, path, None, shape=values.shape)


def raster_blob(mode: str, suffix: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 65536 if mode == "I;16" else 256, (9, 11, 3) if mode == "RGB" else (9, 11))
    buf = io.BytesIO()
    Image.fromarray(x.astype(np.uint16 if mode == "I;16" else np.uint8)).save(
        buf, format={"png": "PNG", "jpg": "JPEG", "tif": "TIFF", "bmp": "BMP"}[suffix])
    return buf.getvalue()


@st.composite
def damaged_raster_bytes(draw):
    """A valid PNG/JPEG/TIFF/BMP cut short or with bytes flipped, or any bytes, behind any image suffix."""
    mode = draw(st.sampled_from(["L", "RGB", "I;16"]))
    fmt = draw(st.sampled_from(["png", "tif"] if mode == "I;16" else ["png", "jpg", "tif", "bmp"]))
    intact = raster_blob(mode, fmt, draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["truncate", "flip", "random", "empty"]))
    if kind in ("truncate", "flip"):
        blob = damage(draw, intact, kind)
    elif kind == "random":
        blob = draw(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\0", b"BM"])) + draw(
            st.binary(max_size=1000))
    else:
        blob = b""
    suffix = draw(st.sampled_from([fmt, fmt, "png", "jpg", "jpeg", "tif", "tiff", "bmp", "dcm", "PNG"]))
    return blob, suffix, fmt, intact


BROKEN_PNG_CHUNK = (  # an IDAT length 16 bytes short: the next "chunk" is data (Pillow raised SyntaxError)
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x0b\x00\x00\x00\t\x08\x00\x00\x00\x00\xc1\x0f\x89\xf1"
    b"\x00\x00\x00\x02IDATx\x9ccd`D\x00n\x04\x93\x85\x06l\x00+\x7f\x00\xd1$QBV\x00\x00\x00\x00IEND\xaeB`\x82")


@FUZZ
@example(case=(BROKEN_PNG_CHUNK, "png", "png", b""))  # found by the deep run
@given(damaged_raster_bytes())
def test_raster_damaged_bytes(case):
    """Damaged bytes (any suffix, .dcm included) give a finite 2-D image in [0, 1] or the clean error; the
    intact file under its own suffix loads."""
    blob, suffix, fmt, intact = case
    with _tmpdir() as tmp:
        path = tmp / f"a.{suffix}"
        path.write_bytes(blob)
        out = check_image(read_image, path, None)
        if blob == intact and suffix == fmt:
            assert out is not None and out.shape == (9, 11), "the intact file did not load"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_FORMATS = [(1, 0), (8, 0), (16, 0), (8, 2), (16, 2), (8, 4), (8, 6), (16, 6), (1, 3), (8, 3)]  # (depth, colour)


@FUZZ
@example(case=(100_000, 100_000, (8, 0), b"\0" * 10))
@example(case=(44739236, 1, (16, 2), b""))  # found by the deep run: Pillow raised MemoryError
@given(st.tuples(st.integers(1, 64) | st.integers(2**15, 2**31 - 1), st.integers(1, 64) | st.integers(2**15, 2**31 - 1),
                 st.sampled_from(PNG_FORMATS), st.binary(max_size=200)))
def test_png_header_claiming_any_size(case):
    """A well-formed PNG (valid CRCs) whose IHDR claims a size its data do not hold: the clean error."""
    width, height, (depth, colour), payload = case
    blob = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if colour == 3:
        blob += png_chunk(b"PLTE", bytes(range(6)))
    blob += png_chunk(b"IDAT", zlib.compress(payload)) + png_chunk(b"IEND", b"")
    with _tmpdir() as tmp:
        path = tmp / "a.png"
        path.write_bytes(blob)
        check_image(read_image, path, None, shape=(height, width))


# ================================================================================================================
# Checkpoints: load_model("ARCH:PATH") with a tiny network (spec tests.test_fuzz_files:tiny_net:PATH)
# ================================================================================================================


class TinyNet(nn.Module):
    """conv - batch norm - ReLU - mean - linear: 78 + 2 K numbers, a 12 x 12 input; loads in milliseconds."""

    input_size = (12, 12)
    in_channels = 3

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def tiny_net(num_classes: int = 2) -> TinyNet:
    return TinyNet(num_classes)


TINY = "tests.test_fuzz_files:tiny_net"
TINY_KEYS = list(TinyNet().state_dict())


@pytest.fixture(scope="module")
def tiny_state():
    """One random tiny state dict (non-zero running stats too); each example mutates a copy."""
    torch.manual_seed(0)
    state = TinyNet().state_dict()
    state["bn.running_mean"].uniform_(-1, 1)
    state["bn.running_var"].uniform_(0.5, 2)
    state["bn.num_batches_tracked"].fill_(7)
    return state


def copy_state(state: dict) -> dict:
    return {k: v.clone() for k, v in state.items()}


@contextlib.contextmanager
def _few_torchvision_models():
    """check_fit's error names likely torchvision architectures by building all ~80 of them on the meta device,
    about 5 s a call on this machine: two models keep that code path running at fuzzing speed."""
    with mock.patch("torchvision.models.list_models", return_value=["resnet18", "alexnet"]):
        yield


def same_values(loaded: torch.Tensor, saved: torch.Tensor) -> bool:
    """``loaded`` holds exactly ``saved``'s values (NaN where NaN), whatever dtype the network converted to."""
    saved = saved.detach()
    if tuple(loaded.shape) != tuple(saved.shape):
        return False
    back = loaded.detach().to(saved.dtype)
    if saved.is_floating_point() or saved.is_complex():
        return bool(((back == saved) | (back.isnan() & saved.isnan())).all())
    return torch.equal(back, saved)


def check_model(path: Path, expected: dict | None, *, must_load=False, arch=TINY, **kwargs):
    """The property for load_model: it returns a network whose state is exactly ``expected`` (None: nothing may
    load), or raises an AuditUsageError whose one line starts with the option and spec and names the file."""
    spec = str(path) if arch is None else f"{arch}:{path}"  # arch None: a TorchScript archive
    option = kwargs.get("option", "--model")
    try:
        with _few_torchvision_models(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load_model(spec, **kwargs)
    except AuditUsageError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(path) in msg and msg.startswith(f"{option}={spec}"), msg
        assert not must_load, f"a valid checkpoint was refused: {msg}"
        return None
    assert expected is not None, "loaded a checkpoint that holds no such network"
    got = model.net.state_dict()
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    changed = [k for k in expected if not same_values(got[k], expected[k])]
    assert not changed, f"weights silently changed on load: {changed}"
    return model


def wrap_state(state: dict, prefix: str, container: str | None):
    """As training code saves it: keys behind a wrapper prefix, the dict inside a checkpoint dict."""
    state = {prefix + k if isinstance(k, str) else k: v for k, v in state.items()}
    return state if container is None else {container: state, "epoch": 3, "best_auc": 0.91}


WRAPS = st.tuples(st.sampled_from(["", "module.", "model.", "net.", "a.b."]),
                  st.sampled_from([None, "state_dict", "model", "model_state_dict"]))
TENSOR_DAMAGE = st.one_of(
    st.tuples(st.just("dtype"), st.sampled_from(TINY_KEYS),
              st.sampled_from([torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.uint8,
                               torch.bool])),
    st.tuples(st.just("nonfinite"), st.sampled_from(TINY_KEYS), st.sampled_from([float("nan"), float("inf"),
                                                                               -float("inf"), 2.0**127])),
    st.tuples(st.just("parameter"), st.sampled_from(TINY_KEYS)),
    st.tuples(st.just("view"), st.sampled_from(TINY_KEYS)),
    st.tuples(st.just("shape"), st.sampled_from(TINY_KEYS), st.lists(st.integers(0, 5), max_size=4)),
    st.tuples(st.just("drop"), st.sampled_from(TINY_KEYS)),
    st.tuples(st.just("extra"), st.sampled_from(["extra.weight", "fc.weight_orig", "conv", "", "fc.weight.x"])),
)
HARMLESS = {"dtype", "nonfinite", "parameter", "view"}  # the file still holds a full, well-shaped state


def damage_tensors(state: dict, damage) -> dict:
    kind, key = damage[0], damage[1]
    if kind == "extra":
        state[key] = torch.ones(2)
        return state
    if key not in state:  # dropped by an earlier damage
        return state
    value = state[key].detach().clone()
    if kind == "dtype":
        state[key] = value.to(damage[2])
    elif kind == "nonfinite" and value.is_floating_point() and value.numel():
        value.view(-1)[0] = damage[2]
        state[key] = value
    elif kind == "parameter":
        state[key] = nn.Parameter(value, requires_grad=value.is_floating_point())
    elif kind == "view":  # a strided view into a larger storage: torch.save keeps the whole storage
        big = torch.zeros((2,) + tuple(value.shape), dtype=value.dtype)
        big[1] = value
        state[key] = big[1]
    elif kind == "shape":
        state[key] = torch.rand(damage[2]).to(value.dtype)
    elif kind == "drop":
        del state[key]
    return state


def integral(value: torch.Tensor) -> bool:
    """Whether an integer buffer can hold ``value`` exactly (finite whole numbers within int64)."""
    v = value.detach().double()
    return bool((v.isfinite() & (v == v.round()) & (v.abs() < 2.0**63)).all())


@FUZZ
@example(damages=[("dtype", "bn.num_batches_tracked", torch.float64), ("nonfinite", "bn.num_batches_tracked", nan)],
         wrap=("", None))  # found by the deep run: NaN loaded into the int64 counter as some integer
@given(st.lists(TENSOR_DAMAGE, max_size=3), WRAPS)
def test_checkpoint_tensor_changes(tiny_state, damages, wrap):
    """dtype, NaN/inf, Parameter, strided views load exactly (dtype converted); wrong shapes, missing and extra
    keys, and a value the network's dtype cannot hold (NaN in an integer buffer) are the clean error; prefixes
    and checkpoint dicts are unwrapped."""
    state = copy_state(tiny_state)
    for damage in damages:
        state = damage_tensors(state, damage)
    fits = all(integral(v) for k, v in state.items() if k in tiny_state and not tiny_state[k].is_floating_point()
               and isinstance(v, torch.Tensor) and tuple(v.shape) == tuple(tiny_state[k].shape))
    with _tmpdir() as tmp:
        path = tmp / "ckpt.pt"
        torch.save(wrap_state(state, *wrap), path)
        check_model(path, state, must_load=fits and all(d[0] in HARMLESS for d in damages))


ODD_VALUES = st.one_of(
    st.tuples(st.just("value"), st.sampled_from(TINY_KEYS + ["extra"]),
              st.sampled_from([3, 2.5, "x", None, [1, 2], {"a": 1}, (1,), True, b"b"])),
    st.tuples(st.just("key"), st.sampled_from([1, 0, (1, 2), None, 2.5, b"k", True])),
    st.tuples(st.just("complex"), st.sampled_from(TINY_KEYS)),
    st.tuples(st.just("sparse"), st.sampled_from(TINY_KEYS)),
    st.tuples(st.just("meta"), st.sampled_from(TINY_KEYS)),
    st.tuples(st.just("head"), st.sampled_from([2**40, 2**48])),
)


def odd_state(state: dict, odd) -> dict:
    kind = odd[0]
    if kind == "value":
        state[odd[1]] = odd[2]
    elif kind == "key":
        state[odd[1]] = torch.zeros(1)
    elif kind == "complex":
        state[odd[1]] = state[odd[1]].to(torch.complex64) * (1 + 1j) + 1j
    elif kind == "sparse":
        state[odd[1]] = state[odd[1]].to_sparse()
    elif kind == "meta":
        state[odd[1]] = state[odd[1]].to("meta")
    else:  # a head of 2**40 classes and no inputs: an empty tensor in a tiny file
        state["fc.weight"] = torch.zeros(odd[1], 0)
    return state


@FUZZ
@example(odd=("value", "fc.weight", 3), wrap=("", "state_dict"))
@given(ODD_VALUES, WRAPS)
def test_checkpoint_odd_keys_values_and_tensors(tiny_state, odd, wrap):
    """What the weights-only unpickler accepts besides dense real tensors under string keys: the clean error
    (or, if it loads, exactly those values)."""
    state = odd_state(copy_state(tiny_state), odd)
    with _tmpdir() as tmp:
        path = tmp / "ckpt.pt"
        torch.save(wrap_state(state, *wrap), path)
        check_model(path, {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
                    if all(isinstance(v, torch.Tensor) for v in state.values()) else None)


def rewrite_zip(blob: bytes, edit: str) -> bytes:
    """A torch.save zip with its members renamed, dropped or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
        names = src.namelist()
        for i, name in enumerate(names):
            data = src.read(name)
            if edit == "rename_pickle" and name.endswith("/data.pkl"):
                name = name.replace("data.pkl", "weights.pkl")
            elif edit == "drop_storage" and "/data/" in name:
                continue
            elif edit == "cut_storage" and "/data/" in name:
                data = data[: len(data) // 2]
            elif edit == "drop_meta" and name.rsplit("/", 1)[-1] in ("byteorder", "version", ".format_version"):
                continue
            elif edit == "two_roots" and i % 2:
                name = "other/" + name.split("/", 1)[1]
            elif edit == "nested":
                name = "outer/" + name
            dst.writestr(name, data)
        if edit == "junk_member":
            dst.writestr(names[0].split("/")[0] + "/data/999", b"junk")
    return out.getvalue()


@st.composite
def damaged_checkpoints(draw, state):
    """(bytes, the state the intact file holds or None, must load, allow_unsafe_pickle)."""
    kind = draw(st.sampled_from(["intact", "truncated", "rewritten", "random", "empty", "pickle", "legacy"]))
    buf = io.BytesIO()
    if kind == "random":
        head = draw(st.sampled_from([b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x05", b"\x8a\x0al\xfc\x9cF\xf9"]))
        return head + draw(st.binary(max_size=2000)), None, False, False
    if kind == "empty":
        return b"", None, False, draw(st.booleans())
    if kind == "pickle":
        pickle.dump(state, buf, protocol=draw(st.integers(2, 5)))
    else:
        torch.save(state, buf, _use_new_zipfile_serialization=kind != "legacy")
    blob = buf.getvalue()
    if kind == "rewritten":
        return rewrite_zip(blob, draw(st.sampled_from(["rename_pickle", "drop_storage", "cut_storage", "drop_meta",
                                                       "two_roots", "nested", "junk_member"]))), state, False, False
    if kind in ("truncated", "legacy", "pickle") and draw(st.booleans()):
        blob = blob[: draw(st.integers(0, len(blob) - 1))]
        return blob, None, False, draw(st.booleans())
    return blob, (None if kind == "pickle" else state), kind in ("intact", "truncated", "legacy"), draw(st.booleans())


@FUZZ
@given(st.data(), st.sampled_from(["--model", "--replicate", "--compare-model"]))
def test_checkpoint_damaged_bytes(tiny_state, data, option):
    """Random bytes, cut zips, renamed/dropped members, pickle.dump files, legacy torch.save and empty files:
    the clean error, or (intact files) exactly the saved weights."""
    blob, expected, must_load, unsafe = data.draw(damaged_checkpoints(tiny_state))
    arch = TINY if expected is not None else data.draw(st.sampled_from([TINY, "resnet18"]))
    with _tmpdir() as tmp:
        path = tmp / "ckpt.pt"
        path.write_bytes(blob)
        check_model(path, expected, must_load=must_load, arch=arch, option=option, allow_unsafe_pickle=unsafe)


@pytest.fixture(scope="module")
def tiny_scripts(tiny_state, tmp_path_factory):
    """TorchScript archives of the tiny network, scripted in eval and in training mode: {training: bytes}."""
    blobs = {}
    for training in (False, True):
        net = TinyNet()
        net.load_state_dict(tiny_state)
        path = tmp_path_factory.mktemp("script") / "tiny.ts"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated, still what users load
            torch.jit.script(net.train(training)).save(str(path))
        blobs[training] = path.read_bytes()
    return blobs


@FUZZ
@example(form="pickle", training=True, unsafe=True)
@given(st.sampled_from(["pickle", "pickle in checkpoint dict", "torchscript", "torchscript with arch"]),
       st.booleans(), st.booleans())
def test_checkpoint_whole_network(tiny_state, tiny_scripts, form, training, unsafe):
    """torch.save(net) (alone or in a checkpoint dict) is refused without allow_unsafe_pickle; with it, and a
    TorchScript archive always, the network loads exactly as saved, whichever mode it was saved in."""
    net = TinyNet()
    net.load_state_dict(tiny_state)
    net.train(training)
    with _tmpdir() as tmp:
        path = tmp / "ckpt.pt"
        if form.startswith("torchscript"):
            path.write_bytes(tiny_scripts[training])
            check_model(path, copy_state(tiny_state), must_load=True, arch=TINY if "arch" in form else None)
            return
        torch.save(net if form == "pickle" else {"model": net, "epoch": 3}, path)
        check_model(path, copy_state(tiny_state), must_load=unsafe, allow_unsafe_pickle=unsafe)


SCRIPT_MEMBERS = ["data.pkl", "constants.pkl", "version", "byteorder", "code/__torch__/tests/test_fuzz_files.py",
                  "test_fuzz_files.py.debug_pkl"]


@FUZZ
@example(edit=("drop", "data.pkl"), arch=None)
@given(st.one_of(st.tuples(st.sampled_from(["drop", "truncate"]),
                           st.sampled_from(SCRIPT_MEMBERS + ["data/0", "data/8"])),
                 st.tuples(st.just("flip"), st.sampled_from(SCRIPT_MEMBERS))),
       st.sampled_from([None, TINY, "resnet18"]))
def test_torchscript_damaged_archive(tiny_state, tiny_scripts, edit, arch):
    """A TorchScript archive with a member dropped or cut in half, or the first byte of a non-tensor member
    flipped (re-zipped, so the CRCs are right): the clean error, or the saved weights."""
    how, member = edit
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(tiny_scripts[False])) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith(member):
                if how == "drop":
                    continue
                data = data[: len(data) // 2] if how == "truncate" else bytes([data[0] ^ 0x55]) + data[1:]
            dst.writestr(name, data)
    with _tmpdir() as tmp:
        path = tmp / "ckpt.ts"
        path.write_bytes(out.getvalue())
        check_model(path, copy_state(tiny_state) if arch != "resnet18" else None, arch=arch)


def zip_member_offset(blob: bytes, suffix: str) -> int:
    """Where the data of the zip member ending in ``suffix`` start in ``blob``."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(suffix))
    name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26: info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len


@FUZZ
@example(flips=[("data/0", 0, 0x40)])
@given(st.lists(st.tuples(st.sampled_from(["data.pkl", "data/0", "data/1", "data/6", "byteorder", "version"]),
                          st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=3))
def test_checkpoint_flipped_bytes_are_not_loaded_silently(tiny_state, flips):
    """A corrupted zip member is detectable (each member has a CRC-32): the clean error, never other weights."""
    buf = io.BytesIO()
    torch.save(tiny_state, buf)
    blob = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(blob))) as zf:
        sizes = {i.filename.split("/", 1)[1]: i.file_size for i in zf.infolist()}
    for member, pos, xor in flips:
        blob[zip_member_offset(bytes(blob), member) + pos % sizes[member]] ^= xor
    with _tmpdir() as tmp:
        path = tmp / "ckpt.pt"
        path.write_bytes(bytes(blob))
        check_model(path, tiny_state)
