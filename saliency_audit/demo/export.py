"""Write the demo world's images in the published layouts of SIIM, RSNA, NIH and the folder format.

Used by the tests and benchmarks to exercise every adapter end to end, by
users who want to see what a layout looks like before pointing the audit at
their own copy, and by the "audit your own model" walkthrough of docs/own-model.md, which
trains a model on the exported ``train`` split::

    from saliency_audit.demo.export import export_demo
    export_demo("siim", "/tmp/siim-demo", n=120)
    # pytest audits/ --dataset=siim --data-root=/tmp/siim-demo --model=demo

or from the shell: ``saliency-audit export-demo folder /tmp/mydata --n 120 --train 1000``.

The audited (``test``/``val``) images are the demo audit's own; the ``train``
images are the training split the demo models learn from, disjoint from them.
Every image's split is in ``splits.csv`` (``image,split``, for
``--split-file``) and, for the folder format, in ``labels.csv``'s ``split``
column. Images are upscaled ``scale`` times (nearest, so masks and boxes stay
exact) to make the audit resize them back to the model's input, as it does
with 1024-pixel X-rays.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

FORMATS = ("siim", "siim-png", "rsna", "nih", "folder")
#: Training images are numbered from here, so no file name or id meets an audited image's.
TRAIN_OFFSET = 100_000


def _upscale(image: np.ndarray, mask, boxes, scale: int):
    from scipy import ndimage

    up = np.kron(image, np.ones((scale, scale), np.float32))
    pixels = np.clip(np.rint(up * 255), 0, 255).astype(np.uint8)
    mask = np.kron(mask, np.ones((scale, scale), bool)) if mask is not None else np.zeros(up.shape, bool)
    labelled, k = ndimage.label(mask)
    lesions = [labelled == j for j in range(1, k + 1)]
    boxes = [(x0 * scale, y0 * scale, (x1 + 1) * scale - 1, (y1 + 1) * scale - 1) for x0, y0, x1, y1 in boxes or ()]
    return pixels, mask, lesions, boxes


def _demo_images(n: int, seed: int, scale: int, n_train: int = 0):
    """(number, split, pixels, mask, lesions, boxes, label): the audited images, then the training images."""
    from ..data.demo import DemoDataset
    from .world import iter_split

    ds = DemoDataset(n=n, seed=seed)
    for i in range(n):
        s = ds[i]
        ds._cache.clear()  # the demo dataset memoises renders; an export of thousands must not hold them
        yield (i, "test" if i % 4 else "val", *_upscale(s.image[0].numpy(), s.mask, s.boxes, scale), s.label)
    for i, d in enumerate(iter_split("train", n_train, seed)):
        yield (TRAIN_OFFSET + i, "train", *_upscale(d.image, d.mask, d.boxes, scale), int(d.label))


def _csv(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def export_demo(fmt: str, root, n: int = 120, seed: int = 0, scale: int = 2, rle_form: str = "relative",
                compression: str | None = None, monochrome1_every: int = 0, n_train: int = 0) -> Path:
    """Write ``n`` demo test images (and ``n_train`` training images) to ``root`` in layout ``fmt`` (one of
    :data:`FORMATS`); returns ``root``.

    ``monochrome1_every=k`` stores every k-th DICOM inverted as MONOCHROME1;
    ``compression`` (``"jpeg"`` or ``"rle"``) compresses the DICOMs.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if n < 0 or n_train < 0 or scale < 1:
        raise ValueError("n and n_train must be >= 0 and scale >= 1")
    rows: list = []
    splits: list = []
    for k, (number, split, pixels, mask, lesions, boxes, label) in enumerate(_demo_images(n, seed, scale, n_train)):
        ident = f"{number:05d}"
        mono1 = bool(monochrome1_every) and k % monochrome1_every == 0

        def dicom(path: Path, patient: str, pixels=pixels, mono1=mono1) -> None:
            from ..data.dicom import write_dicom

            path.parent.mkdir(parents=True, exist_ok=True)
            write_dicom(path, 255 - pixels if mono1 else pixels, photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
                        compression=compression, patient_id=patient)

        if fmt == "siim":
            from ..data.rle import encode

            image_id = f"1.2.276.0.7230010.3.1.4.{seed}.{ident}"
            dicom(root / "dicom-images-train" / f"1.2.276.0.7230010.3.1.2.{ident}" / f"1.2.276.0.7230010.3.1.3.{ident}"
                  / f"{image_id}.dcm", ident)
            rows += [(image_id, encode(m, rle_form)) for m in lesions] or [(image_id, "-1")]
            splits.append((image_id, split))
        elif fmt == "siim-png":
            png(root / "train" / f"{ident}.png", pixels)
            png(root / "mask" / f"{ident}.png", (mask * 255).astype(np.uint8))
            splits.append((ident, split))
        elif fmt == "rsna":
            pid = f"{seed:04x}{number:04x}-demo-{ident}"
            dicom(root / "stage_2_train_images" / f"{pid}.dcm", pid)
            rows += [(pid, x0, y0, x1 - x0 + 1, y1 - y0 + 1, 1) for x0, y0, x1, y1 in boxes] or \
                [(pid, "", "", "", "", 0)]
            splits.append((pid, split))
        elif fmt == "nih":
            name = f"{number:08d}_000.png"
            png(root / "images_001" / "images" / name, pixels)
            findings = ["Nodule"] if boxes else (["Cardiomegaly"] if k % 3 == 0 else [])
            box_rows = [(name, "Nodule", x0, y0, x1 - x0 + 1, y1 - y0 + 1) for x0, y0, x1, y1 in boxes]
            if findings == ["Cardiomegaly"]:  # another finding's box, which a Nodule audit must ignore
                h, w = pixels.shape
                box_rows.append((name, "Cardiomegaly", w * 0.35, h * 0.45, w * 0.3, h * 0.3))
            rows.append(((name, "|".join(findings) or "No Finding", 0, ident, 50, "M", "PA", 1024, 1024, 0.143, 0.143),
                         box_rows))
            splits.append((name, split))
        else:  # folder
            png(root / "images" / f"{ident}.png", pixels)
            if label:
                png(root / "masks" / f"{ident}.png", (mask * 255).astype(np.uint8))
            rows.append((f"{ident}.png", label, split))
            splits.append((f"{ident}.png", split))
    if fmt == "siim":
        name, header = ("train-rle.csv", ["ImageId", " EncodedPixels"]) if rle_form == "relative" else \
            ("stage_2_train.csv", ["ImageId", "EncodedPixels"])
        _csv(root / name, header, rows)
    elif fmt == "rsna":
        _csv(root / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"], rows)
    elif fmt == "nih":
        _csv(root / "Data_Entry_2017.csv", ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
                                            "Patient Gender", "View Position", "OriginalImage[Width", "Height]",
                                            "OriginalImagePixelSpacing[x", "y]"], [r for r, _ in rows])
        _csv(root / "BBox_List_2017.csv", ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""],
             [(*b, "", "", "") for _, bs in rows for b in bs])
    elif fmt == "folder":
        _csv(root / "labels.csv", ["image", "label", "split"], rows)
    _csv(root / "splits.csv", ["image", "split"], splits)
    return root


def png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
