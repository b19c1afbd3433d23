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
from ..common.subjects import key as result_key


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
    results = {result_key(r): r for r in base["results"]}
    for part in parts[1:]:
        for m in part["models"]:
            if (m["role"], m["spec"]) not in seen_models:
                base["models"].append(m)
                seen_models.add((m["role"], m["spec"]))
        for r in part["results"]:
            results[result_key(r)] = r
        _merge_samples(base.setdefault("samples", {}), part.get("samples", {}))
        if part["dataset"].get("manifest_sha256"):  # keys only some parts know (e.g. the prior) are kept
            base["dataset"] = {**base["dataset"], **part["dataset"]}
        elif isinstance(part["dataset"].get("findings"), dict):  # a run per finding: each finding's view alike
            mine = base["dataset"].setdefault("findings", {})
            for finding, view in part["dataset"]["findings"].items():
                if view.get("manifest_sha256") or finding not in mine:
                    mine[finding] = {**mine.get(finding, {}), **view}
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


def _merge_samples(into: dict, more: dict) -> None:
    """Thumbnails of both parts; a run per finding keeps every finding's truth of an image (``truths``)."""
    for sid, entry in more.items():
        held = into.get(sid)
        if isinstance(held, dict) and isinstance(held.get("truths"), dict) and isinstance(entry.get("truths"), dict):
            entry = {**entry, "truths": {**held["truths"], **entry["truths"]}}
        into[sid] = entry


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


def _names(pairs, limit: int = 6) -> str:
    pairs = sorted(pairs)
    return ", ".join(pairs[:limit]) + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def _pair_list(shard: dict, key: str, name: str) -> list[str] | None:
    value = shard.get(key)
    if value is None and key == "planned":
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise AuditUsageError(f"{name}: run.shard.{key} is not a list of pairs")
    return value


def check_coverage(shards: list[dict], names: list[str]) -> None:
    """The shards' pairs cover the planned selection exactly once: every shard records the same planned pairs
    (the selection before sharding), and each planned pair is in exactly one shard.  Shards written before
    ``planned`` was recorded are checked against the union of their pairs (each must hold exactly its
    share of it, :func:`shard_of`).  AuditUsageError naming the pairs otherwise."""
    count = shards[0]["of"]
    pairs = [_pair_list(s, "pairs", n) for s, n in zip(shards, names)]
    plans = [_pair_list(s, "planned", n) for s, n in zip(shards, names)]
    complete = all(plan is not None for plan in plans)
    if complete:  # the selections first: their difference names the pairs some shard never planned
        for plan, name in zip(plans, names):
            if set(plan) != set(plans[0]):
                only = set(plans[0]) ^ set(plan)
                raise AuditUsageError(f"{name}: planned a different selection than {names[0]} (differs in "
                                      f"{_names(only)}): shards of one audit must be run with the same -k/-m/methods")
    owner: dict[str, str] = {}
    for mine, name in zip(pairs, names):
        for p in mine:
            if p in owner:
                raise AuditUsageError(f"{name}: {p} is also audited by {owner[p]}: the shards overlap, so they "
                                      "come from different selections (-k, -m, methods)")
            owner[p] = name
    if complete:
        planned = set(plans[0])
        missing, extra = planned - set(owner), set(owner) - planned
        if missing:
            raise AuditUsageError(f"merge: {_names(missing)} planned but audited by no shard: a merge would read "
                                  "as the whole audit")
        if extra:
            raise AuditUsageError(f"merge: {_names(extra)} audited but not in the planned selection")
    union = set(plans[0]) if complete else set(owner)  # older shards: the union of their pairs
    for shard, mine, name in zip(shards, pairs, names):
        want = shard_of(union, shard["index"], count)
        if set(mine) != want:
            raise AuditUsageError(f"{name}: holds {_names(set(mine) ^ want)} against its share {shard['index']}/{count} "
                                  "of the shards' pairs: the shards come from different selections")


#: what two shards' datasets must agree on once both audited the same criteria (the images they used)
USED_KEYS = ("n_images", "manifest_sha256")


