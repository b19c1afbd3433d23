"""Localisation utility: does each method's map find the lesion better than the average-mask prior?"""
from saliency_audit.testing import check


def test_utility(audit, method):
    check(audit.utility(method))
