"""The plugin's command-line options: each under a ``--saliency-`` name, and the short names of audit suites.

Installing the package loads the plugin into every pytest run of the environment, so it registers only
names no repository is likely to own (``--saliency-model``, ``--saliency-device`` ...), as pytest-benchmark
keeps to ``--benchmark-*`` and syrupy to ``--snapshot-*``.  The short names the README and the demo use
(``--model``, ``--dataset``, ``--device``, ``--seed`` ...) are aliases that exist only in an audit run:
an audit suite's ``conftest.py`` (``audits/``, the bundled suite, what ``saliency-audit init`` writes) asks
for them, and so does ``--saliency-audit``.  An alias whose name the repository or another plugin already
owns is left to its owner (its value is theirs; the audit reads the ``--saliency-`` form), and the audit's
header says so.

The aliases are added after every initial conftest has registered its own options
(:func:`saliency_audit.plugin.pytest_load_initial_conftests`), so the owner is found whichever conftest
loads first.  Importing this module is cheap (no torch).
"""
from __future__ import annotations

import argparse
import weakref

import pytest

GROUP = "saliency-audit"
PREFIX = "--saliency-"


def _options() -> list[tuple[str, str | None, dict]]:
    """(the plugin's name, the audit suites' short name or None, argparse keywords) of every option."""
    from ..config import PAPER_METHODS

    return [
        ("--saliency-audit", None, dict(
            dest="saliency_bundled", action="store_true", default=False,
            help="run the bundled audit suite (saliency_audit/suite: the tests 'saliency-audit init' writes to "
                 "audits/) from any directory; with test paths given, in addition to them")),
        ("--saliency-model", "--model", dict(
            dest="saliency_model", default="demo", metavar="SPEC",
            help="model under audit: demo | demo:VARIANT | PATH (TorchScript, or a torchvision model's weights) | "
                 "ARCH:PATH (default: demo)")),
        ("--saliency-replicate", "--replicate", dict(
            dest="saliency_replicates", action="append", default=[], metavar="SPEC",
            help="same architecture, other training seed (repeatability); repeatable")),
        ("--saliency-reference-model", "--reference-model", dict(
            dest="saliency_references", action="append", default=[], metavar="SPEC",
            help="other architecture trained on the task (reproducibility); repeatable")),
        ("--saliency-random-label-model", "--random-label-model", dict(
            dest="saliency_random_label_model", default=None, metavar="SPEC",
            help="same architecture trained on permuted labels (label randomization)")),
        ("--saliency-dataset", "--dataset", dict(
            dest="saliency_dataset", default="demo", metavar="NAME",
            help="dataset adapter: demo, folder, siim, rsna, nih or a registered one (default: demo)")),
        ("--saliency-data-root", "--data-root", dict(
            dest="saliency_data_root", default=None, metavar="PATH", help="dataset location")),
        ("--saliency-split", "--split", dict(
            dest="saliency_split", default=None, metavar="NAME",
            help="audit only this split (from --split-file, or the folder dataset's split column)")),
        ("--saliency-split-file", "--split-file", dict(
            dest="saliency_split_file", default=None, metavar="CSV",
            help="splits CSV: QTIM form ',Image_ID,Split' or 'image,split'")),
        ("--saliency-finding", "--finding", dict(
            dest="saliency_finding", default=None, metavar="NAME[,NAME...]|all",
            help="the findings audited, each against its own masks or boxes and the model output of its name "
                 "(e.g. Pneumothorax,Nodule; all: every finding of the dataset the model has an output for); "
                 "tests run per method and finding: utility[gradcam-Pneumothorax]")),
        ("--saliency-human-annotations", "--human-annotations", dict(
            dest="saliency_human_annotations", default=None, metavar="PATH",
            help="a second set of annotations (e.g. radiologists' masks: a folder of <image id>.png, optionally "
                 "one subfolder per finding): the report places each method beside these readers (hit rate, "
                 "IoU, AP; the human_benchmark criterion, absent without it)")),
        ("--saliency-skip-bad-samples", "--skip-bad-samples", dict(
            dest="saliency_skip_bad", action="store_true", default=False,
            help="leave out unreadable or malformed samples (each is listed in the evidence) instead of stopping")),
        ("--saliency-methods", "--methods", dict(
            dest="saliency_methods", default=None, metavar="LIST",
            help=f"comma-separated saliency methods (default: {','.join(PAPER_METHODS)})")),
        ("--saliency-maps", "--maps", dict(
            dest="saliency_maps", action="append", default=[], metavar="[NAME=]DIR",
            help="audit saliency maps made elsewhere: one <image id>.npy or .png per image (any resolution); "
                 "reported as method NAME (default: external); repeatable")),
        ("--saliency-controls", "--controls", dict(
            dest="saliency_controls", action="store_const", const=True, default=None,
            help="also audit the control maps edge and random (negative) and oracle (positive); a control that "
                 "comes out wrong fails the gate (default: on for --dataset=demo)")),
        ("--saliency-no-controls", "--no-controls", dict(
            dest="saliency_controls", action="store_const", const=False, help="audit the methods only")),
        ("--saliency-sequential", "--sequential", dict(
            dest="saliency_sequential", action="store_const", const=True, default=None,
            help="audit images a batch at a time and stop each (criterion, method) once a group-sequential "
                 "test decides it (the default; config sequential_rule: obf or betting)")),
        ("--saliency-no-sequential", "--no-sequential", dict(
            dest="saliency_sequential", action="store_const", const=False,
            help="fixed-n verdicts: every (criterion, method) audits all its images")),
        ("--saliency-n-images", "--n-images", dict(
            dest="saliency_n_images", type=int, default=None, metavar="N",
            help="images audited, at most N per criterion: the lesion images of the localisation criteria "
                 "(utility, energy, focus, pointing, human_benchmark; config n_images, default 48) and at most N "
                 "of the images of randomization, consistency and completeness (config randomization.n_images, "
                 "consistency.n_images, completeness.n_images: 24 each, set lower there); the plan lists each")),
        ("--saliency-device", "--device", dict(
            dest="saliency_device", default=None, metavar="DEV", help="cpu, cuda, cuda:1 ... (default: cpu)")),
        ("--saliency-seed", "--seed", dict(
            dest="saliency_seed", type=int, default=None, metavar="N", help="run seed (default: 0)")),
        ("--saliency-target-class", "--target-class", dict(
            dest="saliency_target_class", default=None, metavar="N|predicted",
            help="output explained: a class index, or 'predicted' (each image's class as the model predicts it) "
                 "(default: 1, the positive class)")),
        ("--saliency-output", "--output", dict(
            dest="saliency_output", default=None, choices=("auto", "softmax", "sigmoid"),
            help="how the model's outputs become probabilities: softmax (competing classes), sigmoid (independent "
                 "findings, a multi-label head), or auto (the model's own declaration, else sigmoid for one output "
                 "and softmax for several) (default: config output, auto)")),
        ("--saliency-class-names", "--class-names", dict(
            dest="saliency_class_names", default=None, metavar="A,B,...",
            help="comma-separated names of the model's outputs, one per output, in order (findings are then "
                 "chosen by name)")),
        ("--saliency-input-size", "--input-size", dict(
            dest="saliency_input_size", default=None, metavar="H[,W]",
            help="model input size (default: the architecture's, e.g. 224, inception_v3 299)")),
        ("--saliency-normalize", "--normalize", dict(
            dest="saliency_normalize", default=None, metavar="MEAN,STD",
            help="input normalisation: 'MEAN,STD', 'M1,M2,M3,S1,S2,S3', 'imagenet' or 'none' "
                 "(default: ImageNet for torchvision/timm models)")),
        ("--saliency-target-layer", "--target-layer", dict(
            dest="saliency_target_layer", default=None, metavar="MODULE",
            help="GradCAM target module name (default: discovered automatically)")),
        ("--saliency-report", "--audit-report", dict(
            dest="saliency_report", default="reports", metavar="DIR",
            help="where evidence.json (and the HTML report) go (default: reports)")),
        ("--saliency-config", "--audit-config", dict(
            dest="saliency_audit_config", default=None, metavar="PATH",
            help="TOML file with thresholds and parameters (default: [tool.saliency_audit] in pyproject.toml)")),
        ("--saliency-shard", "--audit-shard", dict(
            dest="saliency_shard", default=None, metavar="I/N",
            help="run shard I of N of the (criterion, method) pairs (CI matrices; join the shards' evidence "
                 "with 'saliency-audit merge')")),
        ("--saliency-baseline", "--audit-baseline", dict(
            dest="saliency_baseline", default=None, metavar="OLD.json",
            help="compare this run with an earlier run's evidence (per criterion and method, paired by image id; "
                 "the report's 'compared with' section)")),
        ("--saliency-fail-on-regression", "--audit-fail-on-regression", dict(
            dest="saliency_fail_on_regression", action="store_true", default=False,
            help="with --audit-baseline: a pair significantly worse than the baseline (Holm over the pairs) fails "
                 "its test even when its verdict passes")),
        ("--saliency-strict", "--audit-strict", dict(
            dest="saliency_strict", action="store_true", default=False,
            help="a criterion that cannot run (e.g. no --replicate) fails instead of being skipped")),
        ("--saliency-allow-unsafe-pickle", "--allow-unsafe-pickle", dict(
            dest="saliency_allow_unsafe_pickle", action="store_true", default=False,
            help="permit checkpoints that need full unpickling (can run arbitrary code)")),
    ]


