"""Release-to-release comparison of two evidence files (``saliency-audit diff``, ``--audit-baseline``).

Per (criterion, method, model) that both runs decided with a number: the change of the verdict's value
(``delta = new − old``), a two-sided (1 − 2·alpha) interval on it, one-sided p-values for "worse" and
"better", and a flag -- ``worse``, ``better`` or ``unchanged`` -- after a family-wise procedure over all
compared rows (:func:`saliency_audit.stats.multiplicity.decide`, Holm by default), run separately for each
direction: the chance that *any* row is wrongly flagged worse is at most alpha, and the same for better.

Direction.  Higher is better for every criterion: each verdict passes when a one-sided lower bound of
its mean clears a threshold (utility, energy, focus, pointing, completeness: a mean difference from a
baseline above 0; randomization and label_randomization: the normalized SSIM drop d, or eMPRT's entropy
rise, at least a minimum; repeatability and reproducibility: mean SSIM at least ``min_ssim``).  The
exception is the *name* of the statistic: a randomization verdict reports whichever of its two checks
binds (the head stage or all layers, with different thresholds), and the config can switch it to eMPRT,
so two runs may report different statistics under one criterion.  A randomization result records both
checks per image (``per_image[].checks``), so such a pair is compared on a check both runs record (the new
run's binding one, if the old has it; :func:`on_common_check`, the row's notes say so); values of different
statistics with no common check (eMPRT against the SSIM drop, or evidence without ``checks``) are not
compared: such a pair goes to ``not_compared`` with the two names.

The tests (the row's ``test``):

* ``paired`` -- both runs carry the per-image term of their mean (``per_image[*].statistic``) for at
  least 2 common image ids: the differences new − old of the common ids, and the paired t-test of their
  mean (scipy): its one-sided p-values ``p_worse`` and ``p_better`` and its (1 − 2·alpha) interval, so
  flags and intervals agree (at a single level alpha a row is worse exactly when its interval lies below
  0).  Not the verdicts' BCa bootstrap, which is anti-conservative at a few dozen images (see ``_paired``):
  a regression gate that fails a release by chance is the costlier error here.  A statistic normalized by
  a noise floor estimated on the same images (the randomization criteria's d, ``per_image[].floor``) is
  paired on each image's influence term, which carries its share of the floor (:func:`_floor_linearized`).
* ``welch`` -- per-image terms on both sides but fewer than 2 common ids (other images): Welch's
  two-sample t-test of the difference of means (unequal variances, Welch-Satterthwaite degrees of
  freedom; scipy), its p-values and its interval.  The mean of a few dozen bounded per-image terms is
  close to normal; the bootstrap would need a two-sample inversion the project does not have.
* ``normal`` -- evidence written without per-image terms (older files): a normal approximation, each
  run's standard error from its per-image terms when it has them (sd/√n), else from its interval:
  (hi − lo) / (2·z), z the normal quantile of its ``ci_level`` (or 1 − 2·``details.alpha``).  A
  bootstrap (BCa) interval may be skewed and a sequential run's interval is wider than a fixed-n one, so
  this is approximate (conservative for the latter); the row says so.

Rows of control methods (``details.control``) are compared too, marked ``control: true``, and left out
of the family and the flags (their verdicts are expected outcomes of the audit, not of the model):
their ``flag`` is None.  Rows that cannot be compared (an error or skip, no value, a changed statistic,
a pair only in one run) go to ``not_compared`` with the reason.  One of them is itself a regression: a
pair that passed in the old run and errors in the new one (the release lost a verdict it had) is marked
``lost: true`` and counted in ``summary.lost``; ``saliency-audit diff`` exits 1 on it as on a pair flagged
worse.  A pair only in the old run (a ``-k`` subset) or skipped in the new one is not lost.

Works on evidence dicts, imports no torch; the result is plain JSON.
"""
from __future__ import annotations

import math

import numpy as np

from ..common.subjects import key as subject_key
from ..common.subjects import subject
from ..stats.multiplicity import METHODS as _MULTIPLICITY
from ..stats.multiplicity import decide

