"""Times one student training step in this interpreter and prints JSON; run by compare_peers.py.

Usage: python step_timer.py {qkd-pl,torchquantum,no-circuit} QUBITS BATCH STEPS [DEVICE]

The same model on both sides (its logits on reference.py's weights checked before timing): FC 784 -> 2^Q, amplitude encoding, 2 layers of RX RY RZ on
every qubit then a ring of CNOTs, <Z> on every qubit, linear Q -> 10; one step is forward,
cross-entropy, backward and an Adam update, on one torch thread.
"""

import json
import os
import statistics
import sys
import time

import torch
from torch import nn

LAYERS, CLASSES = 2, 10


def torchquantum_model(n: int) -> nn.Module:
    import torchquantum as tq
    import torchquantum.functional as tqf

    class Student(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 2**n)
            self.encoder = tq.AmplitudeEncoder()
            self.rots = nn.ModuleList(
                [gate(has_params=True, trainable=True) for _ in range(LAYERS * n) for gate in (tq.RX, tq.RY, tq.RZ)])
            self.measure = tq.MeasureAll(tq.PauliZ)
            self.head = nn.Linear(n, CLASSES)

        def forward(self, x):
            b = x.shape[0]
            qdev = tq.QuantumDevice(n_wires=n, bsz=b, device=x.device)
            self.encoder(qdev, self.fc(x.reshape(b, -1)))
            for layer in range(LAYERS):
                for w in range(n):
                    for g in range(3):
                        self.rots[(layer * n + w) * 3 + g](qdev, wires=w)
                if n == 2:
                    tqf.cnot(qdev, wires=[0, 1])
                elif n > 2:
                    for w in range(n):
                        tqf.cnot(qdev, wires=[w, (w + 1) % n])
            return self.head(self.measure(qdev))

    return Student()


class NoCircuit(nn.Module):
    """The step's classical part alone: FC, normalize, the head on the first Q features."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.fc, self.head = n, nn.Linear(784, 2**n), nn.Linear(n, CLASSES)

    def forward(self, x):
        f = nn.functional.normalize(self.fc(x.reshape(x.shape[0], -1)), dim=1)
        return self.head(f[:, : self.n])


def qkd_pl_model(n: int, device: str) -> nn.Module:
    from qkd_pl.config import StudentConfig
    from qkd_pl.devices import resolve_backend
    from qkd_pl.students import build_student

    cfg = StudentConfig(qubits=n, layers=LAYERS, reducer="fc", encoding="amplitude", ansatz="ring")
    return build_student(cfg, resolve_backend(device, n), (1, 28, 28), CLASSES, torch.zeros(1), torch.ones(1))


def load_shared(model: nn.Module, who: str, p: dict) -> None:
    """The reference's weights into either model (float32 where the model is)."""
    t = lambda a: torch.as_tensor(a)  # noqa: E731
    n = p["rot"].shape[1]
    with torch.no_grad():
        fc = model.fc if who == "torchquantum" else model.reduce.linear
        fc.weight.copy_(t(p["fc_w"])), fc.bias.copy_(t(p["fc_b"]))
        model.head.weight.copy_(t(p["head_w"])), model.head.bias.copy_(t(p["head_b"]))
        if who == "torchquantum":
            for layer in range(LAYERS):
                for w in range(n):
                    for g in range(3):
                        model.rots[(layer * n + w) * 3 + g].params.fill_(float(p["rot"][layer, w, g]))
        else:
            model.quantum.layer.weights.copy_(t(p["rot"]))


def whole_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor):
    """qkd-pl's whole compiled step (QKD_COMPILE_STEP=on), as its training loop runs it: (step, compiled yet?)."""
    from qkd_pl.distill.distiller import BatchLoss
    from qkd_pl.losses import KD
    from qkd_pl.training.compiled_step import CompiledSteps
    from qkd_pl.training.loop import Batch

    loss_fn = BatchLoss(KD("hinton"), with_teacher=False)  # no teacher: the mean cross-entropy
    steps = CompiledSteps(model, loss_fn, opt, planned={len(y): 10**9})
    batch = Batch(torch.arange(len(y)), x, y, None, None, None, len(y))

    def step() -> float:
        t0 = time.perf_counter()
        done = steps.step(batch)
        if done is not None:
            done.loss.item()
            done.commit()
            return time.perf_counter() - t0
        logits = model(x)
        loss, _ = batch.loss(loss_fn, logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        steps.check_gradients(batch, loss, logits)
        opt.step()
        steps.check_update(batch)
        return time.perf_counter() - t0

    def compiled() -> bool:
        (shape,) = steps.shapes.values() or [None]
        if shape is not None and shape.refused:
            sys.exit(f"the step was not compiled: {shape.refused}")
        return shape is not None and shape.compiled is not None

    return step, compiled


def main() -> None:
    from reference import check, shared

    who, n, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    device = sys.argv[5] if len(sys.argv) > 5 else "auto"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    models = {"torchquantum": torchquantum_model, "no-circuit": NoCircuit}
    model = models[who](n) if who in models else qkd_pl_model(n, device)
    p = shared(n, batch)
    x, y = torch.as_tensor(p["x"], dtype=torch.float32).reshape(batch, 1, 28, 28), torch.as_tensor(p["y"])
    error = None
    if who != "no-circuit":  # nothing to check: it is not the student
        load_shared(model, who, p)
        with torch.no_grad():
            error = check(who, model(x).double().numpy(), p, 1e-4)  # float32 front ends
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        return time.perf_counter() - t0

    inductor = who == "qkd-pl" and os.environ.get("QKD_COMPILE") == "inductor"
    whole = who == "qkd-pl" and os.environ.get("QKD_COMPILE_STEP") == "on"
    if inductor:
        from qkd_pl.circuits import compiled
    if whole:
        step, compiled_steps = whole_step(model, opt, x, y)
        warm_up = 0.0
        while not compiled_steps():  # eager steps, the trace, the compilation and its check against eager
            warm_up += step()
    else:  # qkd-pl traces on its third call, and with QKD_COMPILE=inductor compiles COMPILE_AFTER calls later
        warm_up = sum(step() for _ in range(compiled.TRACE_AFTER + compiled.COMPILE_AFTER + 2 if inductor else 4))
    times = [step() for _ in range(steps)]
    result = {"who": who, "device": device, "qubits": n, "batch": batch,
              "samples_per_s": batch / statistics.median(times), "steps": steps, "error": error}
    if inductor or whole:
        result["compile_s"] = warm_up
    print(json.dumps(result))


if __name__ == "__main__":
    main()
