"""Plain dataclasses describing a run; the CLI, the experiment runner and checkpoints share them.

A run's identity is its config: it is written to ``config.json``, stored inside every
checkpoint, and compared field by field when a checkpoint is reused (resume, evaluate, a
teacher for a student), so a checkpoint from another configuration is refused with the
fields that differ rather than silently producing wrong numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import QkdError
from .parsing import parse_classes as _parse_classes


# Images per evaluation batch (validation, test, teacher logits): the memory estimate counts it too.
EVAL_BATCH = 256


def option(default: Any = None, help: str = "", *, registry: str | None = None, choices: tuple | None = None,
           min: float | None = None, max: float | None = None, min_open: bool = False, max_open: bool = False,
           flag: str | None = None,
           metavar: str | None = None, parse: Callable[[str], Any] | None = None, cli: bool = True) -> Any:
    """A configuration field with everything the command line and ``validate`` need to know.

    Args:
        default: the default value (the one place it is written).
        help: the ``--help`` text.
        registry: the kind of component the value names (``qkd_pl.registry.REGISTRIES``); its
            names are the choices and its records' help is appended to ``help``.
        choices: fixed choices, for values that are not components.
        min, max: the range of a number (``min_open``, ``max_open``: that bound itself is excluded).
        flag: the option's name when not ``--field-name``.
        metavar, parse: for fields given as text on the command line (``--classes 0-7``).
        cli: False for fields no command sets directly (they have their own commands).
    """
    return field(default=default, metadata={
        "help": help, "registry": registry, "choices": choices, "min": min, "max": max, "min_open": min_open,
        "max_open": max_open, "flag": flag, "metavar": metavar, "parse": parse, "cli": cli})


def field_kind(f: dataclasses.Field) -> str:
    """A field's type without its ``| None``: "int", "float", "str", "bool", "list[int]"..."""
    return str(f.type).split("|")[0].strip()


def _parse_names(text: str) -> list[str] | None:
    names = [t.strip() for t in text.split(",") if t.strip()]
    return names or None


def parse_transfer(text: str) -> str:
    """``none``, ``unlabeled`` or a positive count, as the canonical text a config stores."""
    key = str(text).strip().lower()
    if key in ("none", "unlabeled"):
        return key
    if key.isdigit() and int(key) > 0:
        return str(int(key))
    raise QkdError(f"--transfer {text!r}: write none, unlabeled, or a number of images per class")


def parse_pool(text: str | None) -> str | None:
    """``"150:500"`` (a student's --per-class and --transfer) as the canonical text a config stores;
    ``""``/``"none"`` -> None."""
    if text is None or str(text).strip().lower() in ("", "none"):
        return None
    per_class, colon, transfer = (p.strip() for p in str(text).partition(":"))
    if not colon or not per_class.isdigit() or int(per_class) < 1:
        raise QkdError(f"--without-pool {text!r}: write PER_CLASS:N, the --per-class and --transfer of the students "
                       f"whose pool the teacher must not see (150:500)")
    return f"{int(per_class)}:{parse_transfer(transfer)}"


@dataclass
class DataConfig:
    """Which images, which classes, and how the training split is carved into train/validation."""

    dataset: str = option("digits", "Dataset.", registry="dataset")
    classes: list[int] | None = option(None, "Class subset: a range like 0-7 or a list like 0,3,5. Default: all "
                                             "classes.", metavar="SPEC", parse=_parse_classes)
    per_class: int | None = option(None, "Keep N images of each class of the training split (train and validation "
                                         "parts together; the paper's notebooks used 150) and the first N of each "
                                         "class of the test split. Default: all.", min=1, metavar="N")
    val_fraction: float = option(0.2, "Fraction of the training split held out (stratified) for model selection; "
                                      "the test split is only used once, at the end.", min=0, max=1, min_open=True,
                                max_open=True)
    split_seed: int = option(0, "Seed of the validation split; kept apart from --seed so a teacher and its "
                                "students see the same split.")
    split: str = option("nested", "How --per-class and the validation split combine. nested: the class subset is "
                                  "split into train and validation parts once, then each part keeps its first images "
                                  "of each class, so a capped student's images lie inside an uncapped teacher's "
                                  "parts. capped: the first N of each class, then the split (qkd-pl before nested "
                                  "splits, and the v1/v2 reproductions).", choices=("nested", "capped"))
    full_test: bool = option(False, "Test on every test image of the classes, whatever --per-class (--per-class then "
                                    "caps the training split only): a tighter estimate of a small difference.")
    # The protocol of a user whose unlabelled pool is truly unlabelled: without it, a teacher trained
    # on the whole train part has seen the labels of the very images it labels for the student.
    without_pool: str | None = option(None, "Teachers: leave out of the training images the transfer pool of the "
                                            "students with --per-class P --transfer N (give P:N), so the teacher "
                                            "never sees those images or their labels. Needs --split nested.",
                                      metavar="P:N", parse=parse_pool)