FLAGS = ("worse", "better", "unchanged")

#: the family-wise procedure, in a comparison's words (multiplicity.TEXT speaks of a gate's passes)
MULTIPLICITY = {
    "holm": ("Holm's step-down procedure over the compared pairs (Holm 1979): at most alpha chance that any pair "
             "is wrongly flagged worse (and the same for better)"),
    "bonferroni": ("Bonferroni: each pair at alpha / m, at most alpha chance that any pair is wrongly flagged "
                   "worse (and the same for better)"),
    "none": "each pair at its own level alpha (no family-wise correction: with many pairs, some flags are chance)",
}

TESTS = {
    "paired": "paired by image id: paired t-test of the mean per-image difference over the common images",
    "welch": "unpaired (different images): Welch's two-sample t-test of the difference of the means",
    "normal": ("unpaired, normal approximation from each run's interval and its level (evidence without "
               "per-image statistics): approximate"),
}


# -- reading evidence -----------------------------------------------------------------------------------------
def _num(x) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _key(r: dict) -> tuple:
    """(criterion, method, model, finding): common/subjects.py's key."""
    return subject_key(r)


def _label(key: tuple) -> str:
    c, m, model, finding = key
    return f"{c}[{subject(m, finding)}]" + ("" if model == "primary" else f" ({model})")


def _named(key: tuple) -> dict:
    """A row's naming fields (its finding only when it has one: a single-label run's rows read as before)."""
    return {"criterion": key[0], "method": key[1], "model": key[2], **({"finding": key[3]} if key[3] else {})}


def _is_control(r: dict) -> bool:
    c = (r.get("details") or {}).get("control")
    return isinstance(c, dict)


def _results(evidence: dict) -> dict[tuple[str, str, str], dict]:
    """Results by key, in the evidence's order (a key written twice: the later one)."""
    out: dict = {}
    for r in evidence.get("results") or []:
        if isinstance(r, dict):
            out[_key(r)] = r
    return out


def _terms(r: dict) -> tuple[list[str], np.ndarray] | None:
    """(ids, per-image statistic) of a result, NaN for a missing number; None when any item lacks one."""
    items = r.get("per_image")
    if not isinstance(items, list) or not items:
        return None
    if not all(isinstance(i, dict) and "statistic" in i for i in items):
        return None
    values = np.array([math.nan if v is None else v for v in (_num(i["statistic"]) for i in items)])
    return [str(i.get("id")) for i in items], _floor_linearized(items, values)


def _floor_linearized(items: list[dict], d: np.ndarray) -> np.ndarray:
    """:func:`saliency_audit.stats.floor_terms` of a result's per-image items (``per_image[].floor``): between
    two runs of one model with different seeds, SmoothGrad's and Smooth IG's floor shifts (0.316 -> 0.323 for
    Smooth IG on the demo), all eight d_i rise together by about 1.4 %, and a paired test of the d_i alone
    flags that shared shift as "better" with p < 0.01; the terms put the floor's image-to-image variation in
    the paired differences.  Results without floor terms (other criteria, older evidence) are unchanged."""
    from ..stats import floor_terms

    return floor_terms(d, [math.nan if _num(i.get("floor")) is None else _num(i.get("floor")) for i in items])


def on_common_check(old: dict, new: dict) -> tuple[dict, dict, str] | None:
    """Two results whose verdict statistic differs (a randomization verdict reports whichever of its checks
    binds), rewritten onto a check both record per image (``per_image[].checks``): the new run's binding one
    if the old run has it, else the old run's.  (old, new, note), or None when they share none."""
    def checks(r):
        items = r.get("per_image")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) and isinstance(i.get("checks"),
                                                                                                dict) for i in items):
            return None
        return set.intersection(*(set(i["checks"]) for i in items))

    co, cn = checks(old), checks(new)
    if not co or not cn:
        return None
    name = next((s for s in (new.get("statistic"), old.get("statistic")) if s in co and s in cn), None)
    if name is None:
        return None

    def onto(r):
        items = [{**i, "statistic": i["checks"][name]} for i in r["per_image"]]
        values = np.array([v for v in (_num(i["statistic"]) for i in items) if v is not None], dtype=float)
        return {**r, "statistic": name, "per_image": items, "value": float(values.mean()) if values.size else None,
                "ci": [None, None], "threshold": None}  # the check's own threshold is not in per_image

    return onto(old), onto(new), (f"the verdict's binding check differs ({old.get('statistic')!r} old, "
                                  f"{new.get('statistic')!r} new): compared on {name!r}, which both record per image")


