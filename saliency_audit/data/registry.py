"""The dataset registry: name -> the adapter ``--dataset`` selects and the options it takes.

A dataset is one adapter class (an :class:`~saliency_audit.data.base.AuditDataset`) and one
:class:`DatasetSpec`; a third party registers its own (:mod:`saliency_audit.common.extensions`).
:func:`load_dataset <saliency_audit.data.load_dataset>` builds it; :func:`check_options` is the check a
command line makes before anything is loaded (``--finding`` and ``--split`` where the dataset takes none).
Importing this module is cheap (no torch).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..common.errors import AuditUsageError
from ..common.extensions import Registry, register


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    #: "module:Class" (".module": saliency_audit.data.module); built as Class(root, skip_bad=..., **options)
    #: with ``needs_root``, else Class(**options)
    adapter: str
    needs_root: bool = True  # reads files under --data-root; False: generated (no root, no split)
    #: holds several findings and takes --finding: the adapter is built once per finding audited, with
    #: ``finding=NAME`` (an image is positive when it has that finding, and its ground truth is that finding's
    #: masks or boxes), and its class offers ``findings(root, **options) -> list[str]``: the findings it can
    #: audit, in the data's own spelling (what ``--finding=all`` expands to)
    finding: bool = False

    def adapter_class(self):
        module, _, attr = self.adapter.partition(":")
        pkg = "saliency_audit.data" if module.startswith(".") else None
        return getattr(importlib.import_module(module, pkg), attr)


#: name -> spec; extensions follow the built-ins
DATASETS: Registry = Registry("dataset", spec_class=DatasetSpec, specs=(
    DatasetSpec("demo", "Generated demo world (test split)", ".demo:DemoDataset", needs_root=False),
    DatasetSpec("folder", "Image folder with masks and labels", ".folder:FolderDataset"),
    DatasetSpec("siim", "SIIM-ACR pneumothorax", ".siim:SIIMDataset"),
    DatasetSpec("rsna", "RSNA pneumonia detection", ".rsna:RSNADataset"),
    DatasetSpec("nih", "NIH ChestX-ray14", ".nih:NIHDataset", finding=True),
    DatasetSpec("demo-findings", "Generated multi-finding demo world (test split)",
                ".demo_findings:DemoFindingsDataset", needs_root=False, finding=True),
    DatasetSpec("vindr", "VinDr-CXR style box table (several findings and readers)", ".vindr:VinDrDataset",
                finding=True),
    DatasetSpec("chexlocalize", "CheXlocalize segmentations of CheXpert", ".chexlocalize:CheXlocalizeDataset",
                finding=True),
))


def dataset_names() -> tuple[str, ...]:
    """Every dataset ``--dataset`` accepts (built-ins, then registered ones): the option's choices."""
    return tuple(DATASETS)


def dataset(name: str, option: str = "--dataset") -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise AuditUsageError(f"{option}: unknown dataset {name!r} (choose from {', '.join(DATASETS)})") from None


def check_options(name: str, *, finding: str | None = None, split: str | None = None,
                  split_file: str | None = None) -> DatasetSpec:
    """The spec of ``name`` if it takes these options, else the usage error saying which it does not take."""
    spec = dataset(name)
    if finding and not spec.finding:
        takes = [n for n, s in DATASETS.items() if s.finding]
        raise AuditUsageError(f"--finding applies to {' or '.join(f'--dataset={n}' for n in takes)}, "
                              f"not --dataset={name}")
    if not spec.needs_root and (split or split_file):
        raise AuditUsageError(f"--dataset={name} takes no --split or --split-file")
    return spec


def register_dataset(spec: DatasetSpec) -> None:
    """Add a dataset adapter (its ``adapter`` an absolute ``"module:Class"``); entry points in the group
    ``saliency_audit.datasets`` do the same."""
    register(DATASETS, spec, f"register_dataset({getattr(spec, 'name', spec)!r})")
