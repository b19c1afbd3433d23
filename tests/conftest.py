"""Import the heavy stack once, before any pytester run.

pytester's in-process runs snapshot ``sys.modules`` and drop every module a
run imported; torch, captum and matplotlib cannot be imported a second time
in one process (torch's C extension crashes: "bad call flags").  Importing
them here, at collection, keeps them out of every snapshot's diff.
"""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import captum.attr  # noqa: E402,F401
import contourpy  # noqa: E402,F401  (pybind11: a second import fails with "FillType is already registered")
import matplotlib.contour  # noqa: E402,F401
import matplotlib.pyplot  # noqa: E402,F401
import torch  # noqa: E402,F401

import scipy.stats  # noqa: E402,F401
import skimage.metrics  # noqa: E402,F401
import sklearn.linear_model  # noqa: E402,F401  (LIME's surrogate)
import sklearn.metrics  # noqa: E402,F401
import skimage.segmentation  # noqa: E402,F401
import skimage.filters  # noqa: E402,F401  (the edge control's Sobel)
import torch.distributed._functional_collectives  # noqa: E402,F401  (registers a TORCH_LIBRARY: once per process)

import torch._dynamo  # noqa: E402,F401  (an optimizer's first step imports it; its TORCH_LIBRARY registers once)

import saliency_audit  # noqa: E402


def _import_every_module_of_the_package() -> None:
    """Every ``saliency_audit`` module, imported before any pytester run snapshots ``sys.modules``.

    A module first imported inside an in-process run is dropped from ``sys.modules`` after it, while its package
    keeps the dropped module as an attribute: a later ``from saliency_audit.engine import estimate`` then patches a
    module the code no longer calls (a test's monkeypatch silently missed: CI failed on exactly that)."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(saliency_audit.__path__, "saliency_audit."):
        if info.name.rsplit(".", 1)[-1] == "__main__":  # runs the command line
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra (timm, torchxrayvision, monai) this environment lacks
            pass


_import_every_module_of_the_package()


def _share_the_cores_among_xdist_workers() -> None:
    """Under ``pytest -n N`` each worker's torch takes its share of the cores, not all of them: N workers of
    as many threads as cores each would make every core run N threads that spin-wait on one another."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


_share_the_cores_among_xdist_workers()


def _session_cache() -> tuple[str, bool]:
    """The one map/result cache of this test session: (folder, whether this process removes it at exit).

    Hermetic: never the user's ``~/.cache/saliency-audit`` nor a ``SALIENCY_AUDIT_CACHE`` of theirs, but a fresh
    temporary folder that every test of the session shares (the cache is content-keyed: maps, ROAD results and
    demo models are found again by what they are), pytester runs and subprocesses included through
    ``SALIENCY_AUDIT_CACHE``, which pytester's move of HOME does not touch.  ``SALIENCY_AUDIT_TEST_CACHE=DIR``
    keeps one across local runs instead.  An xdist worker inherits its controller's folder."""
    keep = os.environ.get("SALIENCY_AUDIT_TEST_CACHE")
    if keep:
        return str(Path(keep).expanduser().resolve()), False
    inherited = os.environ.get(_SESSION_CACHE_VAR)
    if inherited and os.environ.get("PYTEST_XDIST_WORKER") and Path(inherited).is_dir():
        return inherited, False
    return tempfile.mkdtemp(prefix="saliency-audit-tests-"), True


_SESSION_CACHE_VAR = "SALIENCY_AUDIT_SESSION_CACHE"  # the folder a controller made, for its xdist workers
SESSION_CACHE, _OWNED = _session_cache()
os.environ["SALIENCY_AUDIT_CACHE"] = os.environ[_SESSION_CACHE_VAR] = SESSION_CACHE
if _OWNED:
    atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)


import pytest  # noqa: E402

#: the conftest.py of an audit suite (the bundled suite's, which `saliency-audit init` writes beside the audit tests)
AUDIT_SUITE_CONFTEST = saliency_audit.common.paths.suite_sources()["conftest.py"]


@pytest.fixture
def pytester(pytester):
    """pytester's folder made an audit suite, as every pytester run of these tests is an audit (the short option
    names, ``method`` parametrized); tests/test_guest.py runs the plugin in folders that are not one."""
    pytester.makeconftest(AUDIT_SUITE_CONFTEST)
    return pytester


@pytest.fixture(autouse=True)
def _evidence_files_keep_the_schema(monkeypatch):
    """Every evidence file a test writes (audits, pytester runs, merges) is checked against the shipped JSON
    Schema as it is written, so the writer and the schema cannot drift apart; a test that wrote a file the
    schema rejects errors at teardown, naming the file and the JSON paths."""
    from saliency_audit import evidence as ev
    from saliency_audit.evidence.schema import problems

    real, real_encoded, bad = ev.write_json, ev.write_json_encoded, []

    def check(path, data):
        if isinstance(data, dict) and str(data.get("schema", "")).startswith("saliency-audit/evidence@"):
            found = problems(data)
            if found:
                bad.append(f"{path}: " + "; ".join(found[:5]))

    def checked(path, data, indent=1):
        check(path, data)
        return real(path, data, indent)

    def checked_encoded(path, data, results):  # the running evidence (each result encoded once)
        check(path, data)
        return real_encoded(path, data, results)

    monkeypatch.setattr(ev, "write_json", checked)
    monkeypatch.setattr(ev, "write_json_encoded", checked_encoded)
    yield
    assert not bad, "evidence written by this test breaks saliency-audit/evidence@1:\n" + "\n".join(bad)


def pytest_configure(config):
    """The suite prints its 25 slowest tests (CI's log keeps them), unless ``--durations`` says otherwise; an
    audit run (``pytest audits/``) does not load this file and prints none."""
    if config.option.durations is None:
        config.option.durations = 25
