"""The paper's protocols on the sweep machinery: the v1/v2 reproductions beside the published
numbers (``reproduce``, ``published``), the distillation study (``kd_study``), the noise study
and its report (``noise_study``, ``noise_report``), and the demo (``demo``).

Whatever fixes axes, presets or numbers for the paper belongs here; general grids, searches and
reports belong in ``experiments.sweeps``.
"""
