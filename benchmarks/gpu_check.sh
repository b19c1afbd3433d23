#!/usr/bin/env bash
# The CUDA checks in one short script, for a session that is lent a GPU (issue 15, part 4).  Run from the
# repository root on the GPU machine; copies what it measured to $OUT (or benchmarks/results/ without it).
#
#   bash benchmarks/gpu_check.sh            # about 5-8 minutes on one GPU
#
# 1. tests/test_cuda.py: maps on CUDA equal the CPU maps within the stated tolerances, and verdicts match;
#    tests/test_perturbation.py's CUDA test (ROAD's imputation on the GPU); the GPU worker tests.
# 2. benchmarks/bench_densenet.py --device cuda: seconds per image of every method on densenet121 at 224 px,
#    pass sizes chosen from free GPU memory -> results/densenet121-cuda.json.
# 3. the full demo audit on CUDA, cold (its own map cache), timed; its evidence -> results/demo_audit_cuda/.
# 4. sequential vs fixed-n actually run on densenet121 on CUDA -> results/sequential.json (densenet121_run_cuda).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv && .venv/bin/pip install -q -e '.[test]'; fi
. .venv/bin/activate
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST/demo_audit_cuda"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$DEST/gpu.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" >> "$DEST/gpu.txt"
python -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_perturbation.py tests/test_gpus.py -k "cuda or gpus" \
  2>&1 | tee "$DEST/cuda_tests.txt" | tail -3
python benchmarks/bench_densenet.py --device cuda 2>&1 | tail -3
cp benchmarks/results/densenet121-cuda.json "$DEST/" 2>/dev/null
start=$(date +%s)
SALIENCY_AUDIT_CACHE="$(mktemp -d)" SALIENCY_AUDIT_PROGRESS=0 python -m pytest audits/ -q -p no:cacheprovider \
  --device cuda --audit-report="$DEST/demo_audit_cuda" 2>&1 | tail -2
echo "demo audit on cuda, cold: $(( $(date +%s) - start )) s" | tee -a "$DEST/gpu.txt"
python benchmarks/bench_sequential.py --only-densenet-run --densenet-run 16 --device cuda 2>&1 | tail -2
cp benchmarks/results/sequential.json "$DEST/" 2>/dev/null
exit 0
