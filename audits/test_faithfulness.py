"""Faithfulness (ROAD completeness): does removing what the map highlights change the model's output?"""


def test_completeness(audit, method):
    result = audit.completeness(method)
    assert result.passed, result.explain()
