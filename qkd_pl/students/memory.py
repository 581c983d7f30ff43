"""Refuse a student that cannot fit in this machine's memory before anything is allocated.

``--qubits`` is bounded by the device for hardware (checked in devices/), but on a simulator
the bound is memory, and it arrives fast. Letting such a run start means minutes of loading and
then an out-of-memory kill with no message (or a machine swapping for hours), so the estimate
below is compared with the physical memory first. It is a function of the configuration alone,
with coefficients measured (peak RSS of real steps and runs; tests/students/test_memory.py holds
it against fresh runs), because an earlier estimate that counted only the reduction's weights
and the training batch's states passed ``--qubits 20`` on MNIST, which then grew past 24 GB
without finishing a step: at 20 qubits ``auto`` trains on lightning.qubit, whose adjoint method
differentiates the amplitude embedding by decomposing it into about 2^(Q+1) gates per image, and
evaluation runs batches of 256 images, not the training batch. What a run holds at its peak:

- ``libraries``: Python, torch and PennyLane once imported (0.85 GB RSS measured).
- ``runtime``: what any run adds on top, whatever its size: plans, traced graphs, PennyLane's
  tapes, autograd and the allocator's own arenas, checkpoints, plots (about 190 MB measured).
- ``data``: the dataset's images as float32; its whole splits are loaded before the classes and
  ``--per-class`` are picked from them.
- ``weights``: every classical weight that scales with the circuit (the FC or PCA reduction's
  pixels x features, a probability readout's head, a classical control), six times over (the
  weights, their gradients, Adam's two moments and its denominator buffer, the best epoch's copy), and the fused
  simulator's tables (a +-1 column per <Z...> term and two gather indices per permutation
  step, each with 2^Q entries).
- ``training step``: the batch's state vectors in the forward pass and the backward pass.
- ``evaluation``: an evaluation batch (validation every epoch, the test once), gradient-free
  but up to ``evaluate.accuracy``'s 256 images however small ``--batch-size`` is.

The training step and the evaluation follow one another, so the larger of the two counts, unless
their tensors are small enough for the allocator's heap to keep both (``MMAP_CEILING``). Measured
on qkd.fused and lightning.qubit; default.qubit's training step is from counts of the tensors it
saves for backward, and noisy:<backend>'s density matrices (4^Q entries) are counted as
default.qubit's states, unmeasured. Not counted: a teacher's own forward pass (computed once,
batch by batch, before training) and a transfer set's images beyond the dataset's.
"""

from __future__ import annotations

import dataclasses
import math
import os

from ..circuits import ENCODINGS, READOUTS, n_features
from ..config import EVAL_BATCH, DataConfig, StudentConfig
from ..devices import Backend
from ..devices.fused_sim import CHUNK_QUBITS
from ..errors import QkdError
from ..reduction import REDUCERS
from ..registry import is_import_path

MEMORY_FRACTION = 0.8  # of physical memory a run may plan to use
GIB = 2**30
MIB = 2**20

LIBRARIES = GIB
RUNTIME = 384 * MIB  # twice the 190-210 MB measured for 8-qubit digits runs
WEIGHT_COPIES = 6  # the weights, their gradients, Adam's two moments and denominator (training/optim.py), best.pt's copy
FLOAT = 4  # bytes of a classical weight or pixel (float32)

