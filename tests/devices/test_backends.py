import pytest

from qkd_pl.devices import AUTO_BACKPROP_MAX_QUBITS, resolve_backend
from qkd_pl.devices.ibm import TOKEN_ENV
from qkd_pl.errors import QkdError


def test_auto_prefers_fused_backprop_for_small_circuits():
    for q in (1, 4, AUTO_BACKPROP_MAX_QUBITS):
        b = resolve_backend("auto", q)
        assert (b.device, b.diff_method) == ("qkd.fused", "backprop")
        # the reason (written into every test_metrics.json) states the rule, not a measurement
        assert f"up to {AUTO_BACKPROP_MAX_QUBITS} qubits" in b.reason and "samples/s" not in b.reason


def test_auto_hands_large_circuits_to_lightning():
    b = resolve_backend("auto", AUTO_BACKPROP_MAX_QUBITS + 1)
    assert (b.device, b.diff_method) == ("lightning.qubit", "adjoint")


def test_explicit_exact_devices_and_refusals():
    assert resolve_backend("lightning.qubit", 4).diff_method == "adjoint"
    assert resolve_backend("qkd.fused", 4).diff_method == "backprop"
    with pytest.raises(QkdError, match="unknown --device 'qiskit.fake'"):
        resolve_backend("qiskit.fake", 4)
    with pytest.raises(QkdError, match="--shots"):
        resolve_backend("default.qubit", 4, shots=100)
    with pytest.raises(QkdError, match="--noise applies"):
        resolve_backend("default.qubit", 4, noise="fake_manila")


def test_shot_based_devices_evaluate_but_do_not_train():
    b = resolve_backend("qiskit.aer", 4, shots=500)
    assert (b.shots, b.trainable) == (500, False)
    assert resolve_backend("ibm:fake_manila", 4).shots == 1024
    with pytest.raises(QkdError, match="for evaluation"):
        resolve_backend("ibm:fake_manila", 4, training=True)


def test_fake_backend_names_and_sizes_are_checked():
    with pytest.raises(QkdError, match="unknown IBM fake backend 'fake_nowhere'"):
        resolve_backend("ibm:fake_nowhere", 4)
    with pytest.raises(QkdError, match="fake_manila has 5 qubits; the student needs 8"):
        resolve_backend("ibm:fake_manila", 8)
    with pytest.raises(QkdError, match="needs 8"):
        resolve_backend("qiskit.aer", 8, noise="fake_manila")


def test_real_hardware_without_credentials_names_both_ways(monkeypatch, tmp_path):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved account there
    with pytest.raises(QkdError) as err:
        resolve_backend("ibm:least_busy", 4)
    assert TOKEN_ENV in str(err.value) and "save_account" in str(err.value)


def test_per_circuit_and_mode_are_for_shot_based_devices():
    with pytest.raises(QkdError, match="--per-circuit applies to shot-based devices"):
        resolve_backend("qkd.fused", 2, per_circuit=True)
    with pytest.raises(QkdError, match="unknown --mode 'sometimes'"):
        resolve_backend("ibm:fake_manila", 2, mode="sometimes")
    b = resolve_backend("ibm:fake_manila", 2, per_circuit=True)
    assert b.per_circuit and b.remote and "per circuit" in b.describe()
    assert "one job per batch" in resolve_backend("qiskit.aer", 2).describe()
    assert not resolve_backend("noisy:fake_manila", 2).remote
    assert not b.paid and not resolve_backend("qiskit.aer", 2).paid
