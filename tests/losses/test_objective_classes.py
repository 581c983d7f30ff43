"""Objectives as classes: hyperparameters of their own (``KD``), a run's configuration
(``objective_from_config``, ``kd_params``), a user's objective by decorator or import path, and a
plain function through ``as_objective``. The built-ins' formulas are test_objectives.py's."""

import json
import math
import sys
import textwrap

import click
import pytest
import torch
from click.testing import CliRunner
from torch.nn import functional as F

from qkd_pl.cli.options import config_options, from_options
from qkd_pl.config import DistillConfig, RunConfig, StudentConfig, non_default, parse_params
from qkd_pl.errors import QkdError
from qkd_pl.losses import (KD, OBJECTIVES, Objective, as_objective, distillation_loss, objective_from_config,
                           register_objective)
from tests_helpers_plugins import ZERO_KD_PLUGIN

S = torch.tensor([[1.0, 0.0, -1.0, 0.5], [0.5, 0.5, 0.0, -2.0], [-1.0, 2.0, 0.3, 0.0]])
T_ = torch.tensor([[3.0, 0.0, 0.0, 1.0], [0.0, 1.0, 2.0, 0.0], [0.5, 0.5, -1.0, 2.0]])
Y = torch.tensor([0, 2, 1])
BUILT_INS = ("hinton", "hinton-classic", "dist", "lskd", "dkd")


@pytest.fixture
def registry_copy(monkeypatch):
    """Registrations and imports of one test stay in that test (the registry is module state)."""
    monkeypatch.setattr(OBJECTIVES, "_records", dict(OBJECTIVES._records))
    monkeypatch.setattr(OBJECTIVES, "_imported", {})
    return OBJECTIVES


def _softmax(v, t):
    e = [math.exp(a / t) for a in v]
    return [a / sum(e) for a in e]


def _nckd_per_image(temp):
    """DKD's KL among the non-target classes, by hand, averaged over the rows."""
    out = []
    for s, t, y in zip(S.tolist(), T_.tolist(), Y.tolist()):
        keep = [c for c in range(4) if c != y]
        p, q = _softmax([t[c] for c in keep], temp), _softmax([s[c] for c in keep], temp)
        out.append(sum(a * math.log(a / b) for a, b in zip(p, q)))
    return sum(out) / len(out)


def test_the_builtins_are_the_registry_in_its_order_with_their_help():
    assert tuple(OBJECTIVES) == BUILT_INS
    assert all(isinstance(r, type) and issubclass(r, Objective) and r.name == n and r.help
               for n, r in OBJECTIVES.items())
    assert "dkd: CE + alpha T^2 (target/non-target KL + beta non-target KL) (DKD)" in OBJECTIVES.help()


def test_dkd_beta_weights_the_non_target_kl():
    """The loss is affine in beta, with slope alpha T^2 times the hand-computed non-target KL."""
    temp, alpha = 2.0, 0.5
    losses = {b: KD("dkd", temperature=temp, alpha=alpha, beta=b)(S, T_, Y)[0].item() for b in (0.0, 1.0, 3.0)}
    slope = alpha * temp ** 2 * _nckd_per_image(temp)
    assert slope > 0.01
    assert losses[3.0] - losses[1.0] == pytest.approx(2 * slope, rel=1e-5)
    assert losses[1.0] - losses[0.0] == pytest.approx(slope, rel=1e-5)


def test_temperature_and_alpha_are_the_objectives_own():
    ce = F.cross_entropy(S, Y).item()
    kd = KD("hinton", temperature=3.0, alpha=0.0)(S, T_, Y)
    assert kd[0].item() == pytest.approx(ce, rel=1e-6) and kd[1]["kd"] > 0
    _, hot = KD("hinton", temperature=10.0)(S, T_, Y)
    _, cold = KD("hinton", temperature=1.0)(S, T_, Y)
    assert hot["kd"] < cold["kd"]  # a higher temperature flattens both outputs towards each other
    classic = KD("hinton-classic", alpha=0.25)
    assert classic.ce_weight() == 0.75 and KD("hinton", alpha=0.25).ce_weight() == 1.0


