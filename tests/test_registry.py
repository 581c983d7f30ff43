"""Registries: a component is one record; everything that lists, checks or builds components
reads them, so a new one needs no other edit."""

import pytest
import torch
from torch import nn

from qkd_pl.config import DataConfig, RunConfig, StudentConfig
from qkd_pl.devices import Backend
from qkd_pl.errors import QkdError
from qkd_pl.reduction.registry import REDUCERS, Reducer
from qkd_pl.registry import Registry, registry
from qkd_pl.students import build_student
from qkd_pl.validate import validate


class Corners(nn.Module):
    """A reducer written for this test: the image's first n pixels."""

    def __init__(self, image_shape, n_features):
        super().__init__()
        self.n = n_features

    def forward(self, x):
        return x.flatten(1)[:, : self.n]


def test_a_new_reducer_is_one_record(monkeypatch):
    monkeypatch.setitem(REDUCERS._records, "corners", Reducer("corners", "the first pixels", Corners, False))
    cfg = validate(RunConfig("student", data=DataConfig("digits"), student=StudentConfig(reducer="corners")))
    model = build_student(cfg.student, Backend("qkd.fused", "backprop", "test"), (1, 8, 8), 10, torch.zeros(1),
                          torch.ones(1))
    assert isinstance(model.reduce, Corners) and model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert "corners: the first pixels" in REDUCERS.help()


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(QkdError, match="unknown --ansatz 'strongly'; choose one of: paper, strong, strong-local, basic, ring"):
        registry("ansatz")["strongly"]
    assert registry("dataset").canonical("FashionMNIST") == "fashion-mnist"


def test_a_name_is_registered_once():
    r = Registry("thing", "--thing")
    r.add(Reducer("a", "", Corners, False))
    with pytest.raises(ValueError, match="registered twice"):
        r.add(Reducer("a", "", Corners, False))


@pytest.mark.parametrize("kind", ["dataset", "reducer", "encoding", "ansatz", "teacher", "student", "device"])
def test_every_kind_has_a_registry_of_records_with_help(kind):
    reg = registry(kind)
    assert len(reg) >= 2 and all(r.name == name and r.help for name, r in reg.items())


def test_a_name_or_alias_a_plugin_registers_is_found_on_its_first_use(tmp_path, monkeypatch):
    import sys

    from qkd_pl import registry as registry_module

    datasets = registry("dataset")
    name = "qkd_test_plugin_alias"
    (tmp_path / f"{name}.py").write_text(
        "import dataclasses\nfrom qkd_pl.registry import registry\n"
        "datasets = registry('dataset')\n"
        "datasets.add(dataclasses.replace(datasets['digits'], name='my-digits', aliases=('mydigits',)))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(datasets, "_records", dict(datasets._records))
    monkeypatch.setattr(registry_module, "_plugins_imported", False)
    monkeypatch.setenv("QKD_PLUGINS", name)
    assert datasets.canonical(" MyDigits") == "my-digits"  # an alias, in another case, before anything imported it
    assert datasets.canonical("my-digits") == "my-digits"
    with pytest.raises(QkdError, match="unknown --dataset 'nodigits'; choose one of: .*my-digits"):
        datasets.canonical("nodigits")
    sys.modules.pop(name, None)
