"""The one training loop (``loop``), evaluation helpers and safe checkpoint files."""

from .checkpoint import atomic_write_json, load_checkpoint, save_checkpoint
from .evaluate import accuracy, predict_logits
from .loop import fit

__all__ = ["accuracy", "atomic_write_json", "fit", "load_checkpoint", "predict_logits", "save_checkpoint"]
