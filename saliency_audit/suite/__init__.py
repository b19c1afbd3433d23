"""The audit suite that ships with the package: one short test module per group of trust criteria.

``pytest --saliency-audit --model=... --dataset=...`` collects these modules from wherever the package is
installed, so an audit needs no checkout and no test files of its own.  Each test is parametrized by the
plugin's ``method`` and reads like a sentence (``check(audit.utility(method))``); everything it computes
lives in :mod:`saliency_audit` itself.  The repository's ``audits/`` imports these tests, and
``saliency-audit init`` writes copies of them into a project's ``audits/`` for teams who want to edit them.
The folder's ``conftest.py`` makes it an audit suite (:mod:`saliency_audit.suite.hooks`): there a test that
takes ``method`` runs once per method, and the plugin reads its criterion from its name, ``test_<criterion>``
(``saliency_audit.plugin._pairs``).  ``init`` writes that ``conftest.py`` too.
The plugin and ``init`` read these files, never import them: their list and location are
:data:`saliency_audit.common.paths.SUITE_MODULES` and :func:`saliency_audit.common.paths.bundled_suite`.
"""