@dataclass
class StudentConfig:
    """The quantum student: reduction -> encoding -> ansatz -> readout -> linear head.

    ``arch="hybrid-cnn"`` is the paper's v1 student instead (a small CNN -> angles -> H, RY
    -> basis-state probabilities as class scores); it uses ``qubits`` and ignores the
    reducer, encoding, ansatz, layers and readout.
    """

    arch: str = option("v2", "Student architecture.", registry="student", flag="--student")
    qubits: int = option(4, "Qubits Q (paper: 4 and 8). Amplitude encoding takes 2^Q features, angle and qubit Q.",
                         min=1, max=24)
    layers: int = option(2, "Layers L of the variational circuit.", min=1)
    reducer: str = option("fc", "Image -> features.", registry="reducer")
    encoding: str = option("amplitude", "Features -> qubits.", registry="encoding")
    rotation: str = option("Y", "Rotation axis of the angle encoding.", choices=("X", "Y", "Z"))
    ansatz: str = option("strong", "The trainable circuit.", registry="ansatz")
    readout: str = option("z", "What the circuit measures, mapped to class logits by a linear head.",
                          registry="readout")
    device: str = option("auto", "Where the circuit runs: auto (qkd.fused up to 16 qubits, lightning.qubit above; "
                                 "the run prints which and why), qkd.fused, qkd.fused32 (complex64, float32 "
                                 "results; a step 1.05-1.10x in the docs' Performance page), default.qubit, lightning.qubit, "
                                 "lightning.kokkos / lightning.gpu when installed, noisy:<fake backend> such as "
                                 "noisy:fake_brisbane (that device's transpiled circuit and noise as exact density "
                                 "matrices: trains), qiskit.aer (shots), "
                                 "ibm:<fake backend> such as ibm:fake_manila (local, with the device's noise), "
                                 "ibm:<backend> or ibm:least_busy (IBM Quantum; token from QISKIT_IBM_TOKEN / "
                                 "QISKIT_IBM_INSTANCE or a saved account). Shot-based devices evaluate only; "
                                 "`qkd backends` lists them.")
    shots: int | None = option(None, "Shots of a shot-based device.", min=1, cli=False)
    noise: str | None = option(None, "qiskit.aer only: an IBM fake backend whose noise model to apply.", cli=False)
    control: bool = option(False, "The classical control: replace the circuit by a classical layer (same features "
                                  "in, as many outputs as the readout, in its range), to see what the quantum layer "
                                  "adds.", flag="--classical-control")
    control_match: str = option("parameters", "What the classical control matches: parameters (exactly as many "
                                              "trainable parameters as the circuit) or width (one linear layer from "
                                              "the features to the readout's outputs, whatever that costs).",
                                choices=("parameters", "width"))


@dataclass
class TeacherConfig:
    arch: str = option("lenet5", "Teacher network.", registry="teacher")
    members: list[str] | None = option(None, "With --arch ensemble: the trained teacher runs to average (their "
                                             "data options are used).", metavar="RUN,RUN,...", parse=_parse_names)


