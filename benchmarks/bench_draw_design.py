"""The randomization criterion's two draw designs against a plain cascade loop (issue 32, point 4).

    python benchmarks/bench_draw_design.py --label before|after [--images 16] [--repeats 3] [--threads 2]
                                           [--checkpoint PATH]
    # writes (merges its label into) benchmarks/results/draw_design.json

Model: bench_cascade.py's torchvision resnet18 (2 classes, 112 px, grayscale replicated to 3 channels and
ImageNet-normalised inside the AuditModel), trained by its ``train_checkpoint``, more briefly here
(``--train-images 256 --epochs 1``: the timings do not depend on how well it learned), on the demo world's
generated images (not real chest X-rays).  Images: the first ``--images`` demo test images; method: the plain
gradient (``grad``); fixed n (``sequential = false``), ``randomization.draws = 1``.

Contenders, interleaved ``--repeats`` times (medians reported), each criterion run with a fresh map cache:

* **plain** — bench_cascade.py's ``run_plain``: the trained maps, then per block (re-initialised cumulatively
  on one copy) one batched gradient pass of all images and SSIM;
* **plain_per_image** — the same loop with every image its own cascade, one image per pass (a plain pass runs one
  set of weights; bench_per_image_batching.py measures passes that mix them), each stage on the images the
  criterion uses: the model passes per_image cannot avoid while its maps stay equal, bit for bit, to one-image
  passes;
* **shared** — the whole criterion, ``Audit(...).run("randomization", "grad")`` with
  ``randomization.draw_design = "shared"`` (one re-initialisation per stage for every image);
* **per_image** — the same with the default ``draw_design = "per_image"`` (every image its own cascade).

Two rounds: ``wall`` at ``--threads`` torch threads (the issue's setting), and ``work`` at 1 thread; each
gives wall and process CPU seconds.  On a machine shared with other jobs a pass of several threads stalls
whenever one of them is descheduled, and short (one-image) passes suffer most: the 1-thread CPU seconds are
what each contender costs.  Compare ratios within one round, not seconds across runs.

``parts_s`` splits each criterion's wall time (exclusive times of instrumented functions; the rest is
``other``: postprocessing, cache files, bookkeeping): map passes (``MapStore.raw``: the method's forward and
backward), building randomized copies (deep copies, re-initialising and restoring blocks), weight
fingerprints (sha256 of the weights), similarities (SSIM, Spearman, HOG, noise floor), EMPRT's entropies,
bootstraps (stage rows, p-values) and thumbnails; ``calls`` counts each part's calls.  ``warm_per_image`` is
one more per_image run on a cache holding every map: its seconds and the copies it built (none is needed).

``--label`` names the code measured: ``before`` (the committed code, e.g. with ``PYTHONPATH`` pointing at an
export of it) or ``after``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_cascade import checkpoint, config as cascade_config, run_plain, setup  # noqa: E402


def _config(n: int, cache_dir: str, design: str):
    cfg = cascade_config(n, cache_dir)
    cfg.sequential = False
    cfg.randomization.draws = 1
    cfg.randomization.draw_design = design
    return cfg


class Parts:
    """Exclusive wall seconds of instrumented functions (a timed call inside another pauses the outer one)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list] = []  # [part, start]
        self._patched: list = []

    def _enter(self, part: str) -> None:
        now = time.perf_counter()
        if self._stack:
            top = self._stack[-1]
            self.seconds[top[0]] = self.seconds.get(top[0], 0.0) + now - top[1]
        self._stack.append([part, now])
        self.calls[part] = self.calls.get(part, 0) + 1

    def _exit(self) -> None:
        now = time.perf_counter()
        part, start = self._stack.pop()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - start
        if self._stack:
            self._stack[-1][1] = now

    def time(self, owner, name: str, part: str) -> None:
        fn = getattr(owner, name, None)
        if fn is None:  # not in this version of the code
            return

        def wrapper(*a, **k):
            self._enter(part)
            try:
                return fn(*a, **k)
            finally:
                self._exit()

        self._patched.append((owner, name, fn))
        setattr(owner, name, wrapper)

    def undo(self) -> None:
        for owner, name, fn in reversed(self._patched):
            setattr(owner, name, fn)
        self._patched.clear()


