"""The ``saliency-audit`` command line.

    saliency-audit report evidence.json [-o report.html]

rebuilds the standalone HTML report from an evidence file, e.g. on a machine
that never ran the audit.  Exit codes: 0 written, 2 unusable input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_NAME = "saliency-audit.html"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saliency-audit", description="Saliency-map trustworthiness audit tools.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rep = sub.add_parser("report", help="render the standalone HTML report from an evidence.json file",
                         description="Render the standalone HTML report from an evidence.json file.")
    rep.add_argument("evidence", type=Path, help="the evidence.json written by an audit run")
    rep.add_argument("-o", "--output", type=Path, default=None,
                     help=f"where to write the report (default: {DEFAULT_NAME} next to the evidence file)")
    return p


def _error(message: str) -> int:
    print(f"saliency-audit: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def report(evidence_path: Path, output: Path | None) -> int:
    try:
        evidence = json.loads(evidence_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _error(f"{evidence_path}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        return _error(f"{evidence_path}: cannot read: {exc}")
    except json.JSONDecodeError as exc:
        return _error(f"{evidence_path}: not valid JSON: {exc}")
    if not isinstance(evidence, dict) or not isinstance(evidence.get("results", []), list):
        return _error(f"{evidence_path}: not a saliency-audit evidence file (expected a JSON object with 'results')")
    from .report.evidence import SCHEMA
    from .report.html import write_html

    if evidence.get("schema") != SCHEMA:
        print(f"saliency-audit: warning: {evidence_path}: schema {evidence.get('schema')!r}, expected {SCHEMA!r}; "
              "rendering anyway", file=sys.stderr)
    out = output if output is not None else evidence_path.parent / DEFAULT_NAME
    try:
        written = write_html(evidence, out)
    except OSError as exc:
        return _error(f"{out}: cannot write: {exc}")
    print(written)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args.evidence, args.output)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