def parse_params(text: str) -> dict[str, float] | None:
    """``"beta=2,gamma=0.5"`` -> ``{"beta": 2.0, "gamma": 0.5}``; ``""``/``"none"`` -> None."""
    if text is None or text.strip().lower() in ("", "none"):
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, eq, value = (p.strip() for p in part.partition("="))
        try:
            number = float(value)
        except ValueError:
            number = None
        if not eq or not name.isidentifier() or number is None or name in out:
            raise QkdError(f"--kd-params {text!r}: write NAME=VALUE,... with each name once and numbers as values "
                           f"(beta=2,gamma=0.5)")
        out[name] = number
    return out


@dataclass
class DistillConfig:
    """The teacher term of the loss; ``teacher=None`` trains a baseline on labels alone."""

    teacher: str | None = option(None, "Teacher run folder (or its best.pt) to distil from. Without it: a baseline "
                                       "student.", metavar="RUN")
    # The defaults are the setting the distillation study chose on validation; on test it beat
    # the paper's in 15 of its 16 regimes, by up to 13 points, and lost 0.24 in one (all of
    # FashionMNIST's labels, docs/kd-study). The paper's is --paper-kd.
    temperature: float = option(1.041, "Softmax temperature T of the distillation term (the paper: 3).", min=0,
                                min_open=True)
    alpha: float = option(0.862, "Weight of the teacher term of every objective (hinton: loss = CE + alpha * T^2 * "
                                 "KL; hinton-classic: (1 - alpha) CE + alpha T^2 KL; the paper: hinton, 0.9).",
                          min=0)
    kd_loss: str = option("hinton-classic", "Distillation objective (the paper: hinton).", registry="objective")
    dist_beta: float = option(1.0, "dist: weight of the inter-class (per image) correlation loss.", min=0)
    dist_gamma: float = option(1.0, "dist: weight of the intra-class (per class, across the batch) correlation "
                                    "loss.", min=0)
    dkd_beta: float = option(8.0, "dkd: weight of the non-target-class KL against the target/non-target one.",
                             min=0)
    # A user objective's own hyperparameters (--kd-loss module.path:Class): they have no field
    # here, so a new objective needs no edit of this class. The built-ins keep the flat fields
    # above, which saved runs, grids and tuning searches name.
    kd_params: dict[str, float] | None = option(None, "Hyperparameters of your own objective (--kd-loss "
                                                      "module.path:Class): NAME=VALUE,... such as beta=2,gamma=0.5. "
                                                      "T, alpha and the built-ins' weights are their own options.",
                                                metavar="NAME=VALUE,...", parse=parse_params)
    transfer: str = option("none", "A transfer set: images of the training part the student has no labels for, "
                                   "seen only through the teacher (never by a baseline): none, unlabeled (all of "
                                   "them), or N (the first N of each class). Needs --per-class and --split nested.",
                           metavar="none|unlabeled|N", parse=parse_transfer)
    transfer_labels: str = option("soft", "How the student learns from the transfer set: soft (the teacher term of "
                                          "--kd-loss), hard (the teacher's top class as its label: pseudo-labels), "
                                          "or true (the ceiling control: the pool's own labels, no teacher).",
                                  choices=("soft", "hard", "true"))
    # Function matching (Beyer et al. 2022): the teacher sees the student's augmented view of every
    # batch, so its outputs cannot be cached; "cached" computes them once on the images as they are.
    teacher_outputs: str = option("cached", "cached: the teacher's logits computed once per image (fast; the student "
                                            "is trained on the images as they are, or augmented with the teacher "
                                            "still seeing them as they are). on-the-fly: the teacher is called on "
                                            "every batch, on the same augmented view as the student (function "
                                            "matching; pair it with --augment).", choices=("cached", "on-the-fly"))


# The paper's distillation (CE + 0.9 * 9 * KL at T = 3): qkd-pl's defaults until the distillation
# study, one flag (--paper-kd) or three fields away.
PAPER_DISTILL = {"kd_loss": "hinton", "temperature": 3.0, "alpha": 0.9}


