"""``qkd reproduce noise``: trained students on IBM fake backends of three processor generations.

Each student (MNIST, FashionMNIST, CIFAR-10; 4 and 8 qubits; labels only and distilled from
LeNet5 at the study's setting, all the training data: the regime of the best students in
docs/kd-study) is evaluated exactly and then on fake backends of a Falcon (fake_kolkata, 27
qubits), an Eagle (fake_brisbane, 127) and a Heron (fake_torino, 133), at 1,024 shots each,
on the batched device (one job per 1,000 test images). The report gives the accuracy drop with
paired bootstrap intervals over test images, the transpiled depth and two-qubit gate count per
backend, and whether the distilled student's drop differs from the baseline's.
"""

from __future__ import annotations

from ...config import DataConfig, StudentConfig, TrainConfig
from .grid import BASELINE, GridSpec, validate

BACKENDS = {"fake_kolkata": "Falcon r5.11 (27 qubits)", "fake_brisbane": "Eagle r3 (127 qubits)",
            "fake_torino": "Heron r1 (133 qubits)"}
SHOTS = 1024


def noise_study_spec(quick: bool = False, datasets: list[str] | None = None) -> GridSpec:
    """The students of the study: one seed, all the training data, the kd study's all-data training
    (Adam 1e-2, batch 256, 10 epochs), FC + amplitude + StronglyEntanglingLayers (2 layers) + <Z>.
    ``quick``: digits, 2 qubits, 2 epochs (the CI run)."""
    if quick:
        return validate(GridSpec(
            name="noise-study-quick", datasets=datasets or ["digits"], classes=["0-3"], seeds=[0],
            student=StudentConfig(qubits=2, reducer="fc", encoding="amplitude", ansatz="strong", layers=1),
            student_train=TrainConfig(epochs=2, batch_size=32, lr=1e-2), teachers=[BASELINE, "lenet5"],
            teacher_data="all", teacher_train=TrainConfig(epochs=2, batch_size=64, lr=1e-3),
            axes={"student.qubits": [2]}))
    return validate(GridSpec(
        name="noise-study", datasets=datasets or ["mnist", "fashion-mnist", "cifar10"], seeds=[0],
        student=StudentConfig(qubits=4, reducer="fc", encoding="amplitude", ansatz="strong", layers=2),
        student_train=TrainConfig(epochs=10, batch_size=256, lr=1e-2), teachers=[BASELINE, "lenet5"],
        teacher_data="all", teacher_train=TrainConfig(epochs=10, batch_size=128, lr=1e-3),
        axes={"student.qubits": [4, 8]}, data=DataConfig()))
