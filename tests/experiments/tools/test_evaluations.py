"""The evaluations table: paired differences computed from the recorded per-image results, and refusals."""

import json

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.errors import QkdError
from qkd_pl.experiments.tools.evaluations import evaluations_table, read_evaluations


def _write(folder, name, correct, **extra):
    data = {"test_accuracy": correct.count("1") / len(correct) if correct else 0.5, "n_test": 4,
            "evaluated_on": name, "shots": None, "mitigation": "none", "correct": correct, **extra}
    (folder / f"evaluation-{name}.json").write_text(json.dumps(data))


def test_each_row_is_paired_with_the_reference_over_the_same_images(tmp_path):
    _write(tmp_path, "qkd.fused", "1111011110" * 10)  # 80 %
    _write(tmp_path, "noisy-fake_brisbane", "1011011100" * 10)  # 60 %: two images of every ten lost
    _write(tmp_path, "noisy-fake_brisbane-zne", "1111011110" * 10, mitigation="zne",
           zne={"extrapolator": "linear", "factors": [1, 3, 5], "values": None})
    _write(tmp_path, "short", "1" * 7)
    table = evaluations_table(read_evaluations([tmp_path]), "qkd.fused")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    # differences of -1 on 20 images of 100, 0 elsewhere: mean -0.2, sd 0.402, 95 % half-width 1.96 * 0.0402
    assert "-20.00 [-27.88, -12.12]" in rows["noisy-fake_brisbane"]
    assert "+0.00 [+0.00, +0.00]" in rows["noisy-fake_brisbane-zne"] and "zne (linear)" in rows["noisy-fake_brisbane-zne"]
    assert "not the same images" in rows["short"]


def test_refusals_name_the_cause(tmp_path):
    _write(tmp_path, "qkd.fused", "1101")
    _write(tmp_path, "ibm-ibm_kyiv", None)
    rows = read_evaluations([tmp_path])
    with pytest.raises(QkdError, match="not among these evaluations"):
        evaluations_table(rows, "lightning.qubit")
    with pytest.raises(QkdError, match="records no per-image results"):
        evaluations_table(rows, "ibm-ibm_kyiv")
    (tmp_path / "evaluation-broken.json").write_text("{")
    r = CliRunner().invoke(cli, ["evaluations", str(tmp_path)])
    assert r.exit_code == 2 and "is not an evaluation file" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["evaluations", str(tmp_path / "nothing-here")])
    assert r.exit_code == 2 and "no such file or run folder" in r.output
