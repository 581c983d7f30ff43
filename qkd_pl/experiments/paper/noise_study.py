"""``qkd reproduce noise``: trained students on IBM fake backends of three processor generations.

Each student (MNIST, FashionMNIST, CIFAR-10; 4 and 8 qubits; labels only and distilled from
LeNet5 at the study's setting; all the training data: the regime of the best students in
docs/kd-study) is evaluated exactly and on fake backends of a Falcon (fake_kolkata, 27 qubits),
an Eagle (fake_brisbane, 127) and a Heron (fake_torino, 133), at 1,024 shots.

How it was sized to run within an hour on the project's 2-core machine: a noisy evaluation is
a density-matrix simulation of the transpiled circuit. At 4 qubits the torch emulation of the
fake backend (``noisy:<backend>``, devices/noisy.py) runs about 2,500 test images a second, so
every 4-qubit student is evaluated on its whole test split; Aer (``ibm:<backend>``, the
batched device) runs about 50 a second and evaluates the first ``check_images`` of each as a
cross-check of the emulation. At 8 qubits the amplitude encoding's RY tree becomes about 700
two-qubit gates after routing, and one noisy image takes about a second in either simulator,
so 8-qubit students are evaluated on the first ``images_8q`` test images (the report says so
beside every such number).

Every evaluation is saved as it finishes (per-image correctness), so an interrupted study
resumes where it stopped; the drops are paired over the same images (exact minus noisy), with
95 % normal intervals of the mean of per-image differences.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ...config import DataConfig, StudentConfig, TrainConfig
from ..single.per_image import Job, evaluate
from ..sweeps.grid import BASELINE, GridSpec, run_grid, validate, worker_threads

BACKENDS = {"fake_kolkata": "Falcon r5.11 (27 qubits)", "fake_brisbane": "Eagle r3 (127 qubits)",
            "fake_torino": "Heron r1 (133 qubits)"}
SHOTS = 1024
IMAGES_8Q = 200
CHECK_IMAGES = 1000


def noise_study_spec(quick: bool = False, datasets: list[str] | None = None) -> GridSpec:
    """The students of the study: one seed, all the training data, the kd study's all-data training
    (Adam 1e-2, batch 256, 10 epochs), FC + amplitude + StronglyEntanglingLayers (2 layers) + <Z>.
    ``quick``: digits, 2 and 3 qubits, 2 epochs (the CI run)."""
    if quick:
        return validate(GridSpec(
            name="noise-study-quick", datasets=datasets or ["digits"], classes=["0-3"], seeds=[0],
            student=StudentConfig(qubits=2, reducer="fc", encoding="amplitude", ansatz="strong", layers=1),
            student_train=TrainConfig(epochs=2, batch_size=32, lr=1e-2), teachers=[BASELINE, "lenet5"],
            teacher_data="all", teacher_train=TrainConfig(epochs=2, batch_size=64, lr=1e-3),
            axes={"student.qubits": [2, 3]}))
    return validate(GridSpec(
        name="noise-study", datasets=datasets or ["mnist", "fashion-mnist", "cifar10"], seeds=[0],
        student=StudentConfig(qubits=4, reducer="fc", encoding="amplitude", ansatz="strong", layers=2),
        student_train=TrainConfig(epochs=10, batch_size=256, lr=1e-2), teachers=[BASELINE, "lenet5"],
        teacher_data="all", teacher_train=TrainConfig(epochs=10, batch_size=128, lr=1e-3),
        axes={"student.qubits": [4, 8]}, data=DataConfig()))


def plan(rows: list[dict], out: Path, images_8q: int = IMAGES_8Q, check_images: int = CHECK_IMAGES,
         backends: tuple[str, ...] = tuple(BACKENDS), quick: bool = False) -> list[Job]:
    """The evaluations of every student of the grid's results rows."""
    jobs = []
    for row in rows:
        if row.get("role") not in ("baseline", "distilled"):
            continue
        run, q = str(out / row["run_dir"]), int(row["qubits"])
        where = out / "evaluations" / Path(run).name
        full = None if q <= 4 or quick else images_8q
        jobs.append(Job(run, "exact", None, None, str(where / "exact.json")))
        for b in backends:
            jobs.append(Job(run, f"noisy:{b}", full, SHOTS, str(where / f"noisy-{b}.json")))
            if q <= 4 and check_images:
                jobs.append(Job(run, f"ibm:{b}", check_images, SHOTS, str(where / f"ibm-{b}.json")))
    return jobs


def run_noise_study(out: str | Path, quick: bool = False, datasets: list[str] | None = None, workers: int = 1,
                    data_dir: str | None = None, progress: bool = True, images_8q: int = IMAGES_8Q,
                    check_images: int = CHECK_IMAGES, torch_device: str = "auto") -> Path:
    """Train (or reuse) the students, evaluate them exactly and on the three fake backends, report.

    Returns:
        The report's path (``OUT/report.md``).
    """
    from tqdm.auto import tqdm

    from .noise_report import write_noise_report

    out = Path(out)
    spec = noise_study_spec(quick, datasets)
    rows = run_grid(spec, out, workers, "processes", data_dir, progress, torch_device)
    backends = ("fake_manila",) if quick else tuple(BACKENDS)
    jobs = plan(rows, out, images_8q, 20 if quick else check_images, backends, quick)
    todo = [j for j in jobs if j.result() is None]
    bar = tqdm(total=len(todo), desc="noisy evaluations", unit="eval", disable=None if progress else True)
    if workers > 1 and len(todo) > 1:
        import multiprocessing

        threads = worker_threads(workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for _ in pool.map(evaluate, todo, [data_dir] * len(todo), [threads] * len(todo)):
                bar.update()
    else:
        for job in todo:
            evaluate(job, data_dir)
            bar.update()
    bar.close()
    return write_noise_report(out, jobs, backends, BACKENDS, quick)
