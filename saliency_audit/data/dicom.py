"""DICOM images as a radiologist would see them (modality LUT, VOI LUT/window, MONOCHROME1), and a small writer."""
from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless, generate_uid
from pydicom.uid import SecondaryCaptureImageStorage as SC_STORAGE
from pydicom.valuerep import DSfloat

from ..common.errors import AuditInputError
from .lut import lookup, palette_rgb

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _short(exc: BaseException) -> str:
    """A one-line reason for ``exc`` (pydicom's messages often span several lines)."""
    if isinstance(exc, InvalidDicomError):
        return "no DICOM file meta header or 'DICM' prefix"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split()).split(" - ")[0] or type(exc).__name__  # first clause, one line
    return text if len(text) <= 160 else text[:157] + "..."


def _read(path, **kwargs) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, **kwargs)
    except Exception as exc:  # noqa: BLE001 -- corrupt files raise anything from struct.error to KeyError
        raise AuditInputError(f"{path}: not a readable DICOM file ({_short(exc)})") from None


def _missing_decoder(path, tsyntax, exc: BaseException) -> str:
    """'cannot decode ...' with the packages pydicom says its decoder plugins are missing."""
    head = f"{path}: cannot decode {tsyntax.name} ({tsyntax}) pixel data"
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        return f"{head}: pydicom has no decoder for this transfer syntax"
    if decoder.available_plugins:  # an installed plugin tried and failed: say why
        head += f" ({_short(str(exc).strip().splitlines()[-1])})"
    options = []
    for line in decoder.missing_dependencies:  # e.g. "pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1"
        needs = line.partition(" - requires ")[2].replace(" and ", ", ").split(", ")
        pkgs = ["python-" + p if p.startswith("gdcm") else p for p in needs if p and not p.startswith("numpy")]
        if pkgs:  # pydicom names the import "gdcm"; its pip distribution is python-gdcm
            options.append(" + ".join(pkgs))
    return f"{head}: install a decoder, e.g. {', or '.join(options)}" if options else head


def _decode(path, ds: pydicom.Dataset) -> np.ndarray:
    try:
        ds.pixel_array_options(index=0)  # decode the first frame only
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001 -- truncated pixel data, bad group 0028 values, no decoder...
        from pydicom.uid import UID

        meta = getattr(ds, "file_meta", None)
        tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
        tsyntax = UID(str(tsyntax)) if tsyntax is not None else None
        if tsyntax is None:
            raise AuditInputError(f"{path}: no Transfer Syntax UID in the file meta: cannot decode the pixel "
                                  "data") from None
        if not tsyntax.is_transfer_syntax:
            raise AuditInputError(f"{path}: Transfer Syntax UID {str(tsyntax)!r} is not a transfer syntax") from None
        # pydicom 3 raises RuntimeError (plugins missing or all failed) or NotImplementedError (no decoder at all)
        if isinstance(exc, (RuntimeError, NotImplementedError)) and tsyntax is not None and tsyntax.is_compressed:
            raise AuditInputError(_missing_decoder(path, tsyntax, exc)) from None
        raise AuditInputError(f"{path}: cannot decode DICOM pixel data ({_short(exc)})") from None


def _minmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _voi_lut(ds: pydicom.Dataset) -> pydicom.Dataset | None:
    """The first item of the VOI LUT Sequence, when it has a descriptor and data (the LUT applied)."""
    seq = ds.get("VOILUTSequence")
    if seq and None not in (seq[0].get("LUTDescriptor"), seq[0].get("LUTData")):
        return seq[0]
    return None


