"""Property-based tests of the inputs issue 29 hardened: a ``--maps`` folder (its .npy and PNG maps,
``manifest.csv``, ``maps.json``) and a TOML config.  Whatever the files hold, reading them either succeeds
with what the contract promises or raises one of the project's one-line errors
(:class:`saliency_audit.common.errors.AuditError`); never another exception:

* a map that loads is float32, finite, in [0, 1], of the file's (H, W), and keeps the order of the file's
  values (min-max scaling is monotone);
* an indexed folder names only regular files whose real path lies inside the folder, under bare ids;
* a config that loads has every value of its documented type and range (``check_values`` passes again).

Budgets: ``tests/fuzzing.py`` (30 examples in CI, ``SALIENCY_AUDIT_FUZZ=deep`` for 1500).
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from saliency_audit.config import check_values, load_config
from saliency_audit.common.errors import AuditError
from saliency_audit.engine.external import index, read_map, read_provenance
from tests.fuzzing import FUZZ


def one_line(exc: AuditError) -> None:
    assert str(exc) and "\n" not in str(exc) and "\r" not in str(exc), repr(str(exc))


class Folder:
    """A fresh temporary folder per example (hypothesis runs many examples in one test call)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="fuzz29-"))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


DTYPES = st.sampled_from(["f2", "f4", "f8", "g", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?", "c8",
                          "M8[s]", "m8[s]", "U3", [("a", "<f4"), ("b", "<i2")]])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(DTYPES))
    shape = draw(SHAPES)
    if dtype.kind in "fc":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=min(64, dtype.itemsize * 8 // (
            2 if dtype.kind == "c" else 1))) if dtype.kind == "f" else None
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


def check_loaded_map(m: np.ndarray, source: np.ndarray | None) -> None:
    assert m.dtype == np.float32 and m.ndim == 2 and np.isfinite(m).all()
    assert m.min() >= 0 and m.max() <= 1
    if source is not None:  # monotone: a strictly larger value never maps lower
        s = source.reshape(m.shape).astype(np.float64) if source.dtype.kind != "f" else \
            source.reshape(m.shape).astype(np.longdouble)
        order = np.argsort(s, axis=None, kind="stable")
        assert (np.diff(m.reshape(-1)[order]) >= 0).all()


@FUZZ
@given(arr=arrays(), fortran=st.booleans(), cut=st.integers(0, 40))
def test_npy_maps(arr, fortran, cut):
    with Folder() as d:
        f = d / "m.npy"
        np.save(f, np.asfortranarray(arr) if fortran else arr, allow_pickle=False)
        if cut:  # a truncated file
            f.write_bytes(f.read_bytes()[:-cut])
        try:
            m = read_map(f)
        except AuditError as exc:
            one_line(exc)
            return
        assert arr.dtype.kind in "biuf" and (arr.dtype.kind != "f" or np.isfinite(arr).all())
        check_loaded_map(m, arr if not cut else None)


@FUZZ
@given(mode=st.sampled_from(["1", "L", "LA", "I;16", "I", "P", "RGB", "RGBA"]),
       data=st.data(), h=st.integers(1, 6), w=st.integers(1, 6), grey=st.booleans())
def test_png_maps(mode, data, h, w, grey):
    bands = {"1": 1, "L": 1, "LA": 2, "I;16": 1, "I": 1, "P": 1, "RGB": 3, "RGBA": 4}[mode]
    top = {"I;16": 65535, "I": 65535}.get(mode, 255)
    values = np.array(data.draw(st.lists(st.integers(0, top), min_size=h * w * bands, max_size=h * w * bands)))
    arr = values.reshape(h, w, bands)
    if grey and mode in ("RGB", "RGBA"):
        arr[..., 1] = arr[..., 2] = arr[..., 0]
    with Folder() as d:
        f = d / "m.png"
        if mode in ("I;16", "I"):
            Image.fromarray(arr[..., 0].astype(np.uint16)).save(f)
        elif mode == "1":
            Image.fromarray((arr[..., 0] > 127).astype(np.uint8) * 255).convert("1").save(f)
        elif mode == "P":
            im = Image.fromarray(arr[..., 0].astype(np.uint8), "P")
            im.putpalette(data.draw(st.lists(st.integers(0, 255), min_size=768, max_size=768)))
            im.save(f)
        else:
            Image.fromarray(arr.astype(np.uint8).squeeze(-1) if bands == 1 else arr.astype(np.uint8), mode).save(f)
        try:
            m = read_map(f)
        except AuditError as exc:
            one_line(exc)
            assert mode in ("RGB", "RGBA", "P") and "colour PNG" in str(exc), str(exc)
            return
        assert m.shape == (h, w)
        check_loaded_map(m, arr[..., 0] if mode not in ("1", "P") else None)


