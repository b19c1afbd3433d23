"""Progress of long steps (demo-model training, maps, ROAD passes), with tqdm, to the user's terminal.

Under pytest the plugin installs a writer that bypasses output capture (so a
bar shows while a test runs) and turns progress off under ``-q`` and in
pytest-xdist workers.  Without pytest, bars show when stderr is a terminal or
``SALIENCY_AUDIT_PROGRESS=1``; ``SALIENCY_AUDIT_PROGRESS=0`` turns them off
everywhere.  A bar appears once its step has run for a second, so quick
steps leave no trace.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from typing import Callable

_state: dict = {"enabled": None, "write": None, "step": None}
#: Seconds a step must run before its bar appears (quick steps stay quiet);
#: ``SALIENCY_AUDIT_PROGRESS_DELAY`` overrides it.
DELAY = 1.0


def configure(enabled: bool | None = None, write: Callable[[str], None] | None = None) -> None:
    """``enabled``: None = decide from the environment; ``write``: where text goes (default: stderr)."""
    _state.update(enabled=enabled, write=write)


def enabled() -> bool:
    env = os.environ.get("SALIENCY_AUDIT_PROGRESS")
    if env in ("0", "1"):
        return env == "1"
    if _state["enabled"] is not None:
        return _state["enabled"]
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Out:
    """A file-like target for tqdm that goes through the installed writer."""

    def write(self, text: str) -> int:
        (_state["write"] or sys.stderr.write)(text)
        return len(text)

    def flush(self) -> None:
        if _state["write"] is None:
            sys.stderr.flush()


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass


@contextlib.contextmanager
def bar(total: int, desc: str, unit: str = "img"):
    """A progress bar of ``total`` units (images, steps) named ``desc``; silent when progress is off."""
    if not enabled() or total <= 0:
        yield _Silent()
        return
    from tqdm import tqdm

    if _state.get("step"):
        desc = f"{_state['step']}: {desc}"

    delay = float(os.environ.get("SALIENCY_AUDIT_PROGRESS_DELAY", DELAY))
    with tqdm(total=total, desc=desc, unit=unit, file=_Out(), mininterval=0.5, delay=delay, leave=True,
              dynamic_ncols=False, ncols=max(100, min(160, shutil.get_terminal_size().columns - 1))) as t:
        yield t


@contextlib.contextmanager
def step(label: str):
    """Name the bars opened inside after ``label`` (the criterion and method being audited)."""
    before = _state.get("step")
    _state["step"] = label
    try:
        yield
    finally:
        _state["step"] = before


def note(text: str) -> None:
    """One line of progress text (e.g. "training demo model 2/6"), when progress is on."""
    if enabled():
        _Out().write(text.rstrip("\n") + "\n")