@pytest.mark.parametrize("name", BUILT_INS)
def test_a_config_builds_the_objective_with_its_own_numbers_to_the_bit(name):
    cfg = DistillConfig(kd_loss=name, temperature=2.5, alpha=0.4, dist_beta=1.5, dist_gamma=0.25, dkd_beta=3.0)
    objective = objective_from_config(cfg)
    own = {"dist": dict(beta=1.5, gamma=0.25), "dkd": dict(beta=3.0)}.get(name, {})
    assert objective == KD(name, temperature=2.5, alpha=0.4, **own)
    hard, soft = torch.tensor([True, True, False]), torch.tensor([True, False, True])
    by_class = objective(S, T_, Y, hard, soft)
    by_function = distillation_loss(S, Y, T_, cfg, hard, soft)
    assert torch.equal(by_class[0], by_function[0]) and by_class[1] == by_function[1]
    # the classes' defaults are DistillConfig's
    assert objective_from_config(DistillConfig(kd_loss=name)) == KD(name)


def test_unknown_names_and_hyperparameters_are_refused_naming_them():
    with pytest.raises(QkdError, match=r"hyperparameters of objective dkd: unknown 'gamma'; the valid ones: "
                                       r"temperature, alpha, beta$"):
        KD("dkd", gamma=1.0)
    with pytest.raises(QkdError, match="unknown --kd-loss 'dkdd'; choose one of: hinton, hinton-classic, dist"):
        KD("dkdd")
    with pytest.raises(QkdError, match=r"--kd-params of dist: unknown 'zeta'; the valid ones: none"):
        objective_from_config(DistillConfig(kd_loss="dist", kd_params={"zeta": 1.0}))
    with pytest.raises(QkdError, match="beta is --dkd-beta; temperature is --temperature"):
        objective_from_config(DistillConfig(kd_loss="dkd", kd_params={"beta": 1.0, "temperature": 2.0}))


def test_a_registered_class_is_found_by_name_and_built_from_a_config(registry_copy):
    @register_objective
    class Squared(Objective):  # no @dataclass: the decorator makes gamma a hyperparameter
        name = "test-squared"
        help = "CE + alpha T^2 gamma * squared logit distance"
        gamma: float = 1.0

        def teacher_term(self, s, t, target):
            return self.gamma * ((s - t) ** 2).sum()

    assert OBJECTIVES["test-squared"] is Squared and "test-squared: CE + alpha T^2 gamma" in OBJECTIVES.help()
    cfg = DistillConfig(teacher="t", kd_loss="test-squared", temperature=2.0, alpha=0.5, kd_params={"gamma": 0.25})
    objective = objective_from_config(cfg)
    assert objective == Squared(temperature=2.0, alpha=0.5, gamma=0.25)
    loss, parts = distillation_loss(S, Y, T_, cfg)
    expected = F.cross_entropy(S, Y) + 0.5 * 4 * 0.25 * ((S - T_) ** 2).sum() / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["kd"] == pytest.approx(0.25 * ((S - T_) ** 2).sum().item() / 3, rel=1e-6)
    with pytest.raises(QkdError, match=r"--kd-params of test-squared: unknown 'beta'; the valid ones: gamma$"):
        objective_from_config(DistillConfig(kd_loss="test-squared", kd_params={"beta": 1.0}))
    with pytest.raises(ValueError, match="registered twice"):
        register_objective(type("Again", (Squared,), {"name": "test-squared"}))


