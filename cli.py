"""qkd: the command-line front end of qkd-pl (installed as ``qkd``; ``python cli.py`` works too).

Every command builds the same dataclasses (``qkd_pl.config``) that scripts use and hands
them to ``qkd_pl.experiments``. Mistakes the user can fix end with one line on stderr and
exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import click

from qkd_pl.config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig
from qkd_pl.errors import QkdError, QkdInterrupted, QkdWarning


class QkdGroup(click.Group):
    """A click group that reports usage mistakes and QkdError in one line with exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{where}", err=True)
            code = 2
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except QkdError as exc:
            click.echo(f"{'Interrupted' if isinstance(exc, QkdInterrupted) else 'Error'}: {exc}", err=True)
            code = exc.exit_code
        except click.Abort:
            click.echo("Aborted.", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def data_options(f):
    """Options that pick the images; shared by every command that trains."""
    opts = [
        click.option("--dataset", default="digits", show_default=True,
                     help="digits (scikit-learn, always present), mnist, fashion-mnist or cifar10."),
        click.option("--classes", default=None, metavar="SPEC",
                     help="Class subset: a range like 0-7 or a list like 0,3,5. Default: all classes."),
        click.option("--per-class", type=int, default=None, metavar="N",
                     help="Keep the first N images of each class, in the train and in the test split "
                          "(the paper's notebooks used 150). Default: all."),
        click.option("--val-fraction", type=float, default=0.2, show_default=True,
                     help="Fraction of the training split held out (stratified) for model selection; "
                          "the test split is only used once, at the end."),
        click.option("--split-seed", type=int, default=0, show_default=True,
                     help="Seed of the validation split; kept apart from --seed so a teacher and its "
                          "students see the same split."),
        click.option("--data-dir", default=None, metavar="DIR",
                     help="Where the datasets live. Default: $QKD_DATA_DIR, else the user cache folder."),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(opts), f)


def train_options(epochs: int, lr: float, single_run: bool = True):
    """Optimizer options, and for a single run its seed and --resume (compare has --seeds instead)."""

    def deco(f):
        opts = [
            click.option("--epochs", type=click.IntRange(min=1), default=epochs, show_default=True,
                         help="Training epochs."),
            click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
                         help="Images per optimizer step."),
            click.option("--lr", type=float, default=lr, show_default=True, help="Adam learning rate."),
            click.option("--out", default="runs", show_default=True, metavar="DIR",
                         help="Parent folder of run folders."),
            click.option("--name", default=None,
                         help="Run folder name. Default: role-dataset-<hash of the configuration>." if single_run
                         else "Folder name under --out. Default: compare-<dataset>-<time>."),
            click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines."),
        ]
        if single_run:
            opts[3:3] = [
                click.option("--seed", type=int, default=0, show_default=True,
                             help="Seed of weight initialization and batch order (recorded in config.json)."),
                click.option("--resume", is_flag=True,
                             help="Continue the run folder's last checkpoint (same configuration; --epochs may grow)."),
                click.option("--overwrite", is_flag=True,
                             help="Replace the run folder if it already holds a run (its files are deleted)."),
            ]
        return functools.reduce(lambda acc, opt: opt(acc), reversed(opts), f)
    return deco


def _data_config(o: dict) -> DataConfig:
    from qkd_pl.data.sources import NUM_CLASSES, canonical_name
    from qkd_pl.data.splits import check_classes, parse_classes

    dataset, classes = canonical_name(o["dataset"]), parse_classes(o["classes"])
    if classes is not None:
        check_classes(classes, NUM_CLASSES[dataset])  # now, not after the images are loaded
    return DataConfig(dataset=dataset, classes=classes, per_class=o["per_class"], val_fraction=o["val_fraction"],
                      split_seed=o["split_seed"])


def _train_config(o: dict) -> TrainConfig:
    return TrainConfig(epochs=o["epochs"], batch_size=o["batch_size"], lr=o["lr"], seed=o.get("seed", 0))


def _print_result(result) -> None:
    click.echo(f"test accuracy {result.test['accuracy']:.4f} (n={result.test['n']}); "
               f"parameters classical {result.parameters['classical']:,} / quantum {result.parameters['quantum']:,}; "
               f"{result.seconds:.1f} s; run folder {result.run_dir}")


