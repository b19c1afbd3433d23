"""GPUs (saliency_audit/common/gpus.py): one pytest-xdist worker per GPU, and images per pass from free GPU memory.

No GPU is needed: torch.cuda's device count and memory figures are monkeypatched, and the probe pass runs
on the CPU model it is given.
"""
import math

import pytest
import torch
from torch import nn

from saliency_audit.common import gpus
from saliency_audit.config import AuditConfig, pass_images
from saliency_audit.models.info import ModelInfo
from saliency_audit.common.passcount import PASSES
from saliency_audit.models.wrapper import AuditModel

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _fresh():
    gpus.reset()
    yield
    gpus.reset()


def _tiny(size=(16, 16), seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2))
    info = ModelInfo(spec="tiny", arch="tiny", num_classes=2, input_size=size, in_channels=1, mean=(0.5,),
                     std=(0.25,))
    return AuditModel(net, info).eval()


class FakeCuda:
    """torch.cuda's memory figures: ``baseline`` allocated before the probe, ``peak`` during it, ``free``."""

    def __init__(self, monkeypatch, baseline=1_000_000, peak=1_140_000, free=10_000_000, total=80_000_000):
        self.baseline, self.peak, self.free, self.total = baseline, peak, free, total
        self.probes, self.devices = 0, set()
        for name in ("synchronize", "empty_cache"):
            monkeypatch.setattr(torch.cuda, name, self._seen)
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", self._reset)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: self._seen(device) or self.baseline)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: self._seen(device) or self.peak)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: self._seen(device) or (self.free,
                                                                                                   self.total))

    def _seen(self, device=None):
        if device is not None:
            self.devices.add(str(device))

    def _reset(self, device=None):
        self.probes += 1
        self._seen(device)