def _used_mismatch(first: dict, other: dict) -> str | None:
    """Evaluation sizes and images: the grid, the planned images per criterion group, each criterion's images
    (a shorter per-image list must start the longer: sequential looks stop early) and, for shards of the same
    criteria, the manifest of the images used and their count."""
    da, db = first.get("dataset") or {}, other.get("dataset") or {}
    a, b = da.get("eval_size"), db.get("eval_size")
    if a is not None and b is not None and a != b:
        return _differs("dataset eval_size", a, b)
    pa, pb = ((first.get("run") or {}).get("plan") or {}).get("images"), ((other.get("run") or {}).get("plan") or {}).get("images")
    if isinstance(pa, dict) and isinstance(pb, dict):
        for k in sorted(set(pa) & set(pb)):
            if pa[k] != pb[k]:
                return _differs(f"planned images for {k}", pa[k], pb[k])

    def ids(evidence):
        out: dict[str, list] = {}
        for r in evidence.get("results") or []:
            rows = r.get("per_image") if isinstance(r, dict) else None
            if isinstance(rows, list) and rows and r.get("model", "primary") == "primary":
                got = [row.get("id") for row in rows if isinstance(row, dict)]
                which = (r.get("criterion"), r.get("finding"))  # each finding's view has its own images
                if len(got) > len(out.get(which, [])):
                    out[which] = got
        return out

    ia, ib = ids(first), ids(other)
    for crit, finding in sorted(set(ia) & set(ib), key=str):
        short, long_ = sorted((ia[crit, finding], ib[crit, finding]), key=len)
        if long_[:len(short)] != short:
            return f"{crit}{f' ({finding})' if finding else ''} was evaluated on different images"
    ca = {r.get("criterion") for r in first.get("results") or [] if isinstance(r, dict)}
    cb = {r.get("criterion") for r in other.get("results") or [] if isinstance(r, dict)}
    if ca == cb:
        for key in USED_KEYS:
            a, b = da.get(key), db.get(key)
            if a is not None and b is not None and a != b:
                return _differs(f"dataset {key}", a, b)
    return None


def merge_shards(parts: list[dict], names: list[str]) -> dict:
    """:func:`_merge_shards`; a field of an unexpected type that the schema leaves open (it allows more
    properties) is one line naming the files too, never a traceback."""
    try:
        return _merge_shards(parts, names)
    except AuditUsageError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        from ..common.errors import one_line

        raise AuditUsageError(f"{', '.join(names)}: cannot merge these evidence files "
                              f"({type(exc).__name__}: {one_line(exc)})") from None


def _merge_shards(parts: list[dict], names: list[str]) -> dict:
    """The shards' evidence as one audit's; AuditUsageError (one line, naming the file) when they are not
    the N shards of one audit: different models, data, evaluation sizes, config or code, a shard index
    missing or twice, or pairs that do not cover the planned selection exactly once."""
    from .schema import problems

    if not parts:
        raise AuditUsageError("merge: no evidence files")
    shards = []
    for part, name in zip(parts, names):
        if not isinstance(part, dict) or not isinstance(part.get("results"), list) or "run" not in part:
            raise AuditUsageError(f"{name}: not a saliency-audit evidence file")
        found = problems(part)
        if found:
            raise AuditUsageError(f"{name}: not valid evidence: {found[0]}"
                                  + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
        shard = part["run"].get("shard")
        if not shard:
            raise AuditUsageError(f"{name}: not a shard (the run had no --audit-shard)")
        if not isinstance(shard, dict) or not all(isinstance(shard.get(k), int) and not isinstance(shard.get(k), bool)
                                                  for k in ("index", "of")) or not 1 <= shard["index"] <= shard["of"]:
            raise AuditUsageError(f"{name}: run.shard is not {{\"index\": I, \"of\": N, \"pairs\": [...]}} with 1 <= I <= N")
        shards.append(shard)
        why = _mismatch(parts[0], part) or _used_mismatch(parts[0], part)
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
    check_coverage(shards, names)
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
