"""Faithfulness (ROAD completeness): does removing what the map highlights change the model's output?"""
# The tests live in saliency_audit/suite (they ship with the package: `pytest --saliency-audit` runs them
# from any folder); this module imports them so `pytest audits/` runs the same tests from a checkout.
from saliency_audit.suite.test_faithfulness import test_completeness  # noqa: F401
