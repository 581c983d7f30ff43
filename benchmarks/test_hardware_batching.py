"""Shot-based evaluation: one job per batch (the batched device) against one job per image
(pennylane-qiskit's per-circuit path). samples/s and jobs per 1,000 test images in ``extra_info``.

    pytest benchmarks/test_hardware_batching.py --benchmark-only   # a few minutes
    python benchmarks/hardware_table.py                            # the README's table, one run

The per-circuit path is timed on a few images (each is a transpilation and a job); the batched
path on a batch large enough that its one transpilation and job overhead are spread out.
Noisy 8-qubit circuits are about a second an image in Aer's density-matrix simulation, so they
are timed on fewer images.
"""

import pytest

from qkd_pl.experiments.tools.shot_bench import measure_shots

# device, noise, qubits, images batched, images per circuit
CASES = [("qiskit.aer", None, 4, 500, 8), ("qiskit.aer", None, 8, 200, 4),
         ("qiskit.aer", "fake_brisbane", 4, 200, 4), ("qiskit.aer", "fake_brisbane", 8, 8, 2),
         ("ibm:fake_manila", None, 4, 200, 4),
         ("ibm:fake_brisbane", None, 4, 200, 4), ("ibm:fake_brisbane", None, 8, 8, 2)]
SMOKE = {("qiskit.aer", None, 4)}


def cases():
    for device, noise, q, batched, per_circuit in CASES:
        marks = [pytest.mark.smoke] if (device, noise, q) in SMOKE else []
        name = f"{device}{'+' + noise if noise else ''}-{q}q"
        yield pytest.param(device, noise, q, False, batched, id=f"{name}-batched", marks=marks)
        yield pytest.param(device, noise, q, True, per_circuit, id=f"{name}-per-circuit", marks=marks)


@pytest.mark.parametrize("device,noise,qubits,per_circuit,images", cases())
def test_shot_based_evaluation(benchmark, device, noise, qubits, per_circuit, images):
    result = benchmark.pedantic(measure_shots, args=(device, qubits, per_circuit, images if benchmark.enabled else 2,
                                                      noise), rounds=1, iterations=1)
    benchmark.extra_info.update(samples_per_s=result.samples_per_s, jobs_per_1000=result.jobs_per_1000)
    assert result.jobs == (result.images if per_circuit else 1)  # what the paths submit, not how fast
