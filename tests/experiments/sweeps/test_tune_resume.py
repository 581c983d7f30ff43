"""qkd tune continues a study only from the study file it was made from: a study file changed in
what a trial measures is refused, naming what changed, before a trial runs (issue 23), since the
old trials would count toward the budget and the best of them be reported as the new one's."""

import dataclasses
import shutil
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.errors import QkdError
from qkd_pl.experiments.sweeps import tune as tune_module
from qkd_pl.experiments.sweeps.tune import load_tune_spec, open_study, tune

STUDY = """
name = "digits-resume"
trials = 2
seeds = [100]
final_seeds = []
[data]
dataset = "digits"
classes = [0, 1, 2]
per_class = 20
[student]
qubits = 2
[train]
epochs = 1
[space]
"train.lr" = {low = 0.001, high = 0.05, log = true}
"student.readout" = ["z", "probs"]
"""


def spec_of(tmp_path: Path, text: str = STUDY):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return load_tune_spec(path)


def trials_in(out: Path) -> list:
    return optuna.load_study(study_name="digits-resume", storage=f"sqlite:///{out / 'study.db'}").trials


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Path:
    """A finished two-trial study, searched once for the module; each test works on a copy."""
    out = tmp_path_factory.mktemp("searched") / "out"
    tune(spec_of(out.parent), out, progress=False)
    return out


@pytest.fixture
def out(searched, tmp_path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(searched, copy)
    return copy


def test_the_same_study_file_continues_the_study(tmp_path, out):
    """What steers the search or reports after it (trials, report seeds, sampler seed, pruning)
    may change: the old trials still measured what this study file measures."""
    before = [(t.number, t.params, t.value) for t in trials_in(out)]
    steered = STUDY.replace("trials = 2", "trials = 3\nsampler_seed = 7\nprune = false")
    tune(spec_of(tmp_path, steered), out, progress=False)
    after = trials_in(out)
    assert [(t.number, t.params, t.value) for t in after[:2]] == before and len(after) == 3


@pytest.mark.parametrize("edit,needle", [
    (lambda s: s.replace("qubits = 2", "qubits = 3"), "student.qubits: 2 \\(saved\\) vs 3 \\(now\\)"),
    (lambda s: s.replace("per_class = 20", "per_class = 25"), "data.per_class: 20 \\(saved\\) vs 25 \\(now\\)"),
    (lambda s: s.replace("epochs = 1", "epochs = 2"), "train.epochs: 1 \\(saved\\) vs 2 \\(now\\)"),
    (lambda s: s.replace("seeds = [100]", "seeds = [100, 101]"), "seeds: \\[100\\] \\(saved\\) vs \\[100, 101\\]"),
    (lambda s: s.replace("high = 0.05", "high = 0.1"), "\\[space\\] 'train.lr': .*'high': 0.05.* \\(saved\\) vs "),
    (lambda s: s.replace('["z", "probs"]', '["z"]'), "\\[space\\] 'student.readout': \\['z', 'probs'\\] \\(saved"),
    (lambda s: s.replace('"student.readout" = ["z", "probs"]', '"train.batch_size" = [8, 16]'),
     "'student.readout': \\['z', 'probs'\\] \\(saved\\) vs 'absent'"),
], ids=["student", "data", "epochs", "seeds", "space-range", "space-choices", "space-field"])
def test_a_changed_study_file_is_refused_before_a_trial_runs(tmp_path, out, edit, needle):
    before = len(trials_in(out))
    for workers in (1, 2):  # refused in this process, before any worker starts
        with pytest.raises(QkdError, match=needle) as info:
            tune(spec_of(tmp_path, edit(STUDY)), out, workers=workers, progress=False)
        assert "new --out folder" in str(info.value) and "--storage" in str(info.value)
    assert len(trials_in(out)) == before
    assert len(list((out / "trials").iterdir())) == before


def test_the_command_line_refuses_in_one_line_with_status_2(tmp_path, out):
    path = tmp_path / "changed.toml"
    path.write_text(STUDY.replace("epochs = 1", "epochs = 3"))
    r = CliRunner().invoke(cli, ["tune", str(path), "--out", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("Error: study 'digits-resume'") and r.output.count("\n") == 1
    assert "train.epochs: 1 (saved) vs 3 (now)" in r.output and "Traceback" not in r.output
    assert len(trials_in(out)) == 2


def test_a_study_without_a_fingerprint_is_refused_if_it_has_trials(tmp_path):
    """Made by a qkd-pl before the fingerprint: nothing says what its trials measured."""
    spec, storage = spec_of(tmp_path), f"sqlite:///{tmp_path / 'old.db'}"
    old = optuna.create_study(study_name=spec.name, storage=storage, direction="maximize")
    old.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    with pytest.raises(QkdError, match="no record of the configuration they measured \\(made by an older qkd-pl\\)"):
        open_study(spec, storage)
    assert len(old.trials) == 1
    # one made and left before its first trial is simply new
    optuna.create_study(study_name="empty", storage=storage, direction="maximize")
    empty = open_study(dataclasses.replace(spec, name="empty"), storage)
    assert empty.user_attrs[tune_module.FINGERPRINT] == tune_module.fingerprint(tune_module.measured(spec))


def test_a_field_qkd_pl_added_since_reads_as_its_default(tmp_path, out):
    """A study begun before a field existed continues when the field is at its default (which
    keeps the old behaviour), as a saved config.json compares (config.normalized)."""
    spec = spec_of(tmp_path)
    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{out / 'study.db'}")
    older = tune_module.measured(spec)
    del older["base"]["train"]["weight_decay"]
    study.set_user_attr(tune_module.MEASURED, older)
    study.set_user_attr(tune_module.FINGERPRINT, tune_module.fingerprint(older))
    open_study(spec, f"sqlite:///{out / 'study.db'}")
    with pytest.raises(QkdError, match="train.weight_decay: 0.0 \\(saved\\) vs 0.01 \\(now\\)"):
        open_study(spec_of(tmp_path, STUDY.replace("epochs = 1", "epochs = 1\nweight_decay = 0.01")),
                   f"sqlite:///{out / 'study.db'}")


def test_a_teacher_retrained_in_place_changes_the_fingerprint(tmp_path):
    from qkd_pl.experiments.sweeps.tune import fingerprint, measured

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "best.pt").write_bytes(b"first teacher")
    text = STUDY + f'[distill]\nteacher = "{teacher}"\n'
    spec = spec_of(tmp_path, text)
    before = measured(spec)
    assert before["teacher_sha256"] and fingerprint(before) == fingerprint(measured(spec_of(tmp_path, text)))
    (teacher / "best.pt").write_bytes(b"retrained teacher")  # same path, other weights
    assert fingerprint(measured(spec_of(tmp_path, text))) != fingerprint(before)
