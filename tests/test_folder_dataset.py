"""``--dataset=folder``: images/, masks/, labels.csv, boxes.csv."""
import re

import numpy as np
import pytest
from PIL import Image

from saliency_audit.data import load_dataset
from saliency_audit.common.errors import AuditInputError, AuditUsageError


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        _png(tmp_path / "images" / f"img{i}.png", (rng.random((40, 50)) * 255).astype(np.uint8))
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 5:15] = 255
    _png(tmp_path / "masks" / "img0.png", mask)
    (tmp_path / "labels.csv").write_text("image,label,split\nimg0.png,1,test\nimg1.png,0,test\nimg2.png,1,train\nimg3.png,1,test\n")
    (tmp_path / "boxes.csv").write_text("image,x,y,width,height\nimg3.png,4,6,10,5\nimg3.png,30,20,2,2\n")
    return tmp_path


def test_masks_boxes_and_labels_load_pixel_exact(folder):
    ds = load_dataset("folder", str(folder))
    assert len(ds) == 4
    s0, s1, _, s3 = (ds[i] for i in range(4))
    assert s0.image.shape == (1, 40, 50) and 0 <= s0.image.min() and s0.image.max() <= 1
    assert s0.label == 1 and s0.mask.sum() == 100 and s0.mask[10:20, 5:15].all()
    assert s1.label == 0 and not s1.has_lesion
    assert s3.boxes == ((4, 6, 13, 10), (30, 20, 31, 21))  # x, y, width, height -> inclusive corners
    truth = s3.truth()
    assert truth.sum() == 10 * 5 + 2 * 2 and truth[6:11, 4:14].all()
    assert sorted(ds.localisation_indices(10)) == [0, 3]  # in the id-hash order, not listing order


def test_split_selects(folder):
    assert [s.id for s in load_dataset("folder", str(folder), split="train")] == ["img2"]


def test_bad_inputs_name_the_file(folder):
    _png(folder / "masks" / "img1.png", np.zeros((8, 8), np.uint8))
    ds = load_dataset("folder", str(folder))
    with pytest.raises(AuditInputError, match=r"img1\.png: mask of size \(8, 8\) does not match image img1\.png"):
        ds[1]
    (folder / "labels.csv").write_text("image,label\nimg0.png,yes\n")
    with pytest.raises(AuditInputError, match=r"labels\.csv: row 2: label 'yes' is not an integer"):
        load_dataset("folder", str(folder))
    (folder / "images" / "img0.png").write_bytes(b"garbage")
    (folder / "labels.csv").unlink()
    with pytest.raises(AuditInputError, match=r"img0\.png: cannot read image"):
        load_dataset("folder", str(folder))[0]
    with pytest.raises(AuditUsageError, match="no images/ folder"):
        load_dataset("folder", str(folder / "nowhere"))


@pytest.mark.parametrize("row,needle", [
    ("../../outside/img0.png,0", "image '../../outside/img0.png' is not a file name in images/"),
    ("sub/img0.png,0", "image 'sub/img0.png' is not a file name in images/"),
    ("img9.png,1", "row 6: no image 'img9.png' in"),
    ("img0.jpg,0", "row 6: no image 'img0.jpg' in"),
    ("img0.png,0,test", "image 'img0.png' is listed again (row 2) with another label or split"),
])
def test_a_labels_row_never_silently_relabels_or_drops_an_image(folder, row, needle):
    """A path in labels.csv used to lose its directory and relabel images/img0.png; a row naming a missing
    image (or img0.jpg beside img0.png) used to vanish or relabel img0; all now name the file and row, or are
    listed skips.  A refused row that names no image of the folder leaves img0 to its own row."""
    labels = folder / "labels.csv"
    labels.write_text(labels.read_text() + row + "\n")
    with pytest.raises(AuditInputError, match=re.escape(needle)) as exc:
        load_dataset("folder", str(folder))
    assert str(labels) in str(exc.value) and "\n" not in str(exc.value)
    ds = load_dataset("folder", str(folder), skip_bad=True)
    assert any(needle in s["reason"] for s in ds.skipped)
    if "again" in needle:  # a bad row about img0 leaves img0 out, listed
        assert "img0" not in {s.id for s in ds} and any(s["id"] == "img0" for s in ds.skipped)
    else:
        assert next(s for s in ds if s.id == "img0").label == 1


