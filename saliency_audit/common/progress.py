"""Progress of long steps (demo-model training, maps, ROAD passes), with tqdm, to the user's terminal.

Under pytest the plugin installs a writer that bypasses output capture (so a
bar shows while a test runs) and turns progress off under ``-q`` and in
pytest-xdist workers.  Without pytest, bars show when stderr is a terminal or
``SALIENCY_AUDIT_PROGRESS=1``; ``SALIENCY_AUDIT_PROGRESS=0`` turns them off
everywhere.  A bar appears once its step has run for a second, so quick
steps leave no trace.

A bar draws in place on a terminal only.  Written to a log (CI, a pipe, a file) a redrawn bar would leave a
line per refresh, so there a step prints plain milestone lines instead: at a quarter, a half and three
quarters of its units, and one when it is done, each once.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from typing import Callable

_state: dict = {"enabled": None, "write": None, "step": None, "terminal": None}
#: Seconds a step must run before its bar appears (quick steps stay quiet);
#: ``SALIENCY_AUDIT_PROGRESS_DELAY`` overrides it.
DELAY = 1.0


def configure(enabled: bool | None = None, write: Callable[[str], None] | None = None,
              terminal: bool | None = None) -> None:
    """``enabled``: None = decide from the environment; ``write``: where text goes (default: stderr);
    ``terminal``: whether that is a terminal (bars drawn in place) or a log (milestone lines); None: the
    process's stderr says."""
    _state.update(enabled=enabled, write=write, terminal=terminal)


def terminal() -> bool:
    if _state["terminal"] is not None:
        return _state["terminal"]
    return bool(getattr(sys.__stderr__, "isatty", lambda: False)())


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


class _Milestones:
    """A bar for a log: a plain line at each quarter of the units and one at the end, each once, once the step
    has run for ``delay`` seconds (tqdm's own non-terminal output repeats the bar at every refresh)."""

    def __init__(self, total: int, desc: str, unit: str, delay: float):
        self.total, self.desc, self.unit, self.delay = total, desc, unit, delay
        self.n, self.t0, self.said, self.postfix = 0, time.perf_counter(), 0, ""

    def _line(self, done: bool = False) -> None:
        seconds = time.perf_counter() - self.t0
        pct = 100 * self.n // self.total
        what = f"{self.n}/{self.total} {self.unit}"
        _Out().write(f"{self.desc}: {pct}% ({what}, {seconds:.1f} s{', ' + self.postfix if self.postfix else ''})"
                     + (" done" if done else "") + "\n")

    def update(self, n: int = 1) -> None:
        self.n += n
        quarter = min(3, 4 * self.n // self.total)
        if quarter > self.said and time.perf_counter() - self.t0 >= self.delay and self.n < self.total:
            self.said = quarter
            self._line()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        if time.perf_counter() - self.t0 >= self.delay:
            self._line(done=True)


@contextlib.contextmanager
def bar(total: int, desc: str, unit: str = "img"):
    """A progress bar of ``total`` units (images, steps) named ``desc``; silent when progress is off; milestone
    lines instead of a redrawn bar where the output is not a terminal."""
    if not enabled() or total <= 0:
        yield _Silent()
        return
    if _state.get("step"):
        desc = f"{_state['step']}: {desc}"
    delay = float(os.environ.get("SALIENCY_AUDIT_PROGRESS_DELAY", DELAY))
    if not terminal():
        shown = _Milestones(total, desc, unit, delay)
        try:
            yield shown
        finally:
            shown.close()
        return
    from tqdm import tqdm

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
