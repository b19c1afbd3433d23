"""No command writes over a file it reads, into a folder it reads, or outside its output (issue 29).

Each writing command of ``saliency-audit`` is run with its output on one of its inputs (refused, exit 2, one
line naming both, the input unchanged) and, where it is cheap, for real, checking that every file it created
lies under its output.  Also: ``view`` never writes where a manifest's ids point, ``maps -o`` never mixes
two runs' maps, ``diff`` never passes a run with nothing decided, ``init`` is all or nothing, and nothing the
CLI prints from a file can forge a line.
"""
from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from saliency_audit.cli import main as cli
from saliency_audit.common.outputs import OutputClash, check_outputs, inside, safe_name
from saliency_audit.common.printable import printable
from tests.test_comparison import base, evidence, result, run


def files_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def new_files(before: dict, root: Path) -> set[Path]:
    after = files_under(root)
    changed = {p for p, b in after.items() if before.get(p) != b}
    assert all(p in after for p in before), "a file was removed"
    return changed


def one_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("saliency-audit: error: "), err
    for needle in needles:
        assert str(needle) in err[0], (needle, err[0])
    return err[0]


def _evidence(tmp_path, name="a.json", seed=0, **kw) -> Path:
    rng = np.random.default_rng(seed)
    path = tmp_path / name
    path.write_text(json.dumps(run(base(rng), rng, **kw)))
    return path


def _maps(folder: Path, ids=("a", "b"), suffix=".npy") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for sid in ids:
        m = rng.uniform(0, 1, (16, 16)).astype(np.float32)
        if suffix == ".npy":
            np.save(folder / f"{sid}.npy", m)
        else:
            from PIL import Image

            Image.fromarray((m * 255).astype(np.uint8)).save(folder / f"{sid}.png")
    return folder


