"""Datasets: Sample, AuditDataset and the adapters selected by ``--dataset``."""
from __future__ import annotations

from ..common.errors import AuditUsageError
from .base import AuditDataset
from .sample import Sample, boxes_to_mask

from .registry import DATASETS, DatasetSpec, check_options, dataset_names


def load_dataset(name: str = "demo", root: str | None = None, *, split: str | None = None,
                 split_file: str | None = None, finding: str | None = None, skip_bad: bool = False,
                 **options) -> AuditDataset:
    """The dataset ``name`` at ``root`` as a lazy sequence of :class:`Sample` at the files' native resolution.

    ``split``/``split_file`` select a split (QTIM splits CSV or the folder's
    split column), ``finding`` the finding audited (a dataset of several findings), ``skip_bad`` leaves out
    unreadable or malformed samples (listed in ``dataset.skipped``) instead of
    raising :class:`~saliency_audit.common.errors.AuditInputError`.  The adapter and what it takes come from its
    :class:`~saliency_audit.data.registry.DatasetSpec`.
    """
    spec = check_options(name, finding=finding, split=split, split_file=split_file)
    cls = spec.adapter_class()
    if spec.finding:  # a dataset of several findings is read as the view of one (DatasetSpec.finding)
        options["finding"] = finding
    if not spec.needs_root:
        ds = cls(**options)
        ds.skip_bad = skip_bad
        return ds
    if not root:
        raise AuditUsageError(f"--dataset={name} needs --data-root")
    ds = cls(root, skip_bad=skip_bad, **options)
    ds.skip_bad = skip_bad
    from .splits import apply_split

    apply_split(ds, split, split_file)
    return ds


__all__ = ["AuditDataset", "DATASETS", "DatasetSpec", "Sample", "boxes_to_mask", "check_options", "dataset_names",
           "load_dataset"]