def _group(parser: pytest.Parser):
    return parser.getgroup(GROUP, "saliency-audit: audit the trustworthiness of saliency maps (pytest "
                                  "--saliency-audit runs the audit suite that ships with the package; every option "
                                  "has a --saliency- name, and audit suites also take the short ones)")


def add_options(parser: pytest.Parser) -> None:
    """The plugin's own options: only ``--saliency-`` names (every pytest run of the environment sees them)."""
    g = _group(parser)
    for name, _, kw in _options():
        g.addoption(name, **kw)


# parsers whose audit suite asked for the short names while pytest loads the initial conftests: they are added
# once every one of those conftests has registered its options (see add_short_names)
_deferred: "weakref.WeakKeyDictionary[pytest.Parser, bool]" = weakref.WeakKeyDictionary()
# short names of a parser that the repository (or another plugin) owns: name -> the audit's --saliency- form
_owned: "weakref.WeakKeyDictionary[pytest.Parser, dict[str, str]]" = weakref.WeakKeyDictionary()


def taken(parser: pytest.Parser) -> dict[str, str]:
    """Every option name registered on ``parser`` so far -> its destination."""
    out: dict[str, str] = {}
    # pytest has no public listing of registered options; these two attributes have held them since pytest 3
    for group in [parser._anonymous, *parser._groups]:
        for opt in group.options:
            for n in opt.names():
                out[n] = getattr(opt, "dest", "")
    return out


