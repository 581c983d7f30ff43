"""Many runs of any configuration, and what they show: grids over axes (``grid``), hyperparameter
searches (``tune``) and the reports of their results tables (``report``).

General machinery only: nothing here knows the paper. A study with fixed axes, presets or
published numbers belongs in ``experiments.paper``, which builds on this package (never the
other way round).
"""