@dataclass
class TrainConfig:
    """How a network is trained: the loop's settings, shared by teachers, students and the Distiller.

    Example:
        >>> Distiller(train=TrainConfig(epochs=10, batch_size=32, lr=1e-2, seed=0))
    """

    epochs: int = option(10, "Training epochs.", min=1)
    batch_size: int = option(32, "Images per optimizer step.", min=1)
    lr: float = option(1e-2, "Learning rate (with --schedule onecycle: the peak).", min=0, min_open=True)
    seed: int = option(0, "Seed of weight initialization and batch order (recorded in config.json).")
    optimizer: str = option("adam", "adam, or sgd (Nesterov momentum 0.9).", choices=("adam", "sgd"))
    weight_decay: float = option(0.0, "L2 weight decay of the optimizer.", min=0)
    schedule: str = option("constant", "Learning-rate schedule: constant, or onecycle (linear warm-up over the "
                                       "first quarter of the steps to --lr, then linear decay to zero).",
                           choices=("constant", "onecycle"))
    augment: str = option("none", "Data augmentation of every training batch, drawn from the run's seed: auto (the "
                                  "one that suits the dataset: shift-rotate for digits, MNIST, FashionMNIST and your "
                                  "own loaders, crop-flip for CIFAR-10 and image folders), crop-flip "
                                  "(a random crop of the image padded by 4 reflected pixels, and a horizontal flip: "
                                  "CIFAR-10, image folders) or shift-rotate (shifts up to 1/14 of the side and "
                                  "rotations up to 10 degrees: digits, MNIST, FashionMNIST). Validation, test and "
                                  "cached teacher logits use the images as they are.",
                          choices=("none", "auto", "crop-flip", "shift-rotate"))
    mixup: float = option(0.0, "Mixup: each batch blended with a shuffled copy of itself by a weight drawn from "
                               "Beta(a, a), the cross-entropy mixed alike (0: off; 0.2-1 usual). Students with "
                               "on-the-fly teacher outputs, where the teacher sees the blend, or labels alone.",
                          min=0)


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
        d = {k: ({**LEGACY.get(k, {}), **v} if isinstance(v, dict) else v) for k, v in d.items()}
        try:
            kwargs = {k: (SECTIONS[k](**v) if k in SECTIONS and v is not None else v) for k, v in d.items()}
            return cls(**kwargs)
        except TypeError as exc:
            raise QkdError(f"the saved configuration is not one this version of qkd-pl reads ({exc})") from None


def with_field(cfg: "RunConfig", path: str, value: Any) -> "RunConfig":
    """``cfg`` with the field at dotted ``path`` (``"student.qubits"``) set to ``value``."""
    section, name = path.split(".")
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{name: value})})


SECTIONS = {"data": DataConfig, "train": TrainConfig, "teacher": TeacherConfig, "student": StudentConfig,
            "distill": DistillConfig}


# What runs saved before a field existed did, where that is not the field's default: they are
# read as what they were, not as what a new run would be.
LEGACY = {"data": {"split": "capped"}}


def normalized(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved ``config.json`` as this version writes it: fields added since are filled with
    their defaults, so runs made before a field existed compare equal to the same run now. A
    baseline (a student without a teacher) distils nothing, so its distillation fields read as
    the defaults: a baseline saved before a default changed is the same baseline now (the ceiling
    control, which has no teacher either, keeps its transfer fields)."""
    d = RunConfig.from_dict(saved).to_dict()
    distill = d.get("distill")
    if d.get("kind") == "student" and isinstance(distill, dict) and distill.get("teacher") is None:
        ceiling = distill.get("transfer_labels") == "true"  # the ceiling control learns from its transfer set
        d["distill"] = dataclasses.asdict(DistillConfig(**({k: distill[k] for k in ("transfer", "transfer_labels")}
                                                          if ceiling else {})))
    return d


def non_default(d: dict[str, Any]) -> dict[str, Any]:
    """``RunConfig.to_dict()`` without the leaves that equal their field's default: what names a
    run, so that adding a field (with a default that keeps today's behaviour) renames nothing."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if key in SECTIONS and isinstance(value, dict):
            defaults = {f.name: f.default for f in dataclasses.fields(SECTIONS[key])}
            value = {k: v for k, v in value.items() if k not in defaults or v != defaults[k]}
        out[key] = value
    return out


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
