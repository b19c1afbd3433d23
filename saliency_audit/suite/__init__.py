"""The audit suite that ships with the package: one short test module per group of trust criteria.

``pytest --saliency-audit --model=... --dataset=...`` collects these modules from wherever the package is
installed, so an audit needs no checkout and no test files of its own.  Each test is parametrized by the
plugin's ``method`` and reads like a sentence (``check(audit.utility(method))``); everything it computes
lives in :mod:`saliency_audit` itself.  The repository's ``audits/`` imports these tests, and
``saliency-audit init`` writes copies of them into a project's ``audits/`` for teams who want to edit them.
The plugin finds an audit test by its function name, ``test_<criterion>`` (``saliency_audit.plugin._pairs``).
"""
from __future__ import annotations

from importlib import resources

#: The suite's modules, in report order of their criteria.
MODULES = ("test_utility.py", "test_randomization.py", "test_consistency.py", "test_faithfulness.py",
           "test_interpretability.py")


def sources() -> dict[str, str]:
    """File name -> source text of each bundled test module (read as package resources: works from a wheel)."""
    here = resources.files(__name__)
    return {name: here.joinpath(name).read_text(encoding="utf-8") for name in MODULES}
