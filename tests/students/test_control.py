"""The classical control has exactly the circuit's parameter count and trains like a student."""

import itertools
import json
import math

import pytest
import torch
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.circuits import ANSATZES, ENCODINGS, ansatz_weight_shape
from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.errors import QkdError
from qkd_pl.students import build_student, count_parameters


@pytest.mark.parametrize("encoding,ansatz,qubits", list(itertools.product(ENCODINGS, ANSATZES, [2, 4])))
def test_the_control_replaces_the_circuit_parameter_for_parameter(encoding, ansatz, qubits):
    def build(control):
        cfg = StudentConfig(qubits=qubits, encoding=encoding, ansatz=ansatz, control=control)
        return build_student(cfg, resolve_backend("auto", qubits), (1, 8, 8), 5, torch.zeros(1), torch.ones(1))

    quantum, control = count_parameters(build(False)), count_parameters(build(True))
    circuit = math.prod(ansatz_weight_shape(ansatz, 2, qubits))
    assert quantum["quantum"] == circuit and control["quantum"] == 0 and control["control"] == circuit
    assert control["total"] == quantum["total"]
    model = build(True)
    out = model(torch.rand(4, 1, 8, 8))
    out.sum().backward()
    assert out.shape == (4, 5) and model.quantum.weights.grad.abs().sum() > 0


def test_trains_from_the_command_line_and_hybrid_cnn_is_refused(tmp_path):
    args = ["train-student", "--classes", "0-3", "--per-class", "20", "--epochs", "1", "--quiet", "--out", str(tmp_path)]
    r = CliRunner().invoke(cli, [*args, "--classical-control", "--name", "c"])
    assert r.exit_code == 0, r.output
    params = json.loads((tmp_path / "c" / "test_metrics.json").read_text())["parameters"]
    assert params["quantum"] == 0 and params["control"] == 24
    r = CliRunner().invoke(cli, [*args, "--classical-control", "--student", "hybrid-cnn", "--qubits", "2"])
    assert r.exit_code == 2 and "no trainable parameters" in r.stderr
    with pytest.raises(QkdError):
        build_student(StudentConfig(arch="hybrid-cnn", qubits=2, control=True), resolve_backend("auto", 2),
                      (1, 8, 8), 4, torch.zeros(1), torch.ones(1))


@pytest.mark.parametrize("readout", ["z", "zz", "probs"])
def test_controls_have_the_readouts_width_and_range(readout):
    from qkd_pl.circuits import READOUTS

    def build(**kw):
        cfg = StudentConfig(qubits=3, encoding="amplitude", readout=readout, **kw)
        return build_student(cfg, resolve_backend("default.qubit", 3), (1, 8, 8), 5, torch.zeros(1), torch.ones(1))

    width = READOUTS[readout].width(3)
    circuit = count_parameters(build())["quantum"]
    matched, wide = build(control=True), build(control=True, control_match="width")
    assert count_parameters(matched)["control"] == circuit
    assert count_parameters(wide)["control"] == 8 * width + width  # features -> readout, with a bias
    x = torch.rand(6, 1, 8, 8)
    for model in (matched, wide):
        assert model.head.in_features == width
        out = model.quantum(model.prepare(model.reduce(model.standardize(x))))
        assert out.shape == (6, width)
        if readout == "probs":
            assert torch.allclose(out.sum(1), torch.ones(6)) and (out >= 0).all()
        else:
            assert out.abs().max() <= 1
