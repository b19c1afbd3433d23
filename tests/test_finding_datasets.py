"""Datasets of several findings, built once per finding: NIH ChestX-ray14, VinDr-CXR box tables, CheXlocalize.

Every dataset is written here, small: 64-pixel PNG, JPEG and DICOM images and tables or JSON files in the
published layouts, with masks and boxes whose pixels are known, so each finding's labels and truth are
checked pixel for pixel.
"""
import json

import numpy as np
import pytest
from PIL import Image

from saliency_audit.common.errors import AuditInputError, AuditUsageError
from saliency_audit.data import check_options, load_dataset
from saliency_audit.data.chexlocalize import CheXlocalizeDataset, read_segmentations
from saliency_audit.data.dicom import write_dicom
from saliency_audit.data.nih import NIHDataset
from saliency_audit.data.registry import DATASETS
from saliency_audit.data.vindr import BoxRow, VinDrDataset, read_box_table

from .test_cocorle import coco_encode

H, W = 48, 64


def _png(path, seed=0, size=(H, W)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _rect(x0, y0, x1, y1, shape=(H, W)):
    m = np.zeros(shape, dtype=bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def _by_id(ds):
    return {ds.sample_id(i): i for i in range(len(ds))}


def test_registered_with_a_finding_axis():
    for name in ("nih", "vindr", "chexlocalize"):
        assert DATASETS[name].finding and hasattr(DATASETS[name].adapter_class(), "findings")
    with pytest.raises(AuditUsageError, match="--finding applies to --dataset=nih or --dataset=demo-findings or "
                                              "--dataset=vindr or --dataset=chexlocalize, not --dataset=rsna"):
        check_options("rsna", finding="Nodule")


# == NIH ChestX-ray14 ===================================================================================


@pytest.fixture
def nih(tmp_path):
    for k, name in enumerate("abc"):
        _png(tmp_path / "images_001" / "images" / f"{name}.png", k)
    (tmp_path / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "a.png,Nodule,4,5,10,8\n"
        "a.png,Mass,30,20,12,12\n"
        "b.png,Mass,2,2,6,6\n"
        "c.png,Infiltrate,10,10,20,20\n")
    return tmp_path


def test_nih_findings_and_per_finding_truth(nih):
    assert NIHDataset.findings(str(nih)) == ["Infiltrate", "Mass", "Nodule"]
    nodule = load_dataset("nih", str(nih), finding="nodule")
    at = _by_id(nodule)
    a = nodule[at["a"]]
    assert a.label == 1 and a.boxes == ((4, 5, 13, 12),)  # the Mass box of a is not Nodule truth
    assert a.truth().sum() == 10 * 8
    for other in ("b", "c"):  # no Data_Entry: boxed only for another finding is a negative
        assert nodule.describe(at[other]) == {"id": other, "label": 0, "has_lesion": False, "finding": "Nodule"}
        assert nodule[at[other]].truth() is None
    mass = load_dataset("nih", str(nih), finding="MASS")
    assert {s.id: (s.label, s.boxes) for s in mass} == {"a": (1, ((30, 20, 41, 31),)), "b": (1, ((2, 2, 7, 7),)),
                                                         "c": (0, None)}
    infiltration = load_dataset("nih", str(nih), finding="Infiltration")  # Data_Entry's spelling of Infiltrate
    assert infiltration.finding == "Infiltrate" and [s.id for s in infiltration if s.label] == ["c"]
    with pytest.raises(AuditUsageError, match=r"--finding=Effusion: no boxes of that finding in "
                                              r"BBox_List_2017.csv \(Mass \(2\), Nodule \(1\), Infiltrate \(1\)\)"):
        load_dataset("nih", str(nih), finding="Effusion")


def test_nih_data_entry_labels_and_a_bad_box_of_another_finding(nih):
    (nih / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\na.png,Nodule|Mass\nb.png,Mass\n"
                                             "c.png,No Finding\n")
    with open(nih / "BBox_List_2017.csv", "a") as fh:
        fh.write("b.png,Mass,1,1,0,5\n")  # row 6: zero width
    nodule = load_dataset("nih", str(nih), finding="Nodule")  # a Mass row is not read for Nodule
    assert {s.id: s.label for s in nodule} == {"a": 1, "b": 0, "c": 0}
    with pytest.raises(AuditInputError, match=r"BBox_List_2017.csv: row 6: box width and height must be positive"):
        load_dataset("nih", str(nih), finding="Mass")
    mass = load_dataset("nih", str(nih), finding="Mass", skip_bad=True)
    assert sorted(s.id for s in mass) == ["a", "c"] and [s["id"] for s in mass.skipped] == ["b"]


# == VinDr-CXR ==========================================================================================

TRAIN = """image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max
img1,Nodule/Mass,8,R1,10,10,20,20
img1,Nodule/Mass,8,R2,15.5,12,30,25
img1,Aortic enlargement,0,R2,30,5,40,15
img1,No finding,14,R3,,,,
img2,Aortic enlargement,0,R1,1,1,11,6
img2,No finding,14,R2,,,,
img3,No finding,14,R1,,,,
img3,No finding,14,R2,,,,
"""


@pytest.fixture
def vindr(tmp_path):
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "annotations_train.csv").write_text(TRAIN)
    (ann / "annotations_test.csv").write_text("image_id,class_name,x_min,y_min,x_max,y_max\n"
                                              "img4,Nodule/Mass,0,0,4,4\nimg4,Nodule/Mass,40,30,50,40\n")
    (tmp_path / "train").mkdir()
    pixels = np.random.default_rng(1).integers(0, 4096, (H, W), dtype=np.uint16)
    write_dicom(tmp_path / "train" / "img1.dicom", pixels, bits_stored=12)
    write_dicom(tmp_path / "train" / "img2.dicom", pixels, bits_stored=12)
    _png(tmp_path / "train" / "img3.png", 3)
    _png(tmp_path / "test" / "img4.png", 4)
    return tmp_path


def test_vindr_union_of_readers_per_finding(vindr):
    assert VinDrDataset.findings(str(vindr)) == ["Aortic enlargement", "Nodule/Mass"]  # No finding is no finding
    ds = load_dataset("vindr", str(vindr), finding="nodule/mass")
    at = _by_id(ds)
    img1 = ds[at["img1"]]
    assert img1.image.shape == (1, H, W) and img1.label == 1  # .dicom read as DICOM
    assert img1.boxes == ((10, 10, 19, 19), (15, 12, 29, 24))  # R1's and R2's; not R2's Aortic enlargement
    assert np.array_equal(img1.truth(), _rect(10, 10, 19, 19) | _rect(15, 12, 29, 24))
    assert img1.truth().sum() == 100 + 15 * 13 - 5 * 8  # the union: the overlap once
    for negative in ("img2", "img3"):  # boxed for another finding only, or normal for every reader
        assert ds[at[negative]].label == 0 and ds[at[negative]].truth() is None
    assert ds[at["img4"]].boxes == ((0, 0, 3, 3), (40, 30, 49, 39))  # the test table: no readers
    assert {ds.describe(i)["split"] for i in range(len(ds))} == {"train", "test"}
    assert ds.info()["readers"] == ["R1", "R2", "R3"] and "union" in ds.info()["truth"]
    aortic = load_dataset("vindr", str(vindr), finding="Aortic_Enlargement")
    assert {s.id: s.boxes for s in aortic if s.label} == {"img1": ((30, 5, 39, 14),), "img2": ((1, 1, 10, 5),)}
    test_only = load_dataset("vindr", str(vindr), finding="Nodule/Mass", split="test")
    assert [s.id for s in test_only] == ["img4"]
    with pytest.raises(AuditUsageError, match=r"--finding=Effusion: no ground truth of that finding in "
                                              r"annotations_train.csv and annotations_test.csv \(it has "
                                              r"Aortic enlargement \(2 images\), Nodule/Mass \(2 images\)\)"):
        load_dataset("vindr", str(vindr), finding="Effusion")
    with pytest.raises(AuditUsageError, match="--dataset=vindr needs --finding"):
        load_dataset("vindr", str(vindr))


def test_vindr_one_reader(vindr):
    r1 = VinDrDataset(str(vindr), finding="Nodule/Mass", reader="R1")
    assert sorted(r1.entries[i].id for i in range(len(r1))) == ["img1", "img2", "img3"]  # what R1 read
    assert {s.id: s.boxes for s in r1} == {"img1": ((10, 10, 19, 19),), "img2": None, "img3": None}
    assert r1.info()["reader"] == "R1"
    assert VinDrDataset.findings(str(vindr), reader="R3") == []
    with pytest.raises(AuditUsageError, match=r"reader=R9: no such reader in .* \(readers: R1, R2, R3\)"):
        VinDrDataset(str(vindr), finding="Nodule/Mass", reader="R9")


def test_vindr_read_box_table(vindr):
    rows = read_box_table(vindr / "annotations" / "annotations_train.csv")
    assert rows[1] == BoxRow("img1", "Nodule/Mass", "R2", (15, 12, 29, 24),
                             f"{vindr / 'annotations' / 'annotations_train.csv'}: row 3")
    assert rows[3].box is None and rows[3].finding == "No finding" and len(rows) == 8
    assert read_box_table(vindr / "annotations" / "annotations_test.csv")[0].reader is None


@pytest.mark.parametrize("row,message", [
    ("img2,Nodule/Mass,8,R1,20,10,10,20", r"row 11: box \(20, 10\)-\(10, 20\) is empty or reversed"),
    ("img2,Nodule/Mass,8,R1,1,2,3,", r"row 11: a 'Nodule/Mass' box needs x_min, y_min, x_max and y_max "
                                     r"\(empty: y_max\)"),
    ("img2,No finding,14,R3,1,2,3,4", "row 11: a 'No finding' row has coordinates"),
    ("img2,Nodule/Mass,8,R1,1,2,3,nan", "row 11: y_max 'nan' is not a finite number"),
    ("img2,Nodule/Mass,8,R2,1,2,3,4", r"row 11: reader 'R2' marks image 'img2' both 'No finding' and with a box "
                                      r"\(row 7\)"),
    ("../img2,Nodule/Mass,8,R1,1,2,3,4", "row 11: image '../img2' is not a file name"),
])
def test_vindr_bad_rows(vindr, row, message):
    table = vindr / "annotations" / "annotations_train.csv"
    with open(table, "a") as fh:
        fh.write("\n" + row + "\n")  # an empty line between: row numbers count it, as a spreadsheet does
    with pytest.raises(AuditInputError, match=f"annotations_train.csv: {message}") as err:
        load_dataset("vindr", str(vindr), finding="Nodule/Mass")
    assert "\n" not in str(err.value)
    ds = load_dataset("vindr", str(vindr), finding="Nodule/Mass", skip_bad=True)
    bad = row.split(",")[0]
    assert bad not in {s.id for s in ds} and [s["id"] for s in ds.skipped] == [bad]
    assert {s.id for s in ds} == {"img1", "img2", "img3", "img4"} - {bad}
    assert VinDrDataset.findings(str(vindr)) == ["Aortic enlargement", "Nodule/Mass"]


def test_vindr_missing_image_and_no_table(vindr, tmp_path):
    (vindr / "train" / "img3.png").unlink()
    ds = load_dataset("vindr", str(vindr), finding="Nodule/Mass")
    with pytest.raises(AuditInputError, match=r"annotations_train.csv: row 8: image 'img3' is not found under"):
        ds[_by_id(ds)["img3"]]
    idx, samples = load_dataset("vindr", str(vindr), finding="Nodule/Mass", skip_bad=True).select(4)
    assert len(samples) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(AuditUsageError, match="no box table"):
        load_dataset("vindr", str(tmp_path / "empty"), finding="Nodule/Mass")


# == CheXlocalize =======================================================================================

A, B, C = "patient64541_study1_view1_frontal", "patient64542_study1_view1_frontal", "patient64700_study2_view2_lateral"


def _seg(mask):
    return {"size": list(mask.shape), "counts": coco_encode(mask)[0]}


@pytest.fixture
def cxl(tmp_path):
    valid = tmp_path / "CheXpert-v1.0" / "valid"
    _png(valid / "patient64541" / "study1" / "view1_frontal.png", 1)
    (valid / "patient64542" / "study1").mkdir(parents=True)
    Image.fromarray(np.full((H, W), 128, np.uint8)).save(valid / "patient64542" / "study1" / "view1_frontal.jpg")
    _png(tmp_path / "CheXpert-v1.0" / "test" / "patient64700" / "study2" / "view2_lateral.png", 3)
    yy, xx = np.mgrid[:H, :W]
    edema = (yy - 20) ** 2 / 100 + (xx - 30) ** 2 / 225 <= 1
    empty = np.zeros((H, W), bool)
    (tmp_path / "gt_segmentations_val.json").write_text(json.dumps({
        A: {"Edema": _seg(edema), "Cardiomegaly": _seg(_rect(5, 6, 20, 30)), "Atelectasis": _seg(empty)},
        B: {"Edema": _seg(empty), "Cardiomegaly": _seg(_rect(0, 0, 63, 47)), "Atelectasis": _seg(empty)}}))
    (tmp_path / "gt_annotations_test.json").write_text(json.dumps({
        C: {"img_size": [H, W],
            "Edema": [[[2, 3], [10, 3], [10, 8], [2, 8]], [[40.0, 30.0], [50.5, 30.0], [40.0, 40.0]]]}}))
    (tmp_path / "hb_segmentations_test.json").write_text(json.dumps({C: {"Edema": _seg(_rect(1, 1, 9, 9))}}))
    return tmp_path, edema


def test_chexlocalize_findings_and_masks(cxl):
    root, edema = cxl
    assert CheXlocalizeDataset.findings(str(root)) == ["Cardiomegaly", "Edema"]  # Atelectasis: empty everywhere
    ds = load_dataset("chexlocalize", str(root), finding="edema")
    at = _by_id(ds)
    a, b, c = ds[at[A]], ds[at[B]], ds[at[C]]
    assert a.label == 1 and np.array_equal(a.mask, edema)  # the COCO RLE, decoded at native size
    assert b.label == 0 and b.mask is None and b.image.shape == (1, H, W)  # an all-zero mask: Edema absent
    # two contours, outline and inside: the rectangle's 9x6 pixels and the triangle's
    triangle = c.mask & ~_rect(2, 3, 10, 8)
    assert c.label == 1 and (c.mask & _rect(2, 3, 10, 8)).sum() == 9 * 6
    assert 60 <= triangle.sum() <= 75 and triangle[31, 41] and not triangle[39, 49]  # area 52.5 + the outline
    assert [ds.describe(at[i])["split"] for i in (A, B, C)] == ["val", "val", "test"]
    assert ds.info() == {"finding": "Edema", "truth": {"gt_annotations_test.json": "annotations",
                                                        "gt_segmentations_val.json": "segmentations"}}
    cardio = load_dataset("chexlocalize", str(root), finding="Cardiomegaly", split="val")
    assert {s.id: int(s.mask.sum()) for s in cardio} == {A: 16 * 25, B: H * W}
    assert load_dataset("chexlocalize", str(root), finding="Edema").manifest_entry(at[A])["truth_sha256"] != \
        cardio.manifest_entry(_by_id(cardio)[A])["truth_sha256"]
    with pytest.raises(AuditUsageError, match=r"--finding=Pneumothorax: no ground truth of that finding in "
                                              r"gt_annotations_test.json and gt_segmentations_val.json \(it has "
                                              r"Cardiomegaly \(2 images\), Edema \(2 images\)\)"):
        load_dataset("chexlocalize", str(root), finding="Pneumothorax")


def test_chexlocalize_human_benchmark_reader(cxl):
    root, _ = cxl
    hb = read_segmentations(root / "hb_segmentations_test.json")  # never the default ground truth
    assert np.array_equal(hb[C]["Edema"].mask(), _rect(1, 1, 9, 9)) and not hb[C]["Edema"].empty()
    gt = read_segmentations(root / "gt_annotations_test.json")
    assert gt[C]["Edema"].size == (H, W) and gt[C]["Edema"].mask().sum() > 54
    only_hb = load_dataset("chexlocalize", str(root), finding="Edema", annotations="hb_segmentations_test.json")
    assert [s.id for s in only_hb] == [C] and only_hb[0].mask.sum() == 81


@pytest.mark.parametrize("entry,message", [
    ({"size": [H, W], "counts": "0a{"}, r"finding 'Edema': counts hold '\{', not a compressed RLE"),
    ({"size": [H, 0], "counts": "0"}, r"finding 'Edema': size must be \[height, width\]"),
    ({"size": [H, W], "counts": "1P"}, r"finding 'Edema': counts end inside the value of run 2"),
])
def test_chexlocalize_malformed_entries(cxl, entry, message):
    root, _ = cxl
    path = root / "gt_segmentations_val.json"
    data = json.loads(path.read_text())
    data[B]["Edema"] = entry
    path.write_text(json.dumps(data))
    with pytest.raises(AuditInputError, match=f"gt_segmentations_val.json: image '{B}', {message}") as err:
        load_dataset("chexlocalize", str(root), finding="Edema")
    assert "\n" not in str(err.value)
    ds = load_dataset("chexlocalize", str(root), finding="Edema", skip_bad=True)
    assert {s.id for s in ds} == {A, C} and [s["id"] for s in ds.skipped] == [B]


def test_chexlocalize_errors_at_load_and_skip_bad(cxl):
    root, edema = cxl
    path = root / "gt_segmentations_val.json"
    data = json.loads(path.read_text())
    data[A]["Edema"]["counts"] += coco_encode(edema)[0][-1]  # one run too many: covers more than 48x64 pixels
    data[B]["Edema"] = _seg(_rect(0, 0, 5, 5, shape=(H + 1, W)))  # a mask of another size than the image
    path.write_text(json.dumps(data))
    ds = load_dataset("chexlocalize", str(root), finding="Edema")
    with pytest.raises(AuditInputError, match=r"gt_segmentations_val.json: image 'patient64541.*', finding 'Edema': "
                                              r"runs cover \d+ pixels, not the 48x64"):
        ds[_by_id(ds)[A]]
    with pytest.raises(AuditInputError, match=r"mask of size 49x64 does not match the image 'view1_frontal.jpg' "
                                              r"of size 48x64"):
        ds[_by_id(ds)[B]]
    ds = load_dataset("chexlocalize", str(root), finding="Edema", skip_bad=True)
    idx, samples = ds.select(3, lesion=True)
    assert [s.id for s in samples] == [C] and sorted(s["id"] for s in ds.skipped) == [A, B]


def test_chexlocalize_layout_errors(cxl, tmp_path):
    root, _ = cxl
    (root / "CheXpert-v1.0" / "test" / "patient64700" / "study2" / "view2_lateral.png").unlink()
    ds = load_dataset("chexlocalize", str(root), finding="Edema")
    with pytest.raises(AuditInputError, match=r"gt_annotations_test.json: image 'patient64700_study2_view2_lateral': "
                                              r"no image patient64700/study2/view2_lateral.jpg under"):
        ds[_by_id(ds)[C]]
    (tmp_path / "none").mkdir()
    with pytest.raises(AuditUsageError, match=r"no gt_segmentations_<split>.json or gt_annotations_<split>.json"):
        load_dataset("chexlocalize", str(tmp_path / "none"), finding="Edema")
    with pytest.raises(AuditUsageError, match="annotations=nope.json: no such file"):
        load_dataset("chexlocalize", str(root), finding="Edema", annotations="nope.json")


# == end to end: the demo world in these layouts, audited per finding ===================================


def _audit(tmp_path, dataset, root, finding):
    from saliency_audit import Audit, AuditConfig

    cfg = AuditConfig(sequential=False, n_images=8, cache_dir=str(tmp_path / "maps"))
    audit = Audit(model="demo", dataset=dataset, data_root=str(root), config=cfg,
                  report_dir=tmp_path / f"rep-{finding}", dataset_options={"finding": finding})
    result = audit.utility("gradcam")
    return result, json.loads((tmp_path / f"rep-{finding}" / "evidence.json").read_text())["dataset"]


@pytest.mark.slow
def test_chexlocalize_audit_per_finding(tmp_path):
    """The demo's lesion masks as CheXlocalize's Nodule, and a fixed rectangle the model never saw as its
    Cardiomegaly: the audit of one finding uses that finding's masks only, and can fail."""
    import shutil

    from saliency_audit.demo.export import export_demo

    src = export_demo("folder", tmp_path / "src", n=24)
    root, segs = tmp_path / "cxl", {}
    for k, p in enumerate(sorted((src / "images").glob("*.png"))):
        image_id, folder = f"patient{1000 + k}_study1_view1_frontal", root / "valid" / f"patient{1000 + k}" / "study1"
        folder.mkdir(parents=True)
        shutil.copy(p, folder / "view1_frontal.png")
        nodule = np.asarray(Image.open(src / "masks" / p.name)) > 0 if (src / "masks" / p.name).exists() else \
            np.zeros((256, 256), bool)
        decoy = _rect(90, 115, 165, 190, shape=(256, 256)) if k % 2 else np.zeros((256, 256), bool)
        segs[image_id] = {"Nodule": _seg(nodule), "Cardiomegaly": _seg(decoy)}
    (root / "gt_segmentations_val.json").write_text(json.dumps(segs))
    assert CheXlocalizeDataset.findings(str(root)) == ["Cardiomegaly", "Nodule"]
    nodule, ev = _audit(tmp_path, "chexlocalize", root, "nodule")
    assert nodule.passed and nodule.n == 8, nodule.explain()
    assert ev["finding"] == "Nodule" and ev["truth"] == {"gt_segmentations_val.json": "segmentations"}
    decoy, _ = _audit(tmp_path, "chexlocalize", root, "Cardiomegaly")
    assert decoy.verdict == "fail", decoy.explain()


@pytest.mark.slow
def test_vindr_audit_with_two_readers(tmp_path):
    """The demo's nodule boxes drawn by two readers (one a little larger) and another finding's boxes: the
    Nodule/Mass audit passes on the union of the readers' boxes, and records the readers."""
    import csv
    import shutil

    from saliency_audit.demo.export import export_demo

    src = export_demo("nih", tmp_path / "src", n=24)
    root = tmp_path / "vindr"
    (root / "train").mkdir(parents=True)
    rows = ["image_id,rad_id,class_name,x_min,y_min,x_max,y_max"]
    with open(src / "BBox_List_2017.csv", newline="") as fh:
        boxes = [r for r in csv.reader(fh)][1:]
    for p in sorted(src.rglob("*.png")):
        shutil.copy(p, root / "train" / p.name)
        mine = [r for r in boxes if r[0] == p.name]
        for name, finding, x, y, w, h, *_ in mine:
            x, y, w, h = map(float, (x, y, w, h))
            if finding == "Nodule":
                rows += [f"{p.stem},R1,Nodule/Mass,{x},{y},{x + w},{y + h}",
                         f"{p.stem},R2,Nodule/Mass,{max(x - 2, 0)},{max(y - 2, 0)},{x + w + 2},{y + h + 2}"]
            else:
                rows.append(f"{p.stem},R2,Cardiomegaly,{x},{y},{x + w},{y + h}")
        if not mine:
            rows += [f"{p.stem},R1,No finding,,,,", f"{p.stem},R2,No finding,,,,"]
    (root / "annotations_train.csv").write_text("\n".join(rows) + "\n")
    result, ev = _audit(tmp_path, "vindr", root, "Nodule/Mass")
    assert result.passed and result.n == 8, result.explain()
    assert ev["readers"] == ["R1", "R2"] and ev["tables"] == ["annotations_train.csv"]
