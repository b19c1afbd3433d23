"""Memory of reading a DICOM dataset lazily: peak memory against dataset size.

    python benchmarks/bench_dataset_memory.py [--size 1024] [--n 2000]
    # writes benchmarks/results/dataset_memory.json

Generates one SIIM-layout dataset of ``--n`` DICOM files (the demo world's
images upscaled to ``--size`` pixels, every fifth stored MONOCHROME1, one RLE
row per lesion), then, for dataset sizes 250, 500, 1,000 and 2,000 (a split
file selects the first N ids), runs a fresh process that builds the index,
selects the localisation set, and iterates over *every* sample resizing it to
224 px as the audit does.  It reports that process's peak resident memory and
the peak of Python/numpy allocations (tracemalloc) while iterating.  Flat
means the numbers do not grow with N: nothing is held per image except its
index entry (ids, paths, RLE strings).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (250, 500, 1000, 2000)

CHILD = r"""
import json, sys, time, tracemalloc
from saliency_audit.data import load_dataset
from saliency_audit.data.resize import resize_sample
def hwm_mb():  # this process's peak RSS (VmHWM resets at exec; ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
root, split_file = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
ds = load_dataset("siim", root, split="bench", split_file=split_file)
index_s = time.perf_counter() - t0
rss_index = hwm_mb()
ds.localisation_indices(48)
tracemalloc.start()
t0 = time.perf_counter()
pixels = 0
for s in ds:
    pixels += resize_sample(s, (224, 224)).image.numel()
iterate_s = time.perf_counter() - t0
_, traced_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({"n": len(ds), "index_seconds": index_s, "iterate_seconds": iterate_s,
                  "seconds_per_image": iterate_s / len(ds), "peak_rss_after_index_mb": rss_index,
                  "peak_rss_mb": hwm_mb(),
                  "traced_peak_mb": traced_peak / 2**20}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (SIIM: 1024)")
    ap.add_argument("--n", type=int, default=max(SIZES))
    args = ap.parse_args()
    from saliency_audit.demo.export import export_demo

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "siim"
        t0 = time.perf_counter()
        export_demo("siim", root, n=args.n, scale=args.size // 128, monochrome1_every=5)
        generate_s = time.perf_counter() - t0
        ids = sorted(p.stem for p in (root / "dicom-images-train").rglob("*.dcm"))
        disk = sum(p.stat().st_size for p in root.rglob("*.dcm"))
        rows = []
        for n in [s for s in SIZES if s <= args.n]:
            split = Path(tmp) / f"split{n}.csv"
            split.write_text(",Image_ID,Split\n" + "".join(f"{k},{i},{'bench' if k < n else 'rest'}\n"
                                                          for k, i in enumerate(ids)))
            out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(split)], check=True,
                                 capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    result = {"image_size": args.size, "dataset_files": args.n, "dicom_bytes": disk, "generate_seconds": generate_s,
              "one_image_float32_mb": args.size * args.size * 4 / 2**20, "runs": rows}
    out = ROOT / "benchmarks" / "results" / "dataset_memory.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
