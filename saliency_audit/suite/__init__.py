"""The audit suite that ships with the package: one short test module per group of trust criteria.

``pytest --saliency-audit --model=... --dataset=...`` collects these modules from wherever the package is
installed, so an audit needs no checkout and no test files of its own.  Each test is parametrized by the
plugin's ``method`` and reads like a sentence (``check(audit.utility(method))``); everything it computes
lives in :mod:`saliency_audit` itself.  The repository's ``audits/`` imports these tests, and
``saliency-audit init`` writes copies of them into a project's ``audits/`` for teams who want to edit them.
The folder's ``conftest.py`` makes it an audit suite (:mod:`saliency_audit.suite.hooks`): there a test that
takes ``method`` runs once per method, and the plugin reads its criterion from its name, ``test_<criterion>``
(``saliency_audit.plugin._pairs``).  ``init`` writes that ``conftest.py`` too.
"""
from __future__ import annotations

from importlib import resources

#: The suite's test modules, in report order of their criteria.
MODULES = ("test_utility.py", "test_randomization.py", "test_consistency.py", "test_faithfulness.py",
           "test_interpretability.py")


def sources() -> dict[str, str]:
    """File name -> source text of the suite's conftest.py and each bundled test module (read as package resources: works from a wheel)."""
    here = resources.files(__name__)
    return {name: here.joinpath(name).read_text(encoding="utf-8") for name in ("conftest.py", *MODULES)}
