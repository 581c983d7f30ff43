"""``qkd reproduce kd-study``: when does distillation help a quantum student?

One grid over three regimes of labelled data (50 and 150 images per class, and all of them),
the distillation settings (the paper's, each objective at its tuned setting, and a transfer set
used through soft outputs or pseudo-labels), both readouts, 4 and 8 qubits, two teachers on
CIFAR-10, and the controls that say what the circuit adds; 5 seeds, every setting paired with
the labels-only student of its regime and seed.

What runs where is chosen to fit the study into about an hour on a 2-core CPU (the docstring of
``kd_study_spec`` says how); every choice of a setting was made on validation accuracy by
``qkd tune`` (``docs/kd-study/tune``), with seeds disjoint from the study's.
"""

from __future__ import annotations

from pathlib import Path

from ...config import PAPER_DISTILL, DataConfig, DistillConfig, StudentConfig, TrainConfig
from ...errors import QkdError
from ..sweeps.grid import BASELINE, CEILING, GridSpec, validate

# Each objective at its tuned setting: the best mean validation accuracy of its own search
# (docs/kd-study/tune/<objective>.toml; the chosen values in docs/kd-study/tune/<objective>/best.json).
TUNED: dict[str, dict[str, object]] = {
    "hinton": {"distill.temperature": 1.135, "distill.alpha": 0.881},
    "hinton-classic": {"distill.temperature": 1.041, "distill.alpha": 0.862},
    "dist": {"distill.temperature": 3.131, "distill.alpha": 0.744, "distill.dist_beta": 1.33,
             "distill.dist_gamma": 1.133},
    "lskd": {"distill.temperature": 1.438, "distill.alpha": 0.211},
    "dkd": {"distill.temperature": 1.659, "distill.alpha": 0.775, "distill.dkd_beta": 1.547},
}
# The objective whose tuned setting scored best on validation across the searches: the one the
# transfer set, the larger regimes and the controls use.
BEST = "hinton-classic"
TRANSFER = "500"  # unlabelled images per class seen only through the teacher (as in the pilot)
PAPER = {f"distill.{k}": v for k, v in PAPER_DISTILL.items()}
# committed strong teachers (docs/teachers.md): 86.94 % on CIFAR-10, 93.06 % on FashionMNIST
STRONG = {"cifar10": "docs/teachers/cifar10-compact-cnn", "fashion-mnist": "docs/teachers/fashion-mnist-compact-cnn"}


def _committed_teacher(relative: str) -> str:
    """The committed teacher's run folder: in the repository this package sits in, else under the
    working folder. An installed wheel carries no checkpoints (9 MB of them), so from one the
    study needs a clone of the repository, and says so before anything trains."""
    checkout = Path(__file__).resolve().parents[3]
    for root in (checkout, Path.cwd()):
        if (root / relative / "best.pt").is_file():
            return str(root / relative)
    raise QkdError(f"the kd study's committed compact-cnn teacher {relative} is not here: run it from a clone of the "
                   f"qkd-pl repository (its docs/teachers/), or with --datasets mnist")


NOTES = [
    "Protocol: teachers trained on the whole train part of a nested 80/20 split (LeNet5 here; on CIFAR-10 and "
    "FashionMNIST also the committed compact-cnn of docs/teachers.md, 86.94 % and 93.06 %), students (FC + amplitude encoding + StronglyEntangling"
    "Layers, 2 layers) on the first N labelled images per class of that train part and validated on the first "
    "ceil(N/5) of the validation part (N = 50: 40 + 10, N = 150: 120 + 30); Adam 1e-2, batch 32, 20 epochs; with all "
    "the data, batch 256 and 10 epochs (the v2 reproduction's training). The best validation epoch is tested once, on "
    "the first N test images of each class (all 10,000 with all the data). 5 seeds (0-4); each distilled student is "
    "paired with the labels-only student of the same regime, readout, qubits and seed.",
    "Settings: paper = hinton, T = 3, alpha = 0.9; each objective at the setting its own qkd tune search chose on "
    "validation (FashionMNIST, 4 qubits, readout z, 150 per class, no transfer set, tuning seeds 100-102: "
    "docs/kd-study/tune); +500: a transfer set of 500 further unlabelled training images per class seen only through "
    "the teacher, with the best objective's soft outputs or as pseudo-labels (the teacher's top class, "
    "transfer_labels = hard).",
    "Transfer-set protocols: every transfer-set row runs twice, with the teacher trained on the whole train part (pool "
    "seen: it was trained on the pool's images with their labels) and with a LeNet5 teacher trained on the train part "
    "less the pool (pool unseen: --without-pool N:500, the protocol of truly unlabelled images; the committed "
    "compact-cnn teachers saw it, so they have seen rows only); the ceiling is the same student on the same pool with "
    "its true labels, no teacher; fraction recovered = (distilled - baseline) / (ceiling - baseline) with a 95 % "
    "Fieller interval over seeds (the fractions a paired t-test does not reject).",
    "Controls (FashionMNIST, 4 qubits, 150 per class, labels only and with the best setting + 500): the circuit "
    "replaced by a classical layer with as many trainable parameters (control) or with the readout's output width "
    "(width control), and the circuit without its entangling gates (ansatz strong-local).",
]


