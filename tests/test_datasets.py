"""SIIM, RSNA, NIH and folder adapters on datasets generated in their published layouts.

Every layout is written from the demo world (``saliency_audit.demo.export``),
upscaled 2x, so the ground truth is known exactly: after loading, masks and
boxes must equal the upscaled demo truth pixel for pixel, and after resizing
back to the model's 128-pixel input they must equal the demo's own.
"""
import json
import shutil

import numpy as np
import pytest
import torch

from saliency_audit.data import load_dataset
from saliency_audit.data.demo import DemoDataset
from saliency_audit.data.resize import resize_sample
from saliency_audit.demo.export import export_demo
from saliency_audit.common.errors import AuditInputError, AuditUsageError

pytest_plugins = ["pytester"]
N = 24
DEMO = DemoDataset(n=N)


def _demo(sample_id: str):
    return DEMO[int(sample_id.split(".")[-1].split("-")[-1].split("_")[0])]


def _up(a, k=2):
    return np.kron(a, np.ones((k, k), a.dtype))


def _check_exact(ds, *, mask_truth: bool):
    assert len(ds) == N
    for s in ds:
        d = _demo(s.id)
        assert s.image.shape == (1, 256, 256)
        assert np.abs(s.image[0].numpy() - _up(d.image[0].numpy())).max() <= 0.5 / 255 + 1e-6
        if mask_truth:
            assert s.mask is not None and np.array_equal(s.mask, _up(d.mask))
        else:
            assert s.mask is None
            assert s.boxes == (tuple((2 * x0, 2 * y0, 2 * x1 + 1, 2 * y1 + 1) for x0, y0, x1, y1 in d.boxes) or None)
        assert s.label == d.label and s.has_lesion == bool(d.mask.any())
        small = resize_sample(s, (128, 128))
        if mask_truth:
            assert np.array_equal(small.mask, d.mask)
        else:
            assert small.boxes == (d.boxes or None)
            if d.boxes:
                assert np.array_equal(small.truth(), _boxes_mask(d))
            else:
                assert small.truth() is None
        assert small.meta["native_size"] == [256, 256]


def _boxes_mask(d):
    from saliency_audit.data import boxes_to_mask

    return boxes_to_mask(d.boxes, (128, 128))


@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_siim_dicom_and_rle_load_pixel_exact(tmp_path, form):
    root = export_demo("siim", tmp_path / "siim", n=N, rle_form=form, monochrome1_every=3)
    assert (root / ("train-rle.csv" if form == "relative" else "stage_2_train.csv")).is_file()
    ds = load_dataset("siim", str(root))
    assert ds.rle_form == form  # detected from the rows, not from the file name
    _check_exact(ds, mask_truth=True)


def test_siim_png_variant(tmp_path):
    _check_exact(load_dataset("siim", str(export_demo("siim-png", tmp_path / "p", n=N))), mask_truth=True)


def test_rsna_boxes_scale_and_rasterise_exactly(tmp_path):
    root = export_demo("rsna", tmp_path / "rsna", n=N)
    (root / "stage_2_detailed_class_info.csv").write_text("patientId,class\n" + "".join(
        f"{e},Normal\n" for e in (p.stem for p in (root / "stage_2_train_images").iterdir())))
    ds = load_dataset("rsna", str(root))
    _check_exact(ds, mask_truth=False)
    assert ds.describe(0)["class"] == "Normal"


def test_nih_finding_selects_boxes_and_labels(tmp_path):
    root = export_demo("nih", tmp_path / "nih", n=N)
    with pytest.raises(AuditUsageError, match=r"needs --finding: the box list has Nodule \(\d+\), Cardiomegaly"):
        load_dataset("nih", str(root))
    with pytest.raises(AuditUsageError, match="--finding=Mass: no boxes of that finding"):
        load_dataset("nih", str(root), finding="Mass")
    ds = load_dataset("nih", str(root), finding="nodule")
    _check_exact(ds, mask_truth=False)  # the Cardiomegaly boxes are not Nodule truth
    cardio = load_dataset("nih", str(root), finding="Cardiomegaly")
    assert sum(cardio.describe(i)["label"] for i in range(len(cardio))) == len([k for k in range(N) if k % 3 == 0
                                                                               and not DEMO[k].label])


