"""Where saliency-audit keeps its caches (trained demo models, computed maps), and where the audit suite that
ships with the package lies (the plugin collects it, ``saliency-audit init`` copies it: both read it as files,
neither imports it)."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: The bundled suite's test modules (saliency_audit/suite), in report order of their criteria.
SUITE_MODULES = ("test_utility.py", "test_randomization.py", "test_consistency.py", "test_faithfulness.py",
                 "test_interpretability.py", "test_human.py")


def cache_root() -> Path:
    """``$SALIENCY_AUDIT_CACHE`` if set, else ``~/.cache/saliency-audit``."""
    env = os.environ.get("SALIENCY_AUDIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "saliency-audit"


def bundled_suite() -> Path:
    """The folder of the audit suite that ships with the package (saliency_audit/suite)."""
    return Path(__file__).resolve().parent.parent / "suite"


def suite_sources() -> dict[str, str]:
    """File name -> source text of the suite's conftest.py and each bundled test module (read as package
    resources: works from a wheel)."""
    here = resources.files("saliency_audit").joinpath("suite")
    return {name: here.joinpath(name).read_text(encoding="utf-8") for name in ("conftest.py", *SUITE_MODULES)}


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` whole or not at all (temp file + ``os.replace``: several processes may share a
    cache, and a reader never sees half a report); ``mode``: the file's permissions (a temp file is 0600)."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
