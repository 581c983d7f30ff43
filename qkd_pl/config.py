"""Plain dataclasses describing a run; the CLI, the experiment runner and checkpoints share them.

A run's identity is its config: it is written to ``config.json``, stored inside every
checkpoint, and compared field by field when a checkpoint is reused (resume, evaluate, a
teacher for a student), so a checkpoint from another configuration is refused with the
fields that differ rather than silently producing wrong numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import QkdError


@dataclass
class DataConfig:
    """Which images, which classes, and how the training split is carved into train/validation."""

    dataset: str = "digits"
    classes: list[int] | None = None  # None: every class of the dataset
    per_class: int | None = None  # cap on images per class, applied to train and test
    val_fraction: float = 0.2
    split_seed: int = 0  # fixed apart from --seed so teacher and students share one split


@dataclass
class StudentConfig:
    """The quantum student: reduction -> encoding -> ansatz -> measurement -> linear head.

    ``arch="hybrid-cnn"`` is the paper's v1 student instead (a small CNN -> angles -> H, RY
    -> basis-state probabilities as class scores); it uses ``qubits`` and ignores the
    reducer, encoding, ansatz and layers.
    """

    arch: str = "v2"
    qubits: int = 4
    layers: int = 2
    reducer: str = "fc"
    encoding: str = "amplitude"
    rotation: str = "Y"  # angle encoding's rotation axis
    ansatz: str = "strong"
    device: str = "auto"
    shots: int | None = None
    noise: str | None = None  # qiskit.aer only: an IBM fake backend whose noise model to apply
    control: bool = False  # the classical control: the circuit replaced by a classical layer of as many parameters


@dataclass
class TeacherConfig:
    arch: str = "lenet5"
    members: list[str] | None = None  # arch "ensemble": the trained teacher runs whose logits it averages


@dataclass
class DistillConfig:
    """The teacher term of the loss; ``teacher=None`` trains a baseline on labels alone."""

    teacher: str | None = None
    temperature: float = 3.0
    alpha: float = 0.9


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-2
    seed: int = 0


@dataclass
class RunConfig:
    """Everything that determines a run's numbers (paths to data and outputs excluded)."""

    kind: str  # "teacher" or "student"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher: TeacherConfig | None = None
    student: StudentConfig | None = None
    distill: DistillConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        parts = {"data": DataConfig, "train": TrainConfig, "teacher": TeacherConfig,
                 "student": StudentConfig, "distill": DistillConfig}
        try:
            kwargs = {k: (parts[k](**v) if k in parts and v is not None else v) for k, v in d.items()}
            return cls(**kwargs)
        except TypeError as exc:
            raise QkdError(f"the saved configuration is not one this version of qkd-pl reads ({exc})") from None


def config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """``["student.qubits: 8 (saved) vs 4 (now)", ...]`` for every leaf that differs."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {a!r} (saved) vs {b!r} (now)")
    return out
