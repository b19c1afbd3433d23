#!/usr/bin/env bash
# The peer environment of the ROAD benchmark: pytorch-grad-cam (pip package
# grad-cam) and Quantus beside saliency-audit.  They are not dependencies of
# saliency-audit; they live only in this virtual environment.
#
#     bash benchmarks/setup_peers.sh              # creates benchmarks/.venv-peers
#     benchmarks/.venv-peers/bin/python benchmarks/peers_road.py
#
# Python 3.11.  torch/torchvision are pinned to the releases on this machine's
# local wheel index (the CUDA build; it runs on CPU here).  Everything else is
# pinned to the versions that resolved when this was written, so a
# rerun gives the same environment.  Rerunning on an existing venv is a no-op
# apart from pip's checks.  VENV=/other/path overrides the location.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/benchmarks/.venv-peers}"
PYTHON="${PYTHON:-python3.11}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet)

# 1. torch first, alone, so nothing else can pull another torch.
"${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1"

# 2. the peers (and their own dependencies, pinned).
"${PIP[@]}" \
    "grad-cam==1.5.7" "ttach==0.0.3" "opencv-python==5.0.0.93" "opencv-python-headless==5.0.0.93" \
    "quantus==0.6.0" "pandas==3.1.1" "cachetools==8.0.2" "tqdm==4.70.1" \
    "torch==2.14.1" "torchvision==0.29.1"

# 3. saliency-audit itself, without letting pip resolve its deps, then those
#    of its deps the benchmark needs (pinned; within pyproject's ranges).
"${PIP[@]}" --no-deps -e "$ROOT"
"${PIP[@]}" \
    "numpy==2.4.6" "scipy==1.17.1" "scikit-image==0.26.0" "scikit-learn==1.9.1" \
    "pillow==13.0.0" "matplotlib==3.11.2" "captum==0.9.0" "saliency==0.2.1" \
    "pydicom==3.0.2" "pytest==9.2.0" \
    "torch==2.14.1" "torchvision==0.29.1"

"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
import pytorch_grad_cam.metrics.road  # noqa: F401
import quantus  # noqa: F401
import saliency_audit  # noqa: F401
import torch
assert torch.__version__.split("+")[0] == "2.14.1", torch.__version__
print("peer venv ok:", ", ".join(f"{p} {version(p)}" for p in
      ("torch", "torchvision", "grad-cam", "quantus", "numpy", "scipy", "captum", "saliency-audit")))
EOF
