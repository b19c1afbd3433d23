"""The radiologist benchmark: does each method localise the finding nearly as well as the human readers?"""
import pytest

from saliency_audit.testing import check


def test_human_benchmark(audit, method):
    reason = audit.absent("human_benchmark")  # without --human-annotations: absent, never faked
    if reason:
        pytest.skip(reason)
    check(audit.human_benchmark(method))
