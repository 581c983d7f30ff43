"""Every ``torch.load`` in the repository's Python files passes ``weights_only=True`` (README,
Reliability: "checkpoints are read with torch.load(..., weights_only=True) only"), and the GPU
phase of benchmarks/gpu_noisy_eval.py reads its exported circuit that way and gets the same circuit."""

import ast
import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["qkd_pl", "benchmarks", "tests", "cli.py"]
# A file here may call torch.load without weights_only=True, with the reason; none needs to now (a
# test of refusal goes through load_checkpoint, which passes it).
EXEMPT: dict[str, str] = {}


def python_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*.py"))
        files += [p for p in candidates
                  if not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(ROOT).parts)]
    return files


def unsafe_loads(source: str) -> tuple[list[str], int]:
    """The ``torch.load`` calls in ``source`` without ``weights_only=True`` (as ``line: text``) and
    how many calls there are in all; ``torch`` under any alias, ``torch.serialization.load``, and a
    ``load`` imported from either count."""
    tree = ast.parse(source)
    torch_names, serialization_names, load_names = {"torch"}, set(), set()
    bad, calls = [], 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch":
                    torch_names.add(alias.asname or "torch")
                elif alias.name == "torch.serialization" and alias.asname:
                    serialization_names.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            for alias in node.names:
                if alias.name == "serialization":
                    serialization_names.add(alias.asname or alias.name)
                elif alias.name == "load":
                    load_names.add(alias.asname or alias.name)

    def is_torch_load(func: ast.expr) -> bool:
        if isinstance(func, ast.Name):
            return func.id in load_names
        if not (isinstance(func, ast.Attribute) and func.attr == "load"):
            return False
        owner = func.value
        if isinstance(owner, ast.Name):
            return owner.id in torch_names | serialization_names
        return (isinstance(owner, ast.Attribute) and owner.attr == "serialization"
                and isinstance(owner.value, ast.Name) and owner.value.id in torch_names)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and is_torch_load(node.func):
            calls += 1
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if not safe:
                bad.append(f"{node.lineno}: {ast.get_source_segment(source, node)}")
    return bad, calls


def test_every_torch_load_passes_weights_only_true():
    found, calls = {}, 0
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        bad, n = unsafe_loads(path.read_text(encoding="utf-8"))
        calls += n
        if bad and rel not in EXEMPT:
            found[rel] = bad
    assert not found, f"torch.load without weights_only=True: {found}"
    assert calls >= 2  # the scan saw the loads it must see (qkd_pl/training/checkpoint.py, the benchmarks)


@pytest.mark.parametrize("source,unsafe", [
    ("import torch\ntorch.load(f, weights_only=True)", False),
    ("import torch\ntorch.load(f)", True),
    ("import torch\ntorch.load(f, weights_only=False)", True),
    ("import torch\ntorch.load(f, map_location='cpu',\n           weights_only=flag)", True),
    ("import torch as T\nT.load(f)", True),
    ("import torch\ntorch.serialization.load(f)", True),
    ("from torch import load as L\nL(f)", True),
    ("from torch.serialization import load\nload(f, weights_only=True)", False),
    ("import torch\ntorch.nn.Module().load_state_dict(s)", False),
])
def test_the_scan_sees_an_unsafe_load(source, unsafe):
    assert bool(unsafe_loads(source)[0]) is unsafe


def test_the_gpu_phase_reads_the_exported_circuit_as_weights_only(tmp_path):
    """benchmarks/gpu_noisy_eval.py: the exported circuit is a qkd-pl checkpoint of tensors and plain
    containers (weights_only=True reads it), and the circuit read back computes what it did."""
    import pennylane as qml

    from qkd_pl.circuits import ansatz_weight_shape, n_features, v2_circuit
    from qkd_pl.config import StudentConfig
    from qkd_pl.devices import ibm
    from qkd_pl.devices.noisy_dm import NoisyCircuit
    from qkd_pl.devices.parametric import to_parametric, transpile

    spec = importlib.util.spec_from_file_location("gpu_noisy_eval", ROOT / "benchmarks" / "gpu_noisy_eval.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cfg = StudentConfig(qubits=3, layers=1, encoding="amplitude", readout="probs")  # as tests/devices/test_noisy_dm.py
    qnode = qml.QNode(v2_circuit(cfg), qml.device("default.qubit", wires=3), interface="torch")
    torch.manual_seed(0)
    x = torch.randn(4, n_features("amplitude", 3), dtype=torch.float64)
    w = torch.randn(ansatz_weight_shape("strong", 1, 3), dtype=torch.float64)
    par = to_parametric(qml.workflow.construct_tape(qnode)(x, w), [0, 1, 2])
    fake = ibm.fake_backend("fake_manila")
    isa, columns = transpile(par.structure, fake, 1)
    circuit = NoisyCircuit(isa, ibm.noise_model(fake), {p: i for i, p in enumerate(isa.parameters)})
    values = par.values[:, columns].detach()

    script._save_circuit(circuit, tmp_path / "circuit.pt")
    torch.load(tmp_path / "circuit.pt", weights_only=True)  # raises on any pickled object
    back = script._load_circuit(tmp_path / "circuit.pt")
    assert isinstance(back, NoisyCircuit) and back.n == circuit.n and back.measured == circuit.measured
    assert any(step.before for step in back.steps)  # fused steps, with their nested runs, came back
    assert torch.equal(back.probabilities(values), circuit.probabilities(values))
    single = script._load_circuit(tmp_path / "circuit.pt").to(dtype=torch.complex64)
    torch.testing.assert_close(single.probabilities(values).double(), circuit.probabilities(values), atol=1e-5, rtol=0)
