"""qkd.fused against default.qubit on circuits that differ in every way its plan cache could
confuse: each template option, the shapes of template parameters, which gates carry the batch,
and random circuits over every gate and template the fused path accepts, all run on ONE shared
device (one plan cache) so that a plan wrongly reused for another circuit shows up as a wrong
number. Outputs and gradients must agree to 1e-9 (both are float64 backprop); the same circuits on
a qkd.fused32 device (complex64) to a relative 1e-5."""

from __future__ import annotations

import random

import pennylane as qml
import pytest
import torch

from qkd_pl.devices.fused import FusedQubit
from tests_helpers_circuits import random_circuit

ATOL = 1e-9


@pytest.fixture(scope="module", params=[torch.complex128, torch.complex64], ids=["qkd.fused", "qkd.fused32"])
def shared(request):
    """One qkd.fused device for every circuit of this module (and one qkd.fused32)."""
    return FusedQubit(wires=4, c_dtype=request.param)


def agree(circuit, device, *args) -> None:
    """Outputs and gradients (in every floating argument) of ``circuit`` on ``device`` and default.qubit."""
    results = []
    for dev in (device, qml.device("default.qubit", wires=device.wires)):
        inputs = [a.detach().clone().requires_grad_(True) for a in args]
        out = qml.QNode(circuit, dev, interface="torch", diff_method="backprop")(*inputs)
        flat = torch.cat([torch.as_tensor(o).reshape(-1) for o in (out if isinstance(out, (tuple, list)) else [out])])
        weights = torch.linspace(0.5, 1.5, flat.numel(), dtype=flat.dtype)  # every output counts differently
        grads = (torch.autograd.grad((flat * weights).sum(), inputs, allow_unused=True) if flat.requires_grad
                 else [None] * len(inputs))  # a circuit none of whose gates reads the arguments
        results.append((flat.detach(), [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]))
    (a, ga), (b, gb) = results
    assert a.shape == b.shape, (a.shape, b.shape)
    single = getattr(device, "c_dtype", torch.complex128) == torch.complex64
    tol = {"rtol": 1e-5, "atol": 1e-5} if single else {"atol": ATOL}  # complex64: the relative 1e-5
    assert a.dtype == (torch.float32 if single else torch.float64)
    assert torch.allclose(a.double(), b, **tol), f"outputs differ by {(a - b).abs().max():.3g}"
    for x, y in zip(ga, gb):
        assert torch.allclose(x, y, **tol), f"gradients differ by {(x - y).abs().max():.3g}"


def t(*shape, seed=0):
    return torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 3 - 1.5


def z_all(n=4):
    return [qml.expval(qml.PauliZ(i)) for i in range(n)]


# ------------------------------------------------------------------ one option at a time, one device
@pytest.mark.parametrize("batched", [False, True])
def test_every_angle_embedding_rotation_on_one_device(shared, batched):
    x = t(5, 4) if batched else t(4)
    for rotation in ("X", "Y", "Z", "Y", "X"):  # back and forth: a reused plan would repeat the first answer
        def circuit(x, rotation=rotation):
            qml.Hadamard(0)
            qml.AngleEmbedding(x, wires=range(4), rotation=rotation)
            qml.CNOT([0, 1]), qml.CNOT([2, 3])
            qml.RX(0.3, wires=1)
            return z_all()

        agree(circuit, shared, x)
    assert shared.fallback_executions == 0


def test_strongly_entangling_ranges_and_imprimitive_on_one_device(shared):
    x, w = t(3, 4), t(2, 4, 3, seed=1)
    for ranges, imprimitive in [((1, 1), qml.CNOT), ((2, 1), qml.CNOT), ((3, 2), qml.CNOT), ((1, 1), qml.CZ),
                                ((2, 3), qml.CZ), ((1, 1), qml.CNOT)]:
        def circuit(x, w, ranges=ranges, imprimitive=imprimitive):
            qml.AngleEmbedding(x, wires=range(4))
            qml.StronglyEntanglingLayers(w, wires=range(4), ranges=ranges, imprimitive=imprimitive)
            return z_all()

        agree(circuit, shared, x, w)


