"""A full test set of an 8-qubit student on ``noisy:<fake backend>`` with the density matrices on a GPU.

Why three phases: the GPU machine this project is sometimes lent has torch but neither PennyLane
nor Qiskit, and cannot fetch them. So the student's circuit is lowered, transpiled and compiled
to density-matrix steps here (``export``), only ``noisy_dm`` (torch alone) runs there (``gpu``),
and the exact noisy probabilities come back to be sampled and read out by the real
``qkd evaluate`` path here (``replay``), which gives the accuracy as a user would see it.

    python benchmarks/gpu_noisy_eval.py export RUN --device noisy:fake_brisbane --out gpu-in
    python benchmarks/gpu_noisy_eval.py gpu gpu-in --out $OUT         # on the GPU machine
    python benchmarks/gpu_noisy_eval.py replay RUN gpu-in $OUT --device noisy:fake_brisbane --shots 1024

The GPU phase first checks its probabilities against the CPU's (complex128, ``--check`` images)
and then times the whole test set in batches; ``timing.json`` records both.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PARTS = 2  # probabilities come back in files under the tool's 16 MiB limit


def _capture(run: str, device: str, data_dir: str | None, limit: int | None):
    """The circuit and every test image's circuit values, from a pass whose density matrices are skipped."""
    from qkd_pl.devices import noisy_dm
    from qkd_pl.experiments.single.evaluate import evaluate_run

    seen: dict = {"values": []}
    real = noisy_dm.NoisyCircuit.probabilities

    def spy(self, values):
        seen["circuit"] = self
        seen["values"].append(values.detach().clone())
        return torch.full((values.shape[0], 2 ** len(self.measured)), 2.0 ** -len(self.measured),
                          dtype=torch.float64)

    noisy_dm.NoisyCircuit.probabilities = spy
    before = set(Path(run).glob("evaluation-*.json"))
    try:
        evaluate_run(run, device=device, data_dir=data_dir, limit=limit)
    finally:
        noisy_dm.NoisyCircuit.probabilities = real
        for path in set(Path(run).glob("evaluation-*.json")) - before:  # a uniform-probability evaluation
            path.unlink()
    return seen["circuit"], torch.cat(seen["values"])


def export(args) -> None:
    circuit, values = _capture(args.run, args.device, args.data_dir, args.limit)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    reference = circuit.probabilities(values[: args.check])
    cpu_seconds = time.perf_counter() - t0
    _save_circuit(circuit, out / "circuit.pt")
    torch.save({"values": values, "reference": reference, "cpu_seconds": cpu_seconds, "check": args.check},
               out / "inputs.pt")
    print(f"{values.shape[0]} images, {len(circuit.steps)} steps on {circuit.n} qubits; "
          f"CPU: {cpu_seconds / args.check:.3f} s/image over {args.check}")


def _import_torch_only():
    """``qkd_pl.devices.noisy_dm`` and ``qkd_pl.training.checkpoint`` without their packages'
    PennyLane imports (absent on the GPU machine). A process that has already imported qkd-pl
    itself (export, replay, a test) keeps its real packages."""
    real = sys.modules.get("qkd_pl")
    if real is None or getattr(real, "_torch_only", False):
        for name, path in (("qkd_pl", ROOT / "qkd_pl"), ("qkd_pl.devices", ROOT / "qkd_pl" / "devices"),
                           ("qkd_pl.training", ROOT / "qkd_pl" / "training")):
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            module._torch_only = True
            sys.modules.setdefault(name, module)
    import qkd_pl.devices.noisy_dm as noisy_dm
    import qkd_pl.training.checkpoint as checkpoint

    return noisy_dm, checkpoint


# The circuit travels as tensors and plain containers (a qkd-pl checkpoint file), so the gpu phase
# reads it with weights_only=True like every other file: a pickled NoisyCircuit would need
# weights_only=False, which runs whatever code a file in the named folder holds.
_STEP, _DTYPE, _DEVICE = "__noisy_dm.Step__", "__torch.dtype__", "__torch.device__"


def _plain(obj, noisy_dm):
    """``obj`` (a NoisyCircuit's attribute) as tensors, numbers, strings and containers."""
    if isinstance(obj, noisy_dm.Step):
        return {_STEP: {f.name: _plain(getattr(obj, f.name), noisy_dm) for f in dataclasses.fields(obj)}}
    if isinstance(obj, torch.dtype):
        return {_DTYPE: str(obj).removeprefix("torch.")}
    if isinstance(obj, torch.device):
        return {_DEVICE: str(obj)}
    if isinstance(obj, dict):
        return {k: _plain(v, noisy_dm) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v, noisy_dm) for v in obj)
    if obj is None or isinstance(obj, (torch.Tensor, bool, int, float, str)):
        return obj
    raise TypeError(f"a NoisyCircuit holds a {type(obj).__name__}, which the export cannot write as plain data")


def _unplain(obj, noisy_dm):
    if isinstance(obj, dict):
        if obj.keys() == {_STEP}:
            return noisy_dm.Step(**{k: _unplain(v, noisy_dm) for k, v in obj[_STEP].items()})
        if obj.keys() == {_DTYPE}:
            dtype = getattr(torch, obj[_DTYPE], None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"not a torch dtype: {obj[_DTYPE]!r}")
            return dtype
        if obj.keys() == {_DEVICE}:
            return torch.device(obj[_DEVICE])
        return {k: _unplain(v, noisy_dm) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unplain(v, noisy_dm) for v in obj)
    return obj


def _save_circuit(circuit, path: Path) -> None:
    noisy_dm, checkpoint = _import_torch_only()
    checkpoint.save_checkpoint(path, {"noisy_circuit": _plain(vars(circuit), noisy_dm)})


