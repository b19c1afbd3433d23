"""Issue 29 (finding 8): a config value from a TOML file is type-checked as it is read, finite, within its
documented range or maximum, one of its choices, and what the evidence records is what is used; anything
else is one line naming the key and the file (``saliency_audit.config``, the block after ``load_config``)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from saliency_audit import config as cfgmod
from saliency_audit.config import AuditConfig, leaves, load_config
from saliency_audit.common.errors import AuditUsageError


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text, text
    return text


# == finding 8: the config ====================================================================================
def toml(tmp_path: Path, text: str | bytes) -> Path:
    f = tmp_path / "audit.toml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


@pytest.mark.parametrize("text,message", [
    ("device = 5", "device: expected a string, got 5"),
    ("cache_dir = 5", "cache_dir: expected a string, got 5"),
    ("cache_dir = ''", "cache_dir: expected a non-empty string"),
    ("[model]\nmean = ['a']\nstd = [1.0]", "model.mean: expected a list of finite numbers, got ('a',)"),
    ("[model]\nmean = [nan]\nstd = [1.0]", "model.mean: expected a list of finite numbers"),
    ("[model]\nmean = [0.5]\nstd = [inf]", "model.std: expected a list of finite numbers"),
    ("[model]\nmean = [5000]\nstd = [1]", "model.mean/model.std: expected means in [-1000, 1000]"),
    ("[randomization]\nemprt_min = nan", "randomization.emprt_min: expected a finite number, got nan"),
    ("[randomization]\nemprt_min = -inf", "randomization.emprt_min: expected a finite number"),
    ("[randomization]\nemprt_min = 50.0", "randomization.emprt_min: expected a number in [-1, 10]"),
    ("[utility]\nprior_images = 1000000000", "utility.prior_images: expected an integer from 1 to 100,000"),
    ("[postprocess]\nreduction = 'bogus'", "postprocess.reduction: expected one of 'abs-sum', got 'bogus'"),
    ("[postprocess]\nnormalization = 'none'", "postprocess.normalization: expected one of 'min-max per map'"),
    ("[methods.ig]\nintegration = 'simpson'", "methods.ig.integration: expected one of"),
    ("[methods.gradcam]\ninterpolation = 'cubic'", "methods.gradcam.interpolation: expected one of"),
    ("[methods.gradcam]\nlayer = 3", "methods.gradcam.layer: expected a string, got 3"),
    ("[randomization]\nblocks = [1]", "randomization.blocks: expected a list of name or list of names"),
    ("[utility]\nmin_ap = " + "9" * 400, "utility.min_ap: expected a finite number"),
    ("seed = -1", "seed: expected an integer from 0"),
    ("[stats]\nresamples = 99999999999", "stats.resamples: expected an integer from 100 to 1,000,000"),
    ("[methods.xrai]\nscales = [0, 5]", "methods.xrai.scales: expected segmentation scales"),
    ("device = 1979-05-27", "device: expected a string, got datetime.date(1979, 5, 27)"),
    ("tool = 5", "unknown key tool"),
    ("[tool]\nsaliency_audit = 5", "config must be a table"),
    (b"\xff\xfe\x00device = 'cpu'", "not UTF-8 text"),
    (b"\x00\x01\x02binary", "not valid TOML"),
])
def test_a_bad_config_value_is_one_line_naming_key_and_file(tmp_path, text, message):
    f = toml(tmp_path, text)
    with pytest.raises(AuditUsageError) as exc:
        load_config(audit_config=f)
    msg = one_line(exc)
    assert msg.startswith(f"--audit-config={f}: ") and message in msg, msg


def test_the_same_checks_in_pyproject(tmp_path):
    f = tmp_path / "pyproject.toml"
    f.write_text("[tool.saliency_audit]\ndevice = 5\n")
    with pytest.raises(AuditUsageError, match=r"pyproject.toml \[tool.saliency_audit\]: device: expected a string"):
        load_config(pyproject=f)
    f.write_text("[tool]\nsaliency_audit = 'x'\n")
    with pytest.raises(AuditUsageError, match="tool.saliency_audit: expected a table"):
        load_config(pyproject=f)
    f.write_bytes(b"\xff\xff")
    with pytest.raises(AuditUsageError, match="not UTF-8"):
        load_config(pyproject=f)


def test_a_config_file_too_large_or_a_directory(tmp_path):
    with pytest.raises(AuditUsageError, match="cannot read"):
        load_config(audit_config=tmp_path)
    with pytest.raises(AuditUsageError, match="more than the 1,048,576 bytes"):
        load_config(audit_config=toml(tmp_path, "# " + "x" * 2**20))




def _nested(key: str, value) -> dict:
    out: dict = {}
    node = out
    *parents, last = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return out


LEAVES = dict(leaves(AuditConfig()))


def test_every_string_key_is_an_enum_or_declared_free_text():
    """Finding 8's "every enum-like string": no string key escapes both lists (a new one must join one)."""
    strings = {k for k, v in LEAVES.items() if isinstance(v, str) or v is None}
    assert strings == set(cfgmod.CHOICES) | set(cfgmod.TEXT)
    for key, choices in cfgmod.CHOICES.items():
        assert LEAVES[key] in choices, key  # the default is one of its choices


