"""Repeatability (replicates of the architecture) and reproducibility (other architectures) of the maps."""
from saliency_audit.testing import check


def test_repeatability(audit, method):
    check(audit.repeatability(method))


def test_reproducibility(audit, method):
    check(audit.reproducibility(method))