def _load_circuit(path: Path):
    """The NoisyCircuit ``_save_circuit`` wrote, read with ``weights_only=True`` (load_checkpoint)."""
    noisy_dm, checkpoint = _import_torch_only()
    circuit = noisy_dm.NoisyCircuit.__new__(noisy_dm.NoisyCircuit)  # its fields, not its Qiskit constructor
    circuit.__dict__.update(_unplain(checkpoint.load_checkpoint(path)["noisy_circuit"], noisy_dm))
    return circuit


def gpu(args) -> None:
    src, out = Path(args.inputs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    circuit = _load_circuit(src / "circuit.pt").to(args.on)  # written by export, above
    inputs = torch.load(src / "inputs.pt", weights_only=True)
    values, reference = inputs["values"][: args.limit], inputs["reference"]
    on = torch.device(args.on)
    sync = torch.cuda.synchronize if on.type == "cuda" else (lambda: None)
    report: dict = {"on": torch.cuda.get_device_name() if on.type == "cuda" else args.on,
                    "torch": torch.__version__, "images": values.shape[0],
                    "steps": len(circuit.steps), "qubits": circuit.n, "cpu_seconds_per_image":
                    inputs["cpu_seconds"] / inputs["check"]}
    check = circuit.probabilities(inputs["values"][: inputs["check"]].to(on)).cpu()
    report["max_abs_diff_vs_cpu"] = (check - reference).abs().max().item()
    for batch in args.batches:  # warm, then timed
        circuit.probabilities(values[:batch].to(on))
        sync()
        t0 = time.perf_counter()
        circuit.probabilities(values[:batch].to(on))
        sync()
        report[f"seconds_per_image_batch_{batch}"] = (time.perf_counter() - t0) / batch
    t0 = time.perf_counter()
    probs = torch.cat([circuit.probabilities(values[i:i + args.batch].to(on)).cpu()
                       for i in range(0, values.shape[0], args.batch)])
    report["test_set_seconds"] = time.perf_counter() - t0
    report["test_set_batch"] = args.batch
    if args.complex64:  # the same steps in single precision: its error and its speed
        fast = copy.deepcopy(circuit).to(dtype=torch.complex64)
        report["complex64_max_abs_diff_vs_cpu"] = (fast.probabilities(inputs["values"][: inputs["check"]].to(on)).cpu()
                                                   - reference).abs().max().item()
        fast.probabilities(values[: args.batch].to(on))
        sync()
        t0 = time.perf_counter()
        fast.probabilities(values[: args.batch].to(on))
        sync()
        report[f"complex64_seconds_per_image_batch_{args.batch}"] = (time.perf_counter() - t0) / args.batch
    for i, part in enumerate(probs.chunk(PARTS)):
        torch.save(part.clone(), out / f"probs{i}.pt")
    (out / "timing.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def replay(args) -> None:
    """``qkd evaluate RUN --device ...`` with each batch's density matrices taken from the GPU's results."""
    from qkd_pl.devices import noisy_dm
    from qkd_pl.experiments.single.evaluate import evaluate_run

    gpu_out = Path(args.results)
    probs = torch.cat([torch.load(gpu_out / f"probs{i}.pt", weights_only=True) for i in range(PARTS)])
    inputs = torch.load(Path(args.inputs) / "inputs.pt", weights_only=True)
    cursor = {"at": 0}

    def served(self, values):
        at = cursor["at"]
        exported = inputs["values"][at:at + values.shape[0]]  # equal but for the float32 front end's rounding
        if exported.shape != values.shape or not torch.allclose(values.to(torch.float64), exported, atol=1e-5):
            raise RuntimeError(f"the replayed circuit values differ from the exported ones at image {at}: rerun export")
        cursor["at"] = at + values.shape[0]
        return probs[at:at + values.shape[0]]

    noisy_dm.NoisyCircuit.probabilities = served
    evaluation = evaluate_run(args.run, device=args.device, shots=args.shots, data_dir=args.data_dir,
                              limit=args.limit)
    timing = json.loads((gpu_out / "timing.json").read_text())
    print(json.dumps({"test_accuracy": evaluation.test_accuracy, "n_test": evaluation.n_test,
                      "gpu_test_set_seconds": timing["test_set_seconds"],
                      "replay_seconds": evaluation.seconds}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="phase", required=True)
    e = sub.add_parser("export")
    e.add_argument("run")
    e.add_argument("--device", default="noisy:fake_brisbane")
    e.add_argument("--out", required=True)
    e.add_argument("--data-dir")
    e.add_argument("--limit", type=int)
    e.add_argument("--check", type=int, default=16)
    g = sub.add_parser("gpu")
    g.add_argument("inputs")
    g.add_argument("--out", required=True)
    g.add_argument("--batch", type=int, default=2000)
    g.add_argument("--batches", type=int, nargs="*", default=[100, 1000])
    g.add_argument("--on", default="cuda", help="the torch device (cpu: a dry run here)")
    g.add_argument("--limit", type=int, help="only the first N images")
    g.add_argument("--complex64", action="store_true", help="also time the steps in complex64")
    r = sub.add_parser("replay")
    r.add_argument("run")
    r.add_argument("inputs")
    r.add_argument("results")
    r.add_argument("--device", default="noisy:fake_brisbane")
    r.add_argument("--data-dir")
    r.add_argument("--limit", type=int)
    r.add_argument("--shots", type=int, help="sample the GPU's exact probabilities (default: exact outputs)")
    args = parser.parse_args()
    {"export": export, "gpu": gpu, "replay": replay}[args.phase](args)


if __name__ == "__main__":
    main()
