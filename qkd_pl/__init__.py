"""qkd-pl: knowledge distillation from classical CNN teachers into quantum neural network students.

The package is laid out by stage of the pipeline: ``data`` (datasets, splits), ``reduction``
(images to 2^Q features), ``circuits`` (encodings and ansatzes as PennyLane QNodes),
``devices`` (which simulator or hardware runs them), ``teachers``, ``students``, ``losses``,
``training`` (the one loop) and ``experiments`` (``single`` runs; ``studies``: grids, reports,
reproductions, the demo; ``tools``: drawings, benchmarks). ``config`` is the one schema of a
run, ``validate`` its one check, ``registry`` the components' registries, and ``cli`` the
``qkd`` command line over all of it.

The Python API in short::

    from qkd_pl.config import DataConfig, RunConfig, StudentConfig
    from qkd_pl.experiments import train_student
    result = train_student(RunConfig("student", data=DataConfig("digits"), student=StudentConfig()), "runs")
"""

__version__ = "0.1.0"
