"""One evidence file from several: pytest-xdist workers of one run, or the shards of a CI matrix.

``--audit-shard I/N`` runs a deterministic share of the (test, method) pairs (:func:`shard_of`);
``saliency-audit merge A.json B.json … -o DIR`` joins the shards' evidence into one file and one report
(:func:`merge_shards`).  Shards are only merged when they audited the same thing: the same models (by
sha256), the same data, the same configuration and the same code; anything else is a one-line error
naming the file and what differs, because a merged verdict must be one audit's verdict.
"""
from __future__ import annotations

import json

from ..common.errors import AuditUsageError


def shard_of(pairs, index: int, count: int) -> set:
    """Shard ``index`` (1-based) of ``count``: every ``count``-th of the sorted pairs, from the ``index``-th
    (a criterion's methods spread over the shards, so no shard gets all the expensive ones)."""
    return {p for k, p in enumerate(sorted(pairs)) if k % count == index - 1}


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise AuditUsageError(f"--audit-shard={text}: expected I/N, e.g. 2/4") from None
    if not 1 <= index <= count:
        raise AuditUsageError(f"--audit-shard={text}: expected 1 <= I <= N")
    return index, count


def merge_evidence(parts: list[dict]) -> dict:
    """Combine evidence whose parts each hold some of the results (xdist workers, shards)."""
    from ..criteria.controls import summary as control_summary
    from ..criteria.diagnosis import diagnose
    from . import now, sort_models, sort_results

    base = json.loads(json.dumps(parts[0]))
    seen_models = {(m["role"], m["spec"]) for m in base["models"]}
    results = {(r["criterion"], r["method"], r.get("model")): r for r in base["results"]}
    for part in parts[1:]:
        for m in part["models"]:
            if (m["role"], m["spec"]) not in seen_models:
                base["models"].append(m)
                seen_models.add((m["role"], m["spec"]))
        for r in part["results"]:
            results[(r["criterion"], r["method"], r.get("model"))] = r
        base.setdefault("samples", {}).update(part.get("samples", {}))
        if part["dataset"].get("manifest_sha256"):  # keys only some parts know (e.g. the prior) are kept
            base["dataset"] = {**base["dataset"], **part["dataset"]}
        base["run"]["started"] = min(base["run"]["started"], part["run"]["started"])
    base["run"]["finished"] = now()
    plans = [p["run"].get("plan") for p in parts]
    if any(plans):  # each shard planned its own share
        base["run"]["plan"] = {"parts": plans, "image_passes": sum(p["image_passes"] for p in plans if p)}
    base["results"] = sort_results(list(results.values()))
    base["run"]["image_passes"] = sum(r.get("details", {}).get("image_passes", 0) for r in base["results"])
    base["diagnosis"] = diagnose(base["results"])
    base.pop("controls", None)
    if (controls := control_summary(base["results"])):
        base["controls"] = controls
    if "multiplicity" in base:  # per verdict (a family cannot be split: the plugin refuses it), over all parts
        from ..decisions.family import members, summary

        alpha = ((base.get("config") or {}).get("stats") or {}).get("family_alpha", 0.05)
        base["multiplicity"] = summary("none", alpha, members(base["results"]), [])
    base["models"] = sort_models(base["models"])
    base["samples"] = dict(sorted(base.get("samples", {}).items()))
    return base


#: What two shards must agree on: dataset keys, and the versions that change numbers.
DATA_KEYS = ("name", "root", "split", "split_file", "finding", "skip_bad_samples", "size")
CODE_KEYS = ("saliency_audit", "torch", "torchvision", "captum", "saliency", "numpy", "scipy", "scikit_image",
             "scikit_learn", "pydicom")


def _differs(name: str, a, b) -> str:
    return f"{name} differs ({json.dumps(a, default=str)[:80]} vs {json.dumps(b, default=str)[:80]})"


def _mismatch(first: dict, other: dict) -> str | None:
    """Why ``other`` is not a shard of the same audit as ``first`` (None: it is)."""
    if first.get("schema") != other.get("schema"):
        return _differs("evidence schema", first.get("schema"), other.get("schema"))
    models = {m["role"]: m for m in first["models"]}
    for m in other["models"]:
        if m["role"] in models and (models[m["role"]].get("sha256"), models[m["role"]].get("spec")) != (
                m.get("sha256"), m.get("spec")):
            return _differs(f"model {m['role']}", models[m["role"]].get("sha256"), m.get("sha256"))
    for key in DATA_KEYS:
        a, b = first["dataset"].get(key), other["dataset"].get(key)
        if a is not None and b is not None and a != b:
            return _differs(f"dataset {key}", a, b)
    if first["config"] != other["config"]:
        keys = sorted(k for k in set(first["config"]) | set(other["config"])
                      if first["config"].get(k) != other["config"].get(k))
        return _differs(f"config {keys[0]}", first["config"].get(keys[0]), other["config"].get(keys[0]))
    va, vb = first["run"].get("versions", {}), other["run"].get("versions", {})
    for key in CODE_KEYS:
        if va.get(key) != vb.get(key):
            return _differs(f"version of {key}", va.get(key), vb.get(key))
    ga, gb = (first["run"].get("git") or {}).get("commit"), (other["run"].get("git") or {}).get("commit")
    if ga and gb and ga != gb:
        return _differs("code revision", ga, gb)
    return None


def merge_shards(parts: list[dict], names: list[str]) -> dict:
    """The shards' evidence as one audit's; AuditUsageError (one line, naming the file) when they are not
    the N shards of one audit."""
    shards = []
    for part, name in zip(parts, names):
        if not isinstance(part, dict) or not isinstance(part.get("results"), list) or "run" not in part:
            raise AuditUsageError(f"{name}: not a saliency-audit evidence file")
        shard = part["run"].get("shard")
        if not shard:
            raise AuditUsageError(f"{name}: not a shard (the run had no --audit-shard)")
        shards.append(shard)
        why = _mismatch(parts[0], part)
        if why:
            raise AuditUsageError(f"{name}: not a shard of the same audit as {names[0]}: {why}")
    counts = {s["of"] for s in shards}
    if len(counts) != 1:
        raise AuditUsageError(f"{names[0]}: shards of different splits ({', '.join(f'of {c}' for c in sorted(counts))})")
    (count,) = counts
    seen: dict[int, str] = {}
    for shard, name in zip(shards, names):
        if shard["index"] in seen:
            raise AuditUsageError(f"{name}: shard {shard['index']}/{count} is also {seen[shard['index']]}")
        seen[shard["index"]] = name
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise AuditUsageError(f"merge: shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: a merge "
                              "of some shards would read as the whole audit")
    merged = merge_evidence(parts)
    statuses = [p["run"].get("status") for p in parts]
    merged["run"]["status"] = next((s for s in ("failed", "interrupted", "running") if s in statuses), "complete")
    codes = [p["run"].get("exit_status") for p in parts]
    merged["run"]["exit_status"] = max((c for c in codes if c is not None), default=None)
    merged["run"].pop("shard", None)
    merged["run"]["shards"] = [{"file": name, **shard, "status": p["run"].get("status"),
                                "exit_status": p["run"].get("exit_status"), "started": p["run"].get("started")}
                               for p, name, shard in sorted(zip(parts, names, shards), key=lambda t: t[2]["index"])]
    return merged
