"""Issue 29: evidence that stays trustworthy when its inputs are not -- maps made elsewhere (``--maps``):
maps.json, manifest.csv, the map files' precision and channels.  Every bad input is one line naming the file
(and row), at start-up; what is read is what the file means.  Generated arrays and files only (no model)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliency_audit.common.errors import AuditInputError, AuditUsageError
from saliency_audit.engine.external import ExternalMaps, index, parse_maps_option, read_map


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text, text
    return text


def ranks_kept(got: np.ndarray, truth: np.ndarray) -> None:
    want = (truth - truth.min()) / (truth.max() - truth.min())
    assert got.dtype == np.float32 and got.min() == 0 and got.max() == 1
    np.testing.assert_allclose(got, want, atol=1e-6)


BASE = np.random.default_rng(0).random((12, 12))
LEVELS = np.random.default_rng(1).integers(0, 256, (12, 12))


# == finding 6: maps read with the precision they carry =======================================================
@pytest.mark.parametrize("make,truth", [
    (lambda: BASE * 1e-3 + 1e5, BASE),  # float64, large offset: constant once cast to float32 first
    (lambda: BASE * 1e300, BASE),  # float64 beyond float32's range: was "NaN or infinite"
    (lambda: BASE * 1e-310, BASE),  # subnormal float64: zero in float32
    (lambda: (2**62 + LEVELS * 2**40).astype(np.int64), LEVELS),  # int64 with a large offset
    (lambda: LEVELS.astype(np.int64) + np.int64(-2**63), LEVELS),  # near int64's least value
    (lambda: (LEVELS.astype(np.uint64) * 2**55 + 2**63), LEVELS),  # uint64 beyond int64
    (lambda: (BASE * 1000 - 30000).astype(np.float16), None),  # float16
    (lambda: np.array([[-1e308, 1e308], [0.0, 5e307]]), np.array([[-1, 1], [0, 0.5]])),  # max - min overflows
])
def test_maps_keep_their_precision(tmp_path, make, truth):
    arr = make()
    np.save(tmp_path / "m.npy", arr)
    got = read_map(tmp_path / "m.npy")
    ranks_kept(got, arr.astype(np.float64) if truth is None else truth)


def test_full_int64_range_is_exact(tmp_path):
    np.save(tmp_path / "m.npy", np.array([[-2**63, 2**63 - 1], [0, -1]], np.int64))
    got = read_map(tmp_path / "m.npy")
    np.testing.assert_allclose(got, [[0, 1], [0.5, 0.5]], atol=1e-7)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_only_a_truly_non_finite_map_is_refused(tmp_path, bad):
    arr = BASE.copy()
    arr[3, 3] = bad
    np.save(tmp_path / "m.npy", arr)
    with pytest.raises(AuditInputError) as exc:
        read_map(tmp_path / "m.npy")
    assert "m.npy: map contains NaN or infinite values" in one_line(exc)


def test_a_map_constant_in_its_own_precision_is_flagged_not_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.full((8, 8), 2**62, np.int64))
    m, constant = ExternalMaps("x", tmp_path, {"a": tmp_path / "a.npy"}).load("a", (16, 16))
    assert constant and m.dtype == np.float32 and not m.any()
    np.save(tmp_path / "b.npy", np.full((8, 8), 1e5) + np.eye(8) * 1e-9)  # not constant in float64
    m, constant = ExternalMaps("x", tmp_path, {"b": tmp_path / "b.npy"}).load("b", (8, 8))
    assert not constant and m.max() == 1 and m.min() == 0


def test_a_colour_png_map_is_refused_and_a_grey_one_read(tmp_path):
    import matplotlib

    rgb = (matplotlib.colormaps["jet"](BASE)[..., :3] * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "jet.png")
    with pytest.raises(AuditInputError) as exc:
        read_map(tmp_path / "jet.png")
    assert one_line(exc) == (f"{tmp_path / 'jet.png'}: colour PNG: a saliency map must be one channel (greyscale); "
                             "a colour-mapped image cannot be inverted reliably")
    grey = (BASE * 255).astype(np.uint8)
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 7)], -1), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey).save(tmp_path / "l.png")
    for name in ("rgb.png", "rgba.png", "l.png"):
        ranks_kept(read_map(tmp_path / name), grey.astype(np.float64))


def test_sixteen_bit_png_levels_are_exact(tmp_path):
    levels = (LEVELS * 257 + 3).astype(np.uint16)
    Image.fromarray(levels).save(tmp_path / "m.png")
    ranks_kept(read_map(tmp_path / "m.png"), levels.astype(np.float64))


def test_a_npy_header_claiming_a_huge_map_is_refused_before_reading(tmp_path):
    f = tmp_path / "m.npy"
    with open(f, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)})
    with pytest.raises(AuditInputError, match="larger than the"):
        read_map(f)


# == findings 1, 2: maps.json and manifest.csv ================================================================
def folder_with(tmp_path: Path, n: int = 2) -> Path:
    d = tmp_path / "maps"
    d.mkdir()
    for k in range(n):
        np.save(d / f"id{k}.npy", BASE)
    return d


@pytest.mark.parametrize("text,needle", [
    ('{"params": {"postprocess": {"clip_percentile": NaN}}}', "not valid JSON"),
    ('{"seed": Infinity}', "not valid JSON"),
    ('{"params": {"postprocess": {"clip_percentile": 1e999}}}', "too large for a number"),
    ('{"params": {"postprocess": {"clip_percentile": 250}}}', "not a percentile in (0, 100]"),
    ('{"model": 5}', "model: expected an object"),
    ('{"model": {"fingerprint": 7}}', "model.fingerprint: expected a string"),
    ('{"dataset": {"root": ["x"]}}', "dataset.root: expected a string"),
    ('[1, 2]', "expected a JSON object"),
    ('{"ids": [1]}', "ids: expected a list of image ids"),
    ('{"seed": 1.5}', "seed: 1.5 is not an integer"),
    ("{" * 100 + "}" * 100, "nested 100 deep"),
])
def test_a_bad_maps_json_is_one_line_at_start_up(tmp_path, text, needle):
    d = folder_with(tmp_path)
    (d / "maps.json").write_text(text)
    with pytest.raises(AuditUsageError) as exc:
        parse_maps_option(str(d), set())
    msg = one_line(exc)
    assert msg.startswith(f"{d / 'maps.json'}: ") and needle in msg, msg


def test_a_good_maps_json_is_kept(tmp_path):
    d = folder_with(tmp_path)
    (d / "maps.json").write_text('{"model": {"fingerprint": "ab", "spec": "demo"}, "seed": 3, "ids": ["id0"], '
                                 '"params": {"postprocess": {"clip_percentile": 99.0}}}')
    assert parse_maps_option(str(d), set()).provenance["seed"] == 3


@pytest.mark.parametrize("image,file,needle", [
    ("id0", "../outside.npy", "no directory part allowed"),
    ("id0", "/etc/passwd", "no directory part allowed"),
    ("id0", "sub/id0.npy", "no directory part allowed"),
    ("../../evil", "id0.npy", "no directory part allowed"),  # view writes <id>.png: never outside its folder
    ("/abs", "id0.npy", "no directory part allowed"),
    ("id0", "link.npy", "resolves to"),  # a symlink inside the folder to a file outside
    ("id0", "x" * 300, "more than the 255"),
])
def test_manifest_paths_stay_inside_the_folder(tmp_path, image, file, needle):
    d = folder_with(tmp_path)
    np.save(tmp_path / "outside.npy", BASE)
    (d / "link.npy").symlink_to(tmp_path / "outside.npy")
    (d / "manifest.csv").write_text(f"image,file\nid1,id1.npy\n{image},{file}\n")
    with pytest.raises(AuditInputError) as exc:
        index(d, str(d))
    msg = one_line(exc)
    assert msg.startswith(f"{d / 'manifest.csv'}: row 3: ") and needle in msg, msg


def test_a_symlink_out_of_a_plain_folder_is_refused(tmp_path):
    d = folder_with(tmp_path)
    np.save(tmp_path / "outside.npy", BASE)
    (d / "id9.npy").symlink_to(tmp_path / "outside.npy")
    with pytest.raises(AuditInputError, match="resolves to .*outside"):
        parse_maps_option(str(d), set())
    (d / "id9.npy").unlink()
    (d / "id9.npy").symlink_to(d / "id0.npy")  # a link inside the folder is fine
    assert set(parse_maps_option(str(d), set()).files) == {"id0", "id1", "id9"}


def test_view_reads_the_manifest_through_the_same_checks(tmp_path, capsys):
    from saliency_audit.cli import main

    d = folder_with(tmp_path)
    (d / "manifest.csv").write_text("image,file\n../../escaped,id0.npy\n")
    out = tmp_path / "deep" / "er" / "ov"
    assert main(["view", str(d), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "row 2" in err and "no directory part allowed" in err and err.count("\n") == 1
    assert not list(tmp_path.rglob("escaped*"))


def test_manifest_limits(tmp_path, monkeypatch):
    import saliency_audit.engine.external as ext

    d = folder_with(tmp_path)
    (d / "manifest.csv").write_text("image,file\n" + "".join(f"id{k % 2},id{k % 2}.npy\n" for k in range(6)))
    monkeypatch.setattr(ext, "MAX_MANIFEST_ROWS", 5)
    with pytest.raises(AuditInputError, match="row 7: more than the 5 rows"):
        index(d, str(d))
    monkeypatch.setattr(ext, "MAX_MANIFEST_BYTES", 10)
    with pytest.raises(AuditInputError, match="bytes, more than the 10 a manifest may have"):
        index(d, str(d))
