import pytest
import torch

from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.errors import QkdError
from qkd_pl.students import QuantumStudent, count_parameters


def make(qubits=4, layers=2, n_classes=10, shape=(1, 28, 28)):
    cfg = StudentConfig(qubits=qubits, layers=layers)
    return QuantumStudent(cfg, resolve_backend("auto", qubits), shape, n_classes, torch.zeros(1), torch.ones(1))


def test_parameters_split_classical_and_quantum():
    counts = count_parameters(make())
    assert counts["quantum"] == 2 * 4 * 3  # StronglyEntanglingLayers: layers x qubits x 3
    assert counts["classical"] == (784 * 16 + 16) + (4 * 10 + 10)
    assert counts["total"] == counts["classical"] + counts["quantum"]


def test_forward_gives_class_logits_and_all_parameters_get_gradients():
    model = make(qubits=3, layers=1, n_classes=4, shape=(1, 8, 8))
    out = model(torch.rand(6, 1, 8, 8))
    assert out.shape == (6, 4)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_zero_layers_refused():
    with pytest.raises(QkdError, match="--layers"):
        make(layers=0)


@pytest.mark.parametrize("encoding", ["angle", "qubit"])
def test_rotation_encodings_get_batch_standardized_features_and_amplitude_does_not(encoding):
    cfg = StudentConfig(qubits=3, layers=1, encoding=encoding, ansatz="paper")
    model = QuantumStudent(cfg, resolve_backend("auto", 3), (1, 8, 8), 4, torch.zeros(1), torch.ones(1))
    with torch.no_grad():
        model.reduce.linear.weight.mul_(100.0)  # features far beyond tanh's range, as lr 1e-2 made them
    x = torch.rand(64, 1, 8, 8)
    f = model.prepare(model.reduce(model.standardize(x)))
    assert torch.allclose(f.mean(0), torch.zeros(3), atol=1e-5) and torch.allclose(f.std(0, unbiased=False),
                                                                                     torch.ones(3), atol=1e-3)
    model(x[:1]).sum().backward()  # a last batch of one image trains on the running statistics
    model.eval()
    assert model(x).shape == (64, 4)
    plain = QuantumStudent(StudentConfig(qubits=3, layers=1), resolve_backend("auto", 3), (1, 8, 8), 4,
                           torch.zeros(1), torch.ones(1))
    assert isinstance(plain.prepare, torch.nn.Identity)