def _level(r: dict) -> float | None:
    """The two-sided level of a result's ``ci``."""
    lv = _num(r.get("ci_level"))
    if lv is not None and 0 < lv < 1:
        return lv
    a = _num((r.get("details") or {}).get("alpha"))
    return 1.0 - 2.0 * a if a is not None and 0 < a < 0.5 else None


def _primary(evidence: dict) -> dict:
    models = [m for m in evidence.get("models") or [] if isinstance(m, dict)]
    return next((m for m in models if m.get("role") == "primary"), models[0] if models else {})


#: what makes two runs' data different whatever images their criteria sampled
DATA_KEYS = ("name", "root", "split", "split_file", "finding", "size")


def _data_difference(old: dict, new: dict, pairs: list[tuple[dict, dict]]) -> tuple[str, str] | None:
    """Why the two runs' dataset manifests differ, if they do: ("warning", text) when the data differ (another
    dataset, split or size, or other images or pixels where the compared pairs looked), ("note", text) when
    only the images some criteria sampled differ (``-k`` ran other criteria) and every compared pair used the
    same images (same ids, same thumbnails in both evidence files)."""
    do, dn = old.get("dataset") or {}, new.get("dataset") or {}
    mo, mn = do.get("manifest_sha256"), dn.get("manifest_sha256")
    if not (mo and mn and mo != mn):
        return None
    changed = [k for k in DATA_KEYS if do.get(k) != dn.get(k) and not (do.get(k) is None or dn.get(k) is None)]
    if changed:
        what = "; ".join(f"{k} {do.get(k)!r} -> {dn.get(k)!r}" for k in changed)
        return "warning", (f"the dataset differs ({what}): the runs saw different data, so changes mix the model's "
                           "with the images'")
    used = set()
    for ro, rn in pairs:
        ids_o = {i.get("id") for i in ro.get("per_image") or [] if isinstance(i, dict)}
        ids_n = {i.get("id") for i in rn.get("per_image") or [] if isinstance(i, dict)}
        used |= ids_o & ids_n
    so, sn = old.get("samples") or {}, new.get("samples") or {}
    same = bool(used) and all(isinstance(so.get(i), dict) and isinstance(sn.get(i), dict)
                              and so[i].get("image") is not None and so[i].get("image") == sn[i].get("image")
                              for i in used)
    if same:
        return "note", (f"the dataset manifests differ ({str(mo)[:12]} old, {str(mn)[:12]} new) only in images that "
                        f"the criteria of one run sampled (e.g. -k left some out); the {len(used)} images the compared "
                        "pairs share are the same in both runs (ids and thumbnails)")
    return "warning", (f"the dataset manifests differ ({str(mo)[:12]} old, {str(mn)[:12]} new): the runs saw "
                       "different data, so changes mix the model's with the images'")


def _about(evidence: dict, name: str) -> dict:
    """What a comparison names of one run."""
    run, ds, m = evidence.get("run") or {}, evidence.get("dataset") or {}, _primary(evidence)
    return {"name": name, "started": run.get("started"), "seed": run.get("seed"), "status": run.get("status"),
            "model": {"spec": m.get("spec"), "arch": m.get("arch"), "sha256": m.get("sha256")},
            "dataset": {"name": ds.get("name"), "n_images": ds.get("n_images"),
                        "manifest_sha256": ds.get("manifest_sha256")}}


