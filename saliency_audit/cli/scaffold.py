"""``saliency-audit init [DIR] [--force]``: a starter ``audits/`` and ``[tool.saliency_audit]`` block to edit.

``pytest --saliency-audit`` runs the suite that ships with the package; a team that wants to change the
tests (drop a criterion, add its own assertions) runs ``init`` once and from then on ``pytest audits/``.
``init`` writes ``DIR/audits/test_*.py`` as copies of the bundled modules (read as package resources, so an
installed wheel is enough) and a ``[tool.saliency_audit]`` table into ``DIR/pyproject.toml``: the file is
created when missing, the table appended when the file has none (the file's bytes before it are kept as
they are).  An existing audit file or table is never overwritten without ``--force``; ``--force`` replaces
the audit files and only the ``[tool.saliency_audit]`` table (with its subtables), and the rewritten file is
checked to parse to the same settings everywhere else before it is written.  Nothing is written unless all
of it can be.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

TABLE = "tool.saliency_audit"

#: (key, comment) of the settings the starter block shows, each at its default (read from AuditConfig).
SETTINGS = (
    ("n_images", "images audited per (criterion, method) (--n-images)"),
    ("seed", "run seed: image order, randomization draws, bootstrap (--seed)"),
    ("device", "cpu, cuda, cuda:1 ... (--device)"),
    ("target_class", "the output explained (--target-class; or explain = \"predicted\")"),
    ("output", "\"softmax\" (competing classes), \"sigmoid\" (one output per finding) or \"auto\" (--output)"),
    ("sequential", "stop each (criterion, method) once a group-sequential test decides it (--no-sequential)"),
    ("sequential_rule", "\"obf\" (O'Brien-Fleming alpha spending) or \"betting\" (a confidence sequence)"),
    ("utility.alpha", "one-sided level of the bound against the average-mask prior"),
    ("utility.min_ap", "floor on a map's average precision of the lesion"),
    ("randomization.n_images", "images of the weight-randomization cascade (each stage recomputes its maps)"),
    ("randomization.head_min", "normalized map change required once the head is randomized"),
    ("randomization.all_min", "... once every layer is randomized"),
    ("consistency.n_images", "images compared across replicates / reference models"),
    ("consistency.min_ssim", "required SSIM between the maps of two models"),
    ("completeness.n_images", "images of the ROAD faithfulness test"),
    ("stats.resamples", "bootstrap resamples of every confidence bound"),
    ("stats.multiplicity", "\"holm\" or \"bonferroni\": at most family_alpha chance that any pass is wrong"),
    ("stats.family_alpha", "the family-wise level of holm / bonferroni"),
)

HEADER = (
    "# saliency-audit settings, read by `pytest --saliency-audit` and `pytest audits/`; the values shown are the\n"
    "# defaults. Every key (and the reference behind each default) is documented in saliency_audit/config.py:\n"
    "#   python -m pydoc saliency_audit.config\n"
    "# --audit-config FILE and the pytest options override them; the saliency methods are chosen with\n"
    "# --methods (default: the paper's eight), the model and data with --model, --dataset, --data-root.\n"
)


class InitRefused(Exception):
    """A file init would overwrite (exit 1 without --force); the message names it."""


class InitError(Exception):
    """Unusable input (exit 2): a DIR that is no folder, a pyproject.toml that does not parse or whose table
    cannot be replaced as text; the message names the file."""


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")  # pragma: no cover - SETTINGS lists plain values only


def block(newline: str = "\n") -> str:
    """The starter ``[tool.saliency_audit]`` table: each of SETTINGS at its default, with its comment."""
    from ..config import AuditConfig

    defaults = AuditConfig()
    lines = []
    for key, comment in SETTINGS:
        value = defaults
        for part in key.split("."):
            value = getattr(value, part)
        lines.append((f"{key} = {_toml_value(value)}", comment))
    width = max(len(text) for text, _ in lines) + 2
    body = "".join(f"{text.ljust(width)}# {comment}\n" for text, comment in lines)
    return ("[tool.saliency_audit]\n" + HEADER + body).replace("\n", newline)


_HEADER_LINE = re.compile(r"^\s*\[(\[)?\s*([^\[\]#]+?)\s*\]?\]\s*(#.*)?$")


def _table_name(line: str) -> str | None:
    """The dotted name of a ``[table]`` or ``[[array]]`` header line (quotes and spaces around dots removed)."""
    m = _HEADER_LINE.match(line)
    if not m:
        return None
    return ".".join(part.strip().strip("\"'") for part in m.group(2).split("."))


def _without_table(data: dict) -> dict:
    """``data`` less ``tool.saliency_audit`` (and less ``tool`` when nothing else is in it)."""
    out = {k: v for k, v in data.items() if k != "tool"}
    tool = {k: v for k, v in data.get("tool", {}).items() if k != "saliency_audit"}
    return {**out, "tool": tool} if tool else out


def replace_table(text: str, new_block: str) -> str:
    """``text`` with its ``[tool.saliency_audit]`` table and subtables replaced by ``new_block`` (placed where the
    first of them was); the comments and blank lines just before the next other table stay with that table."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    inside, placed = False, False
    pending: list[str] = []  # trailing comments / blank lines of a removed table: they may belong to the next one
    for line in lines:
        name = _table_name(line)
        if name is not None:
            ours = name == TABLE or name.startswith(TABLE + ".")
            if ours:
                pending = []
                if not placed:
                    out.append(new_block)
                    placed = True
                inside = True
                continue
            if inside:
                out.extend(pending)
                pending = []
            inside = False
        if inside:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                pending.append(line)
            else:
                pending = []
            continue
        out.append(line)
    if inside:
        out.extend(line for line in pending if line.strip())  # a table at the end: keep its closing comments
    return "".join(out)


