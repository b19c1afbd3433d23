"""Datasets: Sample, AuditDataset and the adapters selected by ``--dataset``."""
from __future__ import annotations

from ..common.errors import AuditUsageError
from .base import AuditDataset
from .sample import Sample, boxes_to_mask

DATASETS = ("demo", "folder", "siim", "rsna", "nih")


def load_dataset(name: str = "demo", root: str | None = None, *, split: str | None = None,
                 split_file: str | None = None, finding: str | None = None, skip_bad: bool = False,
                 **options) -> AuditDataset:
    """The dataset ``name`` at ``root`` as a lazy sequence of :class:`Sample` at the files' native resolution.

    ``split``/``split_file`` select a split (QTIM splits CSV or the folder's
    split column), ``finding`` the NIH finding audited, ``skip_bad`` leaves out
    unreadable or malformed samples (listed in ``dataset.skipped``) instead of
    raising :class:`~saliency_audit.common.errors.AuditInputError`.
    """
    if name not in DATASETS:
        raise AuditUsageError(f"--dataset: unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    if name == "demo":
        if split or split_file or finding:
            raise AuditUsageError("--dataset=demo takes no --split, --split-file or --finding")
        from .demo import DemoDataset

        ds = DemoDataset(**options)
        ds.skip_bad = skip_bad
        return ds
    if not root:
        raise AuditUsageError(f"--dataset={name} needs --data-root")
    if finding and name != "nih":
        raise AuditUsageError(f"--finding applies to --dataset=nih, not --dataset={name}")
    if name == "folder":
        from .folder import FolderDataset as cls
    elif name == "siim":
        from .siim import SIIMDataset as cls
    elif name == "rsna":
        from .rsna import RSNADataset as cls
    else:
        from .nih import NIHDataset as cls

        options["finding"] = finding
    ds = cls(root, skip_bad=skip_bad, **options)
    ds.skip_bad = skip_bad
    from .splits import apply_split

    apply_split(ds, split, split_file)
    return ds


__all__ = ["AuditDataset", "DATASETS", "Sample", "boxes_to_mask", "load_dataset"]
