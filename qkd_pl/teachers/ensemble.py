"""An ensemble teacher: the average of the logits of several trained teachers.

Assembled, not trained: its members are trained (and selected on validation) on their own,
then frozen. The checkpoint holds every member's configuration and weights, so it is as
self-contained as any other, and all members must have been trained on the same data.
"""

from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)
