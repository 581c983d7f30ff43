#!/usr/bin/env bash
# The JAX peers in venvs of their own (JAX is not a qkd-pl dependency):
#   .venv-jax   PennyLane 0.45.1 (default.qubit) + JAX (CPU) + optax
#   .venv-tcng  TensorCircuit-NG + JAX (CPU) + optax
# Usage: bash benchmarks/peers/setup_jax.sh [DIR]   (default: benchmarks/peers)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here}
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
for name in jax tcng; do
    [ -x "$dir/.venv-$name/bin/python" ] || "$python" -m venv "$dir/.venv-$name"
    "$dir/.venv-$name/bin/python" -m pip install -q --upgrade pip
done
"$dir/.venv-jax/bin/python" -m pip install -q "pennylane==0.45.1" "jax[cpu]" optax
"$dir/.venv-tcng/bin/python" -m pip install -q tensorcircuit-ng "jax[cpu]" optax
"$dir/.venv-jax/bin/python" -c "import jax, pennylane; print('PennyLane', pennylane.__version__, '+ JAX', jax.__version__)"
"$dir/.venv-tcng/bin/python" -c "import jax, tensorcircuit as tc; print('TensorCircuit-NG', tc.__version__, '+ JAX', jax.__version__)"
