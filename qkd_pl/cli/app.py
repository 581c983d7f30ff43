"""qkd: the command-line front end of qkd-pl (installed as ``qkd``; ``python cli.py`` in a checkout).

Every command builds the same dataclasses (``qkd_pl.config``) that scripts use and hands
them to ``qkd_pl.experiments``. Mistakes the user can fix end with one line on stderr and
exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
import warnings
from pathlib import Path

import click

from qkd_pl.cli.options import RegistryChoice, config_options, distill_from_options, from_options, paper_kd_option
from qkd_pl.config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig
from qkd_pl.errors import QkdError, QkdInterrupted, QkdWarning, one_line_warnings
from qkd_pl import __version__


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


def data_options(f=None, *, teacher: bool = False):
    """Options that pick the images (DataConfig), and where their files are; shared by every command that
    trains (--without-pool on a teacher's only)."""
    if f is None:
        return functools.partial(data_options, teacher=teacher)
    f = click.option("--data-dir", default=None, metavar="DIR",
                     help="Where the datasets live. Default: $QKD_DATA_DIR, else the user cache folder.")(f)
    return config_options(DataConfig, "data", exclude=() if teacher else ("without_pool",))(f)


TORCH_DEVICE = click.option(
    "--torch-device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]",
    help="Where the classical networks run. auto: teachers and teacher logits on CUDA when torch sees it, students "
         "on the CPU. cuda[:N]: teachers there, and students too when their circuit simulates in torch (qkd.fused, "
         "qkd.fused32; a student on another device is refused). cpu: everything on the CPU.")


def train_options(single_run: bool = True, **defaults):
    """Optimizer options (TrainConfig; ``defaults`` where a command's preset differs), for a
    single run its seed and --resume (compare has --seeds instead)."""

    def deco(f):
        opts = [
            click.option("--out", default="runs", show_default=True, metavar="DIR",
                         help="Parent folder of run folders."),
            click.option("--name", default=None,
                         help="Run folder name. Default: role-dataset-<hash of the configuration>." if single_run
                         else "Folder name under --out. Default: compare-<dataset>-<time>."),
            click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines."),
            TORCH_DEVICE,
        ]
        if single_run:
            opts[:0] = [
                click.option("--resume", is_flag=True,
                             help="Continue the run folder's last checkpoint (same configuration; --epochs may grow)."),
                click.option("--overwrite", is_flag=True,
                             help="Replace the run folder if it already holds a run (its files are deleted)."),
            ]
        f = functools.reduce(lambda acc, opt: opt(acc), reversed(opts), f)
        exclude = () if single_run else ("seed",)
        return config_options(TrainConfig, "train", exclude=exclude, defaults=defaults)(f)
    return deco


def _print_result(result) -> None:
    click.echo(f"test accuracy {result.test.accuracy:.4f} (n={result.test.n}); "
               f"parameters classical {result.parameters['classical']:,} / quantum {result.parameters['quantum']:,}; "
               f"{result.seconds:.1f} s; run folder {result.run_dir}")


@click.group(cls=QkdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="qkd")
@click.option("--compile", "compile_mode", type=click.Choice(["trace", "inductor", "off"]), default=None,
              help="How a student's circuit on qkd.fused runs: trace (the default: its QNode traced once per "
                   "batch shape into a torch graph that later steps call directly), inductor (that graph also "
                   "rewritten into real arithmetic and compiled by torch.compile once a batch shape has trained "
                   "for 50 steps: faster steps for a one-off compilation per shape that only long runs earn "
                   "back; the docs' Performance page), off (every call through the QNode). Sets QKD_COMPILE, which "
                   "also works on its own (and reaches grid workers).")
@click.option("--compile-step", "step_mode", type=click.Choice(["auto", "on", "off"]), default=None,
              help="Whether a student's whole training step (forward, loss, backward, optimizer) on qkd.fused is "
                   "compiled by inductor as one function: auto (the default: a batch shape is compiled when the "
                   "run plans enough steps of it to pay for a first compilation, 16-43 s; decided from the plan "
                   "alone, so a command always trains the same way), on "
                   "(every batch shape, from its fourth step), off. A compiled step is used only after it "
                   "agreed with the eager step on a batch. Sets QKD_COMPILE_STEP (the docs' Performance page).")
def cli(compile_mode, step_mode):
    """Knowledge distillation from classical CNN teachers into quantum neural network students.

    Typical use: `qkd train-teacher` once, then `qkd train-student` without and with
    `--teacher RUN_FOLDER`, and compare their test_metrics.json; `qkd demo` does all three on
    scikit-learn's digits in a few minutes.
    """
    if compile_mode is not None:
        os.environ["QKD_COMPILE"] = compile_mode
    elif os.environ.get("QKD_COMPILE"):
        from qkd_pl.circuits.compiled import mode

        mode()  # a mistyped QKD_COMPILE: one line and exit status 2, before any work
    if step_mode is not None:
        os.environ["QKD_COMPILE_STEP"] = step_mode
    elif os.environ.get("QKD_COMPILE_STEP"):
        from qkd_pl.training.compiled_step import step_mode as check_step_mode

        check_step_mode()


@cli.command("train-teacher")
@config_options(TeacherConfig, "teacher")
@data_options(teacher=True)
@train_options(lr=1e-3)
def train_teacher_cmd(**o):
    """Train a classical teacher, keep its best-on-validation weights, test it once."""
    from qkd_pl.experiments import train_teacher

    cfg = RunConfig(kind="teacher", data=from_options(DataConfig, "data", o), train=from_options(TrainConfig, "train", o),
                    teacher=from_options(TeacherConfig, "teacher", o))
    _print_result(train_teacher(cfg, o["out"], o["name"], o["resume"], o["data_dir"], progress=not o["quiet"],
                                overwrite=o["overwrite"], torch_device=o["torch_device"]))


DEVICE_HELP = next(f for f in dataclasses.fields(StudentConfig) if f.name == "device").metadata["help"]


def student_options(f=None, *, device: bool = True):
    """The student's options (StudentConfig); ``device=False`` for commands that choose devices their own way."""
    if f is None:
        return functools.partial(student_options, device=device)
    return config_options(StudentConfig, "student", exclude=("control",) if device else ("control", "device"))(f)


@cli.command("train-student")
@student_options
@config_options(StudentConfig, "student", only=("control",))
@config_options(DistillConfig, "distill")
@paper_kd_option
@data_options
@train_options()
def train_student_cmd(**o):
    """Train a quantum student: a baseline on labels, or distilled from --teacher."""
    from qkd_pl.experiments import train_student

    cfg = RunConfig(kind="student", data=from_options(DataConfig, "data", o), train=from_options(TrainConfig, "train", o),
                    student=from_options(StudentConfig, "student", o), distill=distill_from_options(o))
    _print_result(train_student(cfg, o["out"], o["name"], o["resume"], o["data_dir"], progress=not o["quiet"],
                                overwrite=o["overwrite"], torch_device=o["torch_device"]))


@cli.command("evaluate")
@click.argument("run", type=click.Path())
@click.option("--device", default=None, help="Evaluate a student on this device instead of its training device: "
              + DEVICE_HELP)
@click.option("--shots", type=click.IntRange(min=1), default=None,
              help="Shots for shot-based devices (default 1024).")
@click.option("--noise", default=None, metavar="FAKE_BACKEND",
              help="With --device qiskit.aer: use this IBM fake backend's noise model, e.g. fake_brisbane.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate only the first N test images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Shot-based devices: images per batch, each batch one primitive job (split further only where "
                   "a job's limits require). Default 1000 (16 with --per-circuit). A resumed evaluation keeps the "
                   "batch size it started with.")
@click.option("--per-circuit", is_flag=True,
              help="Shot-based devices: pennylane-qiskit's own path, one transpilation and one job per image (the "
                   "reference the batched path is tested against; slow).")
@click.option("--mode", type=click.Choice(["batch", "session", "job"]), default="batch", show_default=True,
              help="IBM Quantum hardware: submit the jobs in a Batch, a Session (not on the Open plan), or each alone.")
@click.option("--yes", is_flag=True,
              help="IBM Quantum hardware: submit the printed plan without asking (required without a terminal).")
@click.option("--new-evaluation", is_flag=True,
              help="Begin another job ledger beside one that records other work (another checkpoint, batch size, "
                   "backend, shots or test images): its jobs are submitted anew. Without it such a rerun is refused.")
@click.option("--resubmit-lost", is_flag=True,
              help="Submit again the images of jobs IBM Quantum no longer knows (marked lost in the ledger); "
                   "without it the evaluation stops at the first lost job.")
@click.option("--mitigation", type=click.Choice(["none", "readout", "zne"]), default="none", show_default=True,
              help="noisy:<fake backend>: readout corrects the read probabilities by the inverse of each qubit's "
                   "readout matrix (the device's calibration), so what remains of a drop is the gates'; zne does that "
                   "at noise factors 1, 3 and 5 (each two-qubit gate folded: G, G^-1 G, ...) and extrapolates every "
                   "readout to zero noise: 3 circuits per image. ibm:<backend>: qiskit-ibm-runtime's TREX (readout) "
                   "and TREX + ZNE (zne) on the Estimator (readouts z, zz); for probabilities (the Sampler) readout "
                   "corrects the counts by the backend's reported calibration. The plan shows what it adds. Written "
                   "to evaluation-<device>-<mitigation>.json; zne's raw per-factor readouts to "
                   "evaluation-<device>-zne.npz.")
@click.option("--extrapolator", type=click.Choice(["exponential", "linear", "richardson"]), default=None,
              help="--mitigation zne: the fit to zero noise: exponential (default; a <Z> word decays so under "
                   "depolarizing noise; linear where the values change sign), linear (least squares), or richardson "
                   "(the quadratic through all three: the most variance).")
@click.option("--recalibrate", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refit the student's linear head on this device's readouts of the first N validation images "
                   "(never test images) before testing: noise shrinks and shifts the readouts, and the head learns "
                   "them as they come out (noisy: and exact devices). Written to evaluation-<device>-recal<N>.json.")
@click.option("--optimization-level", type=click.IntRange(0, 3), default=None, metavar="0-3",
              help="noisy:, qiskit.aer and ibm: devices: the transpiler's preset level (default 1, as pennylane-qiskit). "
                   "From 2 the layout weighs the qubits' calibrated errors; qkd draw --device shows what it changes.")
@click.option("--data-dir", default=None, metavar="DIR", help="Where the datasets live (as for training).")
def evaluate_cmd(run, device, shots, noise, limit, batch_size, per_circuit, mode, yes, new_evaluation, resubmit_lost,
                 mitigation, extrapolator, recalibrate, optimization_level, data_dir):
    """Test a saved run (folder or .pt) on its test split; writes evaluation-<device>.json beside it.

    On shot-based devices each batch of images is one job; every job id is written to
    evaluation-<device>.jobs.json as it is submitted, so the same command, run again after a kill
    or a failure (from any folder, the run spelled any way), continues from the finished batches
    and retrieves submitted jobs by id instead of submitting them again. A rerun of other work
    beside that ledger (another checkpoint, --batch-size, backend, --shots or test images) is
    refused unless --new-evaluation. Before submitting to IBM Quantum hardware it prints the plan
    (jobs to submit and to retrieve, circuits, shots, estimated QPU seconds) and asks.
    """
    import sys

    from qkd_pl.experiments import evaluate_run

    ask = (lambda q: click.confirm(q, default=False, err=True)) if sys.stdin.isatty() else None
    r = evaluate_run(run, device, shots, noise, data_dir, limit, per_circuit=per_circuit, mode=mode,
                     batch_size=batch_size, yes=yes, ask=ask, new_evaluation=new_evaluation,
                     resubmit_lost=resubmit_lost, mitigation=mitigation, optimization_level=optimization_level,
                     extrapolator=extrapolator, recalibrate=recalibrate)
    jobs = f"; {r.jobs_submitted} job(s) submitted" if r.jobs_submitted is not None else ""
    jobs += f", {r.jobs_retrieved} retrieved by id" if r.jobs_retrieved else ""
    mitigated = f", {r.mitigation} mitigation" if r.mitigation != "none" else ""
    if r.zne:
        mitigated += f" ({r.zne['extrapolator']} extrapolation; " + (
            f"raw readouts in {r.zne['values']})" if r.zne["values"] else f"{r.zne['values_missing']})")
    mitigated += f", head recalibrated on {r.recalibrated['images']} validation images" if r.recalibrated else ""
    click.echo(f"test accuracy {r.test_accuracy:.4f} (n={r.n_test}) on {r.evaluated_on}{mitigated} "
               f"(trained on {r.trained_on}); {r.seconds:.1f} s{jobs}")


@cli.command("evaluations")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--against", default=None, metavar="NAME",
              help="Pair every evaluation with this one (its name in the table, e.g. qkd.fused): the difference in "
                   "points over the same test images, with a 95 % interval.")