# -- the guard --------------------------------------------------------------------------------------------------
def test_check_outputs_refuses_an_output_on_in_or_around_an_input(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("{}")
    (tmp_path / "link.json").symlink_to(a)
    os.link(a, tmp_path / "hard.json")
    maps = _maps(tmp_path / "maps")
    for outputs, folders in (([a], []), ([tmp_path / "link.json"], []), ([tmp_path / "hard.json"], []),
                             ([tmp_path / "sub" / ".." / "a.json"], []), ([maps / "x.png"], []),
                             ([], [maps]), ([], [maps / "overlays"]), ([], [tmp_path])):
        with pytest.raises(OutputClash) as err:
            check_outputs("cmd", inputs=[a, maps], outputs=outputs, folders=folders)
        assert "\n" not in str(err.value) and str((outputs or folders)[0]) in str(err.value)
    check_outputs("cmd", inputs=[a, maps, None], outputs=[tmp_path / "b.json", None], folders=[tmp_path / "out"])


def test_safe_name_keeps_plain_ids_and_never_names_a_path(tmp_path):
    assert safe_name("demo-test-00001", ".png") == "demo-test-00001.png"
    assert safe_name("a b é", ".png") == "a b é.png"
    names = set()
    for sid in ("../../x", "/etc/x", "..", ".", "", ".hidden", "a/b", "a_b", "a\\b", "C:x", "a\nb", "a\x1bb"):
        name = safe_name(sid, ".png")
        assert "/" not in name and "\\" not in name and not name.startswith(".") and printable(name) == name
        assert inside(tmp_path, name).parent == tmp_path
        names.add(name)
    assert len(names) == 12  # no two ids share a file
    for bad in ("../x.png", "/tmp/x.png", "..", "a/b.png"):
        with pytest.raises(OutputClash):
            inside(tmp_path, bad)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(OutputClash):  # a link planted in the output folder is not followed out of it
        inside(tmp_path / "out", "link.png")


def test_printable_escapes_every_control_and_line_break():
    for c in range(0x110000):
        ch = chr(c)
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or 0x202A <= c <= 0x202E or 0x2066 <= c <= 0x2069:
            assert printable(ch) != ch and printable(ch).isascii(), hex(c)
    assert printable("utility[grad\x1b[2K\r0 worse]\n") == "utility[grad\\x1b[2K\\r0 worse]\\n"
    assert printable("é ü 漢") == "é ü 漢"


# -- view -------------------------------------------------------------------------------------------------------
def test_view_writes_only_inside_its_output_whatever_ids_a_manifest_holds(tmp_path, capsys):
    """Finding 2: manifest.csv ids '../../x' and an absolute path put no file outside -o."""
    maps = _maps(tmp_path / "work" / "maps", ids=("m1", "m2"))
    target = tmp_path / "planted"
    (maps / "manifest.csv").write_text(f"image,file\n../../../escaped,m1.npy\n{target},m2.npy\n")
    out = tmp_path / "work" / "ov"
    before = files_under(tmp_path)
    code = cli(["view", str(maps), "-o", str(out)])
    made = new_files(before, tmp_path)
    assert all(out in p.parents for p in made), made
    assert not target.with_suffix(".png").exists() and not (tmp_path / "escaped.png").exists()
    if code == 0:  # (or the manifest reader refuses such ids: exit 2, nothing written)
        assert len(made) == 2
    else:
        assert code == 2 and not made


def test_view_refuses_an_output_on_or_in_its_maps_and_defaults_beside_them(tmp_path, capsys):
    """Finding 4: view PNGDIR -o PNGDIR replaced the maps with overlays; -o MAPS/overlays and -o around the
    maps are refused too.  The default output is FOLDER-overlays, beside the folder."""
    pngs = _maps(tmp_path / "pngs", suffix=".png")
    before = files_under(tmp_path)
    for out in (pngs, pngs / "overlays", tmp_path):
        assert cli(["view", str(pngs), "-o", str(out)]) == 2
        one_error(capsys, out, pngs)
        assert not new_files(before, tmp_path)
    assert cli(["view", str(pngs)]) == 0
    made = new_files(before, tmp_path)
    assert {p.parent for p in made} == {tmp_path / "pngs-overlays"} and len(made) == 2
    assert f"{tmp_path / 'pngs-overlays'}: 2 overlays" in capsys.readouterr().out


def test_view_of_a_folder_without_maps_is_an_error_naming_it(tmp_path, capsys):
    """Finding 9: 'view' of the folder 'maps -o' wrote printed '0 overlays' and exited 0."""
    (tmp_path / "empty").mkdir()
    assert cli(["view", str(tmp_path / "empty")]) == 2
    one_error(capsys, tmp_path / "empty", "no .npy or .png maps")
    _maps(tmp_path / "out" / "grad")
    _maps(tmp_path / "out" / "gradcam")
    assert cli(["view", str(tmp_path / "out")]) == 2
    one_error(capsys, "holds method folders grad/, gradcam/: give one of them")
    assert not (tmp_path / "out-overlays").exists() and not (tmp_path / "empty-overlays").exists()


# -- report, merge, diff ----------------------------------------------------------------------------------------
def test_report_refuses_to_overwrite_its_evidence_and_writes_only_its_report(tmp_path, capsys):
    a = _evidence(tmp_path)
    before = files_under(tmp_path)
    for args in (["-o", str(a)], ["-o", str(tmp_path / "x.html"), "--pdf"]):
        if "--pdf" in args:  # the PDF beside the HTML would be the evidence
            a.rename(tmp_path / "x.pdf")
            a = tmp_path / "x.pdf"
            before = files_under(tmp_path)
        assert cli(["report", str(a), *args]) == 2
        one_error(capsys, a)
        assert not new_files(before, tmp_path)
    assert cli(["report", str(a)]) == 0
    assert new_files(before, tmp_path) == {tmp_path / "saliency-audit.html"}


def _shards(folder: Path) -> list[Path]:
    """Two synthetic shards (1/2 and 2/2) of one audit: its results split between them."""
    from saliency_audit.evidence.merge import shard_of

    rng = np.random.default_rng(5)
    whole = run(base(rng), rng)
    planned = sorted({(f"test_{r['criterion']}", r["method"]) for r in whole["results"]})
    paths = []
    for index in (1, 2):
        mine = shard_of(set(planned), index, 2)  # as the plugin's --audit-shard records a shard
        results = [r for r in whole["results"] if (f"test_{r['criterion']}", r["method"]) in mine]
        part = json.loads(json.dumps(whole))
        part["results"], part["run"]["shard"] = results, {
            "index": index, "of": 2, "pairs": [f"{t}[{m}]" for t, m in sorted(mine)],
            "planned": [f"{t}[{m}]" for t, m in planned]}
        part["run"]["exit_status"] = 0
        (folder / f"s{index}").mkdir(parents=True)
        paths.append(folder / f"s{index}" / "evidence.json")
        paths[-1].write_text(json.dumps(part))
    return paths


def test_merge_writes_only_its_two_files_and_never_over_a_shard(tmp_path, capsys):
    s1, s2 = _shards(tmp_path)
    before = files_under(tmp_path)
    for out in (s1.parent, s2.parent):  # -o the folder of a shard: its evidence.json is an input
        assert cli(["merge", str(s1), str(s2), "-o", str(out)]) == 2
        one_error(capsys, out / "evidence.json")
        assert not new_files(before, tmp_path)
    assert cli(["merge", str(s1), str(s2), "-o", str(tmp_path / "m")]) == 0
    assert new_files(before, tmp_path) == {tmp_path / "m" / "evidence.json", tmp_path / "m" / "saliency-audit.html"}


def test_diff_refuses_to_write_its_json_over_an_input(tmp_path, capsys):
    a, b = _evidence(tmp_path), _evidence(tmp_path, "b.json", seed=1)
    before = files_under(tmp_path)
    for target in (a, b):
        assert cli(["diff", str(a), str(b), "--json", str(target)]) == 2
        one_error(capsys, target)
        assert not new_files(before, tmp_path)
    assert cli(["diff", str(a), str(b), "--json", str(tmp_path / "c.json")]) in (0, 1)
    assert new_files(before, tmp_path) == {tmp_path / "c.json"}


@pytest.mark.parametrize("results, needle", [
    ([], "no results to compare"),
    ([result("utility", m, [], verdict="error") for m in ("grad", "gradcam", "ig")],
     "no result decided with a pass or fail (3 error)"),
])
def test_diff_exits_2_when_the_new_run_has_nothing_decided(tmp_path, capsys, results, needle):
    """Finding 9: a new run with no results, or only errors, gave exit 0 ('0 worse')."""
    old = _evidence(tmp_path)
    new = tmp_path / "new.json"
    new.write_text(json.dumps(evidence(results)))
    assert cli(["diff", str(old), str(new)]) == 2
    one_error(capsys, new, needle)
    assert cli(["diff", str(new), str(old)]) == 2  # nothing to compare with either
    one_error(capsys, new, needle)


def test_names_from_evidence_cannot_forge_or_hide_a_line(tmp_path, capsys):
    """Finding 9: a method name holding a line break or an escape sequence printed raw."""
    rng = np.random.default_rng(3)
    truth = base(rng)
    forged = "grad\x1b[1A\x1b[2K\r0 worse, 0 better\nfake"
    runs = []
    for name in ("old.json", "new.json"):
        data = run(truth, rng)
        data["results"][0]["method"] = forged
        data["results"][1]["criterion"] = "utility\u202e"
        (tmp_path / name).write_text(json.dumps(data))
        runs.append(str(tmp_path / name))
    code = cli(["diff", *runs])
    captured = capsys.readouterr()
    assert code in (0, 1, 2)
    for text in (captured.out, captured.err):
        assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
        assert not any(line.startswith("fake") for line in text.splitlines())
    if code != 2:
        assert sum(" worse, " in line and " better, " in line for line in captured.out.splitlines()) == 1
        assert "grad\\x1b[1A\\x1b[2K\\r0 worse, 0 better\\nfake" in captured.out
    assert cli(["diff", str(tmp_path / "no\x1b[2Jsuch.json"), runs[1]]) == 2
    assert "\x1b" not in capsys.readouterr().err


# -- maps -------------------------------------------------------------------------------------------------------
def test_maps_refuses_a_folder_holding_maps_and_force_leaves_one_runs_maps(tmp_path, capsys):
    """Finding 5: maps -o into a folder of another run's maps kept them beside the new maps.json and counted
    them as written."""
    out = tmp_path / "out"
    assert cli(["maps", "-o", str(out), "--methods", "grad,gradcam", "--n-images", "4"]) == 0
    assert len(list((out / "grad").glob("*.npy"))) == 4
    (out / "notes.txt").write_text("mine")
    _maps(out / "grad-overlays", suffix=".png")
    capsys.readouterr()
    before = files_under(tmp_path)
    assert cli(["maps", "-o", str(out), "--methods", "grad", "--n-images", "2"]) == 2
    one_error(capsys, out, "already holds maps (grad/, gradcam/)", "--force")
    assert not new_files(before, tmp_path)
    assert cli(["maps", "-o", str(out), "--methods", "grad", "--n-images", "2", "--force"]) == 0
    line = f"{out / 'grad'}: 2 grad maps (audit them with --maps {out / 'grad'})"
    assert capsys.readouterr().out.splitlines() == [line]
    made = json.loads((out / "grad" / "maps.json").read_text())
    assert sorted(p.stem for p in (out / "grad").glob("*.npy")) == sorted(made["ids"]) and len(made["ids"]) == 2
    assert not (out / "gradcam").exists()  # the earlier run's other method is gone too: one run's maps
    assert (out / "notes.txt").read_text() == "mine" and len(list((out / "grad-overlays").glob("*.png"))) == 2


def test_maps_refuses_an_output_on_or_around_its_inputs(tmp_path, capsys):
    data = tmp_path / "data"
    _maps(data)
    before = files_under(tmp_path)
    for out in (data, data / "maps", tmp_path):
        assert cli(["maps", "--dataset", "folder", "--data-root", str(data), "-o", str(out)]) == 2
        one_error(capsys, out, data)
    assert not new_files(before, tmp_path)
    (tmp_path / "grad").mkdir()
    np.save(tmp_path / "grad" / "a.npy", np.zeros((4, 4), np.float32))
    assert cli(["maps", "-o", str(tmp_path / "grad")]) == 2  # a method folder itself
    one_error(capsys, "holds maps itself")


# -- init, export-demo, validate, plan ----------------------------------------------------------------------------
def test_init_is_all_or_nothing(tmp_path, capsys, monkeypatch):
    """Finding 9: init left audits/ behind when pyproject.toml could not be written."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    before = files_under(tmp_path)
    real = Path.write_bytes

    def failing(self, data):
        if self.name == "pyproject.toml":
            raise PermissionError(13, "Permission denied")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    assert cli(["init", str(tmp_path)]) == 2
    one_error(capsys, tmp_path / "pyproject.toml", "nothing written")
    assert not (tmp_path / "audits").exists() and files_under(tmp_path) == before
    monkeypatch.undo()

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p).name != "pyproject.toml" and real_access(p, mode))
    assert cli(["init", str(tmp_path)]) == 2  # read-only pyproject.toml: refused before anything is written
    one_error(capsys, tmp_path / "pyproject.toml", "not writable")
    assert not (tmp_path / "audits").exists() and files_under(tmp_path) == before
    monkeypatch.undo()

    (tmp_path / "audits").mkdir()
    (tmp_path / "audits" / "test_utility.py").write_text("# mine\n")
    monkeypatch.setattr(Path, "write_bytes", failing)
    assert cli(["init", str(tmp_path), "--force"]) == 2  # an overwritten file is put back
    assert (tmp_path / "audits" / "test_utility.py").read_text() == "# mine\n"
    assert sorted(p.name for p in (tmp_path / "audits").iterdir()) == ["test_utility.py"]
    monkeypatch.undo()
    assert cli(["init", str(tmp_path), "--force"]) == 0
    made = new_files(before, tmp_path)
    assert tmp_path / "pyproject.toml" in made and all(p.parent in (tmp_path, tmp_path / "audits") for p in made)


def test_export_demo_writes_only_under_its_root(tmp_path, capsys):
    before = files_under(tmp_path)
    assert cli(["export-demo", "folder", str(tmp_path / "root"), "--n", "2"]) == 0
    made = new_files(before, tmp_path)
    assert made and all(tmp_path / "root" in p.parents for p in made)


def test_validate_and_plan_write_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = _evidence(tmp_path)
    before = files_under(tmp_path)
    assert cli(["validate", str(a)]) == 0
    assert cli(["plan", "--evidence", str(a), "--rule", "fixed"]) == 0
    assert not new_files(before, tmp_path)