# -- one worker per GPU ----------------------------------------------------------------------------------
@pytest.mark.parametrize("count,expected", [
    (2, ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0", "cuda:1"]),
    (3, ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1", "cuda:2"]),
])
def test_workers_take_the_gpus_in_turn(count, expected):
    assert [gpus.worker_device("cuda", f"gw{i}", count) for i in range(6)] == expected


def test_what_is_not_pinned():
    assert gpus.worker_device("cuda:1", "gw2", 2) == "cuda:1"  # an explicit index is kept
    assert gpus.worker_device("cuda:0", "gw1", 3) == "cuda:0"
    assert gpus.worker_device("cuda", None, 2) == "cuda"  # no pytest-xdist
    assert gpus.worker_device("cpu", "gw1", 2) == "cpu"
    assert gpus.worker_device("cuda", "gw3", 1) == "cuda"  # one GPU
    assert gpus.worker_device("cuda", "gw3", 0) == "cuda"  # none: check_device says so
    assert gpus.worker_device("cuda", "master", 2) == "cuda"


def test_workers_sharing_a_gpu():
    assert gpus.workers_on("cuda", "cuda:1", 6, 2) == 3
    assert gpus.workers_on("cuda", "cuda:0", 5, 2) == 3
    assert gpus.workers_on("cuda", "cuda:2", 4, 3) == 1
    assert gpus.workers_on("cuda:1", "cuda:1", 4, 2) == 4  # an explicit index: every worker on it
    assert gpus.workers_on("cuda", "cuda", 3, 1) == 3


def test_pin_worker_reads_the_xdist_environment(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "6")
    assert gpus.pin_worker("cuda") == "cuda:1"
    assert gpus._sharing == {"cuda:1": 3}
    assert gpus.pin_worker("cuda:0") == "cuda:0"
    assert gpus.pin_worker("cpu") == "cpu"
    assert gpus.pin_worker("tpu") == "tpu"  # left for check_device's usage error
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    gpus.reset()
    assert gpus.pin_worker("cuda") == "cuda" and gpus._sharing == {}


def test_auto_workers_is_one_per_gpu(monkeypatch):
    from saliency_audit.plugin import pytest_xdist_auto_num_workers

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert gpus.auto_workers("cuda") == 4
    assert gpus.auto_workers("cuda:1") is None and gpus.auto_workers("cpu") is None and gpus.auto_workers(None) is None

    class Config:
        class option:
            saliency_device = "cuda"

    assert pytest_xdist_auto_num_workers(Config) == 4
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert gpus.auto_workers("cuda") is None  # pytest-xdist's CPU count (and then check_device's error)
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert gpus.auto_workers("cuda") is None  # the user's own count wins


@pytest.mark.parametrize("worker,device,expected", [
    ("gw4", "cuda", "cuda:1"),
    ("gw4", "cuda:2", "cuda:2"),
    (None, "cuda", "cuda"),
])
def test_plugin_pins_the_worker_device(pytester, monkeypatch, worker, device, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    if worker:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "6")
    else:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(f"""
        from saliency_audit.plugin import session_key

        def test_device(request):
            assert request.config.stash[session_key].config.device == {expected!r}
    """)
    pytester.runpytest(f"--device={device}", "-p", "no:cacheprovider").assert_outcomes(passed=1)


# -- images per pass from free GPU memory --------------------------------------------------------------
def test_pass_images_from_free_memory(monkeypatch):
    cuda = FakeCuda(monkeypatch)  # 140_000 bytes over 2 images: 70_000 per image
    model = _tiny()
    assert gpus.cuda_pass_images(model, (16, 16), "cuda:0") == math.floor(0.6 * 10_000_000 / 70_000) == 85
    assert cuda.probes == 1 and cuda.devices == {"cuda:0"}
    assert gpus.cuda_pass_images(model, (16, 16), "cuda:0") == 85 and cuda.probes == 1  # memoised
    cfg = AuditConfig(device="cuda:0")
    assert pass_images(cfg, (16, 16)) == 85
    assert pass_images(cfg, torch.Size([16, 16])) == 85
    assert pass_images(cfg, (224, 224)) == 20  # a size no model was probed at: the CPU rule
    assert pass_images(AuditConfig(device="cuda:1"), (16, 16)) == 64  # another GPU: not measured there


@pytest.mark.parametrize("free,expected", [(10**15, 1024), (1_000, 1), (0, 1)])
def test_pass_images_are_clamped(monkeypatch, free, expected):
    FakeCuda(monkeypatch, free=free)
    assert gpus.cuda_pass_images(_tiny(), (16, 16), "cuda") == expected


def test_smallest_figure_over_models_is_used(monkeypatch):
    cuda = FakeCuda(monkeypatch)
    a, b = _tiny(seed=0), _tiny(seed=1)
    assert gpus.cuda_pass_images(a, (16, 16), "cuda") == 85
    cuda.free = 5_000_000  # a model loaded later sees less free memory
    assert gpus.cuda_pass_images(b, (16, 16), "cuda") == 42
    cuda.free = 20_000_000
    assert gpus.cuda_pass_images(_tiny(seed=2), (16, 16), "cuda") == 171
    assert pass_images(AuditConfig(device="cuda"), (16, 16)) == 42 and cuda.probes == 3


def test_workers_on_one_gpu_share_its_memory(monkeypatch):
    FakeCuda(monkeypatch)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")  # gw1 and gw3 on cuda:1
    device = gpus.pin_worker("cuda")
    assert device == "cuda:1"
    assert gpus.cuda_pass_images(_tiny(), (16, 16), device) == math.floor(0.6 * 10_000_000 / 2 / 70_000) == 42


def test_cpu_pass_size_is_unchanged(monkeypatch):
    FakeCuda(monkeypatch)
    gpus.cuda_pass_images(_tiny(size=(128, 128)), (128, 128), "cuda")
    cpu = AuditConfig()
    assert (pass_images(cpu, (128, 128)), pass_images(cpu, (224, 224)), pass_images(cpu, (1024, 1024))) == (64, 20, 1)
    assert pass_images(AuditConfig(pass_batch=8), (64, 64)) == 8
    assert pass_images(AuditConfig(pass_pixels=10_000), (50, 50)) == 4


def test_probe_is_a_gradient_pass_and_not_audit_work(monkeypatch):
    FakeCuda(monkeypatch)
    seen = []
    model = _tiny()
    model.register_forward_hook(lambda m, i, o: seen.append((tuple(i[0].shape), i[0].requires_grad)))
    before = PASSES["images"]
    with torch.no_grad():  # as when a model is first loaded inside a no-grad pass
        gpus.cuda_pass_images(model, (16, 16), "cuda")
    assert seen == [((gpus.PROBE_IMAGES, 1, 16, 16), True)]
    assert PASSES["images"] == before
    assert all(p.grad is None for p in model.parameters())


def test_probe_model_notes_the_figure_in_the_evidence(monkeypatch):
    FakeCuda(monkeypatch)
    model = _tiny()
    record = gpus.probe_model(model, "cuda:0")
    assert model.info.to_dict()["extra"]["cuda_pass_images"] == record
    assert record["pass_images"] == 85 and record["bytes_per_image"] == 70_000 and record["free_bytes"] == 10_000_000
    assert gpus.probe_model(model, "cpu") is None


def test_a_failed_probe_leaves_the_cpu_rule(monkeypatch):
    FakeCuda(monkeypatch)

    def oom(device=None):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch.cuda, "max_memory_allocated", oom)
    model = _tiny()
    record = gpus.probe_model(model, "cuda")
    assert record["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert model.info.extra["cuda_pass_images"] == record
    assert pass_images(AuditConfig(device="cuda"), (16, 16)) == 64


def test_modelset_probes_each_loaded_model_on_cuda_only(monkeypatch):
    import saliency_audit.models as models
    from saliency_audit.models.modelset import ModelSet

    cuda = FakeCuda(monkeypatch)
    monkeypatch.setattr(models, "load_model", lambda spec, **kw: _tiny())
    cfg = AuditConfig(device="cuda:0")
    m = ModelSet(cfg, "tiny:x.pt", replicates=["tiny:y.pt"]).get("primary")
    assert m.info.extra["cuda_pass_images"]["pass_images"] == 85 and pass_images(cfg, (16, 16)) == 85
    assert cuda.probes == 1
    ModelSet(AuditConfig(), "tiny:x.pt").get("primary")
    assert cuda.probes == 1  # CPU: no probe


def test_merged_worker_evidence_starts_with_the_lowest_gpu():
    import json
    from types import SimpleNamespace

    from saliency_audit.plugin import pytest_testnodedown, session_key

    session = SimpleNamespace(worker_evidence=[])
    config = SimpleNamespace(stash={session_key: session})

    def down(device, tag):
        out = {"saliency_audit_evidence": json.dumps({"config": {"device": device}, "tag": tag})}
        pytest_testnodedown(SimpleNamespace(workeroutput=out, config=config), None)

    for device, tag in [("cuda:1", "a"), ("cuda:10", "b"), ("cuda:0", "c"), ("cuda:2", "d")]:
        down(device, tag)
    assert [e["tag"] for e in session.worker_evidence] == ["c", "a", "d", "b"]
    session.worker_evidence.clear()
    for tag in "xyz":  # CPU workers: the order they ended in, as before
        down("cpu", tag)
    assert [e["tag"] for e in session.worker_evidence] == ["x", "y", "z"]


@pytest.mark.slow  # three fresh processes import torch (24 s on 2 busy cores)
def test_xdist_workers_each_take_a_gpu(pytester):
    """Real pytest-xdist workers (subprocesses), each seeing 2 mocked GPUs: ``-n auto`` starts 2 workers and
    worker gwI audits on cuda:I."""
    pytest.importorskip("xdist")
    pytester.makeconftest("""
        from saliency_audit.suite.hooks import audit, pytest_addoption, pytest_generate_tests  # noqa
        import torch

        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 2
    """)
    pytester.makepyfile("""
        import os

        import pytest

        from saliency_audit.plugin import session_key

        @pytest.mark.parametrize("i", range(4))
        def test_device(request, i):
            index = int(os.environ["PYTEST_XDIST_WORKER"][2:])
            assert request.config.stash[session_key].config.device == f"cuda:{index}"
    """)
    result = pytester.runpytest_subprocess("-n", "auto", "--device=cuda", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*created: 2/2 workers*"])