# Per image and per amplitude (bytes), measured as peak RSS over one step at 12 and 16 qubits with
# batches of 64 to 4096 (where every batch-sized tensor is mmapped, so RSS follows what is live):
# - a fused training step keeps each local step's input state for backward, one state per chunk
#   of at most CHUNK_QUBITS wires per layer, plus about six state-sized float and complex
#   tensors around the embedding and the measurement: 16 L ceil(Q/4) + 96 (measured 140, 210
#   and 328 for L = 1, 2, 4 at 16 qubits; 183 for L = 2 at 12);
# - default.qubit applies one gate at a time and keeps the state before each: about one state
#   per qubit per layer, and per embedding rotation (saved tensors counted at 6 to 10 qubits);
# - an evaluation batch, no gradients: 82 to 98 on qkd.fused (98 on the call that traces the
#   graph), 80 to 94 on lightning.qubit;
# - lightning.qubit's adjoint method differentiates a trainable amplitude embedding by
#   decomposing it (Mottonen) into ~2^(Q+1) gates whose parameters are autograd-tracked torch
#   scalars, all the batch's tapes at once: 14 kB per image and amplitude (measured at 10 and
#   12 qubits: 14 MB per image at 10); the other adjoint buffers are ~5 states per image.
TRAIN_BASE = 96
EVAL_PER_AMPLITUDE = 104
ADJOINT_PER_AMPLITUDE = 96
DECOMPOSED_EMBEDDING = 16 * 1024
PROBS_READOUT = 24  # the 2^Q probabilities a probability readout returns, float64 and float32
NOISY_EMBEDDING_STEPS = 3  # density matrices kept per amplitude of a noisy trainable embedding (2.0-2.6 measured)
CONTROL_PER_FEATURE = 32  # a classical control's activations: the features, viewed, and gradients
# glibc serves allocations below its dynamic mmap threshold (at most 32 MiB) from the heap, which
# keeps freed blocks: with batch-sized state tensors under that size, a step's RSS was up to 3.9
# times its live tensors (16 qubits, batch 16), and what the heap keeps after a training step is
# still resident during the evaluation that follows (and the reverse). Above it every such tensor
# is mmapped and given back when freed, so the two steps' peaks do not add up.
MMAP_CEILING = 32 * MIB
HEAP_FACTOR = 4

# Images in a dataset's train and test splits, all loaded (as float32) before any are picked.
DATASET_IMAGES = {"digits": 1797, "mnist": 70_000, "fashion-mnist": 70_000, "cifar10": 60_000}

PARTS = {
    "libraries": "Python, torch and PennyLane",
    "runtime": "a run's fixed overhead",
    "data": "the dataset's images",
    "weights": "classical weights and simulator tables",
    "training step": "the training batch's states",
    "evaluation": "the evaluation batch's states",
}


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def evaluation_batch() -> int:
    """The evaluation batch: ``accuracy``'s default, one constant for both (config.EVAL_BATCH)."""
    return EVAL_BATCH


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A run's memory (bytes): ``parts`` held throughout, and the ``steps``, which follow one
    another but may stay resident together (``heaped``, see ``MMAP_CEILING``)."""

    parts: dict[str, int]
    steps: dict[str, int]
    heaped: bool
    notes: dict[str, str]  # what a part is made of, for the refusal

    @property
    def peak(self) -> dict[str, int]:
        """The parts that make up the peak: everything held throughout, and the larger step, or
        both steps where the heap keeps one's memory while the other runs."""
        if self.heaped:
            return {**self.parts, **self.steps}
        step = max(self.steps.items(), key=lambda kv: kv[1])
        return {**self.parts, step[0]: step[1]}

    @property
    def total(self) -> int:
        return sum(self.peak.values())


def estimate_bytes(cfg: StudentConfig, backend: Backend, image_shape: tuple[int, int, int], batch: int,
                   data: DataConfig | None = None, frozen_inputs: bool = False) -> dict[str, int]:
    """The peak of a run of ``cfg`` on ``backend``, in parts (bytes) that add up to it."""
    return estimate(cfg, backend, image_shape, batch, data, frozen_inputs).peak


