"""Which torch device runs the classical networks: ``--torch-device auto|cpu|cuda[:N]``.

Teachers (AlexNet-v1 has 94.7 M parameters) and the teacher's logits are plain torch and run
wherever torch does; ``auto`` puts them on CUDA when it is available. Students stay on the
CPU: their circuits run on CPU simulators (lightning, Aer) or on qkd.fused, whose CUDA path
has not been checked against the reference simulators on a GPU yet, and the classical parts
of a student follow its circuit rather than cross the bus twice a step. So a student given
``cuda`` is refused in one line instead of running an unchecked path.
"""

from __future__ import annotations

import torch

from ..errors import QkdError

CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def resolve_torch_device(name: str = "auto") -> torch.device:
    """The torch device for teachers and teacher logits.

    Args:
        name: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        A device that exists here.

    Raises:
        QkdError: an unknown name, or CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise QkdError(f"--torch-device {name!r} is not a torch device; use one of: {', '.join(CHOICES)}") from None
    if device.type not in ("cpu", "cuda"):
        raise QkdError(f"--torch-device {name!r}: qkd-pl runs on cpu or cuda; use one of: {', '.join(CHOICES)}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise QkdError(f"--torch-device {name}: torch sees no CUDA device here; use auto or cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise QkdError(f"--torch-device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def student_torch_device(name: str = "auto") -> torch.device:
    """The torch device of a student: the CPU, where its circuit runs (``cuda`` is refused)."""
    device = resolve_torch_device(name) if name != "auto" else torch.device("cpu")
    if device.type != "cpu":
        raise QkdError(f"--torch-device {name} applies to teachers and teacher logits: students train on the CPU, "
                       f"where their circuits are simulated (qkd.fused on CUDA is not checked yet); use auto or cpu")
    return device