def evaluations_cmd(paths, against):
    """A run's evaluations side by side (run folders or evaluation-*.json files), as a markdown table.

    Example: qkd evaluate RUN --device qkd.fused --limit 1000, then qkd evaluate RUN --device
    noisy:fake_brisbane --limit 1000 [--mitigation zne], then qkd evaluations RUN --against qkd.fused.
    """
    from pathlib import Path

    from qkd_pl.experiments.tools.evaluations import evaluations_table, read_evaluations

    click.echo(evaluations_table(read_evaluations([Path(p) for p in paths]), against))


@cli.command("finetune")
@click.argument("run", type=click.Path())
@click.option("--noise", required=True, metavar="FAKE_BACKEND",
              help="The IBM fake backend whose transpiled circuit and noise the student learns under, e.g. "
                   "fake_brisbane (trained on noisy:FAKE_BACKEND: exact density matrices, backprop).")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--shots", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Shots of the test evaluations on the noisy device, before and after.")
@click.option("--out", default=None, metavar="DIR", help="Parent of the fine-tuned run folder (default: RUN itself).")
@click.option("--name", default=None, help="The fine-tuned run folder's name (default finetune-FAKE_BACKEND).")
@click.option("--resume", is_flag=True, help="Continue an interrupted fine-tuning.")
@click.option("--overwrite", is_flag=True, help="Replace a finished fine-tuning.")
@click.option("--data-dir", default=None, metavar="DIR", help="Where the datasets live (as for training).")
@click.option("--no-control", is_flag=True,
              help="Skip the control: the same fine-tuning on the exact simulator, tested on the noisy device, which "
                   "separates what noise-aware training recovers from what more epochs alone give.")
