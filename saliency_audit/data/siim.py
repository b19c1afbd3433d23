"""``--dataset=siim``: SIIM-ACR Pneumothorax, as published on Kaggle or in its common PNG conversion.

Layouts accepted under ``--data-root``:

* ``dicom-images-train/<StudyUID>/<SeriesUID>/<ImageId>.dcm`` with
  ``train-rle.csv`` (``ImageId, EncodedPixels``; relative RLE) or
  ``stage_2_train.csv`` (``ImageId,EncodedPixels``).  ``-1`` marks an image
  without pneumothorax; an image with several lesions has one row per lesion
  and the rows are unioned.  Whether a file holds relative or absolute RLE is
  detected from its rows (:func:`.rle.detect_form`), not assumed from its name.
* ``train/<ImageId>.png`` with ``mask/<ImageId>.png`` (or ``masks/``), with or
  without one of the CSVs.
"""
from __future__ import annotations

from pathlib import Path

from ..common.errors import AuditInputError, AuditUsageError
from .indexed import Entry, IndexedDataset
from .tables import inside, read_rows

CSV_NAMES = ("stage_2_train.csv", "train-rle.csv")
SIIM_PIXELS = 1024 * 1024  # every SIIM image is 1024x1024; the decoder re-checks each image's own size


class SIIMDataset(IndexedDataset):
    def __init__(self, root: str, skip_bad: bool = False):
        from .rle import RLEError, detect_form, forms_of

        base = Path(root)
        skipped: list[dict] = []
        csv_path = next((base / n for n in CSV_NAMES if (base / n).is_file()), None)
        png_dir = base / "train"
        mask_dir = next((base / d for d in ("mask", "masks") if (base / d).is_dir()), None)
        dicoms: dict[str, Path] = {}
        dicom_dir = base / "dicom-images-train"
        if dicom_dir.is_dir() or not png_dir.is_dir():
            dicoms = {p.stem: p for p in sorted((dicom_dir if dicom_dir.is_dir() else base).rglob("*.dcm"))}
        if csv_path is None and not png_dir.is_dir():
            raise AuditUsageError(f"--data-root={root}: no {' or '.join(CSV_NAMES)} and no train/ folder of PNGs "
                                  "(see the SIIM layout in docs/datasets.md)")

        rows: dict[str, list[str]] = {}
        row_nos: dict[str, list[int]] = {}
        where: dict[str, str] = {}
        if csv_path is not None:
            for row_no, row in read_rows(csv_path, ("ImageId", "EncodedPixels")):
                image_id, rle = row["ImageId"], row["EncodedPixels"]
                try:
                    if not image_id:
                        raise AuditInputError(f"{csv_path}: row {row_no}: empty ImageId")
                    forms_of(rle, SIIM_PIXELS)  # each row on its own: every bad row is reported, not the first
                except (RLEError, AuditInputError) as exc:
                    msg = str(exc) if isinstance(exc, AuditInputError) else f"{csv_path}: row {row_no}: {exc}"
                    if not skip_bad:
                        raise AuditInputError(msg) from None
                    skipped.append({"id": image_id, "reason": msg})
                    continue
                rows.setdefault(image_id, []).append(rle)
                row_nos.setdefault(image_id, []).append(row_no)
                where.setdefault(image_id, f"{csv_path}: row {row_no}")
            for s in skipped:  # an image with one malformed row is left out entirely
                rows.pop(s["id"], None)
            try:
                form = detect_form([r for rs in rows.values() for r in rs], SIIM_PIXELS,
                                   [n for k in rows for n in row_nos[k]])
            except RLEError as exc:
                raise AuditInputError(f"{csv_path}: {exc}") from None
            ids = list(rows)
        else:
            form = "relative"
            ids = sorted(p.stem for p in png_dir.glob("*.png"))

        entries = []
        for image_id in ids:
            w = where.get(image_id, str(png_dir / f"{image_id}.png"))
            try:
                mask = None
                if image_id in dicoms:
                    image = dicoms[image_id]
                elif png_dir.is_dir():
                    image = inside(png_dir, f"{image_id}.png", w)
                    if mask_dir is not None:
                        mask = inside(mask_dir, f"{image_id}.png", w)
                        mask = mask if mask.is_file() or csv_path is None else None  # no CSV: the mask is the truth
                else:
                    image = None
            except AuditInputError as exc:
                if not skip_bad:
                    raise
                skipped.append({"id": image_id, "reason": str(exc)})
                continue
            if image is None:
                missing = f"{w}: no DICOM file {image_id + '.dcm'!r} under {dicom_dir}"
            elif not image.is_file():
                image, missing = None, f"{w}: no image {image.name!r} in {png_dir}"
            else:
                missing = None
            entries.append(Entry(id=image_id, image=image, where=w, mask=mask, rle=tuple(rows.get(image_id, ())),
                                 rle_rows=tuple(f"{csv_path}: row {n}" for n in row_nos.get(image_id, ())),
                                 rle_form=form, missing=missing))
        if not entries:
            raise AuditUsageError(f"--data-root={root}: no SIIM images found")
        super().__init__(root, "siim", entries, skipped)
        self.rle_form = form
        self.layout = {"labels": csv_path.name if csv_path else None, "rle_form": form if csv_path else None,
                       "images": "dicom" if dicoms else "png", "masks": mask_dir.name if mask_dir else None}

    def info(self) -> dict:
        return dict(self.layout)