def test_folder_with_dicom_files_from_pydicom(tmp_path):
    import os

    import pydicom

    src = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    (tmp_path / "images").mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm"):
        shutil.copy(os.path.join(src, name), tmp_path / "images" / name)
    (tmp_path / "boxes.csv").write_text("image,x,y,width,height\nCT_small.dcm,10,20,30,8\nMR_small.dcm,0,0,64,64\n")
    ds = load_dataset("folder", str(tmp_path))
    by_id = {s.id: s for s in ds}
    assert set(by_id) == {"CT_small", "MR_small", "MR_small_RLE"}
    assert torch.equal(by_id["MR_small"].image, by_id["MR_small_RLE"].image)
    ct = by_id["CT_small"]
    assert ct.image.shape == (1, 128, 128) and ct.boxes == ((10, 20, 39, 27),)
    assert ct.truth().sum() == 30 * 8 and ct.label == 1 and by_id["MR_small_RLE"].label == 0
    assert resize_sample(by_id["MR_small"], (32, 32)).boxes == ((0, 0, 31, 31),)


def test_compressed_dicoms_decode(tmp_path):
    ds = load_dataset("siim", str(export_demo("siim", tmp_path / "j", n=6, compression="jpeg", monochrome1_every=2)))
    for s in ds:
        assert np.abs(s.image[0].numpy() - _up(_demo(s.id).image[0].numpy())).mean() < 0.02
        assert np.array_equal(s.mask, _up(_demo(s.id).mask))


def test_splits_qtim_file_and_folder_column(tmp_path):
    root = export_demo("folder", tmp_path / "f", n=N)
    assert {s.id for s in load_dataset("folder", str(root), split="val")} == {f"{k:05d}" for k in range(0, N, 4)}
    siim = export_demo("siim", tmp_path / "s", n=8)
    ids = sorted(load_dataset("siim", str(siim)).entries, key=lambda e: e.id)
    split_csv = tmp_path / "splits.csv"
    split_csv.write_text(",Image_ID,Split\n" + "".join(f"{k},{e.id}.dcm,{'test' if k < 3 else 'train'}\n"
                                                      for k, e in enumerate(ids)))
    test = load_dataset("siim", str(siim), split="test", split_file=str(split_csv))
    assert sorted(e.id for e in test.entries) == [e.id for e in ids[:3]]
    with pytest.raises(AuditUsageError, match=r"--split=tune: no images in that split \(splits found: test, train\)"):
        load_dataset("siim", str(siim), split="tune", split_file=str(split_csv))
    with pytest.raises(AuditUsageError, match="has no split column; pass --split-file"):
        load_dataset("siim", str(siim), split="test")


@pytest.mark.parametrize("fmt", ["folder", "siim", "rsna", "nih"])
def test_export_train_split_is_the_demo_training_set_and_apart_from_the_audited_images(tmp_path, fmt):
    from saliency_audit.demo.world import make_split

    root = export_demo(fmt, tmp_path / fmt, n=6, n_train=5, scale=1)
    kw = {"finding": "Nodule"} if fmt == "nih" else {}
    split_file = None if fmt == "folder" else str(root / "splits.csv")
    train = load_dataset(fmt, str(root), split="train", split_file=split_file, **kw)
    test = load_dataset(fmt, str(root), split="test", split_file=split_file, **kw)
    val = load_dataset(fmt, str(root), split="val", split_file=split_file, **kw)
    assert len(train) == 5 and len(test) + len(val) == 6
    assert not {e.id for e in train.entries} & {e.id for e in test.entries + val.entries}
    truth = make_split("train", 5)
    for s in train:  # the images the demo models learn from, with their labels and lesions
        k = sorted(e.id for e in train.entries).index(s.id)
        assert s.label == truth[k].label
        assert np.abs(s.image[0].numpy() - truth[k].image).max() <= 0.5 / 255 + 1e-6
        if fmt == "folder" and truth[k].label:
            assert np.array_equal(s.mask, truth[k].mask)


