"""The Distiller: a frozen teacher, an objective and a training configuration, applied to any student.

Why one object: everything qkd-pl trains goes through it (the CLI's students and teachers, grid
cells, tune trials, fine-tuning), so a researcher's own circuit, teacher and data get what the
built-in ones get: the teacher's logits computed once and cached by the images they were
computed on, the transfer set joined in through the teacher only, best-on-validation selection,
atomic checkpoints that resume to the bit, the run folder's files, and one look at the test
split. Its shape follows what Keras (``Distiller(teacher, student, ...)``), torchdistill and
Lightning (``fit`` / ``test`` kept apart) users know.

The run lifecycle, in the order ``fit`` takes it:

1. the data become tensors (``data.py``) and the run folder is opened or refused (``config.json``
   records the settings, the student's class, parameter counts, source digest and structure,
   the teacher's key and digests of the images);
2. the teacher's logits on the training images (and the transfer set's) are computed once;
3. the rows (``training.loop.Rows``) join the transfer set with its masks;
4. the loop trains; ``best.pt`` ends up in the student.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import time
import warnings
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..circuits.accelerate import accelerate
from ..config import TrainConfig, config_differences
from ..data.digest import tensor_digest
from ..errors import QkdError, QkdWarning, first_line
from ..losses import Objective, as_objective
from ..losses.base import FunctionLoss
from ..students.parameters import count_parameters, detect_circuit_parameters
from ..training import Score, accuracy, atomic_write_json, load_checkpoint, predict_logits
from ..training.loop import Rows, fit as train_loop, load_resume_state
from ..training.stacked import Member, NotStackable, fit_stacked, stack_groups, stack_key
from .data import as_images, as_tensors
from .describe import check_fits, class_path, describe_module, source_digest
from .plots import plot_history
from .run_folder import record_session
from .saved import DISTILLER_KIND
from .teacher import FrozenTeacher, freeze
from .teacher_cache import teacher_logits as cached_teacher_logits


@dataclass
class FitResult:
    """A finished ``Distiller.fit``.

    Attributes:
        run_dir: the run folder.
        best: the selected epoch, ``{"epoch", "val_accuracy"}``.
        parameters: ``{"classical", "quantum", "total"}`` trainable parameters of the student.
        history: one row per epoch (``metrics.json``).
        seconds: wall time of this call.
        teacher_train_accuracy: the teacher's accuracy on the training images (None without one).
        stacked_with: how many students (this one included) trained as one stacked model (1: alone).
    """

    run_dir: Path
    best: dict[str, Any]
    parameters: dict[str, int]
    history: list[dict[str, float]]
    seconds: float
    teacher_train_accuracy: float | None = None
    stacked_with: int = 1


@dataclass(frozen=True)
class RunRecord:
    """What a configuration-driven run (``qkd train-student``, grids, tune) records instead of the
    Distiller's own description: the caller has opened the run folder and written config.json.

    Attributes:
        config: the configuration stored in every checkpoint (``RunConfig.to_dict()``).
        meta: the checkpoint's meta (image shape, classes, where it trained).
        cache_data: the data's description in the teacher-logit cache's key (a ``DataConfig``).
        cache_source: what the files are, in that key (``DataBundle.source``).
        transfer_split: the transfer set's name in that key.
        start_best: fine-tuning: the starting weights' ``{"val_accuracy", "epoch": 0}``, already in best.pt.
    """

    config: dict[str, Any]
    meta: dict[str, Any]
    cache_data: Any = None
    cache_source: dict | None = None
    transfer_split: str = "transfer"
    start_best: dict[str, float] | None = None


class Distiller:
    """Trains any student against a frozen teacher (or labels alone) into a run folder.

    Args:
        teacher: an ``nn.Module``, a qkd-pl teacher run folder, a list of these (an ensemble), a
            ``FrozenTeacher``, or None to train on labels alone. It is put in eval mode and its
            parameters stop requiring gradients.
        loss: an objective: ``KD("dkd", temperature=4.0, alpha=0.5, beta=2.0)``, a registered
            name, or any callable ``(student_logits, teacher_logits, labels) -> loss``. Default:
            ``KD("hinton-classic")`` with qkd-pl's default T and alpha (cross-entropy alone
            without a teacher). A function sees every row alike (a transfer row's label is the
            teacher's top class), and config.json records its name and file, not values it closes
            over: resume only with the same function, or write an ``Objective`` whose fields are
            recorded and compared.
        train: epochs, batch size, learning rate, optimizer, schedule and seed.
        transfer_labels: how a transfer set's images teach: ``soft`` (the objective's teacher term),
            ``hard`` (the teacher's top class as a label), or ``true`` (their own labels, which the
            transfer set then carries: the ceiling control, which has no teacher).
        teacher_outputs: ``cached`` (the teacher's logits computed once on the images as they are)
            or ``on-the-fly`` (the teacher called on every batch, on the student's augmented or
            mixed view: function matching, Beyer et al. 2022; pair it with ``train.augment``).
        progress: progress bars and per-epoch lines.
        teacher_device: where the teacher computes its logits (``"cpu"``, ``"cuda"``, a
            ``torch.device``); default the device its parameters are on.
        fast: give the student's plain ``qml.qnn.TorchLayer`` layers the traced fast path
            (``circuits.accelerate``).

    Example:
        >>> distiller = Distiller(teacher=my_cnn, loss=KD("hinton-classic", temperature=1.0, alpha=0.9),
        ...                       train=TrainConfig(epochs=10, lr=1e-2))
        >>> run = distiller.fit(student, train_set, val_set, run_dir="runs/mine")
        >>> score = distiller.test(student, test_set)
        >>> run.best["val_accuracy"], score.accuracy, run.parameters["quantum"]
    """

    def __init__(self, teacher: Any = None, loss: Objective | str | Callable | None = None,
                 train: TrainConfig | None = None, *, transfer_labels: str = "soft",
                 teacher_outputs: str = "cached", progress: bool = True,
                 teacher_device: str | torch.device | None = None, fast: bool = True):
        from ..validate import check_fields

        if transfer_labels not in ("soft", "hard", "true"):
            raise QkdError(f"transfer_labels={transfer_labels!r}: choose soft, hard or true")
        if teacher_outputs not in ("cached", "on-the-fly"):
            raise QkdError(f"teacher_outputs={teacher_outputs!r}: choose cached or on-the-fly")
        self.train = train or TrainConfig()
        check_fields(self.train, "train")  # batch_size=0, an unknown optimizer: refused before any work
        if self.train.augment == "auto":
            raise QkdError("augment='auto' picks a named dataset's augmentation (qkd's commands); the Distiller "
                           "takes any data, so name it: crop-flip (photographs) or shift-rotate (digits, garments)")
        self.teacher: FrozenTeacher | None = freeze(teacher)
        self.loss = as_objective(loss if loss is not None else "hinton-classic")
        if isinstance(self.loss, FunctionLoss) and self.teacher is None:
            raise QkdError("a loss function reads teacher logits, and this Distiller has no teacher (its loss would be "
                           "cross-entropy): give it a teacher, or leave loss out")
        if transfer_labels == "true" and self.teacher is not None:
            raise QkdError("transfer_labels='true' is the ceiling control: the transfer set taught by its own labels, "
                           "no teacher; leave the teacher out (or choose soft or hard to have it label the set)")
        if isinstance(self.loss, FunctionLoss) and transfer_labels == "hard":
            raise QkdError("transfer_labels='hard' needs an Objective, which treats labelled and transfer rows apart; "
                           "a loss function sees every row alike (a transfer row's label is the teacher's top class)")
        if teacher_outputs == "on-the-fly" and self.teacher is None:
            raise QkdError("teacher_outputs='on-the-fly' calls the teacher on every batch, and this Distiller has "
                           "none: give it a teacher, or leave teacher_outputs out")
        if self.train.mixup > 0 and self.teacher is not None and teacher_outputs == "cached":
            raise QkdError("mixup blends the images, and cached teacher logits are of the images as they are: pass "
                           "teacher_outputs='on-the-fly' so the teacher sees the blend, or leave mixup out")
        self.transfer_labels = transfer_labels
        self.teacher_outputs = teacher_outputs
        self.progress = progress
        self.teacher_device = torch.device(teacher_device) if teacher_device is not None else None
        self.fast = fast
        # student -> (run folder, best, seconds) of its last fit: test(student) finds its own run, not another's
        self._runs: weakref.WeakKeyDictionary[nn.Module, tuple[Path, dict[str, Any], float]] = \
            weakref.WeakKeyDictionary()

    # -- fit ---------------------------------------------------------------------------------

    def fit(self, student: nn.Module, train_set: Any, val_set: Any, run_dir: str | Path, transfer_set: Any = None,
            resume: bool = False, *, overwrite: bool = False,
            on_epoch: Callable[[dict[str, float]], None] | None = None,
            record: RunRecord | None = None) -> FitResult:
        """Train ``student`` in place; it ends holding its best-on-validation weights (``best.pt``).

        Args:
            student: any ``nn.Module`` mapping a batch of images to class logits; trained on the
                device its parameters are on.
            train_set: labelled training data: a map-style ``Dataset`` of (image, label), a
                ``TensorDataset`` or an (images, labels) pair. Labels are 0..C-1.
            val_set: labelled validation data, for model selection (never the test set).
            run_dir: the run folder (created; another run there is refused unless resumed or overwritten).
            transfer_set: images the student has no labels for, seen only through the teacher
                (a ``Dataset``, whose labels, if any, are never read, or a tensor of images).
            resume: continue the folder's last checkpoint: the same settings, student structure
                and data (epochs may grow); the result equals an uninterrupted run's.
            overwrite: empty the folder and start again.
            on_epoch: called with each epoch's row of ``metrics.json`` (raise to stop: a tuner prunes so).
            record: for configuration-driven runs (qkd-pl's own commands): what to record instead.

        Returns:
            The run folder, the selected epoch, the parameter counts, the history and the time.
        """
        prepared = self._prepare(student, train_set, val_set, run_dir, transfer_set, resume, overwrite, on_epoch,
                                 record)
        # Ctrl-C propagates as KeyboardInterrupt: last.pt holds every finished epoch, and resume=True continues
        return self._finish(prepared, _fit_alone(prepared.member, self.progress))

    def fit_many(self, students: list[nn.Module], train_set: Any, val_set: Any, run_dirs: list[str | Path],
                 transfer_set: Any = None, *, seeds: list[int] | None = None, resume: bool = False,
                 overwrite: bool = False, stack: bool = True) -> list[FitResult]:
        """Fit several students on the same data at once: ``fit`` for each, in one batched model
        where they share a structure (``training/stacked.py``), each with its own run folder.

        Args:
            students: the students (typically one architecture under several seeds).
            train_set, val_set, transfer_set: as for ``fit``, shared by every student.
            run_dirs: one run folder per student.
            seeds: each student's training seed (its batches' order); default this Distiller's.
            resume, overwrite: as for ``fit``, for every folder.
            stack: False fits them one after another (the same results, to float rounding).

        Returns:
            One ``FitResult`` per student, in order.

        Example:
            >>> students = [make_student(seed=s) for s in range(5)]
            >>> runs = distiller.fit_many(students, train, val, [f"runs/s{s}" for s in range(5)], seeds=range(5))
        """
        seeds = list(seeds) if seeds is not None else [self.train.seed] * len(students)
        if not len(students) == len(run_dirs) == len(seeds):
            raise QkdError(f"fit_many: {len(students)} students, {len(run_dirs)} run folders and {len(seeds)} seeds; "
                           f"give one of each per student")
        jobs = []
        for student, run_dir, seed in zip(students, run_dirs, seeds):
            distiller = copy.copy(self)  # the same teacher, loss and record of fits (test() finds each run)
            distiller.train = dataclasses.replace(self.train, seed=seed)
            jobs.append(FitJob(distiller, student, train_set, val_set, run_dir, transfer_set, resume, overwrite))
        return fit_together(jobs, stack=stack)

    def _prepare(self, student: nn.Module, train_set: Any, val_set: Any, run_dir: str | Path, transfer_set: Any,
                 resume: bool, overwrite: bool, on_epoch: Callable[[dict[str, float]], None] | None,
                 record: RunRecord | None, rng: torch.Tensor | None = None) -> "_Prepared":
        """Everything ``fit`` does before the loop: checks, the run folder, the teacher's logits, the rows.
        ``rng``: the global RNG state a lone fit would start from (default: now)."""
        t0 = time.perf_counter()
        rng = torch.get_rng_state() if rng is None else rng  # what a lone run's last.pt records
        x, y = as_tensors(train_set, "train_set")
        x_val, y_val = as_tensors(val_set, "val_set")
        x_transfer, y_transfer = None, None
        if transfer_set is not None and self.transfer_labels == "true":  # the ceiling: the pool with its labels
            x_transfer, y_transfer = as_tensors(transfer_set, "transfer_set")
        elif transfer_set is not None:
            x_transfer = as_images(transfer_set, "transfer_set")
        self._check_data(x, x_val, x_transfer)
        if x_transfer is not None and self.transfer_labels == "hard" and self.train.mixup > 0:
            raise QkdError("mixup with transfer_labels='hard': a blend of two images has no one top class to be its "
                           "pseudo-label; use transfer_labels='soft', or leave mixup out")
        if self.fast:
            accelerate(student)
        run_dir = Path(run_dir).absolute()  # test() after a change of working folder finds it
        device = _device_of(student)
        _check_student(student, x, y, torch.cat([y_val, y_transfer]) if y_transfer is not None else y_val, device)
        if record is None:
            resuming = self._open(run_dir, student, x, y, x_val, y_val, x_transfer, y_transfer, resume, overwrite)
            config = json.loads((run_dir / "config.json").read_text())
            labelled = [y, y_val] + ([] if y_transfer is None else [y_transfer])  # the ceiling's pool has labels too
            meta = {"image_shape": list(x.shape[1:]), "classes": list(range(int(max(t.max() for t in labelled)) + 1)),
                    "trained_on": f"{device.type} (torch)"}
        else:
            resuming, config, meta = resume and (run_dir / "last.pt").exists(), record.config, record.meta
        rows, teacher_accuracy = self._rows(x.to(device), y.to(device), x_transfer, y_transfer, device, record)
        resume_state = load_resume_state(run_dir) if resuming else None
        if resume_state is not None:
            check_fits(student, resume_state["state_dict"], run_dir / "last.pt")
            if resume_state["epoch"] > self.train.epochs:
                raise QkdError(f"{run_dir} has trained {resume_state['epoch']} epochs already; resume it with epochs "
                               f"of at least {resume_state['epoch']}")
            self._say(f"resuming {run_dir} after epoch {resume_state['epoch']}")
        member = Member(student, rows, (x_val.to(device), y_val.to(device)), self.train, self._loss_fn(), run_dir,
                        {"config": config, "meta": meta}, rng if resume_state is None else resume_state["rng"],
                        resume_state, on_epoch,
                        record.start_best if record else None)
        return _Prepared(self, student, member, t0, teacher_accuracy)

    def _finish(self, prepared: "_Prepared", result: dict[str, Any], seconds: float | None = None) -> FitResult:
        """Everything ``fit`` does after the loop: the best weights into the student, the curves, the
        result. ``seconds``: the student's own time so far (its share of a stacked fit's); default
        since its fit began."""
        t0 = time.perf_counter()
        student, run_dir = prepared.student, prepared.member.run_dir
        student.load_state_dict(load_checkpoint(run_dir / "best.pt")["state_dict"])
        plot_history(result["history"], run_dir / "curves.png", title=run_dir.name)
        seconds = (time.perf_counter() - prepared.t0) if seconds is None else seconds + time.perf_counter() - t0
        self._runs[student] = (run_dir, result["best"], seconds)
        return FitResult(run_dir, result["best"], count_parameters(student), result["history"], seconds,
                         prepared.teacher_accuracy)

    def _check_data(self, x: torch.Tensor, x_val: torch.Tensor, x_transfer: torch.Tensor | None) -> None:
        if x_val.shape[1:] != x.shape[1:]:
            raise QkdError(f"val_set's images are {tuple(x_val.shape[1:])} but train_set's are {tuple(x.shape[1:])}")
        if x_transfer is None:
            return
        if self.teacher is None and self.transfer_labels != "true":
            raise QkdError("a transfer set is learnt through the teacher only, and this Distiller has none: give "
                           "it a teacher, pass transfer_labels='true' with a labelled transfer set (the ceiling "
                           "control), or leave the transfer set out")
        if x_transfer.shape[1:] != x.shape[1:]:
            raise QkdError(f"transfer_set's images are {tuple(x_transfer.shape[1:])} but train_set's are "
                           f"{tuple(x.shape[1:])}")

    def _open(self, run_dir: Path, student: nn.Module, x, y, x_val, y_val, x_transfer, y_transfer, resume: bool,
              overwrite: bool) -> bool:
        """Create, reopen or refuse the run folder and write config.json; returns whether it resumes."""
        if resume and overwrite:
            raise QkdError("resume continues a run folder and overwrite replaces it: pass one of them")
        if run_dir.exists() and not run_dir.is_dir():
            raise QkdError(f"{run_dir} is a file, not a run folder")
        config = self._config(student, {"train": _digests(x, y), "val": _digests(x_val, y_val),
                                        "transfer": _digests(x_transfer, y_transfer) if x_transfer is not None
                                        else None})
        saved_path = run_dir / "config.json"
        if saved_path.exists():
            if not overwrite and not resume:
                raise QkdError(f"{run_dir} already holds a run; pass resume=True to continue it, overwrite=True "
                               f"to replace it, or another run_dir")
            if not overwrite:
                self._check_resumable(json.loads(saved_path.read_text()), config, run_dir)
        elif run_dir.is_dir() and any(run_dir.iterdir()):
            raise QkdError(f"{run_dir} is not empty and holds no qkd-pl run; choose another run_dir")
        if overwrite and saved_path.exists():  # only a folder holding a run is emptied, never any folder
            shutil.rmtree(run_dir)
        resuming = resume and (run_dir / "last.pt").exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(saved_path, config)
        record_session(run_dir, self.train.seed, resuming)
        return resuming

    def _config(self, student: nn.Module, data: dict[str, Any]) -> dict[str, Any]:
        """config.json of a Distiller run: its settings, the student, the teacher and the data."""
        from .. import __version__

        return {"kind": DISTILLER_KIND, "qkd_pl": __version__,
                "distiller": {"loss": describe_loss(self.loss), "train": dataclasses.asdict(self.train),
                              "transfer_labels": self.transfer_labels, "teacher_outputs": self.teacher_outputs},
                "student": describe_module(student),
                "teacher": self.teacher.describe() if self.teacher else None, "data": data}

    @staticmethod
    def _check_resumable(saved: dict[str, Any], now: dict[str, Any], run_dir: Path) -> None:
        if saved.get("kind") != DISTILLER_KIND:
            raise QkdError(f"{run_dir} holds a {saved.get('kind')} run of qkd-pl's commands; continue it with the "
                           f"command that made it (--resume)")
        if saved["student"]["structure_sha256"] != now["student"]["structure_sha256"]:
            raise QkdError(f"{run_dir} holds a student of another structure ({saved['student']['class']}, "
                           f"{saved['student']['parameters']['total']} parameters) than this "
                           f"{now['student']['class']} ({now['student']['parameters']['total']}); pass the student "
                           f"it was trained with, or another run_dir")
        compared = {k: now[k] for k in ("distiller", "teacher", "data")}
        before = {k: saved.get(k) for k in compared}
        # fields added since the run was saved read as their defaults
        before["distiller"] = {"teacher_outputs": "cached", **before["distiller"],
                               "train": {**dataclasses.asdict(TrainConfig()), **before["distiller"]["train"],
                                         "epochs": None}}
        compared["distiller"] = {**compared["distiller"], "train": {**compared["distiller"]["train"], "epochs": None}}
        diffs = config_differences(before, compared)
        if diffs:
            raise QkdError(f"{run_dir} was trained with other settings or data ({'; '.join(diffs[:3])}); resume "
                           f"with those, or start another run_dir")
        if saved["student"]["source_sha256"] != now["student"]["source_sha256"]:
            warnings.warn(f"the file defining {now['student']['class']} changed since {run_dir} was started; "
                          f"resuming anyway (its structure is the same)", QkdWarning, stacklevel=4)

    def _rows(self, x: torch.Tensor, y: torch.Tensor, x_transfer: torch.Tensor | None,
              y_transfer: torch.Tensor | None, device: torch.device, record: RunRecord | None
              ) -> tuple[Rows, float | None]:
        """The training rows: the teacher's logits (or the teacher itself, on the fly) and, after the
        labelled rows, the transfer set with the masks that say what teaches each row."""
        logits, teacher_fn, accuracy_on_train = None, None, None
        if self.teacher is not None:
            logits, hit = self._logits(x, "train", record, device)
            accuracy_on_train = (logits.argmax(1) == y).float().mean().item()
            self._say(f"teacher ({'cached logits' if hit else 'logits computed once'}): train accuracy "
                      f"{accuracy_on_train:.4f}, {describe_loss(self.loss)}"
                      + (", its outputs computed on the fly on every batch's view" if self._on_the_fly else ""))
            if self._on_the_fly:
                teacher_fn, logits = self._teacher_fn(device), None
        if x_transfer is None:
            return Rows(x, y, logits, teacher_fn=teacher_fn), accuracy_on_train
        n_labelled = len(y)
        if self.transfer_labels == "true":  # the ceiling control (no teacher): the pool's own labels, as labelled rows
            self._say(f"transfer set: {len(x_transfer)} images with their true labels (the ceiling control)")
            return Rows(torch.cat([x, x_transfer.to(device)]), torch.cat([y, y_transfer.to(device)])), \
                accuracy_on_train
        self._say(f"transfer set: {len(x_transfer)} unlabelled images, learnt from the teacher's "
                  f"{'outputs' if self.transfer_labels == 'soft' else 'top class (pseudo-labels)'}")
        if self._on_the_fly:  # a transfer row's label is the teacher's top class on each batch's view
            y_all, teacher_all = torch.cat([y, torch.zeros(len(x_transfer), dtype=y.dtype, device=device)]), None
        else:
            logits_t, _ = self._logits(x_transfer, _split(record), record, device)
            y_all, teacher_all = torch.cat([y, logits_t.argmax(1)]), torch.cat([logits, logits_t])
        labelled = torch.arange(len(y_all), device=y_all.device) < n_labelled
        return Rows(torch.cat([x, x_transfer.to(device)]), y_all, teacher_all,
                    hard=labelled | (self.transfer_labels == "hard"), soft=labelled | (self.transfer_labels == "soft"),
                    n_labelled=n_labelled, teacher_fn=teacher_fn), accuracy_on_train

    @property
    def _on_the_fly(self) -> bool:
        return self.teacher is not None and self.teacher_outputs == "on-the-fly"

    def _teacher_where(self) -> torch.device:
        return self.teacher_device or _device_of(self.teacher.model)

    def _teacher_fn(self, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
        """The frozen teacher as a function of one batch's view, in eval mode, without gradients."""
        where = self._teacher_where()
        model = self.teacher.model.to(where).eval()

        def teacher_fn(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model(x.to(where)).to(device)
        return teacher_fn

    def _logits(self, x: torch.Tensor, split: str, record: RunRecord | None, device: torch.device
                ) -> tuple[torch.Tensor, bool]:
        """The teacher's logits on ``x``, once per teacher and images (teacher_cache.py)."""
        where = self._teacher_where()
        model = self.teacher.model.to(where)
        if self.teacher.key is None:  # a module in memory: its weights or code may have changed since any cache
            return predict_logits(model, x.to(where)).to(device), False
        data = record.cache_data if record is not None else {"dataset": "distiller"}
        source = None if record is None else record.cache_source
        logits, hit = cached_teacher_logits(model, self.teacher.key, data, split, x.to(where), source=source)
        return logits.to(device), hit

    def _loss_fn(self) -> Callable:
        return BatchLoss(self.loss, with_teacher=self.teacher is not None)

    # -- test --------------------------------------------------------------------------------

    def test(self, student: nn.Module, test_set: Any, run_dir: str | Path | None = None, *,
             best: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
             started: float | None = None) -> Score:
        """The one look at the test split: the run's ``best.pt`` loaded into ``student`` and scored.

        Args:
            student: the student trained by ``fit`` (or one of the same structure).
            test_set: labelled test data, in any form ``fit`` takes.
            run_dir: the run folder; default the one this Distiller last fitted ``student`` into.
            best: the selected epoch, where no ``fit`` of this Distiller made it (an ensemble).
            extra: more fields for ``test_metrics.json``.
            started: the ``time.perf_counter()`` its ``seconds`` count from (default: this fit's start).

        Returns:
            ``Score(accuracy, loss, n)``, also written to ``test_metrics.json``.
        """
        t0 = time.perf_counter()
        fitted = self._runs.get(student)
        if run_dir is None and fitted is None:
            raise QkdError("test needs the run folder of this student: fit it with this Distiller first, or pass run_dir")
        run_dir = Path(run_dir).absolute() if run_dir is not None else fitted[0]
        fitted = fitted if fitted is not None and fitted[0] == run_dir else None
        x, y = as_tensors(test_set, "test_set")
        if not len(y):
            raise QkdError("test_set is empty")
        state = load_checkpoint(run_dir / "best.pt")
        check_fits(student, state["state_dict"], run_dir / "best.pt")
        student.load_state_dict(state["state_dict"])
        if best is None:
            best = fitted[1] if fitted else load_checkpoint(run_dir / "last.pt")["best"]
        device = _device_of(student)
        result = accuracy(student, x.to(device), y.to(device))
        meta = state.get("meta") or {}
        atomic_write_json(run_dir / "test_metrics.json", {
            "test_accuracy": result.accuracy, "test_loss": result.loss, "n_test": result.n,
            "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"],
            "parameters": count_parameters(student), "trained_on": meta.get("trained_on"),
            "seconds": time.perf_counter() - (started if started is not None else t0 - (fitted[2] if fitted else 0.0)),
            **(extra or {})})
        self._say(f"best validation accuracy {best['val_accuracy']:.4f} at epoch {best['epoch']}; test accuracy "
                  f"{result.accuracy:.4f}; results in {run_dir}")
        return result

    def _say(self, text: str) -> None:
        if self.progress:
            print(text, flush=True)


