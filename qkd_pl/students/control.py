"""The classical control: the student with its circuit replaced by a classical layer of
exactly as many trainable parameters, so a comparison shows what the quantum layer adds.

The control sees the features the encoding would get, prepared the same way (amplitude:
divided by their norm; angle and qubit: pi * tanh), and returns one bounded output per qubit,
as <Z> would: tanh(W2 tanh(W1 x)) (for a probability readout, softmax(W2 tanh(W1 x))). To have exactly P parameters (P = the circuit's), the
hidden width h is the smallest with h * (inputs + qubits) >= P, and a fixed, seeded choice of
P of those weights is trainable; the others stay zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..circuits.encoding import ENCODINGS
from ..circuits.readout import READOUTS

SEED = 0


class ClassicalControl(nn.Module):
    def __init__(self, n_inputs: int, n_outputs: int, n_params: int, encoding: str, readout: str = "z"):
        super().__init__()
        self.n_inputs, self.n_outputs, self.encoding = n_inputs, n_outputs, encoding
        self.view = ENCODINGS[encoding].classical_view
        self.out = READOUTS[readout].classical
        self.hidden = max(1, math.ceil(n_params / (n_inputs + n_outputs)))
        total = self.hidden * (n_inputs + n_outputs)
        keep = torch.randperm(total, generator=torch.Generator().manual_seed(SEED))[:n_params].sort().values
        self.register_buffer("slots", keep)
        bound = 1 / math.sqrt(max(1, n_inputs))
        self.weights = nn.Parameter(torch.empty(n_params).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.view(x)
        full = torch.zeros(self.hidden * (self.n_inputs + self.n_outputs), dtype=x.dtype, device=x.device)
        full = full.index_put((self.slots,), self.weights.to(x.dtype))
        w1 = full[: self.hidden * self.n_inputs].view(self.hidden, self.n_inputs)
        w2 = full[self.hidden * self.n_inputs:].view(self.n_outputs, self.hidden)
        return self.out(torch.tanh(x @ w1.T) @ w2.T)


class WidthControl(nn.Module):
    """The width-matched control: one linear layer from the encoding's view of the features to
    the readout's outputs, in the readout's range; as wide as the circuit's output, not as small."""

    def __init__(self, n_inputs: int, n_outputs: int, encoding: str, readout: str = "z"):
        super().__init__()
        self.view = ENCODINGS[encoding].classical_view
        self.linear = nn.Linear(n_inputs, n_outputs)
        self.out = READOUTS[readout].classical

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.linear(self.view(x)))
