"""Hypothesis budgets for the input fuzzing (``tests/test_fuzz_*.py``): small in CI, large on demand.

``SALIENCY_AUDIT_FUZZ=deep`` (what ``benchmarks/fuzz_inputs.py`` sets) raises the number of examples
fifty-fold.  Each example writes real files, slow by hypothesis's standards, hence no deadline; the CI
profile is derandomized so a CI run is reproducible.
"""
import os

from hypothesis import HealthCheck, settings

_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
           HealthCheck.filter_too_much]
settings.register_profile("fuzz-ci", max_examples=30, deadline=None, suppress_health_check=_CHECKS, derandomize=True)
settings.register_profile("fuzz-deep", max_examples=1500, deadline=None, suppress_health_check=_CHECKS)

#: Use as ``@FUZZ`` on a ``@given`` test.
FUZZ = settings(settings.get_profile("fuzz-deep" if os.environ.get("SALIENCY_AUDIT_FUZZ") == "deep" else "fuzz-ci"))
