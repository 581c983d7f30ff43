"""qkd-pl: knowledge distillation from classical CNN teachers into quantum neural network students.

The package is laid out by stage of the pipeline: ``data`` (datasets, splits), ``reduction``
(images to 2^Q features), ``circuits`` (encodings and ansatzes as PennyLane QNodes),
``devices`` (which simulator or hardware runs them), ``teachers``, ``students``, ``losses``
(objectives), ``training`` (the one loop), ``distill`` (the Distiller: the run lifecycle around
the loop, for any student, teacher and data) and ``experiments`` (``single`` runs from a
configuration; ``sweeps``: grids, tuning, reports; ``paper``: the reproductions, the study, the
demo; ``tools``: drawings, benchmarks). ``config`` is the one schema of a run, ``validate`` its
one check, ``registry`` the components' registries, and ``cli`` the ``qkd`` command line.

Your own student, teacher and data::

    from qkd_pl import Distiller, KD, TrainConfig
    distiller = Distiller(teacher=my_cnn, loss=KD("hinton-classic", temperature=1.0, alpha=0.9),
                          train=TrainConfig(epochs=10, lr=1e-2))
    run = distiller.fit(my_student, train_set, val_set, run_dir="runs/mine")
    score = distiller.test(my_student, test_set)

qkd-pl's own students, from a configuration::

    from qkd_pl.config import DataConfig, RunConfig, StudentConfig
    from qkd_pl.experiments import train_student
    result = train_student(RunConfig("student", data=DataConfig("digits"), student=StudentConfig()), "runs")
"""

from typing import Any

__version__ = "0.2.0"  # CHANGELOG.md; an API change bumps the minor version

# name -> module: imported on first use, so that reading a configuration (the CLI's start, a
# grid file) does not import torch and PennyLane.
_PUBLIC = {
    "Distiller": "qkd_pl.distill", "FitJob": "qkd_pl.distill", "FitResult": "qkd_pl.distill",
    "fit_together": "qkd_pl.distill", "FrozenTeacher": "qkd_pl.distill",
    "KD": "qkd_pl.losses", "Objective": "qkd_pl.losses", "register_objective": "qkd_pl.losses",
    "TrainConfig": "qkd_pl.config", "QuantumLayer": "qkd_pl.circuits", "accelerate": "qkd_pl.circuits",
    "count_parameters": "qkd_pl.students",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'qkd_pl' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