def instrument() -> Parts:
    import saliency_audit.engine.maps as maps_mod
    import saliency_audit.models.randomize as rnd
    import saliency_audit.models.wrapper as wrapper
    from saliency_audit.criteria import mprt
    from saliency_audit.criteria import randomization as R
    from saliency_audit.criteria.result import CriterionResult

    try:
        import saliency_audit.models.inplace as inplace
    except ImportError:  # the code before copies were built in place
        inplace = None
    parts = Parts()
    parts.time(maps_mod.MapStore, "raw", "map passes")
    for name in ("randomize_copy", "reinit_blocks", "restore_blocks"):  # the last two: in place, where they exist
        parts.time(rnd, name, "copies (deepcopy, re-init, restore)")
    if inplace is not None:
        parts.time(inplace.Scratch, "__init__", "copies (deepcopy, re-init, restore)")
    parts.time(wrapper, "model_fingerprint", "weight fingerprints")
    parts.time(maps_mod, "model_fingerprint", "weight fingerprints")
    parts.time(R, "similarities", "similarities (SSIM, Spearman, HOG)")
    parts.time(mprt, "emprt_summary", "EMPRT entropies")
    parts.time(R, "stage_row", "bootstraps")
    parts.time(CriterionResult, "settle_p_value", "bootstraps")
    parts.time(R, "with_thumbs", "thumbnails")
    return parts


def run_criterion(ckpt: Path, n: int, cache: str, design: str, parts: bool = False) -> dict:
    """Seconds (and parts) of the whole criterion; model loading and image rendering are outside the timing."""
    from saliency_audit import Audit

    audit = Audit(model=f"resnet18:{ckpt}", dataset="demo", methods=["grad"], config=_config(n, cache, design))
    audit.model("primary")
    audit.samples.first(n)
    timed = instrument() if parts else None
    try:
        t0 = time.perf_counter()
        result = audit.run("randomization", "grad")
        seconds = time.perf_counter() - t0
    finally:
        if timed:
            timed.undo()
    if result.verdict == "error":
        raise RuntimeError(result.explanation)
    out = {"seconds": seconds, "verdict": result.verdict, "value": result.value}
    if timed:
        split = {k: round(v, 3) for k, v in sorted(timed.seconds.items())}
        split["other"] = round(seconds - sum(timed.seconds.values()), 3)
        out["parts_s"] = split
        out["calls"] = dict(sorted(timed.calls.items()))
    return out


def copies_built(ckpt: Path, n: int, cache: str) -> dict:
    """A per_image run on a warm cache: its seconds and the copies it built (deep copies, or in place)."""
    import saliency_audit.models.randomize as rnd

    calls = {"n": 0}
    patched = [(rnd, "randomize_copy")]
    try:
        import saliency_audit.models.inplace as inplace

        patched.append((inplace.Scratch, "build"))
    except ImportError:
        pass
    originals = [(owner, name, getattr(owner, name)) for owner, name in patched]
    for owner, name, fn in originals:
        def counted(*a, _fn=fn, **k):
            calls["n"] += 1
            return _fn(*a, **k)

        setattr(owner, name, counted)
    try:
        run = run_criterion(ckpt, n, cache, "per_image")
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)
    return {"seconds": round(run["seconds"], 3), "copies_built": calls["n"]}


def run_plain_per_image(model, blocks, x, curve_images: int) -> float:
    """Seconds of the per_image design's model passes alone: the plain loop with every image its own cascade (its
    own seeds; blocks re-initialised cumulatively on one copy, restored for the next image), one image per pass
    (a plain pass runs one set of weights; bench_per_image_batching.py measures passes that mix them), each
    stage on the images the criterion uses (the two checked stages on all, the stages between on the first
    ``curve_images``), SSIM to the trained maps.  The floor of per_image's time under maps equal bit for bit to
    one-image passes."""
    import copy

    import torch
    from skimage.metrics import structural_similarity

    from bench_cascade import gradient_maps
    from saliency_audit.stats import stable_seed

    t0 = time.perf_counter()
    ref = gradient_maps(model, x)
    clone = copy.deepcopy(model)
    named = dict(clone.net.named_modules())
    for i in range(len(x)):
        clone.load_state_dict(model.state_dict())
        for k, block in enumerate(blocks, 1):
            torch.manual_seed(stable_seed(i, *block.modules))
            with torch.no_grad():
                for name in block.modules:
                    for sub in named[name].modules():
                        if hasattr(sub, "reset_parameters") and any(True for _ in sub.parameters(recurse=False)):
                            sub.reset_parameters()
            if k in (1, len(blocks)) or i < curve_images:
                m = gradient_maps(clone, x[i:i + 1])[0]
                structural_similarity(ref[i], m, data_range=1.0, win_size=7)
    return time.perf_counter() - t0