HOSTILE = st.sampled_from(["a.npy", "b.npy", "../out.npy", "/etc/passwd", "sub/a.npy", "..", ".", "", "a.npy\x00",
                           "link.npy", "loop.npy", "dir", "C:\\a.npy", "a\nb", "x" * 300, "a.png", '"a.npy"',
                           "out.npy", "../../x"])
ROW_TEXT = st.one_of(HOSTILE, st.text(max_size=12))


@FUZZ
@given(rows=st.lists(st.tuples(ROW_TEXT, ROW_TEXT), max_size=6), header=st.sampled_from(
    ["image,file", "file,image", "image", "image,file,image", "Image,File", ""]), raw=st.binary(max_size=20),
       use_raw=st.booleans())
def test_manifests(rows, header, raw, use_raw):
    with Folder() as root:
        d = root / "maps"
        d.mkdir()
        np.save(d / "a.npy", np.eye(3))
        np.save(d / "b.npy", np.eye(3))
        np.save(root / "out.npy", np.eye(3))
        (d / "dir").mkdir()
        (d / "link.npy").symlink_to(root / "out.npy")
        (d / "loop.npy").symlink_to(d / "loop.npy")
        if use_raw:
            (d / "manifest.csv").write_bytes(header.encode() + b"\n" + raw)
        else:
            def cell(v: str) -> str:
                return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v
            text = header + "\n" + "".join(f"{cell(a)},{cell(b)}\n" for a, b in rows)
            try:
                (d / "manifest.csv").write_text(text, encoding="utf-8", newline="")
            except (UnicodeEncodeError, ValueError):  # surrogates / NUL in a name: not writable as UTF-8
                return
        try:
            files = index(d, str(d))
        except AuditError as exc:
            one_line(exc)
            return
        base = d.resolve()
        for image, path in files.items():
            assert "/" not in image and "\\" not in image and image not in ("", ".", "..")
            assert path.resolve().is_relative_to(base) and path.resolve().is_file()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=20)
KEYED = st.fixed_dictionaries({}, optional={
    "model": JSON | st.fixed_dictionaries({}, optional={"fingerprint": JSON, "spec": JSON}),
    "dataset": JSON | st.dictionaries(st.sampled_from(["name", "root", "split", "finding"]), JSON),
    "params": JSON | st.fixed_dictionaries({"postprocess": JSON | st.fixed_dictionaries(
        {"clip_percentile": JSON | st.floats()})}),
    "seed": JSON, "ids": JSON, "constant": JSON, "method": JSON})


@FUZZ
@given(value=st.one_of(JSON, KEYED), tokens=st.sampled_from(["", "NaN", "Infinity", "-Infinity", "1e999", "[[[["]),
       raw=st.booleans())
def test_maps_json(value, tokens, raw):
    with Folder() as d:
        text = json.dumps(value, allow_nan=True)
        if raw and tokens:
            text = text[: len(text) // 2] + tokens + text[len(text) // 2:]
        (d / "maps.json").write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            data = read_provenance(d)
        except AuditError as exc:
            one_line(exc)
            assert str(d / "maps.json") in str(exc)
            return
        assert isinstance(data, dict)
        stack = [data]
        while stack:
            v = stack.pop()
            assert not (isinstance(v, float) and not math.isfinite(v))
            stack.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else [])


KEYS = st.sampled_from(["n_images", "seed", "device", "cache_dir", "explain", "sequential", "sequential_rule",
                        "batch_size", "target_class", "model", "methods", "postprocess", "utility", "randomization",
                        "stats", "completeness", "mean", "std", "input_size", "reduction", "prior_images",
                        "emprt_min", "clip_percentile", "sg", "ig", "gradcam", "layer", "blocks", "variants",
                        "fractions", "resamples", "multiplicity", "method", "bogus", "tool", "saliency_audit"])
SCALARS = st.one_of(st.integers(-2**70, 2**70), st.floats(), st.booleans(), st.text(max_size=6),
                    st.sampled_from(["abs-sum", "cpu", "obf", "holm", "BCa", "per_image", "layer4"]))
TREES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(KEYS, kids, max_size=4),
                     max_leaves=12)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string (surrogates aside)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


@FUZZ
@given(tree=st.dictionaries(KEYS, TREES, max_size=6), wrap=st.booleans(), junk=st.binary(max_size=8),
       use_junk=st.booleans())
def test_toml_configs(tree, wrap, junk, use_junk):
    body = "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in tree.items())
    if wrap:
        body = "[tool.saliency_audit]\n" + body
    with Folder() as d:
        f = d / "audit.toml"
        try:
            f.write_bytes(junk + body.encode("utf-8") if use_junk else body.encode("utf-8"))
        except UnicodeEncodeError:
            return
        try:
            cfg = load_config(audit_config=f)
        except AuditError as exc:
            one_line(exc)
            assert str(f) in str(exc) or "command line" in str(exc), str(exc)
            return
        check_values(cfg, "again")
