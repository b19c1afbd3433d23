"""The demo models: shipped with the package, and the deterministic, cached training that made them.

The audit's sanity checks need models whose saliency *should* differ: a
primary model that looks at lesions, two re-seeded replicates (for
repeatability), another architecture, a model that memorised permuted labels
(the data-randomisation test: its maps must not look like the primary's) and
a model that learned a corner marker instead of the lesion (its maps must
miss the lesions). Training takes seconds to tens of seconds on 2 CPU cores,
so the weights are cached on disk, keyed by generator and training versions,
and written atomically under a file lock so parallel pytest-xdist workers
train each model once.

The weights this training produced are shipped in ``demo/weights/`` (1.8 MB),
with their sha256 in ``manifest.json``: float kernels differ between machines,
so a model retrained elsewhere has other weights and other numbers than the
tables of docs/demo-verdicts.md.  Loading prefers the shipped file (verified by hash), then
the cache, then trains; the training stays tested (tests/test_demo_world.py).

The multi-label models (:data:`MULTILABEL_VARIANTS`) are trained the same way on
the multi-finding world, one sigmoid output per finding with BCE; they are
shipped beside the others and keyed by that world's own version.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from saliency_audit.demo.archs import ARCHS, INPUT_MEAN, INPUT_STD
from saliency_audit.demo.world import FINDINGS, FINDINGS_VERSION, GENERATOR_VERSION, iter_findings, iter_split
from saliency_audit.common.paths import cache_root

#: Bump whenever a change alters trained weights; cached models key on it.
TRAIN_VERSION = "1"

_STANDARD = dict(data="standard", n_train=2000, epochs=4, lr=3e-3)

#: Every demo model. ``data``: "standard" (labels = lesion, marker
#: uninformative), "random-label" (standard images, labels permuted once with
#: a fixed permutation) or "shortcut" (label = marker, lesion independent).
VARIANTS: dict[str, dict] = {
    "primary": dict(arch="democnn", seed=1, **_STANDARD),
    "replicate1": dict(arch="democnn", seed=2, **_STANDARD),
    "replicate2": dict(arch="democnn", seed=3, **_STANDARD),
    "other-arch": dict(arch="demoresnet", seed=1, **_STANDARD),
    # Few images, many epochs: memorising random labels takes many passes per
    # image, so a small set is what makes it affordable.
    "random-label": dict(arch="democnn", seed=1, data="random-label", n_train=256, epochs=24, lr=3e-3),
    # The marker is learned within a few dozen steps.
    "shortcut": dict(arch="democnn", seed=1, data="shortcut", n_train=800, epochs=2, lr=3e-3),
}

#: Bump whenever a change alters the multi-label models' weights.
MULTILABEL_TRAIN_VERSION = "1"

#: The finding ``demo:multilabel`` was trained to ignore: its training label is the corner marker, which the
#: world draws independently of every lesion, so that output reads the marker and not its lesion (an audit of
#: it must fail where the others pass).
IGNORED_FINDING = "Calcification"

_FINDINGS_STANDARD = dict(data="findings", n_train=2500, epochs=6, lr=3e-3)

#: The multi-label demo models: one sigmoid output per finding of the multi-finding world
#: (:data:`~saliency_audit.demo.world.FINDINGS`), trained with BCE. ``data``: "findings" (labels = findings
#: present, but :data:`IGNORED_FINDING`'s = the marker) or "findings-random-label" (the same images, each
#: image's label row moved to another image by a fixed permutation).
MULTILABEL_VARIANTS: dict[str, dict] = {
    "multilabel": dict(arch="democnn", seed=1, **_FINDINGS_STANDARD),
    "multilabel-random-label": dict(arch="democnn", seed=1, data="findings-random-label", n_train=256, epochs=30,
                                    lr=3e-3),
    "multilabel-replicate1": dict(arch="democnn", seed=2, **_FINDINGS_STANDARD),
    "multilabel-other-arch": dict(arch="demoresnet", seed=1, **_FINDINGS_STANDARD),
}

_N_VAL = 500
_BATCH = 32  # more updates per CPU-second than 64, at the same cost per image
_DATA_SEED = 0  # the world seed of every split used here; models differ by model seed only
_LABEL_PERMUTATION_SEED = 12345


def demo_cache_dir() -> Path:
    """``$SALIENCY_AUDIT_CACHE`` if set, else ``~/.cache/saliency-audit``."""
    return cache_root()


@functools.lru_cache(maxsize=2)  # the replicates share their data; 2000 images are 131 MB
def _split_tensors(split: str, n: int, marker_mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    from ..common import progress

    samples = []
    with progress.bar(n, f"rendering the demo world's {split} images") as shown:
        for s in iter_split(split, n, _DATA_SEED, marker_mode=marker_mode):
            samples.append(s)
            shown.update(1)
    x = np.stack([s.image for s in samples])[:, None]
    x = (torch.from_numpy(x) - INPUT_MEAN) / INPUT_STD
    y = torch.tensor([s.label for s in samples], dtype=torch.long)
    return x, y


def _training_data(spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    mode = "shortcut" if spec["data"] == "shortcut" else "independent"
    x, y = _split_tensors("train", spec["n_train"], mode)
    if spec["data"] == "random-label":
        perm = np.random.default_rng(_LABEL_PERMUTATION_SEED).permutation(len(y))
        y = y[torch.from_numpy(perm)]
    return x, y


def _recipe(variant: str) -> dict:
    return VARIANTS[variant] if variant in VARIANTS else MULTILABEL_VARIANTS[variant]


def _multilabel(spec: dict) -> bool:
    return spec["data"].startswith("findings")


def _build(spec: dict) -> nn.Module:
    return ARCHS[spec["arch"]](num_classes=len(FINDINGS)) if _multilabel(spec) else ARCHS[spec["arch"]]()


@functools.lru_cache(maxsize=2)  # the multi-label models share their data; 2500 images are 164 MB
def _findings_tensors(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(normalised images, findings present (N, F) float, marker flags (N,) float) of the multi-finding world."""
    from ..common import progress

    images, truth, marker = [], [], []
    with progress.bar(n, f"rendering the multi-finding world's {split} images") as shown:
        for s in iter_findings(split, n, _DATA_SEED):
            images.append(s.image)
            truth.append(s.labels)
            marker.append(s.marker)
            shown.update(1)
    x = (torch.from_numpy(np.stack(images)[:, None]) - INPUT_MEAN) / INPUT_STD
    return x, torch.tensor(truth, dtype=torch.float32), torch.tensor(marker, dtype=torch.float32)


