"""mednet interpretability: the map's energy, focus and maximum in the lesion, each against the average-mask prior."""
# The tests live in saliency_audit/suite (they ship with the package: `pytest --saliency-audit` runs them
# from any folder); this module imports them so `pytest audits/` runs the same tests from a checkout.
from saliency_audit.suite.test_interpretability import test_energy, test_focus, test_pointing  # noqa: F401