@dataclass
class _Prepared:
    distiller: Distiller
    student: nn.Module
    member: Member  # what the loop takes
    t0: float
    teacher_accuracy: float | None


@dataclass
class FitJob:
    """One student's ``Distiller.fit`` call, for ``fit_together`` (the arguments ``fit`` takes)."""

    distiller: Distiller
    student: nn.Module
    train_set: Any
    val_set: Any
    run_dir: str | Path
    transfer_set: Any = None
    resume: bool = False
    overwrite: bool = False
    on_epoch: Callable[[dict[str, float]], None] | None = None
    record: RunRecord | None = None
    rng: torch.Tensor | None = None  # the global RNG state its lone fit would start from (default: when prepared)


def fit_together(jobs: list[FitJob], stack: bool = True, most: int = 64) -> list[FitResult]:
    """``job.distiller.fit(...)`` for every job, students of one shape trained as one model.

    Students whose training settings agree but for the seed, with as many rows, the same
    parameter shapes and the same structure (module kinds and settings, the circuit and its
    simulator; their teachers, objectives and labels may differ), are stepped together
    (``training/stacked.py``), up to ``most`` at once; any others, or a group that cannot be
    stacked (the reason is printed with progress on), are fitted one after another. Every
    student's run folder is the one its own ``fit`` would write.

    Args:
        jobs: the fits, each with its own Distiller (teacher, objective, seed) and run folder.
        stack: False fits every job alone (what ``fit`` does, in order).
        most: the largest number of students in one stacked step.

    Returns:
        One ``FitResult`` per job, in order.
    """
    prepared, own = [], []  # own: each student's time in its preparation
    for j in jobs:
        t0 = time.perf_counter()
        prepared.append(j.distiller._prepare(j.student, j.train_set, j.val_set, j.run_dir, j.transfer_set, j.resume,
                                             j.overwrite, j.on_epoch, j.record, j.rng))
        own.append(time.perf_counter() - t0)
    groups = stack_groups([p.member for p in prepared]) if stack else [[i] for i in range(len(prepared))]
    if stack and any(p.distiller.progress for p in prepared):
        shapes = Counter(stack_key(prepared[g[0]].member) for g in groups)
        split = sum(len(g) for g in groups if shapes[stack_key(prepared[g[0]].member)] > 1)
        if split:
            print(f"{split} students of one shape form {sum(n for n in shapes.values() if n > 1)} groups, each "
                  f"stepped on its own: their modules differ in kind or settings", flush=True)
    results: list[FitResult | None] = [None] * len(jobs)
    for members in groups:
        for start in range(0, len(members), most):
            chunk = members[start:start + most]
            t0 = time.perf_counter()
            done, stacked_with = _fit_group([prepared[i] for i in chunk])
            share = (time.perf_counter() - t0) / len(chunk)  # FitResult.seconds: each student's part of the time
            for i, result in zip(chunk, done):
                results[i] = dataclasses.replace(prepared[i].distiller._finish(prepared[i], result, own[i] + share),
                                                 stacked_with=stacked_with)
    return results