# -- one pair ---------------------------------------------------------------------------------------------------
def _degenerate(delta: float) -> tuple[float, float]:
    """(p_worse, p_better) of a difference known without spread."""
    return (0.0, 1.0) if delta < 0 else (1.0, 0.0) if delta > 0 else (1.0, 1.0)


def _paired(d: np.ndarray, alpha: float) -> dict:
    """The paired t-test of the per-image differences (scipy).  Not the bootstrap the verdicts use: a regression
    gate that flags a release by chance costs a team a release, and at 30-40 images the BCa bootstrap's one-sided
    p-value fell at or below 0.05 for 6.9 % of null samples (800 normal samples of 40 images), the t-test's for
    5.3 % (tests/test_comparison.py measures the family's false-flag rate)."""
    from scipy import stats

    delta = float(d.mean())
    if float(np.ptp(d)) <= 1e-12 * max(1.0, abs(delta)):  # no spread (to rounding): the t statistic is undefined
        p_worse, p_better = _degenerate(delta)
        return {"delta": delta, "ci": [delta, delta], "p_worse": p_worse, "p_better": p_better,
                "interval": "degenerate"}
    res = stats.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(confidence_level=1.0 - 2.0 * alpha)
    return {"delta": delta, "ci": [float(ci.low), float(ci.high)],
            "p_worse": float(stats.t.cdf(res.statistic, res.df)), "p_better": float(stats.t.sf(res.statistic, res.df)),
            "interval": f"paired t, df {int(res.df)}"}


def _welch(old: np.ndarray, new: np.ndarray, alpha: float) -> dict:
    from scipy import stats

    delta = float(new.mean() - old.mean())
    if float(np.var(old)) == 0.0 and float(np.var(new)) == 0.0:
        p_worse, p_better = _degenerate(delta)
        return {"delta": delta, "ci": [delta, delta], "p_worse": p_worse, "p_better": p_better,
                "interval": "degenerate"}
    res = stats.ttest_ind(new, old, equal_var=False)
    ci = res.confidence_interval(confidence_level=1.0 - 2.0 * alpha)
    return {"delta": delta, "ci": [float(ci.low), float(ci.high)], "p_worse": float(stats.t.cdf(res.statistic, res.df)),
            "p_better": float(stats.t.sf(res.statistic, res.df)), "interval": f"Welch t, df {float(res.df):.1f}"}


def _se(r: dict, terms) -> tuple[float | None, int | None, str]:
    """(standard error of a result's value, n, where it came from) for the normal approximation."""
    from scipy import stats

    if terms is not None:
        x = terms[1][np.isfinite(terms[1])]
        if x.size >= 2:
            return float(np.std(x, ddof=1) / math.sqrt(x.size)), int(x.size), "per-image statistics"
    ci = r.get("ci") if isinstance(r.get("ci"), list) else [None, None]
    lo, hi = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
    level = _level(r)
    if lo is None or hi is None or level is None or hi < lo:
        return None, None, "no usable interval (ci and ci_level)"
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return (hi - lo) / (2.0 * z), r.get("n") if isinstance(r.get("n"), int) else None, f"its {level:.0%} interval"


def _normal(delta: float, se: float, alpha: float) -> dict:
    from scipy import stats

    if se == 0.0:
        p_worse, p_better = _degenerate(delta)
        return {"delta": delta, "ci": [delta, delta], "p_worse": p_worse, "p_better": p_better,
                "interval": "degenerate"}
    z = float(stats.norm.ppf(1.0 - alpha))
    return {"delta": delta, "ci": [delta - z * se, delta + z * se], "p_worse": float(stats.norm.cdf(delta / se)),
            "p_better": float(stats.norm.sf(delta / se)), "interval": "normal approximation"}


def _unique(ids: list[str], x: np.ndarray) -> dict[str, float] | None:
    """id -> finite statistic, or None when an id repeats (no pairing then)."""
    if len(set(ids)) != len(ids):
        return None
    return {i: float(v) for i, v in zip(ids, x) if math.isfinite(v)}


