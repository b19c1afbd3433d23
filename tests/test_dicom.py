"""saliency_audit.data.dicom: DICOM reading as a radiologist sees it, and the small test-file writer."""
import os

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSLossless, RLELossless

from saliency_audit.data.dicom import dicom_size, read_dicom, write_dicom
from saliency_audit.common.errors import AuditInputError

TEST_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")


def shipped(name):
    """A test file shipped inside the installed pydicom package (never downloaded)."""
    path = os.path.join(TEST_FILES, name)
    if not os.path.isfile(path):
        pytest.skip(f"{name} is not shipped with this pydicom")
    return path


def input_error(path, *fragments):
    """The AuditInputError that reading ``path`` raises; its message is one line naming the file."""
    with pytest.raises(AuditInputError) as info:
        read_dicom(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    for fragment in fragments:
        assert fragment in msg
    return msg


@pytest.fixture
def img8():
    arr = np.random.default_rng(0).integers(0, 256, (30, 40), dtype=np.uint8)
    arr[0, :2] = (0, 255)
    return arr


def test_8bit_round_trip_equals_png_scaling(tmp_path, img8):
    write_dicom(tmp_path / "a.dcm", img8)
    out = read_dicom(tmp_path / "a.dcm")
    assert out.dtype == np.float32 and out.shape == (30, 40) and out.flags.c_contiguous
    np.testing.assert_allclose(out, img8 / 255.0, atol=1e-6)


def test_12bit_in_16_scaled_by_4095(tmp_path):
    arr = np.random.default_rng(1).integers(0, 4096, (20, 24), dtype=np.uint16)
    arr[0, :2] = (0, 4095)
    write_dicom(tmp_path / "a.dcm", arr, bits_stored=12)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    np.testing.assert_allclose(read_dicom(tmp_path / "a.dcm"), arr / 4095.0, atol=1e-6)


def test_16bit_scaled_by_65535(tmp_path):
    arr = np.random.default_rng(2).integers(0, 65536, (16, 16), dtype=np.uint16)
    arr[0, :2] = (0, 65535)
    write_dicom(tmp_path / "a.dcm", arr)
    np.testing.assert_allclose(read_dicom(tmp_path / "a.dcm"), arr / 65535.0, atol=1e-6)


def test_monochrome1_is_inverted(tmp_path, img8):
    write_dicom(tmp_path / "m2.dcm", img8)
    write_dicom(tmp_path / "m1.dcm", img8, photometric="MONOCHROME1")
    m1, m2 = read_dicom(tmp_path / "m1.dcm"), read_dicom(tmp_path / "m2.dcm")
    np.testing.assert_allclose(m1, 1.0 - m2, atol=1e-6)
    assert not np.allclose(m1, m2)


# PS3.3 C.11.2.1.2.1 (LINEAR), center c = 2048, width w = 1001: x <= c - 0.5 - (w-1)/2 = 1547.5 -> 0,
# x > c - 0.5 + (w-1)/2 = 2547.5 -> 1, else (x - (c - 0.5)) / (w - 1) + 0.5, worked out by hand:
WINDOW_CASES = [(0, 0.0), (1000, 0.0), (1547, 0.0), (1548, 0.0005), (2048, 0.5005), (2547, 0.9995), (2548, 1.0),
                (4095, 1.0)]


def test_window_linear_formula(tmp_path):
    stored = np.array([[x for x, _ in WINDOW_CASES]], dtype=np.uint16)
    write_dicom(tmp_path / "w.dcm", stored, bits_stored=12, window=(2048, 1001))
    np.testing.assert_allclose(read_dicom(tmp_path / "w.dcm")[0], [y for _, y in WINDOW_CASES], atol=1e-6)
    write_dicom(tmp_path / "w1.dcm", stored, bits_stored=12, window=(2048, 1001), photometric="MONOCHROME1")
    np.testing.assert_allclose(read_dicom(tmp_path / "w1.dcm")[0], [1 - y for _, y in WINDOW_CASES], atol=1e-6)


def test_window_in_rescaled_units(tmp_path):
    # stored s -> value v = 2 s - 1000; window c = 0, w = 401 on v: v <= -200.5 -> 0, v > 199.5 -> 1
    stored = np.array([[0, 399, 400, 500, 599, 600, 4095]], dtype=np.uint16)
    write_dicom(tmp_path / "w.dcm", stored, bits_stored=12, window=(0, 401), rescale=(2, -1000))
    # v = -1000, -202, -200, 0, 198, 200, 7190
    expected = [0.0, 0.0, (-200 + 0.5) / 400 + 0.5, 0.5 / 400 + 0.5, 198.5 / 400 + 0.5, 1.0, 1.0]
    np.testing.assert_allclose(read_dicom(tmp_path / "w.dcm")[0], expected, atol=1e-6)


def test_voi_lut_sequence_preferred_over_window(tmp_path, img8):
    write_dicom(tmp_path / "a.dcm", img8, window=(10, 2))
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [256, 0, 12])  # 256 entries from stored value 0; 12-bit output 0..4095
    item.add_new("LUTData", "US", [16 * i for i in range(256)])
    ds.VOILUTSequence = [item]
    ds.save_as(tmp_path / "lut.dcm")
    np.testing.assert_allclose(read_dicom(tmp_path / "lut.dcm"), 16.0 * img8 / 4095.0, atol=1e-6)