@click.group(cls=QkdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qkd-pl")
def cli():
    """Knowledge distillation from classical CNN teachers into quantum neural network students.

    Typical use: `qkd train-teacher` once, then `qkd train-student` without and with
    `--teacher RUN_FOLDER`, and compare their test_metrics.json; `qkd demo` does all three on
    scikit-learn's digits in a few minutes.
    """


TEACHER_HELP = ("Teacher network: lenet5 (the notebooks' LeNet5), alexnet-v1 (the notebooks' AlexNet variant, "
                "about 94.7 M parameters), resnet18 or mobilenet_v3_small (torchvision, untrained, adapted to "
                "small images), or ensemble (the averaged logits of --members; nothing is trained).")


@cli.command("train-teacher")
@click.option("--arch", default="lenet5", show_default=True, help=TEACHER_HELP)
@click.option("--members", default=None, metavar="RUN,RUN,...",
              help="With --arch ensemble: the trained teacher runs to average (their data options are used).")
@data_options
@train_options(epochs=10, lr=1e-3)
def train_teacher_cmd(arch, members, **o):
    """Train a classical teacher, keep its best-on-validation weights, test it once."""
    from qkd_pl.experiments import train_teacher

    if (arch == "ensemble") != (members is not None):
        raise QkdError("--members goes with --arch ensemble, and --arch ensemble needs --members RUN,RUN,...")
    member_list = [m.strip() for m in members.split(",") if m.strip()] if members else None
    cfg = RunConfig(kind="teacher", data=_data_config(o), train=_train_config(o),
                    teacher=TeacherConfig(arch, member_list))
    _print_result(train_teacher(cfg, o["out"], o["name"], o["resume"], o["data_dir"], progress=not o["quiet"],
                                overwrite=o["overwrite"]))


DEVICE_HELP = ("qkd.fused (backprop, gates fused into few torch operations), default.qubit (backprop), lightning.qubit (adjoint), lightning.kokkos / lightning.gpu when "
               "installed, qiskit.aer (shots), ibm:<fake backend> such as ibm:fake_manila (local, with the "
               "device's noise), ibm:<backend> or ibm:least_busy (IBM Quantum; token from QISKIT_IBM_TOKEN / "
               "QISKIT_IBM_INSTANCE or a saved account). Shot-based devices evaluate only. `qkd backends` lists them.")


def student_options(f=None, *, device: bool = True):
    """The student's architecture options; ``device=False`` for commands that choose devices their own way."""
    if f is None:
        return functools.partial(student_options, device=device)
    from qkd_pl.circuits import ANSATZES, ENCODINGS, ROTATIONS
    from qkd_pl.reduction import REDUCERS

    opts = [
        click.option("--student", "arch", type=click.Choice(["v2", "hybrid-cnn"]), default="v2", show_default=True,
                     help="v2: reduce -> encode -> circuit -> <Z> -> linear head (the paper's v2). hybrid-cnn: the "
                          "notebooks' v1 preset (CNN -> pi*tanh angles -> H, RY -> 2^Q probabilities as class "
                          "scores; ignores --reducer/--encoding/--ansatz/--layers)."),
        click.option("--qubits", type=click.IntRange(1, 24), default=4, show_default=True,
                     help="Qubits Q (paper: 4 and 8). Amplitude encoding takes 2^Q features, angle and qubit Q."),
        click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True,
                     help="Layers L of the variational circuit."),
        click.option("--reducer", type=click.Choice(list(REDUCERS)), default="fc", show_default=True,
                     help="Image -> features: fc (trainable linear layer, all channels), avgpool / maxpool "
                          "(grid of regions), crop (centre pixels), pca (fitted on the training split); "
                          "pooling and crop use luminance for RGB."),
        click.option("--encoding", type=click.Choice(list(ENCODINGS)), default="amplitude", show_default=True,
                     help="amplitude (normalized, zero-padded), angle (pi*tanh(f) about --rotation) or qubit "
                          "(cos t|0> + sin t|1>, t = (pi/2)tanh(f))."),
        click.option("--rotation", type=click.Choice(list(ROTATIONS)), default="Y", show_default=True,
                     help="Rotation axis of the angle encoding."),
        click.option("--ansatz", type=click.Choice(list(ANSATZES)), default="strong", show_default=True,
                     help="paper (the drawn circuit: RX RY RZ RX per qubit, then shared RX RY RZ), strong "
                          "(qml.StronglyEntanglingLayers), basic (qml.BasicEntanglerLayers) or ring (RX RY RZ "
                          "per qubit, then a CNOT ring)."),
    ]
    if device:
        opts.append(click.option("--device", default="auto", show_default=True,
                                 help="auto picks the fastest exact simulator measured for the circuit (the run "
                                      "prints which and why). Else " + DEVICE_HELP))
    return functools.reduce(lambda acc, opt: opt(acc), reversed(opts), f)


