"""The multi-label demo models on the multi-finding world: what each output detects and where its maps look.

    python benchmarks/bench_demo_findings.py   # writes benchmarks/results/demo_findings.json

Per model (``demo:multilabel`` and its companions) and finding, on the test split of ``--dataset=demo-findings``
(400 images, each finding present with probability 0.35): the AUROC of the finding's output (its sigmoid; a
monotone map, so the logit's AUROC) against the finding's label, and, for the finding the model was trained to
ignore, against the corner marker it was trained on instead. Per finding, on the first 40 test images that have
it: the mean average precision (``saliency_audit.metrics.localisation.average_precision``) of the plain gradient
(|d logit / d pixel|) and of GradCAM of that finding's output against that finding's mask, beside a flat map's
(the mask's share of the image); and against the marker's box, where the image has a marker. An output that
uses its lesion localises it well above the flat map; the ignored finding's does not, and looks at the marker.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("multilabel", "multilabel-replicate1", "multilabel-other-arch", "multilabel-random-label")
N_TEST = 400
N_LOCALISE = 40


def _maps(model, method: str, images: np.ndarray, k: int) -> np.ndarray:
    import torch

    from saliency_audit.config import AuditConfig
    from saliency_audit.methods.registry import METHODS
    from saliency_audit.models.layers import find_cam_layer

    x = torch.from_numpy(images)[:, None]
    memo = {"cam_layer": find_cam_layer(model)} if METHODS[method].uses_cam_layer else {}
    raw = METHODS[method].function()(model, x, [str(i) for i in range(len(x))], k, AuditConfig(), memo)
    return raw.detach().abs().sum(dim=1).numpy()  # (N, H, W), as the audit's postprocessing takes magnitudes


def _ap(maps: np.ndarray, masks: list[np.ndarray]) -> float:
    from saliency_audit.metrics.localisation import average_precision

    return round(float(np.mean([average_precision(m, t) for m, t in zip(maps, masks)])), 4)


def main() -> None:
    import torch
    from sklearn.metrics import roc_auc_score

    from saliency_audit.data.demo_findings import DemoFindingsDataset
    from saliency_audit.demo.train import IGNORED_FINDING
    from saliency_audit.demo.world import FINDINGS
    from saliency_audit.models import load_model

    views = {f: DemoFindingsDataset(n=N_TEST, finding=f) for f in FINDINGS}
    first = views[FINDINGS[0]]
    images = np.stack([first.load(i).image[0].numpy() for i in range(N_TEST)])
    labels = {f: np.array([v.describe(i)["label"] for i in range(N_TEST)]) for f, v in views.items()}
    marker = np.array([first.describe(i)["marker"] for i in range(N_TEST)], dtype=int)
    out = {"n_test": N_TEST, "n_localise": N_LOCALISE, "findings": list(FINDINGS), "ignored_finding": IGNORED_FINDING,
           "prevalence": {f: round(float(v.mean()), 3) for f, v in labels.items()}, "models": {}}
    for variant in MODELS:
        t0 = time.perf_counter()
        model = load_model(f"demo:{variant}")
        with torch.no_grad():
            logits = torch.cat([model(torch.from_numpy(images[i:i + 100])[:, None])
                                for i in range(0, N_TEST, 100)]).numpy()
        row = {"auroc": {f: round(float(roc_auc_score(labels[f], logits[:, k])), 4) for k, f in enumerate(FINDINGS)},
               "auroc_vs_marker": {f: round(float(roc_auc_score(marker, logits[:, k])), 4)
                                   for k, f in enumerate(FINDINGS)},
               "localisation": {}}
        for k, f in enumerate(FINDINGS):
            idx = views[f].localisation_indices(N_LOCALISE)
            samples = [views[f].load(i) for i in idx]
            x = np.stack([s.image[0].numpy() for s in samples])
            masks = [s.mask for s in samples]
            loc = {"n": len(idx), "flat_map_ap": round(float(np.mean([m.mean() for m in masks])), 4)}
            marked = [j for j, s in enumerate(samples) if s.meta["marker"]]
            boxes = []
            for j in marked:
                box = np.zeros(images.shape[1:], bool)
                x0, y0, x1, y1 = _marker_box(idx[j])
                box[y0:y1 + 1, x0:x1 + 1] = True
                boxes.append(box)
            for method in ("grad", "gradcam"):
                maps = _maps(model, method, x, k)
                loc[f"{method}_ap"] = _ap(maps, masks)
                loc[f"{method}_ap_marker"] = _ap(maps[marked], boxes) if marked else None
            loc["flat_map_ap_marker"] = round(float(np.mean([b.mean() for b in boxes])), 4) if boxes else None
            row["localisation"][f] = loc
        row["seconds"] = round(time.perf_counter() - t0, 1)
        row["train"] = {k: v for k, v in model.info.extra["demo"].items()
                        if k in ("train_seconds", "train_accuracy", "n_train", "epochs", "val_auroc")}
        out["models"][variant] = row
        print(variant, json.dumps(row), flush=True)
    dest = ROOT / "benchmarks" / "results"
    dest.mkdir(exist_ok=True)
    (dest / "demo_findings.json").write_text(json.dumps(out, indent=1) + "\n")


def _marker_box(i: int) -> tuple[int, int, int, int]:
    from saliency_audit.demo.world import finding_flags, render_findings

    present, marker = finding_flags("test", i, 0)
    return render_findings("test", i, 0, findings=present, marker=marker).marker_box


if __name__ == "__main__":
    main()
