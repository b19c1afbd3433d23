"""Warnings a reader must see, gathered from the evidence: shown in the terminal summary and atop the report.

They live deep in the evidence (a result's map notes, a baseline that could
not be built, a TorchScript model kept as it is, the comparison with an
earlier run, the dataset's skip list, a baseline's mask count); this collects them into one short list, one
line per distinct warning, naming the methods it concerns.
"""
from __future__ import annotations

from ..common.subjects import of as subject_of
from .accuracy import _auroc, deciding, output_label, sigmoid_head

#: A prior built from fewer masks is noisy enough to decide a verdict by itself.
FEW_PRIOR_MASKS = 20
#: Balanced accuracy below this on the audited images is near chance for a binary finding.
NEAR_CHANCE = 0.65
#: A pass on fewer images than this whose per-image values have a long lower tail (skewness at most
#: LOPSIDED) is where the calibration study (benchmarks/results/error_rates.json) measured wrong-pass rates
#: above alpha: up to 9 % at 8 images, 6-7 % at 16-24, 6 % at 48 for single demo methods.
SMALL_PASS = 49
LOPSIDED = -0.4


def _skewness(values: list) -> float | None:
    """The sample skewness of the finite numbers in ``values`` (the one the bounds' Hall correction uses,
    :func:`saliency_audit.stats._skewness`); None for fewer than 3 or no spread."""
    import numpy as np

    from ..stats import _skewness as skewness

    x = np.array([v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)], dtype=np.float64)
    x = x[np.isfinite(x)]
    return skewness(x) if len(x) >= 3 and np.ptp(x) > 0 else None


def _softmax_by_default(evidence: dict) -> bool:
    """Whether the primary model's three or more outputs were read as a softmax only because nothing said otherwise
    (models/target.py ``SOURCE_DEFAULT``, which begins "several outputs"): then an argmax over what may be
    independent sigmoids, not the input, can explain a near-chance accuracy."""
    for m in evidence.get("models") or []:
        if isinstance(m, dict) and m.get("role") == "primary":
            extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
            source = extra.get("output_source")
            n = m.get("num_classes")
            return (m.get("output") == "softmax" and isinstance(source, str) and source.startswith("several outputs")
                    and isinstance(n, int) and n > 2)  # two classes: the single-label binary model it is built for
    return False


def collect(evidence: dict) -> list[str]:
    found: dict[str, list[str]] = {}  # warning -> methods (insertion order)

    def add(text: str, method: str | None = None) -> None:
        methods = found.setdefault(text, [])
        if method and method not in methods:
            methods.append(method)

    for r in evidence.get("results") or []:
        method = subject_of(r)
        notes = (r.get("details") or {}).get("map_notes") or {}
        cam = notes.get("cam_layer") or {}
        if isinstance(cam, dict) and cam.get("warning"):
            add(f"GradCAM layer {cam.get('name')}: {cam['warning']}", method)
        if notes.get("gbp_warning"):
            add(f"guided backprop: {notes['gbp_warning']}", method)
        base = r.get("baseline") or {}
        n = base.get("n_masks") if isinstance(base, dict) else None
        if isinstance(n, int) and not isinstance(n, bool) and n < FEW_PRIOR_MASKS:
            add(f"the average-mask prior ({base.get('kind', 'held-out')}) is built from only {n} mask(s)")
        for b in r.get("baselines") or []:
            if isinstance(b, dict) and b.get("available") is False:
                add(f"{b.get('name', 'a baseline')} baseline unavailable: {b.get('reason')}", method)
        items = r.get("per_image") or []
        if r.get("verdict") == "pass" and not (r.get("details") or {}).get("control") and len(items) < SMALL_PASS:
            g = _skewness([i.get("statistic") for i in items if isinstance(i, dict)])
            alpha = (r.get("details") or {}).get("alpha")
            alpha = alpha if isinstance(alpha, float) else 0.05
            p = r.get("p_value")
            # up to about twice alpha at such sizes: a pass with p <= alpha / 2 stays a pass at that rate
            if g is not None and g <= LOPSIDED and isinstance(p, (int, float)) and p > alpha / 2:
                add(f"{r.get('criterion')} passes near its threshold (p {p:.2g}) on fewer than {SMALL_PASS} images "
                    f"whose values have a long lower tail (skewness {g:.2f}): at that size such passes are wrong "
                    "more often than alpha (up to 9 % in the calibration study); audit more images", method)
    cfg = evidence.get("config") or {}
    family = (cfg.get("stats") or {}).get("multiplicity") if isinstance(cfg.get("stats"), dict) else None
    if family in ("holm", "bonferroni") and cfg.get("sequential"):
        add(f"the family-wise gate ({family}) over sequential verdicts wrongly passed some verdict 5.9 % of the time "
            "in the calibration study (above its 5 %): run it with --no-sequential for a family level that holds")
    for m in evidence.get("models") or []:
        auto = ((m.get("extra") if isinstance(m, dict) and isinstance(m.get("extra"), dict) else {}) or {}).get(
            "auto_arch")
        if isinstance(auto, dict) and not auto.get("arch") and auto.get("reason"):
            add(f"{m.get('role', 'a')} model {m.get('spec')} is kept as a TorchScript archive ({auto['reason']}): "
                "criteria that need forward hooks (the CAMs, guided backprop, randomization) are skipped; "
                "give ARCH:PATH to rebuild it")
    for w in (evidence.get("comparison") or {}).get("warnings") or []:
        add(f"compared with the baseline: {w}")
    dataset = evidence.get("dataset") or {}
    views = dataset.get("findings") if isinstance(dataset.get("findings"), dict) else None
    for finding, view in (views.items() if views else [(None, dataset)]):  # a run per finding: each view's own
        if isinstance(view, dict):
            _dataset_warnings(view, evidence, lambda text, f=finding: add(f"{f}: {text}" if f else text))
    left_out = dataset.get("findings_left_out") or []
    if left_out:
        add(f"{len(left_out)} finding(s) of the dataset not audited ("
            + ", ".join(f"{x.get('finding')}: {x.get('reason')}" for x in left_out[:3] if isinstance(x, dict))
            + "): see dataset.findings_left_out in the evidence")
    note = (((evidence.get("comparison") or {}).get("new") or {}).get("dataset") or {}).get("note")
    if note:
        add(f"compared with the baseline: {note}")
    return [text + (f" [{', '.join(m)}]" if m else "") for text, m in found.items()]

