"""A small trained digits student, through the CLI, for tests of what happens after training."""

from click.testing import CliRunner

from qkd_pl.cli import cli


def train_digits_student(out, qubits: int, epochs: int, name: str = "s"):
    """A 4-class digits student (40 images per class) in ``out/name``; fails the test if training fails."""
    r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-3", "--per-class", "40",
                                 "--qubits", str(qubits), "--epochs", str(epochs), "--quiet", "--out", str(out),
                                 "--name", name])
    assert r.exit_code == 0, r.output
    return out / name