def measure(ckpt: Path, n: int, tmp: Path, threads: int, repeats: int, setup_data) -> dict:
    """Plain, plain per image, shared and per_image at ``threads`` torch threads, interleaved ``repeats`` times
    (a busy spell hits all alike): medians of wall and process CPU seconds, and each criterion's parts."""
    import torch

    torch.set_num_threads(threads)
    med = statistics.median
    model, blocks, x = setup_data
    curve = _config(n, "", "per_image").randomization.curve_images
    runs: dict[str, list] = {"plain": [], "plain_per_image": [], "shared": [], "per_image": []}

    def cpu_timed(fn) -> dict:
        c0 = time.process_time()
        out = fn()
        out = out if isinstance(out, dict) else {"seconds": out}
        out["cpu_s"] = time.process_time() - c0
        return out

    for r in range(repeats):
        runs["plain"].append(cpu_timed(lambda: run_plain(model, blocks, x)[0]))
        runs["plain_per_image"].append(cpu_timed(lambda: run_plain_per_image(model, blocks, x, curve)))
        for design in ("shared", "per_image"):
            cache = tempfile.mkdtemp(dir=tmp)
            runs[design].append(cpu_timed(lambda: run_criterion(ckpt, n, cache, design, parts=True)))
        print(f"{threads} thread(s), repeat {r + 1}: " + ", ".join(f"{k} {v[-1]['seconds']:.2f} s"
                                                                   for k, v in runs.items()), flush=True)

    def summary(rows: list[dict]) -> dict:
        out = {"seconds": round(med(r["seconds"] for r in rows), 3), "cpu_s": round(med(r["cpu_s"] for r in rows), 3),
               "all_s": [round(r["seconds"], 3) for r in rows]}
        if "parts_s" in rows[0]:
            out["parts_s"] = {k: round(med(r["parts_s"].get(k, 0.0) for r in rows), 3) for k in rows[0]["parts_s"]}
            out.update(calls=rows[0]["calls"], verdict=rows[0]["verdict"], value=rows[0]["value"])
        return out

    def ratio(a: str, b: str) -> dict:
        return {"wall": round(med(r["seconds"] for r in runs[a]) / med(r["seconds"] for r in runs[b]), 2),
                "wall_paired": round(med(p["seconds"] / q["seconds"] for p, q in zip(runs[a], runs[b])), 2),
                "cpu": round(med(r["cpu_s"] for r in runs[a]) / med(r["cpu_s"] for r in runs[b]), 2)}

    return {"threads": threads, **{k: summary(v) for k, v in runs.items()},
            "per_image_over_shared": ratio("per_image", "shared"), "shared_over_plain": ratio("shared", "plain"),
            "per_image_over_plain": ratio("per_image", "plain"),
            "plain_per_image_over_plain": ratio("plain_per_image", "plain"),
            "per_image_over_plain_per_image": ratio("per_image", "plain_per_image")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True, help="before | after (the code measured)")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--checkpoint", help="reuse (or train and keep) this resnet18 state dict")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "draw_design.json"))
    args = ap.parse_args()
    import torch

    import saliency_audit

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp_name:
        tmp = Path(tmp_name)
        ckpt = Path(args.checkpoint) if args.checkpoint else tmp / "resnet18.pt"
        training = checkpoint(ckpt, args.threads, args.train_images, args.epochs)
        model, blocks, x, _ = setup(ckpt, args.images)
        run_plain(model, blocks, x)  # warm-up (imports, first-call costs)
        cache = tempfile.mkdtemp(dir=tmp)
        run_criterion(ckpt, args.images, cache, "per_image")
        rounds = {"wall": measure(ckpt, args.images, tmp, args.threads, args.repeats, (model, blocks, x))}
        if args.threads > 1:
            rounds["work"] = measure(ckpt, args.images, tmp, 1, args.repeats, (model, blocks, x))
        warm = copies_built(ckpt, args.images, cache)

    row = {"code": str(Path(saliency_audit.__file__).parent), "images": args.images, "repeats": args.repeats,
           "training": training, "host": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                          "torch": torch.__version__},
           **rounds, "warm_per_image": warm}
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.is_file() else {}
    doc.setdefault("model", "torchvision resnet18, 2 classes, 112 px, trained briefly on generated demo images")
    doc.setdefault("method", "grad, fixed n, draws = 1")
    doc[args.label] = row
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(row, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