def _findings_training_data(spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    x, truth, marker = _findings_tensors("train", spec["n_train"])
    y = truth.clone()
    y[:, FINDINGS.index(IGNORED_FINDING)] = marker
    if spec["data"] == "findings-random-label":
        y = y[torch.from_numpy(np.random.default_rng(_LABEL_PERMUTATION_SEED).permutation(len(y)))]
    return x, y


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)])


def _aurocs(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Per finding, the AUROC of its output against ``labels`` (rounded; scikit-learn's, ties counted half)."""
    from sklearn.metrics import roc_auc_score

    return {f: round(float(roc_auc_score(labels[:, k].numpy(), scores[:, k].numpy())), 4)
            for k, f in enumerate(FINDINGS)}


def _findings_info(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Training accuracy (every output thresholded at 0), validation AUROC per finding against the findings
    present, and the ignored finding's output against the marker."""
    train_acc = float(((_logits(model, x) > 0).float() == y).double().mean())
    vx, vtruth, vmarker = _findings_tensors("val", _N_VAL)
    scores = _logits(model, vx)
    return {
        "train_accuracy": round(train_acc, 4),
        "val_auroc": _aurocs(scores, vtruth),
        "val_auroc_ignored_vs_marker": _aurocs(scores, vmarker[:, None].expand_as(vtruth))[IGNORED_FINDING],
        "findings": list(FINDINGS),
        "ignored_finding": IGNORED_FINDING,
    }


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return float((pred == y).double().mean())


def _train(spec: dict, desc: str = "training demo model") -> tuple[nn.Module, dict]:
    """Train one model from ``spec`` without touching the caller's RNG state."""
    from ..common import progress

    start = time.perf_counter()
    multilabel = _multilabel(spec)
    x, y = _findings_training_data(spec) if multilabel else _training_data(spec)
    loss_fn = nn.functional.binary_cross_entropy_with_logits if multilabel else nn.functional.cross_entropy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec["seed"])
        model = _build(spec)
        gen = torch.Generator().manual_seed(spec["seed"])
        opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
        steps = spec["epochs"] * -(-len(x) // _BATCH)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec["lr"], total_steps=steps, pct_start=0.2)
        model.train()
        with progress.bar(steps, desc, unit="step") as shown:
            for _ in range(spec["epochs"]):
                order = torch.randperm(len(x), generator=gen)
                for i in range(0, len(x), _BATCH):
                    idx = order[i : i + _BATCH]
                    opt.zero_grad(set_to_none=True)
                    loss_fn(model(x[idx]), y[idx]).backward()
                    opt.step()
                    sched.step()
                    shown.update(1)
    model.eval()
    if multilabel:
        info = {**_findings_info(model, x, y), "n_train": len(x), "epochs": spec["epochs"]}
        info["train_seconds"] = round(time.perf_counter() - start, 2)
        return model, info
    info = {
        "train_accuracy": _accuracy(model, x, y),
        "n_train": len(x),
        "epochs": spec["epochs"],
    }
    info["val_accuracy"] = _accuracy(model, *_split_tensors("val", _N_VAL, "independent"))
    if spec["data"] == "shortcut":
        info["shortcut_val_accuracy"] = _accuracy(model, *_split_tensors("val", _N_VAL, "shortcut"))
    info["train_seconds"] = round(time.perf_counter() - start, 2)
    return model, info


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache may be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


#: The shipped weights (``<stem>.pt``) and their manifest ({stem: info, sha256 included}).
SHIPPED = Path(__file__).resolve().parent / "weights"


def _load_shipped(variant: str) -> tuple[nn.Module, dict] | None:
    """The shipped model of ``variant`` when its file is there and has the manifest's sha256, else None."""
    stem = _stem(variant)
    weights = SHIPPED / f"{stem}.pt"
    try:
        info = json.loads((SHIPPED / "manifest.json").read_text())[stem]
        if _sha256(weights) != info["sha256"]:
            return None
        model = _build(_recipe(variant))
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError):
        return None
    return model.eval(), dict(info, path=str(weights), source="shipped")


def _load_cached(variant: str, weights: Path, meta: Path) -> tuple[nn.Module, dict] | None:
    """The cached model, or None if absent, partial or corrupt."""
    try:
        info = json.loads(meta.read_text())
        sha = _sha256(weights)
        if info.get("sha256") != sha:
            return None
        model = _build(_recipe(variant))
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError):
        return None
    info["path"] = str(weights)
    return model.eval(), info


#: The demo models a full demo audit trains (``shortcut`` is trained only when asked for).
AUDIT_VARIANTS = ("primary", "random-label", "replicate1", "replicate2", "other-arch")


def _stem(variant: str) -> str:
    if variant in MULTILABEL_VARIANTS:  # the multi-finding world and its training have their own versions
        return f"{variant}-f{FINDINGS_VERSION}-t{MULTILABEL_TRAIN_VERSION}-s{MULTILABEL_VARIANTS[variant]['seed']}"
    return f"{variant}-g{GENERATOR_VERSION}-t{TRAIN_VERSION}-s{VARIANTS[variant]['seed']}"


def _count_label(variant: str, folder: Path) -> str:
    """``"2/5, "``: this model's place among the audit's models still to train, in the order they are trained."""
    if variant not in AUDIT_VARIANTS:
        return ""
    done = sum((folder / f"{_stem(v)}.pt").exists() for v in AUDIT_VARIANTS)
    return f"{done + 1}/{len(AUDIT_VARIANTS)}, "


def load_demo_model(
    variant: str, *, cache_dir: Path | None = None, retrain: bool = False
) -> tuple[nn.Module, dict]:
    """A demo model (eval mode, CPU) and its info: the shipped weights, else the cache, else trained (and
    cached) now; ``retrain`` trains whatever is there.

    The model expects ``(x - INPUT_MEAN) / INPUT_STD`` of a [0, 1] image.
    """
    if variant not in VARIANTS and variant not in MULTILABEL_VARIANTS:
        raise ValueError(f"unknown demo model variant {variant!r}; valid variants: "
                         f"{', '.join([*VARIANTS, *MULTILABEL_VARIANTS])}")
    spec = _recipe(variant)
    folder = Path(cache_dir if cache_dir is not None else demo_cache_dir()) / "demo-models"
    stem = _stem(variant)
    weights, meta = folder / f"{stem}.pt", folder / f"{stem}.json"

    if not retrain and (shipped := _load_shipped(variant)) is not None:
        return shipped
    if not retrain and (cached := _load_cached(variant, weights, meta)) is not None:
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        # Another process may have trained it while this one waited.
        if not retrain and (cached := _load_cached(variant, weights, meta)) is not None:
            return cached
        model, trained = _train(spec, f"training demo model {variant} ({_count_label(variant, folder)}cached after)")
        _atomic_write(weights, lambda f: torch.save(model.state_dict(), f))
        info = {
            "variant": variant,
            "arch": spec["arch"],
            "seed": spec["seed"],
            "generator_version": FINDINGS_VERSION if _multilabel(spec) else GENERATOR_VERSION,
            "train_version": MULTILABEL_TRAIN_VERSION if _multilabel(spec) else TRAIN_VERSION,
            **trained,
            "path": str(weights),
            "sha256": _sha256(weights),
        }
        _atomic_write(meta, lambda f: f.write(json.dumps(info, indent=2).encode()))
    return model, info