def compare_pair(old: dict, new: dict, *, alpha: float = 0.05) -> dict:
    """One row (without the family's flag) for two results of the same key, both with a numeric value."""
    key = _key(new)
    to, tn = _terms(old), _terms(new)
    notes: list[str] = []
    row: dict = {**_named(key), "statistic": new.get("statistic"),
                 "control": _is_control(old) or _is_control(new),
                 "old_value": _num(old.get("value")), "new_value": _num(new.get("value")),
                 "old_verdict": old.get("verdict"), "new_verdict": new.get("verdict"),
                 "old_n": old.get("n"), "new_n": new.get("n")}
    a = b = None
    common: list[str] = []
    if to is not None and tn is not None:
        a, b = _unique(*to), _unique(*tn)
        if a is None or b is None:
            notes.append("an image id repeats in the per-image statistics: not paired")
        else:
            common = [i for i in b if i in a]
    if len(common) >= 2:
        d = np.array([b[i] - a[i] for i in common])
        row.update(test="paired", paired=True, n_paired=len(common), **_paired(d, alpha))
        if len(common) < max(len(a), len(b)):
            notes.append(f"paired on the {len(common)} images both runs scored ({len(a)} old, {len(b)} new); "
                         "delta is the mean change over those")
    elif to is not None and tn is not None and np.isfinite(to[1]).sum() >= 2 and np.isfinite(tn[1]).sum() >= 2:
        x, y = to[1][np.isfinite(to[1])], tn[1][np.isfinite(tn[1])]
        row.update(test="welch", paired=False, **_welch(x, y, alpha))
        row.update(old_n=int(x.size), new_n=int(y.size))
        if a is not None and b is not None:
            notes.append(f"{len(common)} common image id(s): compared as two samples")
    else:
        se_o, n_o, src_o = _se(old, to)
        se_n, n_n, src_n = _se(new, tn)
        if se_o is None or se_n is None or row["old_value"] is None or row["new_value"] is None:
            which = "old" if se_o is None else "new"
            return {**row, "reason": f"no per-image statistics and {(src_o if se_o is None else src_n)} in the "
                                     f"{which} run"}
        row.update(test="normal", paired=False, **_normal(row["new_value"] - row["old_value"],
                                                          math.hypot(se_o, se_n), alpha))
        notes.append(f"normal approximation: old standard error from {src_o}, new from {src_n}")
    if any(isinstance(i, dict) and "floor" in i for r in (old, new) for i in (r.get("per_image") or [])[:1]):
        notes.append("each image's term carries its share of the noise floor (the statistic is normalized by a "
                     "floor estimated on the same images)")
    if old.get("threshold") != new.get("threshold"):
        notes.append(f"threshold changed: {old.get('threshold')} -> {new.get('threshold')}")
    if row["old_verdict"] != row["new_verdict"]:
        row["verdict_change"] = f"{row['old_verdict']} -> {row['new_verdict']}"
    else:
        row["verdict_change"] = None
    row["delta"] = _num(row["delta"])
    row["ci"] = [_num(v) for v in row["ci"]]
    row["ci_level"] = round(1.0 - 2.0 * alpha, 6)
    row["p_worse"], row["p_better"] = (min(1.0, max(0.0, float(row[k]))) for k in ("p_worse", "p_better"))
    row["notes"] = notes
    return row


def _why_not(old: dict | None, new: dict | None) -> str | None:
    """Why a key cannot be compared, or None."""
    if old is None:
        return "only in the new run"
    if new is None:
        return "only in the old run"
    for which, r in (("old", old), ("new", new)):
        if r.get("verdict") not in ("pass", "fail"):
            return f"{r.get('verdict')} in the {which} run"
    for which, r in (("old", old), ("new", new)):
        if _num(r.get("value")) is None:
            return f"no value in the {which} run"
    if old.get("statistic") != new.get("statistic"):
        return (f"the verdict's statistic differs ({old.get('statistic')!r} old, {new.get('statistic')!r} new): "
                "their values are not on one scale")
    return None


