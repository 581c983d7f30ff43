"""qkd-pl: knowledge distillation from classical CNN teachers into quantum neural network students.

The package is laid out by stage of the pipeline: ``data`` (datasets, splits), ``reduction``
(images to 2^Q features), ``circuits`` (encodings and ansatzes as PennyLane QNodes),
``devices`` (which simulator or hardware runs them), ``teachers``, ``students``, ``losses``,
``training`` (the one loop) and ``experiments`` (run folders, demo). ``cli.py`` at the
repository root is the command-line front end over ``experiments``.
"""

__version__ = "0.1.0"