def estimate(cfg: StudentConfig, backend: Backend | None, image_shape: tuple[int, int, int], batch: int,
             data: DataConfig | None = None, frozen_inputs: bool = False) -> Estimate:
    """What a run of ``cfg`` on ``backend`` will hold, from the configuration alone (nothing is allocated).

    Args:
        cfg: the student.
        backend: where its circuit runs (its differentiation method decides what a step keeps).
        image_shape: (channels, height, width) of the dataset's images.
        batch: the training batch (``--batch-size``).
        data: the data section, for the dataset's size and the evaluation batch (capped by the
            test images ``--per-class`` leaves); without it, a full evaluation batch and no data.
        frozen_inputs: the classical front end is frozen (``qkd finetune``), so nothing before
            the circuit's trainable weights is kept for backward.
    """
    pixels = math.prod(image_shape)
    images = DATASET_IMAGES.get(data.dataset, 0) if data is not None else 0
    if is_user(cfg):
        # A user's own student (--student module.path:name): its circuit, if it has one, is its own,
        # and qkd-pl's circuit options (--qubits, --encoding, --device ...) say nothing about it, so
        # the circuit estimate below is skipped: what is counted is what any run holds.
        parts = {"libraries": LIBRARIES, "runtime": RUNTIME, "data": images * pixels * FLOAT, "weights": 0}
        return Estimate(parts, {"training step": 0, "evaluation": 0}, False, {})
    q = cfg.qubits
    hybrid = cfg.arch != "v2"
    noisy = backend.device.startswith("noisy:")
    amplitudes = 4**q if noisy else 2**q  # a density matrix has 4^Q entries
    state = 8 if backend.device == "qkd.fused32" else 16
    features = n_features(cfg.encoding, q)
    readout = READOUTS["probs" if hybrid else cfg.readout]
    width = readout.width(q)
    notes: dict[str, str] = {}

    weights = 0
    if not hybrid and REDUCERS[cfg.reducer].pixel_weights:  # fc's weights, pca's fitted components
        weights += pixels * features
        notes["weights"] = f"{cfg.reducer} {pixels:,} pixels x {features:,} features"
    if readout.probabilities:
        weights += width * (data_classes(data) if data is not None else 10)  # the head over 2^Q probabilities
    if cfg.control:
        weights += features * width
    weights *= WEIGHT_COPIES * FLOAT
    if backend.device in ("qkd.fused", "qkd.fused32") and not cfg.control:
        n_z = 0 if readout.probabilities else width
        weights += 2 * (8 * n_z + 16 * cfg.layers) * amplitudes  # the plan's tables, and a traced graph's

    per_train, per_eval = _per_image(cfg, backend, hybrid, q, state, features, amplitudes, readout.probabilities,
                                     frozen_inputs)
    eval_batch = evaluation_batch()
    if data is not None and data.per_class is not None:
        eval_batch = min(eval_batch, data.per_class * data_classes(data))
    train, evaluation = batch * per_train, eval_batch * per_eval
    heaped = eval_batch * amplitudes * state < MMAP_CEILING
    if heaped:
        evaluation *= HEAP_FACTOR
    if backend.diff_method != "adjoint" and batch * amplitudes * state < MMAP_CEILING:  # adjoint: one circuit at a time
        train, heaped = train * HEAP_FACTOR, True
    decomposed = backend.diff_method == "adjoint" and cfg.encoding == "amplitude" and not (hybrid or cfg.control)
    notes["training step"] = f"batch {batch}" + (f", the amplitude embedding decomposed into gates for "
                                                 f"{backend.device}'s adjoint method" if decomposed else "")
    notes["evaluation"] = f"batch {eval_batch}"

    parts = {"libraries": LIBRARIES, "runtime": RUNTIME, "data": images * pixels * FLOAT, "weights": weights}
    return Estimate(parts, {"training step": train, "evaluation": evaluation}, heaped, notes)


