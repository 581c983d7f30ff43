"""The run lifecycle around the training loop, for any student, teacher and data: the Distiller.

Layout: ``distiller`` (fit / test), ``data`` (Datasets to tensors), ``teacher`` (frozen
teachers and their keys), ``describe`` (what config.json says of a module), ``saved`` (models
rebuilt from run folders), ``run_folder`` (environment.json), ``plots`` (curves.png).
"""

from .distiller import Distiller, FitJob, FitResult, RunRecord, fit_together
from .teacher import FrozenTeacher

__all__ = ["Distiller", "FitJob", "FitResult", "FrozenTeacher", "RunRecord", "fit_together"]
