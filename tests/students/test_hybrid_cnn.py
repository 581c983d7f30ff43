import pytest
import torch

from qkd_pl.config import DistillConfig, StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.errors import QkdError
from qkd_pl.losses import distillation_loss
from qkd_pl.students import build_student, count_parameters
from qkd_pl.students.hybrid_cnn import PROB_FLOOR, class_log_probs


def make(qubits=3, n_classes=6):
    cfg = StudentConfig(arch="hybrid-cnn", qubits=qubits)
    return build_student(cfg, resolve_backend("default.qubit", qubits), (1, 28, 28), n_classes,
                         torch.zeros(1), torch.ones(1))


def test_scores_are_log_probabilities_of_the_first_c_basis_states():
    model = make().eval()
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 6) and (out <= 1e-6).all() and (out.exp().sum(1) <= 1 + 6 * PROB_FLOOR + 1e-6).all()
    # The same probabilities straight from the circuit, for the angles the CNN produced.
    h = model.standardize(x)
    h = torch.relu(torch.max_pool2d(model.conv1(h), 2))
    h = torch.relu(torch.max_pool2d(model.dropout(model.conv2(h)), 2))
    angles = torch.pi * torch.tanh(model.fc2(torch.relu(model.fc1(h.flatten(1)))))
    p0 = (1 - torch.sin(angles.double())) / 2  # H then RY(theta): P(|0>) on each qubit
    state0 = p0.prod(1)  # basis state |000> is class 0
    assert torch.allclose(out[:, 0].double().exp() - PROB_FLOOR, state0, atol=1e-5)


def test_an_impossible_class_gives_a_bounded_gradient():
    """A label whose basis state has probability 0 must not send a 1/p spike into training
    (with log p clamped at 1e-12 it was 1e12, and v1 training collapsed)."""
    probs = torch.tensor([[1e-9, 0.5, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    logits = class_log_probs(probs, 6)
    assert torch.isfinite(logits).all() and logits.argmax(1).item() == 1
    loss, _ = distillation_loss(logits, torch.tensor([0]), torch.tensor([[5.0, 0, 0, 0, 0, 0]]),
                                DistillConfig(temperature=3.0, alpha=0.9))
    loss.backward()
    assert torch.isfinite(probs.grad).all() and probs.grad.abs().max() <= 10 / PROB_FLOOR


def test_like_the_notebooks_the_circuit_has_no_trainable_parameters():
    counts = count_parameters(make())
    assert counts["quantum"] == 0
    assert counts["classical"] == (10 * 25 + 10) + (20 * 10 * 25 + 20) + (320 * 50 + 50) + (50 * 3 + 3)


def test_gradients_reach_the_cnn_through_the_circuit():
    model = make()
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    assert model.conv1.weight.grad.abs().sum() > 0


def test_too_few_qubits_for_the_classes():
    with pytest.raises(QkdError, match="at least 3 --qubits"):
        make(qubits=2, n_classes=6)
