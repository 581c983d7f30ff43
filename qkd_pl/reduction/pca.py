"""Projection onto the first n principal components of the training images.

Fitted with scikit-learn on the training part only (``fit`` is called by the experiment
before training, never with validation or test images). The mean and components become
buffers, so the projection is saved inside the model's checkpoint like any weight and needs
no pickled scikit-learn object to load.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import QkdError


class PCA(nn.Module):
    needs_fit = True

    def __init__(self, image_shape: tuple[int, int, int], n_features: int):
        super().__init__()
        d = math.prod(image_shape)
        if n_features > d:
            raise QkdError(f"--reducer pca cannot give {n_features} components from {d} pixels; use fewer --qubits")
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(n_features, d))
        self.register_buffer("fitted", torch.tensor(False))

    def fit(self, x_train: torch.Tensor) -> "PCA":
        from sklearn.decomposition import PCA as SkPCA

        flat = x_train.flatten(1).double().numpy()
        k = self.components.shape[0]
        if k > len(flat):
            raise QkdError(f"--reducer pca cannot fit {k} components to {len(flat)} training images; "
                           f"use fewer --qubits or more data")
        sk = SkPCA(n_components=k, svd_solver="full").fit(flat)
        self.mean.copy_(torch.as_tensor(sk.mean_))
        self.components.copy_(torch.as_tensor(sk.components_))
        self.fitted.fill_(True)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            raise RuntimeError("PCA reducer used before fit(); the experiment must fit it on the training split")
        return (x.flatten(1) - self.mean) @ self.components.T