def test_register_objective_refuses_what_is_no_named_objective(registry_copy):
    with pytest.raises(QkdError, match="expected a subclass of qkd_pl.losses.Objective, got class dict"):
        register_objective(dict)
    with pytest.raises(QkdError, match="Nameless sets no name"):
        register_objective(type("Nameless", (OBJECTIVES["hinton"],), {}))
    with pytest.raises(QkdError, match="Abstract defines no teacher_term"):
        register_objective(type("Abstract", (Objective,), {"name": "abstract"}))
    assert "abstract" not in OBJECTIVES and tuple(OBJECTIVES) == BUILT_INS


MODULE = '''
import torch
from qkd_pl.losses import Objective


class Scaled(Objective):
    """Scaled KL: k times Hinton's teacher term."""

    k: float = 1.0

    def teacher_term(self, s, t, target):
        return self.k * torch.nn.functional.kl_div(torch.log_softmax(s / self.temperature, 1),
                                                   torch.log_softmax(t / self.temperature, 1),
                                                   reduction="sum", log_target=True)


def not_a_class(s, t, y):
    return (s - t).sum()
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch, registry_copy):
    name = "qkd_test_user_losses"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_an_import_path_names_a_users_objective(user_module):
    path = f"{user_module}:Scaled"
    cfg = DistillConfig(teacher="t", kd_loss=path, temperature=2.0, alpha=0.5, kd_params={"k": 3.0})
    objective = objective_from_config(cfg)
    assert type(objective).__name__ == "Scaled" and objective.k == 3.0
    assert OBJECTIVES[path].name == path and OBJECTIVES[path].help == "Scaled KL: k times Hinton's teacher term."
    loss, _ = distillation_loss(S, Y, T_, cfg)
    hinton, _ = KD("hinton", temperature=2.0, alpha=0.5)(S, T_, Y)
    ce = F.cross_entropy(S, Y)
    assert (loss - ce).item() == pytest.approx(3 * (hinton - ce).item(), rel=1e-5)
    assert path in OBJECTIVES and KD(path, k=2.0).k == 2.0


def test_an_import_path_to_something_else_is_refused_in_one_line(user_module):
    path = f"{user_module}:not_a_class"
    with pytest.raises(QkdError) as info:
        objective_from_config(DistillConfig(kd_loss=path))
    message = str(info.value)
    assert "\n" not in message and path in message and "expected a subclass of qkd_pl.losses.Objective" in message
    with pytest.raises(QkdError, match="has no 'Missing'"):
        KD(f"{user_module}:Missing")


def test_a_plain_function_is_an_objective_through_as_objective():
    seen = []

    def mse(student_logits, teacher_logits, labels):
        seen.append(labels.clone())
        return ((student_logits - teacher_logits) ** 2).mean()

    objective = as_objective(mse)
    hard = torch.tensor([True, True, False])  # row 2: a transfer row, labelled with the teacher's top class
    loss, parts = objective(S, T_, Y, hard, None)
    assert loss.item() == pytest.approx(((S - T_) ** 2).mean().item(), rel=1e-6)
    assert math.isnan(parts["ce"]) and parts["kd"] == loss.item()
    assert torch.equal(seen[0], Y)  # every row of the batch
    baseline, parts = objective(S, None, Y)  # no teacher: cross-entropy, the function is not called
    assert baseline.item() == pytest.approx(F.cross_entropy(S, Y).item(), rel=1e-6) and parts["kd"] == 0.0
    assert len(seen) == 1


def test_as_objective_takes_objectives_and_names_and_refuses_the_rest():
    dkd = KD("dkd", beta=2.0)
    assert as_objective(dkd) is dkd and as_objective("lskd") == KD("lskd")
    assert as_objective(OBJECTIVES["dist"]) == KD("dist")
    with pytest.raises(QkdError, match="got int 3"):
        as_objective(3)
    with pytest.raises(QkdError, match="must take \\(student_logits, teacher_logits, labels\\)"):
        as_objective(lambda s, t: (s - t).sum())
    with pytest.raises(QkdError, match="not a scalar tensor"):
        as_objective(lambda s, t, y: s - t)(S, T_, Y)


def test_kd_params_survive_a_saved_config_and_leave_default_names_alone():
    cfg = RunConfig("student", student=StudentConfig(),
                    distill=DistillConfig(teacher="t", kd_loss="mypkg:Loss", kd_params={"gamma": 0.5, "k": 2.0}))
    back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.distill.kd_params == {"gamma": 0.5, "k": 2.0}
    assert non_default(cfg.to_dict())["distill"]["kd_params"] == {"gamma": 0.5, "k": 2.0}
    default = RunConfig("student", student=StudentConfig(), distill=DistillConfig(teacher="t"))
    assert "kd_params" not in non_default(default.to_dict())["distill"]  # no existing run is renamed


def test_kd_params_are_read_from_the_command_line():
    assert parse_params(" gamma=0.5, k=2") == {"gamma": 0.5, "k": 2.0} and parse_params("") is None
    for bad in ("gamma", "gamma=x", "k=1,k=2", "1a=2"):
        with pytest.raises(QkdError, match="--kd-params .*NAME=VALUE"):
            parse_params(bad)

    got = {}

    @click.command()
    @config_options(DistillConfig, "distill", only=("kd_loss", "kd_params"))
    def command(**values):
        got["cfg"] = from_options(DistillConfig, "distill", values)

    assert CliRunner().invoke(command, ["--kd-params", "gamma=0.5"]).exit_code == 0
    assert got["cfg"].kd_params == {"gamma": 0.5}
    assert CliRunner().invoke(command, []).exit_code == 0 and got["cfg"].kd_params is None
    bad = CliRunner().invoke(command, ["--kd-params", "gamma"])
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.output


def test_a_config_saved_before_objectives_were_classes_builds_its_objective():
    """A run folder of qkd-pl 0.1 (no kd_params; dkd_beta and dist_* as flat fields) resumes with
    the objective it trained with."""
    saved = {"kind": "student", "data": {"dataset": "digits"}, "student": {}, "train": {},
             "distill": {"teacher": "runs/t", "kd_loss": "dkd", "temperature": 2.0, "alpha": 0.5, "dkd_beta": 3.0,
                         "dist_beta": 1.0, "dist_gamma": 1.0, "transfer": "none", "transfer_labels": "soft"}}
    objective = objective_from_config(RunConfig.from_dict(saved).distill)
    assert (type(objective).name, objective.temperature, objective.alpha, objective.beta) == ("dkd", 2.0, 0.5, 3.0)


def test_a_name_registered_by_a_module_in_qkd_plugins_is_found_wherever_a_name_goes(tmp_path, monkeypatch,
                                                                                     registry_copy):
    from qkd_pl import registry as registry_module
    from qkd_pl.config import RunConfig, StudentConfig
    from qkd_pl.validate import validate

    name = "qkd_test_plugin_losses"
    (tmp_path / f"{name}.py").write_text(ZERO_KD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(registry_module, "_plugins_imported", False)
    cfg = RunConfig("student", student=StudentConfig(), distill=DistillConfig(teacher="t", kd_loss="zero-kd"))
    with pytest.raises(QkdError, match="'zero-kd' is not one of.*QKD_PLUGINS"):
        validate(cfg)  # not imported yet, and nothing says where it is
    monkeypatch.setattr(registry_module, "_plugins_imported", False)
    monkeypatch.setenv("QKD_PLUGINS", name)
    assert type(objective_from_config(validate(cfg).distill)).name == "zero-kd"
    monkeypatch.setattr(registry_module, "_plugins_imported", False)
    monkeypatch.setenv("QKD_PLUGINS", "qkd_test_no_such_module")
    with pytest.raises(QkdError, match="QKD_PLUGINS qkd_test_no_such_module:__name__: module qkd_test_no_such_module "
                                       "does not import"):
        validate(dataclasses_replace_kd(cfg, "another-unknown"))
    sys.modules.pop(name, None)


def dataclasses_replace_kd(cfg, name):
    import dataclasses

    return dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, kd_loss=name))
