"""mednet interpretability: the map's energy, focus and maximum in the lesion, each against the average-mask prior."""


def test_energy(audit, method):
    result = audit.energy(method)
    assert result.passed, result.explain()


def test_focus(audit, method):
    result = audit.focus(method)
    assert result.passed, result.explain()


def test_pointing(audit, method):
    result = audit.pointing(method)
    assert result.passed, result.explain()
