"""The one training loop (``loop``), evaluation helpers and safe checkpoint files."""

from .checkpoint import atomic_write_json, load_checkpoint, save_checkpoint
from .evaluate import Score, accuracy, predict_logits, score
from .loop import fit

__all__ = ["Score", "accuracy", "atomic_write_json", "fit", "load_checkpoint", "predict_logits", "save_checkpoint",
           "score"]
