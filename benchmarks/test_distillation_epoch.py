"""One epoch of distillation on MNIST (48,000 training images, the default 4-qubit student on
auto's device, batch 256): the number a user waits for. Needs the MNIST files (CI has them)."""

import pytest
import torch

from conftest import require_dataset_files
from qkd_pl.config import DataConfig, DistillConfig, StudentConfig, TrainConfig
from qkd_pl.data import load_data
from qkd_pl.devices import resolve_backend
from qkd_pl.losses import objective_from_config
from qkd_pl.students import build_student
from qkd_pl.teachers import build_teacher
from qkd_pl.training import predict_logits
from qkd_pl.training.loop import Rows, fit


@pytest.mark.smoke
def test_distillation_epoch_on_mnist(benchmark, tmp_path):
    require_dataset_files("mnist")
    data = load_data(DataConfig(dataset="mnist"))
    torch.manual_seed(0)
    teacher = build_teacher("lenet5", data.image_shape, data.n_classes, data.mean, data.std).eval()
    teacher_logits = predict_logits(teacher, data.x_train)  # once, as train-student does
    cfg = StudentConfig()
    model = build_student(cfg, resolve_backend(cfg.device, cfg.qubits), data.image_shape, data.n_classes,
                          data.mean, data.std)
    train = TrainConfig(epochs=1, batch_size=256)
    objective = objective_from_config(DistillConfig(teacher="t"))  # the default objective, as train-student's
    rows = Rows(data.x_train, data.y_train, teacher_logits)

    def epoch():  # the loop alone: the Distiller computes the logits once before it, as timed above
        fit(model, rows, (data.x_val, data.y_val), train, lambda s, y, t, hard, soft: objective(s, t, y, hard, soft),
            tmp_path, {}, progress=False)

    benchmark.pedantic(epoch, rounds=1)
    if benchmark.stats:
        benchmark.extra_info["samples_per_s"] = len(data.y_train) / benchmark.stats.stats.median
