"""What makes a folder an audit suite: its ``conftest.py`` imports these three names.

    from saliency_audit.suite.hooks import audit, pytest_addoption, pytest_generate_tests  # noqa: F401

(``saliency-audit init`` writes that file; the bundled suite and this repository's ``audits/`` have it.)
In the suite's folder, and only there: a test that takes ``method`` runs once per audited method, the
short option names (``--model``, ``--dataset``, ``--device`` ...) exist beside the ``--saliency-`` ones
(unless the repository owns them), and the fixture ``audit`` is the run's audit (``saliency_audit`` is its
name everywhere).  Outside such a folder the plugin touches nothing but tests marked
``@pytest.mark.saliency_criterion(NAME)``.
"""
from __future__ import annotations

import pytest

from ..plugin.options import request_short_names


def pytest_addoption(parser: pytest.Parser) -> None:
    request_short_names(parser)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "method" in metafunc.fixturenames:
        from ..plugin import parametrize_methods

        parametrize_methods(metafunc)


@pytest.fixture(scope="session")
def audit(saliency_audit):
    """The run's :class:`saliency_audit.Audit` (the plugin's ``saliency_audit`` fixture, by its suite name)."""
    return saliency_audit
