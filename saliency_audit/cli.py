"""The ``saliency-audit`` command line.

    saliency-audit report evidence.json [-o report.html]
    saliency-audit export-demo FORMAT DIR [--n N] [--train N] [--scale S] [--seed S]

``report`` rebuilds the standalone HTML report from an evidence file, e.g. on
a machine that never ran the audit; ``export-demo`` writes the demo world's
images in a dataset layout (see :mod:`saliency_audit.demo.export`), with a
training split to train your own model on.  Exit codes: 0 written, 2 unusable
input.
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
    exp = sub.add_parser("export-demo", help="write the demo world's images in a dataset layout",
                         description="Write the demo world's audited images (split test/val) and, with --train, its "
                                     "training images (split train) in a dataset layout.")
    from .demo.export import FORMATS

    exp.add_argument("format", choices=FORMATS, help="dataset layout")
    exp.add_argument("root", type=Path, help="directory to write (created if missing)")
    exp.add_argument("--n", type=int, default=120, help="audited images (default: 120)")
    exp.add_argument("--train", type=int, default=0, help="training images (default: 0)")
    exp.add_argument("--scale", type=int, default=1, help="upscale the 128-pixel images this many times (default: 1)")
    exp.add_argument("--seed", type=int, default=0, help="world seed (default: 0, the demo audit's)")
    return p


def export_demo(args) -> int:
    from .demo.export import export_demo as write

    if args.n < 0 or args.train < 0 or args.scale < 1:
        return _error("--n and --train must be >= 0 and --scale >= 1")
    try:
        root = write(args.format, args.root, n=args.n, n_train=args.train, scale=args.scale, seed=args.seed)
    except OSError as exc:
        return _error(f"{args.root}: cannot write: {exc}")
    print(f"{root}: {args.n} audited and {args.train} training images ({args.format} layout; splits in splits.csv)")
    return 0


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
    if args.command == "export-demo":
        return export_demo(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