def test_export_demo_command(tmp_path, capsys):
    from saliency_audit.cli import main

    assert main(["export-demo", "folder", str(tmp_path / "d"), "--n", "4", "--train", "3"]) == 0
    assert "4 audited and 3 training images" in capsys.readouterr().out
    rows = (tmp_path / "d" / "labels.csv").read_text().splitlines()
    assert rows[0] == "image,label,split" and [r.split(",")[2] for r in rows[1:]].count("train") == 3
    assert main(["export-demo", "folder", str(tmp_path / "e"), "--train", "-1"]) == 2
    assert "--train must be >= 0" in capsys.readouterr().err
    # a folder that holds files (the user's own data?) is refused in one line, untouched; --force writes into it
    before = {p: p.read_bytes() for p in (tmp_path / "d").rglob("*") if p.is_file()}
    assert main(["export-demo", "siim", str(tmp_path / "d"), "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "d") in err and "--force" in err
    assert {p: p.read_bytes() for p in (tmp_path / "d").rglob("*") if p.is_file()} == before
    assert main(["export-demo", "folder", str(tmp_path / "d"), "--n", "2", "--force"]) == 0
    (tmp_path / "file").write_text("x")
    assert main(["export-demo", "folder", str(tmp_path / "file")]) == 2 and "not a directory" in capsys.readouterr().err


def test_selection_is_deterministic_and_stratified(tmp_path):
    root = export_demo("folder", tmp_path / "f", n=N)
    ds = load_dataset("folder", str(root))
    order = [ds.sample_id(i) for i in ds.order()]
    ds.entries.reverse()  # listing order must not matter
    assert [ds.sample_id(i) for i in ds.order()] == order
    labels = [ds.describe(i)["label"] for i in ds.stratified_indices(8)]
    share = sum(DEMO[k].label for k in range(N)) / N
    assert abs(sum(labels) - 8 * share) <= 1
    idx, samples = ds.select(5, (128, 128), lesion=True)
    assert len(samples) == 5 and all(s.truth().any() and s.image.shape == (1, 128, 128) for s in samples)
    assert [ds.sample_id(i) for i in idx] == [i for i in order if DEMO[int(i)].label][:5]


# -- bad input ---------------------------------------------------------------------------------
def test_malformed_rle_row_is_named_and_can_be_skipped(tmp_path):
    root = export_demo("siim", tmp_path / "s", n=8)
    csv = root / "train-rle.csv"
    lines = csv.read_text().splitlines()
    bad_id = lines[3].split(",")[0]
    lines[3] = f"{bad_id}, 12 x 5 7"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(AuditInputError, match=r"train-rle\.csv: row 4: .*not an integer"):
        load_dataset("siim", str(root))
    ds = load_dataset("siim", str(root), skip_bad=True)
    assert bad_id not in {e.id for e in ds.entries}
    assert ds.skipped == [{"id": bad_id, "reason": ds.skipped[0]["reason"]}] and "row 4" in ds.skipped[0]["reason"]


def test_bad_files_fail_one_line_or_are_skipped(tmp_path):
    root = export_demo("siim", tmp_path / "s", n=10)
    ds = load_dataset("siim", str(root))
    first = ds.order()[0]
    path = ds.entries[first].image
    path.write_bytes(b"\0" * 200)  # not a DICOM any more
    with pytest.raises(AuditInputError) as err:
        ds[first]
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    missing = ds.order()[1]
    ds.entries[missing].image.unlink()
    fresh = load_dataset("siim", str(root))
    with pytest.raises(AuditInputError, match=r"row \d+: no DICOM file .*\.dcm. under"):
        fresh[missing]
    fresh = load_dataset("siim", str(root), skip_bad=True)
    idx, samples = fresh.select(4, (128, 128))
    assert len(samples) == 4 and first not in idx and missing not in idx
    assert {s["id"] for s in fresh.skipped} == {ds.entries[first].id, ds.entries[missing].id}


def test_mask_of_wrong_size_is_named(tmp_path):
    from PIL import Image

    root = export_demo("siim-png", tmp_path / "p", n=4)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "mask" / "00002.png")
    ds = load_dataset("siim", str(root))
    i = [e.id for e in ds.entries].index("00002")
    with pytest.raises(AuditInputError, match=r"00002\.png: mask of size \(10, 10\) does not match image 00002\.png"):
        ds[i]


def test_ids_escaping_the_root_and_bad_rows(tmp_path):
    root = export_demo("rsna", tmp_path / "r", n=4)
    labels = root / "stage_2_train_labels.csv"
    good = labels.read_text()
    labels.write_text(good + "../../etc/passwd,,,,,0\n")
    with pytest.raises(AuditInputError, match=r"row \d+: id '\.\./\.\./etc/passwd\.dcm' escapes the data root"):
        load_dataset("rsna", str(root))
    assert len(load_dataset("rsna", str(root), skip_bad=True)) == 4
    labels.write_text(good + "p1,10,10,,,1\n")
    with pytest.raises(AuditInputError, match=r"stage_2_train_labels\.csv: row \d+: Target 1 needs x, y, width"):
        load_dataset("rsna", str(root))
    labels.write_text(good + "p2,a,10,5,5,1\n")
    with pytest.raises(AuditInputError, match=r"row \d+: x 'a' is not a finite number"):
        load_dataset("rsna", str(root))
    nih = export_demo("nih", tmp_path / "n", n=4)
    with open(nih / "BBox_List_2017.csv", "a") as fh:
        fh.write("short,Nodule,1\n")
    with pytest.raises(AuditInputError, match=r"BBox_List_2017\.csv: row \d+: expected 6 fields, found 3"):
        load_dataset("nih", str(nih), finding="Nodule")


def test_index_is_lazy(tmp_path, monkeypatch):
    import saliency_audit.data.dicom as dicom

    root = export_demo("siim", tmp_path / "s", n=12)
    calls = []
    real = dicom.read_dicom
    monkeypatch.setattr(dicom, "read_dicom", lambda p: calls.append(p) or real(p))
    ds = load_dataset("siim", str(root))
    ds.localisation_indices(5)
    ds.stratified_indices(5)
    ds.prior_masks(set(), 5, (128, 128))
    assert calls == []  # selection and the prior read CSV rows and DICOM headers, never pixels
    ds.select(3, (128, 128), lesion=True)
    assert len(calls) == 3


def test_memory_is_flat_while_iterating(tmp_path):
    import tracemalloc

    root = export_demo("siim", tmp_path / "s", n=40, scale=4)  # 512x512 images, 1 MB each as float32
    ds = load_dataset("siim", str(root))
    one = 512 * 512 * 4
    tracemalloc.start()
    for s in ds:
        del s
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 12 * one, f"peak {peak / one:.1f} images while iterating 40"


# -- end to end -----------------------------------------------------------------------------------
def test_rle_form_disagreement_names_csv_rows(tmp_path):
    root = export_demo("siim", tmp_path / "s", n=3)
    csv = root / "train-rle.csv"
    ids = [line.split(",")[0] for line in csv.read_text().splitlines()[1:]]
    with open(csv, "a") as fh:
        fh.write(f"{ids[0]}, 5 2 0 3\n")  # a gap of 0 is valid relative RLE, not absolute (starts must increase)
        fh.write(f"{ids[1]}, 600000 1 600002 1\n")  # valid absolute; as relative it ends beyond 1024x1024
    n = len(ids) + 1
    with pytest.raises(AuditInputError, match=rf"train-rle\.csv: rows disagree: row \d+ is only valid as relative, "
                                              rf"row {n + 2} only as absolute"):
        load_dataset("siim", str(root))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["siim", "rsna", "nih", "folder"])
