"""Localisation utility: does each method's map find the lesion better than the average-mask prior?"""


def test_utility(audit, method):
    result = audit.utility(method)
    assert result.passed, result.explain()
