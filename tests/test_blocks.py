"""Randomization blocks: head-first, reverse execution order, every parameterized module exactly once.

The checks re-derive execution order with their own forward hooks, so they
do not trust the probe inside ``randomization_blocks``.
"""
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from saliency_audit.demo.archs import DemoCNN, DemoResNet
from saliency_audit.common.errors import AuditUsageError
from saliency_audit.models.blocks import Block, randomization_blocks

ARCHS = {
    "resnet18": (lambda: tvm.resnet18(weights=None), (3, 64, 64)),
    "densenet121": (lambda: tvm.densenet121(weights=None), (3, 64, 64)),
    "inception_v3": (lambda: tvm.inception_v3(weights=None, aux_logits=False, init_weights=False), (3, 75, 75)),
    "inception_v3_aux": (lambda: tvm.inception_v3(weights=None, aux_logits=True, init_weights=False), (3, 75, 75)),
    "vgg16_bn": (lambda: tvm.vgg16_bn(weights=None), (3, 64, 64)),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(weights=None), (3, 64, 64)),
    "democnn": (DemoCNN, (1, 128, 128)),
    "demoresnet": (DemoResNet, (1, 128, 128)),
}

EXPECTED = {
    "resnet18": ["fc", "layer4", "layer3", "layer2", "layer1", "conv1+bn1"],
    "densenet121": ["classifier", "features.denseblock4+features.norm5"]
    + [f"features.{k}{i}" for i in (3, 2, 1) for k in ("transition", "denseblock")]
    + ["features.conv0+features.norm0"],
    "inception_v3": ["fc", "Mixed_7c", "Mixed_7b", "Mixed_7a", "Mixed_6e", "Mixed_6d", "Mixed_6c", "Mixed_6b",
                     "Mixed_6a", "Mixed_5d", "Mixed_5c", "Mixed_5b", "Conv2d_4a_3x3", "Conv2d_3b_1x1",
                     "Conv2d_2b_3x3", "Conv2d_2a_3x3", "Conv2d_1a_3x3"],
    "vgg16_bn": ["classifier.6", "classifier.3", "classifier.0"] + [f"features.stage{i}" for i in (5, 4, 3, 2, 1)],
    "efficientnet_b0": ["classifier"] + [f"features.{i}" for i in range(8, -1, -1)],
    "democnn": ["head", "features.7", "features.6", "features.4", "features.3", "features.1", "features.0"],
    "demoresnet": ["head", "features.3", "features.2", "features.1", "features.0"],
}
EXPECTED["inception_v3_aux"] = EXPECTED["inception_v3"][:4] + ["AuxLogits"] + EXPECTED["inception_v3"][4:]


def _owners(net):
    """Modules holding parameters of their own."""
    return [(n, m) for n, m in net.named_modules() if any(True for _ in m.parameters(recurse=False))]


def _block_of(net, blocks):
    """id(module) -> list of block indices whose named modules contain it."""
    named = dict(net.named_modules())
    where: dict[int, list[int]] = {}
    for k, b in enumerate(blocks):
        for i in {id(m) for name in b.modules for m in named[name].modules()}:
            where.setdefault(i, []).append(k)
    return where


