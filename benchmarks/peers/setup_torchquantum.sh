#!/usr/bin/env bash
# Put TorchQuantum 0.1.8 in a venv of its own (it pins qiskit<1.0, which cannot share ours).
# Usage: bash benchmarks/peers/setup_torchquantum.sh [VENV]   (default: benchmarks/peers/.venv-torchquantum)
#
# torchquantum 0.1.8 declares tensorflow, pyscf and sphinx extensions it does not import
# for state-vector simulation, and does not declare several it does import (among them
# qiskit-aer<0.13 for the old qiskit.providers.aer path); so it is
# installed with --no-deps and its real import-time needs are listed here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-$here/.venv-torchquantum}
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q)
"${pip[@]}" --upgrade pip
# torch first and by exact version: on the project's machines these wheels lie on disk.
"${pip[@]}" "torch==2.14.1" "torchvision==0.29.1" || "${pip[@]}" torch torchvision
"${pip[@]}" "setuptools<70" "qiskit<1.0" "qiskit-ibm-runtime<0.21" "qiskit-aer<0.13" numpy scipy matplotlib tqdm pylatexenc \
    multimethod toml pathos torchpack torchdiffeq opt-einsum "dill==0.3.4"
"${pip[@]}" --no-deps "torchquantum==0.1.8"
"$venv/bin/python" -c "import torchquantum as tq; print('torchquantum', tq.__version__ if hasattr(tq, '__version__') else '0.1.8', 'ready in $venv')"