def _fit_group(prepared: list[_Prepared]) -> tuple[list[dict[str, Any]], int]:
    """The loop's results for these students, and how many trained as one (1: one by one)."""
    members = [p.member for p in prepared]
    progress = prepared[0].distiller.progress
    if len(members) > 1:
        try:
            return fit_stacked(members, progress), len(members)
        except NotStackable as exc:
            if progress:
                print(f"training {len(members)} students one by one: {exc}", flush=True)
    done = []
    for p, m in zip(prepared, members):
        torch.set_rng_state(m.rng)  # as it was when this student's fit began
        done.append(_fit_alone(m, p.distiller.progress))
    return done, 1


def _fit_alone(m: Member, progress: bool) -> dict[str, Any]:
    """The loop for one student, as ``fit`` runs it."""
    return train_loop(m.model, m.rows, m.val, m.cfg, m.loss_fn, m.run_dir, m.checkpoint_meta,
                      resume_state=m.resume_state, progress=progress, on_epoch=m.on_epoch, start_best=m.start_best)


@dataclass(frozen=True)
class BatchLoss:
    """The loop's loss of a batch, ``(logits, y, teacher, hard, soft) -> (loss, parts)``, from an
    objective; without a teacher, the objective's cross-entropy part. ``terms`` gives the same as
    tensors (a compiled step's form), where the objective has one."""

    objective: Any
    with_teacher: bool

    def __call__(self, logits, y, teacher, hard, soft):
        return self.objective(logits, teacher if self.with_teacher else None, y, hard, soft)

    @property
    def terms(self) -> Callable | None:
        terms = getattr(self.objective, "terms", None)
        if terms is None:
            return None
        return lambda logits, y, teacher, hard, soft: terms(logits, teacher if self.with_teacher else None, y,
                                                             hard, soft)


