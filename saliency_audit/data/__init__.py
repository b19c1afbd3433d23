"""Datasets: Sample, AuditDataset and the adapters selected by ``--dataset``."""
from __future__ import annotations

from ..errors import AuditUsageError
from .base import AuditDataset
from .sample import Sample, boxes_to_mask

DATASETS = ("demo", "folder", "siim", "rsna", "nih")


def load_dataset(name: str = "demo", root: str | None = None, **options) -> AuditDataset:
    """The dataset ``name`` at ``root`` as a lazy sequence of :class:`Sample`."""
    if name == "demo":
        from .demo import DemoDataset

        return DemoDataset(**options)
    if name not in DATASETS:
        raise AuditUsageError(f"--dataset: unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    if not root:
        raise AuditUsageError(f"--dataset={name} needs --data-root")
    if name == "folder":
        from .folder import FolderDataset

        return FolderDataset(root, **options)
    raise AuditUsageError(f"--dataset={name}: this adapter is not available yet in this version (see issue tracker); use --dataset=folder")


__all__ = ["AuditDataset", "DATASETS", "Sample", "boxes_to_mask", "load_dataset"]
