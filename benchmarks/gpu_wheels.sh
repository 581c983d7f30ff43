#!/usr/bin/env bash
# Wheels for benchmarks/gpu_students.py on the project's GPU machine, which has torch, numpy, scipy,
# networkx, scikit-learn, click, tqdm and matplotlib but not PennyLane, and cannot fetch packages.
# Run here, in the repository root; the folder .whl travels with the device tool's `carry`:
#
#   bash benchmarks/gpu_wheels.sh
#   # device run, carry [".whl"]:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD QKD_CACHE_DIR=/tmp/qkd-cache \
#     && python3 benchmarks/gpu_students.py --out $OUT --reference docs/performance/gpu-students/this-cpu/gpu_students.json
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-path info/exclude)"  # a worktree's .git is a file
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl \
  pennylane==0.45.1 pennylane_lightning==0.45.0 scipy-openblas32==0.3.34.481.3 appdirs==1.4.4 autograd==1.8.0 \
  autoray==0.8.4 cachetools==8.0.2 diastatic-malt==2.15.3 gast==0.7.0 termcolor==3.3.0 rustworkx==0.18.1 \
  tomlkit==0.15.2 platformdirs==4.14.9
du -sh .whl
