from qkd_pl.config import DataConfig, RunConfig, StudentConfig, TrainConfig, config_differences

import pytest

from qkd_pl.errors import QkdError


def test_round_trip_through_dict():
    cfg = RunConfig(kind="student", data=DataConfig("mnist", classes=[0, 1], per_class=5),
                    train=TrainConfig(epochs=3), student=StudentConfig(qubits=8))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_differences_name_each_changed_leaf():
    a = RunConfig(kind="student", student=StudentConfig(qubits=4)).to_dict()
    b = RunConfig(kind="student", student=StudentConfig(qubits=8, layers=3)).to_dict()
    diffs = config_differences(a, b)
    assert diffs == ["student.layers: 2 (saved) vs 3 (now)", "student.qubits: 4 (saved) vs 8 (now)"]


def test_unknown_saved_field_is_a_user_error():
    d = RunConfig(kind="teacher").to_dict()
    d["data"]["colour"] = "red"
    with pytest.raises(QkdError, match="not one this version"):
        RunConfig.from_dict(d)


def test_a_config_saved_before_a_field_existed_reads_and_compares_as_today():
    from qkd_pl.config import normalized

    now = RunConfig(kind="teacher", train=TrainConfig(epochs=3)).to_dict()
    old = {**now, "train": {k: v for k, v in now["train"].items() if k not in ("augment", "schedule")}}
    assert normalized(old) == now


def test_run_names_hash_only_what_differs_from_the_defaults():
    from qkd_pl.config import non_default
    from qkd_pl.experiments.single.runs import config_hash

    base = RunConfig(kind="student", student=StudentConfig(qubits=8))
    assert non_default(base.to_dict())["student"] == {"qubits": 8}
    assert non_default(base.to_dict())["train"] == {}
    # a field added with a default that keeps today's behaviour renames nothing; changing a field does
    assert config_hash(base) != config_hash(RunConfig(kind="student", student=StudentConfig(qubits=4)))
    assert config_hash(base) != config_hash(RunConfig(kind="student", train=TrainConfig(optimizer="sgd"),
                                                      student=StudentConfig(qubits=8)))
    assert config_hash(base) == config_hash(RunConfig(kind="student", train=TrainConfig(epochs=99),
                                                      student=StudentConfig(qubits=8)))


def test_a_baseline_saved_before_the_distillation_defaults_changed_is_the_same_baseline():
    """A student without a teacher distils nothing: its saved distillation fields (the paper's,
    the defaults before the kd study) do not make it another configuration. A distilled one's do."""
    from qkd_pl.config import PAPER_DISTILL, DistillConfig, normalized

    now = RunConfig(kind="student", distill=DistillConfig()).to_dict()
    old = {**now, "distill": {**now["distill"], **PAPER_DISTILL}}
    assert normalized(old) == normalized(now)
    taught = RunConfig(kind="student", distill=DistillConfig(teacher="runs/t")).to_dict()
    assert normalized({**taught, "distill": {**taught["distill"], **PAPER_DISTILL}}) != normalized(taught)
