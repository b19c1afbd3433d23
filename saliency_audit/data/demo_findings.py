"""``--dataset=demo-findings``: the multi-finding demo world's test split, audited one finding at a time."""
from __future__ import annotations

import functools

import numpy as np
import torch

from ..common.errors import AuditUsageError
from .demo import DemoDataset
from .sample import Sample


@functools.lru_cache(maxsize=512)  # one view per finding renders the same images; ~130 kB each
def _rendered(split: str, i: int, seed: int):
    from ..demo.world import finding_flags, render_findings

    present, marker = finding_flags(split, i, seed)
    return render_findings(split, i, seed, findings=present, marker=marker)


class DemoFindingsDataset(DemoDataset):
    """The ``test`` split of the multi-finding world (:func:`saliency_audit.demo.world.render_findings`), built
    for one ``finding`` (case-insensitive): an image is positive when it has that finding, and its ground truth
    is that finding's mask and box only; its other findings stay in the pixels, as in a radiograph. The
    average-mask prior comes from the disjoint ``prior`` split, the finding's masks only. Selection, order and
    the prior's loop are :class:`~saliency_audit.data.demo.DemoDataset`'s."""

    name = "demo-findings"

    def __init__(self, n: int = 400, seed: int = 0, finding: str | None = None):
        from ..demo.world import FINDINGS, FINDINGS_VERSION, finding_name

        if finding is None:
            raise AuditUsageError(f"--dataset={self.name} needs --finding (one of {', '.join(FINDINGS)}, or all)")
        try:
            self.finding = finding_name(finding)
        except ValueError:
            raise AuditUsageError(f"--finding={finding}: not a finding of --dataset={self.name} "
                                  f"(choose from {', '.join(FINDINGS)})") from None
        super().__init__(n=n, seed=seed)
        self.root = f"generated:findings-v{FINDINGS_VERSION}:seed{seed}"

    @classmethod
    def findings(cls, root: str | None = None, **options) -> list[str]:
        """Every finding the world draws, in the multi-label demo model's output order."""
        from ..demo.world import FINDINGS

        return list(FINDINGS)

    def _flags(self, split: str, i: int) -> tuple[bool, bool]:
        from ..demo.world import finding_flags

        present, marker = finding_flags(split, i, self.seed)
        return self.finding in present, marker

    def _render(self, split: str, i: int) -> Sample:
        key = (split, i)
        if key not in self._cache:
            d = _rendered(split, i, self.seed)
            self._cache[key] = Sample(
                id=f"findings-{split}-{i:05d}", image=torch.from_numpy(np.ascontiguousarray(d.image))[None].float(),
                label=int(self.finding in d.masks), mask=d.mask(self.finding), boxes=d.boxes(self.finding),
                meta={"marker": bool(d.marker), "findings": list(d.findings)},
            )
        return self._cache[key]

    def sample_id(self, i: int) -> str:
        return f"findings-test-{i:05d}"

    def describe(self, i: int) -> dict:
        from ..demo.world import finding_flags

        present, marker = finding_flags("test", i, self.seed)
        has = self.finding in present
        return {"id": self.sample_id(i), "label": int(has), "has_lesion": has, "marker": marker,
                "finding": self.finding, "findings": list(present)}

    def _render_prior(self, i: int) -> np.ndarray:
        return _rendered("prior", i, self.seed).mask(self.finding).astype(np.float64)

    def info(self) -> dict:
        return {"finding": self.finding, "findings": self.findings()}
