"""Localisation utility: does each method's map find the lesion better than the average-mask prior?"""
# The tests live in saliency_audit/suite (they ship with the package: `pytest --saliency-audit` runs them
# from any folder); this module imports them so `pytest audits/` runs the same tests from a checkout.
from saliency_audit.suite.test_utility import test_utility  # noqa: F401