@cli.command("train-student")
@student_options
@click.option("--classical-control", "control", is_flag=True,
              help="The classical control: replace the circuit by a classical layer with exactly as many "
                   "trainable parameters (same features in, one bounded output per qubit), to see what the "
                   "quantum layer adds.")
@click.option("--teacher", default=None, metavar="RUN",
              help="Teacher run folder (or its best.pt) to distil from. Without it: a baseline student.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="Softmax temperature T of the distillation term (paper: 3).")
@click.option("--alpha", type=click.FloatRange(min=0), default=0.9, show_default=True,
              help="Weight of the distillation term: loss = CE + alpha * T^2 * KL (paper: 0.9).")
@data_options
@train_options(epochs=10, lr=1e-2)
def train_student_cmd(arch, qubits, layers, reducer, encoding, rotation, ansatz, device, control, teacher, temperature,
                      alpha, **o):
    """Train a quantum student: a baseline on labels, or distilled from --teacher."""
    from qkd_pl.experiments import train_student

    cfg = RunConfig(kind="student", data=_data_config(o), train=_train_config(o),
                    student=StudentConfig(arch=arch, qubits=qubits, layers=layers, reducer=reducer,
                                          encoding=encoding, rotation=rotation, ansatz=ansatz, device=device,
                                          control=control),
                    distill=DistillConfig(teacher=teacher, temperature=temperature, alpha=alpha))
    _print_result(train_student(cfg, o["out"], o["name"], o["resume"], o["data_dir"], progress=not o["quiet"],
                                overwrite=o["overwrite"]))


@cli.command("evaluate")
@click.argument("run", type=click.Path())
@click.option("--device", default=None, help="Evaluate a student on this device instead of its training device: "
              + DEVICE_HELP)
@click.option("--shots", type=click.IntRange(min=1), default=None,
              help="Shots for shot-based devices (default 1024).")
@click.option("--noise", default=None, metavar="FAKE_BACKEND",
              help="With --device qiskit.aer: use this IBM fake backend's noise model, e.g. fake_brisbane.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate only the first N test images (for hardware, where every image is a job).")
@click.option("--data-dir", default=None, metavar="DIR", help="Where the datasets live (as for training).")
def evaluate_cmd(run, device, shots, noise, limit, data_dir):
    """Test a saved run (folder or .pt) on its test split; writes evaluation-<device>.json beside it."""
    from qkd_pl.experiments import evaluate_run

    r = evaluate_run(run, device, shots, noise, data_dir, limit)
    click.echo(f"test accuracy {r['test_accuracy']:.4f} (n={r['n_test']}) on {r['evaluated_on']} "
               f"(trained on {r['trained_on']}); {r['seconds']:.1f} s")


def _int_list(text: str, option: str, minimum: int | None = None) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise QkdError(f"{option} {text!r} is not a comma-separated list of integers") from None
    if not out:
        raise QkdError(f"{option} {text!r} names no value")
    if minimum is not None and min(out) < minimum:
        raise QkdError(f"{option} {text!r}: every value must be at least {minimum}")
    return out


def _seed_list(seeds: str) -> list[int]:
    return _int_list(seeds, "--seeds")


def _print_summary(summary) -> None:
    from qkd_pl.experiments.demo import format_table

    click.echo("\n" + format_table(summary))
    click.echo(f"\nrun folders, summary.json and summary.md in {summary['run_folder']}")


@cli.command("demo")
@click.option("--seeds", default="0,1,2", show_default=True, help="Student seeds (comma-separated).")
@click.option("--qubits", type=click.IntRange(1, 16), default=4, show_default=True, help="Student qubits.")
@click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True, help="Student circuit layers.")
@click.option("--teacher-epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Training epochs of the LeNet5 teacher.")
@click.option("--student-epochs", type=click.IntRange(min=1), default=15, show_default=True,
              help="Training epochs of each student.")
@click.option("--out", default="runs", show_default=True, help="Parent folder; the demo writes runs/demo-<time>/.")
@click.option("--quiet", is_flag=True, help="Only the final table.")
def demo_cmd(seeds, qubits, layers, teacher_epochs, student_epochs, out, quiet):
    """Teacher, baseline and distilled student on digits, compared in one table (about a minute)."""
    from qkd_pl.experiments.demo import run_demo

    _print_summary(run_demo(out, _seed_list(seeds), qubits, layers, teacher_epochs, student_epochs,
                            progress=not quiet))


