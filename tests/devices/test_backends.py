import pytest

from qkd_pl.devices import AUTO_BACKPROP_MAX_QUBITS, resolve_backend
from qkd_pl.errors import QkdError


def test_auto_prefers_broadcast_backprop_for_small_circuits():
    b = resolve_backend("auto", 4)
    assert (b.device, b.diff_method) == ("default.qubit", "backprop") and "samples/s" in b.reason


def test_auto_hands_large_circuits_to_lightning():
    b = resolve_backend("auto", AUTO_BACKPROP_MAX_QUBITS + 1)
    assert (b.device, b.diff_method) == ("lightning.qubit", "adjoint")


def test_explicit_devices_and_refusals():
    assert resolve_backend("lightning.qubit", 4).diff_method == "adjoint"
    with pytest.raises(QkdError, match="unknown --device 'qiskit.fake'"):
        resolve_backend("qiskit.fake", 4)
    with pytest.raises(QkdError, match="--shots"):
        resolve_backend("default.qubit", 4, shots=100)
