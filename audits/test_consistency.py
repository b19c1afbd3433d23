"""Repeatability (replicates of the architecture) and reproducibility (other architectures) of the maps."""
# The tests live in saliency_audit/suite (they ship with the package: `pytest --saliency-audit` runs them
# from any folder); this module imports them so `pytest audits/` runs the same tests from a checkout.
from saliency_audit.suite.test_consistency import test_repeatability, test_reproducibility  # noqa: F401