@click.option("--per-class", type=click.IntRange(min=1), default=None, metavar="N",
              help="Fine-tune on N images of each class of the training split (its train and validation parts), not "
                   "all of it: an 8-qubit noisy training image costs about a third of a second on one core.")
@click.option("--test-images", type=click.IntRange(min=1), default=None, metavar="N",
              help="Test on the first N test images (default all), every before/after evaluation the same ones.")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
def finetune_cmd(run, noise, epochs, lr, batch_size, shots, out, name, resume, overwrite, data_dir, no_control,
                 per_class, test_images, quiet):
    """Continue training a student's circuit and head under a device's noise (its reduction stays as it is).

    Selects on validation accuracy on the noisy device (the starting weights are epoch 0) and
    reports the test accuracy exactly, on the noisy device before, and after (finetune.json).
    """
    from qkd_pl.experiments.single.finetune import finetune_run

    r = finetune_run(run, noise, out, name, epochs, lr, batch_size, shots, data_dir, progress=not quiet,
                     resume=resume, overwrite=overwrite, control=not no_control, per_class=per_class,
                     test_images=test_images)
    recovered = f"; {r.recovered:.0%} of the drop recovered" if r.recovered is not None else ""
    control = (f"; the same fine-tuning without noise: {r.control_noisy_after:.4f} on {r.device}"
               if r.control_noisy_after is not None else "")
    click.echo(f"test accuracy on {r.n_test} test images: the starting weights {r.exact_accuracy:.4f} on the exact "
               f"simulator and {r.noisy_before:.4f} on {r.device}; the fine-tuned weights {r.noisy_after:.4f} on "
               f"{r.device} (best epoch {r.best_epoch}; 0: none beat the start){recovered}{control}; {r.run}")


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


