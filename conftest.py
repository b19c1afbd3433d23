"""Root conftest: only what in-repo runs need.

The plugin is normally registered through its ``pytest11`` entry point once
the package is installed (``pip install -e .``); this makes a plain checkout
work too, e.g. ``python -m pytest`` before installing.
"""
from importlib import metadata

try:
    _installed = any(ep.value == "saliency_audit.plugin" for ep in metadata.entry_points(group="pytest11"))
except Exception:  # pragma: no cover
    _installed = False

if not _installed:
    pytest_plugins = ["saliency_audit.plugin"]
