"""A run's curves: whole epochs on the axis, the file written whole."""

import matplotlib
import matplotlib.pyplot as plt
import pytest

from qkd_pl.distill.plots import plot_history


@pytest.mark.parametrize("n_epochs", [2, 3, 7])
def test_curves_mark_whole_epochs_only(tmp_path, monkeypatch, n_epochs):
    matplotlib.use("Agg")
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to read its axes
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.1 * e,
                "val_accuracy": 0.09 * e} for e in range(1, n_epochs + 1)]
    plot_history(history, tmp_path / "curves.png", "a run")
    assert (tmp_path / "curves.png").stat().st_size > 1000 and not list(tmp_path.glob("*.tmp.png"))
    (fig,) = figures
    for ax in fig.axes:
        fig.canvas.draw()
        shown = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert shown and all(float(t).is_integer() for t in shown), shown