def test_rescale_without_window_is_min_max(tmp_path):
    stored = np.array([[100, 200], [300, 1100]], dtype=np.uint16)
    write_dicom(tmp_path / "r.dcm", stored, bits_stored=12, rescale=(2, -1024))
    # values -824, -624, -424, 1176: min-max over the image, not / 4095
    np.testing.assert_allclose(read_dicom(tmp_path / "r.dcm"), [[0.0, 0.1], [0.2, 1.0]], atol=1e-6)
    write_dicom(tmp_path / "c.dcm", np.full((3, 4), 7, np.uint16), bits_stored=12, rescale=(2, -1024))
    np.testing.assert_array_equal(read_dicom(tmp_path / "c.dcm"), np.zeros((3, 4), np.float32))


def test_identity_rescale_keeps_bit_depth_scaling(tmp_path, img8):
    write_dicom(tmp_path / "a.dcm", img8, rescale=(1, 0))
    np.testing.assert_allclose(read_dicom(tmp_path / "a.dcm"), img8 / 255.0, atol=1e-6)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_rle_reads_identical_to_uncompressed(tmp_path, bits):
    rng = np.random.default_rng(bits)
    arr = rng.integers(0, 2**bits, (33, 17), dtype=np.uint8 if bits == 8 else np.uint16)
    write_dicom(tmp_path / "raw.dcm", arr, bits_stored=bits, window=(2**bits / 3, 2**bits / 2))
    write_dicom(tmp_path / "rle.dcm", arr, bits_stored=bits, window=(2**bits / 3, 2**bits / 2), compression="rle")
    assert pydicom.dcmread(tmp_path / "rle.dcm").file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(read_dicom(tmp_path / "rle.dcm"), read_dicom(tmp_path / "raw.dcm"))


def test_jpeg_baseline_decodes_close_to_source(tmp_path):
    yy, xx = np.mgrid[0:64, 0:80]
    arr = (128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.uint8)
    write_dicom(tmp_path / "j.dcm", arr, compression="jpeg")
    ds = pydicom.dcmread(tmp_path / "j.dcm")
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds["PixelData"].VR == "OB" and ds["PixelData"].is_undefined_length
    out = read_dicom(tmp_path / "j.dcm")
    assert out.shape == arr.shape
    assert np.abs(out - arr / 255.0).mean() < 0.02