# -- the comparison ---------------------------------------------------------------------------------------------
def compare(old: dict, new: dict, *, alpha: float = 0.05, multiplicity: str = "holm", old_name: str = "", new_name: str = "") -> dict:
    """Compare two evidence dicts (``old`` the baseline): a JSON-ready dict (see the module docstring)."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), not {alpha!r}")
    if multiplicity not in _MULTIPLICITY:
        raise ValueError(f"multiplicity must be one of {', '.join(_MULTIPLICITY)}, not {multiplicity!r}")
    a, b = _results(old), _results(new)
    keys = list(a) + [k for k in b if k not in a]
    rows, not_compared = [], []
    for key in keys:
        ro, rn = a.get(key), b.get(key)
        why = _why_not(ro, rn)
        note = None
        if why is not None and ro is not None and rn is not None and ro.get("statistic") != rn.get("statistic") \
                and (common := on_common_check(ro, rn)) is not None:
            ro, rn, note = common
            why = _why_not(ro, rn)
        if why is None:
            row = compare_pair(ro, rn, alpha=alpha)
            why = row.pop("reason", None)
            if note and why is None:
                row["notes"].insert(0, note)
        if why is not None:
            r = rn or ro
            old_v, new_v = (ro.get("verdict") if ro else None), (rn.get("verdict") if rn else None)
            not_compared.append({**_named(key), "reason": why,
                                 "control": _is_control(r),
                                 "old_verdict": old_v, "new_verdict": new_v,
                                 "lost": old_v == "pass" and new_v == "error" and not _is_control(r)})
            continue
        rows.append(row)
    family = [r for r in rows if not r["control"]]
    worse = decide([r["p_worse"] for r in family], alpha, multiplicity)
    better = decide([r["p_better"] for r in family], alpha, multiplicity)
    for r, w, bt in zip(family, worse, better):
        r["p_worse_adjusted"], r["p_better_adjusted"] = w["adjusted_p"], bt["adjusted_p"]
        r["flag"] = "worse" if w["passes"] else "better" if bt["passes"] else "unchanged"
    for r in rows:
        if r["control"]:
            r.update(flag=None, p_worse_adjusted=None, p_better_adjusted=None)
    info_old, info_new = _about(old, old_name), _about(new, new_name)
    warnings = []
    data = _data_difference(old, new, [(a[k], b[k]) for k in keys if k in a and k in b])
    if data is not None:
        kind, text = data
        if kind == "warning":
            warnings.append(text)
        else:
            info_new["dataset"]["note"] = text
    for which, info in (("old", info_old), ("new", info_new)):
        if info["status"] not in (None, "complete"):
            warnings.append(f"the {which} run is {info['status']}, not complete")
    count = {f: sum(r["flag"] == f for r in family) for f in FLAGS}
    return {"old": info_old, "new": info_new, "alpha": alpha, "multiplicity": multiplicity,
            "multiplicity_text": MULTIPLICITY[multiplicity], "tests": dict(TESTS),
            "family": len(family), "summary": {**count, "controls": len(rows) - len(family),
                                               "paired": sum(bool(r["paired"]) for r in rows),
                                               "not_compared": len(not_compared),
                                               "lost": sum(bool(r["lost"]) for r in not_compared)},
            "warnings": warnings, "rows": rows, "not_compared": not_compared}


def lost(comparison: dict) -> list[dict]:
    """The pairs that passed in the old run and error in the new one (never a control's)."""
    return [r for r in comparison.get("not_compared") or [] if isinstance(r, dict) and r.get("lost")]


def regressions(comparison: dict) -> list[dict]:
    """The rows flagged worse (never a control's)."""
    return [r for r in comparison.get("rows") or [] if r.get("flag") == "worse" and not r.get("control")]


def label(row: dict) -> str:
    """``criterion[method]``, with the model when it is not the primary."""
    return _label(subject_key(row))