def test_basic_entangler_rotation_on_one_device(shared):
    x, w = t(3, 4), t(2, 4, seed=2)
    for rotation in (qml.RX, qml.RY, qml.RZ, qml.RX):
        def circuit(x, w, rotation=rotation):
            qml.AngleEmbedding(x, wires=range(4), rotation="Y")
            qml.BasicEntanglerLayers(w, wires=range(4), rotation=rotation)
            return z_all()

        agree(circuit, shared, x, w)


def test_template_parameter_shapes_on_one_device(shared):
    """Same templates and wires, more layers or fewer features: the plan must follow the shapes."""
    def circuit(x, w):
        qml.AngleEmbedding(x, wires=range(4), rotation="X")
        qml.StronglyEntanglingLayers(w, wires=range(4))
        return z_all()

    for features, layers in [(4, 1), (4, 3), (2, 1), (3, 2), (4, 1)]:
        agree(circuit, shared, t(6, features), t(layers, 4, 3, seed=layers))


def test_which_gates_carry_the_batch_on_one_device(shared):
    def circuit(a, b):
        qml.RY(a, wires=0)
        qml.RX(b, wires=1)
        qml.CNOT([0, 1])
        return z_all(2)

    for a, b in [(t(5), t(())), (t(()), t(5)), (t(5), t(5)), (t(()), t(()))]:
        agree(circuit, shared, a, b)


def test_amplitude_embedding_padding_and_normalization_on_one_device(shared):
    for features, pad in [(16, 0.0), (10, 0.0), (10, 0.3), (7, 0.5)]:
        def circuit(x, pad=pad):
            qml.AmplitudeEmbedding(x, wires=range(4), normalize=True, pad_with=pad)
            qml.RY(0.4, wires=2)
            return [*z_all(), qml.probs(wires=[1, 3])]

        agree(circuit, shared, t(3, features).abs() + 0.1)


def test_measurements_on_one_device(shared):
    x = t(4, 4)
    for measure in (lambda: z_all(), lambda: [qml.expval(qml.PauliZ(0) @ qml.PauliZ(2))],
                    lambda: [qml.probs(wires=[2, 0])], lambda: [qml.probs(wires=[0, 2])], lambda: [qml.probs()],
                    lambda: [qml.expval(qml.PauliZ(3)), qml.probs(wires=1)]):
        def circuit(x, measure=measure):
            qml.AngleEmbedding(x, wires=range(4))
            qml.CNOT([0, 1]), qml.CNOT([1, 2]), qml.CNOT([2, 3])
            return measure()

        agree(circuit, shared, x)


def test_controlled_gates_with_other_control_values_and_widths_on_one_device(shared):
    x = t(3, 4)
    for wires, values in [([0, 1, 2], [1, 1]), ([0, 1, 2], [0, 1]), ([2, 1, 0], [0, 0]), ([0, 1, 2, 3], [1, 0, 1])]:
        def circuit(x, wires=wires, values=values):
            qml.AngleEmbedding(x, wires=range(4))
            qml.MultiControlledX(wires=wires, control_values=values)
            return z_all()

        agree(circuit, shared, x)


# ------------------------------------------------------------------ random circuits
@pytest.mark.parametrize("c_dtype", [torch.complex128, torch.complex64], ids=["qkd.fused", "qkd.fused32"])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_random_circuits_and_their_option_twins_on_one_shared_device(n, c_dtype):
    device = FusedQubit(wires=n, c_dtype=c_dtype)  # shared by all circuits of this width: one plan cache
    for i in range(12):
        for option_seed in (0, 1, 2):  # one structure, three draws of its options
            circuit, nx, nw = random_circuit(random.Random(1000 * n + i), random.Random(option_seed), n)
            w = t(nw, seed=100 + i)
            for batch in (None, 1, 4):  # the same circuit unbatched and batched
                x = t(nx, seed=i) if batch is None else t(batch, nx, seed=i)
                agree(circuit, device, x, w)
    assert device.fast_executions > 0