def test_sop_uid_kept_and_meta_consistent(tmp_path, img8):
    for compression in (None, "rle", "jpeg"):
        write_dicom(tmp_path / "a.dcm", img8, compression=compression, sop_uid="1.2.3.4", patient_id="p7")
        ds = pydicom.dcmread(tmp_path / "a.dcm")
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
        assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert ds.PatientID == "p7" and ds.SamplesPerPixel == 1 and ds.BitsAllocated == 8


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        write_dicom(tmp_path / "a.dcm", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        write_dicom(tmp_path / "a.dcm", np.full((4, 4), 5000, np.uint16), bits_stored=12)
    with pytest.raises(ValueError):
        write_dicom(tmp_path / "a.dcm", np.zeros((4, 4), np.uint16), bits_stored=12, compression="jpeg")


def test_multiframe_reads_first_frame_and_colour_reads_luminance(tmp_path, img8):
    write_dicom(tmp_path / "a.dcm", img8)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    ds.set_pixel_data(np.stack([img8, 255 - img8, img8 // 2]), "MONOCHROME2", 8)
    ds.save_as(tmp_path / "frames.dcm")
    np.testing.assert_allclose(read_dicom(tmp_path / "frames.dcm"), img8 / 255.0, atol=1e-6)
    rgb = np.stack([img8, 255 - img8, img8 // 2], axis=-1)
    ds.set_pixel_data(rgb, "RGB", 8)
    ds.save_as(tmp_path / "rgb.dcm")
    lum = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    np.testing.assert_allclose(read_dicom(tmp_path / "rgb.dcm"), lum, atol=1e-6)


def test_shipped_ct_small_is_min_max_of_rescaled_values():
    out = read_dicom(shipped("CT_small.dcm"))
    assert out.shape == (128, 128) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    stored = pydicom.dcmread(shipped("CT_small.dcm")).pixel_array.astype(np.float64)
    np.testing.assert_allclose(out, (stored - stored.min()) / (stored.max() - stored.min()), atol=1e-6)


def test_shipped_mr_small_window_and_rle_twin():
    ref = read_dicom(shipped("MR_small.dcm"))
    np.testing.assert_array_equal(read_dicom(shipped("MR_small_RLE.dcm")), ref)
    ds = pydicom.dcmread(shipped("MR_small.dcm"))  # signed 16-bit, window 600 / 1600, no rescale
    assert (float(ds.WindowCenter), float(ds.WindowWidth), ds.PixelRepresentation) == (600.0, 1600.0, 1)
    x = ds.pixel_array.astype(np.float64)
    np.testing.assert_allclose(ref, np.clip((x - 599.5) / 1599 + 0.5, 0, 1), atol=1e-6)


@pytest.mark.parametrize("name, uid, names", [
    ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless, "JPEG-LS Lossless"),
    ("JPEG-lossy.dcm", JPEGExtended12Bit, "JPEG Extended"),  # Pillow is installed but cannot do 12-bit
])
def test_shipped_file_without_installed_decoder(name, uid, names):
    path = shipped(name)
    if {"gdcm", "pylibjpeg", "pyjpegls"} & set(get_decoder(uid).available_plugins):
        pytest.skip(f"a decoder for {uid.name} is installed here")
    msg = input_error(path, "cannot decode", names, uid, "install a decoder")
    assert "pylibjpeg" in msg and "python-gdcm" in msg


@pytest.mark.parametrize("kind", ["truncated", "random", "empty", "missing"])
def test_unreadable_files_give_one_line_errors(tmp_path, kind):
    if kind == "truncated":
        input_error(shipped("MR_truncated.dcm"), "cannot decode DICOM pixel data")
        return
    path = tmp_path / f"{kind}.dcm"
    if kind == "random":
        path.write_bytes(np.random.default_rng(3).bytes(4000))
    elif kind == "empty":
        path.write_bytes(b"")
    input_error(path, "not a readable DICOM file")


def test_no_pixel_data():
    input_error(shipped("rtplan.dcm"), "DICOM file has no pixel data")


def test_dicom_size_reads_the_header_only(tmp_path, img8):
    write_dicom(tmp_path / "a.dcm", img8)
    assert dicom_size(tmp_path / "a.dcm") == (30, 40)
    path = shipped("JPEG-lossy.dcm")  # 1024 x 256, and its 12-bit JPEG cannot be decoded with Pillow alone
    assert dicom_size(path) == (1024, 256)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(AuditInputError, match="junk.dcm: not a readable DICOM file") as info:
        dicom_size(tmp_path / "junk.dcm")
    assert "\n" not in str(info.value)