def test_pytest_audit_on_each_layout(pytester, tmp_path, fmt):
    """The user's command: ``pytest audits/ --dataset=FMT --data-root=DIR --model=demo`` (utility, two methods):
    every image read and audited whatever the layout, and the demo model localises the demo lesions in each."""
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parents[1] / "audits" / "test_utility.py", pytester.path / "test_utility.py")
    root = export_demo(fmt, tmp_path / fmt, n=64)
    extra = ["--finding=Nodule"] if fmt == "nih" else []
    args = [f"--dataset={fmt}", f"--data-root={root}", "--model=demo", "--methods=gradcam,ggcam", "--n-images=16",
            "--no-sequential", "--audit-report=rep", "-p", "no:cacheprovider", *extra]  # fixed n: every image read
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)  # both pass utility
    ev = json.loads((pytester.path / "rep" / "evidence.json").read_text())
    assert ev["dataset"]["name"] == fmt and ev["dataset"]["root"] == str(root)
    ds = ev["dataset"]["findings"]["Nodule"] if fmt == "nih" else ev["dataset"]  # a finding's own record
    assert ds["eval_size"] == [128, 128] and ds["n_images"] == 16
    assert len(ds["manifest_sha256"]) == 64 and ds["skipped"] == []
    assert {(r["method"], r["verdict"], r["n"]) for r in ev["results"] if r["method"] in ("gradcam", "ggcam")} == {
        ("gradcam", "pass", 16), ("ggcam", "pass", 16)}
    if fmt != "siim":
        return
    assert ev["dataset"]["rle_form"] == "relative" and ev["dataset"]["images"] == "dicom"
    # a corrupt file stops the criterion with its name, unless --skip-bad-samples, which lists it
    ds = load_dataset("siim", str(root))
    bad = ds.entries[next(i for i in ds.order() if ds.describe(i)["has_lesion"])]
    bad.image.write_bytes(b"not a dicom")
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"*{bad.image.name}: not a readable DICOM file*"])
    result = pytester.runpytest(*args, "--skip-bad-samples")
    result.assert_outcomes(passed=2)
    ev = json.loads((pytester.path / "rep" / "evidence.json").read_text())
    assert [s["id"] for s in ev["dataset"]["skipped"]] == [bad.id]
    assert "not a readable DICOM file" in ev["dataset"]["skipped"][0]["reason"]
