"""``saliency-audit report --pdf``: print the standalone HTML report to PDF with a headless Chromium.

The PDF is the same page printed, not a second renderer: the report needs no
network and no scripts, so printing it offline is faithful, and its print
stylesheet opens the collapsed ``<details>`` sections.  The browser is the one
``SALIENCY_AUDIT_BROWSER`` names, else the first of :data:`BROWSERS` on PATH.
Every failure is a :class:`PdfError` whose message is one line naming the
browser (or, when none is found, saying how to get one).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

ENV = "SALIENCY_AUDIT_BROWSER"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "microsoft-edge")
TIMEOUT_S = 120.0


class PdfError(Exception):
    """The PDF could not be printed; the message is one line."""


def find_browser(environ=None) -> str:
    """The browser's executable: ``$SALIENCY_AUDIT_BROWSER`` (a path or a name on PATH), else the first of
    :data:`BROWSERS` on PATH."""
    environ = os.environ if environ is None else environ
    named = environ.get(ENV, "").strip()
    if named:
        found = shutil.which(named, path=environ.get("PATH"))
        if not found:
            raise PdfError(f"{ENV}={named}: no such executable")
        return found
    for name in BROWSERS:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    raise PdfError(f"--pdf needs a headless Chromium and none was found ({', '.join(BROWSERS)} on PATH): install "
                   f"one (Debian/Ubuntu: apt-get install chromium) or set {ENV} to a Chromium-based browser")


def browser_args(browser: str, html: Path, pdf: Path, profile: Path) -> list[str]:
    """The command line that prints ``html`` to ``pdf``."""
    args = [browser, "--headless", f"--print-to-pdf={pdf}",
            "--no-pdf-header-footer", "--print-to-pdf-no-header",  # the flag's name since Chrome 120, and before
            "--disable-gpu", "--no-first-run", "--disable-extensions", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}"]  # a fresh profile: never hand the job to a browser the user has open
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    return args + [Path(html).resolve().as_uri()]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _run(args: list[str], timeout: float, late: str) -> subprocess.CompletedProcess:
    """Run the browser in its own process group, so a timeout ends its renderer and GPU processes too."""
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True)
    except OSError as exc:
        raise PdfError(f"{Path(args[0]).name} ({args[0]}): cannot run: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (OSError, AttributeError):  # AttributeError: no process groups (Windows)
            proc.kill()
        proc.communicate()
        raise PdfError(late) from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def print_pdf(html: Path, pdf: Path, browser: str | None = None, timeout: float = TIMEOUT_S) -> Path:
    """Print the report ``html`` to ``pdf`` (replaced atomically); returns ``pdf``."""
    browser = browser or find_browser()
    html, pdf = Path(html), Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    name = Path(browser).name
    with tempfile.TemporaryDirectory(prefix="saliency-audit-pdf-") as work:
        out = Path(work) / "report.pdf"
        proc = _run(browser_args(browser, html, out, Path(work) / "profile"), timeout,
                    f"{name} ({browser}): did not print {html.name} within {timeout:.0f} s")
        head = out.read_bytes()[:5] if out.is_file() else b""
        if proc.returncode != 0 or head != b"%PDF-":
            what = f"exit status {proc.returncode}" if proc.returncode else (
                "wrote no PDF" if not head else "wrote a file that is not a PDF")
            raise PdfError(f"{name} ({browser}): printing {html.name} failed ({what}): "
                           f"{_last_line(proc.stderr or proc.stdout)}")
        try:
            tmp = pdf.with_name(f".{pdf.name}.tmp")
            shutil.copyfile(out, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, pdf)
        except OSError as exc:
            raise PdfError(f"{pdf}: cannot write: {exc.strerror or exc}") from None
    return pdf
