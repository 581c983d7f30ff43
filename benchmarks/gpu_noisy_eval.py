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
    from qkd_pl.experiments.single.train import evaluate_run

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
    torch.save(circuit, out / "circuit.pt")  # our own object, read back by our own gpu phase
    torch.save({"values": values, "reference": reference, "cpu_seconds": cpu_seconds, "check": args.check},
               out / "inputs.pt")
    print(f"{values.shape[0]} images, {len(circuit.steps)} steps on {circuit.n} qubits; "
          f"CPU: {cpu_seconds / args.check:.3f} s/image over {args.check}")


def _import_noisy_dm():
    """``qkd_pl.devices.noisy_dm`` without the package's PennyLane imports (absent on the GPU machine)."""
    for name, path in (("qkd_pl", ROOT / "qkd_pl"), ("qkd_pl.devices", ROOT / "qkd_pl" / "devices")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules.setdefault(name, module)
    import qkd_pl.devices.noisy_dm as noisy_dm

    return noisy_dm


def gpu(args) -> None:
    _import_noisy_dm()
    src, out = Path(args.inputs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    circuit = torch.load(src / "circuit.pt", weights_only=False).to(args.on)  # written by export, above
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
    from qkd_pl.experiments.single.train import evaluate_run

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
