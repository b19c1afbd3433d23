"""Where saliency-audit keeps its caches (trained demo models, computed maps)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$SALIENCY_AUDIT_CACHE`` if set, else ``~/.cache/saliency-audit``."""
    env = os.environ.get("SALIENCY_AUDIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "saliency-audit"