def _print_summary(comparison) -> None:
    from qkd_pl.experiments.paper.demo import format_table

    click.echo("\n" + format_table(comparison))
    click.echo(f"\nrun folders, report.md, summary.json and summary.md in {comparison.run_folder}")


@cli.command("demo")
@click.option("--seeds", default="0,1,2,3,4", show_default=True, help="Student seeds (comma-separated).")
@config_options(StudentConfig, "student", only=("qubits", "layers"), help_prefix="Student: ")
@config_options(TrainConfig, "teacher_train", only=("epochs",), flag_prefix="teacher-", defaults={"epochs": 10},
                help_prefix="The LeNet5 teacher: ")
@config_options(TrainConfig, "student_train", only=("epochs",), flag_prefix="student-", defaults={"epochs": 15},
                help_prefix="Each student: ")
@click.option("--out", default="runs", show_default=True, help="Parent folder; the demo writes runs/demo-<time>/.")
@click.option("--quiet", is_flag=True, help="Only the final table.")
@click.option("--quick", is_flag=True,
              help="Seeds 0,1, 2 teacher and 3 student epochs (unless given): checks that everything runs, not a result.")
@TORCH_DEVICE
def demo_cmd(seeds, out, quiet, quick, torch_device, **o):
    """Distillation where it pays, on digits, in one table (about a minute on 2 cores).

    A baseline student learns from 20 labelled images per class; the distilled one also learns 50
    unlabelled images per class through a LeNet5 teacher that never saw them (trained on the rest
    of the train part). Both are tested on the whole test split; the gain is paired by seed, with
    its 95 % interval."""
    from qkd_pl.experiments.paper.demo import run_demo

    if quick:  # the quick sizes, except where an option was given
        ctx = click.get_current_context()
        given = {name for name in ("seeds", "teacher_train__epochs", "student_train__epochs")
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
        quick_sizes = {"teacher_train__epochs": 2, "student_train__epochs": 3}
        o |= {k: v for k, v in quick_sizes.items() if k not in given}
        seeds = seeds if "seeds" in given else "0,1"
    _print_summary(run_demo(out, _seed_list(seeds), o["student__qubits"], o["student__layers"],
                            o["teacher_train__epochs"], o["student_train__epochs"], progress=not quiet,
                            torch_device=torch_device))


@cli.command("compare")
@student_options
@config_options(TeacherConfig, "teacher", only=("arch",), help_prefix="Teacher network (trained here): ")
@config_options(TrainConfig, "teacher_train", only=("epochs", "lr"), flag_prefix="teacher-", defaults={"lr": 1e-3},
                help_prefix="Teacher: ")
@config_options(DistillConfig, "distill", exclude=("teacher",))
@paper_kd_option
@click.option("--seeds", default="0,1,2", show_default=True, help="Student seeds (comma-separated).")
@data_options
@train_options(single_run=False)
def compare_cmd(seeds, **o):
    """Train a teacher once, then baseline and distilled students for every seed; print mean +- std.

    With --transfer N the teacher is trained on the train part less the distilled students' pool
    of N unlabelled images per class (it never sees them); without, on the students' images.

    Writes OUT/NAME/ (default NAME: compare-<dataset>-<time>) with one run folder per model and
    summary.json / summary.md. --epochs, --lr and --batch-size are the students'.
    """
    from qkd_pl.experiments.paper.demo import run_comparison

    data, train = from_options(DataConfig, "data", o), from_options(TrainConfig, "train", o)
    teacher = RunConfig(kind="teacher", data=data, teacher=from_options(TeacherConfig, "teacher", o),
                        train=from_options(TrainConfig, "teacher_train", o, batch_size=train.batch_size))
    student = RunConfig(kind="student", data=data, train=train, student=from_options(StudentConfig, "student", o),
                        distill=distill_from_options(o))
    name = o["name"] or time.strftime(f"compare-{data.dataset}-%Y%m%d-%H%M%S")
    _print_summary(run_comparison(teacher, student, _seed_list(seeds), Path(o["out"]) / name, o["data_dir"],
                                  progress=not o["quiet"], torch_device=o["torch_device"]))


@cli.command("draw")
@student_options(device=False)
@click.option("--run", "run", default=None, type=click.Path(), help="Draw this saved student's circuit instead "
              "(its configuration; options above are then ignored).")
@click.option("--expand", is_flag=True, help="Show the gates the device runs (templates decomposed).")
@click.option("--png", default=None, metavar="FILE", help="Also save the drawing as a PNG.")
@click.option("--device", "target", default=None, metavar="ibm:BACKEND",
              help="Also say what the circuit costs on an IBM device (ibm:fake_brisbane, noisy:fake_torino, or a real "
                   "ibm:<backend> with your credentials; nothing is submitted): its transpiled depth, two-qubit "
                   "gates and estimated fidelity, with a warning when its outputs would be mostly noise.")
@click.option("--optimization-level", type=click.IntRange(0, 3), default=None, metavar="0-3",
              help="With --device: the transpiler's preset level (default 1; as qkd evaluate --optimization-level).")
def draw_cmd(run, expand, png, target, optimization_level, **o):
    """Print a student's circuit (encoding, ansatz, measurements) as text, optionally save a PNG."""
    from qkd_pl.experiments.single.hardware import hardware_target, student_cost, warn_if_noise
    from qkd_pl.experiments.tools.draw import draw_png, draw_text

    if run:
        from qkd_pl.distill.saved import checkpoint_path, run_config
        from qkd_pl.training.checkpoint import read_run_checkpoint

        cfg = run_config(read_run_checkpoint(checkpoint_path(run))[0], checkpoint_path(run))
        if cfg.kind != "student":
            raise QkdError(f"{run} is a {cfg.kind} run; qkd draw draws quantum students")
        student = cfg.student
    else:
        student = from_options(StudentConfig, "student", o)
    if optimization_level is not None and not target:
        raise QkdError("--optimization-level says how qkd draw --device transpiles; add --device ibm:<backend>")
    backend = hardware_target(target, student.qubits) if target else None  # refused before any drawing
    click.echo(draw_text(student, expand))
    if png:
        click.echo(f"saved {draw_png(student, png, expand)}")
    if backend is not None:
        cost = student_cost(student, *backend, 1 if optimization_level is None else optimization_level)
        click.echo(f"circuit {cost.describe()}")
        if cost.seconds_per_shot > 0 and student.readout == "probs":  # the Sampler: its readout correction is ours
            click.echo(f"QPU time for 1,000 images at 1,024 shots on the Sampler (estimated from the reported gate "
                       f"durations and a 250 us repetition delay, without the service's overheads): about "
                       f"{cost.qpu_seconds(1000, 1024):,.0f} s, --mitigation readout included (corrected here)")
        elif cost.seconds_per_shot > 0:  # a backend that reports gate durations
            seconds = {m: cost.qpu_seconds(1000, 1024, m) for m in ("none", "readout", "zne")}
            click.echo(f"QPU time for 1,000 images at 1,024 shots on the Estimator (estimated from the reported gate "
                       f"durations and a 250 us repetition delay, without the service's overheads): about "
                       f"{seconds['none']:,.0f} s raw, {seconds['readout']:,.0f} s with --mitigation readout, "
                       f"{seconds['zne']:,.0f} s with --mitigation zne")
        warn_if_noise(cost, student)


@cli.command("backends")
@click.option("--no-measure", is_flag=True, help="List capabilities only; skip the speed measurement.")
@click.option("--json", "as_json", default=None, metavar="FILE", help="Also write the table as JSON.")
def backends_cmd(no_measure, as_json):
    """List the devices --device accepts, what each supports here, and their measured speed."""
    from qkd_pl.experiments.tools.backends_report import backends_table, format_backends

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
@click.option("--dataset", type=RegistryChoice("dataset"), default="mnist",
              show_default=True, help="Sets the input shape (random images of that shape are timed; no data is read).")
@click.option("--budget", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds per measurement at most; slower devices are timed on fewer samples (shown in the table).")
@click.option("--json", "as_json", default=None, metavar="FILE", help="Also write the rows as JSON.")
def bench_cmd(devices, batches, dataset, budget, as_json, **o):
    """Samples/s of one student (same options as train-student) on each device, to pick a --device.

    Times a training step (forward, cross-entropy, backward, Adam) and inference, median of
    several repetitions after a warm-up, on random inputs of the dataset's shape.
    """
    from qkd_pl.experiments.tools.bench import bench_table, default_devices, format_bench
    from qkd_pl.registry import is_import_path

    cfg = from_options(StudentConfig, "student", o)
    if is_import_path(cfg.arch):
        raise QkdError(f"--student {cfg.arch} is your own module, which no --device reaches: qkd bench compares "
                       f"qkd-pl's circuit students across devices (time your own with the Distiller on your data)")
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
                     help="Cells run at once as processes, torch threads split between them; on 2 cores, 2 at most. "
                          "Numbers can differ in the last digits between worker counts. With --executor ray the "
                          "cluster's CPUs decide instead."),
        click.option("--executor", type=click.Choice(["processes", "ray"]), default="processes", show_default=True,
                     help="processes: this machine. ray: the Ray cluster at $RAY_ADDRESS, else a local one "
                          "(pip install 'qkd-pl[ray]')."),
        click.option("--data-dir", default=None, metavar="DIR", help="Where the datasets live."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
        click.option("--stack/--no-stack", default=True, show_default=True,
                     help="Students of one shape (seeds, and settings that change only the loss) train together as "
                          "one stacked model, each with its own run folder; results agree with --no-stack to float "
                          "rounding. Where it pays: 2^qubits x batch up to 8192 (8 qubits at batch 32, 4 at 256) and "
                          "pixels x 2^qubits of FC weights up to 786432 (8 qubits on CIFAR-10)."),
        TORCH_DEVICE,
    ]):
        f = option(f)
    return f