@pytest.mark.parametrize("key", sorted(k for k, v in LEAVES.items() if isinstance(v, int) and not isinstance(v, bool)))
def test_every_count_is_bounded(key):
    assert key in cfgmod.INT_RANGES
    with pytest.raises(AuditUsageError, match=key.replace(".", r"\.")):
        AuditConfig().merged(_nested(key, cfgmod.INT_RANGES[key][1] + 1), "x.toml")
    AuditConfig().merged(_nested(key, LEAVES[key]), "x.toml")


@pytest.mark.parametrize("key", sorted(k for k, v in LEAVES.items() if isinstance(v, float)))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300, -1e300])
def test_every_real_value_is_finite_and_in_range(key, value):
    with pytest.raises(AuditUsageError) as exc:
        AuditConfig().merged(_nested(key, value), "x.toml")
    assert key in one_line(exc)


@pytest.mark.parametrize("key", sorted(cfgmod.CHOICES))
def test_every_enum_refuses_a_bogus_value(key):
    with pytest.raises(AuditUsageError, match=f"x.toml: {key}"):
        AuditConfig().merged(_nested(key, "bogus"), "x.toml")


def test_the_recorded_postprocess_is_the_one_used():
    """``postprocess.reduction``/``normalization`` have one choice each: what the evidence records is what
    methods/postprocess.py does (abs-sum over channels, min-max per map)."""
    from saliency_audit.methods.postprocess import postprocess

    d = AuditConfig().to_dict()["postprocess"]
    assert (d["reduction"], d["normalization"]) == ("abs-sum", "min-max per map")
    raw = np.array([[[[1.0, -3.0]], [[-1.0, 1.0]]]])  # (N=1, C=2, H=1, W=2)
    maps, _ = postprocess(raw, clip_percentile=100)
    np.testing.assert_array_equal(maps, [[[0.0, 1.0]]])  # |1|+|-1| = 2, |-3|+|1| = 4 -> min-max


def test_defaults_and_a_good_file_still_load(tmp_path):
    f = toml(tmp_path, "device = 'cuda:0'\ncache_dir = 'c'\n[model]\nmean = [0.5]\nstd = [0.25]\n"
                       "[randomization]\nemprt_min = 0.1\nblocks = ['layer4', ['layer3', 'layer2']]\n")
    c = load_config(audit_config=f)
    assert c.device == "cuda:0" and c.model.mean == (0.5,) and c.randomization.blocks[1] == ["layer3", "layer2"]
    assert isinstance(AuditConfig(), AuditConfig) and load_config().n_images == 48
