"""The radiologist benchmark: does each method localise the finding nearly as well as the human readers?"""
# The tests live in saliency_audit/suite (they ship with the package: `pytest --saliency-audit` runs them
# from any folder); this module imports them so `pytest audits/` runs the same tests from a checkout.
from saliency_audit.suite.test_human import test_human_benchmark  # noqa: F401