def keys_option(module: str, marker: str):
    """``--keys``: print the file layout a command reads, from the docstring of the module that reads
    it (an installed user has no checkout to open; the text is the one the module documents)."""

    def show(ctx, _param, value):
        if not value or ctx.resilient_parsing:
            return
        import ast

        import qkd_pl

        # read from the source, not imported: no torch to wait for, and docstrings survive python -OO
        source = Path(qkd_pl.__file__).parent.joinpath(*module.split(".")[1:]).with_suffix(".py")
        doc = ast.get_docstring(ast.parse(source.read_text())) or ""
        click.echo(marker + doc.split(marker, 1)[1] if marker in doc else doc)
        ctx.exit(0)

    return click.option("--keys", is_flag=True, is_eager=True, expose_value=False, callback=show,
                        help="Print the TOML file's keys (its layout, tables in shorthand) and exit.")


@cli.command("grid")
@click.argument("config", type=click.Path())
@click.option("--out", required=True, metavar="DIR", help="Grid folder: runs/, results.csv, results.json, grid.json.")
@grid_run_options
@click.option("--report/--no-report", default=True, show_default=True, help="Write report.md when done.")
@keys_option("qkd_pl.experiments.sweeps.grid", "TOML layout")
def grid_cmd(config, out, workers, executor, data_dir, report, quiet, torch_device, stack):
    """Run every cell of a TOML experiment grid; finished cells are skipped, so a killed grid resumes.

    The TOML ranges over datasets, classes, qubits, students, reducers, encodings, ansatzes,
    classical controls, teachers and seeds (`qkd grid --keys` prints every key).
    """
    from qkd_pl.experiments.sweeps.grid import load_spec, run_grid
    from qkd_pl.experiments.sweeps.report import write_report

    rows = run_grid(load_spec(config), out, workers, executor, data_dir, progress=not quiet, torch_device=torch_device,
                    stack=stack)
    click.echo(f"{len(rows)} runs; results.csv and results.json in {out}")
    if report:
        click.echo(f"report: {write_report(out)}")


