import numpy as np
import pytest

from qkd_pl.data.splits import cap_per_class, parse_classes, select_classes, stratified_split
from qkd_pl.errors import QkdError


@pytest.mark.parametrize("text,expected", [("0-7", list(range(8))), ("0,3,5", [0, 3, 5]),
                                           ("5,0-2", [0, 1, 2, 5]), (None, None), ("all", None)])
def test_parse_classes(text, expected):
    assert parse_classes(text) == expected


@pytest.mark.parametrize("text", ["a-b", "7-2", "1,1", "3", "0-"])
def test_parse_classes_rejects(text):
    with pytest.raises(QkdError):
        parse_classes(text)


def test_select_and_cap_keep_the_first_n_of_each_class_in_order():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    idx = select_classes(labels, [0, 2], 3)
    assert idx.tolist() == [0, 2, 3, 5, 6, 8, 9]
    assert cap_per_class(labels, idx, 2).tolist() == [0, 2, 3, 5]


def test_select_rejects_classes_outside_the_dataset():
    with pytest.raises(QkdError, match="0-2"):
        select_classes(np.array([0, 1, 2]), [0, 7], 3)


def test_stratified_split_is_disjoint_seeded_and_keeps_proportions():
    labels = np.repeat(np.arange(4), [40, 40, 80, 40])
    idx = np.arange(len(labels))
    tr, va = stratified_split(labels, idx, 0.25, seed=3)
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == len(idx)
    assert np.bincount(labels[va]).tolist() == [10, 10, 20, 10]
    tr2, va2 = stratified_split(labels, idx, 0.25, seed=3)
    assert (va == va2).all()
    _, va3 = stratified_split(labels, idx, 0.25, seed=4)
    assert not (va == va3).all()


def test_split_too_small_is_refused():
    labels = np.array([0, 1, 0, 1])
    with pytest.raises(QkdError, match="too few"):
        stratified_split(labels, np.arange(4), 0.25, 0)
