"""The ``saliency-audit`` command line.

    saliency-audit report evidence.json [-o report.html]
    saliency-audit export-demo FORMAT DIR [--n N] [--train N] [--scale S] [--seed S]
    saliency-audit maps --model SPEC --dataset NAME --data-root DIR --methods LIST -o OUT [--all]
    saliency-audit view OUT/METHOD [-o OVERLAYS] [--dataset NAME --data-root DIR]
    saliency-audit merge SHARD.json ... -o DIR
    saliency-audit validate EVIDENCE.json ...

``report`` rebuilds the standalone HTML report from an evidence file, e.g. on
a machine that never ran the audit; ``export-demo`` writes the demo world's
images in a dataset layout (see :mod:`saliency_audit.demo.export`), with a
training split to train your own model on; ``maps`` writes the maps an audit
scores as .npy files (``--maps`` audits them again) and ``view`` draws them over
their images (:mod:`saliency_audit.mapsout`); ``validate`` checks evidence files against the shipped
JSON Schema (:mod:`saliency_audit.schema`), one line per problem naming its JSON path.  Exit codes: 0 written
(or valid), 1 invalid evidence, 2 unusable input.
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
    mp = sub.add_parser("maps", help="write saliency maps (.npy per image, with maps.json) for --maps or your tools",
                        description="Write each method's maps of the images an audit scores (or --all) as float32 "
                                    ".npy files in [0, 1] on the model's input grid, one folder per method.")
    mp.add_argument("--model", default="demo", metavar="SPEC", help="model (as pytest's --model; default: demo)")
    mp.add_argument("--dataset", default="demo", help="dataset format (default: demo)")
    mp.add_argument("--data-root", default=None, metavar="DIR", help="dataset location")
    mp.add_argument("--methods", default=None, metavar="LIST", help="comma-separated methods (default: the paper's 8)")
    mp.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="where to write")
    mp.add_argument("--all", action="store_true", help="every image of the dataset, not only the audited ones")
    mp.add_argument("--n-images", type=int, default=None, metavar="N", help="audited images (as pytest's option)")
    for flag, meta, text in (("--split", "NAME", "split"), ("--split-file", "CSV", "splits CSV"),
                             ("--finding", "NAME", "nih finding"), ("--input-size", "H[,W]", "model input size"),
                             ("--normalize", "MEAN,STD", "model normalisation"), ("--device", "DEV", "cpu, cuda ..."),
                             ("--audit-config", "PATH", "TOML config")):
        mp.add_argument(flag, default=None, metavar=meta, help=f"{text} (as pytest's option)")
    mp.add_argument("--seed", type=int, default=None, help="run seed (default: 0)")
    mp.add_argument("--skip-bad-samples", action="store_true", help="leave out unreadable samples, listed")
    mp.add_argument("--allow-unsafe-pickle", action="store_true", help="allow full unpickling of the checkpoint")
    vw = sub.add_parser("view", help="overlay PNGs of a folder of maps over their images",
                        description="Draw each map of a folder (as written by 'saliency-audit maps', or any "
                                    "<id>.npy/.png maps) over its image, the lesion outlined.")
    vw.add_argument("folder", type=Path, help="a folder of maps (one method's)")
    vw.add_argument("-o", "--output", type=Path, default=None, help="where to write (default: FOLDER/overlays)")
    vw.add_argument("--dataset", default=None, help="dataset format (default: the one maps.json names)")
    vw.add_argument("--data-root", default=None, metavar="DIR", help="dataset location (default: maps.json's)")
    va = sub.add_parser("validate", help="check evidence files against the saliency-audit/evidence JSON Schema")
    va.add_argument("evidence", nargs="+", type=Path, metavar="EVIDENCE.json")
    mg = sub.add_parser("merge", help="join the evidence of --audit-shard runs into one evidence file and report",
                        description="Join the evidence.json of the N shards of one audit (--audit-shard I/N) into "
                                    "one evidence file and one HTML report; shards of other models, data, config or "
                                    "code are refused.")
    mg.add_argument("evidence", type=Path, nargs="+", help="the shards' evidence.json files")
    mg.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="where to write")
    return p


def merge_command(args) -> int:
    from .errors import AuditError
    from .report.evidence import write_json
    from .report.html import write_html
    from .report.merge import merge_shards

    parts = []
    for path in args.evidence:
        try:
            parts.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return _error(f"{path}: no such file")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(f"{path}: cannot read as JSON ({type(exc).__name__})")
    try:
        merged = merge_shards(parts, [str(p) for p in args.evidence])
        write_json(args.output / "evidence.json", merged)
        report = write_html(merged, args.output / DEFAULT_NAME)
    except AuditError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{args.output}: cannot write: {exc}")
    from .report.gate import gate_of

    print(f"{args.output / 'evidence.json'}: {len(merged['results'])} results from {len(parts)} shards; "
          f"{gate_of(merged)[1]}")
    print(report)
    return 0


def maps_command(args) -> int:
    from .errors import AuditError

    try:
        from .audit import Audit
        from .config import load_config
        from .mapsout import write_maps
        from .plugin import model_input_overrides

        overrides: dict = {k: v for k, v in (("n_images", args.n_images), ("seed", args.seed),
                                              ("device", args.device)) if v is not None}
        overrides.update(model_input_overrides(args.input_size, args.normalize))
        config = load_config(pyproject=Path.cwd() / "pyproject.toml",
                             audit_config=Path(args.audit_config) if args.audit_config else None, overrides=overrides)
        if args.dataset != "demo" and not args.data_root:
            return _error(f"--dataset={args.dataset} needs --data-root")
        audit = Audit(model=args.model, dataset=args.dataset, data_root=args.data_root, methods=args.methods,
                      config=config, allow_unsafe_pickle=args.allow_unsafe_pickle,
                      skip_bad_samples=args.skip_bad_samples,
                      dataset_options={"split": args.split, "split_file": args.split_file, "finding": args.finding})
        folders = write_maps(audit, args.output, all_images=args.all)
    except AuditError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{args.output}: cannot write: {exc}")
    for method, folder in folders.items():
        print(f"{folder}: {sum(1 for _ in folder.glob('*.npy'))} {method} maps (audit them with --maps {folder})")
    return 0


def view_command(args) -> int:
    from .errors import AuditError
    from .external import MANIFEST_JSON

    manifest = {}
    if (args.folder / MANIFEST_JSON).is_file():
        try:
            manifest = json.loads((args.folder / MANIFEST_JSON).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(f"{args.folder / MANIFEST_JSON}: cannot read ({type(exc).__name__})")
    made = manifest.get("dataset", {})
    name, root = args.dataset or made.get("name") or "demo", args.data_root or made.get("root")
    if not args.folder.is_dir():
        return _error(f"{args.folder}: no such directory")
    try:
        from .data import load_dataset
        from .mapsout import write_overlays

        options = {k: made.get(k) for k in ("split", "split_file", "finding") if made.get(k) and not args.dataset}
        written = write_overlays(args.folder, args.output or args.folder / "overlays",
                                 load_dataset(name, root, **options))
    except AuditError as exc:
        return _error(str(exc))
    print(f"{args.output or args.folder / 'overlays'}: {len(written)} overlays")
    return 0


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


def validate_command(args) -> int:
    """Each file: "FILE: valid (...)" on stdout, or one "FILE: PATH: problem" line per problem on stderr."""
    from .schema import validate_file

    worst = 0
    for path in args.evidence:
        found = validate_file(path)
        if not found:
            data = json.loads(path.read_text())
            print(f"{path}: valid ({data['schema']}, {len(data['results'])} results)")
            continue
        unreadable = found[0].startswith("(file)")
        worst = max(worst, 2 if unreadable else 1)
        for line in found:
            print(f"{path}: {line}", file=sys.stderr)
    return worst


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args.evidence, args.output)
    if args.command == "export-demo":
        return export_demo(args)
    if args.command == "maps":
        return maps_command(args)
    if args.command == "view":
        return view_command(args)
    if args.command == "merge":
        return merge_command(args)
    if args.command == "validate":
        return validate_command(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
