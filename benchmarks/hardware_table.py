"""The README's Backends table: batched vs per-circuit evaluation on shot-based devices, one run.

    .venv/bin/python benchmarks/hardware_table.py [--quick]

Each row is one measurement (qkd_pl/experiments/tools/shot_bench.py), batched and per-circuit
side by side in the same run, so their ratio is meaningful on a noisy machine.
"""

import argparse
import warnings

from test_hardware_batching import CASES

from qkd_pl.experiments.tools.shot_bench import measure_shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two images per cell: checks the script, not the speed")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| device | qubits | batched samples/s | per-circuit samples/s | speed-up | jobs per 1,000 images "
          "(batched / per circuit) |")
    print("|---|---|---|---|---|---|")
    for device, noise, q, n_batched, n_per_circuit in CASES:
        b = measure_shots(device, q, False, 2 if args.quick else n_batched, noise)
        p = measure_shots(device, q, True, 2 if args.quick else n_per_circuit, noise)
        name = f"`{device}`" + (f" + noise of {noise}" if noise else "")
        print(f"| {name} | {q} | {b.samples_per_s:,.1f} | {p.samples_per_s:,.2f} | "
              f"{b.samples_per_s / p.samples_per_s:,.0f}x | {b.jobs_per_1000} / {p.jobs_per_1000:,} |", flush=True)


if __name__ == "__main__":
    main()
