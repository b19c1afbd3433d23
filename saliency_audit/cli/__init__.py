"""The ``saliency-audit`` command line.

    saliency-audit report evidence.json [-o report.html] [--pdf]
    saliency-audit export-demo FORMAT DIR [--n N] [--train N] [--scale S] [--seed S] [--force]
    saliency-audit maps --model SPEC --dataset NAME --data-root DIR --methods LIST -o OUT [--all] [--force]
    saliency-audit view OUT/METHOD [-o OVERLAYS] [--dataset NAME --data-root DIR]
    saliency-audit merge SHARD.json ... -o DIR
    saliency-audit validate EVIDENCE.json ...
    saliency-audit diff OLD.json NEW.json [--alpha A] [--multiplicity holm|bonferroni|none] [--json OUT]
    saliency-audit init [DIR] [--force]
    saliency-audit plan [--evidence FILE] [--power P ...] [--rule fixed|sequential] [--alpha A] [--check N]

``report`` rebuilds the standalone HTML report from an evidence file, e.g. on
a machine that never ran the audit; ``export-demo`` writes the demo world's
images in a dataset layout (see :mod:`saliency_audit.demo.export`), with a
training split to train your own model on; ``maps`` writes the maps an audit
scores as .npy files (``--maps`` audits them again) and ``view`` draws them over
their images (:mod:`saliency_audit.engine.mapsout`); ``validate`` checks evidence files against the shipped
JSON Schema (:mod:`saliency_audit.evidence.schema`), one line per problem naming its JSON path.  Exit codes: 0 written
(or valid), 1 invalid evidence, 2 unusable input.  ``diff`` compares two runs' verdict values per
(criterion, method) (:mod:`saliency_audit.decisions.comparison`): exit 0 when nothing got significantly worse, 1 when
something did or a pair that passed now errors, 2 when a file is unreadable or not valid evidence.  ``init`` writes a starter ``audits/`` (copies
of the bundled suite ``pytest --saliency-audit`` runs) and a ``[tool.saliency_audit]`` block into
``pyproject.toml`` (:mod:`saliency_audit.cli.scaffold`): exit 1 when it would overwrite a file (``--force``
does), 2 for an unusable folder or ``pyproject.toml``.  ``plan`` says how many images each (criterion, method)
needs for a pass with 80 % and 95 % probability at the demo audit's effects (shipped) or at a run's
(``--evidence``) (:mod:`saliency_audit.decisions.power`): exit 0, 2 for an unreadable file or a bad option.

No command writes over a file it reads or outside its output: :func:`saliency_audit.common.outputs.check_outputs`
refuses (exit 2, one line naming both paths) an output that is an input, or an output folder that holds or lies
in an input folder; ``maps`` refuses an ``-o`` that already holds maps unless ``--force``; ``view`` refuses a
folder without maps.  ``diff`` exits 2 when either run has no results or the new one only errors.  Whatever
the CLI prints from a file (names, ids, paths, messages) goes through :func:`saliency_audit.common.printable.printable`:
control characters and escape sequences are printed escaped, so no file can forge or hide a line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..common.printable import printable, say

DEFAULT_NAME = "saliency-audit.html"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saliency-audit", description="Saliency-map trustworthiness audit tools.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rep = sub.add_parser("report", help="render the standalone HTML report from an evidence.json file",
                         description="Render the standalone HTML report from an evidence.json file.")
    rep.add_argument("evidence", type=Path, help="the evidence.json written by an audit run")
    rep.add_argument("-o", "--output", type=Path, default=None,
                     help=f"where to write the report (default: {DEFAULT_NAME} next to the evidence file)")
    rep.add_argument("--pdf", action="store_true",
                     help="also print the report to PDF (the HTML's name with .pdf; or -o NAME.pdf, the HTML beside "
                          "it) with headless Chromium: the first of "
                          "chromium, chromium-browser, google-chrome, google-chrome-stable, microsoft-edge on PATH, "
                          "or the browser SALIENCY_AUDIT_BROWSER names")
    exp = sub.add_parser("export-demo", help="write the demo world's images in a dataset layout",
                         description="Write the demo world's audited images (split test/val) and, with --train, its "
                                     "training images (split train) in a dataset layout.")
    from ..demo.export import FORMATS

    exp.add_argument("format", choices=FORMATS, help="dataset layout")
    exp.add_argument("root", type=Path, help="directory to write (created if missing; refused when it holds files)")
    exp.add_argument("--force", action="store_true", help="write into a directory that already holds files")
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
    mp.add_argument("--force", action="store_true",
                    help="when -o already holds maps of a 'maps' run, remove them first (default: refuse)")
    mp.add_argument("--n-images", type=int, default=None, metavar="N", help="audited images (as pytest's option)")
    for flag, meta, text in (("--split", "NAME", "split"), ("--split-file", "CSV", "splits CSV"),
                             ("--finding", "NAME", "the finding whose maps are written"), ("--input-size", "H[,W]", "model input size"),
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
    vw.add_argument("-o", "--output", type=Path, default=None,
                    help="where to write, outside FOLDER (default: FOLDER-overlays beside it)")
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
    df = sub.add_parser("diff", help="compare two runs' evidence: what got worse or better, with a bound",
                        description="Compare two evidence files per (criterion, method): the change of the verdict's "
                                    "value with a bound on it (paired by image id when both runs scored the same "
                                    "images), flagged worse / better / unchanged after a family-wise correction. "
                                    "Exit 1 when some pair got significantly worse, or a pair that passed in the old run "
                                    "errors in the new one.")
    df.add_argument("old", type=Path, metavar="OLD.json", help="the baseline run's evidence")
    df.add_argument("new", type=Path, metavar="NEW.json", help="the run to compare with it")
    df.add_argument("--alpha", type=float, default=0.05,
                    help="family-wise level of each direction (worse, better) (default: 0.05)")
    df.add_argument("--multiplicity", choices=("holm", "bonferroni", "none"), default="holm",
                    help="family-wise procedure over the compared pairs (default: holm)")
    df.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the comparison as JSON")
    ini = sub.add_parser("init", help="write a starter audits/ and a [tool.saliency_audit] block to edit",
                         description="Write DIR/audits/test_*.py (copies of the audit suite that ships with the "
                                     "package, which 'pytest --saliency-audit' runs) and a [tool.saliency_audit] "
                                     "block of settings into DIR/pyproject.toml (created when missing, appended "
                                     "otherwise). Existing files are never overwritten without --force.")
    ini.add_argument("dir", type=Path, nargs="?", default=Path("."), metavar="DIR",
                     help="the project folder (default: the current one)")
    ini.add_argument("--force", action="store_true",
                     help="overwrite existing audit files and replace only the [tool.saliency_audit] table")
    ini.add_argument("--dataset", default=None, metavar="NAME",
                     help="your dataset's adapter: the next-step command then names it, with --input-size read "
                          "from its images")
    ini.add_argument("--data-root", default=None, metavar="PATH", help="your dataset's folder (with --dataset)")
    pl = sub.add_parser("plan", help="how many images each verdict needs to pass with 80 %% / 95 %% probability",
                        description="Per (criterion, method): the images an audit needs for a pass with the given "
                                    "probabilities if the effect is the one observed -- the demo audit's (shipped "
                                    "with the package) or a run's (--evidence). Exact one-sided t-test power for "
                                    "fixed n; the group-sequential design's maximum-sample-size factor on top for "
                                    "sequential verdicts (the planned n_images).")
    pl.add_argument("--evidence", type=Path, default=None, metavar="FILE",
                    help="plan at this run's effects (an evidence.json; default: the demo audit's)")
    pl.add_argument("--power", type=float, nargs="+", default=[0.8, 0.95], metavar="P",
                    help="target probabilities of a pass (default: 0.8 0.95)")
    pl.add_argument("--rule", choices=("fixed", "sequential"), default="sequential",
                    help="fixed-n verdicts (--no-sequential) or sequential ones, the default (default: sequential)")
    pl.add_argument("--alpha", type=float, default=None,
                    help="one-sided level of every verdict (default: each criterion's alpha, 0.05)")
    pl.add_argument("--check", type=int, default=0, metavar="N",
                    help="also check each n by N audits resampled from the observed images through the product's "
                         "rule (slow: seconds per pair at N = 300; default: 0, only an n of at most 24 images, "
                         "200 audits)")
    return p


def plan_command(args) -> int:
    """One line per (criterion, method) (:func:`saliency_audit.decisions.power.line`), after a line saying what the
    numbers are."""
    from ..decisions import power
    from ..config import AuditConfig

    for p in args.power:
        if not 0 < p < 1:
            return _error(f"--power must be in (0, 1), not {p:g}")
    if args.alpha is not None and not 0 < args.alpha < 0.5:
        return _error(f"--alpha must be in (0, 0.5), not {args.alpha:g}")
    if args.check < 0:
        return _error(f"--check must be at least 0, not {args.check}")
    defaults = AuditConfig()
    batch, futility = defaults.sequential_batch, defaults.sequential_futility
    if args.evidence is None:
        pairs, source = power.demo_effects()
        skipped: list = []
        where, origin = "the demo's effect", (f"the demo audit's effects (seed {source.get('seed')}, "
                                              f"{source.get('n_images')} images, fixed n)")
    else:
        data, problem = _read_evidence(args.evidence)
        if problem:
            return _error(problem)
        pairs, skipped = power.pairs_from_evidence(data)
        if not pairs:
            return _error(f"{args.evidence}: no result with per-image terms to plan from")
        cfg = data.get("config") if isinstance(data.get("config"), dict) else {}
        b, f = cfg.get("sequential_batch"), cfg.get("sequential_futility")
        batch = b if isinstance(b, int) and not isinstance(b, bool) and b >= 2 else batch
        futility = float(f) if isinstance(f, (int, float)) and not isinstance(f, bool) and 0 <= f < 0.5 else futility
        where, origin = "this run's effect", f"the effects of {args.evidence}"
    say(f"plan: {power.rule_text(args.rule, args.alpha, batch, futility)}; {origin}")
    for pair in pairs:
        plan = power.plan(pair, tuple(args.power), alpha=args.alpha, rule=args.rule, batch=batch, futility=futility,
                          audits=args.check)
        say(power.line(plan, where))
    for label, why in skipped:
        say(f"{label}: not planned: {why}")
    return 0


def init_command(args) -> int:
    from .scaffold import InitError, InitRefused, init

    try:
        written = init(args.dir, force=args.force)
    except InitRefused as exc:
        say(f"saliency-audit: error: {exc}", file=sys.stderr)
        return 1
    except InitError as exc:
        return _error(str(exc))
    for path, what in written:
        say(f"{path}: {what}")
    where = "" if args.dir.resolve() == Path.cwd().resolve() else f"cd {args.dir} && "
    data, size, found = "--dataset=NAME --data-root=PATH", "SIZE", None
    if args.dataset:
        from ..common.errors import AuditError
        from ..data import load_dataset

        try:
            ds = load_dataset(args.dataset, args.data_root, skip_bad=True)
            found = ds.native_size()
        except AuditError as exc:  # the suite is written: say why the command has no size, and carry on
            say(f"saliency-audit: could not read --dataset={args.dataset}: {printable(str(exc))}", file=sys.stderr)
            found = None
        data = f"--dataset={args.dataset}" + (f" --data-root={args.data_root}" if args.data_root else "")
        if found is not None:
            size = str(found[0]) if found[0] == found[1] else f"{found[0]},{found[1]}"
    say(f"next: {where}pytest audits/ --model=ARCH:CHECKPOINT {data} --input-size={size}")
    say(f"      (--input-size: the size the model was trained at; "
        + (f"{found[0]}x{found[1]} is your images' size, change it if you trained at another" if size != "SIZE"
           else "without it the images are resized to the architecture's default, e.g. 224")
        + f"; or {where}pytest audits/ -k utility --methods=gradcam for the demo)")
    return 0


def merge_command(args) -> int:
    from ..common.errors import AuditError
    from ..evidence import write_json
    from ..report.html import write_html
    from ..common.outputs import check_outputs
    from ..evidence.merge import merge_shards

    try:
        check_outputs("merge", inputs=args.evidence,
                      outputs=[args.output / "evidence.json", args.output / DEFAULT_NAME])
    except AuditError as exc:
        return _error(str(exc))
    from ..common.untrusted import read_json

    parts = []
    for path in args.evidence:
        if not path.is_file():
            return _error(f"{path}: no such file")
        try:
            parts.append(read_json(path))  # a shard from another job: size, depth, NaN checked
        except AuditError as exc:
            return _error(str(exc))
    try:
        merged = merge_shards(parts, [str(p) for p in args.evidence])
        sha256 = write_json(args.output / "evidence.json", merged)
        report = write_html(merged, args.output / DEFAULT_NAME, sha256)
    except AuditError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{args.output}: cannot write: {exc}")
    from ..report.gate import gate_of

    say(f"{args.output / 'evidence.json'}: {len(merged['results'])} results from {len(parts)} shards; "
        f"{gate_of(merged)[1]}")
    say(report)
    return 0


def maps_command(args) -> int:
    from ..common.errors import AuditError

    try:
        from ..engine.audit import Audit
        from ..config import load_config
        from ..engine.mapsout import check_output, write_maps
        from ..common.outputs import check_outputs
        from ..common.specs import model_input_overrides

        model_files = [Path(x) for x in (args.model, args.model.partition(":")[2]) if x and Path(x).is_file()]
        check_outputs("maps", folders=[args.output],
                      inputs=[*model_files, *(Path(x) for x in (args.data_root, args.audit_config, args.split_file)
                                              if x)])
        check_output(args.output, args.force)

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
                      dataset_options={"split": args.split, "split_file": args.split_file}, findings=args.finding)
        if audit.findings:  # the maps of one finding: its dataset view and the model output of its name
            if len(audit.findings) != 1:
                return _error(f"--finding={args.finding}: maps are written for one finding at a time "
                              f"(this names {len(audit.findings)})")
            audit = audit.view(audit.findings[0])
        folders = write_maps(audit, args.output, all_images=args.all, force=args.force)
    except AuditError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{args.output}: cannot write: {exc}")
    for method, (folder, n) in folders.items():
        say(f"{folder}: {n} {method} maps (audit them with --maps {folder})")
    return 0


def view_command(args) -> int:
    from ..common.errors import AuditError
    from ..engine.external import read_provenance
    from ..common.outputs import check_outputs

    if not args.folder.is_dir():
        return _error(f"{args.folder}: no such directory")
    try:
        manifest = read_provenance(Path(args.folder))  # maps.json as untrusted JSON, its fields checked; {} if none
    except AuditError as exc:
        return _error(str(exc))
    made = manifest.get("dataset") if isinstance(manifest.get("dataset"), dict) else {}
    name, root = args.dataset or made.get("name") or "demo", args.data_root or made.get("root")
    folder = Path(args.folder)
    named = folder if folder.name not in ("", ".", "..") else folder.resolve()
    out = args.output or named.with_name(named.name + "-overlays")  # beside the maps, never inside them
    try:
        check_outputs("view", inputs=[folder, Path(root) if isinstance(root, str) and root else None],
                      folders=[out])
        from ..data import load_dataset
        from ..engine.mapsout import write_overlays

        options = {k: made.get(k) for k in ("split", "split_file", "finding") if made.get(k) and not args.dataset}
        written = write_overlays(folder, out, load_dataset(name, root, **options))
    except AuditError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{out}: cannot write: {exc.strerror or type(exc).__name__}")
    say(f"{out}: {len(written)} overlays")
    return 0


def export_demo(args) -> int:
    from ..demo.export import export_demo as write

    if args.n < 0 or args.train < 0 or args.scale < 1:
        return _error("--n and --train must be >= 0 and --scale >= 1")
    if args.root.exists() and not args.root.is_dir():
        return _error(f"{args.root}: not a directory")
    if not args.force and args.root.is_dir() and any(args.root.iterdir()):
        return _error(f"{args.root}: not empty; export-demo writes a whole dataset there and would overwrite files "
                      f"of the same names (give an empty or new directory, or --force)")
    try:
        root = write(args.format, args.root, n=args.n, n_train=args.train, scale=args.scale, seed=args.seed)
    except OSError as exc:
        return _error(f"{args.root}: cannot write: {exc}")
    say(f"{root}: {args.n} audited and {args.train} training images ({args.format} layout; splits in splits.csv)")
    return 0


def _error(message: str) -> int:
    """One line on stderr, every control character escaped (the message may quote a file); exit 2."""
    say(f"saliency-audit: error: {' '.join(printable(message).split())}", file=sys.stderr)
    return 2


def report(evidence_path: Path, output: Path | None, pdf: bool = False) -> int:
    import hashlib

    from ..common.errors import AuditError
    from ..common.untrusted import parse_bytes, read_limited

    if not evidence_path.is_file():
        return _error(f"{evidence_path}: no such file")
    try:
        raw = read_limited(evidence_path)  # its sha256 goes in the footer
        evidence = parse_bytes(raw, str(evidence_path))  # UTF-8, depth and NaN checked
    except AuditError as exc:
        return _error(str(exc))
    if not isinstance(evidence, dict) or not isinstance(evidence.get("results", []), list):
        return _error(f"{evidence_path}: not a saliency-audit evidence file (expected a JSON object with 'results')")
    from ..evidence import SCHEMA
    from ..report.html import write_html

    from ..common.errors import AuditError
    from ..common.outputs import check_outputs

    if evidence.get("schema") != SCHEMA:
        say(f"saliency-audit: warning: {evidence_path}: schema {evidence.get('schema')!r}, expected {SCHEMA!r}; "
            "rendering anyway", file=sys.stderr)
    out = output if output is not None else evidence_path.parent / DEFAULT_NAME
    pdf_out = out.with_suffix(".pdf")
    if pdf and out.suffix.lower() == ".pdf":  # -o report.pdf --pdf: the PDF there, its HTML beside it
        pdf_out, out = out, out.with_suffix(".html")
    try:
        check_outputs("report", inputs=[evidence_path], outputs=[out, pdf_out if pdf else None])
    except AuditError as exc:
        return _error(str(exc))
    try:  # the footer names the evidence by the sha256 of the bytes just read
        written = write_html(evidence, out, hashlib.sha256(raw).hexdigest(), evidence_path.name)
    except OSError as exc:
        return _error(f"{out}: cannot write: {exc}")
    say(written)
    if pdf:
        from ..report.pdf import PdfError, print_pdf

        try:
            say(print_pdf(written, pdf_out))
        except PdfError as exc:
            return _error(f"{exc} (the HTML report is written: {written})")
    return 0


def validate_command(args) -> int:
    """Each file: "FILE: valid (...)" on stdout, or one "FILE: PATH: problem" line per problem on stderr."""
    from ..common.untrusted import read_json
    from ..evidence.schema import validate_file

    worst = 0
    for path in args.evidence:
        found = validate_file(path)
        if not found:
            data = read_json(path)
            say(f"{path}: valid ({data['schema']}, {len(data['results'])} results)")
            continue
        unreadable = found[0].startswith("(file)")
        worst = max(worst, 2 if unreadable else 1)
        for line in found:
            say(f"{path}: {line}", file=sys.stderr)
    return worst


def _read_evidence(path: Path) -> tuple[dict | None, str | None]:
    """(evidence, None), or (None, a one-line error naming the file) for unreadable or invalid evidence."""
    from ..evidence.schema import load, one_line

    data, found = load(path)
    return (None, one_line(path, found)) if found else (data, None)


def _undecided(data: dict, path: Path) -> str | None:
    """A one-line reason why a run cannot be compared: no results, or none of its (non-control) results a
    pass or a fail (all errors, skips ...); None when it can."""
    results = [r for r in data.get("results", []) if isinstance(r, dict) and not r.get("control")]
    if not results:
        return f"{path}: no results to compare"
    if any(r.get("verdict") in ("pass", "fail") for r in results):
        return None
    counts: dict = {}
    for r in results:
        counts[r.get("verdict")] = counts.get(r.get("verdict"), 0) + 1
    found = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: str(kv[0])))
    return f"{path}: no result decided with a pass or fail ({found}): nothing to compare"


def diff_command(args) -> int:
    """Exit 0: nothing significantly worse; 1: some pair worse, or passed and now errors (lost); 2: an unreadable or invalid file, an output
    that is an input, a bad option, or a run with nothing to compare (no results, or only errors / skips)."""
    from ..decisions.comparison import compare, label
    from ..common.errors import AuditError
    from ..common.outputs import check_outputs

    if not 0 < args.alpha < 0.5:
        return _error(f"--alpha must be in (0, 0.5), not {args.alpha}")
    try:
        check_outputs("diff", inputs=[args.old, args.new], outputs=[args.json])
    except AuditError as exc:
        return _error(str(exc))
    runs = []
    for path in (args.old, args.new):
        data, problem = _read_evidence(path)
        if problem:
            return _error(problem)
        runs.append(data)
    for path, data in ((args.new, runs[1]), (args.old, runs[0])):
        problem = _undecided(data, path)
        if problem:
            return _error(problem)
    c = compare(runs[0], runs[1], alpha=args.alpha, multiplicity=args.multiplicity,
                old_name=str(args.old), new_name=str(args.new))
    for w in c["warnings"]:
        say(f"saliency-audit: warning: {' '.join(printable(w).split())}", file=sys.stderr)
    if args.json is not None:
        try:
            args.json.write_text(json.dumps(c, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        except OSError as exc:
            return _error(f"{args.json}: cannot write: {exc}")
    for line in diff_lines(c, label):
        say(line)
    return 1 if c["summary"]["worse"] or c["summary"].get("lost") else 0


def diff_lines(c: dict, label) -> list[str]:
    """The comparison as a plain-text table, worse first, then its summary line; names from the evidence
    with their control characters escaped (before the columns are measured)."""
    def label(r, _label=label):
        return printable(_label(r))

    def num(x, spec="+.3f"):
        return "-" if x is None else format(x, spec)

    order = {"worse": 0, "better": 1, "unchanged": 2, None: 3}
    rows = sorted(c["rows"], key=lambda r: order[r["flag"]])
    table = [("pair", "old -> new", "delta [interval]", "test", "flag")]
    for r in rows:
        change = f" ({r['verdict_change']})" if r.get("verdict_change") else ""
        n = f"{r['test']} n={r['old_n']}/{r['new_n']}"
        if r["paired"]:
            n = f"paired n={r['n_paired']}" + ("" if r["old_n"] == r["new_n"] == r["n_paired"] else
                                               f" of {r['old_n']}/{r['new_n']}")
        flag = "(control)" if r["control"] else r["flag"].upper() if r["flag"] != "unchanged" else "unchanged"
        table.append((label(r), f"{num(r['old_value'])} -> {num(r['new_value'])}{change}",
                      f"{num(r['delta'])} [{num(r['ci'][0])}, {num(r['ci'][1])}]", n, flag))
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    lines = ["  ".join(x.ljust(w) for x, w in zip(t, widths)).rstrip() for t in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"{'LOST' if r.get('lost') else 'not compared'}: {label(r)}: {printable(r['reason'])}"
              + (" (it passed in the old run)" if r.get("lost") else "") for r in c["not_compared"]]
    note = ((c.get("new") or {}).get("dataset") or {}).get("note")
    if note:  # the manifests differ only where -k left criteria out (decisions/comparison.py): said, not warned
        lines.append(f"note: {' '.join(printable(note).split())}")
    s = c["summary"]
    lost = f"{s['lost']} lost (passed, now error), " if s.get("lost") else ""
    lines.append(f"{s['worse']} worse, {lost}{s['better']} better, {s['unchanged']} unchanged of {c['family']} pair(s) "
                 f"({s['paired']} paired by image id; {c['multiplicity']} at alpha {c['alpha']:g} per direction, "
                 f"intervals {1 - 2 * c['alpha']:.0%}); {s['controls']} control(s) not flagged; "
                 f"{s['not_compared']} not compared; old {printable(c['old']['name'])} "
                 f"vs new {printable(c['new']['name'])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args.evidence, args.output, args.pdf)
    commands = {"export-demo": export_demo, "maps": maps_command, "view": view_command, "merge": merge_command,
                "diff": diff_command, "validate": validate_command, "init": init_command, "plan": plan_command}
    command = commands.get(args.command)
    return command(args) if command else 2  # argparse rejects unknown commands before this


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
