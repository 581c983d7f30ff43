"""Your own PennyLane circuit as a student, distilled from your own CNN, with a transfer set.

The student is a plain ``nn.Module`` holding a ``qml.qnn.TorchLayer`` (angle embedding +
StronglyEntanglingLayers on qkd.fused); the teacher is a small CNN of your own, trained first
by the same Distiller on labels alone; the data are ``TensorDataset``s. Part of the training
images are given without labels (a transfer set): the student learns them from the teacher only.

    python examples/own_qnode_student.py            # about a minute on a laptop core
"""

from __future__ import annotations

import pennylane as qml
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

from qkd_pl import KD, Distiller, TrainConfig


def digits_splits(labelled_per_class: int = 20, seed: int = 0) -> dict[str, TensorDataset]:
    """sklearn's 8x8 digits as [0, 1] images: a test part, a validation part, a few labelled
    training images per class, and the rest of the training part as unlabelled images."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    test, val, rest = order[:360], order[360:720], order[720:]
    labelled = torch.cat([rest[y[rest] == c][:labelled_per_class] for c in range(10)])
    unlabelled = rest[~torch.isin(rest, labelled)]
    return {"train": TensorDataset(x[labelled], y[labelled]), "val": TensorDataset(x[val], y[val]),
            "test": TensorDataset(x[test], y[test]), "all_train": TensorDataset(x[rest], y[rest]),
            "transfer": TensorDataset(x[unlabelled])}


class SmallCNN(nn.Module):
    """The teacher: any classical network."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class QNodeStudent(nn.Module):
    """Image -> 4 angles -> angle embedding + StronglyEntanglingLayers -> <Z> on each qubit -> logits."""

    def __init__(self, n_classes: int = 10, qubits: int = 4, layers: int = 2, device: str = "qkd.fused"):
        super().__init__()
        dev = qml.device(device, wires=qubits)

        @qml.qnode(dev, interface="torch")
        def circuit(inputs, weights):
            qml.AngleEmbedding(inputs, wires=range(qubits))
            qml.StronglyEntanglingLayers(weights, wires=range(qubits))
            return [qml.expval(qml.PauliZ(i)) for i in range(qubits)]

        self.reduce = nn.Linear(64, qubits)
        self.circuit = qml.qnn.TorchLayer(circuit, {"weights": (layers, qubits, 3)})
        self.head = nn.Linear(qubits, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = torch.pi * torch.tanh(self.reduce(x.flatten(1)))
        return self.head(self.circuit(angles))


def main(out: str = "runs/example-own-qnode", teacher_epochs: int = 15, student_epochs: int = 20,
         progress: bool = True) -> dict[str, float]:
    data = digits_splits()
    torch.manual_seed(0)
    teacher = SmallCNN()
    # The teacher is trained by the same loop, on labels alone (no teacher of its own).
    Distiller(train=TrainConfig(epochs=teacher_epochs, lr=3e-3), progress=progress).fit(
        teacher, data["all_train"], data["val"], f"{out}/teacher", overwrite=True)

    results = {}
    for name, distiller, transfer in [
            ("baseline", Distiller(train=TrainConfig(epochs=student_epochs, lr=2e-2), progress=progress), None),
            ("distilled", Distiller(teacher=teacher, loss=KD("hinton-classic", temperature=2.0, alpha=0.9),
                                    train=TrainConfig(epochs=student_epochs, lr=2e-2), progress=progress),
             data["transfer"])]:
        torch.manual_seed(1)  # the same initial student for both
        student = QNodeStudent()
        run = distiller.fit(student, data["train"], data["val"], f"{out}/{name}", transfer_set=transfer,
                            overwrite=True)
        score = distiller.test(student, data["test"])
        results[name] = score.accuracy
        print(f"{name:9s}  best epoch {run.best['epoch']:2d}  validation {run.best['val_accuracy']:.3f}  "
              f"test {score.accuracy:.3f}  parameters {run.parameters}")
    return results


if __name__ == "__main__":
    main()