def _trace(net, shape):
    """Forward (eval) with hooks on every module: (module id -> (first start, last end)), event list."""
    clock, spans, events = [0], {}, []

    def pre(m, *_):
        clock[0] += 1
        s, e = spans.get(id(m), (clock[0], -1))
        spans[id(m)] = (min(s, clock[0]), e)
        events.append(("start", m))

    def post(m, *_):
        clock[0] += 1
        spans[id(m)] = (spans[id(m)][0], clock[0])
        events.append(("end", m))

    handles = [h for m in net.modules() for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with torch.no_grad():
            net.eval()(torch.rand(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return spans, events


@pytest.mark.parametrize("arch", list(ARCHS))
def test_blocks_head_first_in_reverse_execution_order_covering_each_layer_once(arch):
    torch.manual_seed(0)
    make, shape = ARCHS[arch]
    net = make()
    blocks = randomization_blocks(net, shape)
    assert [b.name for b in blocks] == EXPECTED[arch]
    named = dict(net.named_modules())
    where = _block_of(net, blocks)
    spans, events = _trace(net, shape)

    # every parameterized module in exactly one block; n_params adds up
    for name, module in _owners(net):
        assert len(where.get(id(module), [])) == 1, f"{name} is in blocks {where.get(id(module))}"
    assert sum(b.n_params for b in blocks) == sum(p.numel() for p in net.parameters())

    # head first: the first block holds the Linear layer that executes last
    last_linear = [m for kind, m in events if kind == "end" and isinstance(m, nn.Linear)][-1]
    assert where[id(last_linear)] == [0]

    # reverse execution order: all of block k+1 has finished before any of block k starts
    ran = []
    for b in blocks:
        mods = {id(m): m for n in b.modules for m in named[n].modules()}
        s = [spans[i] for i in mods if i in spans]
        ran.append((min(x for x, _ in s), max(y for _, y in s)) if s else None)
    not_run = [b.name for b, r in zip(blocks, ran) if r is None]
    assert not_run == (["AuxLogits"] if arch == "inception_v3_aux" else [])  # AuxLogits runs only in training
    executed = [r for r in ran if r is not None]
    for head_side, input_side in zip(executed, executed[1:]):
        assert input_side[1] < head_side[0]

    # a BatchNorm is in the block of its conv: the one before it (post-activation) or after it (pre-activation)
    order = [m for kind, m in events if kind == "start"]
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d) and id(m) in spans):
        i = order.index(bn)
        prev = next((m for m in reversed(order[:i]) if isinstance(m, nn.Conv2d)), None)
        nxt = next((m for m in order[i:] if isinstance(m, nn.Conv2d)), None)
        assert where[id(bn)] in [where[id(c)] for c in (prev, nxt) if c is not None]
    # and no block is made of normalization layers alone
    for b in blocks:
        own = [m for n in b.modules for m in named[n].modules() if any(True for _ in m.parameters(recurse=False))]
        assert not all(isinstance(m, nn.BatchNorm2d) for m in own), b.name


def test_inception_aux_logits_block_sits_where_it_runs_in_training():
    net = tvm.inception_v3(weights=None, aux_logits=True, init_weights=False).train()
    names = [b.name for b in randomization_blocks(net, (3, 75, 75))]
    seen = []

    class Stop(Exception):
        pass

    def stop(*_):
        raise Stop  # at 75 px the aux head itself cannot run; knowing when it starts is enough

    for n in ("Mixed_6e", "Mixed_7a"):
        getattr(net, n).register_forward_hook(lambda *_, n=n: seen.append(n))
    net.AuxLogits.register_forward_pre_hook(stop)
    with pytest.raises(Stop), torch.no_grad():
        net(torch.rand(1, 3, 75, 75))
    assert seen == ["Mixed_6e"]  # Mixed_6e done, Mixed_7a not started
    assert names.index("Mixed_7a") + 1 == names.index("AuxLogits") == names.index("Mixed_6e") - 1


def test_probe_leaves_the_network_untouched():
    net = tvm.resnet18(weights=None).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    randomization_blocks(net, (3, 64, 64))
    assert all(m.training for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_demo_input_channels_are_inferred_and_bad_probe_input_is_a_usage_error():
    assert [b.name for b in randomization_blocks(DemoResNet())] == EXPECTED["demoresnet"]
    with pytest.raises(AuditUsageError, match=r"set --input-size, or list the blocks head first in randomization\.blocks") as err:
        randomization_blocks(DemoCNN(), (3, 64, 64))
    assert "\n" not in str(err.value)


class _Scrambled(nn.Module):
    """Registration order (head first, BN after its conv's user) differs from execution order."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(8, 2)
        self.body = nn.Sequential(nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        self.stem = nn.Conv2d(1, 4, 3)
        self.stem_bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.body(F.relu(self.stem_bn(self.stem(x))))
        return self.out(x.mean((2, 3)))


class _Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.out = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1), nn.Linear(1, 2)

    def forward(self, x):
        return self.out(self.a(self.b(self.a(x))).mean((2, 3)))


def test_generic_fallback_follows_execution_not_registration():
    net = _Scrambled()
    blocks = randomization_blocks(net, (1, 16, 16))
    assert [b.name for b in blocks] == ["out", "body", "stem+stem_bn"]
    assert blocks[2].modules == ("stem", "stem_bn") and blocks[0].n_params == 18
    assert blocks[0].to_dict() == {"name": "out", "modules": ["out"], "n_params": 18}
    assert isinstance(blocks[0], Block)


def test_a_module_reused_across_blocks_has_no_order():
    with pytest.raises(AuditUsageError, match="interleaved"):
        randomization_blocks(_Reused(), (1, 8, 8))


def test_override_validates_names_and_overlap_and_reports_uncovered():
    net = tvm.resnet18(weights=None)
    with pytest.warns(UserWarning, match=r"10 parameterized module\(s\) in no block, never randomized: conv1, bn1, layer1"):
        blocks = randomization_blocks(net, override=["fc", ["layer4"], ["layer3", "layer2"]])
    assert [b.name for b in blocks] == ["fc", "layer4", "layer3+layer2"]
    assert blocks[2].modules == ("layer3", "layer2")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = randomization_blocks(net, override=["fc", "layer4", "layer3", "layer2", "layer1", ["conv1", "bn1"]])
    assert [b.name for b in full] == ["fc", "layer4", "layer3", "layer2", "layer1", "conv1+bn1"]

    with pytest.raises(AuditUsageError, match=r"no module named 'layer5'.*similar: .*layer4") as err:
        randomization_blocks(net, override=["fc", "layer5"])
    assert "\n" not in str(err.value)
    with pytest.raises(AuditUsageError, match=r"more than one block: layer4\.0\.conv1"):
        randomization_blocks(net, override=["fc", "layer4", ["layer4.0.conv1"]])
    with pytest.raises(AuditUsageError, match="empty"):
        randomization_blocks(net, override=[[]])