def _dataset_warnings(dataset: dict, evidence: dict, add) -> None:
    """The warnings one dataset section (the run's, or one finding's view) calls for."""
    acc, on = deciding(dataset.get("primary_accuracy")) or ({}, "")
    bal = acc.get("balanced_accuracy")
    auroc = _auroc(acc)
    if sigmoid_head(acc):  # judged by its AUROC: a sigmoid's 0.5 need not be its operating point
        if auroc is not None and auroc < NEAR_CHANCE:
            add(f"the audited model's AUROC of {output_label(acc)} on {acc.get('n')} {on} is {auroc:.2f} (chance "
                f"0.5; labels {acc.get('labels')}): check that this output is the finding audited (--target-class, "
                "--finding, --class-names), then --input-size and --normalize; maps of a model that does not "
                "work explain nothing")
    elif isinstance(bal, (int, float)) and not isinstance(bal, bool) and bal < NEAR_CHANCE:
        add(f"the audited model's balanced accuracy on {acc.get('n')} {on} is {bal:.2f} (chance 0.5 for two "
            f"classes; labels {acc.get('labels')}, predicted {acc.get('predicted')}): "
            + ("its outputs were read as competing classes by default: if they are independent findings (a "
               "multi-label head), say --output=sigmoid; else " if _softmax_by_default(evidence) else "")
            + "check --input-size and --normalize, the usual cause; maps of a model that does not work explain "
              "nothing")
    unlocalised = dataset.get("positives_without_lesion") or {}
    if unlocalised.get("count"):
        ids = unlocalised.get("ids") or []
        first = ", ".join(str(i) for i in ids[:3]) + (" …" if unlocalised["count"] > 3 else "")
        add(f"{unlocalised['count']} positive image(s) have no lesion mask or box and were passed over by the "
            f"localisation criteria ({first}): see dataset.positives_without_lesion in the evidence")
    skipped = dataset.get("skipped") or []
    if skipped:
        ids = ", ".join(str(s.get("id")) for s in skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3
                                                                 else "")
        add(f"{len(skipped)} sample(s) left out of the audit ({ids}): see dataset.skipped in the evidence")
    resized = dataset.get("resized_unasked")
    if isinstance(resized, dict):
        native, at = resized.get("native_size") or ["?", "?"], resized.get("audited_at") or ["?", "?"]
        add(f"the images are {native[0]}x{native[1]} natively and were audited at {at[0]}x{at[1]}, the model's "
            "default input size: give --input-size if the model was trained at another size")