def _per_image(cfg: StudentConfig, backend: Backend, hybrid: bool, q: int, state: int, features: int,
               amplitudes: int, probabilities: bool, frozen_inputs: bool = False) -> tuple[int, int]:
    """Bytes one image adds to a training step and to an evaluation batch."""
    if cfg.control:  # no circuit: the classical layer's activations
        return CONTROL_PER_FEATURE * features, CONTROL_PER_FEATURE * features
    layers = 0 if hybrid else cfg.layers  # hybrid-cnn's circuit: a product state, measured
    extra = PROBS_READOUT if probabilities else 0
    evaluation = (EVAL_PER_AMPLITUDE + extra) * amplitudes
    if backend.diff_method == "adjoint":
        per = ADJOINT_PER_AMPLITUDE
        if cfg.encoding == "amplitude" and not hybrid:
            per += DECOMPOSED_EMBEDDING
        return per * amplitudes, evaluation
    if backend.device in ("qkd.fused", "qkd.fused32"):
        kept = layers * math.ceil(q / CHUNK_QUBITS)
    else:  # default.qubit, noisy: a state per gate
        rotations = hybrid or ENCODINGS[cfg.encoding].angles  # the embedding's own gates
        kept = q * (layers + rotations)
        if backend.device.startswith("noisy:") and cfg.encoding == "amplitude" and not (hybrid or frozen_inputs):
            # noisy_dm keeps a density matrix for every fused step that depends on data or weights,
            # and a trainable amplitude embedding transpiles to a tree of ~2^(Q+1) rotations: 327
            # matrices per image measured at 7 qubits (batch 32), 524 at 8 (batch 4)
            kept += NOISY_EMBEDDING_STEPS * 2**q
    return (state * kept + TRAIN_BASE + extra) * amplitudes, evaluation


def is_user(cfg: StudentConfig) -> bool:
    """A user's own student, named by its import path (read without importing it)."""
    return is_import_path(cfg.arch)


def data_classes(data: DataConfig) -> int:
    from ..data.sources import DATASETS

    return len(data.classes) if data.classes is not None else DATASETS[data.dataset].n_classes


def check_memory(cfg: StudentConfig, backend: Backend | None, image_shape: tuple[int, int, int], batch: int,
                 data: DataConfig | None = None, frozen_inputs: bool = False) -> None:
    """Refuse, in one line, a run whose estimate exceeds ``MEMORY_FRACTION`` of this machine
    (``backend``: None for a user's own student, whose circuit is not qkd-pl's)."""
    need, have = estimate(cfg, backend, image_shape, batch, data, frozen_inputs), physical_memory()
    if need.total <= MEMORY_FRACTION * have:
        return
    part, size = max(need.peak.items(), key=lambda kv: kv[1])
    if is_user(cfg):
        raise QkdError(f"--student {cfg.arch} needs at least {need.total / GIB:,.1f} GiB before its own module's, "
                       f"most of it {PARTS[part]} ({size / GIB:,.1f} GiB), but this machine has {have / GIB:,.0f} GiB")
    note = need.notes.get(part, "")
    if part == "training step":
        ways = "fewer --qubits or a smaller --batch-size"
        if "decomposed" in note:
            ways += ", or --encoding angle" + _fused_instead(cfg, image_shape, batch, data, have)
    else:
        ways = {"evaluation": "fewer --qubits (evaluation runs batches of up to 256 images whatever --batch-size is)",
                "weights": "fewer --qubits or a pooling / crop --reducer"}.get(part, "fewer --qubits")
    raise QkdError(f"--qubits {cfg.qubits} needs about {need.total / GIB:,.0f} GiB on {backend.device}, most of it "
                   f"{PARTS[part]} ({size / GIB:,.1f} GiB{', ' + note if note else ''}), but this machine has "
                   f"{have / GIB:,.0f} GiB; use {ways}")


def _fused_instead(cfg: StudentConfig, image_shape: tuple[int, int, int], batch: int, data: DataConfig | None,
                   have: int) -> str:
    """qkd.fused's backprop needs no decomposition: offer it where it would fit."""
    from ..devices import resolve_backend

    fused = estimate(dataclasses.replace(cfg, device="qkd.fused"), resolve_backend("qkd.fused", cfg.qubits),
                     image_shape, batch, data).total
    return f", or --device qkd.fused (about {fused / GIB:,.0f} GiB)" if fused <= MEMORY_FRACTION * have else ""
