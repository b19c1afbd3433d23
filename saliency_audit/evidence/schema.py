"""The evidence file's JSON Schema (``saliency-audit/evidence@1``) and its validator.

The schema ships in the package (``schemas/evidence-1.json``) and fixes what a CI gate or a submission may
rely on: the run, the config, the models, the dataset and every result's verdict, numbers and details.
Every object allows more properties, so fields added within @1 never break a reader; removing or retyping
a field is a breaking change and bumps the version, which :func:`problems` names before anything else.
Validation is jsonschema's (Draft 2020-12); this module only turns its errors into one line per problem,
naming the JSON path (``results[0].verdict``).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..common.errors import AuditUsageError
from . import SCHEMA

VERSION = int(SCHEMA.rsplit("@", 1)[1])
_ID = re.compile(r"^saliency-audit/evidence@(\d+)$")


@lru_cache(maxsize=None)
def schema() -> dict:
    """The shipped JSON Schema of this version's evidence."""
    return json.loads(resources.files("saliency_audit").joinpath(f"schemas/evidence-{VERSION}.json").read_text())


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def problems(evidence, consistency: bool = True) -> list[str]:
    """One line per way ``evidence`` breaks the schema (empty: valid), each starting with its JSON path; with
    ``consistency``, also each way it contradicts itself (:func:`saliency_audit.evidence.check.contradictions`:
    a verdict against its numbers, n, controls, non-finite numbers, the run's status)."""
    from jsonschema import Draft202012Validator

    if not isinstance(evidence, dict):
        return [f"(top level): a JSON object is expected, not {type(evidence).__name__}"]
    tag = evidence.get("schema")
    m = _ID.match(tag) if isinstance(tag, str) else None
    if m is None:
        return [f"schema: {tag!r} is not a saliency-audit evidence version (expected {SCHEMA!r})"]
    if int(m.group(1)) != VERSION:
        newer = int(m.group(1)) > VERSION
        return [f"schema: the file is {tag}, this saliency-audit reads {SCHEMA}"
                + (" (a newer, breaking version: upgrade saliency-audit)" if newer else
                   " (an older version: validate it with the release that wrote it)")]
    out = []
    for err in sorted(Draft202012Validator(schema()).iter_errors(evidence), key=lambda e: list(e.absolute_path)):
        parts = list(err.absolute_path)
        if err.validator == "required":
            for name in err.validator_value:
                if isinstance(err.instance, dict) and name not in err.instance:
                    out.append(f"{_path(parts + [name])}: missing (required)")
            continue
        out.append(f"{_path(parts)}: {err.message}")
    if consistency:
        from .check import contradictions

        def part(line: str) -> str:  # "results[1]" of "results[1].verdict: ...", "run" of "run.status: ..."
            head = line.split(":", 1)[0]
            return head.split("]", 1)[0] + "]" if head.startswith("results[") else head.split(".", 1)[0]

        broken = {part(p) for p in out}  # a part the schema rejects is not checked for consistency too
        out.extend(p for p in contradictions(evidence) if part(p) not in broken and p not in out)
    return out


def load(path) -> tuple[dict | None, list[str]]:
    """(the evidence at ``path``, its :func:`problems`), read once; an unreadable file is (None, one problem
    naming it, prefixed "(file): ")."""
    from pathlib import Path

    from ..common.errors import AuditInputError
    from ..common.untrusted import read_json

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None, ["(file): no such file"]
    try:  # size, UTF-8, nesting depth and NaN/Infinity tokens checked: one line, never a traceback
        data = read_json(path, what="file")
    except AuditInputError as exc:
        return None, [f"(file): cannot read as JSON ({str(exc).removeprefix('file: ')})"]
    return data, problems(data)


def one_line(path, found: list[str]) -> str:
    """The first of ``found`` (from :func:`load`) as a one-line error naming ``path``."""
    first = found[0].removeprefix("(file): ")
    more = f" (and {len(found) - 1} more problem(s); see saliency-audit validate)" if len(found) > 1 else ""
    what = "" if found[0].startswith("(file)") else "not valid evidence: "
    return f"{path}: {what}{first}{more}"


def validate_file(path) -> list[str]:
    """:func:`problems` of the evidence file at ``path``; an unreadable file is one problem naming it."""
    return load(path)[1]


def read_baseline(path: str | Path, option: str = "--audit-baseline") -> dict:
    """The baseline evidence, checked against the schema: a one-line usage error naming the file otherwise."""
    from ..evidence.schema import load

    data, found = load(path)
    if found and found[0].startswith("(file)"):
        raise AuditUsageError(f"{option}={path}: cannot read the evidence file ({found[0].removeprefix('(file): ')})")
    if found:
        raise AuditUsageError(f"{option}={path}: not saliency-audit evidence: {found[0]}"
                              + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
    return data
