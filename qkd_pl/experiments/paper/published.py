"""The paper's published numbers (../shared/mission/method.md), as data the reports set ours beside.

v1: the notebooks' printed outputs (best epoch, selected on the test set, one run each).
v2: read off the paper's Fig. 12 bar chart, about +-1 point; the figure does not say whether
its students were distilled, so the reports set them beside our distilled students.
"""

from __future__ import annotations

V1_TEACHERS = {"baseline": "none", "LeNet": "lenet5", "AlexNet": "alexnet-v1", "ensemble": "ensemble"}
# (dataset, classes, qubits) -> accuracy per teacher column, in V1_TEACHERS order
V1_STUDENTS = {
    ("mnist", "0-5", 3): (96.56, 97.89, 97.44, 97.33),
    ("mnist", "0-7", 3): (93.75, 93.75, 94.92, 95.42),
    ("mnist", "0-7", 4): (93.83, 94.33, 94.17, 94.00),
    ("fashion-mnist", "0-5", 3): (65.00, 77.00, 83.44, 67.89),
    ("fashion-mnist", "0-7", 3): (68.00, 68.67, 73.42, 74.42),
    ("fashion-mnist", "0-7", 4): (74.25, 75.83, 75.42, 72.50),
}
# (dataset, classes) -> teacher accuracy: LeNet, AlexNet, ensemble
V1_TEACHER_ACCURACY = {
    ("mnist", "0-5"): (99.50, 99.72, 99.73), ("mnist", "0-7"): (99.16, 99.51, 99.58),
    ("fashion-mnist", "0-5"): (91.57, 94.90, 95.67), ("fashion-mnist", "0-7"): (85.97, 91.64, 91.79),
}

# method label -> (reducer, encoding); accuracy per (dataset, qubits)
V2_METHODS = {
    "FC + amplitude": ("fc", "amplitude"), "qubit encoding": ("fc", "qubit"), "angle encoding": ("fc", "angle"),
    "average pooling": ("avgpool", "amplitude"), "PCA": ("pca", "amplitude"), "centre crop": ("crop", "amplitude"),
    "max pooling": ("maxpool", "amplitude"),
}
V2_COLUMNS = (("mnist", 4), ("mnist", 8), ("fashion-mnist", 4), ("fashion-mnist", 8), ("cifar10", 4), ("cifar10", 8))
V2_STUDENTS = {
    "FC + amplitude": (77.9, 90.3, 77.5, 83.4, 25.8, 31.4),
    "qubit encoding": (75.2, 85.7, 76.4, 81.2, 24.0, 27.7),
    "angle encoding": (62.6, 78.7, 68.8, 71.4, 12.3, 15.9),
    "average pooling": (46.2, 52.3, 48.6, 49.8, 14.5, 20.7),
    "PCA": (31.6, 42.7, 28.3, 31.9, 12.3, 12.3),
    "centre crop": (19.5, 25.2, 21.4, 18.4, 8.3, 9.8),
    "max pooling": (15.2, 19.2, 17.3, 18.2, 7.2, 7.8),
}


def v1_rows() -> list[dict]:
    """Rows for report.write_report(published=...): a label, the fields to match, the accuracy."""
    rows = []
    for (dataset, classes, qubits), accs in V1_STUDENTS.items():
        for (label, teacher), acc in zip(V1_TEACHERS.items(), accs):
            rows.append({"label": f"hybrid-cnn ({label})", "accuracy": acc,
                         "match": {"dataset": dataset, "classes": classes, "qubits": qubits, "teacher": teacher,
                                   "student": "hybrid-cnn"}})
    return rows


def v2_rows(teacher: str = "lenet5") -> list[dict]:
    rows = []
    for label, accs in V2_STUDENTS.items():
        reducer, encoding = V2_METHODS[label]
        for (dataset, qubits), acc in zip(V2_COLUMNS, accs):
            rows.append({"label": label, "accuracy": acc,
                         "match": {"dataset": dataset, "qubits": qubits, "reducer": reducer, "encoding": encoding,
                                   "teacher": teacher, "control": False}})
    return rows