@cli.command("tune")
@click.argument("study", type=click.Path())
@click.option("--out", required=True, metavar="DIR",
              help="Study folder: study.db, trials/, final/, trials.csv, history.png, best.json, report.md.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Complete or pruned trials to reach (default: the study file's `trials`).")
@click.option("--storage", default=None, metavar="URL",
              help="An Optuna database URL (postgresql://..., so several machines search one study). "
                   "Default: sqlite:///DIR/study.db.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes searching the study at once on this machine.")
@click.option("--data-dir", default=None, metavar="DIR", help="Where the datasets live (default $QKD_DATA_DIR).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@keys_option("qkd_pl.experiments.sweeps.tune", "TOML layout")
def tune_cmd(study, out, trials, storage, workers, data_dir, quiet):
    """Search a student's hyperparameters on the validation split with Optuna (TPE, median
    pruning), then train and test the best configuration with the report seeds.

    STUDY is a TOML file: a student run ([data], [student], [train], [distill]), a [space] of
    fields by dotted path, tuning seeds and report seeds (`qkd tune --keys` prints every key).
    Started again, it continues the same study: finished
    trials are kept and a killed trial is tried again. A study file changed in what a trial
    measures (base run, space, seeds) is refused: its old trials would be counted and reported.
    """
    from qkd_pl.experiments.sweeps.tune import load_tune_spec, tune

    spec = load_tune_spec(study)
    if trials is not None:
        spec = dataclasses.replace(spec, trials=trials)
    result = tune(spec, out, storage, workers, data_dir, progress=not quiet)
    click.echo(f"best mean validation accuracy {result.best_value:.4f} with {result.best_params}")
    for r in result.final:
        click.echo(f"report seed {r['seed']}: test accuracy {r['test_accuracy']:.4f}")
    click.echo(f"report: {Path(out) / 'report.md'}")


ALSO = click.option("--also", multiple=True, metavar="FILE",
                    help="Another grid's results.json or results.csv (a committed reproduction's table) to report "
                         "beside this folder's runs; may be given several times.")


def _contrast(ctx, param, values):
    out = []
    for text in values:
        key, _, pair = text.partition("=")
        a, _, b = pair.partition(",")
        if not (key and a and b):
            raise click.BadParameter(f"{text!r}: write COLUMN=A,B, e.g. distill.transfer_labels=soft,hard")
        out.append((key, a, b))
    return out


@cli.command("report")
@click.argument("folder", type=click.Path())
@click.option("--title", default=None, help="Report title.")
@ALSO
@click.option("--contrast", multiple=True, metavar="COLUMN=A,B", callback=_contrast,
              help="Add a table of the paired gain of COLUMN = A over COLUMN = B, all else equal, e.g. "
                   "distill.transfer_labels=soft,hard; may be given several times.")
def report_cmd(folder, title, also, contrast):
    """Markdown report with plots from a grid folder's results.json: mean +- std over seeds, the
    distillation gain with a 95 % interval, the quantum layer against its classical control."""
    from qkd_pl.experiments.sweeps.report import write_report

    click.echo(f"report: {write_report(folder, title, also=list(also), contrasts=contrast)}")


@cli.command("reproduce")
@click.argument("protocol", type=click.Choice(["v1", "v1-notebooks", "v2", "kd-study", "noise"]))
@click.option("--out", required=True, metavar="DIR", help="Grid folder for the runs, results and report.")
@click.option("--quick", is_flag=True, help="A tiny version (digits, few images, 1-2 epochs) that checks the path.")
@click.option("--datasets", default=None, metavar="LIST",
              help="Restrict the datasets, e.g. mnist,fashion-mnist (v2 also has cifar10, whose files must be "
                   "present).")
@click.option("--part", type=click.Choice(["all", "pool"]), default="all", show_default=True,
              help="kd-study: pool runs its transfer-set rows alone (teacher saw the pool / never saw it, the "
                   "ceiling, their baselines), about 45 minutes on 2 cores.")
@click.option("--qubits", "only_qubits", default=None, metavar="LIST",
              help="kd-study: only the students with these qubits, e.g. 4. The results and report in --out hold this "
                   "call's rows only: give each part its own --out (finished runs in --out are reused).")
@click.option("--images-8q", type=click.IntRange(min=1), default=1000, show_default=True,
              help="noise: test images per 8-qubit line student and backend (a noisy image takes about 0.1 s on one "
                   "core).")
@click.option("--images-8q-amplitude", type=click.IntRange(min=1), default=100, show_default=True,
              help="noise: test images per 8-qubit amplitude student and backend (about a second an image: its "
                   "circuit routes to 700-800 two-qubit gates).")
@click.option("--check-images", type=click.IntRange(min=0), default=1000, show_default=True,
              help="noise: test images per 4-qubit student and backend also run on Aer (ibm:<backend>) to check the "
                   "emulation; 0: none.")
@grid_run_options
@ALSO
def reproduce_cmd(protocol, out, quick, datasets, workers, executor, data_dir, quiet, torch_device, also, images_8q,
                  images_8q_amplitude, check_images, part, only_qubits, stack):
    """Rerun the paper's v1 (notebooks) or v2 (Fig. 12) protocol with 3 seeds and a validation split;
    the report sets our numbers beside the published ones. v1-notebooks is v1 with the notebooks'
    teachers, trained on the whole class subsets rather than on the students' 150 images per class.
    kd-study is the distillation study (the documentation's results): 50 and 150 labels per class and all the
    data, each objective at its tuned setting, a transfer set, both readouts, the controls; 5 seeds,
    on 2 cores with --workers 2 the whole study takes about 40 minutes, its 4-qubit cells alone about 10
    and its 8-qubit ones about 30 (students stacked where they share a shape; measured 2026-12-04). noise evaluates all-data students of MNIST
    and FashionMNIST (the amplitude and the depth-aware line family, 4 and 8 qubits, labels only and
    distilled) exactly and on fake backends of three IBM generations, the line students also at the
    transpiler's level 2 (qubits chosen by calibration), the distilled ones also with each error
    mitigation and (but the 8-qubit amplitude ones) fine-tuned under each backend's noise (the documentation's noise pages)."""
    names = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    if protocol == "noise":
        from qkd_pl.experiments.paper.noise_study import run_noise_study

        report = run_noise_study(out, quick, names, workers, data_dir, not quiet, images_8q, check_images, torch_device,
                                 images_8q_amplitude)
        click.echo(f"report: {report}")
        return
    from qkd_pl.experiments.paper.reproduce import reproduce

    if (part != "all" or only_qubits) and protocol != "kd-study":
        raise QkdError("--part and --qubits restrict kd-study; the other protocols run whole")
    qubits = _int_list(only_qubits, "--qubits", minimum=1) if only_qubits else None
    report = reproduce(protocol, out, quick, names, workers, executor, data_dir, not quiet, torch_device, list(also),
                       part=part, qubits=qubits, stack=stack)
    click.echo(f"report: {report}")


def main() -> None:
    from qkd_pl.allocator import keep_freed_memory

    one_line_warnings()
    keep_freed_memory()  # a training step's large temporaries reuse pages (allocator.py)
    cli()


if __name__ == "__main__":
    main()