def test_a_boxes_row_for_a_missing_image_and_ambiguous_ids_are_errors(folder):
    boxes = folder / "boxes.csv"
    boxes.write_text(boxes.read_text() + "img7.png,1,1,2,2\n")
    with pytest.raises(AuditInputError, match=r"boxes\.csv: row 4: no image 'img7\.png'"):
        load_dataset("folder", str(folder))
    boxes.write_text("image,x,y,width,height\n")
    _png(folder / "images" / "img1.bmp", np.zeros((40, 50), np.uint8))
    with pytest.raises(AuditInputError, match=r"'img1\.bmp', 'img1\.png' share the id 'img1'"):
        load_dataset("folder", str(folder))
    ds = load_dataset("folder", str(folder), skip_bad=True)
    assert "img1" not in {s.id for s in ds} and len(ds) == 3


@pytest.mark.parametrize("shape,needle", [
    ((1, 1), "image 1x1 would be stretched 128 times to the model's input 128x128"),
    ((20, 24), "image 20x24 would be stretched 6 times"),
    ((40, 200), "image 40x200 has an aspect ratio 5.0 times off the model's input 128x128"),
])
def test_degenerate_images_are_never_silently_stretched(tmp_path, shape, needle):
    """A 1x1 image with a 1x1 mask used to become a lesion covering the whole grid and score AP 1.0."""
    rng = np.random.default_rng(1)
    for i in range(3):
        _png(tmp_path / "images" / f"ok{i}.png", (rng.random((96, 96)) * 255).astype(np.uint8))
        _png(tmp_path / "masks" / f"ok{i}.png", np.pad(np.full((8, 8), 255, np.uint8), 44))
    _png(tmp_path / "images" / "tiny.png", np.full(shape, 200, np.uint8))
    _png(tmp_path / "masks" / "tiny.png", np.full(shape, 255, np.uint8))
    ds = load_dataset("folder", str(tmp_path))
    with pytest.raises(AuditInputError, match=re.escape(needle)) as exc:
        ds.select(4, (128, 128), lesion=True)
    assert "tiny.png" in str(exc.value)
    ds = load_dataset("folder", str(tmp_path), skip_bad=True)
    _, samples = ds.select(4, (128, 128), lesion=True)
    assert sorted(s.id for s in samples) == ["ok0", "ok1", "ok2"]
    assert [s["id"] for s in ds.skipped] == ["tiny"] and needle in ds.skipped[0]["reason"]


def test_positives_without_a_lesion_are_listed_not_silently_left_out(folder):
    """img2 is labelled 1 but has neither mask nor box: utility cannot use it, and must say so."""
    from saliency_audit.report.warnings import collect

    ds = load_dataset("folder", str(folder))
    _, samples = ds.select(4, (40, 50), lesion=True)
    assert sorted(s.id for s in samples) == ["img0", "img3"]
    assert ds.unlocalised == ["img2"]
    ds.select(4, (40, 50), lesion=True)
    assert ds.unlocalised == ["img2"]  # recorded once
    (warning,) = collect({"results": [], "dataset": {"positives_without_lesion": {"count": 1, "ids": ["img2"]}}})
    assert warning.startswith("1 positive image(s) have no lesion mask or box") and "img2" in warning


def test_the_evidence_counts_positives_without_a_lesion(folder):
    from saliency_audit import Audit

    audit = Audit(model="demo", dataset="folder", data_root=str(folder), report_dir=None)
    audit.samples.select(4, lesion=True)
    assert audit.evidence()["dataset"]["positives_without_lesion"] == {"count": 1, "ids": ["img2"]}
