"""Which torch device runs what: ``--torch-device auto|cpu|cuda[:N]``.

Teachers (AlexNet-v1 has 94.7 M parameters) and the teacher's logits are plain torch and run
wherever torch does; ``auto`` puts them on CUDA when it is available. A student follows only an
explicit ``cuda``, and only on qkd.fused or qkd.fused32 without shots: those simulate in torch,
so the circuit runs on the GPU beside the student's classical parts (the state is a torch tensor
there, and the traced graph follows it). ``auto`` keeps students on the CPU: at the qubit counts
students train with (4 to 8) a step is a few dozen tiny kernels, which a GPU runs no faster than
the CPU (benchmarks/gpu_students.py measures where it starts to pay). Every other device
(lightning, Aer, IBM) simulates or runs outside torch, on the CPU or remotely, so a student
on it given ``cuda`` is refused in one line instead of copying every batch there and back.
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


def student_torch_device(name: str = "auto", backend: object | None = None) -> torch.device:
    """The torch device of a student.

    Args:
        name: ``auto`` and ``cpu`` give the CPU; ``cuda`` or ``cuda:N`` that GPU, for students
            whose circuit simulates in torch (qkd.fused, qkd.fused32; no shots, no noise).
        backend: the student's resolved circuit device (``devices.Backend``); None for a user's
            own student, which runs on the device of its parameters.

    Returns:
        A device the student's circuit can run on.

    Raises:
        QkdError: CUDA asked for a student whose circuit cannot run there, or where there is none.
    """
    if name in ("auto", "cpu"):
        return torch.device("cpu")
    device = resolve_torch_device(name)
    if device.type == "cpu":
        return device
    if backend is None:
        raise QkdError(f"--torch-device {name}: your own student runs on the device of its parameters; move it "
                       f"there in its factory (model.to('{name}')) and leave --torch-device at auto or cpu")
    if getattr(backend, "device", None) not in TORCH_SIMULATORS or getattr(backend, "shots", None) \
            or getattr(backend, "noise", None):
        raise QkdError(f"--torch-device {name}: a student on {getattr(backend, 'device', backend)} runs its circuit "
                       f"outside torch, on the CPU or remotely; students train on CUDA only on "
                       f"{' or '.join(TORCH_SIMULATORS)} without shots (--device qkd.fused), else use auto or cpu")
    return device


TORCH_SIMULATORS = ("qkd.fused", "qkd.fused32")  # circuits simulated in torch: they can follow a student onto a GPU