def describe_loss(loss: Any) -> dict[str, Any]:
    """An objective's record in config.json: its name and hyperparameters, or a function's path."""
    if isinstance(loss, Objective):
        fields = {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in dataclasses.asdict(loss).items()}
        return {"objective": getattr(loss, "name", None) or class_path(loss), "source_sha256": source_digest(loss),
                **fields}
    func = getattr(loss, "fn", loss)
    return {"callable": f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__name__)}",
            "source_sha256": source_digest(func if isinstance(func, type) else getattr(func, "__code__", func))}


def _split(record: RunRecord | None) -> str:
    return record.transfer_split if record else "transfer"


def _digests(x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, Any]:
    return {"n": len(x), "images_sha256": tensor_digest(x), **({"labels_sha256": tensor_digest(y)} if y is not None
                                                                  else {})}


def _device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    if first is None:
        first = next(model.buffers(), None)
    return first.device if first is not None else torch.device("cpu")


def _check_student(student: nn.Module, x: torch.Tensor, y: torch.Tensor, y_val: torch.Tensor,
                   device: torch.device) -> None:
    """Refuse, before the run folder is written, a student that cannot train on these rows: no
    trainable parameters, or logits that are not one row per image with a column for every label."""
    if not len(y) or not len(y_val):
        raise QkdError(f"{'train_set' if not len(y) else 'val_set'} is empty")
    if not any(p.requires_grad for p in student.parameters()):
        raise QkdError(f"the student {class_path(student)} has no trainable parameters")
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            outputs = []  # a module calling its QNode itself: the parameters it hands over count as quantum
            detect_circuit_parameters(student, lambda: outputs.append(student(x[:2].to(device))))
            out = outputs[0]
    except Exception as exc:  # noqa: BLE001 - a user's forward may fail in any way
        raise QkdError(f"the student {class_path(student)} fails on two training images of shape "
                       f"{tuple(x.shape[1:])}: {type(exc).__name__}: {first_line(exc)}") from None
    finally:
        student.train(was_training)
    n_labels = int(max(y.max(), y_val.max())) + 1
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or len(out) != min(2, len(x)) or out.shape[1] < n_labels:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise QkdError(f"the student {class_path(student)} gives {shape} for 2 images; it must give logits shaped "
                       f"(images, classes) with at least {n_labels} classes (the labels go up to {n_labels - 1})")
