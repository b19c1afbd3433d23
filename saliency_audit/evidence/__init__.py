"""The evidence file, schema ``saliency-audit/evidence@1``: its JSON Schema ships as
``saliency_audit/schemas/evidence-1.json`` (:mod:`saliency_audit.evidence.schema`; docs/reading-a-verdict.md).

Only builtin JSON types: it is the machine-readable record a CI gate or a
regulatory file relies on, and it travels between pytest-xdist workers.
Written atomically after every result, so an interrupted run keeps what it
computed.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import socket
import sys
import tempfile
from importlib import metadata
from pathlib import Path

SCHEMA = "saliency-audit/evidence@1"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("saliency-audit", "torch", "torchvision", "captum", "saliency", "numpy", "scipy",
                 "scikit-image", "scikit-learn", "pydicom", "pytest"):
        try:
            out[dist.replace("-", "_")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    if "saliency_audit" not in out:
        from .. import __version__

        out["saliency_audit"] = __version__
    return out


def git_revision(cwd: str | Path | None = None) -> dict | None:
    """The git commit (and whether the work tree has changes) of the directory the audit runs in, if any."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True).stdout

    try:
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(git("status", "--porcelain").strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def run_info(seed: int, argv: list[str] | None = None, started: str | None = None) -> dict:
    return {"started": started or now(), "finished": None, "seed": seed,
            "argv": list(sys.argv if argv is None else argv), "cwd": os.getcwd(), "git": git_revision(),
            "versions": versions(),
            "host": {"name": socket.gethostname(), "platform": platform.platform(),
                     "cpus": os.cpu_count()}}


def write_json(path: Path, data: dict, indent: int | None = 1) -> str:
    """Write ``data`` atomically; returns the sha256 of the bytes written (the report's footer quotes it).

    Evidence (a dict with this schema's tag) that holds a non-finite number or contradicts itself is written
    as a ``failed`` run naming the problem (:func:`saliency_audit.evidence.check.guard`), never raised: a
    writer that raised would fail every later test and leave the previous run's file in place.  Any other
    data with a non-finite number is an AuditInputError naming its JSON path."""
    from .check import guard, nonfinite

    path = Path(path)
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        data = guard(data)
    try:
        payload = (json.dumps(data, indent=indent, allow_nan=False) + "\n").encode("ascii")  # ensure_ascii: ASCII
    except ValueError:
        from ..common.errors import AuditInputError

        found = nonfinite(data, 1)
        if not found:
            raise
        raise AuditInputError(f"{path}: not written: {found[0]}, not a number JSON allows") from None
    return _write_bytes(path, payload)


def write_json_encoded(path: Path, evidence: dict, results: list[str | None]) -> str:
    """:func:`write_json` of running evidence (compact) whose results are already encoded: ``results[i]`` is
    ``json.dumps(evidence["results"][i], allow_nan=False)`` of a result with no non-finite number, or None when
    not.  The same bytes as :func:`write_json` writes, without encoding and walking every result again at each
    of a run's writes (a result is final once recorded; the results are 94 % of a demo run's 3.4 MB); evidence
    the guard must change (:func:`saliency_audit.evidence.check.guard`) takes :func:`write_json`'s path."""
    from .check import contradictions

    path = Path(path)
    if (len(results) != len(evidence.get("results") or []) or any(r is None for r in results)
            or contradictions(evidence, results_checked=True)):
        return write_json(path, evidence, indent=None)
    try:  # json.dumps of a dict without indent: '{"key": value, ...}', in insertion order
        parts = [f"{json.dumps(k)}: " + ("[" + ", ".join(results) + "]" if k == "results" else
                                          json.dumps(evidence[k], allow_nan=False)) for k in evidence]
    except ValueError:  # not expected (the check walked every number outside the results): the guard's path
        return write_json(path, evidence, indent=None)
    return _write_bytes(path, ("{" + ", ".join(parts) + "}\n").encode("ascii"))


def _write_bytes(path: Path, payload: bytes) -> str:
    """``payload`` to ``path`` atomically (mode 0644); returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the evidence is meant to be shared like the report
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return hashlib.sha256(payload).hexdigest()


ROLES = ("primary", "randomized", "random_label", "replicate", "reference")


def sort_models(models: list[dict]) -> list[dict]:
    """Models in a fixed order (role, then spec), whichever test or xdist worker loaded them first."""
    return sorted(models, key=lambda m: (ROLES.index(m["role"]) if m["role"] in ROLES else len(ROLES), m["spec"]))


def sort_results(results: list[dict]) -> list[dict]:
    from ..config import CRITERIA
    from ..methods import METHODS

    def key(r):
        c = CRITERIA.index(r["criterion"]) if r["criterion"] in CRITERIA else len(CRITERIA)
        m = list(METHODS).index(r["method"]) if r["method"] in METHODS else len(METHODS)
        return (c, r["criterion"], str(r.get("finding") or ""), m, r["method"], r.get("model", ""))

    return sorted(results, key=key)
