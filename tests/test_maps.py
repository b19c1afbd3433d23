"""MapStore: content-keyed disk cache, resume, and no sharing between different weights."""
import numpy as np
import torch
from torch import nn

from saliency_audit.config import AuditConfig
from saliency_audit.data.sample import Sample
from saliency_audit.engine.maps import MapStore
from saliency_audit.models.info import ModelInfo
from saliency_audit.models.randomize import randomize_copy
from saliency_audit.models.wrapper import AuditModel


def _tiny(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    info = ModelInfo(spec="tiny", arch="tiny", num_classes=2, input_size=(16, 16), in_channels=1, mean=(0.5,), std=(0.25,))
    return AuditModel(net, info).eval()


def _samples(n=5):
    g = torch.Generator().manual_seed(0)
    return [Sample(id=f"s{i}", image=torch.rand(1, 16, 16, generator=g), label=1) for i in range(n)]


def test_cache_round_trip_and_resume(tmp_path):
    cfg = AuditConfig()
    cfg.methods.sg.samples = 3
    model, samples = _tiny(), _samples()
    first = MapStore(cfg, tmp_path).maps(model, "sg", samples[:3])
    assert first.computed == 3
    again = MapStore(cfg, tmp_path).maps(model, "sg", samples)  # a new process, say: 3 cached, 2 new
    assert again.computed == 2
    np.testing.assert_array_equal(again.maps[:3], first.maps)
    fresh = MapStore(cfg, None).maps(model, "sg", samples)
    np.testing.assert_allclose(fresh.maps, again.maps, atol=1e-6)  # same seed -> same noise -> same maps


def test_parameters_and_seed_are_part_of_the_key(tmp_path):
    model, samples = _tiny(), _samples(2)
    cfg = AuditConfig()
    cfg.methods.sg.samples = 2
    a = MapStore(cfg, tmp_path).maps(model, "sg", samples)
    cfg2 = AuditConfig()
    cfg2.methods.sg.samples = 2
    cfg2.seed = 1
    b = MapStore(cfg2, tmp_path).maps(model, "sg", samples)
    assert b.computed == 2 and not np.allclose(a.maps, b.maps)
    assert MapStore(cfg2, tmp_path).maps(model, "grad", samples).computed == 2


def test_randomized_copy_never_shares_the_trained_models_maps(tmp_path):
    model, samples = _tiny(), _samples(3)
    store = MapStore(AuditConfig(), tmp_path)
    trained = store.maps(model, "grad", samples)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rand, n = randomize_copy(model, seed=3)
    assert n >= 4
    for k, v in model.state_dict().items():  # the user's model object is untouched
        torch.testing.assert_close(v, before[k])
    r = store.maps(rand, "grad", samples)
    assert r.computed == 3
    assert not np.allclose(trained.maps, r.maps)
    assert store.fingerprint(rand) != store.fingerprint(model)


def test_xrai_segments_are_kept_per_input_size():
    """Two models of different input sizes in one run (a reference architecture at another size): each gets
    XRAI segments of its own grid (they were cached by sample alone, and the second model got the first's)."""
    small, samples = _tiny(), _samples(2)
    big = _tiny(1)
    big.info = ModelInfo(spec="tiny24", arch="tiny", num_classes=2, input_size=(24, 24), in_channels=1, mean=(0.5,),
                         std=(0.25,))
    store = MapStore(AuditConfig(), None)
    a = store.maps(small, "xrai", samples)
    b = store.maps(big, "xrai", samples)
    assert a.maps.shape == (2, 16, 16) and b.maps.shape == (2, 24, 24)
    np.testing.assert_allclose(b.maps, MapStore(AuditConfig(), None).maps(big, "xrai", samples).maps, atol=1e-6)


def test_cache_files_read_are_kept_in_memory_up_to_a_bound(tmp_path, monkeypatch):
    """A warm run reads each cached map once (every sequential look asks for the first images' maps again), the
    same arrays as the file's, read-only; the most recent LOADED_BYTES are kept."""
    cfg = AuditConfig()
    model, samples = _tiny(), _samples(4)
    MapStore(cfg, tmp_path).maps(model, "grad", samples)  # computed and written
    store = MapStore(cfg, tmp_path)
    reads = []
    real = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    first = store.maps(model, "grad", samples)
    assert len(reads) == 4 and first.computed == 0
    again = store.maps(model, "grad", samples[:2])
    assert len(reads) == 4 and np.array_equal(again.maps, first.maps[:2])
    again.maps[0] += 1  # the stack is the caller's: the kept arrays do not change
    assert np.array_equal(store.maps(model, "grad", samples[:1]).maps[0], first.maps[0])
    small = MapStore(cfg, tmp_path)
    small.LOADED_BYTES = first.maps[0].nbytes * 2 * 2  # two maps with their signed maps
    assert np.array_equal(small.maps(model, "grad", samples).maps, first.maps)
    assert list(small._loaded) == [small._path(small.fingerprint(model), "grad", s.key()) for s in samples[2:]]