def _check(path: Path, new_text: str, old_data: dict, new_block: str) -> None:
    """The rewritten pyproject parses, holds the new block, and everything else parses as before."""
    try:
        new_data = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise InitError(f"{path}: adding [{TABLE}] would not be valid TOML ({exc}); add the block by hand "
                        "(saliency-audit init in an empty folder writes one to copy)") from None
    if new_data.get("tool", {}).get("saliency_audit") != tomllib.loads(new_block)["tool"]["saliency_audit"] or \
            _without_table(new_data) != _without_table(old_data):
        raise InitError(f"{path}: [{TABLE}] is not a plain table this command can replace (dotted keys or "
                        "an inline table?); edit it by hand")


def plan(folder: Path, force: bool) -> dict[Path, tuple[bytes, str]]:
    """Path -> (bytes, what) of every file init writes, checked; raises InitRefused or InitError."""
    from ..common.paths import suite_sources as sources

    if not folder.exists():
        raise InitError(f"{folder}: no such directory (create it first)")
    if not folder.is_dir():
        raise InitError(f"{folder}: not a directory")
    audits = folder / "audits"
    if audits.exists() and not audits.is_dir():
        raise InitError(f"{audits}: exists and is not a directory")
    writes: dict[Path, tuple[bytes, str]] = {}
    clashes = []
    for name, source in sources().items():
        target = audits / name
        if target.exists():
            clashes.append(target)
        writes[target] = (source.encode("utf-8"), "audit tests (a copy of the bundled suite's)")
    pyproject = folder / "pyproject.toml"
    if pyproject.is_dir():
        raise InitError(f"{pyproject}: is a directory")
    if not pyproject.exists():
        writes[pyproject] = (block().encode("utf-8"), f"created with [{TABLE}]")
    else:
        try:
            raw = pyproject.read_bytes()
            text = raw.decode("utf-8")
            data = tomllib.loads(text)
        except OSError as exc:
            raise InitError(f"{pyproject}: cannot read ({exc.strerror or type(exc).__name__})") from None
        except UnicodeDecodeError:
            raise InitError(f"{pyproject}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise InitError(f"{pyproject}: not valid TOML ({exc})") from None
        newline = "\r\n" if "\r\n" in text else "\n"
        new_block = block(newline)
        if data.get("tool", {}).get("saliency_audit") is not None:
            clashes.append(pyproject)
            new_text, what = replace_table(text, new_block), f"[{TABLE}] replaced"
        else:
            sep = "" if not text else newline if text.endswith(("\n", "\r")) else newline * 2
            new_text, what = text + sep + new_block, f"[{TABLE}] appended"
        _check(pyproject, new_text, data, new_block)
        writes[pyproject] = (new_text.encode("utf-8"), what)
    if clashes and not force:
        first = clashes[0]
        what = f"has a [{TABLE}] table" if first == pyproject else "exists"
        more = f" (and {len(clashes) - 1} more of the files init writes)" if len(clashes) > 1 else ""
        raise InitRefused(f"{first}: {what}{more}; not overwritten (--force replaces the audit files and only the "
                          f"[{TABLE}] table)")
    return writes


def _check_writable(folder: Path, writes: dict) -> None:
    """Every target can be written: an existing file writable, a new one's folder writable (or creatable)."""
    import os

    for path in writes:
        where = path if path.exists() else path.parent if path.parent.exists() else path.parent.parent
        if not os.access(where, os.W_OK):
            raise InitError(f"{where}: not writable; nothing written")


def init(folder: Path, force: bool = False) -> list[tuple[Path, str]]:
    """Write the starter files into ``folder``; (path, what) of each, in the order written.  All or nothing:
    every target is checked writable first, and when a write fails anyway the files already written are
    restored (or removed, with an ``audits/`` this call created) before the :class:`InitError`."""
    writes = plan(folder, force)
    _check_writable(folder, writes)
    audits = folder / "audits"
    created = not audits.exists()
    try:
        audits.mkdir(exist_ok=True)
    except OSError as exc:
        raise InitError(f"{audits}: cannot create ({exc.strerror or type(exc).__name__}); nothing written") from None
    done: list[tuple[Path, str]] = []
    before: dict[Path, bytes | None] = {}
    for path, (data, what) in writes.items():
        try:
            before[path] = path.read_bytes() if path.exists() else None
            path.write_bytes(data)
        except OSError as exc:
            kept = _roll_back(before, audits if created else None)
            raise InitError(f"{path}: cannot write ({exc.strerror or type(exc).__name__}); "
                            + ("nothing written" if not kept else
                               f"could not undo {', '.join(str(p) for p in kept)}")) from None
        done.append((path, what))
    return done


def _roll_back(before: dict, created_dir: Path | None) -> list[Path]:
    """Put back every file of ``before`` (its old bytes, or removed when it was new) and remove
    ``created_dir`` when it is empty again; returns the paths that could not be put back."""
    kept = []
    for path, old in reversed(list(before.items())):
        try:
            if old is None:
                path.unlink(missing_ok=True)
            elif not path.exists() or path.read_bytes() != old:  # (a write refused at open left it as it was)
                path.write_bytes(old)
        except OSError:
            kept.append(path)
    if created_dir is not None:
        try:
            created_dir.rmdir()
        except OSError:
            kept.append(created_dir)
    return kept