def _voi_range(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """The output range of the VOI transform apply_voi_lut(prefer_lut=True) applies, or None when it applies none.

    VOI LUT Sequence: 0 .. 2**n - 1 with n the third LUT Descriptor value (PS3.3 C.11.2.1.1).  Window: pydicom's
    apply_windowing maps the window onto the modality LUT's output range, i.e. the stored-value range of BitsStored
    and PixelRepresentation (or 0 .. 2**n - 1 of a Modality LUT Sequence), passed through rescale slope/intercept.
    """
    lut = _voi_lut(ds)
    if lut is not None:
        bits = int(lut.LUTDescriptor[2])
        if not (bits == 8 or 10 <= bits <= 16):  # PS3.3 C.11.2.1.1.1
            raise ValueError(f"a VOI LUT of {bits} bits per entry (8 or 10..16 allowed)")
        return 0.0, 2.0**bits - 1
    if None in (ds.get("WindowCenter"), ds.get("WindowWidth")):
        return None
    bits = int(ds.BitsStored)
    if ds.get("ModalityLUTSequence"):
        lo, hi = 0.0, 2.0 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    elif int(ds.PixelRepresentation) == 0:
        lo, hi = 0.0, 2.0**bits - 1
    else:
        lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        lo, hi = lo * slope + intercept, hi * slope + intercept
    return lo, hi


def _to_unit(ds: pydicom.Dataset, arr: np.ndarray) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        rgb, full_scale = palette_rgb(arr, ds)
        return _luminance(rgb) / full_scale
    if arr.ndim == 3:  # colour, already RGB (pydicom converts YBR): no modality or VOI LUT applies
        return _luminance(arr) / (2.0 ** int(ds.BitsStored) - 1)
    if arr.dtype.kind == "f":  # Float Pixel Data: no stored bit depth to scale by
        return _minmax(arr)
    values = apply_modality_lut(arr, ds)
    if not np.isfinite(values).all():  # a NaN or infinite Rescale Slope/Intercept: min-max would give a black image
        raise ValueError("the modality LUT (Rescale Slope/Intercept) gives non-finite values")
    voi = _voi_range(ds)
    rescaled = ds.get("ModalityLUTSequence") or (
        ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None
        and (float(ds.RescaleSlope), float(ds.RescaleIntercept)) != (1.0, 0.0))
    lut = _voi_lut(ds)
    if lut is not None:
        out = (lookup(values, lut.LUTDescriptor, lut.LUTData, ds).astype(np.float64) - voi[0]) / (voi[1] - voi[0])
    elif voi is not None:  # a window (a VOI LUT Sequence, when present, takes precedence: prefer_lut)
        out = (apply_voi_lut(values, ds, prefer_lut=True).astype(np.float64) - voi[0]) / (voi[1] - voi[0])
    elif not rescaled and int(ds.PixelRepresentation) == 0:
        # No VOI and stored values as is: scale by the stored bit depth, not the image's own range, so that
        # contrast is kept (an 8-bit image equals its PNG export / 255).  Signed or rescaled data have no
        # such natural range: min-max over the image (a constant image gives zeros).
        out = values / (2.0 ** int(ds.BitsStored) - 1)
    else:
        out = _minmax(values)
    return 1.0 - out if photometric == "MONOCHROME1" else out  # bright = dense for every image


def read_dicom(path) -> np.ndarray:
    """The first frame of a DICOM image as float32 (H, W) in [0, 1], as a radiologist would see it."""
    ds = _read(path)
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise AuditInputError(f"{path}: DICOM file has no pixel data")
    arr = _decode(path, ds)
    try:
        out = _to_unit(ds, arr)
    except Exception as exc:  # noqa: BLE001 -- bad LUT descriptors, window width < 1...
        raise AuditInputError(f"{path}: cannot apply the DICOM grey-level transforms ({_short(exc)})") from None
    if out.ndim != 2 or not np.isfinite(out).all():
        raise AuditInputError(f"{path}: DICOM pixel data give a non-finite or non-2-D image")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)  # VOI LUT/window outputs clip


def dicom_size(path) -> tuple[int, int]:
    """(rows, columns) from the header only (stop_before_pixels), for box rasterisation without decoding pixels."""
    ds = _read(path, stop_before_pixels=True)
    try:
        return int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        raise AuditInputError(f"{path}: DICOM header has no Rows/Columns") from None


def write_dicom(path, pixels: np.ndarray, *, bits_stored: int | None = None, photometric: str = "MONOCHROME2",
                window: tuple[float, float] | None = None, rescale: tuple[float, float] | None = None,
                compression: str | None = None, patient_id: str = "anon", sop_uid: str | None = None) -> None:
    """Write a single-frame grayscale secondary-capture DICOM (used by tests, the demo exporter and benchmarks).

    ``window`` is (center, width), ``rescale`` is (slope, intercept); ``compression`` is None, "rle" (RLE
    Lossless) or "jpeg" (JPEG baseline, quality 95, 8-bit only).
    """
    pixels = np.asarray(pixels)
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim != 2:
        raise ValueError(f"write_dicom: need a 2-D uint8 or uint16 array, not {pixels.dtype} {pixels.shape}")
    bits = int(bits_stored or pixels.dtype.itemsize * 8)
    if not 1 <= bits <= 16 or (pixels.size and int(pixels.max()) > 2**bits - 1):
        raise ValueError(f"write_dicom: pixel values do not fit in bits_stored={bits}")
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or compression not in (None, "rle", "jpeg"):
        raise ValueError(f"write_dicom: bad photometric {photometric!r} or compression {compression!r}")
    if compression == "jpeg" and bits != 8:
        raise ValueError("write_dicom: JPEG baseline needs 8-bit pixels (bits_stored=8)")
    frame = np.ascontiguousarray(pixels, dtype=np.uint8 if bits <= 8 else np.uint16)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian  # MediaStorageSOP* are filled in by enforce_file_format
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = SC_STORAGE, sop_uid or generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.ConversionType, ds.InstanceNumber = "DX", "WSD", 1
    ds.PatientID = ds.PatientName = patient_id
    ds.set_pixel_data(frame, photometric, bits, generate_instance_uid=False)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = (DSfloat(float(v), auto_format=True) for v in window)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = (DSfloat(float(v), auto_format=True) for v in rescale)
        ds.RescaleType = "US"
    if compression == "rle":
        ds.compress(RLELossless, generate_instance_uid=False)
    elif compression == "jpeg":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"  # PS3.5 A.4: encapsulated pixel data are OB with undefined length
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
        ds.LossyImageCompressionRatio = DSfloat(frame.nbytes / len(buf.getvalue()), auto_format=True)
    ds.save_as(path, enforce_file_format=True)
