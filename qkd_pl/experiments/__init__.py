"""Runs as the CLI and scripts see them: a config in, a run folder with results out."""

from .single.runs import RunResult
from .single.evaluate import Evaluation, evaluate_run
from .single.train import train_student, train_teacher

__all__ = ["Evaluation", "RunResult", "evaluate_run", "train_student", "train_teacher"]