@cli.command("compare")
@student_options
@click.option("--arch", "teacher_arch", type=click.Choice(["lenet5", "alexnet-v1", "resnet18", "mobilenet_v3_small"]),
              default="lenet5", show_default=True, help="Teacher network (see qkd train-teacher --help).")
@click.option("--teacher-epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Training epochs of the teacher.")
@click.option("--teacher-lr", type=float, default=1e-3, show_default=True, help="Adam learning rate of the teacher.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="Softmax temperature T of the distillation term.")
@click.option("--alpha", type=click.FloatRange(min=0), default=0.9, show_default=True,
              help="Weight of the distillation term.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Student seeds (comma-separated).")
@data_options
@train_options(epochs=10, lr=1e-2, single_run=False)
def compare_cmd(arch, qubits, layers, reducer, encoding, rotation, ansatz, device, teacher_arch, teacher_epochs,
                teacher_lr, temperature, alpha, seeds, **o):
    """Train a teacher once, then baseline and distilled students for every seed; print mean +- std.

    Writes OUT/NAME/ (default NAME: compare-<dataset>-<time>) with one run folder per model and
    summary.json / summary.md. --epochs, --lr and --batch-size are the students'.
    """
    from qkd_pl.experiments.demo import run_comparison

    data, train = _data_config(o), _train_config(o)
    teacher = RunConfig(kind="teacher", data=data, teacher=TeacherConfig(teacher_arch),
                        train=TrainConfig(epochs=teacher_epochs, batch_size=o["batch_size"], lr=teacher_lr, seed=0))
    student = RunConfig(kind="student", data=data, train=train,
                        student=StudentConfig(arch=arch, qubits=qubits, layers=layers, reducer=reducer,
                                              encoding=encoding, rotation=rotation, ansatz=ansatz, device=device),
                        distill=DistillConfig(temperature=temperature, alpha=alpha))
    name = o["name"] or time.strftime(f"compare-{data.dataset}-%Y%m%d-%H%M%S")
    _print_summary(run_comparison(teacher, student, _seed_list(seeds), Path(o["out"]) / name, o["data_dir"],
                                  progress=not o["quiet"]))


@cli.command("draw")
@student_options
@click.option("--run", "run", default=None, type=click.Path(), help="Draw this saved student's circuit instead "
              "(its configuration; options above are then ignored).")
@click.option("--expand", is_flag=True, help="Show the gates the device runs (templates decomposed).")
@click.option("--png", default=None, metavar="FILE", help="Also save the drawing as a PNG.")
def draw_cmd(arch, qubits, layers, reducer, encoding, rotation, ansatz, device, run, expand, png):
    """Print a student's circuit (encoding, ansatz, measurements) as text, optionally save a PNG."""
    from qkd_pl.experiments.draw import draw_png, draw_text

    if run:
        from qkd_pl.experiments.train import checkpoint_path
        from qkd_pl.training import load_checkpoint

        cfg = RunConfig.from_dict(load_checkpoint(checkpoint_path(run))["config"])
        if cfg.kind != "student":
            raise QkdError(f"{run} is a {cfg.kind} run; qkd draw draws quantum students")
        student = cfg.student
    else:
        student = StudentConfig(arch=arch, qubits=qubits, layers=layers, reducer=reducer, encoding=encoding,
                                rotation=rotation, ansatz=ansatz)
    click.echo(draw_text(student, expand))
    if png:
        click.echo(f"saved {draw_png(student, png, expand)}")


@cli.command("backends")
@click.option("--no-measure", is_flag=True, help="List capabilities only; skip the speed measurement (~30 s).")
@click.option("--json", "as_json", default=None, metavar="FILE", help="Also write the table as JSON.")
def backends_cmd(no_measure, as_json):
    """List the devices --device accepts, what each supports here, and their measured speed."""
    from qkd_pl.experiments.backends_report import backends_table, format_backends

    rows = backends_table(measure_speed=not no_measure)
    click.echo(format_backends(rows))
    if as_json:
        from qkd_pl.training import atomic_write_json

        atomic_write_json(as_json, rows)


@cli.command("bench")
@student_options(device=False)
@click.option("--devices", default=None, metavar="LIST",
              help="Comma-separated devices to time. Default: every exact simulator installed here. Shot-based "
                   "ones (qiskit.aer, ibm:fake_manila) may be named; they are timed on inference only.")
@click.option("--batch-size", "batches", default="256", show_default=True, metavar="LIST",
              help="Batch size(s) to time, comma-separated, e.g. 32,256,1024.")
@click.option("--dataset", type=click.Choice(["digits", "mnist", "fashion-mnist", "cifar10"]), default="mnist",
              show_default=True, help="Sets the input shape (random images of that shape are timed; no data is read).")
@click.option("--budget", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds per measurement at most; slower devices are timed on fewer samples (shown in the table).")
@click.option("--json", "as_json", default=None, metavar="FILE", help="Also write the rows as JSON.")
def bench_cmd(arch, qubits, layers, reducer, encoding, rotation, ansatz, devices, batches, dataset, budget, as_json):
    """Samples/s of one student (same options as train-student) on each device, to pick a --device.

    Times a training step (forward, cross-entropy, backward, Adam) and inference, median of
    several repetitions after a warm-up, on random inputs of the dataset's shape.
    """
    from qkd_pl.experiments.bench import bench_table, default_devices, format_bench

    cfg = StudentConfig(arch=arch, qubits=qubits, layers=layers, reducer=reducer, encoding=encoding,
                        rotation=rotation, ansatz=ansatz)
    names = [d.strip() for d in devices.split(",") if d.strip()] if devices else default_devices()
    rows = bench_table(cfg, names, _int_list(batches, "--batch-size", minimum=1), dataset, budget_s=budget)
    click.echo(format_bench(rows))
    if as_json:
        from qkd_pl.training import atomic_write_json

        atomic_write_json(as_json, rows)


def grid_run_options(f):
    """How a grid's cells run: shared by qkd grid and qkd reproduce."""
    for option in reversed([
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Cells run at once (processes, or Ray tasks), torch threads split between them; on 2 "
                          "cores, 2 at most. Numbers can differ in the last digits between worker counts."),
        click.option("--executor", type=click.Choice(["processes", "ray"]), default="processes", show_default=True,
                     help="processes: this machine. ray: the Ray cluster at $RAY_ADDRESS, else a local one "
                          "(pip install 'qkd-pl[ray]')."),
        click.option("--data-dir", default=None, metavar="DIR", help="Where the datasets live."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]):
        f = option(f)
    return f


@cli.command("grid")
@click.argument("config", type=click.Path())
@click.option("--out", required=True, metavar="DIR", help="Grid folder: runs/, results.csv, results.json, grid.json.")
@grid_run_options
@click.option("--report/--no-report", default=True, show_default=True, help="Write report.md when done.")
def grid_cmd(config, out, workers, executor, data_dir, report, quiet):
    """Run every cell of a TOML experiment grid; finished cells are skipped, so a killed grid resumes.

    The TOML ranges over datasets, classes, qubits, students, reducers, encodings, ansatzes,
    classical controls, teachers and seeds (see qkd_pl/experiments/grid.py for the keys).
    """
    from qkd_pl.experiments.grid import load_spec, run_grid
    from qkd_pl.experiments.report import write_report

    rows = run_grid(load_spec(config), out, workers, executor, data_dir, progress=not quiet)
    click.echo(f"{len(rows)} runs; results.csv and results.json in {out}")
    if report:
        click.echo(f"report: {write_report(out)}")


@cli.command("report")
@click.argument("folder", type=click.Path())
@click.option("--title", default=None, help="Report title.")
def report_cmd(folder, title):
    """Markdown report with plots from a grid folder's results.json: mean +- std over seeds, the
    distillation gain with a 95 % interval, the quantum layer against its classical control."""
    from qkd_pl.experiments.report import write_report

    click.echo(f"report: {write_report(folder, title)}")


@cli.command("reproduce")
@click.argument("protocol", type=click.Choice(["v1", "v2"]))
@click.option("--out", required=True, metavar="DIR", help="Grid folder for the runs, results and report.")
@click.option("--quick", is_flag=True, help="A tiny version (digits, few images, 1-2 epochs) that checks the path.")
@click.option("--datasets", default=None, metavar="LIST",
              help="Restrict the datasets, e.g. mnist,fashion-mnist (v2 also has cifar10, whose files must be "
                   "present).")
@grid_run_options
def reproduce_cmd(protocol, out, quick, datasets, workers, executor, data_dir, quiet):
    """Rerun the paper's v1 (notebooks) or v2 (Fig. 12) protocol with 3 seeds and a validation split;
    the report sets our numbers beside the published ones."""
    from qkd_pl.experiments.reproduce import reproduce

    names = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    click.echo(f"report: {reproduce(protocol, out, quick, names, workers, executor, data_dir, not quiet)}")


def main() -> None:
    import warnings

    # Deprecation notices from qiskit/pennylane plugins are for their developers, not our users.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    show = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, QkdWarning):
            click.echo(f"Warning: {message}", err=True)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line
    cli()


if __name__ == "__main__":
    main()
