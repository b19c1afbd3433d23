"""mednet interpretability: the map's energy, focus and maximum in the lesion, each against the average-mask prior."""
from saliency_audit.testing import check


def test_energy(audit, method):
    check(audit.energy(method))


def test_focus(audit, method):
    check(audit.focus(method))


def test_pointing(audit, method):
    check(audit.pointing(method))
