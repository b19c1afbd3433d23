"""Faithfulness (ROAD completeness): does removing what the map highlights change the model's output?"""
from saliency_audit.testing import check


def test_completeness(audit, method):
    check(audit.completeness(method))
