"""Sanity checks: maps must change when the model's weights, or the labels it learned, are randomized."""
# The tests live in saliency_audit/suite (they ship with the package: `pytest --saliency-audit` runs them
# from any folder); this module imports them so `pytest audits/` runs the same tests from a checkout.
from saliency_audit.suite.test_randomization import test_randomization, test_label_randomization  # noqa: F401
