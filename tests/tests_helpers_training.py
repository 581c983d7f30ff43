"""The training loop called on a DataBundle, as the loop's tests drive it: labels alone, or with
teacher logits through a configured objective."""

from qkd_pl.config import DistillConfig
from qkd_pl.losses import objective_from_config
from qkd_pl.training import loop


def fit(model, data, cfg, run_dir, meta, teacher_logits=None, distill=None, **kw):
    objective = objective_from_config(distill or DistillConfig())
    rows = loop.Rows(data.x_train, data.y_train, teacher_logits)
    return loop.fit(model, rows, (data.x_val, data.y_val), cfg,
                    lambda logits, y, t, hard, soft: objective(logits, t, y, hard, soft), run_dir, meta, **kw)