def defer(parser: pytest.Parser) -> None:
    """Called before the initial conftests load: a suite's request for the short names waits until they have."""
    _deferred.setdefault(parser, False)


def request_short_names(parser: pytest.Parser) -> None:
    """What an audit suite's conftest calls from ``pytest_addoption``: the short names, now or (while the
    initial conftests load) once they all have."""
    if parser in _deferred:
        _deferred[parser] = True
    else:
        add_short_names(parser)


def requested(parser: pytest.Parser) -> bool:
    return bool(_deferred.get(parser))


def add_short_names(parser: pytest.Parser) -> None:
    """The short aliases (``--model`` ...) of every option whose short name nobody owns yet; idempotent."""
    names = taken(parser)
    mine = {kw["dest"] for _, _, kw in _options()}
    owned = _owned.setdefault(parser, {})
    g = _group(parser)
    for name, short, kw in _options():
        if short is None:
            continue
        if short in names:
            if names[short] not in mine:
                owned[short] = name
            continue
        alias = {k: v for k, v in kw.items() if k != "help"}
        alias["default"] = argparse.SUPPRESS  # the --saliency- option's default stands
        g.addoption(short, help=f"(audit suites) the same as {name}", **alias)


def owned_names(parser: pytest.Parser) -> dict[str, str]:
    """Short names this run's repository owns -> the ``--saliency-`` form the audit reads instead."""
    return dict(_owned.get(parser, {}))


def given(args) -> bool:
    """Whether the command line names a ``--saliency-`` option (the run is an audit run)."""
    return any(str(a).startswith(PREFIX) for a in args)
