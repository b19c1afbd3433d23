"""Sanity checks: maps must change when the model's weights, or the labels it learned, are randomized."""
from saliency_audit.testing import check


def test_randomization(audit, method):
    check(audit.randomization(method))


def test_label_randomization(audit, method):
    check(audit.label_randomization(method))