def _settings(transfer: str = TRANSFER) -> dict[str, dict[str, object]]:
    """Setting name -> its distill.* fields; ``<best>+N`` and ``pseudo+N`` add a transfer set of N
    per class, through the best objective's soft outputs or as the teacher's hard labels."""
    best = {"distill.kd_loss": BEST, **TUNED[BEST]}
    return {"paper": PAPER, **{name: {"distill.kd_loss": name, **fields} for name, fields in TUNED.items()},
            f"{BEST}+{transfer}": {**best, "distill.transfer": transfer},
            f"pseudo+{transfer}": {**best, "distill.transfer": transfer, "distill.transfer_labels": "hard"}}


PARTS = ("all", "pool")


def kd_study_spec(quick: bool = False, datasets: list[str] | None = None, part: str = "all",
                  qubits: list[int] | None = None) -> GridSpec:
    """The study's grid (``part="pool"``: its transfer-set rows alone, with their baselines and
    ceilings, under both protocols; ``qubits``: those students only).

    How it was sized (per-run times of the pilot, docs/kd-study/pilot.md): labels-only and
    objective-only students of 50 or 150 per class take seconds; a transfer set of 500 per class
    multiplies the images per epoch by 4 to 13, and all the data by 40 to 120, so:

    - 150 per class is the core regime: every setting, 4 and 8 qubits, readout ``z``, 3 datasets.
    - ``probs`` (the readout hypothesis) at 150 per class with the paper's and the best setting,
      on MNIST and FashionMNIST.
    - 50 per class (covered widely by the pilot): every setting at 4 qubits, the paper's and the
      best at 8, on MNIST and FashionMNIST.
    - All the data: 8 qubits, readout ``z``, the paper's and the best setting, MNIST and
      FashionMNIST (the regime of the published small-QNN results).
    - The strong teachers (CIFAR-10, FashionMNIST) at 150 per class: the paper's, the best, the
      best + 500; on FashionMNIST also with all the data (where LeNet5, 87.6 %, is below its
      8-qubit student).
    - The controls on FashionMNIST, 4 qubits, 150 per class.
    """
    if part not in PARTS:
        raise QkdError(f"--part {part!r}: choose one of {', '.join(PARTS)}")
    if qubits and (quick or set(qubits) - {4, 8}):
        raise QkdError(f"--qubits {','.join(map(str, qubits))}: the study's students have 4 and 8 qubits"
                       + (" (--quick has 2 and runs whole)" if quick else ""))
    size = "5" if quick else TRANSFER
    settings = _settings(size)
    best, transfer = BEST, f"{BEST}+{size}"
    variants = {"circuit": {"student.ansatz": "strong"}, "no-entanglement": {"student.ansatz": "strong-local"},
                "control": {"student.control": True},
                "width-control": {"student.control": True, "student.control_match": "width"}}
    z = {"student.readout": "z", "variant": "circuit"}
    if quick:
        names = datasets or ["digits"]
        include = [{**z, "regime": "few", "qubits": 2}, {"variant": "control", "regime": "few", "setting": best},
                   {**z, "regime": "all", "setting": "paper"}]
        if part == "pool":
            include = [{**z, "regime": "few", "qubits": 2, "setting": s} for s in (transfer, f"pseudo+{size}")]
        return validate(GridSpec(
            name="kd-study-quick", datasets=names, classes=["0-3"], seeds=[0, 1],
            student=StudentConfig(qubits=2, ansatz="strong"), student_train=TrainConfig(epochs=2, batch_size=16, lr=1e-2),
            teachers=[BASELINE, "lenet5", CEILING], teacher_pool=["seen", "unseen"], teacher_data="all",
            teacher_train=TrainConfig(epochs=2, batch_size=32, lr=1e-3),
            axes={"student.readout": ["z"]},
            bundles={"regime": {"few": {"data.per_class": 30}, "all": {"data.per_class": "all",
                                                                        "train.batch_size": 64}},
                     "setting": settings, "variant": variants},
            include=include))
    names = datasets or ["mnist", "fashion-mnist", "cifar10"]
    greyscale = [d for d in names if d != "cifar10"]
    include = [{**z, "regime": "150"}]
    include += [{"student.readout": "probs", "variant": "circuit", "regime": "150", "dataset": d, "setting": s}
                for d in greyscale for s in ("paper", best)]
    include += [{**z, "regime": "50", "qubits": 4, "dataset": d} for d in greyscale]
    include += [{**z, "regime": "50", "qubits": 8, "dataset": d, "setting": s} for d in greyscale
                for s in ("paper", best)]
    include += [{**z, "regime": "all", "qubits": 8, "dataset": d, "setting": s} for d in greyscale
                for s in ("paper", best)]
    include += [{"student.readout": "z", "regime": "150", "qubits": 4, "dataset": "fashion-mnist", "variant": v,
                 "setting": transfer} for v in variants if v != "circuit"]
    # the strong teacher where one was trained, with the paper's, the best and the best + 500 (all
    # the data only where the include rules allow it: FashionMNIST)
    exclude = [{"teacher": "compact-cnn", "dataset": d} for d in names if d not in STRONG]
    exclude += [{"teacher": "compact-cnn", "setting": s} for s in settings if s not in ("paper", best, transfer)]
    exclude += [{"teacher": "compact-cnn", "regime": "50"}, {"teacher": "compact-cnn", "student.readout": "probs"}]
    exclude += [{"teacher": "compact-cnn", "variant": v} for v in variants if v != "circuit"]
    teachers = [BASELINE, "lenet5", *(["compact-cnn"] if set(STRONG) & set(names) else []), CEILING]
    if part == "pool":  # the transfer-set rows of the circuit students, where both protocols run
        include = [{**z, "regime": r, "dataset": d, "setting": s, **({"qubits": 4} if r == "50" else {})}
                   for r in ("150", "50") for d in names for s in (transfer, f"pseudo+{size}")
                   if r == "150" or d != "cifar10"]
        teachers = [BASELINE, "lenet5", CEILING]
    if qubits:
        exclude += [{"qubits": q} for q in (4, 8) if q not in qubits]
    strong = {d: _committed_teacher(path) for d, path in STRONG.items() if d in names and "compact-cnn" in teachers}
    return validate(GridSpec(
        name="kd-study", datasets=names, seeds=[0, 1, 2, 3, 4],
        student=StudentConfig(qubits=4, reducer="fc", encoding="amplitude", ansatz="strong", layers=2),
        student_train=TrainConfig(epochs=20, batch_size=32, lr=1e-2), distill=DistillConfig(**PAPER_DISTILL),
        teachers=teachers, teacher_data="all", teacher_pool=["seen", "unseen"],
        teacher_train=TrainConfig(epochs=10, batch_size=128, lr=1e-3),
        teacher_runs={d: {"compact-cnn": path} for d, path in strong.items()},
        axes={"student.qubits": [4, 8], "student.readout": ["z", "probs"]},
        bundles={"regime": {"50": {"data.per_class": 50}, "150": {"data.per_class": 150},
                            "all": {"data.per_class": "all", "train.epochs": 10, "train.batch_size": 256}},
                 "setting": settings, "variant": variants},
        include=include, exclude=exclude, data=DataConfig()))


def kd_study_rows() -> list[dict]:
    """Published numbers set beside the all-data students (report.write_report(published=...))."""
    rows = []
    for dataset, fig12, best_small in (("mnist", 90.3, 97.2), ("fashion-mnist", 83.4, 87.4)):
        for teacher in (BASELINE, "lenet5", *(["compact-cnn"] if dataset in STRONG else [])):
            match = {"dataset": dataset, "qubits": 8, "data.per_class": "all", "student.readout": "z",
                     "control": False, "ansatz": "strong", "teacher": teacher}
            rows += [{"label": "FC + amplitude (the paper's Fig. 12)", "accuracy": fig12, "match": match},
                     {"label": "best small QNN published (issue 13's reference)", "accuracy": best_small,
                      "match": match}]
    return rows
