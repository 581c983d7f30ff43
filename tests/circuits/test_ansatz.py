"""The hardware ansatz: every weight reaches the readout (a weight that cannot move an output is a
parameter the optimizer can never train). ``ring`` and ``strong`` end each layer with an RZ before
their CNOTs, so their last layer's RZ angles never reach a Z readout: kept as they are, since
studies and the peers' benchmark were run with them."""

import pytest
import torch

from qkd_pl.circuits import QuantumLayer
from qkd_pl.circuits.ansatz import ANSATZES
from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend


@pytest.mark.parametrize("ansatz", ["line", "basic"])
@pytest.mark.parametrize("readout", ["z", "probs"])
def test_every_weight_of_the_line_ansatz_moves_the_outputs(ansatz, readout):
    assert ansatz in ANSATZES
    torch.manual_seed(0)
    cfg = StudentConfig(qubits=4, layers=1, encoding="angle", ansatz=ansatz, readout=readout)
    layer = QuantumLayer.v2(cfg, resolve_backend("qkd.fused", 4))
    out = layer(torch.randn(16, 4, dtype=torch.float64))
    grad, = torch.autograd.grad((out * torch.randn_like(out)).sum(), layer.layer.weights)
    assert (grad.abs() > 1e-9).all(), grad  # the line ansatz once ended each layer with an RZ no readout saw
