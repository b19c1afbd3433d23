"""The bundled audit suite's folder is an audit suite (see saliency_audit/suite/hooks.py)."""
from saliency_audit.suite.hooks import audit, pytest_addoption, pytest_generate_tests  # noqa: F401
